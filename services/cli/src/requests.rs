//! `hush submit`, `hush status`, `hush evidence`, `hush report`: talk to intake and the auditor.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::http::send_json;

/// Where intake and the auditor listen.
#[derive(Args, Clone)]
pub struct Endpoints {
    /// Intake base URL.
    #[arg(
        long,
        global = true,
        env = "HUSH_INTAKE_URL",
        default_value = "http://127.0.0.1:8070"
    )]
    pub intake_url: String,
    /// Auditor base URL.
    #[arg(
        long,
        global = true,
        env = "HUSH_AUDITOR_URL",
        default_value = "http://127.0.0.1:8071"
    )]
    pub auditor_url: String,
    /// API key sent as `Authorization: Bearer` to intake and the auditor (read it from the
    /// environment rather than typing it).
    #[arg(long, global = true, env = "HUSH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl Endpoints {
    /// An HTTP client sending the API key, when one is given.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.api_key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .context("HUSH_API_KEY is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .build()?)
    }
}

/// `hush submit`.
#[derive(Args)]
pub struct Submit {
    /// Request kind.
    #[arg(long, value_enum, default_value = "opt-out-sale-share")]
    kind: Kind,
    /// Email of the consumer.
    #[arg(long)]
    email: Option<String>,
    /// Phone of the consumer.
    #[arg(long)]
    phone: Option<String>,
    /// Customer id of the consumer.
    #[arg(long)]
    customer_id: Option<String>,
    /// Device id of the consumer.
    #[arg(long)]
    device_id: Option<String>,
    /// ISO 3166-2 jurisdiction.
    #[arg(long, default_value = "US-CA")]
    jurisdiction: String,
    /// Channel the request came through.
    #[arg(long, default_value = "API")]
    channel: String,
    /// The identity system's signed attestation that it verified the consumer (a JWT; required
    /// for a delete and an opt-in). `hush attest` makes one from a test key.
    #[arg(long, env = "HUSH_ATTESTATION", hide_env_values = true)]
    attestation: Option<String>,
    /// Idempotency key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Send a complete JSON request body from a file instead of the flags.
    #[arg(long, conflicts_with_all = ["email", "phone", "customer_id", "device_id"])]
    file: Option<PathBuf>,
    /// Wait until the auditor shows the request complete, showing progress.
    #[arg(long)]
    wait: bool,
    /// Longest wait with --wait, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    OptOutSaleShare,
    LimitSensitive,
    Delete,
    OptInSaleShare,
}

impl Kind {
    fn symbol(self) -> &'static str {
        match self {
            Kind::OptOutSaleShare => "OPT_OUT_SALE_SHARE",
            Kind::LimitSensitive => "LIMIT_SENSITIVE",
            Kind::Delete => "DELETE",
            Kind::OptInSaleShare => "OPT_IN_SALE_SHARE",
        }
    }
}

/// Submits a request to intake and prints its receipt.
pub async fn submit(args: Submit, endpoints: &Endpoints) -> anyhow::Result<()> {
    let body = match &args.file {
        Some(path) => serde_json::from_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", path.display()))?,
        None => body_from_flags(&args)?,
    };
    let client = endpoints.client()?;
    let accepted = send_json(
        client
            .post(format!("{}/v1/requests", endpoints.intake_url))
            .json(&body),
        "submit",
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&accepted)?);
    if args.wait {
        let id = accepted["request_id"]
            .as_str()
            .context("intake answered without a request_id")?;
        let record =
            wait_complete(&client, endpoints, id, Duration::from_secs(args.timeout)).await?;
        print_status(&record);
    }
    Ok(())
}

fn body_from_flags(args: &Submit) -> anyhow::Result<Value> {
    let mut identifiers = Vec::new();
    for (kind, value) in [
        ("EMAIL", &args.email),
        ("PHONE", &args.phone),
        ("CUSTOMER_ID", &args.customer_id),
        ("DEVICE_ID", &args.device_id),
    ] {
        if let Some(value) = value {
            identifiers.push(json!({ "type": kind, "value": value }));
        }
    }
    anyhow::ensure!(
        !identifiers.is_empty(),
        "give at least one identifier: --email, --phone, --customer-id or --device-id"
    );
    let mut body = json!({
        "kind": args.kind.symbol(),
        "jurisdiction": args.jurisdiction,
        "channel": args.channel,
        "identifiers": identifiers,
        "consumer_initiated": true,
    });
    if let Some(attestation) = &args.attestation {
        body["verification"] = json!({ "attestation": attestation });
    }
    if let Some(key) = &args.idempotency_key {
        body["idempotency_key"] = json!(key);
    }
    Ok(body)
}

/// Polls the auditor until every required connector confirmed, with a progress bar.
async fn wait_complete(
    client: &reqwest::Client,
    endpoints: &Endpoints,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} connectors")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("waiting for {id}"));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let response = client
            .get(format!("{}/v1/requests/{id}", endpoints.auditor_url))
            .send()
            .await;
        if let Ok(response) = response {
            if response.status().is_success() {
                let record: Value = response.json().await.map_err(reqwest::Error::without_url)?;
                let required = record["required_connectors"].as_array().map_or(0, Vec::len) as u64;
                let missing = record["missing_connectors"].as_array().map_or(0, Vec::len) as u64;
                bar.set_length(required.max(1));
                bar.set_position(required.saturating_sub(missing));
                if required > 0 && missing == 0 || record["status"] == "DENIED" {
                    bar.finish_and_clear();
                    return Ok(record);
                }
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "request {id} not complete after {} s (see `hush status {id}`)",
            timeout.as_secs()
        );
        bar.tick();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Fetches the auditor's record of one request.
pub async fn record(endpoints: &Endpoints, id: &str) -> anyhow::Result<Value> {
    send_json(
        endpoints
            .client()?
            .get(format!("{}/v1/requests/{id}", endpoints.auditor_url)),
        "status",
    )
    .await
}

/// Re-drives one recipient of one request after its permanent failure was fixed
/// (`POST /v1/requests/{id}/recipients/{connector}/retry` on the auditor).
pub async fn retry(endpoints: &Endpoints, id: &str, connector: &str) -> anyhow::Result<Value> {
    send_json(
        endpoints
            .client()?
            .post(format!(
                "{}/v1/requests/{id}/recipients/{connector}/retry",
                endpoints.auditor_url
            ))
            .json(&json!({})),
        "retry",
    )
    .await
}

/// One line per identity resolution step of `record`: the resolver, its outcome and the types
/// of the identifiers it added (the auditor never answers their values).
fn resolution_lines(record: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    record["resolution"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| {
            let types: Vec<String> = step["identifier_types"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            let mut line = format!(
                "resolution: {} {}",
                text(&step["resolver"]),
                text(&step["outcome"])
            );
            if !types.is_empty() {
                line.push_str(&format!(", added {}", types.join(", ")));
            }
            if let Some(reason) = step["reason"].as_str() {
                line.push_str(&format!(" ({reason})"));
            }
            line
        })
        .collect()
}

/// Prints a one-screen summary of an audit record.
pub fn print_status(record: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "request {}  {}  status {}",
        text(&record["request_id"]),
        text(&record["kind"]),
        text(&record["status"])
    );
    println!(
        "received {}  deadline {}  completed {}",
        text(&record["received_at"]),
        text(&record["deadline"]),
        text(&record["completed_at"])
    );
    if let Some(rule) = record["deadline_rule"].as_str() {
        println!("deadline rule: {rule}");
    }
    for line in resolution_lines(record) {
        println!("{line}");
    }
    println!(
        "{:<22} {:<17} {:<25} {:<13} {:>8}  evidence",
        "connector", "role", "action", "verification", "attempts"
    );
    for outcome in record["connectors"].as_array().into_iter().flatten() {
        println!(
            "{:<22} {:<17} {:<25} {:<13} {:>8}  {}",
            text(&outcome["connector_id"]),
            text(&outcome["role"]),
            text(&outcome["action"]),
            text(&outcome["verification"]),
            outcome["attempts"],
            evidence_summary(&outcome["evidence"])
        );
    }
    for missing in record["missing_connectors"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!("{:<22} (no confirmation yet)", text(missing));
    }
    for leak in record["leak_evidence"].as_array().into_iter().flatten() {
        println!(
            "LEAK on {} partition {} offset {}: {} sent {} ms after the suppression ({})",
            text(&leak["source_topic"]),
            leak["source_partition"],
            leak["source_offset"],
            text(&leak["identifier_type"]),
            leak["ms_after_suppression"],
            text(&leak["action_taken"])
        );
    }
    if let Some(streams) = record["proof"]["streams"].as_array() {
        println!(
            "proven: no watched stream carried the subject from {} to {} (epoch ms)",
            record["proof"]["window_start"], record["proof"]["window_end"]
        );
        for stream in streams {
            println!(
                "  {} examined {} records up to offsets {}",
                text(&stream["topic"]),
                stream["records_examined"],
                stream["offsets"]
            );
        }
    }
}

/// A one-line digest of an evidence map: its first entries, shortened.
fn evidence_summary(evidence: &Value) -> String {
    const WIDTH: usize = 90;
    let line = evidence
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(key, _)| key.as_str() != "connector_kind")
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    match line.char_indices().nth(WIDTH) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The evidence bundle of one request: the auditor's full record, when and where it was taken,
/// and a SHA-256 digest of the record so the bundle can be checked later.
pub async fn evidence(endpoints: &Endpoints, id: &str) -> anyhow::Result<Value> {
    use sha2::{Digest, Sha256};
    let record = record(endpoints, id).await?;
    let canonical = serde_json::to_vec(&record)?;
    Ok(json!({
        "bundle": "hush.evidence.v1",
        "generated_at": chrono::Utc::now().to_rfc3339(),
        "source": format!("{}/v1/requests/{id}", endpoints.auditor_url),
        "record_sha256": hex::encode(Sha256::digest(&canonical)),
        "record": record,
    }))
}

/// `hush report`.
#[derive(Args)]
pub struct Report {
    /// First day (YYYY-MM-DD); default January 1 of this year.
    #[arg(long)]
    from: Option<String>,
    /// Last day (YYYY-MM-DD); default today.
    #[arg(long)]
    to: Option<String>,
    /// Print CSV instead of JSON.
    #[arg(long)]
    csv: bool,
}

/// Prints the 11 CCR 7102 metrics report.
pub async fn report(args: Report, endpoints: &Endpoints) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(from) = args.from {
        query.push(("from", from));
    }
    if let Some(to) = args.to {
        query.push(("to", to));
    }
    if args.csv {
        query.push(("format", "csv".into()));
    }
    let request = endpoints
        .client()?
        .get(format!("{}/v1/report", endpoints.auditor_url))
        .query(&query);
    let body = send_json(request, "report").await?;
    match body {
        Value::String(csv) => print!("{csv}"),
        json => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_steps_are_shown_by_resolver_outcome_and_identifier_type() {
        let record = json!({"resolution": [
            {"resolver": "customer-db", "outcome": "RESOLVED", "identifier_types": ["CUSTOMER_ID"],
             "resolved_at": "2026-12-01T20:00:00.000Z", "attempts": 1, "reason": null},
            {"resolver": "segment-profiles", "outcome": "SKIPPED", "identifier_types": [],
             "resolved_at": "2026-12-01T20:00:00.000Z", "attempts": 3, "reason": "HTTP 503"}
        ]});
        assert_eq!(
            resolution_lines(&record),
            [
                "resolution: customer-db RESOLVED, added CUSTOMER_ID",
                "resolution: segment-profiles SKIPPED (HTTP 503)"
            ]
        );
        assert!(resolution_lines(&json!({})).is_empty());
    }
}
