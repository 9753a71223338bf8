//! The pipeline end to end on the real broker and registry: HTTP submit → both connectors →
//! the auditor's evidence record, and the failure cases around it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hush_contracts::callback::{CallbackStatus, RecipientCallback};
use hush_contracts::events::ConfirmationAction;
use hush_contracts::identifiers::sha256_hex;
use hush_sim_kit::Fault;
use hush_tests::auth::test_auth;
use hush_tests::pipeline::{Options, Pipeline};
use serde_json::{json, Value};

fn opt_out(email: &str, key: &str) -> Value {
    json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [{"type": "EMAIL", "value": email}, {"type": "PHONE", "value": "+1 415 555 0100"}],
        "categories": ["ALL"], "idempotency_key": key
    })
}

fn connector<'a>(record: &'a Value, id: &str) -> &'a Value {
    record["connectors"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["connector_id"] == id))
        .unwrap_or_else(|| panic!("no confirmation from {id} in {record:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opt_out_gpc_and_delete_reach_both_connectors_and_the_auditor_proves_it() {
    let pipeline = Pipeline::start("e2e", Options::default()).await;
    pipeline.hubspot.add_contact("jane.doe@example.com");
    pipeline.hubspot.add_contact("sam.lee@example.com");

    // A web-form opt-out.
    let (status, accepted) = pipeline
        .submit(opt_out(
            " Jane.Doe@Example.com",
            &format!("form-{}", uuid::Uuid::new_v4()),
        ))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let opt_out_id = accepted["request_id"].as_str().unwrap().to_owned();
    let record = pipeline.wait_complete(&opt_out_id).await;
    assert_eq!(record["kind"], "OPT_OUT_SALE_SHARE");
    assert_eq!(
        record["deadline"], accepted["deadline"],
        "auditor and intake agree on the deadline"
    );
    let hubspot = connector(&record, "hubspot");
    assert_eq!(hubspot["action"], "FLAGGED");
    assert_eq!(hubspot["verification"], "VERIFIED", "property read back");
    assert_eq!(hubspot["role"], "SERVICE_PROVIDER");
    let webhook = connector(&record, "partner-webhook");
    assert_eq!(webhook["action"], "NOTIFIED");
    assert_eq!(webhook["role"], "THIRD_PARTY");
    assert_eq!(
        webhook["verification"], "PENDING",
        "awaiting the recipient's own confirmation"
    );
    assert!(
        webhook["evidence"]["http_status"].as_str().is_some(),
        "{webhook:#}"
    );
    assert_eq!(record["status"], "UNVERIFIED");

    // The third party confirms its own completion through the signed callback.
    let status = pipeline
        .webhook
        .send_callback(&RecipientCallback {
            request_id: opt_out_id.clone(),
            connector_id: Some("partner-webhook".into()),
            status: CallbackStatus::Completed,
            exception_basis: None,
            detail: Some("stopped sharing; forwarded to our processors".into()),
        })
        .await
        .expect("callback delivered");
    assert_eq!(status, 200);
    let record = pipeline
        .wait_record(&opt_out_id, Duration::from_secs(20), |r| {
            r["status"] == "VERIFIED"
        })
        .await;
    let webhook = connector(&record, "partner-webhook");
    assert_eq!(webhook["action"], "SUPPRESSED");
    assert_eq!(webhook["verification"], "VERIFIED");
    assert_eq!(
        pipeline
            .hubspot
            .property("jane.doe@example.com", "hush_do_not_sell")
            .as_deref(),
        Some("true")
    );
    let notice = pipeline
        .webhook
        .notices()
        .into_iter()
        .find(|n| n.request_id == opt_out_id)
        .expect("the third party got a notice");
    assert!(
        notice
            .identifiers
            .iter()
            .any(|i| i.sha256 == sha256_hex("jane.doe@example.com")),
        "notice carries the hashed email"
    );

    // A GPC opt-out: the browser signal alone, no identity proof asked.
    let gpc = reqwest::Client::new()
        .post(format!("{}/v1/gpc", pipeline.intake_url))
        .header("Sec-GPC", "1")
        .json(&json!({"device_id": format!("device-{}", uuid::Uuid::new_v4())}))
        .send()
        .await
        .unwrap();
    assert_eq!(gpc.status().as_u16(), 202);
    let gpc: Value = gpc.json().await.unwrap();
    assert_eq!(gpc["honored"], true);
    let gpc_id = gpc["request_id"].as_str().unwrap().to_owned();
    let record = pipeline.wait_complete(&gpc_id).await;
    assert_eq!(record["channel"], "GPC");
    assert_eq!(
        connector(&record, "hubspot")["action"],
        "NOT_FOUND",
        "no email to find a contact by"
    );
    assert_eq!(connector(&record, "partner-webhook")["action"], "NOTIFIED");

    // A verified delete.
    let (status, accepted) = pipeline
        .submit(json!({
            "kind": "DELETE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
            "identifiers": [{"type": "EMAIL", "value": "sam.lee@example.com"}],
            "verification": {"attestation": test_auth().attest_email("sam.lee@example.com", "EMAIL_LINK")}
        }))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let delete_id = accepted["request_id"].as_str().unwrap().to_owned();
    assert!(
        accepted["deadline_rule"].as_str().unwrap().contains("45"),
        "{accepted}"
    );
    let record = pipeline.wait_complete(&delete_id).await;
    assert!(
        record["deadline_rule"]
            .as_str()
            .unwrap()
            .contains("1798.130"),
        "{record:#}"
    );
    assert_eq!(connector(&record, "hubspot")["action"], "DELETED");
    assert_eq!(connector(&record, "hubspot")["verification"], "VERIFIED");
    assert!(!pipeline.hubspot.exists("sam.lee@example.com"));

    // The 11 CCR 7102 report over today's requests of this pipeline.
    let today = chrono::Utc::now().date_naive();
    let report: Value = hush_tests::auth::operator_client()
        .get(format!(
            "{}/v1/report?from={}&to={}",
            pipeline.auditor_url,
            today.pred_opt().unwrap(),
            today.succ_opt().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = |kind: &str| {
        report["kinds"]
            .as_array()
            .and_then(|k| k.iter().find(|r| r["kind"] == kind))
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} row in {report:#}"))
    };
    assert_eq!(row("OPT_OUT_SALE_SHARE")["received"], 2, "{report:#}");
    assert_eq!(row("OPT_OUT_SALE_SHARE")["complied_whole"], 2, "{report:#}");
    assert_eq!(row("DELETE")["received"], 1);
    assert_eq!(row("DELETE")["complied_whole"], 1);
    assert_eq!(row("DELETE")["denied"], 0);
    assert!(row("DELETE")["median_days"]
        .as_f64()
        .is_some_and(|d| d < 0.1));

    // Nothing raw reached a non-request topic.
    let confirmations = pipeline.confirmations(6).await;
    let raw = serde_json::to_string(
        &confirmations
            .iter()
            .map(|c| &c.evidence)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        !raw.contains("jane.doe") && !raw.contains("sam.lee"),
        "{raw}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recipient_answering_429_then_200_is_retried_and_confirmed() {
    let pipeline = Pipeline::start("retry429", Options::default()).await;
    pipeline
        .webhook
        .control()
        .inject(Fault::too_many_requests(1));
    let (status, accepted) = pipeline.submit(opt_out("retry@example.com", "k429")).await;
    assert_eq!(status, 202);
    let id = accepted["request_id"].as_str().unwrap();
    let record = pipeline.wait_complete(id).await;
    let webhook = connector(&record, "partner-webhook");
    assert_eq!(webhook["action"], "NOTIFIED");
    assert_eq!(webhook["attempts"], 2, "one 429, then success");
    let calls = pipeline.webhook.control().calls_to("/privacy/notices");
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recipient_failing_forever_is_dead_lettered_as_failed_permanent() {
    let pipeline = Pipeline::start(
        "fail500",
        Options {
            max_attempts: 3,
            ..Options::default()
        },
    )
    .await;
    pipeline
        .webhook
        .control()
        .fail_always(Fault::server_error());
    let (_, accepted) = pipeline.submit(opt_out("down@example.com", "k500")).await;
    let id = accepted["request_id"].as_str().unwrap().to_owned();
    let record = pipeline
        .wait_record(&id, Duration::from_secs(60), |r| {
            r["connectors"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["connector_id"] == "partner-webhook"))
        })
        .await;
    let webhook = connector(&record, "partner-webhook");
    assert_eq!(webhook["action"], "FAILED_PERMANENT");
    assert_eq!(webhook["attempts"], 3);
    assert!(
        webhook["evidence"]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{webhook:#}"
    );
    assert_ne!(record["status"], "VERIFIED");
    assert_ne!(record["status"], "CONFIRMED");
    assert_eq!(
        pipeline
            .webhook
            .control()
            .calls_to("/privacy/notices")
            .len(),
        3
    );

    let dead = pipeline
        .stack
        .read_all(&pipeline.topics.dlq, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1, "the request was dead-lettered");
    let reason = dead[0]
        .header(hush_runtime::kafka::DLQ_REASON_HEADER)
        .unwrap();
    assert!(
        reason.contains("partner-webhook") && reason.contains("3 attempt"),
        "{reason}"
    );
    assert!(!reason.contains("down@example.com"));

    // The operator is told, and once the recipient recovers one call re-drives it.
    assert_eq!(record["status"], "ACTION_REQUIRED");
    pipeline.webhook.control().heal();
    let response = hush_tests::auth::operator_client()
        .post(format!(
            "{}/v1/requests/{id}/recipients/partner-webhook/retry",
            pipeline.auditor_url
        ))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let record = pipeline
        .wait_record(&id, Duration::from_secs(60), |r| {
            connector(r, "partner-webhook")["action"] == "NOTIFIED"
        })
        .await;
    assert_ne!(record["status"], "ACTION_REQUIRED");
    let retry = &record["changes"][0];
    assert_eq!(
        (
            retry["action"].as_str(),
            retry["actor"].as_str(),
            retry["note"].as_str()
        ),
        (
            Some("RETRY"),
            Some("integration-tests"),
            Some("partner-webhook")
        ),
        "the re-drive is recorded with its actor: {record:#}"
    );
    assert_eq!(
        pipeline
            .webhook
            .control()
            .calls_to("/privacy/notices")
            .len(),
        4,
        "one more call, to the recovered recipient only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suppressor_killed_mid_batch_loses_nothing_and_confirms_each_request_once() {
    let mut pipeline = Pipeline::start(
        "killed",
        Options {
            batch_size: 1,
            ..Options::default()
        },
    )
    .await;
    // Slow the recipient so the kill lands while work is in flight.
    pipeline
        .webhook
        .control()
        .fail_always(Fault::Delay(Duration::from_millis(150)));
    let mut ids = BTreeSet::new();
    for n in 0..20 {
        let (status, accepted) = pipeline
            .submit(opt_out(&format!("p{n}@example.com"), &format!("kill-{n}")))
            .await;
        assert_eq!(status, 202);
        ids.insert(accepted["request_id"].as_str().unwrap().to_owned());
    }
    // Let part of the work through, then kill the webhook suppressor without a clean stop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pipeline.webhook.notices().len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "suppressor made no progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pipeline.kill_suppressor("partner-webhook").await;
    let before_restart = pipeline.webhook.notices().len();
    assert!(
        before_restart < 20,
        "the kill landed mid-way ({before_restart} of 20 done)"
    );
    pipeline.webhook.control().heal();
    pipeline.start_suppressor("partner-webhook").await;

    for id in &ids {
        pipeline.wait_complete(id).await;
    }
    let confirmations = pipeline.confirmations(40).await;
    let mut per_request: BTreeMap<(String, String), usize> = BTreeMap::new();
    for confirmation in &confirmations {
        *per_request
            .entry((
                confirmation.request_id.clone(),
                confirmation.connector_id.clone(),
            ))
            .or_default() += 1;
    }
    for id in &ids {
        for connector in ["partner-webhook", "hubspot"] {
            assert_eq!(
                per_request.get(&(id.clone(), connector.to_owned())),
                Some(&1),
                "exactly one confirmation of {id} from {connector}"
            );
        }
    }
    // Any repeated call was absorbed by the recipient's idempotency (same Idempotency-Key).
    let distinct: BTreeSet<String> = pipeline
        .webhook
        .notices()
        .into_iter()
        .map(|n| n.request_id)
        .collect();
    assert_eq!(
        distinct, ids,
        "every request reached the recipient, none twice as a new notice"
    );
    assert!(confirmations
        .iter()
        .filter(|c| c.connector_id == "partner-webhook")
        .all(|c| c.action == ConfirmationAction::Notified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_for_an_unknown_request_is_dead_lettered_without_holding_up_the_rest() {
    let pipeline = Pipeline::start("stray", Options::default()).await;
    let email = "stray@example.com";
    let subject = sha256_hex(email);
    // A confirmation for a request that was never made, on the subject's partition.
    let stray = hush_contracts::events::Confirmation {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: subject.clone(),
        connector_id: "partner-webhook".into(),
        role: hush_contracts::events::RecipientRole::ThirdParty,
        action: ConfirmationAction::Notified,
        exception_basis: None,
        attempts: 1,
        first_attempt_at: None,
        last_attempt_at: None,
        completed_at: hush_contracts::events::now_millis(),
        verification: hush_contracts::events::VerificationStatus::Unverifiable,
        evidence: Default::default(),
    };
    pipeline
        .stack
        .producer()
        .send(&pipeline.topics.confirmations, &subject, &stray)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, accepted) = pipeline
        .submit(json!({"kind": "OPT_OUT_SALE_SHARE",
                       "identifiers": [{"type": "EMAIL", "value": email}]}))
        .await;
    assert_eq!(status, 202);
    pipeline
        .wait_complete(accepted["request_id"].as_str().unwrap())
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the real request was held up for {:?}",
        started.elapsed()
    );
    let dead = pipeline
        .stack
        .read_all(&pipeline.topics.dlq, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1);
    let reason = dead[0]
        .header(hush_runtime::kafka::DLQ_REASON_HEADER)
        .unwrap();
    assert!(
        reason.contains(&stray.request_id) && reason.contains("not on record"),
        "{reason}"
    );
}
