//! Contract tests: the enrichment connector against the real `hush-denylist` HTTP API, served on
//! loopback over a deny-list filled by the test (no Kafka). `hush-sim-kit` serves it so calls
//! are recorded and faults can be injected; no vendor is simulated, because none is called.

use std::sync::Arc;
use std::time::Duration;

use hush_connector_enrichment::{EnrichmentConnector, ENFORCED_BY, NOT_SHOWN_YET};
use hush_connector_kit::testing::profiles::credentials_in_env;
use hush_connector_kit::testing::{apply_one, email, work, ComplianceSuite, WorkExt};
use hush_contracts::connector::{
    Completion, Connector, ConnectorError, FromRecipient, Operation, SuppressionWork,
};
use hush_contracts::events::{
    Category, ConfirmationAction, IdentifierType, MinorStatus, RequestKind, SuppressionState,
    VerificationStatus,
};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_denylist::{api, DenyList, IdentifierValue};
use hush_sim_kit::{any_loopback_port, Fault, RunningSim};

/// The deny-list API key the connector sends, and the variable naming it.
const API_KEY: &str = "hush_sk_enrichment-contract-test";
const API_KEY_VAR: &str = "HUSH_TEST_DENYLIST_API_KEY";

async fn serve(deny_list: &Arc<DenyList>) -> RunningSim {
    credentials_in_env(&[(API_KEY_VAR, API_KEY)]);
    let auth = hush_auth::Authenticator::new(
        &hush_auth::AuthConfig {
            api_keys: vec![hush_auth::config::ApiKeyConfig {
                client: "suppressor-enrichment".into(),
                sha256: hush_auth::keys::api_key_sha256(API_KEY),
                scopes: vec![hush_auth::Scope::DenylistCheck],
            }],
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    let settings = api::ApiSettings {
        max_body_bytes: api::DEFAULT_MAX_BODY_BYTES,
        vendors: ["clearbit".to_owned(), "zoominfo".to_owned()].into(),
    };
    hush_sim_kit::serve(
        api::router(deny_list.clone(), settings, Arc::new(auth)),
        any_loopback_port(),
    )
    .await
    .unwrap()
}

fn connector(
    server: &RunningSim,
    kind: &str,
    poll_ms: u64,
    max_wait_ms: u64,
) -> EnrichmentConnector {
    let recipient: RecipientConfig = toml::from_str(&format!(
        "id = \"enrich\"\nkind = \"{kind}\"\nrole = \"THIRD_PARTY\"\nbase_url = \"{}\"\ntimeout_ms = 2000\n\
         credentials = {{ api_key = \"{API_KEY_VAR}\" }}\n\
         [settings]\npoll_interval_ms = {poll_ms}\nmax_wait_ms = {max_wait_ms}\n",
        server.base_url()
    ))
    .unwrap();
    EnrichmentConnector::from_recipient(&recipient).unwrap()
}

fn state(email: &str, opted_out: bool, deleted: bool, updated_at: i64) -> SuppressionState {
    SuppressionState {
        identifier_hash: sha256_hex(email),
        identifier_type: IdentifierType::Email,
        subject_key: sha256_hex(email),
        sale_share_opted_out: opted_out || deleted,
        sensitive_limited: deleted,
        deleted,
        effective_at: 1_767_225_600_000,
        resolicit_after: None,
        minor_status: MinorStatus::Unknown,
        last_request_id: uuid::Uuid::new_v4().to_string(),
        updated_at,
        synthetic: false,
    }
}

/// A fresh request of `kind` for the people with `emails` (hashed), about enrichment.
fn people(kind: RequestKind, emails: &[&str]) -> SuppressionWork {
    emails
        .iter()
        .fold(work(kind), |work, address| work.with(email(address)))
        .categories(vec![Category::Enrichment])
}

/// A deny-list holding one person, `jane@example.com`, opted out of sale/share.
fn jane_opted_out() -> Arc<DenyList> {
    Arc::new(DenyList::from_states([state(
        "jane@example.com",
        true,
        false,
        1,
    )]))
}

fn completed(result: &Result<Completion, ConnectorError>) -> &Completion {
    result.as_ref().expect("item completed")
}

/// The Clearbit connector most tests use: reads every 20 ms for up to a second.
fn clearbit(server: &RunningSim) -> EnrichmentConnector {
    connector(server, "clearbit", 20, 1000)
}

/// What `connector` answers to a request of `kind` for `jane@example.com` alone.
async fn jane_asks(
    connector: &EnrichmentConnector,
    kind: RequestKind,
) -> Result<Completion, ConnectorError> {
    let operation = match kind {
        RequestKind::Delete => Operation::Delete,
        _ => Operation::Suppress,
    };
    apply_one(connector, operation, &people(kind, &["jane@example.com"])).await
}

#[tokio::test]
async fn a_denied_person_is_confirmed_suppressed_and_verified_by_hash_only() {
    let deny_list = jane_opted_out();
    let server = serve(&deny_list).await;
    let results = clearbit(&server)
        .apply(
            Operation::Suppress,
            &[people(RequestKind::OptOutSaleShare, &["Jane@Example.com"])],
        )
        .await
        .unwrap();
    let completion = completed(&results[0]);
    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["enforced_by"], ENFORCED_BY);
    assert_eq!(completion.evidence["denied_identifiers"], "1");
    assert_eq!(completion.evidence["deny_reasons"], "SALE_SHARE_OPT_OUT");
    assert_eq!(completion.evidence["blocked_lookups"], "0");
    let checks = server.control.calls_to("/v1/check");
    assert_eq!(checks.len(), 1);
    assert_eq!(
        checks[0].path,
        "/v1/check?vendor=clearbit&purpose=verification"
    );
    assert_eq!(
        checks[0].json["identifiers"],
        serde_json::json!([{"type": "EMAIL", "sha256": sha256_hex("jane@example.com")}])
    );
    assert!(!String::from_utf8_lossy(&checks[0].body).contains("jane@"));
}

#[tokio::test]
async fn blocked_lookups_are_the_vendors_screened_lookups_not_the_connectors_reads() {
    let deny_list = jane_opted_out();
    let jane = [(
        IdentifierType::Email,
        IdentifierValue::Raw("jane@example.com".into()),
    )];
    let other = [(
        IdentifierType::Email,
        IdentifierValue::Raw("john@example.com".into()),
    )];
    deny_list.screen("zoominfo", &jane).unwrap();
    deny_list.screen("zoominfo", &jane).unwrap();
    deny_list.screen("zoominfo", &other).unwrap();
    deny_list.screen("clearbit", &jane).unwrap();
    let server = serve(&deny_list).await;
    let connector = connector(&server, "zoominfo", 20, 1000);
    for _ in 0..2 {
        let completion = jane_asks(&connector, RequestKind::OptOutSaleShare).await;
        assert_eq!(completed(&completion).evidence["blocked_lookups"], "2");
    }
    assert!(server.control.calls_to("/v1/check?vendor=zoominfo").len() == 2);
}

#[tokio::test]
async fn a_suppression_that_appears_while_polling_is_verified() {
    let deny_list = Arc::new(DenyList::from_states([]));
    let server = serve(&deny_list).await;
    let later = deny_list.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        later.apply(state("jane@example.com", true, false, 1));
    });
    let result = jane_asks(
        &connector(&server, "clearbit", 25, 5000),
        RequestKind::OptOutSaleShare,
    )
    .await;
    let completion = completed(&result);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    let reads: usize = completion.evidence["deny_list_reads"].parse().unwrap();
    assert!(
        reads > 1,
        "confirmed only after polling, got {reads} read(s)"
    );
    assert_eq!(server.control.calls_to("/v1/check").len(), reads);
}

#[tokio::test]
async fn a_suppression_never_shown_is_a_transient_failure_after_max_wait() {
    let deny_list = Arc::new(DenyList::from_states([]));
    let server = serve(&deny_list).await;
    let started = std::time::Instant::now();
    let connector = connector(&server, "clearbit", 50, 200);
    match &jane_asks(&connector, RequestKind::LimitSensitive).await {
        Err(ConnectorError::Transient(detail)) => {
            assert!(detail.starts_with(NOT_SHOWN_YET), "{detail}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(server.control.calls_to("/v1/check").len() >= 3);
}

#[tokio::test]
async fn a_server_error_is_transient() {
    let deny_list = jane_opted_out();
    let server = serve(&deny_list).await;
    server.control.fail_always(Fault::server_error());
    let result = jane_asks(&clearbit(&server), RequestKind::OptOutSaleShare).await;
    assert!(
        matches!(&result, Err(ConnectorError::Transient(detail)) if detail.contains("HTTP 500")),
        "{result:?}"
    );
    assert_eq!(
        server.control.calls().len(),
        1,
        "no stats call after a failed read"
    );
}

#[tokio::test]
async fn a_deny_list_still_rebuilding_is_transient() {
    let deny_list = Arc::new(DenyList::new());
    deny_list.apply(state("jane@example.com", true, false, 1));
    let server = serve(&deny_list).await;
    let result = jane_asks(&clearbit(&server), RequestKind::OptOutSaleShare).await;
    assert!(
        matches!(&result, Err(ConnectorError::Transient(detail)) if detail.contains("HTTP 503")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_deletion_is_confirmed_only_once_denied_as_deleted() {
    let deny_list = jane_opted_out();
    let server = serve(&deny_list).await;
    let connector = connector(&server, "zoominfo", 20, 100);
    let result = jane_asks(&connector, RequestKind::Delete).await;
    assert!(
        matches!(&result, Err(ConnectorError::Transient(_))),
        "{result:?}"
    );
    deny_list.apply(state("jane@example.com", true, true, 2));
    let result = jane_asks(&connector, RequestKind::Delete).await;
    let completion = completed(&result);
    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert_eq!(completion.evidence["deny_reasons"], "DELETED");
}

#[tokio::test]
async fn one_read_serves_a_batch_and_each_item_gets_its_own_outcome() {
    let deny_list = jane_opted_out();
    let server = serve(&deny_list).await;
    let results = connector(&server, "clearbit", 100, 100)
        .apply(
            Operation::Suppress,
            &[
                people(RequestKind::OptOutSaleShare, &["jane@example.com"]),
                people(
                    RequestKind::OptOutSaleShare,
                    &["john@example.com", "jane@example.com"],
                ),
                people(RequestKind::OptInSaleShare, &["jane@example.com"]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        completed(&results[0]).action,
        ConfirmationAction::Suppressed
    );
    assert!(matches!(&results[1], Err(ConnectorError::Transient(_))));
    assert_eq!(
        completed(&results[2]).action,
        ConfirmationAction::NotApplicable
    );
    let first = &server.control.calls_to("/v1/check")[0];
    assert_eq!(first.json["identifiers"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_request_without_identifiers_is_not_found_without_reading_the_deny_list() {
    let deny_list = Arc::new(DenyList::from_states([]));
    let server = serve(&deny_list).await;
    let result = apply_one(
        &clearbit(&server),
        Operation::Suppress,
        &work(RequestKind::OptOutSaleShare),
    )
    .await;
    let unnamed = completed(&result);
    assert_eq!(unnamed.action, ConfirmationAction::NotFound);
    assert_eq!(
        unnamed.evidence["reason"],
        "the request carries no identifier to deny"
    );
    assert_eq!(unnamed.evidence["enforced_by"], ENFORCED_BY);
    assert!(server.control.calls().is_empty());
}

#[tokio::test]
async fn an_opt_in_is_not_applicable_without_reading_the_deny_list() {
    let deny_list = Arc::new(DenyList::from_states([]));
    let server = serve(&deny_list).await;
    let result = jane_asks(&clearbit(&server), RequestKind::OptInSaleShare).await;
    assert_eq!(completed(&result).action, ConfirmationAction::NotApplicable);
    assert!(server.control.calls().is_empty());
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let deny_list = Arc::new(DenyList::from_states([state(
        "jane@example.com",
        true,
        true,
        1,
    )]));
    let server = serve(&deny_list).await;
    ComplianceSuite {
        hang: Duration::from_secs(3),
        ..ComplianceSuite::new(
            &connector(&server, "zoominfo", 20, 200),
            &hush_connector_enrichment::FACTORY,
            &|kind| people(kind, &["jane@example.com"]),
        )
        .with_faults(&server.control)
    }
    .run()
    .await;
}
