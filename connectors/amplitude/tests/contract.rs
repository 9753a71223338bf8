//! Contract tests: the Amplitude connector against the User Privacy API simulator over
//! loopback.

use std::time::Duration;

use hush_connector_amplitude::sim::{AmplitudeSim, AmplitudeSimConfig};
use hush_connector_amplitude::{
    AmplitudeConfig, AmplitudeConnector, AmplitudeCredentials, EVIDENCE_JOBS, EVIDENCE_JOB_STATUS,
    EVIDENCE_REQUESTED_ON,
};
use hush_connector_kit::testing::deletion_only::{
    assert_deleted_pending, assert_deletion_refused, assert_deletion_refused_without_the_id,
    assert_second_deletion_waits_five_seconds, assert_sent_in_two_calls, deleting_all, deletion,
    recipient,
};
use hush_connector_kit::testing::{assert_verified_after, completed};
use hush_contracts::connector::{Connector, Operation};
use hush_contracts::events::{ConfirmationAction, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
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

/// A connector to `sim` holding the keys of `config`, with the TOML `settings` lines.
fn connector_for(
    sim: &AmplitudeSim,
    config: &AmplitudeSimConfig,
    settings: &str,
) -> AmplitudeConnector {
    let settings = format!("requester = \"privacy-team@example.com\"\n{settings}");
    let recipient = recipient("amplitude", &sim.base_url(), &settings);
    let credentials = AmplitudeCredentials {
        api_key: config.api_key.clone(),
        secret_key: config.secret_key.as_str().into(),
    };
    let resolved =
        AmplitudeConfig::with_credentials(&recipient, recipient.settings().unwrap(), credentials)
            .unwrap();
    AmplitudeConnector::new(resolved).unwrap()
}

/// The simulator of `config` and a connector to it with the TOML `settings` lines.
async fn start_with(
    config: AmplitudeSimConfig,
    settings: &str,
) -> (AmplitudeSim, AmplitudeConnector) {
    let sim = AmplitudeSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, settings);
    (sim, connector)
}

async fn start(config: AmplitudeSimConfig) -> (AmplitudeSim, AmplitudeConnector) {
    start_with(config, "").await
}

#[tokio::test]
async fn deletions_are_scheduled_in_one_request_and_pending_on_the_job() {
    let config = sim_config();
    let (sim, connector) = start(config.clone()).await;
    let results = deleting_all(&connector, &["user-1", "user-2"]).await;

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
    for (completion, _) in assert_deleted_pending(&results, &["user-1", "user-2"]) {
        assert_eq!(completion.evidence[EVIDENCE_JOBS], jobs[0].day);
        assert_eq!(
            completion.evidence[EVIDENCE_JOB_STATUS],
            format!("{}=staging", jobs[0].day)
        );
        assert_eq!(
            completion.evidence[EVIDENCE_REQUESTED_ON],
            jobs[0].scheduled[0].requested_on_day
        );
        assert_eq!(completion.evidence["amplitude_ids_scheduled"], "2");
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
    let (_sim, connector) = start_with(sim_config(), "max_wait_ms = 2000").await;
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
async fn more_than_a_hundred_users_take_two_requests_a_second_apart() {
    let users: Vec<String> = (0..101).map(|i| format!("bulk-{i:03}")).collect();
    let config = AmplitudeSimConfig {
        users: users.clone(),
        ..AmplitudeSimConfig::default()
    };
    let (sim, connector) = start(config).await;
    deleting_all(&connector, &users).await;
    let calls = sim.control().calls_to("/api/2/deletions/users");
    let sent: Vec<_> = calls
        .iter()
        .map(|c| (c.status, c.json["user_ids"].clone()))
        .collect();
    assert_sent_in_two_calls(&sent, 200, 100, "bulk-100");
}

#[tokio::test]
async fn an_organisation_wide_deletion_is_read_back_per_project() {
    let (sim, connector) = start_with(sim_config(), "delete_from_org = true").await;
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
    assert_deletion_refused(
        &connector,
        "user-1",
        "HTTP 401: Amplitude: Invalid API key or secret key",
    )
    .await;
}

#[tokio::test]
async fn the_simulators_one_request_a_second_limit_waits_five_seconds() {
    let (_sim, connector) = start(AmplitudeSimConfig {
        min_spacing: Duration::from_secs(1),
        ..sim_config()
    })
    .await;
    assert_second_deletion_waits_five_seconds(&connector, "user-1", "user-2").await;
}

#[tokio::test]
async fn an_error_quoting_a_user_id_is_redacted() {
    let (sim, connector) = start(sim_config()).await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"error":"Invalid user_ids: user-1"}"#,
    ));
    assert_deletion_refused_without_the_id(&connector, "user-1", "Invalid user_ids: <user_id>")
        .await;
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

hush_connector_kit::deletion_only_suites! {
    start: start(sim_config()),
    vendor: "Amplitude",
    customer_id: "user-1",
    factory: hush_connector_amplitude::FACTORY,
}
