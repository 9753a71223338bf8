//! Every request can finish, on the real broker: a read-back that could not run is read again on
//! a schedule until it resolves (or, past the limit, the auditor shows `ACTION_REQUIRED` with the
//! reason), and a vendor's Retry-After longer than the in-place wait schedules the work for then
//! on the retry topic without spending an attempt.

use std::time::Duration;

use hush_connector_hubspot::sim::HubSpotSimulator;
use hush_contracts::events::now_millis;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::Fault;
use hush_suppressor::config::SuppressorSection;
use hush_suppressor::retry::{ATTEMPTS_HEADER, NOT_BEFORE_HEADER};
use hush_tests::pipeline::{Options, Pipeline, HUBSPOT_TOKEN, HUBSPOT_TOKEN_VAR};
use serde_json::{json, Value};

/// Id of the one recipient these pipelines configure.
const CRM: &str = "crm";

/// A HubSpot recipient `crm` at `sim`, allowed 4 attempts.
fn hubspot_recipient(sim: &HubSpotSimulator) -> RecipientConfig {
    toml::from_str(&format!(
        r#"
        id = "{CRM}"
        kind = "hubspot"
        role = "SERVICE_PROVIDER"
        base_url = "{}"
        credentials = {{ token = "{HUBSPOT_TOKEN_VAR}" }}
        max_attempts = 4
        timeout_ms = 2000
        rate_limit_per_second = 50
        "#,
        sim.base_url()
    ))
    .expect("hubspot recipient")
}

/// Read-backs again after 0.3 s doubling to 1 s, at most 3 of them.
fn quick_reverification(section: &mut SuppressorSection) {
    section.reverify_initial_delay_ms = 300;
    section.reverify_max_delay_ms = 1_000;
    section.reverify_max_attempts = 3;
    section.reverify_max_age_ms = 60_000;
}

/// A pipeline whose only recipient is HubSpot at a simulator of its own holding `email`.
async fn pipeline_with_hubspot(name: &str, email: &str) -> (Pipeline, HubSpotSimulator) {
    hush_tests::pipeline::set_test_secrets();
    let sim = HubSpotSimulator::start(HUBSPOT_TOKEN)
        .await
        .expect("hubspot simulator");
    sim.add_contact(email);
    let pipeline = Pipeline::start(
        name,
        Options {
            builtin_recipients: false,
            extra_recipients: vec![hubspot_recipient(&sim)],
            tune_suppressor: Some(quick_reverification),
            ..Options::default()
        },
    )
    .await;
    (pipeline, sim)
}

/// Submits an email-only opt-out; returns its request id.
async fn opt_out(pipeline: &Pipeline, email: &str) -> String {
    let (status, accepted) = pipeline
        .submit(json!({
            "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
            "identifiers": [{"type": "EMAIL", "value": email}],
            "categories": ["ALL"], "idempotency_key": uuid::Uuid::new_v4().to_string()
        }))
        .await;
    assert_eq!(status, 202, "{accepted}");
    accepted["request_id"].as_str().unwrap().to_owned()
}

fn crm_outcome(record: &Value) -> &Value {
    let outcomes: Vec<&Value> = record["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["connector_id"] == CRM)
        .collect();
    assert_eq!(outcomes.len(), 1, "exactly one outcome: {record:#}");
    outcomes[0]
}

/// Vendor writes (the apply) and `batch/read` calls (read-backs) the simulator received.
fn writes_and_reads(sim: &HubSpotSimulator) -> (usize, usize) {
    let calls = sim.control().calls();
    let reads = calls
        .iter()
        .filter(|c| c.path.contains("/batch/read"))
        .count();
    let writes = calls
        .iter()
        .filter(|c| c.method == "PATCH" || c.path.contains("/batch/update"))
        .count();
    (writes, reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_back_failing_twice_then_succeeding_ends_verified_without_a_new_apply() {
    let email = "reverify.twice@example.com";
    let (pipeline, sim) = pipeline_with_hubspot("reverify-ok", email).await;
    // The read-back at completion and the first read-back again fail; the next succeeds.
    sim.control()
        .inject_for("/batch/read", Fault::server_error());
    sim.control()
        .inject_for("/batch/read", Fault::server_error());
    let id = opt_out(&pipeline, email).await;

    let record = pipeline
        .wait_record(&id, Duration::from_secs(60), |r| {
            r["connectors"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|o| o["connector_id"] == CRM && o["verification"] == "VERIFIED")
            })
        })
        .await;
    assert_eq!(record["status"], "VERIFIED", "{record:#}");
    let outcome = crm_outcome(&record);
    assert_eq!(outcome["action"], "FLAGGED");
    assert_eq!(outcome["evidence"]["read_backs"], "2", "{outcome:#}");
    assert_eq!(
        writes_and_reads(&sim),
        (1, 3),
        "one apply; read back at completion, then twice more"
    );

    // The confirmations: the PENDING one, then the same outcome read back; one completion time.
    let confirmations: Vec<_> = pipeline
        .confirmations(2)
        .await
        .into_iter()
        .filter(|c| c.request_id == id)
        .collect();
    let verifications: Vec<String> = confirmations
        .iter()
        .map(|c| format!("{:?}", c.verification))
        .collect();
    assert_eq!(verifications, ["Pending", "Verified"]);
    assert_eq!(
        confirmations[0].completed_at, confirmations[1].completed_at,
        "a re-verification does not move the completion"
    );
    assert_eq!(record["completed_at"], outcome["completed_at"]);
    pipeline.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_back_that_never_succeeds_requires_action_after_the_limit() {
    let email = "reverify.never@example.com";
    let (pipeline, sim) = pipeline_with_hubspot("reverify-gave-up", email).await;
    for _ in 0..10 {
        sim.control()
            .inject_for("/batch/read", Fault::server_error());
    }
    let id = opt_out(&pipeline, email).await;

    let record = pipeline
        .wait_record(&id, Duration::from_secs(60), |r| {
            r["status"] == "ACTION_REQUIRED"
        })
        .await;
    let outcome = crm_outcome(&record);
    assert_eq!(outcome["action"], "FLAGGED");
    assert_eq!(outcome["verification"], "PENDING");
    let reason = outcome["evidence"]["read_back_gave_up"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("after 3 read-back(s)") && reason.contains("reverify_max_attempts 3"),
        "{outcome:#}"
    );
    assert!(!reason.contains(email), "no raw identifier in the reason");
    assert_eq!(
        writes_and_reads(&sim),
        (1, 4),
        "one apply; read back at completion, then the three read-backs allowed"
    );
    // Nothing reads it again once it was given up; it waits in the dead letters for a re-drive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(writes_and_reads(&sim), (1, 4));
    let letters = pipeline
        .stack
        .read_all(&pipeline.topics.dlq, 1, Duration::from_secs(10));
    assert_eq!(letters.len(), 1);
    let letter_reason = letters[0].header("hush.dlq.reason").unwrap_or_default();
    assert!(
        letter_reason.contains("read-back still PENDING"),
        "{:?}",
        letters[0].headers
    );

    // Once HubSpot answers again, one re-drive reads it back (no second write) and it settles.
    sim.control().heal();
    let response = hush_tests::auth::operator_client()
        .post(format!(
            "{}/v1/requests/{id}/recipients/{CRM}/retry",
            pipeline.auditor_url
        ))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        202,
        "{:?}",
        response.text().await
    );
    let record = pipeline
        .wait_record(&id, Duration::from_secs(60), |r| r["status"] == "VERIFIED")
        .await;
    let outcome = crm_outcome(&record);
    assert_eq!(outcome["action"], "FLAGGED");
    assert_eq!(outcome["verification"], "VERIFIED", "{outcome:#}");
    assert_eq!(
        writes_and_reads(&sim),
        (1, 5),
        "the re-drive reads back once and writes nothing"
    );
    pipeline.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_beyond_the_in_place_wait_lands_on_the_retry_topic_for_then() {
    let email = "retry.after@example.com";
    let (pipeline, sim) = pipeline_with_hubspot("retry-after", email).await;
    sim.control()
        .inject_for("/contacts/", Fault::too_many_requests(120));
    let before = now_millis();
    let id = opt_out(&pipeline, email).await;

    let retry_topic = pipeline.topics.retry_topic(CRM);
    let moved = pipeline
        .stack
        .read_all(&retry_topic, 1, Duration::from_secs(30));
    let after = now_millis();
    let first = moved.first().expect("the request on the retry topic");
    assert_eq!(first.header(ATTEMPTS_HEADER), Some("0"), "no attempt spent");
    let not_before: i64 = first
        .header(NOT_BEFORE_HEADER)
        .and_then(|v| v.parse().ok())
        .expect("not_before header");
    assert!(
        (before + 120_000..=after + 120_000).contains(&not_before),
        "not_before {not_before} is now + 120 s (between {} and {})",
        before + 120_000,
        after + 120_000
    );
    assert_eq!(writes_and_reads(&sim), (1, 0), "one call, answered 429");
    // Not confirmed, nor dead-lettered, while the vendor is waited for.
    let record = pipeline
        .wait_record(&id, Duration::from_secs(10), |r| r["status"] == "OPEN")
        .await;
    assert!(record["connectors"].as_array().is_none_or(Vec::is_empty));
    pipeline.stop();
}
