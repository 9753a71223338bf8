//! The configuration `hush-simulators` generates: it parses, validates, names only known
//! connector kinds, builds every connector, and points each at a seeded simulator (or, for the
//! `postgres` kind, at a seeded schema on the real local PostgreSQL server, which these tests
//! start with `deploy/local/postgres up`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use hush_contracts::connector::{Connector, Operation, RawValue, SuppressionWork, WorkIdentifier};
use hush_contracts::events::{Category, IdentifierType, RequestKind};
use hush_contracts::identifiers::hash_identifier;
use hush_contracts::recipients::{validate, RecipientConfig};
use hush_simulators::postgres::local_postgres_url;
use hush_simulators::{
    start_all, write_atomically, CallCursor, DemoPostgres, Running, SimulatorsError,
    BRAZE_OPT_OUT_ATTRIBUTE, CANARY_SUBJECT, DEMO_CONSUMERS, HUBSPOT_OPT_OUT_PROPERTY,
    POSTGRES_RECIPIENT_ID,
};
use serde::Deserialize;

/// A demo schema of this test's own on the local PostgreSQL server (started once per binary).
fn postgres() -> DemoPostgres {
    static URL: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let url = URL.get_or_init(|| {
        local_postgres_url().expect("the local PostgreSQL server (deploy/local/postgres up)")
    });
    DemoPostgres {
        url: url.clone(),
        schema: format!(
            "hush_sims_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

async fn start(base_config: Option<&str>) -> Result<Running, SimulatorsError> {
    start_all(base_config, &postgres()).await
}

#[derive(Deserialize)]
struct Recipients {
    recipients: Vec<RecipientConfig>,
}

fn recipients_of(running: &Running) -> Vec<RecipientConfig> {
    toml::from_str::<Recipients>(&running.config_toml)
        .expect("the generated configuration parses")
        .recipients
}

/// Every kind the registry knows, but for the enrichment vendors: they have no per-person API
/// to simulate (Hush enforces their suppression with its own deny-list).
fn connector_kinds() -> BTreeSet<&'static str> {
    hush_connectors::known_kinds()
        .filter(|kind| !hush_connector_enrichment::config::KINDS.contains(kind))
        .collect()
}

/// Sets the env lines' variables in this process (every run uses the same fake values).
fn apply_env(running: &Running) {
    for var in &running.env {
        std::env::set_var(&var.name, &var.value);
    }
}

fn build(recipient: &RecipientConfig) -> Arc<dyn Connector> {
    hush_connectors::validate(recipient)
        .unwrap_or_else(|e| panic!("recipient {} does not validate: {e}", recipient.id));
    hush_connectors::build(recipient)
        .unwrap_or_else(|e| panic!("recipient {} does not build: {e}", recipient.id))
}

#[tokio::test]
async fn generated_recipients_validate_use_known_kinds_and_build_every_connector() {
    let running = start(None).await.unwrap();
    let recipients = recipients_of(&running);
    validate(&recipients).unwrap();
    let ids: Vec<&str> = recipients.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "partner-webhook",
            "hubspot",
            "salesforce",
            "meta-audiences",
            "linkedin-segments",
            "google-customer-match",
            "google-ads-allowlisted",
            "segment",
            "google-analytics",
            "amplitude",
            "mixpanel",
            "braze",
            "klaviyo",
            "mailchimp",
            "warehouse",
            "bigquery",
            "tiktok-audiences",
            "the-trade-desk",
            POSTGRES_RECIPIENT_ID,
        ]
    );
    let kinds: BTreeSet<&str> = recipients.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, connector_kinds(), "one recipient per connector kind");
    assert!(recipients
        .iter()
        .all(|r| r.base_url.starts_with("http://127.0.0.1:")));
    apply_env(&running);
    for recipient in &recipients {
        build(recipient);
    }
}

#[tokio::test]
async fn every_credential_the_configuration_names_has_an_export_line() {
    let running = start(None).await.unwrap();
    let lines = running.env_lines();
    for recipient in recipients_of(&running) {
        for (name, var) in &recipient.credentials {
            let prefix = format!("export {}='", var.0);
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&prefix) && l.ends_with('\'')),
                "{}.credentials.{name} names {} without an export line",
                recipient.id,
                var.0
            );
        }
    }
    assert!(running.env_file().starts_with("# Fake credentials"));
}

#[tokio::test]
async fn the_base_configuration_comes_first_and_is_kept() {
    let base = "[kafka]\nbootstrap_servers = \"127.0.0.1:9092\"\n\n[topics]\npartitions = 3\n";
    let running = start(Some(base)).await.unwrap();
    assert!(running.config_toml.starts_with(base));
    let table: toml::Table = toml::from_str(&running.config_toml).unwrap();
    assert_eq!(
        table["kafka"]["bootstrap_servers"].as_str(),
        Some("127.0.0.1:9092")
    );
    assert_eq!(table["topics"]["partitions"].as_integer(), Some(3));
    assert_eq!(recipients_of(&running).len(), 19);
}

#[tokio::test]
async fn a_base_configuration_reusing_a_recipient_id_is_refused() {
    let base = "[[recipients]]\nid = \"hubspot\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://hooks.example.com\"\n";
    let error = start(Some(base)).await.err().expect("a duplicate id");
    assert!(error.to_string().contains("appears twice"), "{error}");
}

#[tokio::test]
async fn every_simulator_holds_the_demo_consumers_and_the_canary_subject() {
    let running = start(None).await.unwrap();
    let sims = &running.simulators;
    for consumer in DEMO_CONSUMERS.into_iter().chain([CANARY_SUBJECT]) {
        let hash = consumer.email_sha256();
        assert!(sims.hubspot.exists(consumer.email));
        assert!(sims.salesforce.individual_flags(consumer.email).is_some());
        assert!(sims.meta.members().contains(&hash));
        assert!(sims.linkedin.members().contains(&hash));
        assert!(sims.google_data_manager.members().contains(&hash));
        assert!(sims.google_ads.members().contains(&hash));
        for audience in &sims_tiktok_audiences() {
            assert!(sims.tiktok.members(audience).contains(&hash));
        }
        assert!(sims.braze.profiles().iter().any(|p| {
            p.external_id.as_deref() == Some(consumer.customer_id)
                && p.email.as_deref() == Some(consumer.email)
        }));
        assert!(sims
            .klaviyo
            .profiles()
            .iter()
            .any(|p| p.email.as_deref() == Some(consumer.email)));
        assert!(sims
            .mailchimp
            .member(consumer.email)
            .is_some_and(|m| m.status == "subscribed"));
        // The warehouses and the database hold the demo's customers only; the canary subject
        // lives in the SaaS systems its runs exercise.
        if consumer.email == CANARY_SUBJECT.email {
            continue;
        }
        for rows in [sims.snowflake.rows(), sims.bigquery.rows()] {
            assert!(rows.iter().any(|r| {
                r.get("email_sha256") == Some(&hash)
                    && r.get("do_not_sell").map(String::as_str) == Some("false")
            }));
        }
        let row = sims.postgres.customer(consumer.customer_id).await.unwrap();
        assert!(row.is_some_and(|r| !r.do_not_sell && !r.limit_sensitive));
    }
}

#[tokio::test]
async fn an_invalid_schema_name_is_refused_before_any_sql_runs() {
    let demo = DemoPostgres {
        schema: "demo; DROP TABLE x".into(),
        ..postgres()
    };
    let error = start_all(None, &demo).await.err().expect("refused");
    assert!(
        matches!(error, SimulatorsError::PostgresSchema(_)),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_the_start_without_showing_the_connection_string() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let demo = DemoPostgres {
        url: format!("postgres://hush:secret-pw-123@127.0.0.1:{port}/postgres?sslmode=disable"),
        schema: "hush_unreachable".into(),
    };
    let error = start_all(None, &demo)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("while connecting"), "{error}");
    assert!(!error.contains("secret-pw-123"), "{error}");
}

fn opt_out(request_id: &str, email: &str, customer_id: &str) -> SuppressionWork {
    let identifier = |kind, raw: &str| WorkIdentifier {
        kind,
        sha256: hash_identifier(kind, raw).unwrap(),
        raw: Some(RawValue::new(raw)),
    };
    SuppressionWork {
        request_id: request_id.into(),
        subject_key: hash_identifier(IdentifierType::Email, email).unwrap(),
        kind: RequestKind::OptOutSaleShare,
        identifiers: vec![
            identifier(IdentifierType::Email, email),
            identifier(IdentifierType::CustomerId, customer_id),
        ],
        categories: vec![Category::All],
        jurisdiction: "US-CA".into(),
        received_at: 1_764_000_000_000,
    }
}

#[tokio::test]
async fn an_opt_out_reaches_every_simulator_through_the_generated_configuration() {
    let running = start(None).await.unwrap();
    apply_env(&running);
    let [jane, sam, _] = DEMO_CONSUMERS;
    let work = [opt_out(
        "0b7f4c2e-2d7e-4c53-9a57-3c1f1e0d9a01",
        jane.email,
        jane.customer_id,
    )];
    for recipient in recipients_of(&running) {
        let results = build(&recipient)
            .apply(Operation::Suppress, &work)
            .await
            .unwrap();
        assert!(
            results.iter().all(Result::is_ok),
            "{}: {results:?}",
            recipient.id
        );
    }
    let sims = &running.simulators;
    assert_eq!(sims.webhook.notices().len(), 1);
    assert_eq!(
        sims.hubspot
            .property(jane.email, HUBSPOT_OPT_OUT_PROPERTY)
            .as_deref(),
        Some("true")
    );
    let flags = sims.salesforce.individual_flags(jane.email).unwrap();
    assert!(flags.has_opted_out_tracking && flags.has_opted_out_profiling);
    for members in [
        sims.meta.members(),
        sims.linkedin.members(),
        sims.google_data_manager.members(),
        sims.google_ads.members(),
    ] {
        assert!(!members.contains(&jane.email_sha256()));
        assert!(members.contains(&sam.email_sha256()));
    }
    let regulations = sims.segment.regulations();
    assert_eq!(regulations.len(), 1);
    assert_eq!(regulations[0].subject_ids, [jane.customer_id]);
    let braze_flag = |customer_id: &str| {
        sims.braze
            .profiles()
            .into_iter()
            .find(|p| p.external_id.as_deref() == Some(customer_id))
            .and_then(|p| p.custom_attributes.get(BRAZE_OPT_OUT_ATTRIBUTE).cloned())
    };
    assert_eq!(braze_flag(jane.customer_id), Some(serde_json::json!(true)));
    assert_eq!(braze_flag(sam.customer_id), None);
    let klaviyo_suppressed = |email: &str| {
        sims.klaviyo
            .profiles()
            .iter()
            .any(|p| p.email.as_deref() == Some(email) && p.suppressed)
    };
    assert!(klaviyo_suppressed(jane.email) && !klaviyo_suppressed(sam.email));
    let mailchimp_status = |email: &str| sims.mailchimp.member(email).map(|m| m.status);
    assert_eq!(
        mailchimp_status(jane.email).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(mailchimp_status(sam.email).as_deref(), Some("subscribed"));
    for (warehouse, rows) in [
        ("snowflake", sims.snowflake.rows()),
        ("bigquery", sims.bigquery.rows()),
    ] {
        let flag = |hash: String| {
            rows.iter()
                .find(|r| r.get("email_sha256") == Some(&hash))
                .and_then(|r| r.get("do_not_sell").cloned())
        };
        assert_eq!(
            flag(jane.email_sha256()).as_deref(),
            Some("true"),
            "{warehouse}"
        );
        assert_eq!(
            flag(sam.email_sha256()).as_deref(),
            Some("false"),
            "{warehouse}"
        );
    }
    // BigQuery's flag bound the email hash as a named parameter, never the raw email.
    let jobs = sims.bigquery.jobs();
    assert!(jobs.iter().any(|j| j.query.starts_with("UPDATE")
        && j.params.get("email_sha256") == Some(&Some(jane.email_sha256()))));
    assert!(jobs
        .iter()
        .all(|j| j.params.values().all(|v| v.as_deref() != Some(jane.email))));
    let jane_row = sims.postgres.customer(jane.customer_id).await.unwrap();
    assert!(jane_row.is_some_and(|r| r.do_not_sell
        && r.do_not_sell_request.as_deref() == Some("0b7f4c2e-2d7e-4c53-9a57-3c1f1e0d9a01")));
    let sam_row = sims.postgres.customer(sam.customer_id).await.unwrap();
    assert!(sam_row.is_some_and(|r| !r.do_not_sell));
    for audience in &sims_tiktok_audiences() {
        let members = sims.tiktok.members(audience);
        assert!(!members.contains(&jane.email_sha256()));
        assert!(members.contains(&sam.email_sha256()));
    }
    // The Trade Desk takes no email or customer id: nothing was sent there.
    assert!(sims.the_trade_desk.accepted().is_empty());
    // Analytics vendors have no opt-out call: nothing reached them.
    assert!(sims.google_analytics.deletion_requests().is_empty());
    assert!(sims.amplitude.jobs().is_empty());
    assert!(sims.mixpanel.tasks().is_empty());
}

#[tokio::test]
async fn logged_calls_name_the_simulator_and_carry_no_email() {
    let running = start(None).await.unwrap();
    apply_env(&running);
    let jane = DEMO_CONSUMERS[0];
    let hubspot = recipients_of(&running)
        .into_iter()
        .find(|r| r.id == "hubspot")
        .unwrap();
    let work = [opt_out(
        "6a0e7f51-5b1c-4e0f-8f7e-2b9d4c1a7e02",
        jane.email,
        jane.customer_id,
    )];
    build(&hubspot)
        .apply(Operation::Suppress, &work)
        .await
        .unwrap();

    let mut cursor = CallCursor::default();
    let lines = running.new_calls(&mut cursor);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].simulator, "hubspot");
    assert_eq!(lines[0].method, "PATCH");
    assert_eq!(lines[0].path, "/crm/objects/2026-09/contacts/{redacted}");
    assert_eq!(lines[0].status, 200);
    assert!(running.new_calls(&mut cursor).is_empty(), "logged once");
}

#[test]
fn a_file_written_atomically_is_complete_private_and_leaves_no_temporary() {
    let dir = std::env::temp_dir().join(format!("hush-simulators-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hush.toml");
    write_atomically(&path, "first = 1\n").unwrap();
    write_atomically(&path, "second = 2\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second = 2\n");
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the file itself remains");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The audiences of the generated TikTok recipient.
fn sims_tiktok_audiences() -> Vec<String> {
    hush_connector_tiktok::sim::TikTokSimConfig::default().audience_ids
}
