//! Raw personal data never leaks. The whole pipeline (intake, state, every connector kind
//! against its simulator, the enrichment deny-list, the auditor) handles known raw emails,
//! phones and device and customer ids: an opt-out, a verified deletion, a GPC signal, and a
//! request that one vendor refuses permanently (echoing the email in its error, as Salesforce
//! echoes a query) while another answers 503 with the email until it goes through the retry
//! topic; an enrichment job also asks the deny-list about raw identifiers, and a submission
//! with an invalid phone is refused. Then every byte Hush wrote is scanned for each raw value
//! in any letter case, percent-encoded (once or twice), JSON-escaped or Base64-encoded:
//!
//! - every record of every topic of the pipeline: key, value and headers as raw bytes (the
//!   `encrypted_value` fields included: their ciphertext must not hold the plaintext either),
//!   and each Avro value decoded with its `encrypted_value` fields blanked;
//! - every log line any service emitted, captured at DEBUG in memory;
//! - the auditor's record and evidence of every request, its report and its dashboard, and
//!   the deny-list's statistics;
//! - the `/metrics` output (the Prometheus default registry every service in this process
//!   shares).
//!
//! Any hit fails the test, naming where it was found.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::Fault;
use hush_tests::auth::{operator_client, test_auth};
use hush_tests::pipeline::{free_addr, Options, Pipeline};
use hush_tests::RawRecord;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Every log line the process emits, kept in memory.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// The lines captured so far.
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the process's subscriber once: JSON lines at DEBUG for every target (the services'
/// own and their libraries', `log` records included), each with its spans' fields, into memory.
fn capture_logs() -> CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        tracing_subscriber::registry()
            .with(hush_runtime::telemetry::log_filter(
                tracing_subscriber::EnvFilter::new("debug"),
            ))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(logs.clone()),
            )
            .try_init()
            .expect("the leak scan's subscriber is the process's only one");
        logs
    })
    .clone()
}

/// One raw value the scan looks for, with a label that names it in a finding.
struct Secret {
    label: &'static str,
    /// Lower-cased forms searched for in lower-cased, decoded text.
    plain: Vec<String>,
    /// Base64 forms, searched for exactly.
    base64: Vec<String>,
}

impl Secret {
    /// `value` as submitted, plus `more` forms of it (normalised, digits only).
    fn new(label: &'static str, value: &str, more: &[&str]) -> Secret {
        let mut plain = BTreeSet::new();
        let mut base64 = BTreeSet::new();
        for form in std::iter::once(value).chain(more.iter().copied()) {
            plain.insert(form.to_lowercase());
            for variant in [form.to_owned(), form.to_lowercase(), form.to_uppercase()] {
                for engine in [
                    &base64::engine::general_purpose::STANDARD,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ] {
                    // Unpadded, so the form is found with or without its padding.
                    base64.insert(engine.encode(&variant).trim_end_matches('=').to_owned());
                }
            }
        }
        Secret {
            label,
            plain: plain.into_iter().collect(),
            base64: base64.into_iter().collect(),
        }
    }
}

/// `text` with `%XX` (any hex case) and JSON `\u00XX` escapes decoded, once.
fn decode_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |digits: &[u8]| {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| u8::from_str_radix(d, 16).ok())
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' && at + 3 <= bytes.len() {
            if let Some(byte) = hex(&bytes[at + 1..at + 3]) {
                out.push(byte);
                at += 3;
                continue;
            }
        }
        if bytes[at..].starts_with(b"\\u00") && at + 6 <= bytes.len() {
            if let Some(byte) = hex(&bytes[at + 4..at + 6]) {
                out.push(byte);
                at += 6;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Up to 80 characters of `text` either side of byte `at`.
fn excerpt(text: &str, at: usize, len: usize) -> String {
    let mut start = at.saturating_sub(80);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + len + 80).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[start..end].to_owned()
}

/// Each secret `text` holds in any form: its label and the text around it (decoded where it
/// was found decoded).
fn secrets_in<'a>(text: &str, secrets: &'a [Secret]) -> Vec<(&'a str, String)> {
    let once = decode_escapes(text);
    let twice = decode_escapes(&once);
    let readings = [
        text.to_lowercase(),
        once.to_lowercase(),
        twice.to_lowercase(),
    ];
    let mut found = Vec::new();
    for secret in secrets {
        let plain = secret.plain.iter().find_map(|form| {
            readings.iter().find_map(|reading| {
                reading
                    .find(form.as_str())
                    .map(|at| excerpt(reading, at, form.len()))
            })
        });
        let encoded = || {
            secret.base64.iter().find_map(|form| {
                text.find(form.as_str())
                    .map(|at| excerpt(text, at, form.len()))
            })
        };
        if let Some(context) = plain.or_else(encoded) {
            found.push((secret.label, context));
        }
    }
    found
}

/// Findings of one scan: where each raw value was found.
#[derive(Default)]
struct Scan {
    findings: Vec<String>,
    places: usize,
}

impl Scan {
    fn check(&mut self, place: impl Fn() -> String, text: &str, secrets: &[Secret]) {
        self.places += 1;
        for (label, context) in secrets_in(text, secrets) {
            self.findings
                .push(format!("{label} found in {}: …{context}…", place()));
        }
    }
}

/// Replaces every `encrypted_value` field (at any depth) by `null`.
fn blank_encrypted_values(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let mut blanked = 0;
            for (key, field) in map.iter_mut() {
                if key == "encrypted_value" {
                    if !field.is_null() {
                        *field = Value::Null;
                        blanked += 1;
                    }
                } else {
                    blanked += blank_encrypted_values(field);
                }
            }
            blanked
        }
        Value::Array(items) => items.iter_mut().map(blank_encrypted_values).sum(),
        _ => 0,
    }
}

/// Every topic of the pipeline (their names share the run's unique suffix) with the number of
/// records it holds.
fn pipeline_topics(bootstrap: &str, suffix: &str) -> Vec<(String, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("metadata client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut topics = Vec::new();
    for topic in metadata.topics() {
        if !topic.name().ends_with(suffix) && !topic.name().contains(&format!("{suffix}.")) {
            continue;
        }
        let mut count = 0;
        for partition in topic.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic.name(), partition.id(), Duration::from_secs(10))
                .expect("watermarks");
            count += usize::try_from(high - low).unwrap_or(0);
        }
        topics.push((topic.name().to_owned(), count));
    }
    topics.sort();
    topics
}

async fn get_text(url: &str) -> String {
    let response = operator_client().get(url).send().await.expect("reachable");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.text().await.expect("body")
}

fn outcome<'a>(record: &'a Value, connector: &str) -> Option<&'a Value> {
    record["connectors"]
        .as_array()?
        .iter()
        .find(|c| c["connector_id"] == connector)
}

#[test]
fn the_scan_finds_a_raw_value_in_every_form() {
    let secrets = [Secret::new(
        "email",
        "Ada+Leak@Scan.Example",
        &["ada+leak@scan.example"],
    )];
    let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ada+leak@scan.example");
    for text in [
        "contact ada+leak@scan.example not found",
        "EMAIL = 'ADA+LEAK@SCAN.EXAMPLE'",
        "q=ada%2Bleak%40scan.example",
        "q=ada%2bleak%40SCAN.example",
        "q=ada%252Bleak%2540scan.example",
        r#"{"e":"ada+leak\u0040scan.example"}"#,
        &format!("token {base64}"),
    ] {
        let found = secrets_in(text, &secrets);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        assert_eq!(found[0].0, "email");
    }
    for text in [
        "ada@scan.example",
        "leak@scan.example",
        "ada%2Bleak",
        "QWRh",
    ] {
        assert!(secrets_in(text, &secrets).is_empty(), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_raw_identifier_reaches_a_topic_a_log_line_evidence_or_metrics() {
    let logs = capture_logs();
    let postgres = hush_simulators::DemoPostgres {
        url: hush_simulators::postgres::local_postgres_url()
            .expect("the local PostgreSQL server (deploy/local/postgres up)"),
        schema: format!("hush_leakscan_{}", uuid::Uuid::new_v4().simple()),
    };
    let simulators = hush_simulators::start_all(None, &postgres)
        .await
        .expect("simulators");
    for var in &simulators.env {
        std::env::set_var(&var.name, &var.value);
    }
    let generated: toml::Table = toml::from_str(&simulators.config_toml).unwrap();
    let extra: Vec<RecipientConfig> = generated["recipients"]
        .clone()
        .try_into::<Vec<RecipientConfig>>()
        .unwrap()
        .into_iter()
        // The pipeline brings its own webhook and HubSpot recipients.
        .filter(|r| r.id != "partner-webhook" && r.id != "hubspot")
        .collect();
    assert!(extra.iter().any(|r| r.id == "salesforce"), "{extra:?}");
    let pipeline = Pipeline::start(
        "leak-scan",
        Options {
            extra_recipients: extra,
            with_denylist: true,
            timeout_ms: 5_000,
            ..Options::default()
        },
    )
    .await;

    // The raw values, as submitted and as intake normalises them.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let opt_out_email = format!("Ada.Lovelace+OptOut.{}@LeakScan.Example", &run[..8]);
    let delete_email = format!("Grace.Hopper+Delete.{}@LeakScan.Example", &run[..8]);
    let failing_email = format!("Katherine.Johnson+Refused.{}@LeakScan.Example", &run[..8]);
    let device = format!("device-leakscan-{run}");
    let customer = format!("cust-leakscan-{}", &run[..12]);
    let lead_email = format!("Lead.Unknown.{}@LeakScan.Example", &run[..8]);
    let rejected_email = format!("Rejected.{}@LeakScan.Example", &run[..8]);
    let secrets = [
        Secret::new("opt-out email", &opt_out_email, &[]),
        Secret::new(
            "opt-out phone",
            "+1 (415) 555-0142",
            &["+14155550142", "14155550142", "4155550142"],
        ),
        Secret::new("deleted email", &delete_email, &[]),
        Secret::new(
            "deleted phone",
            "+1 415 555 0143",
            &["+14155550143", "14155550143", "4155550143"],
        ),
        Secret::new("refused email", &failing_email, &[]),
        Secret::new(
            "refused phone",
            "+1-415-555-0144",
            &["+14155550144", "14155550144", "4155550144"],
        ),
        Secret::new("GPC device id", &device, &[]),
        Secret::new("GPC customer id", &customer, &[]),
        Secret::new("enrichment lead email", &lead_email, &[]),
        Secret::new("rejected submission email", &rejected_email, &[]),
    ];
    for email in [&opt_out_email, &delete_email, &failing_email] {
        pipeline.hubspot.add_contact(&email.to_lowercase());
        simulators
            .simulators
            .salesforce
            .add_contact(&email.to_lowercase(), true);
    }

    let submit = |body: Value| pipeline.submit(body);
    let (status, opt_out) = submit(json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [
            {"type": "EMAIL", "value": opt_out_email},
            {"type": "PHONE", "value": "+1 (415) 555-0142"}
        ]
    }))
    .await;
    assert_eq!(status, 202, "{opt_out}");
    let (status, delete) = submit(json!({
        "kind": "DELETE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [
            {"type": "EMAIL", "value": delete_email},
            {"type": "PHONE", "value": "+1 415 555 0143"}
        ],
        "verification": {"attestation": test_auth().attest_email(&delete_email, "EMAIL_LINK")}
    }))
    .await;
    assert_eq!(status, 202, "{delete}");
    let gpc = reqwest::Client::new()
        .post(format!("{}/v1/gpc", pipeline.intake_url))
        .header("Sec-GPC", "1")
        .json(&json!({"device_id": device, "customer_id": customer}))
        .send()
        .await
        .expect("intake reachable");
    assert_eq!(gpc.status().as_u16(), 202);
    let gpc: Value = gpc.json().await.unwrap();

    let mut request_ids: Vec<String> = [&opt_out, &delete, &gpc]
        .iter()
        .map(|answer| answer["request_id"].as_str().unwrap().to_owned())
        .collect();
    let every_connector = |record: &Value| {
        record["missing_connectors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && record["connectors"]
                .as_array()
                .is_some_and(|c| c.len() >= 9)
    };
    for id in &request_ids {
        pipeline
            .wait_record(id, Duration::from_secs(120), every_connector)
            .await;
    }

    // An enrichment job asks the deny-list about raw identifiers, and a submission with an
    // invalid phone is refused: neither may leave the values anywhere.
    let denylist = &pipeline
        .recipients
        .iter()
        .find(|r| r.id == "clearbit")
        .expect("the deny-list recipient")
        .base_url;
    let http = operator_client();
    let checked = http
        .post(format!("{denylist}/v1/check?vendor=clearbit"))
        .json(&json!({"identifiers": [{"type": "EMAIL", "value": opt_out_email}]}))
        .send()
        .await
        .expect("deny-list reachable");
    assert_eq!(checked.status().as_u16(), 200);
    let filtered = http
        .post(format!("{denylist}/v1/filter?vendor=clearbit"))
        .json(&json!({"records": [
            {"id": "lead-1", "identifiers": [{"type": "EMAIL", "value": delete_email.to_uppercase()}]},
            {"id": "lead-2", "identifiers": [{"type": "PHONE", "value": "+1 415 555 0142"}]},
            {"id": "lead-3", "identifiers": [{"type": "EMAIL", "value": lead_email}]}
        ]}))
        .send()
        .await
        .expect("deny-list reachable");
    assert_eq!(filtered.status().as_u16(), 200);
    let filtered: Value = filtered.json().await.unwrap();
    assert_eq!(
        (
            filtered["dropped"].as_array().map(Vec::len),
            filtered["kept"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1)),
        "{filtered}"
    );
    let (status, answer) = submit(json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [
            {"type": "EMAIL", "value": rejected_email},
            {"type": "PHONE", "value": "+1 12"}
        ]
    }))
    .await;
    assert_eq!(status, 422, "{answer}");

    // Salesforce refuses the next request for good, echoing the query with the email in it;
    // HubSpot answers 503 with the email until the request has gone through its retry topic.
    let lower = failing_email.to_lowercase();
    let encoded = lower.replace('+', "%2B").replace('@', "%40");
    simulators
        .simulators
        .salesforce_server
        .control
        .fail_always(Fault::answer(
            400,
            &json!([{
                "errorCode": "MALFORMED_QUERY",
                "message": format!(
                    "Email = '{}' ^ ERROR at Row:1 (q={encoded})",
                    failing_email.to_uppercase()
                )
            }])
            .to_string(),
        ));
    for _ in 0..2 {
        pipeline.hubspot.control().inject(Fault::answer(
            503,
            &json!({"status": "error", "message": format!("contact {lower} busy ({encoded})")})
                .to_string(),
        ));
    }
    let (status, refused) = submit(json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [
            {"type": "EMAIL", "value": failing_email},
            {"type": "PHONE", "value": "+1-415-555-0144"}
        ]
    }))
    .await;
    assert_eq!(status, 202, "{refused}");
    let refused_id = refused["request_id"].as_str().unwrap().to_owned();
    let record = pipeline
        .wait_record(&refused_id, Duration::from_secs(120), every_connector)
        .await;
    simulators.simulators.salesforce_server.control.heal();
    let salesforce = outcome(&record, "salesforce").expect("salesforce outcome");
    assert_eq!(salesforce["action"], "FAILED_PERMANENT", "{salesforce:#}");
    assert!(
        salesforce["evidence"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("MALFORMED_QUERY")),
        "the vendor's refusal is kept as evidence: {salesforce:#}"
    );
    assert_eq!(
        outcome(&record, "hubspot").expect("hubspot outcome")["action"],
        "FLAGGED",
        "HubSpot went through after its retry: {record:#}"
    );
    request_ids.push(refused_id);
    // Let the auditor write its last evidence records.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut scan = Scan::default();

    // Every topic of the pipeline, every record.
    let suffix = pipeline
        .topics
        .requests
        .strip_prefix("it.requests.")
        .expect("unique topic names")
        .to_owned();
    let topics = pipeline_topics(&pipeline.stack.kafka.bootstrap_servers, &suffix);
    let codec = pipeline.stack.codec();
    let (mut encrypted_fields, mut dead_letters, mut retried) = (0, 0, 0);
    for (topic, count) in &topics {
        let records: Vec<RawRecord> =
            pipeline
                .stack
                .read_all(topic, *count, Duration::from_secs(30));
        assert_eq!(records.len(), *count, "every record of {topic} read");
        for record in &records {
            let at = || {
                format!(
                    "{topic} partition {} offset {}",
                    record.partition, record.offset
                )
            };
            if let Some(key) = &record.key {
                scan.check(
                    || format!("{} key", at()),
                    &String::from_utf8_lossy(key),
                    &secrets,
                );
            }
            for (name, value) in &record.headers {
                scan.check(|| format!("{} header {name}", at()), value, &secrets);
            }
            let Some(payload) = &record.payload else {
                continue;
            };
            scan.check(
                || format!("{} value bytes", at()),
                &String::from_utf8_lossy(payload),
                &secrets,
            );
            if let Ok(mut decoded) = codec.decode_json(payload).await {
                encrypted_fields += blank_encrypted_values(&mut decoded);
                scan.check(
                    || format!("{} decoded value", at()),
                    &decoded.to_string(),
                    &secrets,
                );
            }
            if record
                .header(hush_runtime::kafka::DLQ_REASON_HEADER)
                .is_some()
            {
                dead_letters += 1;
            }
            if record
                .header(hush_suppressor::retry::LAST_ERROR_HEADER)
                .is_some_and(|e| !e.is_empty())
            {
                retried += 1;
            }
        }
    }
    let names: Vec<&str> = topics.iter().map(|(name, _)| name.as_str()).collect();
    for topic in [
        &pipeline.topics.requests,
        &pipeline.topics.suppressions,
        &pipeline.topics.confirmations,
        &pipeline.topics.audit,
        &pipeline.topics.dlq,
    ] {
        assert!(
            names.contains(&topic.as_str()),
            "{topic} scanned: {names:?}"
        );
    }
    assert!(
        encrypted_fields >= 4,
        "raw values travelled encrypted on the requests topic ({encrypted_fields} fields)"
    );
    assert!(dead_letters >= 1, "the refused request was dead-lettered");
    assert!(retried >= 1, "HubSpot's 503 went through the retry topic");

    // What the auditor shows: each request's record and evidence, the report, the dashboard.
    for id in &request_ids {
        let url = format!("{}/v1/requests/{id}", pipeline.auditor_url);
        scan.check(
            || format!("auditor record {id}"),
            &get_text(&url).await,
            &secrets,
        );
    }
    let report = get_text(&format!("{}/v1/report", pipeline.auditor_url)).await;
    scan.check(|| "auditor report".into(), &report, &secrets);
    let dashboard = get_text(&format!("{}/", pipeline.auditor_url)).await;
    scan.check(|| "auditor dashboard".into(), &dashboard, &secrets);
    let stats = get_text(&format!("{denylist}/v1/stats")).await;
    scan.check(|| "deny-list stats".into(), &stats, &secrets);

    // Metrics: every service here registers in the process's default registry.
    let ops = free_addr();
    tokio::spawn(hush_runtime::ops::serve(
        ops.clone(),
        hush_runtime::ops::router(hush_runtime::ops::Readiness::default()),
        tokio_util::sync::CancellationToken::new(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let metrics = get_text(&format!("http://{ops}/metrics")).await;
    assert!(
        metrics.contains("salesforce"),
        "the metrics hold the suppressors' series"
    );
    for (index, line) in metrics.lines().enumerate() {
        scan.check(|| format!("/metrics line {}", index + 1), line, &secrets);
    }

    // Every log line, last so it holds everything above.
    pipeline.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = logs.lines();
    assert!(
        lines.iter().any(|l| l.contains("moved to the retry topic")),
        "the logs were captured ({} lines)",
        lines.len()
    );
    for (index, line) in lines.iter().enumerate() {
        scan.check(|| format!("log line {}", index + 1), line, &secrets);
    }

    assert!(
        scan.findings.is_empty(),
        "raw identifiers leaked ({} findings in {} places scanned):\n{}",
        scan.findings.len(),
        scan.places,
        scan.findings.join("\n")
    );
    eprintln!(
        "leak scan: {} places clean ({} topics, {} log lines)",
        scan.places,
        topics.len(),
        lines.len()
    );
}
