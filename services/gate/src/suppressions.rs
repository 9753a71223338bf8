//! Keeps the suppression index current: rebuilds it from `hush.suppressions.v1` up to the end
//! offsets seen at start (until then the gate is not ready and decides nothing), then follows
//! the topic.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hush_contracts::events::SuppressionState;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{IncomingMessage, TopicTable};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::lookup::SuppressionLookup;
use crate::metrics;
use crate::stream::SERVICE;

/// Applies one record of the suppressions topic; a state the registry cannot decode now is
/// retried until it can, so no suppression is ever skipped.
async fn apply(lookup: &SuppressionLookup, codec: &AvroCodec, message: IncomingMessage) {
    let Some(payload) = message.payload.as_deref() else {
        if let Some(key) = message.key_str() {
            lookup.remove(key);
        }
        return;
    };
    loop {
        match codec.decode::<SuppressionState>(payload).await {
            Ok(state) => {
                lookup.apply(&state);
                metrics::SUPPRESSED_IDENTIFIERS.set(lookup.len() as i64);
                return;
            }
            Err(error) if error.is_retryable() => {
                tracing::warn!(%error, "waiting for the schema registry to read the suppression state");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => {
                tracing::error!(%error, partition = message.partition, offset = message.offset, "undecodable suppression state skipped");
                return;
            }
        }
    }
}

/// The task that rebuilds the index, sets `rebuilt` and sends `true` on the returned channel once
/// it holds every state written before the start, then follows the topic until `stop`.
pub fn start(
    common: &CommonConfig,
    codec: &AvroCodec,
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
        let table =
            tokio::task::spawn_blocking(move || TopicTable::new(&kafka, &topic, SERVICE)).await??;
        let count = table
            .catch_up(|message| apply(&lookup, &codec, message))
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
            .follow(stop, |message| apply(&lookup, &codec, message))
            .await;
        Ok(())
    };
    (receiver, task)
}
