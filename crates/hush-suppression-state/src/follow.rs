//! Keeps a [`SuppressionLookup`] current: rebuilds it from `hush.suppressions.v1` up to the end
//! offsets seen at start (until then its owner is not ready and must decide nothing from it),
//! then follows the topic.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hush_contracts::events::SuppressionState;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{IncomingMessage, TopicTable};
use prometheus::IntGauge;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::lookup::SuppressionLookup;

/// Who follows the topic and where it reports the size of its index.
#[derive(Clone)]
pub struct Follower {
    /// Kafka `client.id` of the reader (the service's name).
    pub client_id: &'static str,
    /// Set to the number of identifiers held after every applied record, the canary's left
    /// out.
    pub identifiers: IntGauge,
}

/// Applies one record of the suppressions topic; a state the registry cannot decode now is
/// retried until it can, so no suppression is ever skipped.
async fn apply(
    lookup: &SuppressionLookup,
    codec: &AvroCodec,
    identifiers: &IntGauge,
    message: IncomingMessage,
) {
    let Some(payload) = message.payload.as_deref() else {
        if let Some(key) = message.key_str() {
            lookup.remove(key);
            identifiers.set(lookup.counted_len() as i64);
        }
        return;
    };
    match codec.decode_patiently::<SuppressionState>(payload).await {
        Ok(state) => {
            lookup.apply(&state);
            identifiers.set(lookup.counted_len() as i64);
        }
        Err(error) => {
            tracing::error!(%error, partition = message.partition, offset = message.offset, "undecodable suppression state skipped");
        }
    }
}

/// The task that rebuilds the index, sets `rebuilt` and sends `true` on the returned channel once
/// it holds every state written before the start, then follows the topic until `stop`.
pub fn start(
    common: &CommonConfig,
    codec: &AvroCodec,
    follower: Follower,
    lookup: Arc<SuppressionLookup>,
    rebuilt: Arc<AtomicBool>,
    stop: CancellationToken,
) -> (
    watch::Receiver<bool>,
    impl Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    let (ready, receiver) = watch::channel(false);
    let (kafka, topic, codec) = (
        common.kafka.clone(),
        common.topics.suppressions.clone(),
        codec.clone(),
    );
    let task = async move {
        let Follower {
            client_id,
            identifiers,
        } = follower;
        let table = tokio::task::spawn_blocking(move || TopicTable::new(&kafka, &topic, client_id))
            .await??;
        let count = table
            .catch_up(|message| apply(&lookup, &codec, &identifiers, message))
            .await?;
        tracing::info!(
            records = count,
            identifiers = lookup.len(),
            heap_bytes = lookup.heap_bytes(),
            "suppression index rebuilt"
        );
        rebuilt.store(true, Ordering::SeqCst);
        let _ = ready.send(true);
        table
            .follow(stop, |message| {
                apply(&lookup, &codec, &identifiers, message)
            })
            .await;
        Ok(())
    };
    (receiver, task)
}
