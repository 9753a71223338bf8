//! Contract tests: the Google Analytics connector against the User Deletion API simulator over
//! loopback.

use std::time::Duration;

use hush_connector_google_analytics::sim::{
    GoogleAnalyticsSim, GoogleAnalyticsSimConfig, GoogleOAuthClient,
};
use hush_connector_google_analytics::{
    GoogleAnalyticsConfig, GoogleAnalyticsConnector, EVIDENCE_DELETION_REQUEST_TIME,
};
use hush_connector_kit::testing::google::assert_rejected_token_renewed_once;
use hush_connector_kit::testing::{
    apply_one, assert_refused, assert_retry_after, completed, email, hashed, with_raw, work,
    ComplianceSuite, WorkExt,
};
use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::{assert_each_refused, Fault};
use serde_json::json;

fn connector_for(
    sim: &GoogleAnalyticsSim,
    config: &GoogleAnalyticsSimConfig,
    settings: &str,
) -> GoogleAnalyticsConnector {
    let text = format!(
        r#"
id = "ga4"
kind = "google_analytics"
role = "SERVICE_PROVIDER"
base_url = "{base}"
timeout_ms = 500
[settings]
property_id = "{property}"
token_url = "{token}"
{settings}
"#,
        base = sim.base_url(),
        token = sim.token_url(),
        property = config.property_id,
    );
    let recipient: RecipientConfig = toml::from_str(&text).unwrap();
    let credentials = config.oauth.client_credentials();
    let resolved = GoogleAnalyticsConfig::with_credentials(
        &recipient,
        recipient.settings().unwrap(),
        credentials,
    )
    .unwrap();
    GoogleAnalyticsConnector::new(resolved).unwrap()
}

async fn start(config: GoogleAnalyticsSimConfig) -> (GoogleAnalyticsSim, GoogleAnalyticsConnector) {
    let sim = GoogleAnalyticsSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "");
    (sim, connector)
}

/// A deletion for a person known by email, user id `customer` and GA client id `client`.
fn deletion(customer: &str, client: &str) -> SuppressionWork {
    person(RequestKind::Delete, customer, client)
}

/// A request of `kind` for a person known by email, user id `customer` and client id `client`.
fn person(kind: RequestKind, customer: &str, client: &str) -> SuppressionWork {
    work(kind)
        .with(email(&format!("{customer}@example.com")))
        .with(with_raw(IdentifierType::CustomerId, customer))
        .with(with_raw(IdentifierType::CookieId, client))
}

#[tokio::test]
async fn a_deletion_upserts_each_identifier_and_is_deleted_but_unverifiable() {
    let config = GoogleAnalyticsSimConfig::default();
    let (sim, connector) = start(config.clone()).await;
    let completion = completed(
        &connector,
        Operation::Delete,
        &deletion("user-1", "1197596843.1673515099"),
    )
    .await;

    let accepted = sim.deletion_requests();
    let sent: Vec<_> = accepted
        .iter()
        .map(|r| (r.id_type.as_str(), r.user_id.as_str()))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("USER_ID", "user-1"),
            ("CLIENT_ID", "1197596843.1673515099")
        ]
    );
    assert!(accepted
        .iter()
        .all(|r| r.property == ("propertyId".to_owned(), config.property_id.clone())));

    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Unverifiable);
    assert_eq!(
        completion.evidence[EVIDENCE_DELETION_REQUEST_TIME],
        format!(
            "USER_ID={},CLIENT_ID={}",
            accepted[0].deletion_request_time, accepted[1].deletion_request_time
        )
    );
    assert_eq!(completion.evidence["property_id"], config.property_id);
    assert_eq!(completion.evidence["id_types"], "USER_ID,CLIENT_ID");
    assert_eq!(
        completion.evidence["identifier_sha256"],
        format!(
            "{},{}",
            sha256_hex("user-1"),
            sha256_hex("1197596843.1673515099")
        )
    );
    assert!(!completion
        .evidence
        .values()
        .any(|v| v.contains("user-1") || v.contains("1197596843.1673515099")));
    assert_eq!(
        connector
            .verify(&deletion("user-1", "1.1"), &completion)
            .await,
        VerificationStatus::Unverifiable,
        "nothing can be read back"
    );

    let calls = sim.control().calls_to("/analytics/v3/");
    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(first.method, "POST");
    assert_eq!(
        first.path,
        "/analytics/v3/userDeletion/userDeletionRequests:upsert"
    );
    assert_eq!(
        first.header("authorization"),
        Some("Bearer ya29.sim-analytics-token-1")
    );
    assert!(first
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(
        first.json,
        json!({"kind": "analytics#userDeletionRequest",
               "id": {"type": "USER_ID", "userId": "user-1"},
               "propertyId": config.property_id})
    );
    assert_eq!(sim.tokens_issued(), 1, "one token serves both calls");
}

#[tokio::test]
async fn opt_outs_limits_and_opt_ins_are_not_applicable_and_call_nothing() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    for kind in [
        RequestKind::OptOutSaleShare,
        RequestKind::LimitSensitive,
        RequestKind::OptInSaleShare,
    ] {
        let item = work(kind).with(with_raw(IdentifierType::CustomerId, "user-2"));
        let completion = completed(&connector, Operation::Suppress, &item).await;
        assert_eq!(
            completion.action,
            ConfirmationAction::NotApplicable,
            "{kind:?}"
        );
        assert!(
            completion.evidence["reason"].contains("no per-user opt-"),
            "{completion:?}"
        );
    }
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn a_deletion_without_a_usable_identifier_is_not_found_and_calls_nothing() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    let only_email = work(RequestKind::Delete).with(email("nobody@example.com"));
    let completion = completed(&connector, Operation::Delete, &only_email).await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert!(completion.evidence["reason"].contains("no CUSTOMER_ID or COOKIE_ID"));
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn a_customer_id_without_its_raw_value_is_refused() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    let item = work(RequestKind::Delete).with(hashed(IdentifierType::CustomerId, "user-3"));
    assert_refused(
        apply_one(&connector, Operation::Delete, &item).await,
        "has no raw value",
    );
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn device_ids_are_sent_as_app_instance_ids_when_configured() {
    let config = GoogleAnalyticsSimConfig::default();
    let sim = GoogleAnalyticsSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, "identifier_types = [\"DEVICE_ID\"]");
    let item = deletion("user-4", "4.4").with(with_raw(IdentifierType::DeviceId, "fid-abc"));
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.evidence["id_types"], "APP_INSTANCE_ID");
    let accepted = sim.deletion_requests();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        (accepted[0].id_type.as_str(), accepted[0].user_id.as_str()),
        ("APP_INSTANCE_ID", "fid-abc")
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_call_repeated() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    let sample = || deletion("b", "2.2");
    let completion = assert_rejected_token_renewed_once(
        &connector,
        Operation::Delete,
        &sample,
        &*sim,
        "/analytics/v3/",
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
}

#[tokio::test]
async fn a_revoked_refresh_token_is_permanent_with_googles_reason() {
    let config = GoogleAnalyticsSimConfig::default();
    let sim = GoogleAnalyticsSim::start(config.clone()).await.unwrap();
    let revoked = GoogleAnalyticsSimConfig {
        oauth: GoogleOAuthClient {
            refresh_token: "1//revoked".into(),
            ..config.oauth.clone()
        },
        ..config
    };
    let connector = connector_for(&sim, &revoked, "");
    assert_refused(
        apply_one(&connector, Operation::Delete, &deletion("c", "3.3")).await,
        "invalid_grant: Token has been expired or revoked.",
    );
}

#[tokio::test]
async fn a_property_the_credential_cannot_manage_is_permanent() {
    let config = GoogleAnalyticsSimConfig::default();
    let sim = GoogleAnalyticsSim::start(config.clone()).await.unwrap();
    let other = GoogleAnalyticsSimConfig {
        property_id: "999".into(),
        ..config
    };
    let connector = connector_for(&sim, &other, "");
    assert_refused(
        apply_one(&connector, Operation::Delete, &deletion("d", "4.4")).await,
        "HTTP 403: Google Analytics: PERMISSION_DENIED insufficientPermissions",
    );
    assert!(sim.deletion_requests().is_empty());
}

#[tokio::test]
async fn a_spent_daily_quota_waits_until_it_resets() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig {
        daily_requests: 1,
        ..GoogleAnalyticsSimConfig::default()
    })
    .await;
    let result = apply_one(&connector, Operation::Delete, &deletion("e", "5.5")).await;
    match result {
        Err(ConnectorError::RetryAfter { after, detail }) => {
            assert!(detail.contains("dailyLimitExceeded"), "{detail}");
            assert!(
                after > Duration::ZERO && after <= Duration::from_secs(24 * 3600),
                "{after:?}"
            );
        }
        other => panic!("expected a wait for the quota, got {other:?}"),
    }
    assert_eq!(
        sim.deletion_requests().len(),
        1,
        "the first id went through"
    );
}

#[tokio::test]
async fn vendor_failures_on_a_deletion_are_classified() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    // Obtain the token first, so that each fault hits the upsert.
    completed(&connector, Operation::Delete, &deletion("f", "6.6")).await;

    sim.control().inject(Fault::too_many_requests(7));
    assert_retry_after(
        apply_one(&connector, Operation::Delete, &deletion("g", "7.7")).await,
        Duration::from_secs(7),
    );
    sim.control().inject(Fault::server_error());
    assert!(matches!(
        apply_one(&connector, Operation::Delete, &deletion("h", "8.8")).await,
        Err(ConnectorError::Transient(_))
    ));
    sim.control().inject(Fault::Delay(Duration::from_secs(2)));
    let hung = apply_one(&connector, Operation::Delete, &deletion("i", "9.9")).await;
    assert!(
        matches!(&hung, Err(ConnectorError::Transient(t)) if t.contains("before the timeout")),
        "{hung:?}"
    );
}

#[tokio::test]
async fn a_vendor_message_quoting_the_identifier_is_redacted() {
    let (sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    completed(&connector, Operation::Delete, &deletion("j", "10.10")).await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"error":{"code":400,"message":"Invalid userId secret-user-77","errors":[{"reason":"badRequest","message":"Invalid userId secret-user-77"}]}}"#,
    ));
    let item =
        work(RequestKind::Delete).with(with_raw(IdentifierType::CustomerId, "secret-user-77"));
    match apply_one(&connector, Operation::Delete, &item).await {
        Err(ConnectorError::Permanent(text)) => {
            assert!(!text.contains("secret-user-77"), "{text}");
            assert!(text.contains("Invalid userId <identifier>"), "{text}");
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_simulator_validates_the_body_like_google() {
    let config = GoogleAnalyticsSimConfig::default();
    let sim = GoogleAnalyticsSim::start(config.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let token = config.oauth.access_token(&sim.token_url()).await;
    let url = format!(
        "{}/analytics/v3/userDeletion/userDeletionRequests:upsert",
        sim.base_url()
    );
    let property = config.property_id.as_str();
    let cases = [
        (
            json!({"id": {"type": "EMAIL", "userId": "u"}, "propertyId": property}),
            "id.type",
        ),
        (
            json!({"id": {"type": "USER_ID", "userId": ""}, "propertyId": property}),
            "id.userId",
        ),
        (
            json!({"id": {"type": "USER_ID", "userId": "u"}}),
            "Exactly one",
        ),
        (
            json!({"id": {"type": "USER_ID", "userId": "u"}, "propertyId": property, "firebaseProjectId": "p"}),
            "Exactly one",
        ),
        (
            json!({"id": {"type": "CLIENT_ID", "userId": "u"}, "firebaseProjectId": "p"}),
            "not supported with firebaseProjectId",
        ),
        (
            json!({"id": {"type": "USER_ID", "userId": "u"}, "propertyId": property, "email": "x"}),
            "Unknown name \"email\"",
        ),
        (
            json!({"kind": "analytics#other", "id": {"type": "USER_ID", "userId": "u"}, "propertyId": property}),
            "Field kind",
        ),
    ];
    assert_each_refused(
        || http.post(&url).bearer_auth(&token),
        400,
        &cases,
        |error, message| {
            error["error"]["errors"][0]["reason"] == "badRequest"
                && error["error"]["message"]
                    .as_str()
                    .is_some_and(|t| t.contains(message))
        },
    )
    .await;
    let unauthenticated = http
        .post(&url)
        .json(&json!({"id": {"type": "USER_ID", "userId": "u"}, "propertyId": property}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(sim.deletion_requests().is_empty());
}

/// The suite runs without fault injection: every fault it injects rides on an opt-out, which
/// this connector answers `NOT_APPLICABLE` without calling Google.
/// `vendor_failures_on_a_deletion_are_classified` checks the same faults on deletions.
#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (_sim, connector) = start(GoogleAnalyticsSimConfig::default()).await;
    ComplianceSuite::new(
        &connector,
        &hush_connector_google_analytics::FACTORY,
        &|kind| person(kind, "suite-user", "42.42"),
    )
    .run()
    .await;
}
