//! Contract tests: the LinkedIn connector against the LinkedIn DMP segment simulator on
//! loopback.

use std::time::Duration;

use hush_connector_kit::testing::audience::AudienceSuite;
use hush_connector_kit::testing::versions::VersionChecks;
use hush_connector_kit::testing::{
    assert_names_field, assert_refused, email, hashed, opt_out, with_raw, work, ComplianceSuite,
    WorkExt,
};
use hush_connector_linkedin::config::{
    LinkedInConfig, DEFAULT_LINKEDIN_VERSION, MARKETING_API_VERSIONS,
};
use hush_connector_linkedin::sim::LinkedInSim;
use hush_connector_linkedin::LinkedInDmpSegment;
use hush_contracts::connector::{BatchResult, Connector, ConnectorError, FromRecipient, Operation};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::Fault;
use serde_json::{json, Value};

const SEGMENT: &str = "10804";
const TOKEN: &str = "sim-oauth-token";
const GAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

fn config(sim: &LinkedInSim) -> LinkedInConfig {
    LinkedInConfig {
        base_url: sim.base_url(),
        segment_id: SEGMENT.into(),
        linkedin_version: "202603".into(),
        access_token: TOKEN.into(),
        timeout: Duration::from_secs(5),
        default_retry_after: Duration::from_secs(60),
    }
}

fn connector(config: LinkedInConfig) -> LinkedInDmpSegment {
    LinkedInDmpSegment::new(config).unwrap()
}

/// Asks the connector built from `config` to opt `a@example.com` out.
async fn opt_out_of_a(config: &LinkedInConfig) -> BatchResult {
    connector(config.clone())
        .apply(Operation::Suppress, &[opt_out("a@example.com")])
        .await
}

/// Opts `a@example.com` out through a connector to a fresh simulator, with the configuration
/// `change` made to it.
async fn opt_out_of_a_configured(change: impl FnOnce(&mut LinkedInConfig)) -> BatchResult {
    let sim = sim().await;
    let mut config = config(&sim);
    change(&mut config);
    opt_out_of_a(&config).await
}

async fn sim() -> LinkedInSim {
    LinkedInSim::start(SEGMENT, TOKEN).await.unwrap()
}

#[tokio::test]
async fn the_connector_passes_the_audience_suite() {
    let sim = sim().await;
    let connector = connector(config(&sim));
    AudienceSuite {
        connector: &connector,
        rows_per_call: 5_000,
        add_members: Box::new(|hashes| sim.add_members(hashes)),
        members: Box::new(|| sim.members()),
        rows_sent: Box::new(|| {
            let calls = sim.control().calls();
            let elements = |call: &hush_sim_kit::RecordedCall| {
                call.json["elements"].as_array().map_or(0, Vec::len)
            };
            calls.iter().map(elements).collect()
        }),
        unmatchable: hashed(IdentifierType::Phone, "+14155550100"),
        unmatched_reason: "nothing LinkedIn DMP segments match on",
        evidence: vec![
            ("http_status", "200".into()),
            ("elements", "1".into()),
            ("element_status", "201".into()),
            ("segment_id", SEGMENT.into()),
        ],
    }
    .run()
    .await;
}

#[tokio::test]
async fn the_call_is_a_restli_batch_create_with_all_three_headers() {
    let sim = sim().await;
    let gaid = with_raw(IdentifierType::Maid, GAID);
    connector(config(&sim))
        .apply(
            Operation::Delete,
            &[work(RequestKind::Delete)
                .with(email("a@example.com"))
                .with(gaid)],
        )
        .await
        .unwrap();
    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, format!("/rest/dmpSegments/{SEGMENT}/users"));
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.header("x-restli-method"), Some("BATCH_CREATE"));
    assert_eq!(call.header("linkedin-version"), Some("202603"));
    assert_eq!(call.header("x-restli-protocol-version"), Some("2.0.0"));
    assert_eq!(
        call.json,
        json!({"elements": [{"action": "REMOVE", "userIds": [
            {"idType": "SHA256_EMAIL", "idValue": sha256_hex("a@example.com")},
            {"idType": "GOOGLE_AID", "idValue": GAID},
        ]}]})
    );
}

#[tokio::test]
async fn a_failed_element_fails_only_its_person() {
    let sim = sim().await;
    let answer =
        json!({"elements": [{"status": 201}, {"status": 400, "message": "member id refused"}]});
    sim.control()
        .inject(Fault::answer(200, &answer.to_string()));
    let results = connector(config(&sim))
        .apply(
            Operation::Suppress,
            &[opt_out("a@example.com"), opt_out("b@example.com")],
        )
        .await
        .unwrap();
    let accepted = results[0].as_ref().map(|done| done.action);
    assert_eq!(accepted, Ok(ConfirmationAction::Suppressed));
    assert_refused(results[1].clone(), "member id refused");
}

async fn raw_post(sim: &LinkedInSim, omit: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/rest/dmpSegments/{SEGMENT}/users",
            sim.base_url()
        ))
        .json(&body);
    for (name, value) in [
        ("Authorization", format!("Bearer {TOKEN}")),
        ("X-RestLi-Method", "BATCH_CREATE".to_owned()),
        ("LinkedIn-Version", "202603".to_owned()),
        ("X-Restli-Protocol-Version", "2.0.0".to_owned()),
    ] {
        if omit != Some(name) {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn one_removal(id_type: &str, id_value: &str) -> Value {
    json!({"elements": [{"action": "REMOVE", "userIds": [{"idType": id_type, "idValue": id_value}]}]})
}

#[tokio::test]
async fn the_simulator_requires_every_header_and_the_token() {
    let sim = sim().await;
    let body = one_removal("SHA256_EMAIL", &sha256_hex("a@example.com"));
    assert_eq!(raw_post(&sim, None, body.clone()).await.0, 200);
    for header in [
        "X-RestLi-Method",
        "LinkedIn-Version",
        "X-Restli-Protocol-Version",
    ] {
        let (status, error) = raw_post(&sim, Some(header), body.clone()).await;
        assert_eq!(status, 400, "without {header}");
        assert_eq!(error["status"], 400);
        assert!(error["message"].is_string());
    }
    assert_eq!(raw_post(&sim, Some("Authorization"), body).await.0, 401);
}

#[tokio::test]
async fn the_simulator_refuses_unhashed_or_uppercase_emails_and_unknown_id_types() {
    let sim = sim().await;
    let hash = sha256_hex("a@example.com");
    for body in [
        one_removal("SHA256_EMAIL", "Jane@Example.com"),
        one_removal("SHA256_EMAIL", &hash.to_uppercase()),
        one_removal("PHONE", &hash),
    ] {
        let (status, error) = raw_post(&sim, None, body).await;
        assert_eq!(status, 400);
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("/elements/0/userIds/0"));
    }
    let too_many = json!({"elements": vec![
        json!({"action": "REMOVE", "userIds": [{"idType": "SHA256_EMAIL", "idValue": hash}]});
        5_001
    ]});
    assert_eq!(raw_post(&sim, None, too_many).await.0, 400);
}

#[tokio::test]
async fn beyond_the_per_minute_limit_the_simulator_answers_429_and_the_connector_waits() {
    let sim = sim().await;
    sim.set_rate_limit_per_minute(2);
    let connector = connector(config(&sim));
    for _ in 0..2 {
        connector
            .apply(Operation::Suppress, &[opt_out("a@example.com")])
            .await
            .unwrap();
    }
    let err = connector
        .apply(Operation::Suppress, &[opt_out("a@example.com")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::RetryAfter { after, detail }
            if *after == Duration::from_secs(60) && detail.contains("throttle")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_400_is_permanent_with_linkedin_text() {
    let sim = sim().await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"status":400,"code":"ILLEGAL_ARGUMENT","message":"segment is archived"}"#,
    ));
    let err = opt_out_of_a(&config(&sim)).await.unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Permanent("HTTP 400: segment is archived (code ILLEGAL_ARGUMENT)".into())
    );
}

#[tokio::test]
async fn an_unknown_segment_is_permanent_with_linkedin_text() {
    let result = opt_out_of_a_configured(|config| config.segment_id = "999".into()).await;
    assert_refused(result, "DMP segment 999 does not exist");
}

#[tokio::test]
async fn a_rejected_token_is_permanent_with_a_clear_message() {
    let result = opt_out_of_a_configured(|config| config.access_token = "expired".into()).await;
    assert_refused(result, "refresh the OAuth token");
}

fn recipient(settings: &str) -> RecipientConfig {
    toml::from_str(&format!(
        "id = \"linkedin-dmp\"\nkind = \"linkedin_dmp_segment\"\nrole = \"THIRD_PARTY\"\n\
         base_url = \"https://api.linkedin.com/\"\n\
         credentials = {{ access_token = \"HUSH_TEST_LINKEDIN_ACCESS_TOKEN\" }}\n\
         [settings]\n{settings}"
    ))
    .unwrap()
}

#[test]
fn from_recipient_reads_settings_and_names_the_field_at_fault() {
    std::env::set_var("HUSH_TEST_LINKEDIN_ACCESS_TOKEN", "token-from-env");
    let config = LinkedInConfig::from_recipient(&recipient("segment_id = \"10804\"\n")).unwrap();
    assert_eq!(config.base_url, "https://api.linkedin.com");
    assert_eq!(config.linkedin_version, "202603");
    assert_eq!(config.access_token.expose(), "token-from-env");
    assert!(LinkedInDmpSegment::from_recipient(&recipient("segment_id = \"10804\"\n")).is_ok());

    assert_names_field(
        LinkedInConfig::from_recipient(&recipient("segment_id = \"urn:li:x\"\n")),
        "recipients.linkedin-dmp.settings.segment_id",
    );
    assert_names_field(
        LinkedInConfig::from_recipient(&recipient(
            "segment_id = \"1\"\nlinkedin_version = \"2024-10\"\n",
        )),
        "settings.linkedin_version",
    );
}

#[test]
fn the_configured_version_is_checked_against_linkedins_table() {
    std::env::set_var("HUSH_TEST_LINKEDIN_ACCESS_TOKEN", "token-from-env");
    VersionChecks {
        table: &MARKETING_API_VERSIONS,
        recipient: &recipient("segment_id = \"1\"\n"),
        field: "settings.linkedin_version",
        default: DEFAULT_LINKEDIN_VERSION,
        older: "202410",
        build: &|version, today| {
            let settings = format!("segment_id = \"1\"\nlinkedin_version = \"{version}\"\n");
            LinkedInConfig::from_recipient_on(&recipient(&settings), today).map(drop)
        },
    }
    .run();
}

#[tokio::test]
async fn a_sunset_version_is_refused_with_426_nonexistent_version() {
    let result = opt_out_of_a_configured(|config| config.linkedin_version = "202410".into()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Permanent(d) if d.contains("426") && d.contains("NONEXISTENT_VERSION") && d.contains("settings.linkedin_version")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let sim = sim().await;
    let mut config = config(&sim);
    config.timeout = Duration::from_millis(300);
    ComplianceSuite::new(
        &connector(config),
        &hush_connector_linkedin::FACTORY,
        &|kind| work(kind).with(email("jane@example.com")),
    )
    .with_faults(sim.control())
    .run()
    .await;
}

#[test]
fn the_simulator_stops_serving_a_version_on_its_sunset_day() {
    use hush_connector_linkedin::sim::contract::is_active;
    assert!(is_active("202601", "2027-01-14"));
    assert!(!is_active("202601", "2027-01-15"));
    assert!(!is_active("202511", "2026-12-01"));
    assert!(
        !is_active("202512", "2026-12-01"),
        "LinkedIn lists no 202512"
    );
}
