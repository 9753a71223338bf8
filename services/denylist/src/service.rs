//! Wiring: rebuild the deny-list from `hush.suppressions.v1`, then follow it.

use std::sync::Arc;
use std::time::Duration;

use hush_contracts::events::SuppressionState;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, ConfigError};
use hush_runtime::kafka::{IncomingMessage, TopicTable};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiSettings, DEFAULT_MAX_BODY_BYTES};
use crate::denylist::DenyList;
use hush_auth::{AuthConfig, HttpConfig};
use hush_contracts::recipients::RecipientConfig;

/// Client id of the topic reader.
const CLIENT_ID: &str = "hush-denylist";

/// Wait between attempts to decode a record while the schema registry is unreachable.
const REGISTRY_RETRY: Duration = Duration::from_secs(1);

/// Configuration of the deny-list service: the common sections, `[denylist]`, the
/// `[[recipients]]` (enrichment recipients name the vendors callers may ask about), `[auth]`
/// and `[http]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// This service's section.
    #[serde(default)]
    pub denylist: DenyListSection,
    /// Downstream recipients; the kinds of the enrichment ones are vendors callers may name.
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
    /// Who may ask.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Time and rate limits of the HTTP server.
    #[serde(default)]
    pub http: HttpConfig,
}

/// Recipient kinds served by the deny-list (enrichment vendors without a suppression API).
const ENRICHMENT_KINDS: [&str; 2] = ["clearbit", "zoominfo"];

impl Config {
    /// The API settings: the body limit, and the vendor names callers may use — the kinds of
    /// the enrichment `[[recipients]]` plus `[denylist] vendors`.
    pub fn api_settings(&self) -> ApiSettings {
        let vendors = self
            .recipients
            .iter()
            .filter(|r| ENRICHMENT_KINDS.contains(&r.kind.as_str()))
            .map(|r| r.kind.clone())
            .chain(self.denylist.vendors.iter().cloned())
            .collect();
        ApiSettings {
            max_body_bytes: self.denylist.max_body_bytes,
            vendors,
        }
    }
}

/// `[denylist]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenyListSection {
    /// Address of the API and of `/healthz`, `/readyz`, `/metrics`.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Enrichment vendors callers may name besides the enrichment recipients' kinds (e.g. an
    /// in-house enrichment job).
    pub vendors: Vec<String>,
}

impl Default for DenyListSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8074".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            vendors: Vec::new(),
        }
    }
}

impl DenyList {
    /// Rebuilds a deny-list from the suppressions topic (every partition, up to the high
    /// watermarks) and keeps following it until `shutdown`. The deny-list returned is already
    /// rebuilt. This is the call an enrichment job written in Rust uses in-process.
    pub async fn follow_topic(
        config: &CommonConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<DenyList>, ConfigError> {
        let deny_list = Arc::new(DenyList::new());
        deny_list
            .clone()
            .rebuild_and_follow(config, shutdown)
            .await?;
        Ok(deny_list)
    }

    /// Rebuilds this (empty) deny-list from the suppressions topic, marks it rebuilt, and
    /// follows the topic in a background task until `shutdown`. Returns once rebuilt; until
    /// then every decision is refused with [`crate::denylist::CheckError::NotRebuilt`].
    pub async fn rebuild_and_follow(
        self: Arc<Self>,
        config: &CommonConfig,
        shutdown: CancellationToken,
    ) -> Result<(), ConfigError> {
        let codec = AvroCodec::from_config(&config.schema_registry)?;
        // Waits for the broker at start-up (a blocking wait): keep it off the runtime's workers.
        let (kafka, topic, stop) = (
            config.kafka.clone(),
            config.topics.suppressions.clone(),
            shutdown.clone(),
        );
        let reader =
            tokio::task::spawn_blocking(move || TopicTable::open(&kafka, &topic, CLIENT_ID, &stop))
                .await
                .map_err(|e| {
                    ConfigError::Invalid(format!("opening {}: {e}", config.topics.suppressions))
                })??;
        let records = reader
            .catch_up(|message| apply_record(&self, &codec, message, &shutdown))
            .await?;
        self.mark_rebuilt();
        tracing::info!(
            records,
            denied = self.len(),
            topic = %config.topics.suppressions,
            "deny-list rebuilt"
        );
        tokio::spawn(async move {
            reader
                .follow(shutdown.clone(), |message| {
                    apply_record(&self, &codec, message, &shutdown)
                })
                .await
        });
        Ok(())
    }
}

/// Applies one record of the suppressions topic. A record that cannot be decoded because the
/// registry is unreachable is retried (skipping it could let a suppressed person through); a
/// malformed one is skipped with a warning. A tombstone does not lift a suppression: the state
/// service never forgets one (Civ. Code 1798.105(c)(2)), so neither does the deny-list.
async fn apply_record(
    deny_list: &DenyList,
    codec: &AvroCodec,
    message: IncomingMessage,
    shutdown: &CancellationToken,
) {
    let Some(payload) = message.payload.as_deref() else {
        tracing::warn!(
            partition = message.partition,
            offset = message.offset,
            "ignoring a tombstone on the suppressions topic"
        );
        return;
    };
    loop {
        match codec.decode::<SuppressionState>(payload).await {
            Ok(state) => return deny_list.apply(state),
            Err(error) if error.is_retryable() => {
                tracing::warn!(%error, offset = message.offset, "registry unavailable; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(REGISTRY_RETRY) => {}
                }
            }
            Err(error) => {
                return tracing::warn!(
                    %error,
                    partition = message.partition,
                    offset = message.offset,
                    "skipping undecodable suppression state record"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_8074_with_a_one_mebibyte_body_limit() {
        let section = Config::default().denylist;
        assert_eq!(section.listen, "127.0.0.1:8074");
        assert_eq!(section.max_body_bytes, 1_048_576);
    }

    #[test]
    fn the_section_is_read_from_toml_next_to_the_common_ones() {
        let config: Config = toml::from_str(
            "[topics]\nsuppressions = \"s\"\n[denylist]\nlisten = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        assert_eq!(config.common.topics.suppressions, "s");
        assert_eq!(config.denylist.listen, "0.0.0.0:9000");
        assert!(toml::from_str::<Config>("[denylist]\nlisten_on = \"x\"\n").is_err());
    }
}
