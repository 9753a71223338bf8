//! Point (3) of PROVEN: leaks from the leak watch turn a request `LEAKING`, and the watch's
//! progress per topic tells when an observation window has been examined in full, so that a
//! clean one turns the request `PROVEN`. Neither is written here: a leak, and a window found
//! closed clean, become commands applied by the replica that owns the request (see
//! [`crate::commands`]), so they never overwrite a confirmation another replica folded in.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::events::{now_millis, LeakDetected, WatchProgress};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{HandlerError, IncomingMessage, MessageHandler, TopicTable};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backlog::RequestsBacklog;
use crate::service::{decode, retryable, Auditor, Leaked};

/// Client id of the progress reader in broker logs.
const CLIENT_ID: &str = "hush-auditor-watch";

/// The latest progress of the leak watch per watched topic, from `hush.watch.v1`.
#[derive(Default)]
pub struct WatchCoverage {
    topics: RwLock<HashMap<String, WatchProgress>>,
}

impl WatchCoverage {
    /// The progress on `topic`, if the leak watch reported any.
    pub fn get(&self, topic: &str) -> Option<WatchProgress> {
        self.topics
            .read()
            .expect("coverage lock")
            .get(topic)
            .cloned()
    }

    /// Every topic's progress, by topic.
    pub fn all(&self) -> Vec<WatchProgress> {
        let mut all: Vec<_> = self
            .topics
            .read()
            .expect("coverage lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.topic.cmp(&b.topic));
        all
    }

    /// Records `progress`, keeping the further one when two arrive out of order.
    pub fn put(&self, progress: WatchProgress) {
        let mut topics = self.topics.write().expect("coverage lock");
        match topics.get(&progress.topic) {
            Some(known) if known.updated_at > progress.updated_at => {}
            _ => {
                topics.insert(progress.topic.clone(), progress);
            }
        }
    }

    async fn apply(&self, codec: &AvroCodec, message: IncomingMessage) {
        let Some(payload) = message.payload.as_deref() else {
            return;
        };
        match codec.decode_patiently::<WatchProgress>(payload).await {
            Ok(progress) => self.put(progress),
            Err(error) => tracing::warn!(
                %error,
                partition = message.partition,
                offset = message.offset,
                "undecodable watch progress (a newer one replaces it)"
            ),
        }
    }
}

/// Sends every leak to the replica that owns the record of the request it violated.
pub struct LeakHandler {
    /// The auditor.
    pub auditor: Arc<Auditor>,
    /// Registry codec.
    pub codec: AvroCodec,
    /// Whether every request has been consumed, to tell a late request from a missing one.
    pub backlog: RequestsBacklog,
}

#[async_trait]
impl MessageHandler for LeakHandler {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let leak: LeakDetected = decode(&self.codec, message).await?;
        match self
            .auditor
            .record_leak(&leak, now_millis())
            .await
            .map_err(retryable)?
        {
            Leaked::Sent => {
                tracing::debug!(
                    request_id = %leak.last_request_id,
                    leak_id = %leak.leak_id,
                    "leak sent to the request's owner"
                );
                Ok(())
            }
            Leaked::Unchanged => Ok(()),
            // A record opened after `record_leak` looked and before the probe is in the store
            // by the time the probe says every request was consumed: try the leak again.
            Leaked::RequestNotSeen
                if self.backlog.caught_up().await
                    && !self.auditor.store().contains(&leak.last_request_id) =>
            {
                Err(HandlerError::Permanent(format!(
                    "leak {} names request {}, which is not on record",
                    leak.leak_id, leak.last_request_id
                )))
            }
            Leaked::RequestNotSeen => Err(HandlerError::Retryable(format!(
                "request {} not seen yet",
                leak.last_request_id
            ))),
        }
    }
}

/// Reads the watch progress topic (rebuilt, then followed) and looks for closed observation
/// windows every `interval`, sending a `PROVE` command for each (see [`Auditor::prove_due`]).
pub fn start(
    auditor: &Arc<Auditor>,
    common: &CommonConfig,
    codec: &AvroCodec,
    interval: Duration,
    stop: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let table = TopicTable::new(&common.kafka, &common.topics.watch, CLIENT_ID)?;
    let follower = {
        let (auditor, codec, stop) = (auditor.clone(), codec.clone(), stop.clone());
        tokio::spawn(async move {
            let coverage = auditor.coverage();
            table
                .follow(stop, |message| coverage.apply(&codec, message))
                .await
        })
    };
    let prover = {
        let (auditor, stop) = (auditor.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => match auditor.prove_due(now_millis()).await {
                        Ok(0) => {}
                        Ok(sent) => tracing::debug!(sent, "closed windows sent to be proven"),
                        Err(error) => tracing::warn!(%error, "proving closed windows failed; next tick retries"),
                    },
                }
            }
        })
    };
    Ok(vec![follower, prover])
}
