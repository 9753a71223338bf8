//! The configuration `hush-simulators` generates: it parses, validates, names only known
//! connector kinds, builds every connector, and points each at a seeded simulator.

use std::collections::BTreeSet;
use std::sync::Arc;

use hush_contracts::connector::{Connector, Operation, RawValue, SuppressionWork, WorkIdentifier};
use hush_contracts::events::{Category, IdentifierType, RequestKind};
use hush_contracts::identifiers::hash_identifier;
use hush_contracts::recipients::{validate, RecipientConfig};
use hush_simulators::{
    start_all, write_atomically, CallCursor, Running, CANARY_SUBJECT, DEMO_CONSUMERS,
    HUBSPOT_OPT_OUT_PROPERTY,
};
use serde::Deserialize;

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
    let running = start_all(None).await.unwrap();
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
            "segment"
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
    let running = start_all(None).await.unwrap();
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
    let running = start_all(Some(base)).await.unwrap();
    assert!(running.config_toml.starts_with(base));
    let table: toml::Table = toml::from_str(&running.config_toml).unwrap();
    assert_eq!(
        table["kafka"]["bootstrap_servers"].as_str(),
        Some("127.0.0.1:9092")
    );
    assert_eq!(table["topics"]["partitions"].as_integer(), Some(3));
    assert_eq!(recipients_of(&running).len(), 8);
}

#[tokio::test]
async fn a_base_configuration_reusing_a_recipient_id_is_refused() {
    let base = "[[recipients]]\nid = \"hubspot\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://hooks.example.com\"\n";
    let error = start_all(Some(base)).await.err().expect("a duplicate id");
    assert!(error.to_string().contains("appears twice"), "{error}");
}

#[tokio::test]
async fn every_simulator_holds_the_demo_consumers_and_the_canary_subject() {
    let running = start_all(None).await.unwrap();
    let sims = &running.simulators;
    for consumer in DEMO_CONSUMERS.into_iter().chain([CANARY_SUBJECT]) {
        let hash = consumer.email_sha256();
        assert!(sims.hubspot.exists(consumer.email));
        assert!(sims.salesforce.individual_flags(consumer.email).is_some());
        assert!(sims.meta.members().contains(&hash));
        assert!(sims.linkedin.members().contains(&hash));
        assert!(sims.google_data_manager.members().contains(&hash));
        assert!(sims.google_ads.members().contains(&hash));
    }
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
    let running = start_all(None).await.unwrap();
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
}

#[tokio::test]
async fn logged_calls_name_the_simulator_and_carry_no_email() {
    let running = start_all(None).await.unwrap();
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
