//! A Kafka broker that clients reach only over `SASL_SSL` with SCRAM-SHA-512, started by the
//! `testcontainers` crate from the same image as [`crate::containers`] (`hush-test/kafka`,
//! whose entry point creates the SCRAM users named in `SCRAM_CREDENTIALS` when it formats the
//! log directory). The broker's certificate and key are handed over as PEM text
//! (`ssl.keystore.type=PEM`), so nothing is mounted. Brokers talk to each other over the same
//! `SASL_SSL` listener; only the KRaft controller listener is plaintext, on loopback.

use std::time::{Duration, Instant};

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::containers::{
    announce, block_on, connect, engine, free_port, reap_after_exit, split_image,
    DEFAULT_KAFKA_IMAGE,
};

/// The broker's TLS material, PEM-encoded.
#[derive(Debug, Clone)]
pub struct BrokerTls {
    /// The broker's certificate followed by any intermediates.
    pub certificate_chain: String,
    /// The broker's private key, unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: String,
    /// The CA certificate the broker trusts when it connects to itself as a client.
    pub ca_certificate: String,
}

/// A SCRAM-SHA-512 user the broker is formatted with.
#[derive(Debug, Clone)]
pub struct ScramUser {
    /// User name.
    pub name: String,
    /// Password (no `,`, `]` or `"`: it is written into the broker's settings as is).
    pub password: String,
}

/// A running broker with one `SASL_SSL` listener on a free loopback port.
pub struct SaslSslBroker {
    /// `127.0.0.1:<port>` of the `SASL_SSL` listener.
    pub bootstrap: String,
    /// Image the broker runs.
    pub image: String,
    container: Option<ContainerAsync<GenericImage>>,
}

impl std::fmt::Debug for SaslSslBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSslBroker")
            .field("bootstrap", &self.bootstrap)
            .field("image", &self.image)
            .finish()
    }
}

/// A PEM document as one properties-file line: Java's `Properties` reads `\n` back as a line
/// break, and the image's entry point copies each `KAFKA_*` variable onto one line.
fn one_line(pem: &str) -> String {
    pem.trim_end().replace("\r\n", "\n").replace('\n', "\\n")
}

impl SaslSslBroker {
    /// Starts the broker (image `HUSH_KAFKA_IMAGE`, default [`DEFAULT_KAFKA_IMAGE`]) with
    /// `tls` and `user`, and waits until it has started. The container is removed when this
    /// value is dropped, or after the test process exits when it lives in a `static`.
    pub fn start(label: &str, tls: &BrokerTls, user: &ScramUser) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !user.password.contains([',', ']', '"', '\n']),
            "the SCRAM password must not contain , ] \" or a line break"
        );
        let engine = engine().ok_or_else(|| {
            anyhow::anyhow!(
                "the SASL_SSL broker runs in a container and no Docker engine answers: run \
                 `deploy/testcontainers/images up` (or `make test`)"
            )
        })?;
        connect(&engine);
        let (label, tls, user) = (label.to_owned(), tls.clone(), user.clone());
        let broker = block_on(async move { Self::start_async(&label, &tls, &user).await })?;
        if let Some(socket) = &engine.socket {
            reap_after_exit(socket, &[broker.container_id()]);
        }
        Ok(broker)
    }

    async fn start_async(label: &str, tls: &BrokerTls, user: &ScramUser) -> anyhow::Result<Self> {
        let started = Instant::now();
        let image =
            std::env::var("HUSH_KAFKA_IMAGE").unwrap_or_else(|_| DEFAULT_KAFKA_IMAGE.to_owned());
        let (port, controller) = (free_port(), free_port());
        let pid = std::process::id().to_string();
        let (name, tag) = split_image(&image);
        let jaas = format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"{}\" password=\"{}\";",
            user.name, user.password
        );
        let mut broker = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_either_std("Kafka Server started"))
            .with_network("host")
            .with_container_name(format!("hush-it-{label}-kafka-sasl-ssl-{pid}-{port}"))
            .with_label("hush.test.pid", pid.clone())
            .with_startup_timeout(Duration::from_secs(180));
        for (key, value) in [
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw".to_owned()),
            (
                "SCRAM_CREDENTIALS",
                format!(
                    "SCRAM-SHA-512=[name={},password={}]",
                    user.name, user.password
                ),
            ),
            ("KAFKA_NODE_ID", "1".to_owned()),
            ("KAFKA_PROCESS_ROLES", "broker,controller".to_owned()),
            (
                "KAFKA_LISTENERS",
                format!("SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                format!("SASL_SSL://127.0.0.1:{port}"),
            ),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".to_owned()),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL".to_owned(),
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "SASL_SSL".to_owned()),
            (
                "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL",
                "SCRAM-SHA-512".to_owned(),
            ),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-512".to_owned()),
            // listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config
            (
                "KAFKA_LISTENER_NAME_SASL__SSL_SCRAM___SHA___512_SASL_JAAS_CONFIG",
                jaas,
            ),
            ("KAFKA_SSL_KEYSTORE_TYPE", "PEM".to_owned()),
            (
                "KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN",
                one_line(&tls.certificate_chain),
            ),
            ("KAFKA_SSL_KEYSTORE_KEY", one_line(&tls.private_key)),
            ("KAFKA_SSL_TRUSTSTORE_TYPE", "PEM".to_owned()),
            (
                "KAFKA_SSL_TRUSTSTORE_CERTIFICATES",
                one_line(&tls.ca_certificate),
            ),
            (
                "KAFKA_CONTROLLER_QUORUM_VOTERS",
                format!("1@127.0.0.1:{controller}"),
            ),
            ("KAFKA_NUM_PARTITIONS", "1".to_owned()),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".to_owned()),
            ("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "1".to_owned()),
            (
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "1".to_owned(),
            ),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".to_owned()),
            (
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                "1".to_owned(),
            ),
            (
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
                "1".to_owned(),
            ),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".to_owned()),
            ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false".to_owned()),
            ("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m".to_owned()),
        ] {
            broker = broker.with_env_var(key, value);
        }
        let container = broker
            .start()
            .await
            .map_err(|e| anyhow::anyhow!("the SASL_SSL broker did not start: {e}"))?;
        let broker = SaslSslBroker {
            bootstrap: format!("127.0.0.1:{port}"),
            image,
            container: Some(container),
        };
        announce(&format!(
            "started the SASL_SSL broker {} (container {}) on {} in {:.1} s",
            broker.image,
            &broker.container_id()[..12],
            broker.bootstrap,
            started.elapsed().as_secs_f64()
        ));
        Ok(broker)
    }

    /// Docker id of the broker container.
    pub fn container_id(&self) -> &str {
        self.container.as_ref().map(|c| c.id()).unwrap_or_default()
    }
}

impl Drop for SaslSslBroker {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            block_on(async move {
                let _ = container.rm().await;
            });
        }
    }
}
