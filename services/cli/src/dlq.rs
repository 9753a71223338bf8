//! `hush dlq`: list dead letters and replay them to the topic they came from, once their cause
//! is fixed.

use std::time::Duration;

use clap::{Args, Subcommand};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{
    EventProducer, TopicTable, DLQ_REASON_HEADER, DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER, DLQ_SOURCE_TOPIC_HEADER,
};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::message::{Header, OwnedHeaders};

/// Dead-letter commands.
#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead letters with their reason and origin.
    List(Filter),
    /// Re-publish dead letters to their source topic (headers kept, dead-letter headers dropped).
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Show what would be replayed without publishing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters a command applies to.
#[derive(Args)]
pub struct Filter {
    /// Only letters from this source topic.
    #[arg(long)]
    source_topic: Option<String>,
    /// Only letters whose reason contains this text.
    #[arg(long)]
    reason_contains: Option<String>,
}

/// One dead letter as read from the topic.
struct Letter {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    offset: i64,
    partition: i32,
}

impl Letter {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    fn matches(&self, filter: &Filter) -> bool {
        filter
            .source_topic
            .as_ref()
            .is_none_or(|t| self.header(DLQ_SOURCE_TOPIC_HEADER).as_deref() == Some(t.as_str()))
            && filter.reason_contains.as_ref().is_none_or(|text| {
                self.header(DLQ_REASON_HEADER)
                    .is_some_and(|reason| reason.contains(text.as_str()))
            })
    }
}

/// Runs a dead-letter command.
pub async fn run(command: DlqCommand, config: &CommonConfig) -> anyhow::Result<()> {
    let (filter, replay, dry_run) = match command {
        DlqCommand::List(filter) => (filter, false, true),
        DlqCommand::Replay { filter, dry_run } => (filter, true, dry_run),
    };
    let letters = read_letters(config).await?;
    let selected: Vec<&Letter> = letters.iter().filter(|l| l.matches(&filter)).collect();
    if !replay || dry_run {
        for letter in &selected {
            println!(
                "{}:{}  from {}[{}]@{}  reason: {}",
                letter.partition,
                letter.offset,
                letter.header(DLQ_SOURCE_TOPIC_HEADER).unwrap_or_default(),
                letter
                    .header(DLQ_SOURCE_PARTITION_HEADER)
                    .unwrap_or_default(),
                letter.header(DLQ_SOURCE_OFFSET_HEADER).unwrap_or_default(),
                letter.header(DLQ_REASON_HEADER).unwrap_or_default()
            );
        }
        println!(
            "{} of {} dead letters selected",
            selected.len(),
            letters.len()
        );
        return Ok(());
    }
    let producer = EventProducer::new(
        &config.kafka,
        AvroCodec::from_config(&config.schema_registry)?,
        "hush-cli-dlq-replay",
    )?;
    let bar = ProgressBar::new(selected.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("replaying [{bar:40}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    for letter in selected.iter() {
        let Some(topic) = letter.header(DLQ_SOURCE_TOPIC_HEADER) else {
            bar.println(format!(
                "skipping {}:{}: no source topic header",
                letter.partition, letter.offset
            ));
            continue;
        };
        let mut headers = OwnedHeaders::new();
        for (name, value) in letter
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("hush.dlq."))
        {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_slice()),
            });
        }
        producer
            .send_bytes(&topic, letter.key.as_deref(), &letter.payload, headers)
            .await?;
        bar.inc(1);
    }
    bar.finish_with_message("done");
    println!(
        "replayed {} dead letters; they stay in {} as the record of what failed",
        selected.len(),
        config.topics.dlq
    );
    Ok(())
}

async fn read_letters(config: &CommonConfig) -> anyhow::Result<Vec<Letter>> {
    let table = TopicTable::new(&config.kafka, &config.topics.dlq, "hush-cli-dlq")?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!("reading {}", config.topics.dlq));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let mut letters = Vec::new();
    table
        .catch_up(|message| {
            letters.push(Letter {
                key: message.key,
                payload: message.payload.unwrap_or_default(),
                headers: message.headers,
                offset: message.offset,
                partition: message.partition,
            });
            spinner.set_message(format!("read {} dead letters", letters.len()));
            std::future::ready(())
        })
        .await?;
    spinner.finish_and_clear();
    Ok(letters)
}
