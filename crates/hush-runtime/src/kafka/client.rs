//! librdkafka client settings built from [`KafkaConfig`], and a client context that remembers
//! why the broker could not be reached.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

use super::restore::BootstrapRestorer;
use crate::config::{ConfigError, KafkaConfig};

/// librdkafka properties whose values are secrets: refused in `kafka.properties` (the file),
/// accepted only in `kafka.secret_properties` (an environment variable's name).
const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
];

/// How long a client waits for an answer to a metadata request before it connects to
/// `bootstrap.servers` again (librdkafka's `metadata.recovery.rebootstrap.trigger.ms`, 5 minutes
/// by default). A broker that is fenced for a moment (a KRaft broker paused or restarted past its
/// session with the controller) answers metadata listing no brokers; librdkafka then forgets
/// every broker it knew, the bootstrap one included, and without this it waits the full 5
/// minutes before it connects again: every consumer group of the process stalls that long.
/// Not shorter: at 10 s every broker outage longer than that made each client bootstrap again
/// while the broker was away, and consumer groups took longer to find their coordinator after
/// it came back (container_faults' broker stop-and-restart test failed twice).
const REBOOTSTRAP_AFTER_MS: &str = "60000";

/// A client configuration with the bootstrap servers, extra properties and secret properties
/// (read from the environment) of `config`. A secret written into `kafka.properties`, or a
/// property set in both tables, is refused with an error naming it. A client with no metadata
/// for 60 s bootstraps again (`metadata.recovery.rebootstrap.trigger.ms`, which
/// `kafka.properties` may override).
pub fn client_config(config: &KafkaConfig) -> Result<ClientConfig, ConfigError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    client.set(
        "metadata.recovery.rebootstrap.trigger.ms",
        REBOOTSTRAP_AFTER_MS,
    );
    for (key, value) in &config.properties {
        if SECRET_PROPERTIES.contains(&key.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "kafka.properties.\"{key}\" is a secret and must not be written in the file: \
                 set kafka.secret_properties.\"{key}\" to the name of the environment variable \
                 that holds it"
            )));
        }
        if config.secret_properties.contains_key(key) {
            return Err(ConfigError::Invalid(format!(
                "\"{key}\" is set in both kafka.properties and kafka.secret_properties"
            )));
        }
        client.set(key, value);
    }
    for (key, secret) in &config.secret_properties {
        let value = secret.resolve(&format!("kafka.secret_properties.{key}"))?;
        client.set(key, value);
    }
    Ok(client)
}

/// Longest `group.instance.id` the broker accepts.
const MAX_INSTANCE_ID_LEN: usize = 249;

/// A client configuration for a member of consumer group `group_id`: [`client_config`] plus
/// `group.id` and, when `config.instance_id` is set, static membership — `group.instance.id`
/// `<instance_id>.<group_id>` (each group a process joins gets its own) and
/// `session.timeout.ms` from `config.session_timeout_ms`. An instance id the broker would
/// refuse, or `group.instance.id` written in `kafka.properties`, is an error naming the setting.
pub fn group_client_config(
    config: &KafkaConfig,
    group_id: &str,
) -> Result<ClientConfig, ConfigError> {
    if config.properties.contains_key("group.instance.id") {
        return Err(ConfigError::Invalid(
            "kafka.properties.\"group.instance.id\" is not accepted: set kafka.instance_id \
             (or HUSH_INSTANCE_ID), which gives each consumer group its own instance id"
                .into(),
        ));
    }
    let mut client = client_config(config)?;
    client.set("group.id", group_id);
    if let Some(instance) = config.instance_id.as_deref().filter(|i| !i.is_empty()) {
        let member = format!("{instance}.{group_id}");
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if member.len() > MAX_INSTANCE_ID_LEN || !member.chars().all(legal) {
            return Err(ConfigError::Invalid(format!(
                "kafka.instance_id {instance:?} with consumer group {group_id:?} makes \
                 group.instance.id {member:?}, which Kafka refuses: at most \
                 {MAX_INSTANCE_ID_LEN} characters of ASCII letters, digits, '.', '_' and '-'"
            )));
        }
        client.set("group.instance.id", member);
        client.set("session.timeout.ms", config.session_timeout_ms.to_string());
    }
    Ok(client)
}

/// A client context that logs librdkafka's client-wide errors (credentials refused, a failed
/// TLS handshake, a broker unreachable) and keeps the last one that names a cause, so that an
/// operation that then times out can say why. "All brokers are down" names no cause: it is kept
/// only until a cause is known. With statistics enabled, it also gives the client its bootstrap
/// servers back when it has forgotten every broker ([`BootstrapRestorer`]). Cheap to clone;
/// clones share the record.
#[derive(Clone, Default)]
pub(crate) struct BrokerErrorContext {
    last: Arc<Mutex<Option<(Instant, String, bool)>>>,
    restorer: Arc<BootstrapRestorer>,
}

impl ClientContext for BrokerErrorContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let _ = self.restorer.check(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!(%error, reason, "kafka client error");
        let names_cause = error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown);
        let mut last = self.last.lock().expect("broker error record poisoned");
        let keeps_cause = matches!(*last, Some((_, _, true)));
        if names_cause || !keeps_cause {
            *last = Some((Instant::now(), format!("{error}: {reason}"), names_cause));
        }
    }
}

/// A consumer with this context (a table reader) rebalances as librdkafka does by default.
impl rdkafka::consumer::ConsumerContext for BrokerErrorContext {}

impl BrokerErrorContext {
    /// Lets the context restore `client`'s bootstrap servers (see [`BootstrapRestorer`]).
    pub(crate) fn attach<C: ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        bootstrap_servers: &str,
    ) {
        self.restorer.attach(client, bootstrap_servers);
    }

    /// The last client-wide error librdkafka reported (one that names a cause, if any did) and
    /// how long ago.
    pub(crate) fn last_error(&self) -> Option<(Duration, String)> {
        self.last
            .lock()
            .expect("broker error record poisoned")
            .as_ref()
            .map(|(at, error, _)| (at.elapsed(), error.clone()))
    }

    /// `failure`, followed by the last client-wide error when there is one (e.g. "Message timed
    /// out; last broker error 2.1 s ago: … SASL authentication error: …").
    pub(crate) fn explain(&self, failure: &str) -> String {
        match self.last_error() {
            Some((ago, error)) => {
                format!(
                    "{failure}; last broker error {:.1} s ago: {error}",
                    ago.as_secs_f64()
                )
            }
            None => failure.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretRef;

    #[test]
    fn a_password_written_in_the_file_is_refused_and_named() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("sasl.password".into(), "hunter2".into());
        let error = client_config(&config).unwrap_err().to_string();
        assert!(
            error.contains("kafka.properties.\"sasl.password\""),
            "{error}"
        );
        assert!(error.contains("secret_properties"), "{error}");
        assert!(!error.contains("hunter2"), "the secret leaked: {error}");
    }

    #[test]
    fn a_property_in_both_tables_is_refused() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("sasl.username".into(), "hush".into());
        config
            .secret_properties
            .insert("sasl.username".into(), SecretRef("HUSH_TEST_USER".into()));
        let error = client_config(&config).unwrap_err().to_string();
        assert!(error.contains("both"), "{error}");
    }

    #[test]
    fn a_secret_property_comes_from_its_variable() {
        let mut config = KafkaConfig::default();
        config.secret_properties.insert(
            "sasl.password".into(),
            SecretRef("HUSH_TEST_CLIENT_SASL_PASSWORD".into()),
        );
        std::env::set_var("HUSH_TEST_CLIENT_SASL_PASSWORD", "from-env");
        let client = client_config(&config).unwrap();
        assert_eq!(client.get("sasl.password"), Some("from-env"));
    }

    #[test]
    fn a_client_bootstraps_again_after_a_minute_without_metadata_unless_told_otherwise() {
        let key = "metadata.recovery.rebootstrap.trigger.ms";
        let client = client_config(&KafkaConfig::default()).unwrap();
        assert_eq!(client.get(key), Some("60000"));
        let mut config = KafkaConfig::default();
        config.properties.insert(key.into(), "120000".into());
        assert_eq!(client_config(&config).unwrap().get(key), Some("120000"));
    }

    #[test]
    fn without_an_instance_id_membership_is_dynamic() {
        let client = group_client_config(&KafkaConfig::default(), "hush-state").unwrap();
        assert_eq!(client.get("group.id"), Some("hush-state"));
        assert_eq!(client.get("group.instance.id"), None);
        assert_eq!(client.get("session.timeout.ms"), None);
    }

    #[test]
    fn an_instance_id_makes_a_static_member_per_group() {
        let config = KafkaConfig {
            instance_id: Some("hush-suppressor-hubspot-5d8f9-x2k4q".into()),
            session_timeout_ms: 20_000,
            ..KafkaConfig::default()
        };
        let requests = group_client_config(&config, "hush-suppressor-hubspot").unwrap();
        let retries = group_client_config(&config, "hush-suppressor-hubspot-retry").unwrap();
        assert_eq!(
            requests.get("group.instance.id"),
            Some("hush-suppressor-hubspot-5d8f9-x2k4q.hush-suppressor-hubspot")
        );
        assert_eq!(
            retries.get("group.instance.id"),
            Some("hush-suppressor-hubspot-5d8f9-x2k4q.hush-suppressor-hubspot-retry")
        );
        assert_eq!(requests.get("session.timeout.ms"), Some("20000"));
        assert_eq!(
            retries.get("group.id"),
            Some("hush-suppressor-hubspot-retry")
        );
    }

    #[test]
    fn an_instance_id_kafka_would_refuse_is_named() {
        let config = KafkaConfig {
            instance_id: Some("pod/one".into()),
            ..KafkaConfig::default()
        };
        let error = group_client_config(&config, "hush-state")
            .unwrap_err()
            .to_string();
        assert!(error.contains("kafka.instance_id \"pod/one\""), "{error}");
    }

    #[test]
    fn group_instance_id_in_the_properties_is_refused() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("group.instance.id".into(), "shared".into());
        let error = group_client_config(&config, "hush-state")
            .unwrap_err()
            .to_string();
        assert!(error.contains("kafka.instance_id"), "{error}");
    }

    #[test]
    fn all_brokers_down_does_not_hide_the_cause() {
        let context = BrokerErrorContext::default();
        let down = || {
            context.error(
                KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down",
            )
        };
        down();
        assert!(context
            .explain("timed out")
            .ends_with("1/1 brokers are down"));
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        down();
        assert!(
            context
                .explain("timed out")
                .ends_with("SASL authentication error: invalid credentials"),
            "{}",
            context.explain("timed out")
        );
    }

    #[test]
    fn a_timeout_is_explained_by_the_last_broker_error() {
        let context = BrokerErrorContext::default();
        assert_eq!(context.explain("Message timed out"), "Message timed out");
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        let explained = context.explain("Message timed out");
        assert!(
            explained.starts_with("Message timed out; last broker error"),
            "{explained}"
        );
        assert!(
            explained.ends_with("SASL authentication error: invalid credentials"),
            "{explained}"
        );
    }
}
