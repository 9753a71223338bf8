//! Contract tests: the Google Ads connector against the Google Ads API simulator over loopback.

use std::time::Duration;

use hush_connector_google_ads::sim::{GoogleAdsSim, GoogleAdsSimConfig, GoogleOAuthClient};
use hush_connector_google_ads::{
    GoogleAdsConfig, GoogleAdsConnector, GoogleAdsCredentials, EVIDENCE_JOB,
};
use hush_connector_kit::testing::audience::assert_unmatchable_not_found_and_opt_ins_not_applicable;
use hush_connector_kit::testing::google::assert_rejected_token_renewed_once;
use hush_connector_kit::testing::read_back::assert_pending_then_verified;
use hush_connector_kit::testing::{
    answered_json, apply_one, assert_refused, completed, email, email_sha256, hashed,
    recipient_with, work, ComplianceSuite, WorkExt,
};
use hush_contracts::connector::{
    Connector, ConnectorError, Operation, SuppressionWork, WorkIdentifier,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::{hash_identifier, sha256_hex};
use hush_contracts::recipients::RecipientConfig;
use serde_json::{json, Value};

fn recipient(sim: &GoogleAdsSim, config: &GoogleAdsSimConfig, extra: &str) -> RecipientConfig {
    let text = format!(
        r#"
id = "google-ads"
kind = "google_ads"
role = "THIRD_PARTY"
base_url = "{base}"
timeout_ms = 2000
[settings]
customer_id = "{customer}"
user_list_id = "{list}"
token_url = "{token}"
poll_interval_ms = 10
max_wait_ms = 5000
"#,
        base = sim.base_url(),
        token = sim.token_url(),
        customer = config.customer_id,
        list = config.user_list_id,
    );
    recipient_with(&text, extra)
}

fn connector_for(
    sim: &GoogleAdsSim,
    config: &GoogleAdsSimConfig,
    extra: &str,
) -> GoogleAdsConnector {
    let r = recipient(sim, config, extra);
    let resolved =
        GoogleAdsConfig::with_credentials(&r, r.settings().unwrap(), credentials(config)).unwrap();
    GoogleAdsConnector::new(resolved).unwrap()
}

/// The credentials the simulator accepts, as the connector holds them.
fn credentials(config: &GoogleAdsSimConfig) -> GoogleAdsCredentials {
    GoogleAdsCredentials {
        oauth: config.oauth.client_credentials(),
        developer_token: config.developer_token.as_str().into(),
    }
}

/// A simulator honouring `config`, and the connector pointed at it with the settings `extra`.
async fn start(config: GoogleAdsSimConfig, extra: &str) -> (GoogleAdsSim, GoogleAdsConnector) {
    let sim = GoogleAdsSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, extra);
    (sim, connector)
}

/// An opt-out of request `request` for the person with email `address` (hashed only).
fn opt_out(request: &str, address: &str) -> SuppressionWork {
    work(RequestKind::OptOutSaleShare)
        .id(request)
        .with(email(address))
}

/// An identifier of `kind` given by its digest alone.
fn digest(kind: IdentifierType, sha256: &str) -> WorkIdentifier {
    WorkIdentifier {
        kind,
        sha256: sha256.into(),
        raw: None,
    }
}

/// Makes one successful call so the access token is cached and the next fault hits the API.
async fn warm_up(connector: &GoogleAdsConnector) {
    let results = connector
        .apply(Operation::Suppress, &[opt_out("warm", "warm@example.com")])
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
}

#[tokio::test]
async fn job_polled_to_success_is_verified_and_removes_exactly_the_subjects() {
    let config = GoogleAdsSimConfig {
        login_customer_id: Some("9998887777".into()),
        ..GoogleAdsSimConfig::default()
    };
    let (sim, connector) = start(config, "login_customer_id = \"999-888-7777\"").await;
    let phone = hash_identifier(IdentifierType::Phone, "(415) 555-0100").unwrap();
    sim.add_members([
        email_sha256("jane@example.com"),
        phone.clone(),
        email_sha256("joe@example.com"),
        email_sha256("bystander@example.com"),
    ]);

    let batch = [
        opt_out("r1", "Jane@Example.com").with(digest(IdentifierType::Phone, &phone)),
        opt_out("r2", "joe@example.com"),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();

    for result in &results {
        let completion = result.as_ref().unwrap();
        assert_eq!(completion.action, ConfirmationAction::Suppressed);
        assert_eq!(completion.verification, VerificationStatus::Verified);
        assert_eq!(completion.evidence["job_status"], "SUCCESS");
        assert!(completion.evidence[EVIDENCE_JOB]
            .starts_with("customers/1234567890/offlineUserDataJobs/"));
        assert_eq!(completion.evidence["batch_operations"], "2");
    }
    let first = results[0].as_ref().unwrap();
    assert_eq!(
        first.evidence["identifier_sha256"],
        format!("{},{}", email_sha256("jane@example.com"), phone)
    );
    assert!(!first.evidence.values().any(|v| v.contains("jane@")));
    assert_eq!(
        sim.members().into_iter().collect::<Vec<_>>(),
        vec![email_sha256("bystander@example.com")]
    );

    let add = &sim
        .control()
        .calls_to("/v25/customers/1234567890/offlineUserDataJobs/")[0];
    assert!(add.path.ends_with(":addOperations"));
    assert_eq!(add.header("developer-token"), Some("sim-developer-token"));
    assert_eq!(add.header("login-customer-id"), Some("9998887777"));
    assert!(add
        .header("authorization")
        .unwrap()
        .starts_with("Bearer ya29."));
    assert_eq!(
        add.json,
        json!({"enablePartialFailure": true, "operations": [
            {"remove": {"userIdentifiers": [{"hashedEmail": email_sha256("jane@example.com")}, {"hashedPhoneNumber": phone}]}},
            {"remove": {"userIdentifiers": [{"hashedEmail": email_sha256("joe@example.com")}]}}
        ]})
    );
    // RUNNING for two status reads, SUCCESS on the third.
    assert_eq!(
        sim.control()
            .calls_to("/v25/customers/1234567890/googleAds:search")
            .len(),
        3
    );
}

#[tokio::test]
async fn delete_is_reported_as_deleted() {
    let (sim, connector) = start(GoogleAdsSimConfig::default(), "").await;
    sim.add_members([email_sha256("gone@example.com")]);
    let item = work(RequestKind::Delete)
        .id("d1")
        .with(email("gone@example.com"));
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert!(sim.members().is_empty());
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let config = GoogleAdsSimConfig {
        oauth: GoogleOAuthClient {
            token_lifetime: Duration::from_secs(2),
            ..GoogleOAuthClient::default()
        },
        ..GoogleAdsSimConfig::default()
    };
    let (sim, connector) = start(config, "").await;
    warm_up(&connector).await;
    assert_eq!(sim.tokens_issued(), 1);
    // Past the refresh margin (half of a 2 s lifetime) but before the token expires.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    warm_up(&connector).await;
    assert_eq!(sim.tokens_issued(), 2);
    assert!(sim.control().calls().iter().all(|c| c.status != 401));
    let token_call = &sim.control().calls_to("/token")[0];
    let form = String::from_utf8(token_call.body.clone()).unwrap();
    assert!(form.contains("grant_type=refresh_token"), "{form}");
    assert_eq!(
        token_call.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn token_rejected_with_401_is_refreshed_once_and_the_call_repeated() {
    let (sim, connector) = start(GoogleAdsSimConfig::default(), "").await;
    let sample = || work(RequestKind::OptOutSaleShare).with(email("a@example.com"));
    assert_rejected_token_renewed_once(&connector, Operation::Suppress, &sample, &*sim, "/").await;
}

#[tokio::test]
async fn revoked_refresh_token_is_permanent() {
    let config = GoogleAdsSimConfig::default();
    let sim = GoogleAdsSim::start(GoogleAdsSimConfig {
        oauth: GoogleOAuthClient {
            refresh_token: "another".into(),
            ..config.oauth.clone()
        },
        ..config.clone()
    })
    .await
    .unwrap();
    let connector = connector_for(&sim, &config, "");
    assert_refused(
        connector
            .apply(Operation::Suppress, &[opt_out("r", "a@example.com")])
            .await,
        "invalid_grant",
    );
}

#[tokio::test]
async fn half_failed_batch_names_exactly_the_refused_identifiers_by_hash() {
    let (sim, connector) = start(GoogleAdsSimConfig::default(), "").await;
    // Upper-case digests: hashes, but not in the lowercase form Google requires.
    let bad_one = email_sha256("bad1@example.com").to_uppercase();
    let bad_two = email_sha256("bad2@example.com").to_uppercase();
    let good_phone = hash_identifier(IdentifierType::Phone, "+1 415 555 0199").unwrap();
    sim.add_members([
        email_sha256("ok1@example.com"),
        email_sha256("ok2@example.com"),
        good_phone.clone(),
    ]);
    let batch = [
        opt_out("ok1", "ok1@example.com"),
        work(RequestKind::OptOutSaleShare)
            .id("bad1")
            .with(digest(IdentifierType::Email, &bad_one)),
        opt_out("ok2", "ok2@example.com"),
        work(RequestKind::OptOutSaleShare)
            .id("bad2")
            .with(digest(IdentifierType::Phone, &good_phone))
            .with(digest(IdentifierType::Email, &bad_two)),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();

    for ok in [&results[0], &results[2]] {
        let completion = ok.as_ref().unwrap();
        assert_eq!(completion.verification, VerificationStatus::Verified);
        assert_eq!(completion.evidence["batch_refused_operations"], "2");
    }
    let refusal = |index: usize| match &results[index] {
        Err(ConnectorError::Permanent(text)) => text.clone(),
        other => panic!("item {index}: {other:?}"),
    };
    let first = refusal(1);
    assert!(
        first.contains(&format!("EMAIL sha256 {bad_one}")),
        "{first}"
    );
    assert!(first.contains("INVALID_SHA256_FORMAT"), "{first}");
    assert!(!first.contains(&bad_two), "{first}");
    let second = refusal(3);
    assert!(
        second.contains(&format!("EMAIL sha256 {bad_two}")),
        "{second}"
    );
    assert!(
        !second.contains(&good_phone),
        "only the refused identifier is named: {second}"
    );
    // Google refuses the whole operation: the person's valid phone stays on the list.
    assert_eq!(
        sim.members().into_iter().collect::<Vec<_>>(),
        vec![good_phone]
    );
}

#[tokio::test]
async fn failed_job_is_permanent_with_the_failure_reason() {
    let (sim, connector) = start(GoogleAdsSimConfig::default(), "").await;
    sim.fail_next_job("INSUFFICIENT_MATCHED_TRANSACTIONS");
    assert_refused(
        apply_one(
            &connector,
            Operation::Suppress,
            &opt_out("r", "a@example.com"),
        )
        .await,
        "FAILED (INSUFFICIENT_MATCHED_TRANSACTIONS)",
    );
}

#[tokio::test]
async fn job_still_running_at_max_wait_is_pending_and_verify_reads_it_back() {
    let config = GoogleAdsSimConfig {
        running_polls: 12,
        ..GoogleAdsSimConfig::default()
    };
    let (sim, connector) = start(config, "max_wait_ms = 40\npoll_interval_ms = 20").await;
    let item = opt_out("r", "slow@example.com");
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(completion.evidence["job_status"], "RUNNING");
    let job = completion.evidence[EVIDENCE_JOB].clone();
    assert_eq!(sim.job_status(&job).as_deref(), Some("RUNNING"));

    assert_pending_then_verified(&connector, &item, &completion, 19).await;
    assert_eq!(sim.job_status(&job).as_deref(), Some("SUCCESS"));
}

#[tokio::test]
async fn invalid_argument_is_permanent_with_googles_text() {
    let (_sim, connector) = start(GoogleAdsSimConfig::default(), "user_list_id = \"404\"").await;
    let err = connector
        .apply(Operation::Suppress, &[opt_out("r", "a@example.com")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Permanent(t)
            if t.contains("HTTP 400") && t.contains("INVALID_USER_LIST_ID")
                && t.contains("The user list ID provided for the job is invalid.")),
        "{err:?}"
    );
}

#[tokio::test]
async fn people_without_email_or_phone_and_opt_ins_make_no_call() {
    let (sim, connector) = start(GoogleAdsSimConfig::default(), "").await;
    assert_unmatchable_not_found_and_opt_ins_not_applicable(
        &connector,
        &hashed(IdentifierType::CustomerId, "cust-1"),
        "no email or phone",
        &|| sim.control().calls().len(),
    )
    .await;
}

/// Raw HTTP against the simulator, as any client would call Google.
async fn raw_job(
    sim: &GoogleAdsSim,
    config: &GoogleAdsSimConfig,
) -> (reqwest::Client, String, String) {
    let http = reqwest::Client::new();
    let token = config.oauth.access_token(&sim.token_url()).await;
    let job: Value = answered_json(
        http.post(format!(
            "{}/v26/customers/1234567890/offlineUserDataJobs:create",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .header("developer-token", &config.developer_token)
        .json(&json!({"job": {"type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {"userList": "customers/1234567890/userLists/555"}}})),
    )
    .await;
    (
        http,
        token,
        job["resourceName"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn simulator_refuses_an_unhashed_email_with_a_partial_failure() {
    let config = GoogleAdsSimConfig::default();
    let sim = GoogleAdsSim::start(config.clone()).await.unwrap();
    let (http, token, job) = raw_job(&sim, &config).await;
    let call = |partial: bool| {
        http.post(format!("{}/v26/{job}:addOperations", sim.base_url()))
            .bearer_auth(&token)
            .header("developer-token", &config.developer_token)
            .json(&json!({"enablePartialFailure": partial, "operations": [
                {"remove": {"userIdentifiers": [{"hashedEmail": email_sha256("fine@example.com")}]}},
                {"remove": {"userIdentifiers": [{"hashedEmail": "Jane@Example.com"}]}}
            ]}))
            .send()
    };
    let strict = call(false).await.unwrap();
    assert_eq!(strict.status(), 400);
    let answer: Value = call(true).await.unwrap().json().await.unwrap();
    let error = &answer["partialFailureError"]["details"][0]["errors"][0];
    assert_eq!(
        error["errorCode"]["offlineUserDataJobError"],
        "INVALID_SHA256_FORMAT"
    );
    assert_eq!(
        error["location"]["fieldPathElements"],
        json!([{"fieldName": "operations", "index": 1}, {"fieldName": "remove"},
               {"fieldName": "user_identifiers", "index": 0}, {"fieldName": "hashed_email"}])
    );
}

#[tokio::test]
async fn simulator_enforces_identifier_limits_and_the_developer_token() {
    let config = GoogleAdsSimConfig {
        max_identifiers_per_request: 3,
        ..GoogleAdsSimConfig::default()
    };
    let sim = GoogleAdsSim::start(config.clone()).await.unwrap();
    let (http, token, job) = raw_job(&sim, &config).await;
    let ids: Vec<Value> = (0..4)
        .map(|n| json!({"hashedEmail": sha256_hex(&n.to_string())}))
        .collect();
    let too_many = http
        .post(format!("{}/v26/{job}:addOperations", sim.base_url()))
        .bearer_auth(&token)
        .header("developer-token", &config.developer_token)
        .json(&json!({"enablePartialFailure": true, "operations": [{"remove": {"userIdentifiers": ids}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_many.status(), 400);
    assert!(too_many
        .text()
        .await
        .unwrap()
        .contains("TOO_MANY_USER_IDENTIFIERS"));
    let no_developer_token = http
        .post(format!("{}/v26/{job}:run", sim.base_url()))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_developer_token.status(), 403);
}

#[tokio::test]
async fn a_developer_token_not_allowlisted_for_customer_match_points_to_the_data_manager() {
    let config = GoogleAdsSimConfig {
        customer_match_allowlisted: false,
        ..GoogleAdsSimConfig::default()
    };
    let (sim, connector) = start(config, "").await;
    sim.add_members([email_sha256("a@example.com")]);
    assert_refused(
        connector
            .apply(Operation::Suppress, &[opt_out("r", "a@example.com")])
            .await,
        "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE: Customer is not allowlisted for accessing this feature.]: \
         Google no longer accepts Customer Match through the Google Ads API",
    );
    assert_eq!(sim.members().len(), 1, "nothing was removed");
}

#[tokio::test]
async fn a_sunset_api_version_is_not_found() {
    let (_sim, connector) = start(GoogleAdsSimConfig::default(), "api_version = \"v22\"").await;
    let results = connector
        .apply(Operation::Suppress, &[opt_out("old", "a@example.com")])
        .await;
    let error = match results {
        Err(error) => error,
        Ok(mut items) => items.remove(0).unwrap_err(),
    };
    assert!(
        matches!(&error, ConnectorError::Permanent(d) if d.contains("HTTP 404") && d.contains("v23, v24, v25, v26")),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start(GoogleAdsSimConfig::default(), "timeout_ms = 300").await;
    ComplianceSuite::new(&connector, &hush_connector_google_ads::FACTORY, &|kind| {
        work(kind).id("suite").with(email("jane@example.com"))
    })
    .with_faults(sim.control())
    .run()
    .await;
}
