//! Contract tests: the Salesforce connector against the Salesforce simulator over loopback.

use std::time::Duration;

use hush_connector_kit::testing::profiles::{assert_reads_back, credentials_in_env};
use hush_connector_kit::testing::{
    answered_json, assert_every_item, assert_refused, assert_retry_after, email, one, with_raw,
    work, ComplianceSuite, WorkExt,
};
use hush_connector_salesforce::sim::{IndividualFlags, SalesforceSim};
use hush_connector_salesforce::SalesforceConnector;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, FromRecipient, ItemResults, Operation,
    SuppressionWork,
};
use hush_contracts::events::VerificationStatus::{Failed, Pending, Verified};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::{Fault, RecordedCall, RunningSim};
use serde_json::json;

const CLIENT_ID: &str = "hush-sim-client";
const CLIENT_SECRET: &str = "hush-sim-secret";
const COLLECTIONS: &str = "/services/data/v67.0/composite/sobjects";
const TOKEN: &str = "/services/oauth2/token";
/// The environment variables the recipient block names for its client credentials, and what
/// they hold: the credentials the simulator accepts.
const CREDENTIALS_IN_ENV: [(&str, &str); 2] = [
    ("HUSH_TEST_SF_CLIENT_ID", CLIENT_ID),
    ("HUSH_TEST_SF_CLIENT_SECRET", CLIENT_SECRET),
];

struct Setup {
    sim: SalesforceSim,
    running: RunningSim,
    connector: SalesforceConnector,
}

impl Setup {
    fn calls(&self, method: &str, prefix: &str) -> Vec<RecordedCall> {
        self.running
            .control
            .calls_to(prefix)
            .into_iter()
            .filter(|c| c.method.as_str() == method)
            .collect()
    }

    /// Applies `operation` to the one request `work`; panics unless it completed.
    async fn one(&self, operation: Operation, work: SuppressionWork) -> Completion {
        one(self.connector.apply(operation, &[work]).await).expect("the item completed")
    }

    /// What the connector answers to opting out the person with `raw_email`.
    async fn opt_out_result(&self, raw_email: &str) -> BatchResult {
        let request = person(RequestKind::OptOutSaleShare, Some(raw_email));
        self.connector.apply(Operation::Suppress, &[request]).await
    }

    /// Opts the person with `raw_email` out; panics unless the request completed.
    async fn opt_out(&self, raw_email: &str) -> Completion {
        one(self.opt_out_result(raw_email).await).expect("the item completed")
    }

    /// Applies `Suppress` to `batch`; panics when the whole batch fails.
    async fn suppress(&self, batch: &[SuppressionWork]) -> ItemResults {
        let results = self.connector.apply(Operation::Suppress, batch).await;
        results.expect("the batch itself does not fail")
    }

    /// Whether the Individual of the record holding `email` has `HasOptedOutTracking` set.
    fn opted_out_of_tracking(&self, email: &str) -> bool {
        let flags = self.sim.individual_flags(email);
        flags
            .expect("the record has an Individual")
            .has_opted_out_tracking
    }

    /// Opt-outs for `count` people `<prefix><n>@example.com`, each stored as a Contact with
    /// an Individual.
    fn known_contacts_opting_out(&self, prefix: &str, count: usize) -> Vec<SuppressionWork> {
        (0..count)
            .map(|n| {
                let email = format!("{prefix}{n}@example.com");
                self.sim.add_contact(&email, true);
                person(RequestKind::OptOutSaleShare, Some(&email))
            })
            .collect()
    }

    /// Runs one request that obtains a token, so injected faults hit a data call.
    async fn warm_up(&self) {
        let completion = self.opt_out("nobody@example.com").await;
        assert_eq!(completion.action, ConfirmationAction::NotFound);
    }
}

async fn setup(settings: &str) -> Setup {
    setup_with(settings, 5_000, CLIENT_SECRET).await
}

async fn setup_with(settings: &str, timeout_ms: u64, sim_secret: &str) -> Setup {
    credentials_in_env(&CREDENTIALS_IN_ENV);
    let sim = SalesforceSim::new(CLIENT_ID, sim_secret);
    let running = sim.start().await.unwrap();
    let recipient: RecipientConfig = toml::from_str(&format!(
        r#"
id = "salesforce"
kind = "salesforce"
role = "SERVICE_PROVIDER"
base_url = "{}"
timeout_ms = {timeout_ms}
credentials = {{ client_id = "HUSH_TEST_SF_CLIENT_ID", client_secret = "HUSH_TEST_SF_CLIENT_SECRET" }}

[settings]
{settings}
"#,
        running.base_url()
    ))
    .unwrap();
    let connector = SalesforceConnector::from_recipient(&recipient).unwrap();
    Setup {
        sim,
        running,
        connector,
    }
}

/// A fresh request of `kind` for the person with `raw_email` (kept raw: Salesforce is searched
/// by email), or for an email Hush holds only hashed.
fn person(kind: RequestKind, raw_email: Option<&str>) -> SuppressionWork {
    work(kind).with(match raw_email {
        Some(address) => with_raw(IdentifierType::Email, address),
        None => email("hashed-only@example.com"),
    })
}

#[tokio::test]
async fn opt_out_sets_exactly_the_opt_out_flags() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    let completion = s.opt_out("jane@example.com").await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(
        s.sim.individual_flags("jane@example.com").unwrap(),
        IndividualFlags {
            has_opted_out_tracking: true,
            has_opted_out_profiling: true,
            ..Default::default()
        }
    );
    let patches = s.calls("PATCH", COLLECTIONS);
    assert_eq!(patches.len(), 1);
    let individual = &completion.evidence["individual_ids"];
    assert_eq!(
        patches[0].json,
        json!({"allOrNone": false, "records": [{
            "attributes": {"type": "Individual"},
            "id": individual,
            "HasOptedOutTracking": true,
            "HasOptedOutProfiling": true
        }]})
    );
    assert!(patches[0]
        .header("authorization")
        .unwrap()
        .starts_with("Bearer "));
    let evidence = format!("{:?}", completion.evidence);
    assert!(!evidence.contains("jane"), "{evidence}");
}

#[tokio::test]
async fn limit_sets_the_configured_flag_only() {
    let s = setup("limit_sensitive_flags = [\"HasOptedOutSolicit\"]").await;
    s.sim.add_contact("jane@example.com", true);
    let completion = s
        .one(
            Operation::Suppress,
            person(RequestKind::LimitSensitive, Some("jane@example.com")),
        )
        .await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(
        s.sim.individual_flags("jane@example.com").unwrap(),
        IndividualFlags {
            has_opted_out_solicit: true,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn limit_sets_processing_by_default() {
    let s = setup("").await;
    s.sim.add_lead("lee@example.com", true);
    s.one(
        Operation::Suppress,
        person(RequestKind::LimitSensitive, Some("lee@example.com")),
    )
    .await;
    assert_eq!(
        s.sim.individual_flags("lee@example.com").unwrap(),
        IndividualFlags {
            has_opted_out_processing: true,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn requests_for_one_person_in_one_batch_write_one_merged_record() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    let results = s
        .connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptOutSaleShare, Some("jane@example.com")),
                person(RequestKind::LimitSensitive, Some("jane@example.com")),
            ],
        )
        .await
        .unwrap();
    assert_every_item(&results, 2, ConfirmationAction::Flagged);
    let patches = s.calls("PATCH", COLLECTIONS);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].json["records"].as_array().unwrap().len(), 1);
    let flags = s.sim.individual_flags("jane@example.com").unwrap();
    assert!(
        flags.has_opted_out_tracking
            && flags.has_opted_out_profiling
            && flags.has_opted_out_processing
    );
}

#[tokio::test]
async fn delete_sets_should_forget_then_deletes_contacts_and_leads() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    s.sim.add_lead("jane@example.com", false);
    let request = person(RequestKind::Delete, Some("jane@example.com"));
    let completion = s.one(Operation::Delete, request.clone()).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.evidence["records_deleted"], "2");
    assert!(!s.sim.contact_exists("jane@example.com"));
    assert!(!s.sim.lead_exists("jane@example.com"));

    let writes: Vec<_> = s
        .running
        .control
        .calls_to(COLLECTIONS)
        .into_iter()
        .filter(|c| c.method.as_str() != "POST")
        .collect();
    let methods: Vec<&str> = writes.iter().map(|c| c.method.as_str()).collect();
    // Link the Lead to the Contact's Individual, set ShouldForget, then delete both records.
    assert_eq!(methods, ["PATCH", "PATCH", "DELETE"]);
    assert_eq!(
        writes[1].json["records"][0],
        json!({"attributes": {"type": "Individual"}, "id": completion.evidence["individual_ids"], "ShouldForget": true})
    );
    assert!(
        writes[2].path.contains("allOrNone=false"),
        "{}",
        writes[2].path
    );
    // ShouldForget is read back from the Individual, which outlives the records.
    assert_reads_back(&s.connector, &request, &completion, Verified).await;
}

#[tokio::test]
async fn delete_keeping_records_only_flags_should_forget() {
    let s = setup("delete_records = false").await;
    s.sim.add_contact("jane@example.com", true);
    let completion = s
        .one(
            Operation::Delete,
            person(RequestKind::Delete, Some("jane@example.com")),
        )
        .await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert!(s.sim.contact_exists("jane@example.com"));
    assert!(
        s.sim
            .individual_flags("jane@example.com")
            .unwrap()
            .should_forget
    );
    assert!(s.calls("DELETE", COLLECTIONS).is_empty());
}

#[tokio::test]
async fn unknown_email_is_not_found() {
    let s = setup("").await;
    s.sim.add_contact("someone-else@example.com", true);
    let completion = s.opt_out("jane@example.com").await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert!(s.running.control.calls_to(COLLECTIONS).is_empty());
}

#[tokio::test]
async fn email_with_quote_is_escaped_and_found() {
    let s = setup("").await;
    s.sim.add_contact("o'brien@example.com", true);
    let completion = s.opt_out("o'brien@example.com").await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert!(s.opted_out_of_tracking("o'brien@example.com"));
}

#[tokio::test]
async fn raw_email_is_normalised_before_the_query() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    let completion = s.opt_out("  Jane@Example.COM ").await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    for call in s.running.control.calls_to("/services/data/v67.0/query") {
        assert_eq!(call.status, 200, "{}", call.path);
    }
}

#[tokio::test]
async fn email_without_raw_value_is_a_permanent_item_error() {
    let s = setup("").await;
    let results = s
        .connector
        .apply(
            Operation::Suppress,
            &[person(RequestKind::OptOutSaleShare, None)],
        )
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(ConnectorError::Permanent(m)) if m.contains("raw EMAIL identifier is required")),
        "{results:?}"
    );
}

#[tokio::test]
async fn contact_without_individual_gets_one_created_and_linked() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", false);
    let completion = s.opt_out("jane@example.com").await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(completion.evidence["individuals_created"], "1");
    let created = s.calls("POST", COLLECTIONS);
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].json["records"][0]["attributes"]["type"],
        "Individual"
    );
    assert!(s.opted_out_of_tracking("jane@example.com"));
}

#[tokio::test]
async fn without_create_individuals_a_record_without_individual_is_not_found() {
    let s = setup("create_individuals = false").await;
    s.sim.add_contact("jane@example.com", false);
    let completion = s.opt_out("jane@example.com").await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert!(completion.evidence["reason"].contains("create_individuals = false"));
    assert_eq!(s.sim.individual_count(), 0);
}

#[tokio::test]
async fn people_with_both_a_contact_and_a_lead_are_linked_in_one_run_per_type() {
    let s = setup("").await;
    let batch: Vec<SuppressionWork> = (0..6)
        .map(|n| {
            let email = format!("both{n}@example.com");
            s.sim.add_contact(&email, false);
            s.sim.add_lead(&email, false);
            person(RequestKind::OptOutSaleShare, Some(&email))
        })
        .collect();
    let results = s.suppress(&batch).await;
    assert_every_item(&results, batch.len(), ConfirmationAction::Flagged);
    let link = &s.calls("PATCH", COLLECTIONS)[0];
    let types: Vec<&str> = link.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributes"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, [["Contact"; 6], ["Lead"; 6]].concat());
}

#[tokio::test]
async fn the_simulator_refuses_more_than_ten_runs_of_one_type() {
    let s = setup("").await;
    let http = reqwest::Client::new();
    let token: serde_json::Value = answered_json(
        http.post(format!("{}{TOKEN}", s.running.base_url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ]),
    )
    .await;
    let records: Vec<serde_json::Value> = (0..11)
        .map(|n| {
            let object = if n % 2 == 0 { "Contact" } else { "Lead" };
            serde_json::json!({"attributes": {"type": object}, "id": format!("003{n:015}")})
        })
        .collect();
    let answer = http
        .patch(format!("{}{COLLECTIONS}", s.running.base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"allOrNone": false, "records": records}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await.unwrap().contains("more than 10 chunks"));
}

/// The people queries of a run, as (object, status): the object is read from the URL-encoded
/// `FROM <object>` of the query string.
fn people_queries(s: &Setup) -> Vec<(&'static str, u16)> {
    s.calls("GET", "/services/data/v67.0/query?")
        .iter()
        .map(|c| {
            let object = if c.path.contains("FROM+Contact") || c.path.contains("FROM%20Contact") {
                "Contact"
            } else if c.path.contains("FROM+Lead") || c.path.contains("FROM%20Lead") {
                "Lead"
            } else {
                panic!("a query of neither Contact nor Lead: {}", c.path)
            };
            (object, c.status)
        })
        .collect()
}

#[tokio::test]
async fn batch_of_50_looks_people_up_in_at_most_two_queries_per_object() {
    let s = setup("").await;
    // Stored in mixed case: Salesforce matches without regard to case, and each record is
    // mapped back to the request whose email it holds.
    let batch: Vec<SuppressionWork> = (0..50)
        .map(|n| {
            let email = format!("person{n}@example.com");
            match n % 3 {
                0 => drop(s.sim.add_contact(&format!("Person{n}@Example.com"), true)),
                1 => drop(s.sim.add_lead(&email, true)),
                _ => {}
            }
            person(RequestKind::OptOutSaleShare, Some(&email))
        })
        .collect();
    let results = s.suppress(&batch).await;
    assert_eq!(results.len(), 50);
    for (n, result) in results.iter().enumerate() {
        let completion = result.as_ref().unwrap();
        let (action, contacts, leads) = match n % 3 {
            0 => (ConfirmationAction::Flagged, "1", "0"),
            1 => (ConfirmationAction::Flagged, "0", "1"),
            _ => (ConfirmationAction::NotFound, "", ""),
        };
        assert_eq!(completion.action, action, "request {n}");
        if action == ConfirmationAction::Flagged {
            assert_eq!(
                completion.evidence["contacts_matched"], contacts,
                "request {n}"
            );
            assert_eq!(completion.evidence["leads_matched"], leads, "request {n}");
            let email = format!("person{n}@example.com");
            let stored = if n % 3 == 0 {
                format!("Person{n}@Example.com")
            } else {
                email
            };
            assert!(s.opted_out_of_tracking(&stored));
        }
    }
    let queries = people_queries(&s);
    for object in ["Contact", "Lead"] {
        let count = queries.iter().filter(|(o, _)| *o == object).count();
        assert!(
            (1..=2).contains(&count),
            "{count} {object} queries for 50 emails"
        );
    }
    assert!(queries.iter().all(|(_, status)| *status == 200));

    // The read-back of a deletion is batched the same way: one query per object.
    let deletion = person(RequestKind::Delete, Some("gone@example.com"));
    let before = people_queries(&s).len();
    let completion = Completion::new(ConfirmationAction::Deleted, Default::default())
        .with_verification(VerificationStatus::Pending);
    assert_reads_back(&s.connector, &deletion, &completion, Verified).await;
    assert_eq!(people_queries(&s).len() - before, 2);
}

#[tokio::test]
async fn an_answer_in_pages_is_read_to_its_last_page() {
    let s = setup("").await;
    s.sim.set_query_page_size(2);
    let batch = s.known_contacts_opting_out("paged", 5);
    let results = s.suppress(&batch).await;
    for (n, result) in results.iter().enumerate() {
        assert_eq!(
            result.as_ref().unwrap().action,
            ConfirmationAction::Flagged,
            "request {n}"
        );
        let email = format!("paged{n}@example.com");
        assert!(s.opted_out_of_tracking(&email));
    }
    // 5 Contacts at 2 a page: the query and two further pages; the Lead query has one page.
    let pages = s.calls("GET", "/services/data/v67.0/query/");
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(|c| c.status == 200));
}

#[tokio::test]
async fn a_batched_query_error_echoing_the_emails_names_none_of_them() {
    let s = setup("").await;
    s.running.control.inject_for(
        "/query",
        Fault::answer(
            400,
            r#"[{"message":"Email IN ('ann@example.com', 'o\\'brien@example.com') ^ ERROR","errorCode":"MALFORMED_QUERY"}]"#,
        ),
    );
    let batch = [
        person(RequestKind::OptOutSaleShare, Some("ann@example.com")),
        person(RequestKind::OptOutSaleShare, Some("o'brien@example.com")),
    ];
    let error = s
        .connector
        .apply(Operation::Suppress, &batch)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ConnectorError::Permanent(
            "HTTP 400: MALFORMED_QUERY: Email IN ('<email>', '<email>') ^ ERROR".into()
        )
    );
}

#[tokio::test]
async fn a_record_matching_no_queried_email_is_an_error_not_a_silent_drop() {
    let s = setup("").await;
    s.running.control.inject_for(
        "/query",
        Fault::answer(
            200,
            r#"{"totalSize":1,"done":true,"records":[{"Id":"003000000000009AAA","IndividualId":null,"Email":"someone.else@example.com"}]}"#,
        ),
    );
    let error = s
        .connector
        .apply(
            Operation::Suppress,
            &[person(
                RequestKind::OptOutSaleShare,
                Some("ann@example.com"),
            )],
        )
        .await
        .unwrap_err();
    let ConnectorError::Permanent(text) = error else {
        panic!("expected a permanent error, got {error:?}")
    };
    assert!(text.contains("Contact 003000000000009AAA"), "{text}");
    assert!(!text.contains('@'), "no email in the error: {text}");
}

#[tokio::test]
async fn batch_of_201_takes_two_collection_calls() {
    let s = setup("").await;
    let batch = s.known_contacts_opting_out("person", 201);
    let results = s.suppress(&batch).await;
    assert_every_item(&results, 201, ConfirmationAction::Flagged);
    let sizes: Vec<usize> = s
        .calls("PATCH", COLLECTIONS)
        .iter()
        .map(|c| c.json["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [200, 1]);
}

#[tokio::test]
async fn invalid_session_fetches_a_new_token_once_and_retries() {
    let s = setup("").await;
    s.warm_up().await;
    s.sim.add_contact("jane@example.com", true);
    s.sim.invalidate_session();
    let completion = s.opt_out("jane@example.com").await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(s.calls("POST", TOKEN).len(), 2);
    let rejected = s
        .running
        .control
        .calls()
        .iter()
        .filter(|c| c.status == 401)
        .count();
    assert_eq!(rejected, 1);
}

#[tokio::test]
async fn token_is_fetched_again_after_its_ttl() {
    let s = setup("token_ttl_secs = 1").await;
    s.warm_up().await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    s.warm_up().await;
    assert_eq!(s.calls("POST", TOKEN).len(), 2);
    assert!(s.running.control.calls().iter().all(|c| c.status != 401));
}

#[tokio::test]
async fn wrong_client_secret_is_permanent() {
    let s = setup_with("", 5_000, "another-secret").await;
    assert_refused(s.opt_out_result("jane@example.com").await, "invalid_client");
}

#[tokio::test]
async fn request_limit_exceeded_waits_the_default() {
    let s = setup("retry_after_default_secs = 120").await;
    s.warm_up().await;
    s.running.control.inject(Fault::Status {
        status: 403,
        retry_after: None,
        body:
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#
                .into(),
    });
    assert_retry_after(
        s.opt_out_result("jane@example.com").await,
        Duration::from_secs(120),
    );
}

#[tokio::test]
async fn bad_request_is_permanent_with_salesforce_text() {
    let s = setup("").await;
    s.warm_up().await;
    s.running.control.inject(Fault::answer(400, r#"[{"message":"No such column 'IndividualId' on entity 'Contact'","errorCode":"INVALID_FIELD"}]"#));
    assert_refused(
        s.opt_out_result("jane@example.com").await,
        "INVALID_FIELD: No such column 'IndividualId' on entity 'Contact'",
    );
}

#[tokio::test]
async fn locked_individual_is_a_transient_item_error_then_succeeds() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    s.sim.add_contact("john@example.com", true);
    s.sim.lock_individual_once("jane@example.com");
    let batch = [
        person(RequestKind::OptOutSaleShare, Some("jane@example.com")),
        person(RequestKind::OptOutSaleShare, Some("john@example.com")),
    ];
    let results = s.suppress(&batch).await;
    assert!(
        matches!(&results[0], Err(ConnectorError::Transient(m)) if m.contains("UNABLE_TO_LOCK_ROW")),
        "{results:?}"
    );
    assert_eq!(
        results[1].as_ref().unwrap().action,
        ConfirmationAction::Flagged
    );
    let retried = s.suppress(&batch[..1]).await;
    assert_eq!(
        retried[0].as_ref().unwrap().action,
        ConfirmationAction::Flagged
    );
}

#[tokio::test]
async fn verify_reads_the_flags_back_and_fails_when_changed_behind_our_back() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    let request = person(RequestKind::OptOutSaleShare, Some("jane@example.com"));
    let completion = s.one(Operation::Suppress, request.clone()).await;
    assert_reads_back(&s.connector, &request, &completion, Verified).await;
    assert!(!s
        .calls("GET", "/services/data/v67.0/sobjects/Individual/")
        .is_empty());

    s.sim
        .set_individual_flags("jane@example.com", IndividualFlags::default());
    assert_reads_back(&s.connector, &request, &completion, Failed).await;
}

#[tokio::test]
async fn verify_after_delete_fails_when_a_record_with_the_email_is_back() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    let request = person(RequestKind::Delete, Some("jane@example.com"));
    let completion = s.one(Operation::Delete, request.clone()).await;
    assert_reads_back(&s.connector, &request, &completion, Verified).await;
    s.sim.add_lead("jane@example.com", false);
    assert_reads_back(&s.connector, &request, &completion, Failed).await;
}

#[tokio::test]
async fn verify_is_pending_when_salesforce_cannot_be_read() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    let request = person(RequestKind::OptOutSaleShare, Some("jane@example.com"));
    let completion = s.one(Operation::Suppress, request.clone()).await;
    s.running.control.inject(Fault::server_error());
    assert_reads_back(&s.connector, &request, &completion, Pending).await;
}

#[tokio::test]
async fn consumer_opt_in_clears_only_the_opt_out_flags() {
    let s = setup("").await;
    s.sim.add_contact("jane@example.com", true);
    s.connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::LimitSensitive, Some("jane@example.com")),
                person(RequestKind::OptOutSaleShare, Some("jane@example.com")),
            ],
        )
        .await
        .unwrap();
    let request = person(RequestKind::OptInSaleShare, Some("jane@example.com"));
    let completion = s.one(Operation::Suppress, request.clone()).await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(
        s.sim.individual_flags("jane@example.com").unwrap(),
        IndividualFlags {
            has_opted_out_processing: true,
            ..Default::default()
        }
    );
    assert_reads_back(&s.connector, &request, &completion, Verified).await;
}

#[tokio::test]
async fn deletion_sent_to_suppress_is_refused() {
    let s = setup("").await;
    let results = s
        .connector
        .apply(
            Operation::Suppress,
            &[person(RequestKind::Delete, Some("jane@example.com"))],
        )
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(ConnectorError::Permanent(m)) if m.contains("DELETE request")),
        "{results:?}"
    );
    assert!(s.running.control.calls().is_empty());
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let s = setup_with("", 300, CLIENT_SECRET).await;
    s.sim.add_contact("jane@example.com", true);
    ComplianceSuite::new(&s.connector, &hush_connector_salesforce::FACTORY, &|kind| {
        person(kind, Some("jane@example.com"))
    })
    .applying_opt_ins()
    .with_faults(&s.running.control)
    .run()
    .await;
}
