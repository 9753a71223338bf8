//! Contract tests: the Mixpanel connector against the GDPR/CCPA API simulator over loopback.

use std::time::Duration;

use hush_connector_kit::testing::deletion_only::{
    assert_deleted_pending, assert_deletion_refused, assert_deletion_refused_without_the_id,
    assert_second_deletion_waits_five_seconds, assert_sent_in_two_calls, deleting_all, deletion,
    recipient,
};
use hush_connector_kit::testing::{assert_refused, assert_verified_after, completed, one};
use hush_connector_mixpanel::sim::{MixpanelSim, MixpanelSimConfig};
use hush_connector_mixpanel::{
    MixpanelConfig, MixpanelConnector, MixpanelCredentials, EVIDENCE_TASK, EVIDENCE_TASK_STATUS,
};
use hush_contracts::connector::{Connector, Operation};
use hush_contracts::events::VerificationStatus;
use hush_sim_kit::assert_each_refused;
use hush_sim_kit::Fault;
use serde_json::json;

fn sim_config() -> MixpanelSimConfig {
    MixpanelSimConfig {
        min_spacing: Duration::ZERO,
        ..MixpanelSimConfig::default()
    }
}

/// A connector to `sim` holding the tokens of `config`, with the TOML `settings` lines.
fn connector_for(
    sim: &MixpanelSim,
    config: &MixpanelSimConfig,
    settings: &str,
) -> MixpanelConnector {
    let recipient = recipient("mixpanel", &sim.base_url(), settings);
    let credentials = MixpanelCredentials {
        project_token: config.project_token.as_str().into(),
        oauth_token: config.oauth_token.as_str().into(),
    };
    let resolved =
        MixpanelConfig::with_credentials(&recipient, recipient.settings().unwrap(), credentials)
            .unwrap();
    MixpanelConnector::new(resolved).unwrap()
}

/// The simulator of `config` and a connector to it with the TOML `settings` lines.
async fn start_with(config: MixpanelSimConfig, settings: &str) -> (MixpanelSim, MixpanelConnector) {
    let sim = MixpanelSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, settings);
    (sim, connector)
}

async fn start(config: MixpanelSimConfig) -> (MixpanelSim, MixpanelConnector) {
    start_with(config, "").await
}

#[tokio::test]
async fn deletions_become_one_ccpa_task_left_pending_with_its_id() {
    let config = sim_config();
    let (sim, connector) = start(config.clone()).await;
    let results = deleting_all(&connector, &["d-1", "d-2"]).await;

    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1, "no status read without max_wait_ms");
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.path,
        format!(
            "/api/app/data-deletions/v3.0/?token={}",
            config.project_token
        )
    );
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {}", config.oauth_token).as_str())
    );
    assert!(call
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(
        call.json,
        json!({"distinct_ids": ["d-1", "d-2"], "compliance_type": "CCPA"})
    );

    let tasks = sim.tasks();
    assert_eq!(tasks.len(), 1);
    for (completion, _) in assert_deleted_pending(&results, &["d-1", "d-2"]) {
        assert_eq!(completion.evidence[EVIDENCE_TASK], tasks[0].id);
        assert_eq!(completion.evidence[EVIDENCE_TASK_STATUS], "PENDING");
        assert_eq!(completion.evidence["compliance_type"], "CCPA");
    }
}

#[tokio::test]
async fn verify_reads_the_task_back_until_success() {
    let (sim, connector) = start(sim_config()).await;
    let item = deletion("d-3");
    let completion = completed(&connector, Operation::Delete, &item).await;
    // PENDING, STAGING, STARTED, SUCCESS.
    assert_verified_after(&connector, &item, &completion, 3).await;
    let reads = sim.control().calls_to(&format!(
        "/api/app/data-deletions/v3.0/{}",
        completion.evidence[EVIDENCE_TASK]
    ));
    assert_eq!(reads.len(), 4);
    assert!(reads
        .iter()
        .all(|c| c.method == "GET" && c.path.contains("?token=")));
}

#[tokio::test]
async fn a_task_polled_within_max_wait_is_verified_or_refused() {
    let (sim, connector) = start_with(sim_config(), "max_wait_ms = 2000").await;
    let done = completed(&connector, Operation::Delete, &deletion("d-4")).await;
    assert_eq!(done.verification, VerificationStatus::Verified);
    assert_eq!(done.evidence[EVIDENCE_TASK_STATUS], "SUCCESS");

    sim.end_next_task_with("FAILURE");
    assert_refused(
        one(connector.apply(Operation::Delete, &[deletion("d-5")]).await),
        "ended FAILURE",
    );
}

#[tokio::test]
async fn a_cancelled_or_unknown_task_fails_verification() {
    let (sim, connector) = start(sim_config()).await;
    sim.end_next_task_with("REVOKED");
    let item = deletion("d-6");
    let completion = completed(&connector, Operation::Delete, &item).await;
    let mut status = VerificationStatus::Pending;
    for _ in 0..5 {
        status = connector.verify(&item, &completion).await;
        if status != VerificationStatus::Pending {
            break;
        }
    }
    assert_eq!(status, VerificationStatus::Failed);

    let mut unknown = completion.clone();
    unknown
        .evidence
        .insert(EVIDENCE_TASK.into(), "no-such-task".into());
    assert_eq!(
        connector.verify(&item, &unknown).await,
        VerificationStatus::Failed
    );
}

#[tokio::test]
async fn more_than_two_thousand_ids_take_two_tasks_a_second_apart() {
    let (sim, connector) = start(MixpanelSimConfig::default()).await;
    let ids: Vec<String> = (0..2_001).map(|i| format!("bulk-{i:04}")).collect();
    let results = deleting_all(&connector, &ids).await;
    let sent: Vec<_> = sim
        .control()
        .calls()
        .iter()
        .map(|c| (c.status, c.json["distinct_ids"].clone()))
        .collect();
    assert_sent_in_two_calls(&sent, 201, 2_000, "bulk-2000");
    assert_ne!(
        results[0].as_ref().unwrap().evidence[EVIDENCE_TASK],
        results[2_000].as_ref().unwrap().evidence[EVIDENCE_TASK]
    );
}

#[tokio::test]
async fn refused_tokens_are_permanent_with_mixpanels_text() {
    let config = sim_config();
    let sim = MixpanelSim::start(config.clone()).await.unwrap();
    let expired = MixpanelSimConfig {
        oauth_token: "expired".into(),
        ..config.clone()
    };
    assert_deletion_refused(
        &connector_for(&sim, &expired, ""),
        "d-1",
        "HTTP 401: Mixpanel: Invalid or expired GDPR OAuth token",
    )
    .await;
    let other_project = MixpanelSimConfig {
        project_token: "another".into(),
        ..config
    };
    assert_deletion_refused(
        &connector_for(&sim, &other_project, ""),
        "d-1",
        "HTTP 403: Mixpanel: The token does not name a project",
    )
    .await;
}

#[tokio::test]
async fn the_simulators_one_request_a_second_limit_waits_five_seconds() {
    let (_sim, connector) = start(MixpanelSimConfig::default()).await;
    assert_second_deletion_waits_five_seconds(&connector, "d-1", "d-2").await;
}

#[tokio::test]
async fn an_error_quoting_a_distinct_id_is_redacted() {
    let (sim, connector) = start(sim_config()).await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"status":"error","error":"Malformed distinct_id: d-secret-7"}"#,
    ));
    assert_deletion_refused_without_the_id(
        &connector,
        "d-secret-7",
        "Malformed distinct_id: <distinct_id>",
    )
    .await;
}

#[tokio::test]
async fn the_simulator_validates_requests_like_mixpanel() {
    let config = sim_config();
    let sim = MixpanelSim::start(config.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/app/data-deletions/v3.0/?token={}",
        sim.base_url(),
        config.project_token
    );
    let too_many: Vec<String> = (0..2_001).map(|i| format!("d{i}")).collect();
    let cases = [
        (
            json!({"compliance_type": "CCPA"}),
            "distinct_ids is required",
        ),
        (json!({"distinct_ids": []}), "1 to 2000"),
        (json!({"distinct_ids": too_many}), "1 to 2000"),
        (json!({"distinct_ids": [""]}), "non-empty strings"),
        (
            json!({"distinct_ids": ["d"], "compliance_type": "LGPD"}),
            "CCPA or GDPR",
        ),
        (
            json!({"distinct_ids": ["d"], "emails": ["x"]}),
            "Unexpected parameter: emails",
        ),
    ];
    assert_each_refused(
        || http.post(&url).bearer_auth(&config.oauth_token),
        400,
        &cases,
        |error, message| {
            error["status"] == "error"
                && error["error"].as_str().is_some_and(|t| t.contains(message))
        },
    )
    .await;
    assert!(sim.tasks().is_empty());
}

hush_connector_kit::deletion_only_suites! {
    start: start(sim_config()),
    vendor: "Mixpanel",
    customer_id: "d-1",
    factory: hush_connector_mixpanel::FACTORY,
}
