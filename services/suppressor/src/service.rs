//! Start-up of one connector's suppressor: rebuild what was confirmed, then consume requests
//! and the connector's retry topic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hush_contracts::crypto::FieldCipher;
use hush_contracts::recipients;
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{
    ConsumerSettings, DeadLetterQueue, EventConsumer, EventProducer, PartitionCounts,
    SUPPRESSOR_CLIENT_PREFIX,
};
use hush_runtime::ops::Readiness;
use hush_runtime::topics::{ensure_topics_waiting, TopicSpec};
use tokio_util::sync::CancellationToken;

use crate::apply::Applier;
use crate::clock::SystemClock;
use crate::config::{paced_calls, Config};
use crate::done;
use crate::handler::{SharedSuppressor, Suppressor};
use crate::record::KafkaRecord;
use crate::share;

/// Runs the suppressor of recipient `connector_id` until `shutdown`.
pub async fn run(
    config: &Config,
    connector_id: &str,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    recipients::validate(&config.recipients)?;
    let recipient = config
        .recipients
        .iter()
        .find(|r| r.id == connector_id)
        .cloned()
        .with_context(|| {
            let known: Vec<&str> = config.recipients.iter().map(|r| r.id.as_str()).collect();
            format!("no recipient with id `{connector_id}` in the configuration (configured: {known:?})")
        })?;
    let factory = hush_connectors::factory_for(&recipient)?;
    let connector = (factory.build)(&recipient)?;
    let cipher = match FieldCipher::from_env(&config.suppressor.encryption_key_env) {
        Ok(cipher) => Some(cipher),
        Err(error) => {
            tracing::warn!(%error, "raw identifier values cannot be decrypted; connectors that need them will fail those requests");
            None
        }
    };
    let common = &config.common;
    let retry = common.topics.retry_topic(&recipient.id);
    // The broker may be restarting: wait for it (not ready meanwhile) rather than exit.
    ensure_topics_waiting(
        &common.kafka,
        &common.topics,
        &[TopicSpec {
            name: retry.clone(),
            config: vec![("retention.ms", "2592000000")],
        }],
        &shutdown,
    )
    .await?;

    let codec = AvroCodec::from_config(&common.schema_registry)?;
    let client_id = format!("{SUPPRESSOR_CLIENT_PREFIX}{}", recipient.id);
    let producer = EventProducer::new(&common.kafka, codec.clone(), &client_id)?;
    let dlq = DeadLetterQueue::new(
        producer.clone(),
        common.topics.dlq.clone(),
        client_id.clone(),
    );

    let rebuilt = Arc::new(AtomicBool::new(false));
    readiness.require("confirmations rebuilt", rebuilt.clone());
    // Only the confirmations of the done-set's window are read (see `done`).
    let reader = done::Reader {
        kafka: &common.kafka,
        topic: &common.topics.confirmations,
        client_id: &client_id,
        codec: &codec,
    };
    let (done, _) = done::rebuild_until(&reader, &recipient.id, done::WINDOW, &shutdown).await?;
    let done = Arc::new(done);
    rebuilt.store(true, Ordering::SeqCst);

    let group = format!("{}-{}", config.suppressor.group_prefix, recipient.id);
    let section = config.suppressor.clone();
    let record = KafkaRecord {
        recipient_id: recipient.id.clone(),
        producer: producer.clone(),
        dlq: dlq.clone(),
        confirmations_topic: common.topics.confirmations.clone(),
        retry_topic: retry.clone(),
        done: done.clone(),
    };
    let applier = Applier::new(
        recipient.clone(),
        connector,
        factory.max_batch,
        section.clone(),
        record,
        SystemClock,
        shutdown.clone(),
    );
    // Enough messages per consumed batch to keep `concurrency` vendor calls busy.
    let batch = (applier.batch_limit() * section.concurrency.max(1)).min(10_000);
    let calls = paced_calls(
        batch,
        applier.batch_limit(),
        applier
            .connector
            .reads_back()
            .then(|| applier.connector.verify_batch_limit()),
    );
    // The recipient's input topics are the requests topic and its retry topic, each created
    // with the configured partition count; a replica holding one of them paces slowest.
    let limit = recipient.rate_limit_per_second;
    let configured_partitions = usize::try_from(common.topics.partitions.max(1)).unwrap_or(1);
    let slowest = share::replica_rate(
        limit,
        &[PartitionCounts::default(); 2],
        configured_partitions,
    );
    let pacer = applier.pacer();
    // Nothing is held before the first rebalance: start at the slowest pace, not the full limit.
    pacer.set_rate(slowest);
    let suppressor = SharedSuppressor(Arc::new(Suppressor {
        codec,
        cipher,
        done,
        applier,
    }));
    let linger = Duration::from_millis(section.linger_ms);
    // The handler holds a batch while it waits in place (bounded by `max_in_place_wait_ms`)
    // and calls the vendor; librdkafka's 5-minute default would let a slow vendor push the
    // consumer out of its group mid-batch, so the interval is sized from these settings.
    let max_poll_interval = section.max_poll_interval(&recipient, calls, slowest);
    let requests = EventConsumer::with_max_poll_interval(
        &common.kafka,
        ConsumerSettings {
            group_id: group.clone(),
            topics: vec![common.topics.requests.clone()],
            client_id: client_id.clone(),
        },
        dlq.clone(),
        max_poll_interval,
    )?;
    let retries = EventConsumer::with_max_poll_interval(
        &common.kafka,
        ConsumerSettings {
            group_id: format!("{group}-retry"),
            topics: vec![retry],
            client_id,
        },
        dlq,
        max_poll_interval,
    )?;
    readiness.require("requests consumer assigned", requests.assigned_flag());
    readiness.require("retry consumer assigned", retries.assigned_flag());
    readiness.require("requests consumer flowing", requests.flowing_flag());
    readiness.require("retry consumer flowing", retries.flowing_flag());
    // Every replica paces its calls at its share of the recipient's limit, re-computed after
    // each rebalance of either consumer, so the replicas together stay within it.
    let pacing = tokio::spawn(share::follow(
        pacer,
        recipient.id.clone(),
        limit,
        vec![requests.partition_counts(), retries.partition_counts()],
        configured_partitions,
        shutdown.clone(),
    ));
    readiness.started();
    let main =
        tokio::spawn(requests.run_batches(shutdown.clone(), batch, linger, suppressor.clone()));
    let retry = tokio::spawn(retries.run_batches(shutdown.clone(), batch, linger, suppressor));
    main.await?;
    retry.await?;
    pacing.await?;
    producer.flush(Duration::from_secs(10));
    Ok(())
}
