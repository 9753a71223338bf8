//! librdkafka client settings built from [`KafkaConfig`].

use rdkafka::ClientConfig;

use crate::config::{ConfigError, KafkaConfig};

/// A client configuration with the bootstrap servers, extra properties and secret properties
/// (read from the environment) of `config`.
pub fn client_config(config: &KafkaConfig) -> Result<ClientConfig, ConfigError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    for (key, secret) in &config.secret_properties {
        let value = secret.resolve(&format!("kafka.secret_properties.{key}"))?;
        client.set(key, value);
    }
    Ok(client)
}
