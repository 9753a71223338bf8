//! Contract tests: the Segment connector against the Segment Public API simulator over loopback.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::testing::read_back::assert_pending_then_verified;
use hush_connector_kit::testing::{
    apply_one, assert_refused, completed, email, recipient_with, with_raw, work, ComplianceSuite,
    WorkExt,
};
use hush_connector_segment::sim::{SegmentSim, SegmentSimConfig};
use hush_connector_segment::{SegmentConfig, SegmentConnector, EVIDENCE_REGULATE_ID};
use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
use serde_json::json;

fn connector_for(sim: &SegmentSim, token: &str, extra: &str) -> SegmentConnector {
    let recipient = recipient_with(
        &format!(
            r#"
id = "segment"
kind = "segment"
role = "SERVICE_PROVIDER"
base_url = "{}"
timeout_ms = 2000
[settings]
poll_interval_ms = 10
max_wait_ms = 5000
"#,
            sim.base_url()
        ),
        extra,
    );
    let config = SegmentConfig::with_token(&recipient, Secret::new(token)).unwrap();
    SegmentConnector::new(config).unwrap()
}

/// Request `request` for `<request>@example.com`, with the customer id (raw, as Segment needs
/// it) when given.
fn person(request: &str, kind: RequestKind, customer_id: Option<&str>) -> SuppressionWork {
    let work = work(kind)
        .id(request)
        .with(email(&format!("{request}@example.com")));
    match customer_id {
        Some(id) => work.with(with_raw(IdentifierType::CustomerId, id)),
        None => work,
    }
}

/// A simulator honouring `config`, and the connector pointed at it with its token and the
/// settings `extra`.
async fn start(config: SegmentSimConfig, extra: &str) -> (SegmentSim, SegmentConnector) {
    let sim = SegmentSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config.token, extra);
    (sim, connector)
}

#[tokio::test]
async fn finished_suppression_is_verified_with_the_regulation_as_evidence() {
    let (sim, connector) = start(SegmentSimConfig::default(), "").await;
    let batch = [
        person("a", RequestKind::OptOutSaleShare, Some("user-1")),
        person("b", RequestKind::LimitSensitive, Some("user-2")),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();

    let regulations = sim.regulations();
    assert_eq!(regulations.len(), 1);
    assert_eq!(regulations[0].regulation_type, "SUPPRESS_ONLY");
    assert_eq!(regulations[0].subject_ids, vec!["user-1", "user-2"]);
    assert_eq!(regulations[0].overall_status, "FINISHED");
    for (result, customer) in results.iter().zip(["user-1", "user-2"]) {
        let completion = result.as_ref().unwrap();
        assert_eq!(completion.action, ConfirmationAction::Suppressed);
        assert_eq!(completion.verification, VerificationStatus::Verified);
        assert_eq!(completion.evidence[EVIDENCE_REGULATE_ID], regulations[0].id);
        assert_eq!(completion.evidence["overall_status"], "FINISHED");
        assert_eq!(completion.evidence["subject_count"], "2");
        assert_eq!(
            completion.evidence["customer_id_sha256"],
            sha256_hex(customer)
        );
        assert!(!completion.evidence.values().any(|v| v.contains(customer)));
    }

    let create = &sim.control().calls_to("/regulations")[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/regulations");
    assert_eq!(
        create.header("authorization"),
        Some("Bearer sgp_sim_workspace_token")
    );
    assert_eq!(
        create.header("content-type"),
        Some("application/vnd.segment.v1+json")
    );
    assert_eq!(
        create.json,
        json!({"regulationType": "SUPPRESS_ONLY", "subjectType": "USER_ID", "subjectIds": ["user-1", "user-2"]})
    );
    // INITIALIZED, RUNNING, FINISHED.
    let reads = sim
        .control()
        .calls_to(&format!("/regulations/{}", regulations[0].id));
    assert_eq!(reads.len(), 3);
    assert!(reads.iter().all(|c| c.method == "GET"));
}

#[tokio::test]
async fn delete_creates_a_suppress_with_delete_regulation_and_is_deleted() {
    let (sim, connector) = start(SegmentSimConfig::default(), "").await;
    let item = person("d", RequestKind::Delete, Some("user-9"));
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(sim.regulations()[0].regulation_type, "SUPPRESS_WITH_DELETE");
}

#[tokio::test]
async fn missing_customer_id_is_not_found_and_the_rest_proceed() {
    let (sim, connector) = start(SegmentSimConfig::default(), "").await;
    let batch = [
        person("none", RequestKind::OptOutSaleShare, None),
        person("ok", RequestKind::OptOutSaleShare, Some("user-3")),
        person("in", RequestKind::OptInSaleShare, Some("user-4")),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    let unmatched = results[0].as_ref().expect("not a failure");
    assert_eq!(unmatched.action, ConfirmationAction::NotFound);
    assert!(
        unmatched.evidence["reason"].contains("CUSTOMER_ID")
            && unmatched.evidence["reason"].contains("userId"),
        "{unmatched:?}"
    );
    assert_eq!(
        results[1].as_ref().unwrap().verification,
        VerificationStatus::Verified
    );
    assert_eq!(
        results[2].as_ref().unwrap().action,
        ConfirmationAction::NotApplicable
    );
    assert_eq!(sim.regulations().len(), 1);
    assert_eq!(sim.regulations()[0].subject_ids, vec!["user-3"]);
}

#[tokio::test]
async fn only_people_without_customer_id_make_no_call() {
    let (sim, connector) = start(SegmentSimConfig::default(), "").await;
    let results = connector
        .apply(
            Operation::Suppress,
            &[person("none", RequestKind::OptOutSaleShare, None)],
        )
        .await
        .unwrap();
    assert_eq!(
        results[0].as_ref().unwrap().action,
        ConfirmationAction::NotFound
    );
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn regulation_still_running_at_max_wait_is_pending_and_verify_reads_it_back() {
    let config = SegmentSimConfig {
        running_polls: 10,
        ..SegmentSimConfig::default()
    };
    let (sim, connector) = start(config, "max_wait_ms = 30\npoll_interval_ms = 20").await;
    let item = person("slow", RequestKind::Delete, Some("user-5"));
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(
        completion.evidence[EVIDENCE_REGULATE_ID],
        sim.regulations()[0].id
    );
    assert_ne!(completion.evidence["overall_status"], "FINISHED");

    assert_pending_then_verified(&connector, &item, &completion, 19).await;
    assert_eq!(sim.regulations()[0].overall_status, "FINISHED");
}

#[tokio::test]
async fn failed_regulation_is_permanent_and_partial_success_fails_verification() {
    let (sim, connector) = start(SegmentSimConfig::default(), "").await;
    sim.end_next_regulation_with("FAILED");
    let failed = person("f", RequestKind::Delete, Some("user-6"));
    assert_refused(
        apply_one(&connector, Operation::Delete, &failed).await,
        "ended FAILED",
    );

    sim.end_next_regulation_with("PARTIAL_SUCCESS");
    let partial = person("p", RequestKind::Delete, Some("user-7"));
    let completion = completed(&connector, Operation::Delete, &partial).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Failed);
    assert_eq!(
        completion.evidence["unfinished_destinations"],
        "Sim Warehouse: PARTIAL_SUCCESS"
    );
}

#[tokio::test]
async fn a_spent_regulation_quota_waits_until_it_resets() {
    let (sim, connector) = start(SegmentSimConfig::default(), "").await;
    sim.limit_regulations(1, Duration::from_secs(3 * 24 * 3600));
    let first = connector
        .apply(
            Operation::Suppress,
            &[person("a", RequestKind::OptOutSaleShare, Some("user-1"))],
        )
        .await
        .unwrap();
    assert!(first[0].is_ok(), "{first:?}");
    let err = connector
        .apply(
            Operation::Suppress,
            &[person("b", RequestKind::OptOutSaleShare, Some("user-2"))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::RetryAfter { after, detail }
            if *after > Duration::from_secs(71 * 3600) && detail.contains("Too many requests")),
        "{err:?}"
    );
    assert_eq!(sim.regulations().len(), 1);
}

#[tokio::test]
async fn refused_token_is_permanent_with_segments_text() {
    let config = SegmentSimConfig::default();
    let sim = SegmentSim::start(config).await.unwrap();
    let connector = connector_for(&sim, "sgp_wrong", "");
    let err = connector
        .apply(
            Operation::Suppress,
            &[person("r", RequestKind::OptOutSaleShare, Some("user-8"))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Permanent(t)
            if t.starts_with("HTTP 401") && t.contains("unauthorized: The provided API token is missing, invalid")),
        "{err:?}"
    );
}

#[tokio::test]
async fn validation_failure_is_permanent_with_segments_text() {
    let config = SegmentSimConfig {
        max_subject_ids: 1,
        ..SegmentSimConfig::default()
    };
    let (_sim, connector) = start(config, "").await;
    let err = connector
        .apply(
            Operation::Suppress,
            &[
                person("a", RequestKind::OptOutSaleShare, Some("user-1")),
                person("b", RequestKind::OptOutSaleShare, Some("user-2")),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Permanent(t)
            if t.starts_with("HTTP 422") && t.contains("input-validation (subjectIds)")),
        "{err:?}"
    );
}

#[tokio::test]
async fn simulator_validates_the_body_like_segment() {
    let config = SegmentSimConfig::default();
    let sim = SegmentSim::start(config.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(format!("{}/regulations", sim.base_url()))
            .bearer_auth(&config.token)
            .json(&body)
            .send()
    };
    let cases = [
        (
            json!({"regulationType": "FORGET", "subjectType": "USER_ID", "subjectIds": ["u"]}),
            "regulationType",
        ),
        (
            json!({"regulationType": "SUPPRESS_ONLY", "subjectType": "EMAIL", "subjectIds": ["u"]}),
            "subjectType",
        ),
        (
            json!({"regulationType": "SUPPRESS_ONLY", "subjectType": "USER_ID", "subjectIds": []}),
            "subjectIds",
        ),
        (
            json!({"regulationType": "SUPPRESS_ONLY", "subjectType": "USER_ID", "subjectIds": [""]}),
            "subjectIds",
        ),
    ];
    for (body, field) in cases {
        let answer = post(body).await.unwrap();
        assert_eq!(answer.status(), 422);
        let errors: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(errors["errors"][0]["field"], field);
    }
    let missing = http
        .get(format!("{}/regulations/nope", sim.base_url()))
        .bearer_auth(&config.token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(sim.regulations().is_empty());
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start(SegmentSimConfig::default(), "timeout_ms = 300").await;
    ComplianceSuite::new(&connector, &hush_connector_segment::FACTORY, &|kind| {
        person("suite", kind, Some("user-42"))
    })
    .with_faults(sim.control())
    .run()
    .await;
}
