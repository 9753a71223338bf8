//! Contract tests: the Mixpanel connector against the GDPR/CCPA API simulator over loopback.

use std::time::Duration;

use hush_connector_kit::testing::deletion_only::{person, DeletionOnlySuite};
use hush_connector_kit::testing::{
    assert_every_item, assert_refused, assert_refused_without, assert_retry_after_saying,
    assert_verified_after, completed, one, ComplianceSuite,
};
use hush_connector_mixpanel::sim::{MixpanelSim, MixpanelSimConfig};
use hush_connector_mixpanel::{
    MixpanelConfig, MixpanelConnector, MixpanelCredentials, EVIDENCE_TASK, EVIDENCE_TASK_STATUS,
};
use hush_contracts::connector::{Connector, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::{assert_each_refused, Fault};
use serde_json::json;

fn sim_config() -> MixpanelSimConfig {
    MixpanelSimConfig {
        min_spacing: Duration::ZERO,
        ..MixpanelSimConfig::default()
    }
}

fn connector_for(
    sim: &MixpanelSim,
    config: &MixpanelSimConfig,
    settings: &str,
) -> MixpanelConnector {
    let text = format!(
        r#"
id = "mixpanel"
kind = "mixpanel"
role = "SERVICE_PROVIDER"
base_url = "{base}"
timeout_ms = 500
[settings]
poll_interval_ms = 5
{settings}
"#,
        base = sim.base_url(),
    );
    let recipient: RecipientConfig = toml::from_str(&text).unwrap();
    let credentials = MixpanelCredentials {
        project_token: config.project_token.as_str().into(),
        oauth_token: config.oauth_token.as_str().into(),
    };
    let resolved =
        MixpanelConfig::with_credentials(&recipient, recipient.settings().unwrap(), credentials)
            .unwrap();
    MixpanelConnector::new(resolved).unwrap()
}

async fn start(config: MixpanelSimConfig) -> (MixpanelSim, MixpanelConnector) {
    let sim = MixpanelSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "");
    (sim, connector)
}

fn deletion(user: &str) -> SuppressionWork {
    person(RequestKind::Delete, Some(user))
}

#[tokio::test]
async fn deletions_become_one_ccpa_task_left_pending_with_its_id() {
    let config = sim_config();
    let (sim, connector) = start(config.clone()).await;
    let results = connector
        .apply(Operation::Delete, &[deletion("d-1"), deletion("d-2")])
        .await
        .unwrap();

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
    for (result, user) in results.iter().zip(["d-1", "d-2"]) {
        let completion = result.as_ref().unwrap();
        assert_eq!(completion.action, ConfirmationAction::Deleted);
        assert_eq!(completion.verification, VerificationStatus::Pending);
        assert_eq!(completion.evidence[EVIDENCE_TASK], tasks[0].id);
        assert_eq!(completion.evidence[EVIDENCE_TASK_STATUS], "PENDING");
        assert_eq!(completion.evidence["compliance_type"], "CCPA");
        assert_eq!(completion.evidence["customer_id_sha256"], sha256_hex(user));
        assert!(!completion.evidence.values().any(|v| v.contains(user)));
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
    let config = sim_config();
    let sim = MixpanelSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "max_wait_ms = 2000");
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
async fn the_connector_passes_the_deletion_only_suite() {
    let (sim, connector) = start(sim_config()).await;
    DeletionOnlySuite {
        connector: &connector,
        vendor: "Mixpanel",
        customer_id: "d-1",
        calls: Box::new(|| sim.control().calls().len()),
        faults: Some(sim.control()),
        hang: Duration::from_secs(2),
    }
    .run()
    .await;
}

#[tokio::test]
async fn more_than_two_thousand_ids_take_two_tasks_a_second_apart() {
    let (sim, connector) = start(MixpanelSimConfig::default()).await;
    let batch: Vec<_> = (0..2_001)
        .map(|i| deletion(&format!("bulk-{i:04}")))
        .collect();
    let results = connector.apply(Operation::Delete, &batch).await.unwrap();
    assert_every_item(&results, batch.len(), ConfirmationAction::Deleted);
    let calls = sim.control().calls();
    assert_eq!(
        calls.len(),
        2,
        "the simulator enforces one request a second"
    );
    assert!(calls.iter().all(|c| c.status == 201));
    assert_eq!(
        calls[0].json["distinct_ids"].as_array().unwrap().len(),
        2_000
    );
    assert_eq!(calls[1].json["distinct_ids"], json!(["bulk-2000"]));
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
    assert_refused(
        connector_for(&sim, &expired, "")
            .apply(Operation::Delete, &[deletion("d-1")])
            .await,
        "HTTP 401: Mixpanel: Invalid or expired GDPR OAuth token",
    );
    let other_project = MixpanelSimConfig {
        project_token: "another".into(),
        ..config
    };
    assert_refused(
        connector_for(&sim, &other_project, "")
            .apply(Operation::Delete, &[deletion("d-1")])
            .await,
        "HTTP 403: Mixpanel: The token does not name a project",
    );
}

#[tokio::test]
async fn the_simulators_one_request_a_second_limit_waits_five_seconds() {
    let (_sim, connector) = start(MixpanelSimConfig::default()).await;
    // A 429 without Retry-After: the connector waits its default.
    completed(&connector, Operation::Delete, &deletion("d-1")).await;
    let limited = connector.apply(Operation::Delete, &[deletion("d-2")]).await;
    assert_retry_after_saying(limited, Duration::from_secs(5), "1 request per second");
}

#[tokio::test]
async fn an_error_quoting_a_distinct_id_is_redacted() {
    let (sim, connector) = start(sim_config()).await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"status":"error","error":"Malformed distinct_id: d-secret-7"}"#,
    ));
    assert_refused_without(
        connector
            .apply(Operation::Delete, &[deletion("d-secret-7")])
            .await,
        "d-secret-7",
        "Malformed distinct_id: <distinct_id>",
    );
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

/// The suite runs without fault injection: every fault it injects rides on an opt-out, which
/// this connector answers `NOT_APPLICABLE` without calling Mixpanel.
/// The deletion-only suite checks the same faults on deletions.
#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (_sim, connector) = start(sim_config()).await;
    ComplianceSuite::new(&connector, &hush_connector_mixpanel::FACTORY, &|kind| {
        person(kind, Some("suite-user"))
    })
    .run()
    .await;
}
