//! Contract tests: the Braze connector against the Braze REST API simulator over loopback.

use std::time::Duration;

use hush_connector_braze::sim::{BrazeSim, BrazeSimConfig};
use hush_connector_braze::{BrazeConfig, BrazeConnector, FACTORY};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::testing::profiles::{
    assert_key_refused, assert_misrouted_refused, assert_reads_back, simulator_recipient,
};
use hush_connector_kit::testing::read_back::read_back_until_settled;
use hush_connector_kit::testing::{
    assert_not_found, assert_refused, completed, one, work, ComplianceSuite, WorkExt,
};
use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::VerificationStatus::Verified;
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_sim_kit::{assert_each_refused, Fault};
use serde_json::{json, Value};

const KEY: &str = "sim-braze-rest-api-key";

/// A connector for the simulator; `settings` overrides the test defaults (10 ms between
/// read-backs, 500 ms of waiting).
fn connector_for(sim: &BrazeSim, key: &str, settings: &str) -> BrazeConnector {
    let recipient = simulator_recipient(
        "braze",
        &sim.base_url(),
        "poll_interval_ms = 10\nmax_wait_ms = 500",
        settings,
    );
    BrazeConnector::new(BrazeConfig::with_api_key(&recipient, Secret::new(key)).unwrap()).unwrap()
}

async fn start(settings: &str) -> (BrazeSim, BrazeConnector) {
    let sim = BrazeSim::start(BrazeSimConfig::default()).await.unwrap();
    let connector = connector_for(&sim, KEY, settings);
    (sim, connector)
}

/// A request of `kind` for the person with customer id `customer` and email `address`.
fn person(kind: RequestKind, customer: Option<&str>, address: Option<&str>) -> SuppressionWork {
    work(kind)
        .with_raw_if(IdentifierType::CustomerId, customer)
        .with_raw_if(IdentifierType::Email, address)
}

fn attribute(sim: &BrazeSim, braze_id: &str, name: &str) -> Option<Value> {
    sim.profile(braze_id)?.custom_attributes.get(name).cloned()
}

#[tokio::test]
async fn an_opt_out_flags_every_profile_of_the_person_and_is_verified() {
    let (sim, connector) = start("").await;
    let identified = sim.add_profile(Some("u-1"), Some("jane@example.com"));
    let email_only = sim.add_profile(None, Some("jane@example.com"));
    let stranger = sim.add_profile(Some("u-2"), Some("other@example.com"));

    let completion = completed(
        &connector,
        Operation::Suppress,
        &person(
            RequestKind::OptOutSaleShare,
            Some("u-1"),
            Some("Jane@Example.com"),
        ),
    )
    .await;

    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["profiles_matched"], "2");
    assert_eq!(completion.evidence["profiles_updated"], "2");
    assert_eq!(completion.evidence["attribute"], "hush_do_not_sell");
    assert_eq!(completion.evidence["value"], "true");
    assert_eq!(completion.evidence["http_status"], "201");
    assert!(!completion.evidence.contains_key("email_subscribe"));
    for profile in [&identified, &email_only] {
        assert_eq!(
            attribute(&sim, profile, "hush_do_not_sell"),
            Some(json!(true))
        );
        assert_eq!(sim.profile(profile).unwrap().email_subscribe, "subscribed");
    }
    assert_eq!(attribute(&sim, &stranger, "hush_do_not_sell"), None);

    let calls = sim.control().calls();
    assert!(calls.iter().all(|c| c.header("authorization")
        == Some("Bearer sim-braze-rest-api-key")
        && c.header("content-type") == Some("application/json")));
    let exports = sim.control().calls_to("/users/export/ids");
    assert_eq!(
        exports[0].json,
        json!({"external_ids": ["u-1"], "fields_to_export": ["braze_id", "external_id", "custom_attributes", "email_subscribe"]})
    );
    assert_eq!(exports[1].json["email_address"], "jane@example.com");
    let track = &sim.control().calls_to("/users/track")[0];
    assert_eq!(
        track.json,
        json!({"attributes": [
            {"braze_id": identified, "_update_existing_only": true, "hush_do_not_sell": true},
            {"braze_id": email_only, "_update_existing_only": true, "hush_do_not_sell": true},
        ]})
    );
}

#[tokio::test]
async fn a_limit_an_opt_in_and_an_email_unsubscribe_write_their_own_values() {
    let (sim, connector) = start("unsubscribe_email = true").await;
    let profile = sim.add_profile(Some("u-1"), None);
    let batch = [
        person(RequestKind::LimitSensitive, Some("u-1"), None),
        person(RequestKind::OptOutSaleShare, Some("u-1"), None),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    let opt_out = results[1].as_ref().unwrap();
    assert_eq!(opt_out.evidence["email_subscribe"], "unsubscribed");
    assert_eq!(opt_out.verification, VerificationStatus::Verified);
    assert_eq!(
        results[0].as_ref().unwrap().evidence["attribute"],
        "hush_limit_sensitive"
    );
    assert_eq!(
        attribute(&sim, &profile, "hush_limit_sensitive"),
        Some(json!(true))
    );
    assert_eq!(
        sim.profile(&profile).unwrap().email_subscribe,
        "unsubscribed"
    );

    let opt_in = completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::OptInSaleShare, Some("u-1"), None),
    )
    .await;
    assert_eq!(opt_in.action, ConfirmationAction::Flagged);
    assert_eq!(opt_in.evidence["value"], "false");
    assert_eq!(
        attribute(&sim, &profile, "hush_do_not_sell"),
        Some(json!(false))
    );
    assert_eq!(
        sim.profile(&profile).unwrap().email_subscribe,
        "unsubscribed",
        "an opt-in does not resubscribe the person to email"
    );
}

#[tokio::test]
async fn a_deletion_deletes_every_profile_by_braze_id_and_is_verified_once_gone() {
    let (sim, connector) = start("").await;
    let identified = sim.add_profile(Some("u-1"), Some("jane@example.com"));
    let email_only = sim.add_profile(None, Some("jane@example.com"));
    let kept = sim.add_profile(Some("u-2"), None);

    let completion = completed(
        &connector,
        Operation::Delete,
        &person(RequestKind::Delete, Some("u-1"), Some("jane@example.com")),
    )
    .await;

    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["profiles_deleted"], "2");
    assert_eq!(completion.evidence["braze_reported_deleted"], "2");
    assert_eq!(
        sim.control().calls_to("/users/delete")[0].json,
        json!({"braze_ids": [identified, email_only]})
    );
    assert!(sim.profile(&identified).is_none() && sim.profile(&email_only).is_none());
    assert!(sim.profile(&kept).is_some());
}

#[tokio::test]
async fn a_deletion_braze_has_not_processed_within_the_wait_is_pending_and_read_back_later() {
    let (sim, connector) = start("max_wait_ms = 30\npoll_interval_ms = 10").await;
    sim.set_lag_exports(20);
    let profile = sim.add_profile(Some("u-9"), None);
    let item = person(RequestKind::Delete, Some("u-9"), None);
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert!(sim.profile(&profile).is_some(), "still queued at Braze");

    let settled = read_back_until_settled(&connector, &item, &completion, 30).await;
    assert_eq!(settled, Verified);
    assert!(sim.profile(&profile).is_none());
}

#[tokio::test]
async fn a_verified_or_unmatched_outcome_is_not_read_again() {
    let (sim, connector) = start("").await;
    sim.add_profile(Some("u-1"), None);
    let item = person(RequestKind::OptOutSaleShare, Some("u-1"), None);
    let completion = completed(&connector, Operation::Suppress, &item).await;
    let before = sim.control().calls().len();
    assert_reads_back(&connector, &item, &completion, Verified).await;
    assert_eq!(sim.control().calls().len(), before);
}

#[tokio::test]
async fn an_unknown_person_is_not_found_and_nothing_is_written() {
    let (sim, connector) = start("").await;
    let results = connector
        .apply(
            Operation::Delete,
            &[person(
                RequestKind::Delete,
                Some("nobody"),
                Some("no@example.com"),
            )],
        )
        .await
        .unwrap();
    let completion = results[0].as_ref().unwrap();
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert!(sim.control().calls_to("/users/delete").is_empty());
    assert_eq!(sim.control().calls_to("/users/export/ids").len(), 2);
}

#[tokio::test]
async fn requests_braze_cannot_match_are_answered_without_a_call() {
    let (sim, connector) = start("").await;
    let cookie_only = [work(RequestKind::OptOutSaleShare)];
    assert_not_found(
        &connector,
        &cookie_only,
        "no CUSTOMER_ID or EMAIL identifier",
    )
    .await;
    assert_misrouted_refused(&connector, &|kind| person(kind, Some("u-1"), None)).await;
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn calls_are_cut_to_brazes_limits() {
    let (sim, connector) = start("").await;
    let batch: Vec<SuppressionWork> = (0..FACTORY.max_batch + 10)
        .map(|n| {
            let customer = format!("u-{n}");
            sim.add_profile(Some(&customer), None);
            person(RequestKind::Delete, Some(&customer), None)
        })
        .collect();
    assert_eq!(FACTORY.max_batch, 50);
    let results = connector.apply(Operation::Delete, &batch).await.unwrap();
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap().verification == VerificationStatus::Verified));
    let deletes = sim.control().calls_to("/users/delete");
    let sizes: Vec<usize> = deletes
        .iter()
        .map(|c| c.json["braze_ids"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![50, 10]);
    assert!(sim
        .control()
        .calls_to("/users/export/ids")
        .iter()
        .all(|c| c.json["external_ids"].as_array().unwrap().len() <= 50));
    assert!(sim.profiles().is_empty());
}

#[tokio::test]
async fn an_attribute_braze_refuses_fails_its_item_with_brazes_text() {
    let (sim, connector) = start("").await;
    sim.add_profile(Some("u-1"), None);
    sim.add_profile(Some("u-2"), None);
    // The export answers normally; the track call gets Braze's non-fatal error for object 1.
    sim.control().inject(Fault::Delay(Duration::ZERO));
    sim.control().inject(Fault::answer(
        201,
        r#"{"message":"success","attributes_processed":1,"errors":[{"type":"braze_id is invalid","input_array":"attributes","index":1}]}"#,
    ));
    let results = connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptOutSaleShare, Some("u-1"), None),
                person(RequestKind::OptOutSaleShare, Some("u-2"), None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        results[0].as_ref().unwrap().action,
        ConfirmationAction::Flagged
    );
    assert_refused(results[1].clone(), "braze_id is invalid");
}

#[tokio::test]
async fn a_refused_key_is_permanent_with_brazes_text() {
    let sim = BrazeSim::start(BrazeSimConfig::default()).await.unwrap();
    let connector = connector_for(&sim, "wrong-key", "");
    let result = connector
        .apply(
            Operation::Suppress,
            &[person(RequestKind::OptOutSaleShare, Some("u-1"), None)],
        )
        .await;
    assert_key_refused(one(result), "Unknown or missing REST API key");
}

#[tokio::test]
async fn a_spent_quota_waits_until_brazes_reset_and_stops_the_batch() {
    let (sim, connector) = start("").await;
    sim.add_profile(None, Some("a@example.com"));
    sim.add_profile(None, Some("b@example.com"));
    sim.limit_requests(1);
    let results = connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptOutSaleShare, None, Some("a@example.com")),
                person(RequestKind::OptOutSaleShare, None, Some("b@example.com")),
            ],
        )
        .await
        .unwrap();
    let error = results[1].clone().unwrap_err();
    assert!(
        matches!(&error, ConnectorError::RetryAfter { after, detail }
            if *after > Duration::from_secs(50) && *after <= Duration::from_secs(60)
                && detail.contains("Rate limit exceeded")),
        "{error:?}"
    );
    assert!(
        matches!(&results[0], Err(ConnectorError::RetryAfter { .. })),
        "the whole batch waits: nothing is written after a rate limit"
    );
    assert_eq!(sim.control().calls().len(), 2, "one export, one refused");
    assert!(sim.control().calls_to("/users/track").is_empty());
}

#[tokio::test]
async fn simulator_refuses_what_braze_refuses() {
    let sim = BrazeSim::start(BrazeSimConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", sim.base_url()))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    let fifty_one: Vec<String> = (0..51).map(|n| format!("b{n}")).collect();
    let deletions = [
        (
            json!({"braze_ids": ["b"], "external_ids": ["u"]}),
            "Only one of",
        ),
        (json!({"braze_ids": fifty_one}), "between 1 and 50"),
        (
            json!({"email_addresses": [{"email": "a@example.com"}]}),
            "prioritization",
        ),
    ];
    let exports = [
        (
            json!({"external_ids": ["u"]}),
            "fields_to_export is required",
        ),
        (
            json!({"external_ids": ["u"], "email_address": "a@example.com", "fields_to_export": ["braze_id"]}),
            "Only one of",
        ),
    ];
    let tracks = [(
        json!({"attributes": vec![json!({"braze_id": "b"}); 76]}),
        "Too many objects",
    )];
    let says =
        |error: &Value, text: &str| error["message"].as_str().is_some_and(|m| m.contains(text));
    for (path, cases) in [
        ("/users/delete", &deletions[..]),
        ("/users/export/ids", &exports[..]),
        ("/users/track", &tracks[..]),
    ] {
        let url = format!("{}{path}", sim.base_url());
        assert_each_refused(|| http.post(&url).bearer_auth(KEY), 400, cases, says).await;
    }
    let partial = post(
        "/users/track",
        json!({"attributes": [{"hush_do_not_sell": true}]}),
    )
    .await
    .unwrap();
    assert_eq!(partial.status(), 201);
    let partial: Value = partial.json().await.unwrap();
    assert_eq!(partial["errors"][0]["index"], 0);
    let unauthorized = http
        .post(format!("{}/users/track", sim.base_url()))
        .json(&json!({"attributes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start("").await;
    sim.add_profile(Some("user-42"), Some("suite@example.com"));
    ComplianceSuite::new(&connector, &FACTORY, &|kind| {
        person(kind, Some("user-42"), Some("suite@example.com"))
    })
    .applying_opt_ins()
    .with_faults(sim.control())
    .run()
    .await;
}
