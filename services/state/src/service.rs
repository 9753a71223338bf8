//! Wiring: rebuild the state table from its topic, then fold requests into it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use hush_contracts::events::{now_millis, PrivacyRequest, SuppressionState};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{
    ConsumerSettings, DeadLetterQueue, EventConsumer, EventProducer, HandlerError, IncomingMessage,
    MessageHandler, TopicTable,
};
use hush_runtime::ops::Readiness;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::fold::fold;

/// Configuration of the state service: the common sections plus `[state]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// This service's section.
    #[serde(default)]
    pub state: StateSection,
}

/// `[state]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateSection {
    /// Address of `/healthz`, `/readyz`, `/metrics`.
    pub listen: String,
    /// Consumer group of the replicas.
    pub group_id: String,
}

impl Default for StateSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8072".into(),
            group_id: "hush-state".into(),
        }
    }
}

/// Current state per identifier hash, as read from and written to the topic.
#[derive(Default)]
pub struct StateTable {
    states: RwLock<HashMap<String, SuppressionState>>,
}

impl StateTable {
    /// The state of one identifier.
    pub fn get(&self, identifier_hash: &str) -> Option<SuppressionState> {
        self.states
            .read()
            .expect("state lock")
            .get(identifier_hash)
            .cloned()
    }

    /// Records a state, keeping the newer one when two race.
    pub fn put(&self, state: SuppressionState) {
        let mut states = self.states.write().expect("state lock");
        match states.get(&state.identifier_hash) {
            Some(existing) if existing.updated_at > state.updated_at => {}
            _ => {
                states.insert(state.identifier_hash.clone(), state);
            }
        }
    }

    /// Number of identifiers with a state, the canary's (`synthetic`) left out: what the
    /// business reports holds real people only.
    pub fn len(&self) -> usize {
        self.count(false)
    }

    /// Whether no real person's identifier has a state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of the canary's identifiers with a state (still suppressed, counted apart).
    pub fn canary_len(&self) -> usize {
        self.count(true)
    }

    fn count(&self, synthetic: bool) -> usize {
        self.states
            .read()
            .expect("state lock")
            .values()
            .filter(|s| s.synthetic == synthetic)
            .count()
    }
}

struct FoldRequests {
    table: Arc<StateTable>,
    codec: AvroCodec,
    producer: EventProducer,
    topic: String,
}

#[async_trait]
impl MessageHandler for FoldRequests {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let request: PrivacyRequest = decode(&self.codec, message).await?;
        for identifier in &request.identifiers {
            let current = self.table.get(&identifier.sha256);
            let Some(next) = fold(current.as_ref(), &request, identifier, now_millis()) else {
                continue;
            };
            self.producer
                .send(&self.topic, &next.identifier_hash, &next)
                .await
                .map_err(|e| HandlerError::Retryable(e.to_string()))?;
            self.table.put(next);
        }
        Ok(())
    }
}

async fn decode<T: hush_contracts::events::AvroEvent>(
    codec: &AvroCodec,
    message: &IncomingMessage,
) -> Result<T, HandlerError> {
    let payload = message.payload.as_deref().unwrap_or_default();
    codec.decode(payload).await.map_err(|e| {
        if e.is_retryable() {
            HandlerError::Retryable(e.to_string())
        } else {
            HandlerError::Permanent(e.to_string())
        }
    })
}

/// Rebuilds the table from `hush.suppressions.v1`, then folds requests until `shutdown`.
pub async fn run(
    config: &CommonConfig,
    section: &StateSection,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<StateTable>> {
    let codec = AvroCodec::from_config(&config.schema_registry)?;
    let producer = EventProducer::new(&config.kafka, codec.clone(), "hush-state")?;
    let table = Arc::new(StateTable::default());
    let rebuilt = Arc::new(AtomicBool::new(false));
    readiness.require("state rebuilt", rebuilt.clone());

    let reader = TopicTable::new(&config.kafka, &config.topics.suppressions, "hush-state")?;
    let count = reader
        .catch_up(|message| apply_state(&table, &codec, message))
        .await?;
    rebuilt.store(true, Ordering::SeqCst);
    tracing::info!(
        records = count,
        identifiers = table.len(),
        canary_identifiers = table.canary_len(),
        "suppression state rebuilt"
    );
    {
        let (table, codec, shutdown) = (table.clone(), codec.clone(), shutdown.clone());
        tokio::spawn(async move {
            reader
                .follow(shutdown, |message| apply_state(&table, &codec, message))
                .await
        });
    }

    let dlq = DeadLetterQueue::new(producer.clone(), config.topics.dlq.clone(), "hush-state");
    let consumer = EventConsumer::new(
        &config.kafka,
        ConsumerSettings {
            group_id: section.group_id.clone(),
            topics: vec![config.topics.requests.clone()],
            client_id: "hush-state".into(),
        },
        dlq,
    )?;
    readiness.require("consumer assigned", consumer.assigned_flag());
    readiness.require("consumer flowing", consumer.flowing_flag());
    readiness.started();
    let handler = FoldRequests {
        table: table.clone(),
        codec,
        producer,
        topic: config.topics.suppressions.clone(),
    };
    tokio::spawn(consumer.run(shutdown, handler));
    Ok(table)
}

/// Applies one state record; an unreachable registry is waited out, so no state is skipped.
async fn apply_state(table: &StateTable, codec: &AvroCodec, message: IncomingMessage) {
    let payload = message.payload.as_deref().unwrap_or_default();
    match codec.decode_patiently::<SuppressionState>(payload).await {
        Ok(state) => table.put(state),
        Err(error) => tracing::error!(
            %error,
            partition = message.partition,
            offset = message.offset,
            "skipping a state record that can never decode"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{IdentifierType, MinorStatus};

    fn state(hash: &str, synthetic: bool) -> SuppressionState {
        SuppressionState {
            identifier_hash: hash.repeat(64),
            identifier_type: IdentifierType::Email,
            subject_key: "s".into(),
            sale_share_opted_out: true,
            sensitive_limited: false,
            deleted: false,
            effective_at: 1,
            resolicit_after: None,
            minor_status: MinorStatus::Unknown,
            last_request_id: "r".into(),
            updated_at: 1,
            synthetic,
        }
    }

    #[test]
    fn the_canarys_identifiers_are_held_but_not_counted() {
        let table = StateTable::default();
        table.put(state("a", false));
        table.put(state("c", true));
        assert_eq!(table.len(), 1, "only the real person is counted");
        assert_eq!(table.canary_len(), 1);
        assert!(
            table
                .get(&"c".repeat(64))
                .is_some_and(|s| s.sale_share_opted_out),
            "the canary is still suppressed"
        );
        let only_canary = StateTable::default();
        only_canary.put(state("c", true));
        assert!(only_canary.is_empty());
    }
}
