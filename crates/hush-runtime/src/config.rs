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
    /// This replica's stable name for static consumer-group membership (Kafka's
    /// `group.instance.id`, suffixed with each group it joins); `HUSH_INSTANCE_ID` when unset
    /// here (the Kubernetes manifests set it to the pod name). With it, a replica restarted
    /// within `session_timeout_ms` takes its partitions back without a rebalance; without it,
    /// membership is dynamic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// How long the broker keeps a static member's partitions for it after its last heartbeat,
    /// in milliseconds (used only with `instance_id`): a killed replica has this long to come
    /// back to them; a replica gone for good hands them over after it.
    pub session_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            properties: BTreeMap::new(),
            secret_properties: BTreeMap::new(),
            message_timeout_ms: 10_000,
            instance_id: None,
            session_timeout_ms: 30_000,
        }
    }
}

/// Schema registry settings (Confluent-compatible API). Authentication is optional: basic auth
/// (`username` + `password_env`) or a bearer token (`bearer_token_env`), never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the Confluent-compatible API, without a trailing slash.
    pub url: String,
    /// Basic-auth user name (for Confluent Cloud: the API key); needs `password_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the basic-auth password (Confluent Cloud: the API secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<SecretRef>,
    /// Environment variable holding a bearer token, sent as `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<SecretRef>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8081/apis/ccompat/v7".into(),
            username: None,
            password_env: None,
            bearer_token_env: None,
        }
    }
}

/// How Hush authenticates to the schema registry, with its secret read from the environment.
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No `Authorization` header.
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::None => f.write_str("None"),
            RegistryAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            RegistryAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl RegistryConfig {
    /// Checks the authentication settings and reads their secret from the environment. Basic
    /// auth and a bearer token together, or half of basic auth, are refused with an error that
    /// names the settings; an unset variable is refused with an error that names it.
    pub fn auth(&self) -> Result<RegistryAuth, ConfigError> {
        let username = self.username.as_deref().map(str::trim);
        match (username, &self.password_env, &self.bearer_token_env) {
            (None, None, None) => Ok(RegistryAuth::None),
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(ConfigError::Invalid(
                "schema_registry: set either basic auth (username + password_env) or \
                 bearer_token_env, not both"
                    .into(),
            )),
            (None, None, Some(token)) => Ok(RegistryAuth::Bearer(
                token.resolve("schema_registry.bearer_token_env")?,
            )),
            (Some(""), _, None) => Err(ConfigError::Invalid(
                "schema_registry.username is empty".into(),
            )),
            (Some(_), None, None) => Err(ConfigError::Invalid(
                "schema_registry.username is set but schema_registry.password_env is not: \
                 basic auth needs both"
                    .into(),
            )),
            (None, Some(_), None) => Err(ConfigError::Invalid(
                "schema_registry.password_env is set but schema_registry.username is not: \
                 basic auth needs both"
                    .into(),
            )),
            (Some(username), Some(password), None) => Ok(RegistryAuth::Basic {
                username: username.to_owned(),
                password: password.resolve("schema_registry.password_env")?,
            }),
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
    /// Internal to `hush-state`: one record per identifier of each request, keyed by the
    /// identifier hash like `suppressions` (the changelog it is co-partitioned with). Must have
    /// as many partitions as `suppressions`.
    pub state_repartition: String,
    /// Confirmations from the suppressors.
    pub confirmations: String,
    /// Changes asked of the auditor over HTTP (denial, extension, resolution, retry, callback),
    /// applied by the auditor replica that owns the request's confirmations partition. Must
    /// have as many partitions as `confirmations`.
    pub auditor_commands: String,
    /// Compacted audit records per request.
    pub audit: String,
    /// Leaks seen by the gate's leak watch.
    pub leaks: String,
    /// Compacted progress of the leak watch per watched topic.
    pub watch: String,
    /// Dead letters with their reason.
    pub dlq: String,
    /// Results of the canary runs, one per run and channel.
    pub canaries: String,
    /// Prefix of each connector's retry topic: `<retry_prefix>.<connector id>.v1`.
    pub retry_prefix: String,
    /// Partitions for topics Hush creates.
    pub partitions: i32,
    /// Replication factor for topics Hush creates.
    pub replication_factor: i32,
    /// `min.insync.replicas` of topics Hush creates. Unset: 2 when `replication_factor` is 2 or
    /// more (an acknowledged event is then on two brokers), the broker's default otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_insync_replicas: Option<i32>,
}

impl TopicsConfig {
    /// The retry topic of one connector.
    pub fn retry_topic(&self, connector_id: &str) -> String {
        format!("{}.{connector_id}.v1", self.retry_prefix)
    }

    /// The `min.insync.replicas` to create topics with (`None`: leave the broker's default).
    /// An override outside 1..=`replication_factor` is refused: a larger one would make every
    /// acknowledged (`acks=all`) write fail.
    pub fn effective_min_insync_replicas(&self) -> Result<Option<i32>, ConfigError> {
        match self.min_insync_replicas {
            Some(min) if min < 1 || min > self.replication_factor => {
                Err(ConfigError::Invalid(format!(
                    "topics.min_insync_replicas = {min} must be between 1 and \
                     topics.replication_factor ({})",
                    self.replication_factor
                )))
            }
            Some(min) => Ok(Some(min)),
            None if self.replication_factor >= 2 => Ok(Some(2)),
            None => Ok(None),
        }
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            requests: "hush.requests.v1".into(),
            signals: "hush.signals.v1".into(),
            suppressions: "hush.suppressions.v1".into(),
            state_repartition: "hush.state-repartition.v1".into(),
            confirmations: "hush.confirmations.v1".into(),
            auditor_commands: "hush.auditor-commands.v1".into(),
            audit: "hush.audit.v1".into(),
            leaks: "hush.leaks.v1".into(),
            watch: "hush.watch.v1".into(),
            dlq: "hush.dlq.v1".into(),
            canaries: "hush.canaries.v1".into(),
            retry_prefix: "hush.retry".into(),
            partitions: 6,
            replication_factor: 1,
            min_insync_replicas: None,
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
    // HUSH_INSTANCE_ID is a default: the file and HUSH_KAFKA__INSTANCE_ID override it.
    let mut figment = Figment::from(Serialized::defaults(T::default())).merge(
        Env::raw()
            .only(&["HUSH_INSTANCE_ID"])
            .map(|_| "kafka.instance_id".into()),
    );
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
    fn the_instance_id_defaults_to_hush_instance_id() {
        Jail::expect_with(|jail| {
            jail.set_env("HUSH_INSTANCE_ID", "hush-state-7c9d5-abcde");
            let config: CommonConfig = load(None).unwrap();
            assert_eq!(
                config.kafka.instance_id.as_deref(),
                Some("hush-state-7c9d5-abcde")
            );
            assert_eq!(config.kafka.session_timeout_ms, 30_000);
            jail.set_env("HUSH_KAFKA__INSTANCE_ID", "explicit");
            let config: CommonConfig = load(None).unwrap();
            assert_eq!(config.kafka.instance_id.as_deref(), Some("explicit"));
            Ok(())
        });
    }

    #[test]
    fn without_hush_instance_id_there_is_no_instance_id() {
        Jail::expect_with(|_| {
            let config: CommonConfig = load(None).unwrap();
            assert_eq!(config.kafka.instance_id, None);
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

    fn registry(toml: &str) -> RegistryConfig {
        let config: CommonConfig = Figment::from(Serialized::defaults(CommonConfig::default()))
            .merge(Toml::string(toml))
            .extract()
            .unwrap();
        config.schema_registry
    }

    #[test]
    fn registry_basic_auth_reads_its_password_from_the_named_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("HUSH_TEST_SR_PASSWORD", "s3cret");
            jail.create_file(
                "hush.toml",
                "[schema_registry]\nusername = \"hush\"\npassword_env = \"HUSH_TEST_SR_PASSWORD\"\n",
            )?;
            let config: CommonConfig = load(Some(Path::new("hush.toml"))).unwrap();
            assert_eq!(
                config.schema_registry.auth().unwrap(),
                RegistryAuth::Basic {
                    username: "hush".into(),
                    password: "s3cret".into()
                }
            );
            Ok(())
        });
    }

    #[test]
    fn registry_without_authentication_sends_none() {
        assert_eq!(
            RegistryConfig::default().auth().unwrap(),
            RegistryAuth::None
        );
    }

    #[test]
    fn registry_basic_auth_and_bearer_token_together_are_refused_by_name() {
        let config = registry(
            r#"
            [schema_registry]
            username = "hush"
            password_env = "SR_PASSWORD"
            bearer_token_env = "SR_TOKEN"
            "#,
        );
        let error = config.auth().unwrap_err().to_string();
        for field in ["username", "password_env", "bearer_token_env"] {
            assert!(error.contains(field), "{field} not named: {error}");
        }
    }

    #[test]
    fn registry_username_without_password_env_is_refused_by_name() {
        let error = registry("[schema_registry]\nusername = \"hush\"\n")
            .auth()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("schema_registry.password_env is not"),
            "{error}"
        );
    }

    #[test]
    fn registry_token_variable_missing_is_named_in_the_error() {
        let config =
            registry("[schema_registry]\nbearer_token_env = \"HUSH_TEST_SURELY_UNSET_SR_TOKEN\"\n");
        let error = config.auth().unwrap_err().to_string();
        assert!(error.contains("HUSH_TEST_SURELY_UNSET_SR_TOKEN"), "{error}");
        assert!(
            error.contains("schema_registry.bearer_token_env"),
            "{error}"
        );
    }

    #[test]
    fn registry_password_variable_missing_is_named_in_the_error() {
        let config = registry(
            "[schema_registry]\nusername = \"hush\"\npassword_env = \"HUSH_TEST_SURELY_UNSET_SR_PASSWORD\"\n",
        );
        let error = config.auth().unwrap_err().to_string();
        assert!(
            error.contains("HUSH_TEST_SURELY_UNSET_SR_PASSWORD"),
            "{error}"
        );
    }

    #[test]
    fn registry_auth_debug_output_hides_the_secrets() {
        let basic = RegistryAuth::Basic {
            username: "hush".into(),
            password: "s3cret".into(),
        };
        let bearer = RegistryAuth::Bearer("tok-789".into());
        let shown = format!("{basic:?} {bearer:?}");
        assert!(shown.contains("hush"), "{shown}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok-789"),
            "{shown}"
        );
    }

    #[test]
    fn min_insync_replicas_is_read_from_the_topics_section() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "hush.toml",
                "[topics]\nreplication_factor = 3\nmin_insync_replicas = 3\n",
            )?;
            let config: CommonConfig = load(Some(Path::new("hush.toml"))).unwrap();
            assert_eq!(config.topics.min_insync_replicas, Some(3));
            assert_eq!(
                config.topics.effective_min_insync_replicas().unwrap(),
                Some(3)
            );
            Ok(())
        });
    }
}
