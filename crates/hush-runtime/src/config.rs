//! Configuration shared by every service: one TOML file, then environment overrides.
//!
//! Precedence (last wins): built-in defaults → the file → `HUSH_<SECTION>__<KEY>` variables →
//! the conventional `KAFKA_BOOTSTRAP_SERVERS` and `SCHEMA_REGISTRY_URL`. Secrets are never read
//! from the file: the file names the environment variable that holds them ([`SecretRef`]).

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use hush_contracts::config::{ConfigError, SecretRef};

/// Kafka connection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (e.g. `security.protocol`).
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties whose values come from environment variables
    /// (e.g. `"sasl.password" = "KAFKA_SASL_PASSWORD"`).
    pub secret_properties: BTreeMap<String, SecretRef>,
    /// How long a produce may wait for the broker's acknowledgement, in milliseconds.
    pub message_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            properties: BTreeMap::new(),
            secret_properties: BTreeMap::new(),
            message_timeout_ms: 10_000,
        }
    }
}

/// Schema registry settings (Confluent-compatible API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the Confluent-compatible API, without a trailing slash.
    pub url: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8081/apis/ccompat/v7".into(),
        }
    }
}

/// Topic names and creation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// Privacy requests from intake.
    pub requests: String,
    /// Privacy signals from upstream publishers, which intake validates into requests.
    pub signals: String,
    /// Compacted suppression state per identifier hash.
    pub suppressions: String,
    /// Confirmations from the suppressors.
    pub confirmations: String,
    /// Compacted audit records per request.
    pub audit: String,
    /// Leaks seen by the gate's leak watch.
    pub leaks: String,
    /// Compacted progress of the leak watch per watched topic.
    pub watch: String,
    /// Dead letters with their reason.
    pub dlq: String,
    /// Prefix of each connector's retry topic: `<retry_prefix>.<connector id>.v1`.
    pub retry_prefix: String,
    /// Partitions for topics Hush creates.
    pub partitions: i32,
    /// Replication factor for topics Hush creates.
    pub replication_factor: i32,
}

impl TopicsConfig {
    /// The retry topic of one connector.
    pub fn retry_topic(&self, connector_id: &str) -> String {
        format!("{}.{connector_id}.v1", self.retry_prefix)
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            requests: "hush.requests.v1".into(),
            signals: "hush.signals.v1".into(),
            suppressions: "hush.suppressions.v1".into(),
            confirmations: "hush.confirmations.v1".into(),
            audit: "hush.audit.v1".into(),
            leaks: "hush.leaks.v1".into(),
            watch: "hush.watch.v1".into(),
            dlq: "hush.dlq.v1".into(),
            retry_prefix: "hush.retry".into(),
            partitions: 6,
            replication_factor: 1,
        }
    }
}

/// The settings every service shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CommonConfig {
    /// Kafka connection.
    pub kafka: KafkaConfig,
    /// Schema registry.
    pub schema_registry: RegistryConfig,
    /// Topics.
    pub topics: TopicsConfig,
}

/// Loads a configuration section tree from defaults, an optional TOML file and the environment.
///
/// `T` is the service's own configuration type; it must embed [`CommonConfig`] fields at the
/// top level with `#[serde(flatten)]` or be [`CommonConfig`] itself.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Serialize + for<'de> Deserialize<'de> + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::Invalid(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment
        .merge(Env::prefixed("HUSH_").split("__"))
        .merge(
            Env::raw()
                .only(&["KAFKA_BOOTSTRAP_SERVERS"])
                .map(|_| "kafka.bootstrap_servers".into()),
        )
        .merge(
            Env::raw()
                .only(&["SCHEMA_REGISTRY_URL"])
                .map(|_| "schema_registry.url".into()),
        );
    figment
        .extract()
        .map_err(|e| ConfigError::Invalid(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's test jail returns its own large error type
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_match_the_local_stack() {
        let config = CommonConfig::default();
        assert_eq!(config.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(
            config.schema_registry.url,
            "http://127.0.0.1:8081/apis/ccompat/v7"
        );
        assert_eq!(config.topics.suppressions, "hush.suppressions.v1");
    }

    #[test]
    fn file_then_environment_override_in_that_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "hush.toml",
                r#"
                [kafka]
                bootstrap_servers = "file:9092"
                [topics]
                partitions = 12
                "#,
            )?;
            jail.set_env("KAFKA_BOOTSTRAP_SERVERS", "env:9092");
            jail.set_env("HUSH_TOPICS__REPLICATION_FACTOR", "3");
            let config: CommonConfig = load(Some(Path::new("hush.toml"))).unwrap();
            assert_eq!(config.kafka.bootstrap_servers, "env:9092");
            assert_eq!(config.topics.partitions, 12);
            assert_eq!(config.topics.replication_factor, 3);
            Ok(())
        });
    }

    #[test]
    fn unknown_setting_is_named_in_the_error() {
        Jail::expect_with(|jail| {
            jail.create_file("hush.toml", "[kafka]\nbootstrap_server = \"typo\"\n")?;
            let err = load::<CommonConfig>(Some(Path::new("hush.toml"))).unwrap_err();
            assert!(err.to_string().contains("bootstrap_server"), "{err}");
            Ok(())
        });
    }
}
