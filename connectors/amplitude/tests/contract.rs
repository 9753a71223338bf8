//! Contract tests: the Amplitude connector against the User Privacy API simulator over
//! loopback.

use std::time::Duration;

use hush_connector_amplitude::sim::{AmplitudeSim, AmplitudeSimConfig};
use hush_connector_amplitude::{
    AmplitudeConfig, AmplitudeConnector, AmplitudeCredentials, EVIDENCE_JOBS, EVIDENCE_JOB_STATUS,
    EVIDENCE_REQUESTED_ON,
};
use hush_connector_kit::testing::deletion_only::{person, DeletionOnlySuite};
use hush_connector_kit::testing::{
    assert_every_item, assert_refused, assert_refused_without, assert_retry_after_saying,
    assert_verified_after, completed, ComplianceSuite,
};
use hush_contracts::connector::{Connector, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::{assert_each_refused, Fault};
use serde_json::json;

const KNOWN: [&str; 4] = ["user-1", "user-2", "user-3", "suite-user"];

fn sim_config() -> AmplitudeSimConfig {
    AmplitudeSimConfig {
        users: KNOWN.iter().map(|u| u.to_string()).collect(),
        min_spacing: Duration::ZERO,
        ..AmplitudeSimConfig::default()
    }
}

fn connector_for(
    sim: &AmplitudeSim,
    config: &AmplitudeSimConfig,
    settings: &str,
) -> AmplitudeConnector {
    let text = format!(
        r#"
id = "amplitude"
kind = "amplitude"
role = "SERVICE_PROVIDER"
base_url = "{base}"
timeout_ms = 500
[settings]
requester = "privacy-team@example.com"
poll_interval_ms = 5
{settings}
"#,
        base = sim.base_url(),
    );
    let recipient: RecipientConfig = toml::from_str(&text).unwrap();
    let credentials = AmplitudeCredentials {
        api_key: config.api_key.clone(),
        secret_key: config.secret_key.as_str().into(),
    };
    let resolved =
        AmplitudeConfig::with_credentials(&recipient, recipient.settings().unwrap(), credentials)
            .unwrap();
    AmplitudeConnector::new(resolved).unwrap()
}

async fn start(config: AmplitudeSimConfig) -> (AmplitudeSim, AmplitudeConnector) {
    let sim = AmplitudeSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "");
    (sim, connector)
}

fn deletion(user: &str) -> SuppressionWork {
    person(RequestKind::Delete, Some(user))
}

#[tokio::test]
async fn deletions_are_scheduled_in_one_request_and_pending_on_the_job() {
    let config = sim_config();
    let (sim, connector) = start(config.clone()).await;
    let results = connector
        .apply(Operation::Delete, &[deletion("user-1"), deletion("user-2")])
        .await
        .unwrap();

    let calls = sim.control().calls_to("/api/2/deletions/users");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert!(call
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert!(call
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(
        call.json,
        json!({"user_ids": ["user-1", "user-2"], "requester": "privacy-team@example.com",
               "ignore_invalid_id": "true", "delete_from_org": "false"})
    );

    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].scheduled.len(), 2);
    for (result, user) in results.iter().zip(["user-1", "user-2"]) {
        let completion = result.as_ref().unwrap();
        assert_eq!(completion.action, ConfirmationAction::Deleted);
        assert_eq!(completion.verification, VerificationStatus::Pending);
        assert_eq!(completion.evidence[EVIDENCE_JOBS], jobs[0].day);
        assert_eq!(
            completion.evidence[EVIDENCE_JOB_STATUS],
            format!("{}=staging", jobs[0].day)
        );
        assert_eq!(
            completion.evidence[EVIDENCE_REQUESTED_ON],
            jobs[0].scheduled[0].requested_on_day
        );
        assert_eq!(completion.evidence["customer_id_sha256"], sha256_hex(user));
        assert_eq!(completion.evidence["amplitude_ids_scheduled"], "2");
        assert!(!completion.evidence.values().any(|v| v.contains(user)));
    }
}

#[tokio::test]
async fn verify_reads_the_job_back_until_it_is_done() {
    let (sim, connector) = start(sim_config()).await;
    let item = deletion("user-3");
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.verification, VerificationStatus::Pending);
    // Listing reads: staging, submitted, done.
    assert_verified_after(&connector, &item, &completion, 2).await;
    let listing = sim
        .control()
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET")
        .collect::<Vec<_>>();
    assert_eq!(listing.len(), 3);
    let requested = &completion.evidence[EVIDENCE_REQUESTED_ON];
    let end = (chrono::NaiveDate::parse_from_str(requested, "%Y-%m-%d").unwrap()
        + chrono::Days::new(30))
    .to_string();
    assert_eq!(
        listing[0].path,
        format!("/api/2/deletions/users?start_day={requested}&end_day={end}")
    );
}

#[tokio::test]
async fn a_job_polled_within_max_wait_is_verified_at_once() {
    let config = sim_config();
    let sim = AmplitudeSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "max_wait_ms = 2000");
    let completion = completed(&connector, Operation::Delete, &deletion("user-1")).await;
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert!(completion.evidence[EVIDENCE_JOB_STATUS].ends_with("=done"));
}

#[tokio::test]
async fn a_revoked_job_fails_verification() {
    let (sim, connector) = start(sim_config()).await;
    let item = deletion("user-2");
    let completion = completed(&connector, Operation::Delete, &item).await;
    sim.revoke_staging_jobs();
    assert_eq!(
        connector.verify(&item, &completion).await,
        VerificationStatus::Failed
    );
}

#[tokio::test]
async fn unknown_users_alone_are_not_found() {
    let (sim, connector) = start(sim_config()).await;
    let completion = completed(&connector, Operation::Delete, &deletion("stranger-9")).await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert_eq!(
        completion.evidence["customer_id_sha256"],
        sha256_hex("stranger-9")
    );
    assert_eq!(sim.control().calls().len(), 1, "Amplitude was asked");
}

#[tokio::test]
async fn the_connector_passes_the_deletion_only_suite() {
    let (sim, connector) = start(sim_config()).await;
    DeletionOnlySuite {
        connector: &connector,
        vendor: "Amplitude",
        customer_id: "user-1",
        calls: Box::new(|| sim.control().calls().len()),
        faults: Some(sim.control()),
        hang: Duration::from_secs(2),
    }
    .run()
    .await;
}

#[tokio::test]
async fn more_than_a_hundred_users_take_two_requests_a_second_apart() {
    let users: Vec<String> = (0..101).map(|i| format!("bulk-{i:03}")).collect();
    let config = AmplitudeSimConfig {
        users: users.clone(),
        ..AmplitudeSimConfig::default()
    };
    let (sim, connector) = start(config).await;
    let batch: Vec<_> = users.iter().map(|u| deletion(u)).collect();
    let results = connector.apply(Operation::Delete, &batch).await.unwrap();
    assert_every_item(&results, batch.len(), ConfirmationAction::Deleted);
    let calls = sim.control().calls_to("/api/2/deletions/users");
    assert_eq!(
        calls.len(),
        2,
        "the simulator enforces one request a second"
    );
    assert!(calls.iter().all(|c| c.status == 200));
    assert_eq!(calls[0].json["user_ids"].as_array().unwrap().len(), 100);
    assert_eq!(calls[1].json["user_ids"], json!(["bulk-100"]));
}

#[tokio::test]
async fn an_organisation_wide_deletion_is_read_back_per_project() {
    let config = sim_config();
    let sim = AmplitudeSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "delete_from_org = true");
    let item = deletion("user-1");
    let completion = completed(&connector, Operation::Delete, &item).await;
    let day = &sim.jobs()[0].day;
    assert_eq!(
        completion.evidence[EVIDENCE_JOBS],
        format!("187520:{day},187521:{day}")
    );
    assert_eq!(sim.control().calls()[0].json["delete_from_org"], "true");
    assert_verified_after(&connector, &item, &completion, 2).await;
}

#[tokio::test]
async fn refused_credentials_are_permanent_with_amplitudes_text() {
    let config = sim_config();
    let sim = AmplitudeSim::start(config.clone()).await.unwrap();
    let wrong = AmplitudeSimConfig {
        secret_key: "wrong".into(),
        ..config
    };
    let connector = connector_for(&sim, &wrong, "");
    assert_refused(
        connector
            .apply(Operation::Delete, &[deletion("user-1")])
            .await,
        "HTTP 401: Amplitude: Invalid API key or secret key",
    );
}

#[tokio::test]
async fn the_simulators_one_request_a_second_limit_waits_five_seconds() {
    let (_sim, connector) = start(AmplitudeSimConfig {
        min_spacing: Duration::from_secs(1),
        ..sim_config()
    })
    .await;
    // A 429 without Retry-After: the connector waits its default.
    completed(&connector, Operation::Delete, &deletion("user-1")).await;
    let limited = connector
        .apply(Operation::Delete, &[deletion("user-2")])
        .await;
    assert_retry_after_saying(limited, Duration::from_secs(5), "1 request per second");
}

#[tokio::test]
async fn an_error_quoting_a_user_id_is_redacted() {
    let (sim, connector) = start(sim_config()).await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"error":"Invalid user_ids: user-1"}"#,
    ));
    assert_refused_without(
        connector
            .apply(Operation::Delete, &[deletion("user-1")])
            .await,
        "user-1",
        "Invalid user_ids: <user_id>",
    );
}

#[tokio::test]
async fn the_simulator_validates_requests_like_amplitude() {
    let config = AmplitudeSimConfig {
        min_spacing: Duration::ZERO,
        ..sim_config()
    };
    let sim = AmplitudeSim::start(config.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/2/deletions/users", sim.base_url());
    let ids: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let cases = [
        (json!({"user_ids": []}), "Either amplitude_ids or user_ids"),
        (
            json!({"user_ids": ids, "ignore_invalid_id": true}),
            "at most 100",
        ),
        (
            json!({"user_ids": ["user-1"], "emails": ["x"]}),
            "Unknown parameter emails",
        ),
        (json!({"amplitude_ids": ["abc"]}), "integers"),
        (
            json!({"amplitude_ids": [1], "delete_from_org": "True"}),
            "user_ids only",
        ),
        (
            json!({"user_ids": ["user-1"], "ignore_invalid_id": "maybe"}),
            "True or False",
        ),
        (json!({"user_ids": ["nobody"]}), "Invalid user_ids: nobody"),
    ];
    assert_each_refused(
        || {
            http.post(&url)
                .basic_auth(&config.api_key, Some(&config.secret_key))
        },
        400,
        &cases,
        |error, message| error["error"].as_str().is_some_and(|t| t.contains(message)),
    )
    .await;
    let too_long = http
        .get(format!("{url}?start_day=2026-01-01&end_day=2026-12-31"))
        .basic_auth(&config.api_key, Some(&config.secret_key))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 400);
    let anonymous = http
        .get(format!("{url}?start_day=2026-01-01&end_day=2026-01-31"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(sim.jobs().is_empty());
}

/// The suite runs without fault injection: every fault it injects rides on an opt-out, which
/// this connector answers `NOT_APPLICABLE` without calling Amplitude.
/// The deletion-only suite checks the same faults on deletions.
#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (_sim, connector) = start(sim_config()).await;
    ComplianceSuite::new(&connector, &hush_connector_amplitude::FACTORY, &|kind| {
        person(kind, Some("suite-user"))
    })
    .run()
    .await;
}
