//! Contract tests: the HubSpot connector against the HubSpot simulator over loopback HTTP.

use std::time::Duration;

use hush_connector_hubspot::sim::HubSpotSimulator;
use hush_connector_hubspot::HubSpotConnector;
use hush_connector_kit::testing::profiles::{assert_reads_back, credentials_in_env};
use hush_connector_kit::testing::{
    apply_one, assert_every_item, completed, email, one, with_raw, work, ComplianceSuite, WorkExt,
};
use hush_contracts::connector::{
    Completion, Connector, ConnectorError, FromRecipient, Operation, SuppressionWork,
    WorkIdentifier,
};
use hush_contracts::events::VerificationStatus::{Failed, Pending, Verified};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::Fault;
use serde_json::json;

const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
const TOKEN_VAR: &str = "HUSH_TEST_HUBSPOT_TOKEN";
const WRONG_TOKEN_VAR: &str = "HUSH_TEST_HUBSPOT_WRONG_TOKEN";
const JANE: &str = "jane.doe@example.com";
const JOHN: &str = "john.roe@example.com";

fn recipient(base_url: &str, extra: &str, settings: &str) -> RecipientConfig {
    credentials_in_env(&[(TOKEN_VAR, TOKEN), (WRONG_TOKEN_VAR, "pat-na1-revoked")]);
    toml::from_str(&format!(
        "id = \"crm\"\nkind = \"hubspot\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"{base_url}\"\n\
         credentials = {{ token = \"{TOKEN_VAR}\" }}\n{extra}\n[settings]\n{settings}"
    ))
    .unwrap()
}

fn connector(sim: &HubSpotSimulator) -> HubSpotConnector {
    HubSpotConnector::from_recipient(&recipient(&sim.base_url(), "", "")).unwrap()
}

/// A request `request_id` for the people with `emails`, raw values kept (HubSpot looks
/// contacts up by email).
fn work_for(request_id: &str, kind: RequestKind, emails: &[&str]) -> SuppressionWork {
    emails
        .iter()
        .fold(work(kind).id(request_id), |work, address| {
            work.with(with_raw(IdentifierType::Email, address))
        })
}

/// Request `req-1` for the person with `email`.
fn person(kind: RequestKind, email: &str) -> SuppressionWork {
    work_for("req-1", kind, &[email])
}

async fn sim_with(contacts: &[&str]) -> HubSpotSimulator {
    let sim = HubSpotSimulator::start(TOKEN).await.unwrap();
    for contact in contacts {
        sim.add_contact(contact);
    }
    sim
}

/// A simulator holding Jane's contact, its connector, and a request of `kind` for Jane
/// completed through `operation`.
async fn completed_for_jane(
    kind: RequestKind,
    operation: Operation,
) -> (
    HubSpotSimulator,
    HubSpotConnector,
    SuppressionWork,
    Completion,
) {
    let sim = sim_with(&[JANE]).await;
    let connector = connector(&sim);
    let item = person(kind, JANE);
    let completion = completed(&connector, operation, &item).await;
    (sim, connector, item, completion)
}

fn permanent_detail(result: Result<Completion, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Permanent(detail)) => detail,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_single_opt_out_patches_the_contact_by_email() {
    let sim = sim_with(&[JANE]).await;
    let completion = completed(
        &connector(&sim),
        Operation::Suppress,
        &person(RequestKind::OptOutSaleShare, JANE),
    )
    .await;

    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "PATCH");
    assert_eq!(
        calls[0].path,
        "/crm/objects/2026-09/contacts/jane.doe@example.com?idProperty=email"
    );
    assert_eq!(
        calls[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(calls[0].header("content-type"), Some("application/json"));
    assert_eq!(
        calls[0].json,
        json!({"properties": {"hush_do_not_sell": "true"}})
    );
    assert_eq!(
        sim.property(JANE, "hush_do_not_sell").as_deref(),
        Some("true")
    );
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(completion.evidence["http_status"], "200");
    assert_eq!(completion.evidence["property"], "hush_do_not_sell");
    assert_eq!(completion.evidence["contacts_updated"], "1");
    assert!(!format!("{:?}", completion.evidence).contains("jane"));
}

#[tokio::test]
async fn a_limit_sets_the_limit_property() {
    let sim = sim_with(&[JANE]).await;
    completed(
        &connector(&sim),
        Operation::Suppress,
        &person(RequestKind::LimitSensitive, JANE),
    )
    .await;
    assert_eq!(
        sim.property(JANE, "hush_limit_sensitive").as_deref(),
        Some("true")
    );
    assert_eq!(sim.property(JANE, "hush_do_not_sell"), None);
}

#[tokio::test]
async fn an_opt_in_sets_the_opt_out_property_back_to_false() {
    let sim = sim_with(&[JANE]).await;
    let connector = connector(&sim);
    completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::OptOutSaleShare, JANE),
    )
    .await;
    let completion = completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::OptInSaleShare, JANE),
    )
    .await;
    assert_eq!(
        sim.property(JANE, "hush_do_not_sell").as_deref(),
        Some("false")
    );
    assert_eq!(completion.evidence["value"], "false");
    assert_eq!(
        connector
            .verify(&person(RequestKind::OptInSaleShare, JANE), &completion)
            .await,
        VerificationStatus::Verified
    );
}

#[tokio::test]
async fn several_items_go_in_one_batch_update_and_unknown_contacts_are_not_found() {
    let sim = sim_with(&[JANE, JOHN]).await;
    let results = connector(&sim)
        .apply(
            Operation::Suppress,
            &[
                work_for("req-a", RequestKind::OptOutSaleShare, &[JANE]),
                work_for("req-b", RequestKind::LimitSensitive, &[JOHN]),
                work_for(
                    "req-c",
                    RequestKind::OptOutSaleShare,
                    &["nobody@example.com"],
                ),
            ],
        )
        .await
        .unwrap();

    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/crm/objects/2026-09/contacts/batch/update");
    assert_eq!(calls[0].status, 207);
    assert_eq!(
        calls[0].json,
        json!({"inputs": [
            {"id": JANE, "idProperty": "email", "properties": {"hush_do_not_sell": "true"}},
            {"id": JOHN, "idProperty": "email", "properties": {"hush_limit_sensitive": "true"}},
            {"id": "nobody@example.com", "idProperty": "email", "properties": {"hush_do_not_sell": "true"}},
        ]})
    );
    let actions: Vec<ConfirmationAction> =
        results.iter().map(|r| r.as_ref().unwrap().action).collect();
    assert_eq!(
        actions,
        vec![
            ConfirmationAction::Flagged,
            ConfirmationAction::Flagged,
            ConfirmationAction::NotFound
        ]
    );
    assert_eq!(
        sim.property(JANE, "hush_do_not_sell").as_deref(),
        Some("true")
    );
    assert_eq!(
        sim.property(JOHN, "hush_limit_sensitive").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn more_than_one_hundred_contacts_are_split_into_calls_of_at_most_one_hundred() {
    let emails: Vec<String> = (0..150).map(|i| format!("user{i}@example.com")).collect();
    let sim = HubSpotSimulator::start(TOKEN).await.unwrap();
    for email in &emails {
        sim.add_contact(email);
    }
    let batch: Vec<SuppressionWork> = emails
        .iter()
        .enumerate()
        .map(|(i, e)| work_for(&format!("req-{i}"), RequestKind::OptOutSaleShare, &[e]))
        .collect();
    let results = connector(&sim)
        .apply(Operation::Suppress, &batch)
        .await
        .unwrap();
    assert_every_item(&results, batch.len(), ConfirmationAction::Flagged);
    let sizes: Vec<usize> = sim
        .control()
        .calls_to("/crm/objects/2026-09/contacts/batch/update")
        .iter()
        .map(|c| c.json["inputs"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 50]);
    assert!(emails
        .iter()
        .all(|e| sim.property(e, "hush_do_not_sell").as_deref() == Some("true")));
}

#[tokio::test]
async fn the_same_contact_twice_in_a_batch_is_written_in_order() {
    let sim = sim_with(&[JANE]).await;
    let results = connector(&sim)
        .apply(
            Operation::Suppress,
            &[
                work_for("req-out", RequestKind::OptOutSaleShare, &[JANE]),
                work_for("req-in", RequestKind::OptInSaleShare, &[JANE]),
            ],
        )
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok));
    let calls = sim.control().calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.method == "PATCH"));
    assert_eq!(
        sim.property(JANE, "hush_do_not_sell").as_deref(),
        Some("false")
    );
}

#[tokio::test]
async fn a_single_unknown_contact_is_not_found_and_verified_absent() {
    let sim = sim_with(&[]).await;
    let connector = connector(&sim);
    let item = person(RequestKind::OptOutSaleShare, JANE);
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(sim.control().calls()[0].status, 404);
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert_eq!(completion.evidence["contacts_not_found"], "1");
    assert_reads_back(&connector, &item, &completion, Verified).await;
}

#[tokio::test]
async fn a_missing_raw_email_is_permanent_and_nothing_is_sent() {
    let sim = sim_with(&[JANE]).await;
    let mut item = person(RequestKind::OptOutSaleShare, JANE);
    item.identifiers = vec![email(JANE)];
    let detail = permanent_detail(one(connector(&sim)
        .apply(Operation::Suppress, &[item])
        .await));
    assert!(detail.contains("raw email"), "{detail}");
    assert!(!detail.contains("jane"), "{detail}");
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn a_request_without_any_email_is_not_found_and_the_rest_proceed() {
    let sim = sim_with(&[JANE]).await;
    let mut cookie_only = work_for("req-gpc", RequestKind::OptOutSaleShare, &[]);
    cookie_only.identifiers = vec![WorkIdentifier {
        kind: IdentifierType::CookieId,
        sha256: "c".repeat(64),
        raw: None,
    }];
    let results = connector(&sim)
        .apply(
            Operation::Suppress,
            &[cookie_only, person(RequestKind::OptOutSaleShare, JANE)],
        )
        .await
        .unwrap();
    let cookie_only = results[0].as_ref().unwrap();
    assert_eq!(cookie_only.action, ConfirmationAction::NotFound);
    assert_eq!(
        cookie_only.evidence["reason"],
        "no EMAIL identifier: HubSpot contacts are found by email"
    );
    assert_eq!(
        results[1].as_ref().unwrap().action,
        ConfirmationAction::Flagged
    );
    assert_eq!(
        sim.control().calls().len(),
        1,
        "only Jane's contact was written"
    );
}

#[tokio::test]
async fn patching_twice_is_harmless() {
    let sim = sim_with(&[JANE]).await;
    let connector = connector(&sim);
    let item = person(RequestKind::OptOutSaleShare, JANE);
    let first = completed(&connector, Operation::Suppress, &item).await;
    let second = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(first.action, ConfirmationAction::Flagged);
    assert_eq!(second.action, ConfirmationAction::Flagged);
    assert_eq!(sim.control().calls().len(), 2);
    assert_eq!(
        sim.property(JANE, "hush_do_not_sell").as_deref(),
        Some("true")
    );
    assert_reads_back(&connector, &item, &second, Verified).await;
}

#[tokio::test]
async fn read_back_is_verified_when_the_property_holds_and_failed_when_it_does_not() {
    let (sim, connector, item, completion) =
        completed_for_jane(RequestKind::OptOutSaleShare, Operation::Suppress).await;

    assert_reads_back(&connector, &item, &completion, Verified).await;
    let read = sim.control().calls().pop().unwrap();
    assert_eq!(read.method, "POST");
    assert_eq!(read.path, "/crm/objects/2026-09/contacts/batch/read");
    assert_eq!(
        read.json,
        json!({"inputs": [{"id": JANE}], "idProperty": "email", "properties": ["email", "hush_do_not_sell"]})
    );

    sim.set_property(JANE, "hush_do_not_sell", "false");
    assert_reads_back(&connector, &item, &completion, Failed).await;
}

#[tokio::test]
async fn a_portal_that_drops_writes_answers_success_and_only_read_back_finds_out() {
    let sim = sim_with(&[JANE]).await;
    sim.drop_writes(true);
    let connector = connector(&sim);
    let item = person(RequestKind::OptOutSaleShare, JANE);
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(sim.property(JANE, "hush_do_not_sell"), None);
    assert_reads_back(&connector, &item, &completion, Failed).await;
    sim.drop_writes(false);
    completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(
        sim.property(JANE, "hush_do_not_sell").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn a_batch_is_read_back_in_one_call_per_hundred_contacts() {
    let emails: Vec<String> = (0..150).map(|i| format!("p{i}@example.com")).collect();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let sim = sim_with(&refs).await;
    let connector = connector(&sim);
    let items: Vec<SuppressionWork> = refs
        .iter()
        .map(|email| person(RequestKind::OptOutSaleShare, email))
        .chain([person(RequestKind::Delete, "gone@example.com")])
        .collect();
    let mut completions = Vec::new();
    for chunk in items[..150].chunks(100) {
        for result in connector.apply(Operation::Suppress, chunk).await.unwrap() {
            completions.push(result.unwrap());
        }
    }
    completions.push(one(connector.apply(Operation::Delete, &items[150..]).await).unwrap());
    sim.set_property("p7@example.com", "hush_do_not_sell", "false");
    let before = sim.control().calls().len();

    let pairs: Vec<(&SuppressionWork, &Completion)> = items.iter().zip(&completions).collect();
    let statuses = connector.verify_batch(&pairs).await;

    let reads: Vec<_> = sim.control().calls()[before..].to_vec();
    assert!(reads
        .iter()
        .all(|c| c.path == "/crm/objects/2026-09/contacts/batch/read"));
    assert_eq!(reads.len(), 2, "151 contacts take two reads of at most 100");
    assert_eq!(statuses.len(), 151);
    assert_eq!(statuses[7], VerificationStatus::Failed);
    assert_eq!(
        statuses[150],
        VerificationStatus::Verified,
        "the deleted contact is gone"
    );
    assert!(statuses
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .all(|(_, s)| *s == VerificationStatus::Verified));
    assert_eq!(connector.verify_batch_limit(), 100);
}

#[tokio::test]
async fn the_simulator_serves_only_the_date_versions_hubspot_serves() {
    let sim = sim_with(&[JANE]).await;
    let body = json!({"inputs": [{"id": JANE}], "idProperty": "email", "properties": ["email"]});
    for (version, status) in [
        ("2026-09", 200),
        ("2026-03", 200),
        ("2025-09", 404),
        ("v3", 404),
    ] {
        let path = format!("/crm/objects/{version}/contacts/batch/read");
        let answer = raw_call(&sim, reqwest::Method::POST, &path, body.clone()).await;
        assert_eq!(answer.0, status, "{version}: {}", answer.1);
    }
}

#[tokio::test]
async fn read_back_stays_pending_while_hubspot_is_failing() {
    let (sim, connector, item, completion) =
        completed_for_jane(RequestKind::OptOutSaleShare, Operation::Suppress).await;
    sim.control().inject(Fault::server_error());
    assert_reads_back(&connector, &item, &completion, Pending).await;
}

#[tokio::test]
async fn delete_uses_gdpr_delete_and_read_back_verifies_the_contact_is_gone() {
    let (sim, connector, item, completion) =
        completed_for_jane(RequestKind::Delete, Operation::Delete).await;

    let call = &sim.control().calls()[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/crm/objects/2026-09/contacts/gdpr-delete");
    assert_eq!(call.status, 204);
    assert_eq!(call.json, json!({"objectId": JANE, "idProperty": "email"}));
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.evidence["http_status"], "204");
    assert_eq!(completion.evidence["contacts_deleted"], "1");
    assert!(!sim.exists(JANE));

    assert_reads_back(&connector, &item, &completion, Verified).await;
    let read = sim.control().calls().pop().unwrap();
    assert_eq!(read.path, "/crm/objects/2026-09/contacts/batch/read");
    assert_eq!(
        read.status, 207,
        "HubSpot reports the contact OBJECT_NOT_FOUND"
    );

    sim.add_contact(JANE);
    assert_reads_back(&connector, &item, &completion, Failed).await;
}

#[tokio::test]
async fn deleting_an_unknown_email_blocklists_it_as_hubspot_documents() {
    let sim = sim_with(&[]).await;
    let completion = completed(
        &connector(&sim),
        Operation::Delete,
        &person(RequestKind::Delete, JANE),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert!(sim.blocklisted(JANE));
}

#[tokio::test]
async fn a_404_on_delete_is_not_found() {
    let sim = sim_with(&[JANE]).await;
    sim.control().inject(Fault::answer(
        404,
        r#"{"status":"error","message":"resource not found","category":"OBJECT_NOT_FOUND"}"#,
    ));
    let completion = completed(
        &connector(&sim),
        Operation::Delete,
        &person(RequestKind::Delete, JANE),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert_eq!(completion.evidence["http_status"], "404");
}

#[tokio::test]
async fn delete_refuses_work_that_is_not_a_deletion() {
    let sim = sim_with(&[JANE]).await;
    let detail = permanent_detail(
        apply_one(
            &connector(&sim),
            Operation::Delete,
            &person(RequestKind::OptOutSaleShare, JANE),
        )
        .await,
    );
    assert!(detail.contains("not a deletion"), "{detail}");
    assert!(sim.exists(JANE));
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn the_simulator_enforces_one_hundred_requests_per_ten_seconds() {
    let sim = sim_with(&[JANE]).await;
    let connector = connector(&sim);
    let item = person(RequestKind::OptOutSaleShare, JANE);
    for _ in 0..100 {
        completed(&connector, Operation::Suppress, &item).await;
    }
    let error = one(connector
        .apply(Operation::Suppress, std::slice::from_ref(&item))
        .await)
    .unwrap_err();
    match error {
        ConnectorError::RetryAfter { after, detail } => {
            assert!(
                after >= Duration::from_secs(1) && after <= Duration::from_secs(10),
                "{after:?}"
            );
            assert!(detail.contains("ten_secondly_rolling"), "{detail}");
        }
        other => panic!("expected retry-after, got {other:?}"),
    }
    let last = sim.control().calls().pop().unwrap();
    assert_eq!(last.status, 429);
}

#[tokio::test]
async fn a_rate_limited_batch_call_fails_every_item_and_stops_further_calls() {
    let emails: Vec<String> = (0..101).map(|i| format!("user{i}@example.com")).collect();
    let sim = HubSpotSimulator::start(TOKEN).await.unwrap();
    let batch: Vec<SuppressionWork> = emails
        .iter()
        .enumerate()
        .map(|(i, e)| work_for(&format!("req-{i}"), RequestKind::OptOutSaleShare, &[e]))
        .collect();
    sim.control().inject(Fault::too_many_requests(3));
    let results = connector(&sim)
        .apply(Operation::Suppress, &batch)
        .await
        .unwrap();
    assert_eq!(sim.control().calls().len(), 1);
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(ConnectorError::RetryAfter { .. }))));
}

#[tokio::test]
async fn a_400_is_permanent_with_hubspots_text_and_no_email() {
    let sim = sim_with(&[JANE]).await;
    let connector = HubSpotConnector::from_recipient(&recipient(
        &sim.base_url(),
        "",
        "opt_out_property = \"ccpa_do_not_sell\"\n",
    ))
    .unwrap();
    let detail = permanent_detail(
        apply_one(
            &connector,
            Operation::Suppress,
            &person(RequestKind::OptOutSaleShare, JANE),
        )
        .await,
    );
    assert!(detail.contains("HTTP 400"), "{detail}");
    assert!(detail.contains("VALIDATION_ERROR"), "{detail}");
    assert!(detail.contains("PROPERTY_DOESNT_EXIST"), "{detail}");
    assert!(!detail.contains("jane"), "{detail}");
    assert_eq!(sim.property(JANE, "ccpa_do_not_sell"), None);
}

#[tokio::test]
async fn a_renamed_property_works_once_the_portal_defines_it() {
    let sim = sim_with(&[JANE]).await;
    sim.define_property("ccpa_do_not_sell");
    let connector = HubSpotConnector::from_recipient(&recipient(
        &sim.base_url(),
        "",
        "opt_out_property = \"ccpa_do_not_sell\"\n",
    ))
    .unwrap();
    completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::OptOutSaleShare, JANE),
    )
    .await;
    assert_eq!(
        sim.property(JANE, "ccpa_do_not_sell").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn a_refused_token_is_permanent_and_names_the_credential() {
    let sim = sim_with(&[JANE]).await;
    let mut wrong = recipient(&sim.base_url(), "", "");
    wrong.credentials.insert(
        "token".into(),
        hush_contracts::config::SecretRef(WRONG_TOKEN_VAR.into()),
    );
    let detail = permanent_detail(one(HubSpotConnector::from_recipient(&wrong)
        .unwrap()
        .apply(
            Operation::Suppress,
            &[person(RequestKind::OptOutSaleShare, JANE)],
        )
        .await));
    assert!(detail.contains("INVALID_AUTHENTICATION"), "{detail}");
    assert!(detail.contains("credentials.token"), "{detail}");
    assert_eq!(sim.property(JANE, "hush_do_not_sell"), None);
}

async fn raw_call(
    sim: &HubSpotSimulator,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn assert_hubspot_validation_error(answer: &(u16, serde_json::Value), fragment: &str) {
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert_eq!(answer.1["status"], "error");
    assert_eq!(answer.1["category"], "VALIDATION_ERROR");
    assert!(answer.1["correlationId"].is_string());
    let message = answer.1["message"].as_str().unwrap();
    assert!(message.contains(fragment), "{message}");
}

/// Sends each `(method, path, body)` straight to the simulator and checks it answers HubSpot's
/// validation error saying `fragment`.
async fn assert_refused_by_simulator(
    sim: &HubSpotSimulator,
    cases: Vec<(reqwest::Method, &str, serde_json::Value, &str)>,
) {
    for (method, path, body, fragment) in cases {
        let answer = raw_call(sim, method, path, body).await;
        assert_hubspot_validation_error(&answer, fragment);
    }
}

const PATCH_JANE: &str = "/crm/objects/2026-09/contacts/jane.doe@example.com?idProperty=email";

#[tokio::test]
async fn the_simulator_refuses_a_non_normalised_email_like_hubspot() {
    let sim = sim_with(&[JANE]).await;
    assert_refused_by_simulator(
        &sim,
        vec![
            (
                reqwest::Method::PATCH,
                "/crm/objects/2026-09/contacts/Jane.Doe@Example.com?idProperty=email",
                json!({"properties": {"hush_do_not_sell": "true"}}),
                "trimmed and lowercase",
            ),
            (
                reqwest::Method::POST,
                "/crm/objects/2026-09/contacts/gdpr-delete",
                json!({"objectId": " jane.doe@example.com", "idProperty": "email"}),
                "trimmed and lowercase",
            ),
        ],
    )
    .await;
    assert!(sim.exists(JANE));
    assert_eq!(sim.property(JANE, "hush_do_not_sell"), None);
}

#[tokio::test]
async fn the_simulator_refuses_batches_over_the_limit_duplicates_and_bad_shapes() {
    let sim = sim_with(&[JANE]).await;
    let inputs: Vec<serde_json::Value> = (0..101)
        .map(|i| json!({"id": format!("u{i}@example.com"), "idProperty": "email", "properties": {"hush_do_not_sell": "true"}}))
        .collect();
    let path = "/crm/objects/2026-09/contacts/batch/update";
    let duplicate =
        json!({"id": JANE, "idProperty": "email", "properties": {"hush_do_not_sell": "true"}});
    let by_phone =
        json!({"id": JANE, "idProperty": "phone", "properties": {"hush_do_not_sell": "true"}});
    assert_refused_by_simulator(
        &sim,
        vec![
            (
                reqwest::Method::POST,
                path,
                json!({ "inputs": inputs }),
                "between 1 and 100",
            ),
            (
                reqwest::Method::POST,
                path,
                json!({"inputs": [duplicate.clone(), duplicate]}),
                "Duplicate IDs",
            ),
            (
                reqwest::Method::POST,
                path,
                json!({ "inputs": [by_phone] }),
                "not a unique identifier",
            ),
            (
                reqwest::Method::PATCH,
                PATCH_JANE,
                json!({"properties": {"hush_do_not_sell": "yes"}}),
                "INVALID_OPTION",
            ),
            (
                reqwest::Method::PATCH,
                PATCH_JANE,
                json!({"hush_do_not_sell": "true"}),
                "Invalid input JSON",
            ),
        ],
    )
    .await;
    assert_eq!(sim.property(JANE, "hush_do_not_sell"), None);
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let sim = sim_with(&[JANE]).await;
    let connector =
        HubSpotConnector::from_recipient(&recipient(&sim.base_url(), "timeout_ms = 300", ""))
            .unwrap();
    ComplianceSuite::new(&connector, &hush_connector_hubspot::FACTORY, &|kind| {
        person(kind, JANE)
    })
    .applying_opt_ins()
    .with_faults(sim.control())
    .run()
    .await;
}
