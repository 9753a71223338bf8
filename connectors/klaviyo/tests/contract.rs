//! Contract tests: the Klaviyo connector against the Klaviyo API simulator over loopback.

use hush_connector_kit::secret::Secret;
use hush_connector_kit::testing::profiles::{
    assert_http_refused_without, assert_key_refused, assert_misrouted_refused, simulator_recipient,
};
use hush_connector_kit::testing::read_back::read_back_until_settled;
use hush_connector_kit::testing::{apply_one, completed, work, ComplianceSuite, WorkExt};
use hush_connector_klaviyo::sim::{KlaviyoSim, KlaviyoSimConfig};
use hush_connector_klaviyo::{KlaviyoConfig, KlaviyoConnector, EVIDENCE_JOB_ID, FACTORY};
use hush_contracts::connector::{Connector, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use serde_json::{json, Value};

const KEY: &str = "pk_sim_klaviyo_private_key";

/// A connector for the simulator; `settings` overrides the test defaults (10 ms between reads,
/// 500 ms of waiting).
fn connector_for(sim: &KlaviyoSim, key: &str, settings: &str) -> KlaviyoConnector {
    let recipient = simulator_recipient(
        "klaviyo",
        &sim.base_url(),
        "poll_interval_ms = 10\nmax_wait_ms = 500",
        settings,
    );
    let config = KlaviyoConfig::with_api_key(
        &recipient,
        Secret::new(key),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
    )
    .unwrap();
    KlaviyoConnector::new(config).unwrap()
}

async fn start(settings: &str) -> (KlaviyoSim, KlaviyoConnector) {
    let sim = KlaviyoSim::start(KlaviyoSimConfig::default())
        .await
        .unwrap();
    let connector = connector_for(&sim, KEY, settings);
    (sim, connector)
}

fn person(kind: RequestKind, address: Option<&str>, phone: Option<&str>) -> SuppressionWork {
    work(kind)
        .with_raw_if(IdentifierType::Email, address)
        .with_raw_if(IdentifierType::Phone, phone)
}

fn suppressed(sim: &KlaviyoSim, address: &str) -> bool {
    sim.profiles()
        .iter()
        .any(|p| p.email.as_deref() == Some(address) && p.suppressed)
}

#[tokio::test]
async fn opt_outs_and_limits_are_suppressed_in_one_job_and_verified_when_it_completes() {
    let (sim, connector) = start("").await;
    sim.add_profile(Some("sarah.mason@klaviyo-demo.com"), None);
    let batch = [
        person(
            RequestKind::OptOutSaleShare,
            Some("Sarah.Mason@Klaviyo-Demo.com"),
            None,
        ),
        person(RequestKind::LimitSensitive, Some("matt@example.com"), None),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].emails,
        vec!["sarah.mason@klaviyo-demo.com", "matt@example.com"]
    );
    for result in &results {
        let completion = result.as_ref().unwrap();
        assert_eq!(completion.action, ConfirmationAction::Suppressed);
        assert_eq!(completion.verification, VerificationStatus::Verified);
        assert_eq!(completion.evidence[EVIDENCE_JOB_ID], jobs[0].id);
        assert_eq!(completion.evidence["job_status"], "complete");
        assert_eq!(completion.evidence["completed_count"], "2");
    }
    assert!(suppressed(&sim, "sarah.mason@klaviyo-demo.com"));
    assert!(suppressed(&sim, "matt@example.com"));

    let create = &sim
        .control()
        .calls_to("/api/profile-suppression-bulk-create-jobs")[0];
    assert_eq!(
        create.header("authorization"),
        Some("Klaviyo-API-Key pk_sim_klaviyo_private_key")
    );
    assert_eq!(create.header("revision"), Some("2026-10-15"));
    assert_eq!(
        create.header("content-type"),
        Some("application/vnd.api+json")
    );
    assert_eq!(
        create.json,
        json!({"data": {"type": "profile-suppression-bulk-create-job", "attributes": {"profiles": {"data": [
            {"type": "profile", "attributes": {"email": "sarah.mason@klaviyo-demo.com"}},
            {"type": "profile", "attributes": {"email": "matt@example.com"}}
        ]}}}})
    );
}

#[tokio::test]
async fn a_job_still_queued_at_max_wait_is_pending_and_verify_reads_the_job() {
    let (sim, connector) = start("max_wait_ms = 20\npoll_interval_ms = 10").await;
    sim.set_job_reads(50);
    let item = person(RequestKind::OptOutSaleShare, Some("slow@example.com"), None);
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(completion.evidence["job_status"], "queued");
    let job = &sim.jobs()[0].id;
    assert_eq!(&completion.evidence[EVIDENCE_JOB_ID], job);
    sim.set_job_reads(0);
    let settled = read_back_until_settled(&connector, &item, &completion, 60).await;
    assert_eq!(settled, VerificationStatus::Verified);
    assert!(sim
        .control()
        .calls_to(&format!("/api/profile-suppression-bulk-create-jobs/{job}"))
        .iter()
        .all(|c| c.method == "GET"));
}

#[tokio::test]
async fn opt_ins_and_limits_when_disabled_are_not_applicable_without_a_call() {
    let (sim, connector) = start("suppress_on_limit = false").await;
    let results = connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptInSaleShare, Some("a@example.com"), None),
                person(RequestKind::LimitSensitive, Some("a@example.com"), None),
            ],
        )
        .await
        .unwrap();
    for result in &results {
        assert_eq!(
            result.as_ref().unwrap().action,
            ConfirmationAction::NotApplicable
        );
    }
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn requests_without_an_email_or_phone_are_not_found_with_the_reason_without_a_call() {
    let (sim, connector) = start("").await;
    let phone_only = person(RequestKind::OptOutSaleShare, None, Some("+15005550006"));
    let suppressed = completed(&connector, Operation::Suppress, &phone_only).await;
    assert_eq!(suppressed.action, ConfirmationAction::NotFound);
    assert_eq!(
        suppressed.evidence["reason"],
        "no EMAIL identifier: Klaviyo suppresses profiles by email address"
    );
    let deleted = completed(&connector, Operation::Delete, &work(RequestKind::Delete)).await;
    assert_eq!(deleted.action, ConfirmationAction::NotFound);
    assert_eq!(
        deleted.evidence["reason"],
        "no EMAIL or PHONE identifier: Klaviyo deletes profiles by email address or phone number"
    );
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn a_deletion_asks_once_per_identifier_and_is_verified_when_no_profile_is_left() {
    let (sim, connector) = start("").await;
    sim.add_profile(Some("jane@example.com"), None);
    sim.add_profile(None, Some("+15005550006"));
    let kept = sim.add_profile(Some("other@example.com"), None);
    let completion = completed(
        &connector,
        Operation::Delete,
        &person(
            RequestKind::Delete,
            Some("jane@example.com"),
            Some("+15005550006"),
        ),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["deletion_jobs"], "2");
    assert_eq!(completion.evidence["identifiers"], "email,phone_number");
    assert_eq!(completion.evidence["http_status"], "202");
    let deletions = sim.control().calls_to("/api/data-privacy-deletion-jobs");
    assert_eq!(deletions.len(), 2);
    assert_eq!(
        deletions[0].json,
        json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
            "type": "profile", "attributes": {"email": "jane@example.com"}
        }}}}})
    );
    assert_eq!(
        deletions[1].json["data"]["attributes"]["profile"]["data"]["attributes"],
        json!({"phone_number": "+15005550006"})
    );
    let profiles = sim.profiles();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].id, kept);
    let reads = sim.control().calls_to("/api/profiles");
    assert!(
        reads[0]
            .path
            .contains("filter=equals%28email%2C%22jane%40example.com%22%29"),
        "{}",
        reads[0].path
    );
}

#[tokio::test]
async fn a_deletion_not_done_within_the_wait_is_pending_and_read_back_later() {
    let (sim, connector) = start("max_wait_ms = 20\npoll_interval_ms = 10").await;
    sim.set_deletion_reads(30);
    sim.add_profile(Some("slow@example.com"), None);
    let item = person(RequestKind::Delete, Some("slow@example.com"), None);
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.verification, VerificationStatus::Pending);
    let settled = read_back_until_settled(&connector, &item, &completion, 40).await;
    assert_eq!(settled, VerificationStatus::Verified);
    assert!(sim.profiles().is_empty());
}

#[tokio::test]
async fn requests_klaviyo_cannot_act_on_are_refused_without_a_call() {
    let (sim, connector) = start("").await;
    assert_misrouted_refused(&connector, &|kind| {
        person(kind, Some("a@example.com"), None)
    })
    .await;
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn jobs_hold_at_most_100_emails() {
    let (sim, connector) = start("").await;
    let batch: Vec<SuppressionWork> = (0..FACTORY.max_batch + 5)
        .map(|n| {
            person(
                RequestKind::OptOutSaleShare,
                Some(&format!("p{n}@example.com")),
                None,
            )
        })
        .collect();
    assert_eq!(FACTORY.max_batch, 100);
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    let sizes: Vec<usize> = sim.jobs().iter().map(|j| j.emails.len()).collect();
    assert_eq!(sizes, vec![100, 5]);
}

#[tokio::test]
async fn a_refused_key_and_a_validation_error_are_permanent_with_klaviyos_text() {
    let sim = KlaviyoSim::start(KlaviyoSimConfig::default())
        .await
        .unwrap();
    let opt_out = |address| person(RequestKind::OptOutSaleShare, Some(address), None);
    let connector = connector_for(&sim, "pk_wrong", "");
    let refused = apply_one(&connector, Operation::Suppress, &opt_out("a@example.com")).await;
    assert_key_refused(refused, "not_authenticated");
    let connector = connector_for(&sim, KEY, "");
    let refusal = include_str!("fixtures/invalid_email.json");
    sim.control()
        .inject(hush_sim_kit::Fault::answer(400, refusal));
    let jane = opt_out("jane@example.com");
    let refused = apply_one(&connector, Operation::Suppress, &jane).await;
    let says = "invalid: '[redacted]' is not a valid email";
    assert_http_refused_without(refused, 400, says, "jane@example.com");
}

#[tokio::test]
async fn simulator_refuses_what_klaviyo_refuses() {
    let sim = KlaviyoSim::start(KlaviyoSimConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, revision: Option<&str>, body: Value| {
        let mut call = http
            .post(format!("{}{path}", sim.base_url()))
            .header("authorization", format!("Klaviyo-API-Key {KEY}"))
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string());
        if let Some(revision) = revision {
            call = call.header("revision", revision);
        }
        call.send()
    };
    let both = json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
        "type": "profile", "attributes": {"email": "a@example.com", "phone_number": "+15005550006"}}}}}});
    let answer = post("/api/data-privacy-deletion-jobs", Some("2026-10-15"), both)
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let text: Value = answer.json().await.unwrap();
    assert!(text["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("Exactly one"));

    let too_many: Vec<Value> = (0..101)
        .map(|n| json!({"type": "profile", "attributes": {"email": format!("p{n}@example.com")}}))
        .collect();
    let body = json!({"data": {"type": "profile-suppression-bulk-create-job", "attributes": {"profiles": {"data": too_many}}}});
    let answer = post(
        "/api/profile-suppression-bulk-create-jobs",
        Some("2026-10-15"),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = post("/api/profile-suppression-bulk-create-jobs", None, body)
        .await
        .unwrap();
    assert_eq!(answer.status(), 400, "the revision header is required");
    assert!(sim.jobs().is_empty());
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start("").await;
    sim.add_profile(Some("suite@example.com"), None);
    ComplianceSuite::new(&connector, &FACTORY, &|kind| {
        person(kind, Some("suite@example.com"), None)
    })
    .with_faults(sim.control())
    .run()
    .await;
}
