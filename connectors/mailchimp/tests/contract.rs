//! Contract tests: the Mailchimp connector against its simulator, including the shared
//! compliance suite.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::testing::profiles::{
    assert_http_refused_without, assert_key_refused, assert_misrouted_refused, assert_reads_back,
    simulator_recipient,
};
use hush_connector_kit::testing::{
    apply_one, assert_not_applicable, assert_not_found, assert_refused, completed, one, with_raw,
    work, ComplianceSuite, WorkExt,
};
use hush_connector_mailchimp::sim::{MailchimpSim, MailchimpSimConfig};
use hush_connector_mailchimp::{MailchimpConfig, MailchimpConnector, FACTORY};
use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::VerificationStatus::{Failed, Verified};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use serde_json::{json, Value};

const KEY: &str = "0123456789abcdef0123456789abcdef-us21";
const LIST: &str = "9e67587f52";
/// Mailchimp's worked example: the MD5 of `urist.mcvankab@freddiesjokes.com`.
const URIST: &str = "Urist.McVankab@FreddiesJokes.com";
const URIST_HASH: &str = "62eeb292278cc15f5817cb78f7790b08";

/// A connector for the simulator with `key`; `settings` adds to `list_id`.
fn connector_for(sim: &MailchimpSim, key: &str, settings: &str) -> MailchimpConnector {
    let list = format!("list_id = \"{LIST}\"");
    let recipient = simulator_recipient("mailchimp", &sim.base_url(), &list, settings);
    let config = MailchimpConfig::with_api_key(&recipient, Secret::new(key)).unwrap();
    MailchimpConnector::new(config).unwrap()
}

async fn start(settings: &str) -> (MailchimpSim, MailchimpConnector) {
    let sim = MailchimpSim::start(MailchimpSimConfig::default())
        .await
        .unwrap();
    let connector = connector_for(&sim, KEY, settings);
    (sim, connector)
}

fn person(kind: RequestKind, addresses: &[&str]) -> SuppressionWork {
    addresses.iter().fold(work(kind), |request, address| {
        request.with(with_raw(IdentifierType::Email, address))
    })
}

fn member_path(hash: &str) -> String {
    format!("/3.0/lists/{LIST}/members/{hash}")
}

#[tokio::test]
async fn an_opt_out_unsubscribes_and_tags_the_member_and_reads_it_back() {
    let (sim, connector) = start("").await;
    sim.add_member("urist.mcvankab@freddiesjokes.com", "subscribed");
    let completion = completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::OptOutSaleShare, &[URIST]),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["list_id"], LIST);
    assert_eq!(completion.evidence["tag"], "hush_do_not_sell");
    assert_eq!(completion.evidence["status"], "unsubscribed");
    assert_eq!(completion.evidence["members_updated"], "1");
    assert_eq!(completion.evidence["members_absent"], "0");
    let member = sim.member(URIST).unwrap();
    assert_eq!(member.status, "unsubscribed");
    assert_eq!(member.tags, vec!["hush_do_not_sell"]);

    let calls = sim.control().calls();
    let summary: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.method.to_string(), c.path.clone()))
        .collect();
    let path = member_path(URIST_HASH);
    assert_eq!(
        summary,
        vec![
            ("PATCH".into(), path.clone()),
            ("POST".into(), format!("{path}/tags")),
            ("GET".into(), format!("{path}?fields=status%2Ctags")),
        ]
    );
    // HTTP Basic, any user name, the key as password.
    let authorization = calls[0].header("authorization").unwrap();
    let expected = format!("Basic {}", base64_of(&format!("hush:{KEY}")));
    assert_eq!(authorization, expected);
    assert_eq!(calls[0].header("content-type"), Some("application/json"));
    assert_eq!(calls[0].json, json!({"status": "unsubscribed"}));
    assert_eq!(
        calls[1].json,
        json!({"tags": [{"name": "hush_do_not_sell", "status": "active"}]})
    );
    assert!(
        calls.iter().all(|c| !c.path.contains('@')),
        "no address in a URL"
    );
}

/// Standard base64, written out so the test does not lean on the simulator's decoder.
fn base64_of(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn a_limit_only_tags_unless_configured_to_unsubscribe() {
    let (sim, connector) = start("").await;
    sim.add_member("jane@example.com", "subscribed");
    let completion = completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::LimitSensitive, &["jane@example.com"]),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["tag"], "hush_limit_sensitive");
    assert!(!completion.evidence.contains_key("status"));
    let member = sim.member("jane@example.com").unwrap();
    assert_eq!(member.status, "subscribed");
    assert_eq!(member.tags, vec!["hush_limit_sensitive"]);
    assert!(sim.control().calls().iter().all(|c| c.method != "PATCH"));

    let connector = connector_for(
        &sim,
        KEY,
        "unsubscribe_on_limit = true\nlimit_tag = \"ccpa-limit\"",
    );
    let completion = completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::LimitSensitive, &["jane@example.com"]),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    let member = sim.member("jane@example.com").unwrap();
    assert_eq!(member.status, "unsubscribed");
    assert_eq!(member.tags, vec!["hush_limit_sensitive", "ccpa-limit"]);
}

#[tokio::test]
async fn an_address_the_audience_does_not_hold_is_not_found_and_nothing_is_added() {
    let (sim, connector) = start("").await;
    sim.add_member("kept@example.com", "subscribed");
    let completion = completed(
        &connector,
        Operation::Suppress,
        &person(RequestKind::OptOutSaleShare, &["stranger@example.com"]),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["members_absent"], "1");
    assert_eq!(sim.members().len(), 1);
    assert!(sim
        .control()
        .calls_to(&format!("/3.0/lists/{LIST}/members"))
        .iter()
        .all(|c| !c.path.ends_with("/tags")));
    // The audience's existence was checked once, so a 404 means the member, not the list.
    assert_eq!(
        sim.control().calls_to(&format!("/3.0/lists/{LIST}?")).len(),
        1
    );

    let completion = completed(
        &connector,
        Operation::Delete,
        &person(RequestKind::Delete, &["stranger@example.com"]),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert_eq!(
        sim.control().calls_to(&format!("/3.0/lists/{LIST}?")).len(),
        1
    );
}

#[tokio::test]
async fn a_wrong_list_id_is_a_permanent_error_naming_the_setting() {
    let sim = MailchimpSim::start(MailchimpSimConfig {
        list_id: "other00001".into(),
        ..MailchimpSimConfig::default()
    })
    .await
    .unwrap();
    let connector = connector_for(&sim, KEY, "");
    let result = one(connector
        .apply(
            Operation::Suppress,
            &[person(RequestKind::OptOutSaleShare, &["jane@example.com"])],
        )
        .await);
    assert_refused(result, "recipients.mailchimp.settings.list_id");
}

#[tokio::test]
async fn a_deletion_is_permanent_and_read_back_as_gone() {
    let (sim, connector) = start("").await;
    sim.add_member("jane@example.com", "subscribed");
    let second = sim.add_member("jane.doe@example.com", "unsubscribed");
    sim.add_member("kept@example.com", "subscribed");
    let completion = completed(
        &connector,
        Operation::Delete,
        &person(
            RequestKind::Delete,
            &[
                "jane@example.com",
                "Jane.Doe@example.com",
                "never@example.com",
            ],
        ),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["members_deleted"], "2");
    assert_eq!(completion.evidence["members_absent"], "1");
    let left: Vec<String> = sim.members().into_iter().map(|m| m.email).collect();
    assert_eq!(left, vec!["kept@example.com"]);
    assert!(sim.forgotten().contains(&second));
    let deletions: Vec<_> = sim
        .control()
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/actions/delete-permanent"))
        .collect();
    assert_eq!(deletions.len(), 3);
    assert!(deletions.iter().all(|c| c.method == "POST"));
    assert_eq!(
        deletions[1].path,
        format!("{}/actions/delete-permanent", member_path(&second))
    );
}

#[tokio::test]
async fn a_failed_read_back_is_pending_and_verify_reads_the_member_again() {
    let (sim, connector) = start("").await;
    sim.add_member("jane@example.com", "subscribed");
    sim.fail_member_reads(1);
    let item = person(RequestKind::OptOutSaleShare, &["jane@example.com"]);
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_reads_back(&connector, &item, &completion, Verified).await;
    // The member was subscribed again behind Hush's back: the read-back says so.
    sim.set_status("jane@example.com", "subscribed");
    assert_reads_back(&connector, &item, &completion, Failed).await;

    sim.fail_member_reads(1);
    let deletion = person(RequestKind::Delete, &["jane@example.com"]);
    let completion = completed(&connector, Operation::Delete, &deletion).await;
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_reads_back(&connector, &deletion, &completion, Verified).await;
}

#[tokio::test]
async fn requests_mailchimp_cannot_act_on_are_answered_without_a_call() {
    let (sim, connector) = start("").await;
    assert_misrouted_refused(&connector, &|kind| person(kind, &["a@example.com"])).await;
    let opt_in = [person(RequestKind::OptInSaleShare, &["a@example.com"])];
    assert_not_applicable(&connector, &opt_in).await;
    let phone_only = [
        work(RequestKind::OptOutSaleShare).with(with_raw(IdentifierType::Phone, "+15005550006"))
    ];
    let no_email = "no EMAIL identifier: Mailchimp names audience members by email address";
    assert_not_found(&connector, &phone_only, no_email).await;
    let unnamed_deletion =
        completed(&connector, Operation::Delete, &work(RequestKind::Delete)).await;
    assert_eq!(unnamed_deletion.action, ConfirmationAction::NotFound);
    assert_eq!(unnamed_deletion.evidence["reason"], no_email);
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn refusals_are_permanent_with_mailchimps_text_and_no_identifier() {
    let sim = MailchimpSim::start(MailchimpSimConfig::default())
        .await
        .unwrap();
    let opt_out = |address| person(RequestKind::OptOutSaleShare, &[address]);
    let connector = connector_for(&sim, "ffffffffffffffffffffffffffffffff-us21", "");
    let refused = apply_one(&connector, Operation::Suppress, &opt_out("a@example.com")).await;
    assert_key_refused(refused, "API Key Invalid");

    let connector = connector_for(&sim, KEY, "");
    sim.add_member("jane@example.com", "cleaned");
    let refusal = include_str!("fixtures/permanently_deleted.json");
    sim.control()
        .inject(hush_sim_kit::Fault::answer(400, refusal));
    let jane = opt_out("jane@example.com");
    let refused = apply_one(&connector, Operation::Suppress, &jane).await;
    let says = "Invalid Resource: [redacted] was permanently deleted";
    assert_http_refused_without(refused, 400, says, "jane@example.com");
}

#[tokio::test]
async fn a_retryable_failure_stops_the_rest_of_the_batch() {
    let (sim, connector) = start("").await;
    sim.add_member("a@example.com", "subscribed");
    sim.add_member("b@example.com", "subscribed");
    sim.control()
        .inject(hush_sim_kit::Fault::too_many_requests(9));
    let results = connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptOutSaleShare, &["a@example.com"]),
                person(RequestKind::OptOutSaleShare, &["b@example.com"]),
            ],
        )
        .await
        .unwrap();
    for result in results {
        assert!(
            matches!(&result, Err(ConnectorError::RetryAfter { after, .. }) if *after == Duration::from_secs(9)),
            "{result:?}"
        );
    }
    assert_eq!(sim.control().calls().len(), 1);
    assert_eq!(FACTORY.max_batch, 1);
}

#[tokio::test]
async fn simulator_refuses_what_mailchimp_refuses() {
    let sim = MailchimpSim::start(MailchimpSimConfig::default())
        .await
        .unwrap();
    let hash = sim.add_member("jane@example.com", "subscribed");
    let http = reqwest::Client::new();
    let url = |tail: &str| format!("{}{}{tail}", sim.base_url(), member_path(&hash));
    let send = |call: reqwest::RequestBuilder| async move {
        let answer = call.send().await.unwrap();
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        (status, content_type, body)
    };

    let (status, content_type, body) = send(http.get(url(""))).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (401, Some("API Key Missing"))
    );
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json; charset=utf-8")
    );
    let (status, _, body) = send(http.patch(url("")).body("{not json")).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (401, Some("API Key Missing")),
        "the key is checked before the body"
    );
    let (status, _, body) = send(
        http.get(url(""))
            .basic_auth("x", Some("0123456789abcdef0123456789abcdef-us6")),
    )
    .await;
    assert_eq!(
        (status, body["title"].as_str()),
        (403, Some("Wrong Datacenter"))
    );

    let authed = |call: reqwest::RequestBuilder| call.basic_auth("anystring", Some(KEY));
    let (status, _, body) = send(authed(http.patch(url(""))).body(r#"{"status":"gone"}"#)).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (400, Some("Invalid Resource"))
    );
    assert_eq!(body["errors"][0]["field"], "status");
    let (status, _, body) = send(authed(http.patch(url(""))).body("{not json")).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (400, Some("JSON Parse Error"))
    );
    let (status, _, body) =
        send(authed(http.post(url("/tags"))).body(r#"{"tags":[{"name":"x","status":"on"}]}"#))
            .await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (400, Some("tags.status"))
    );
    // The hash of the address as written, not of its lowercase form, names nobody.
    let upper = format!(
        "{}/3.0/lists/{LIST}/members/{}",
        sim.base_url(),
        hash.to_uppercase()
    );
    let (status, _, body) = send(authed(http.get(upper))).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (404, Some("Resource Not Found"))
    );
    // The address itself is accepted in place of the hash, as Mailchimp documents.
    let (status, _, body) = send(authed(http.get(format!(
        "{}/3.0/lists/{LIST}/members/jane@example.com?fields=status",
        sim.base_url()
    ))))
    .await;
    assert_eq!((status, body), (200, json!({"status": "subscribed"})));
    assert_eq!(sim.member("jane@example.com").unwrap().status, "subscribed");
    assert!(sim.member("jane@example.com").unwrap().tags.is_empty());
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start("").await;
    sim.add_member("suite@example.com", "subscribed");
    sim.add_member("suite-delete@example.com", "subscribed");
    ComplianceSuite::new(&connector, &FACTORY, &|kind| {
        // Deletion must not empty the audience before the later checks.
        if kind == RequestKind::Delete {
            person(kind, &["suite-delete@example.com"])
        } else {
            person(kind, &["suite@example.com"])
        }
    })
    .with_faults(sim.control())
    .run()
    .await;
    assert_eq!(
        sim.member("suite@example.com").unwrap().status,
        "unsubscribed"
    );
    assert!(sim.member("suite-delete@example.com").is_none());
}
