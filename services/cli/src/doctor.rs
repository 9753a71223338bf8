//! `hush doctor`: proves the broker and the registry work end to end by publishing one
//! synthetic request (no personal data) to a scratch topic and reading it back decoded.

use std::time::Duration;

use anyhow::Context;
use hush_contracts::events::{
    now_millis, Category, Channel, Identifier, IdentifierType, PrivacyRequest, RequestKind,
};
use hush_contracts::identifiers::sha256_hex;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::EventProducer;
use hush_runtime::topics::{ensure_topics, TopicSpec};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const SCRATCH_TOPIC: &str = "hush.doctor.v1";

/// Publishes a synthetic request and prints it as read back from the broker.
pub async fn run(config: &CommonConfig) -> anyhow::Result<()> {
    let mut scratch = config.topics.clone();
    scratch.partitions = 1;
    let spec = TopicSpec {
        name: SCRATCH_TOPIC.into(),
        config: vec![("retention.ms", "3600000")],
    };
    ensure_topics(&config.kafka, &scratch, &[spec])
        .await
        .context("creating the scratch topic (is Kafka running? `deploy/local/stack up`)")?;
    let codec = AvroCodec::from_config(&config.schema_registry)?;
    let producer = EventProducer::new(&config.kafka, codec.clone(), "hush-doctor")?;
    let subject = sha256_hex(&format!("doctor-{}", uuid::Uuid::new_v4()));
    let request = PrivacyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: subject.clone(),
        kind: RequestKind::OptOutSaleShare,
        channel: Channel::Api,
        jurisdiction: "US-CA".into(),
        received_at: now_millis(),
        identifiers: vec![Identifier {
            kind: IdentifierType::CookieId,
            sha256: subject.clone(),
            encrypted_value: None,
        }],
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "hush-doctor".into(),
        consumer_initiated: true,
        idempotency_key: None,
    };
    let delivered = producer
        .send(SCRATCH_TOPIC, &subject, &request)
        .await
        .context("publishing (is the schema registry running?)")?;
    println!(
        "published synthetic request {} to {SCRATCH_TOPIC} partition {} offset {}",
        request.request_id, delivered.partition, delivered.offset
    );

    let consumer: BaseConsumer = hush_runtime::kafka::client_config(&config.kafka)?
        .set("group.id", "hush-doctor")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(
        SCRATCH_TOPIC,
        delivered.partition,
        Offset::Offset(delivered.offset),
    )?;
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        let payload = message.payload().unwrap_or_default();
        let decoded: PrivacyRequest = codec.decode(payload).await?;
        anyhow::ensure!(
            decoded == request,
            "read back a different event than was published"
        );
        println!(
            "consumed and decoded it ({} bytes, schema id {}):",
            payload.len(),
            u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]])
        );
        println!("{}", serde_json::to_string_pretty(&decoded)?);
        println!(
            "kafka {} and schema registry {} work.",
            config.kafka.bootstrap_servers, config.schema_registry.url
        );
        return Ok(());
    }
    anyhow::bail!("published but could not read the event back within 15 s")
}
