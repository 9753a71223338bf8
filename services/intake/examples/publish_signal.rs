//! Publishes one privacy request to Hush over Kafka (`hush.signals.v1`), as an upstream system
//! written in Rust would: a `PrivacySignal` encoded through the schema registry.
//!
//! `cargo run -p hush-intake --example publish_signal -- <email> <source> <idempotency key>`
//! (`KAFKA_BOOTSTRAP_SERVERS`, `SCHEMA_REGISTRY_URL` and `HUSH_SIGNALS_TOPIC` override the local
//! defaults).

use hush_contracts::events::{IdentifierType, PrivacySignal, RequestKind, SignalIdentifier};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::KafkaConfig;
use hush_runtime::kafka::EventProducer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [email, source, key] = args.as_slice() else {
        anyhow::bail!("usage: publish_signal <email> <source> <idempotency key>");
    };
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let kafka = KafkaConfig {
        bootstrap_servers: env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        ..KafkaConfig::default()
    };
    let codec = AvroCodec::new(&env(
        "SCHEMA_REGISTRY_URL",
        "http://127.0.0.1:8081/apis/ccompat/v7",
    ));
    let topic = env("HUSH_SIGNALS_TOPIC", "hush.signals.v1");
    let signal = PrivacySignal {
        kind: RequestKind::OptOutSaleShare,
        identifiers: vec![SignalIdentifier {
            kind: IdentifierType::Email,
            value: Some(email.clone()),
            sha256: None,
        }],
        channel: None,
        jurisdiction: None,
        categories: vec![],
        verification: None,
        age_band: None,
        consumer_initiated: false,
        received_at: chrono::Utc::now().timestamp_millis(),
        source: source.clone(),
        idempotency_key: key.clone(),
    };
    let producer = EventProducer::new(&kafka, codec, "hush-signal-example")?;
    let delivered = producer
        .send(&topic, &format!("{source}:{key}"), &signal)
        .await?;
    println!(
        "published to {topic} partition {} offset {}",
        delivered.partition, delivered.offset
    );
    Ok(())
}
