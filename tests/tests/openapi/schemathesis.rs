//! schemathesis (pinned, from PyPI: `tools/schemathesis`) against the running intake, auditor
//! and deny-list, each exercised from its own `/openapi.json`: no answer may be a 5xx, and
//! every answer must carry a documented status, a documented content type and a body of the
//! documented shape (so every error is `{"error","message","field"}` with a documented code).
//!
//! The pipeline harness runs the auditor and the deny-list; intake runs here as its binary
//! does (`hush_intake::service::run`: guards, operations routes, consent state followed) on the
//! pipeline's topics. Two requests (an opt-out and an attested deletion) are on record before
//! the run, and schemathesis uses their ids and the recipients' ids for half of the path
//! parameters, so the auditor's routes reach their logic rather than only `404`. `/healthz`,
//! `/readyz` and `/metrics` are left out: the harness serves them only on the auditor, and
//! `/readyz`'s documented 503 is an answer, not a fault.
//!
//! `HUSH_SCHEMATHESIS_EXAMPLES` (default 25) sets the examples per operation and
//! `HUSH_SCHEMATHESIS_SEED` the seed (default fixed, so a run can be repeated).

use std::time::{Duration, Instant};

use hush_tests::auth::{operator_client, test_auth};
use hush_tests::pipeline::{free_addr, Options, Pipeline};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The schemathesis command, installed into its cached environment when missing.
fn schemathesis() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/schemathesis");
    let output = std::process::Command::new(script)
        .arg("--install-only")
        .output()
        .expect("tools/schemathesis runs");
    assert!(
        output.status.success(),
        "schemathesis could not be installed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("a path")
        .trim()
        .to_owned()
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Values on record that path parameters may take.
struct Known {
    request_ids: Vec<String>,
    recipients: Vec<String>,
}

/// The schemathesis configuration: `id`, `connector` and `connector_id` taken from `known`
/// half the time (generated the other half).
fn configuration(known: &Known) -> String {
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "[dictionaries.requests]\nvalues = [{}]\n\n[dictionaries.recipients]\nvalues = [{}]\n\n\
         [parameters]\n",
        list(&known.request_ids),
        list(&known.recipients)
    );
    for (parameter, dictionary) in [
        ("id", "requests"),
        ("connector", "recipients"),
        ("connector_id", "recipients"),
    ] {
        text.push_str(&format!(
            "\"path.{parameter}\" = {{ dictionary = \"{dictionary}\", probability = 0.5 }}\n"
        ));
    }
    text
}

/// Runs schemathesis against `base`'s document with `extra` arguments; `Err` with its report
/// when it found anything.
async fn run(
    command: &str,
    service: &str,
    base: &str,
    known: &Known,
    extra: &[&str],
) -> Result<String, String> {
    let work = std::env::temp_dir().join(format!("hush-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work).expect("a working folder");
    let config = work.join("schemathesis.toml");
    std::fs::write(&config, configuration(known)).expect("schemathesis.toml written");
    let started = Instant::now();
    let output = tokio::process::Command::new(command)
        .current_dir(&work)
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--header",
            &format!("Authorization: {}", test_auth().bearer()),
            "--max-examples",
            &setting("HUSH_SCHEMATHESIS_EXAMPLES", "25"),
            "--seed",
            &setting("HUSH_SCHEMATHESIS_SEED", "20261126"),
            "--exclude-path-regex",
            "^/(healthz|readyz|metrics)$",
            "--generation-database",
            "none",
            "--request-timeout",
            "15",
            "--no-color",
        ])
        .args(extra)
        .output()
        .await
        .expect("schemathesis runs");
    let _ = std::fs::remove_dir_all(&work);
    let report = format!(
        "--- schemathesis against {service} ({:.1} s) ---\n{}{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// Starts intake as its binary does, on the pipeline's topics, and waits until it is ready.
async fn running_intake(pipeline: &Pipeline, shutdown: &CancellationToken) -> String {
    let mut config = hush_intake::service::Config {
        common: hush_runtime::config::CommonConfig {
            kafka: pipeline.stack.kafka.clone(),
            schema_registry: hush_runtime::config::RegistryConfig {
                url: pipeline.stack.registry_url.clone(),
                ..Default::default()
            },
            topics: pipeline.topics.clone(),
        },
        auth: test_auth().config(),
        ..Default::default()
    };
    config.intake.listen = free_addr();
    config.intake.signals_group_id = format!("it-signals-{}", uuid::Uuid::new_v4().simple());
    // One client sends every request of the run: keep the per-IP limit out of its way (429 is
    // documented, but would hide the handlers from the run).
    config.http.per_ip_per_second = 10_000;
    config.http.per_ip_burst = 10_000;
    let base = format!("http://{}", config.intake.listen);
    tokio::spawn(hush_intake::service::run(config, shutdown.clone()));
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return base;
        }
        assert!(Instant::now() < deadline, "intake ready within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits `body` to intake and waits until the auditor has its record complete; its id.
async fn on_record(pipeline: &Pipeline, intake: &str, body: Value) -> String {
    let response = operator_client()
        .post(format!("{intake}/v1/requests"))
        .json(&body)
        .send()
        .await
        .expect("intake answers");
    assert_eq!(response.status().as_u16(), 202, "{body}");
    let accepted: Value = response.json().await.expect("JSON");
    let id = accepted["request_id"].as_str().expect("an id").to_owned();
    pipeline.wait_complete(&id).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_documents() {
    let command = schemathesis();
    let pipeline = Pipeline::start(
        "schemathesis",
        Options {
            with_denylist: true,
            ..Default::default()
        },
    )
    .await;
    let shutdown = CancellationToken::new();
    let intake = running_intake(&pipeline, &shutdown).await;
    let opt_out = on_record(
        &pipeline,
        &intake,
        json!({"kind": "OPT_OUT_SALE_SHARE", "channel": "WEB_FORM",
               "identifiers": [{"type": "EMAIL", "value": "st-opt-out@example.com"}]}),
    )
    .await;
    let deletion = on_record(
        &pipeline,
        &intake,
        json!({"kind": "DELETE",
               "identifiers": [{"type": "EMAIL", "value": "st-delete@example.com"}],
               "verification": {"attestation":
                   test_auth().attest_email("st-delete@example.com", "EMAIL_LINK")}}),
    )
    .await;
    let known = Known {
        request_ids: vec![opt_out, deletion],
        recipients: pipeline.recipients.iter().map(|r| r.id.clone()).collect(),
    };
    let deny_list = pipeline
        .recipients
        .iter()
        .find(|r| r.id == "clearbit")
        .expect("the deny-list's enrichment recipient")
        .base_url
        .clone();
    let mut failures = Vec::new();
    for (service, base, extra) in [
        ("intake", intake.as_str(), &[][..]),
        // The harness's auditor keeps the default `[http]` limit of 20 requests a second
        // from one address: stay under it.
        (
            "auditor",
            pipeline.auditor_url.as_str(),
            &["--rate-limit", "18/s"][..],
        ),
        ("deny-list", deny_list.as_str(), &[][..]),
    ] {
        match run(&command, service, base, &known, extra).await {
            Ok(report) => eprintln!("{report}"),
            Err(report) => failures.push(report),
        }
    }
    shutdown.cancel();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
