//! One member of a consumer group in a process of its own, for tests that kill it with SIGKILL.
//!
//! Usage: `group_member TOPIC GROUP`, configured the way a service is, from the environment
//! (`KAFKA_BOOTSTRAP_SERVERS`, `SCHEMA_REGISTRY_URL`, `HUSH_INSTANCE_ID`,
//! `HUSH_KAFKA__SESSION_TIMEOUT_MS`, …). Runs Hush's [`EventConsumer`] on `TOPIC` with a handler
//! that accepts every message, and prints `assigned <held> of <total>` after every rebalance,
//! until killed.

use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{
    ConsumerSettings, DeadLetterQueue, EventConsumer, EventProducer, HandlerError, IncomingMessage,
    MessageHandler,
};
use std::io::Write;
use tokio_util::sync::CancellationToken;

/// Accepts every message.
struct Accept;

#[async_trait::async_trait]
impl MessageHandler for Accept {
    async fn handle(&self, _: &IncomingMessage) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [topic, group] = args.as_slice() else {
        anyhow::bail!("usage: group_member TOPIC GROUP");
    };
    let config: CommonConfig = hush_runtime::config::load(None)?;
    let kafka = config.kafka;
    let codec = AvroCodec::new(&config.schema_registry.url);
    let producer = EventProducer::new(&kafka, codec, "group-member")?;
    let dlq = DeadLetterQueue::new(producer, format!("{topic}.dlq"), "group-member");
    let consumer = EventConsumer::new(
        &kafka,
        ConsumerSettings {
            group_id: group.clone(),
            topics: vec![topic.clone()],
            client_id: "group-member".into(),
        },
        dlq,
    )?;
    let mut counts = consumer.partition_counts();
    tokio::spawn(async move {
        while counts.changed().await.is_ok() {
            let now = *counts.borrow_and_update();
            println!("assigned {} of {}", now.assigned, now.total);
            let _ = std::io::stdout().flush();
        }
    });
    consumer.run(CancellationToken::new(), Accept).await;
    Ok(())
}
