//! Kafka security that works: Hush's own producer, consumer and topic creation, configured the
//! way a user writes `[kafka]` in hush.toml (`security.protocol = "SASL_SSL"`,
//! `sasl.mechanism = "SCRAM-SHA-512"`, `ssl.ca.location`, the password from an environment
//! variable through `secret_properties`), against a broker whose only client listener is
//! `SASL_SSL` with a certificate this test makes. A wrong password and an untrusted broker
//! certificate are refused, each with an error that says so.
//!
//! The broker is started by testcontainers (see `hush_tests::secure_kafka`), once for this
//! binary; it needs a Docker engine (`deploy/testcontainers/images up`, which `make test` runs).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, TopicsConfig};
use hush_runtime::kafka::{
    ConsumerSettings, DeadLetterQueue, EventConsumer, EventProducer, HandlerError, IncomingMessage,
    MessageHandler, ProduceError,
};
use hush_runtime::topics::{ensure_topics, TopicOutcome, TopicSpec};
use hush_tests::secure_kafka::{BrokerTls, SaslSslBroker, ScramUser};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rdkafka::message::OwnedHeaders;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const USER: &str = "hush";
/// Environment variables the configurations name in `secret_properties`.
const PASSWORD_VAR: &str = "HUSH_IT_KAFKA_SASL_PASSWORD";
const WRONG_PASSWORD_VAR: &str = "HUSH_IT_KAFKA_WRONG_SASL_PASSWORD";
const WRONG_PASSWORD: &str = "not-the-password";

/// A certificate authority made for this run.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        TestCa {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A server certificate for 127.0.0.1 and localhost (librdkafka checks the host name).
    fn broker_tls(&self) -> BrokerTls {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".into()])
            .expect("broker params");
        params
            .distinguished_name
            .push(DnType::CommonName, "hush-test-broker");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("broker key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("broker certificate");
        BrokerTls {
            certificate_chain: certificate.pem(),
            private_key: key.serialize_pem(),
            ca_certificate: self.pem.clone(),
        }
    }
}

/// The broker of this binary, and the files its clients read.
struct Fixture {
    broker: SaslSslBroker,
    /// PEM of the CA that signed the broker's certificate.
    trusted_ca: PathBuf,
    /// PEM of a CA that did not.
    other_ca: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let ca = TestCa::new("Hush test CA");
        let dir = std::env::temp_dir().join(format!("hush-kafka-security-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        remove_after_exit(&dir);
        let trusted_ca = dir.join("ca.pem");
        std::fs::write(&trusted_ca, &ca.pem).expect("CA file");
        let other_ca = dir.join("other-ca.pem");
        std::fs::write(&other_ca, TestCa::new("Some other CA").pem).expect("other CA file");
        let user = ScramUser {
            name: USER.to_owned(),
            password: password.clone(),
        };
        let broker = SaslSslBroker::start("kafka-security", &ca.broker_tls(), &user)
            .unwrap_or_else(|e| panic!("{e:#}"));
        std::env::set_var(PASSWORD_VAR, &password);
        std::env::set_var(WRONG_PASSWORD_VAR, WRONG_PASSWORD);
        Fixture {
            broker,
            trusted_ca,
            other_ca,
        }
    })
}

/// Removes `dir` once this process has exited (the fixture lives in a `static`, never dropped).
fn remove_after_exit(dir: &std::path::Path) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; rm -rf '{}'",
        std::process::id(),
        dir.display()
    );
    let spawned = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(error) = spawned {
        eprintln!(
            "{} stays behind: no cleanup process ({error})",
            dir.display()
        );
    }
}

/// Hush's configuration as a user writes it in hush.toml (parsed as the services parse the
/// file; the environment's `KAFKA_BOOTSTRAP_SERVERS`, which names the plaintext test broker,
/// is deliberately not layered on top).
fn hush_config(bootstrap: &str, ca: &std::path::Path, password_var: &str) -> CommonConfig {
    let toml = format!(
        r#"
        [kafka]
        bootstrap_servers = "{bootstrap}"
        message_timeout_ms = 8000

        [kafka.properties]
        "security.protocol" = "SASL_SSL"
        "sasl.mechanism" = "SCRAM-SHA-512"
        "sasl.username" = "{USER}"
        "ssl.ca.location" = "{ca}"

        [kafka.secret_properties]
        "sasl.password" = "{password_var}"
        "#,
        ca = ca.display(),
    );
    toml::from_str(&toml).expect("the documented [kafka] block parses")
}

fn topics(test: &str) -> TopicsConfig {
    let suffix = uuid::Uuid::new_v4().simple();
    TopicsConfig {
        dlq: format!("it.secure.dlq.{test}.{suffix}"),
        partitions: 1,
        replication_factor: 1,
        ..TopicsConfig::default()
    }
}

/// Forwards every message to the test.
struct Forward(mpsc::UnboundedSender<IncomingMessage>);

#[async_trait]
impl MessageHandler for Forward {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let _ = self.0.send(message.clone());
        Ok(())
    }
}

fn producer(config: &CommonConfig) -> EventProducer {
    // The registry is not part of this test: events go out as bytes, never encoded.
    let codec = AvroCodec::from_config(&config.schema_registry).expect("codec");
    EventProducer::new(&config.kafka, codec, "hush-it-kafka-security").expect("producer")
}

#[tokio::test]
async fn hush_round_trips_an_event_over_sasl_ssl_with_scram_sha_512() {
    let fixture = fixture();
    let config = hush_config(&fixture.broker.bootstrap, &fixture.trusted_ca, PASSWORD_VAR);
    let topics = topics("round-trip");
    let topic = format!("it.secure.events.{}", uuid::Uuid::new_v4().simple());
    let created = ensure_topics(
        &config.kafka,
        &topics,
        &[
            TopicSpec {
                name: topic.clone(),
                config: vec![],
            },
            TopicSpec {
                name: topics.dlq.clone(),
                config: vec![],
            },
        ],
    )
    .await
    .expect("topics created over SASL_SSL");
    assert!(
        created.contains(&TopicOutcome::Created(topic.clone())),
        "{created:?}"
    );

    let producer = producer(&config);
    let payload = b"synthetic event, no personal data".to_vec();
    let delivered = producer
        .send_bytes(&topic, Some(b"subject-key"), &payload, OwnedHeaders::new())
        .await
        .expect("acknowledged over SASL_SSL");

    let consumer = EventConsumer::new(
        &config.kafka,
        ConsumerSettings {
            group_id: format!("it-secure-{}", uuid::Uuid::new_v4().simple()),
            topics: vec![topic.clone()],
            client_id: "hush-it-kafka-security".into(),
        },
        DeadLetterQueue::new(producer.clone(), topics.dlq.clone(), "hush-it"),
    )
    .expect("consumer");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let running = tokio::spawn(consumer.run(stop.clone(), Forward(tx)));
    let received = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("consumed within 30 s over SASL_SSL")
        .expect("consumer running");
    stop.cancel();
    running.await.expect("consumer stopped");

    assert_eq!(received.topic, topic);
    assert_eq!(received.offset, delivered.offset);
    assert_eq!(received.key.as_deref(), Some(&b"subject-key"[..]));
    assert_eq!(received.payload.as_deref(), Some(&payload[..]));
}

/// The reason a produce with `config` was refused.
async fn refusal(config: &CommonConfig) -> String {
    let producer = producer(config);
    let error = producer
        .send_bytes(
            "it.secure.never-created",
            None,
            b"never delivered",
            OwnedHeaders::new(),
        )
        .await
        .expect_err("the broker must refuse this client");
    assert!(
        matches!(error, ProduceError::NotAcknowledged { .. }),
        "{error}"
    );
    // Shown with --nocapture: what an operator reads in the log.
    println!("refused as expected: {error}");
    error.to_string()
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_an_authentication_error() {
    let fixture = fixture();
    let config = hush_config(
        &fixture.broker.bootstrap,
        &fixture.trusted_ca,
        WRONG_PASSWORD_VAR,
    );
    let error = refusal(&config).await;
    assert!(
        error.contains("SASL authentication error")
            && error.contains("invalid credentials")
            && error.contains("SCRAM-SHA-512"),
        "the error does not say the credentials were refused: {error}"
    );
    assert!(
        !error.contains(WRONG_PASSWORD),
        "the password leaked: {error}"
    );
}

#[tokio::test]
async fn a_broker_certificate_from_another_ca_is_refused_with_a_tls_error() {
    let fixture = fixture();
    let config = hush_config(&fixture.broker.bootstrap, &fixture.other_ca, PASSWORD_VAR);
    let error = refusal(&config).await;
    assert!(
        error.contains("SSL handshake failed") && error.contains("certificate verify failed"),
        "the error does not say the certificate was not trusted: {error}"
    );
}
