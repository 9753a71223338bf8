//! A Global Privacy Control signal that carries only a device id, end to end on the real broker
//! and registry and a real PostgreSQL: intake's `postgres` resolver maps the device to the
//! customer behind it (customer id and email), and the opt-out reaches Segment (by the user id
//! found), HubSpot, Salesforce and the ad platforms (Meta, LinkedIn, Google's Customer Match
//! through the Data Manager API and Google Ads), each speaking its vendor's API to a simulator.
//! A customer HubSpot and Salesforce do not hold completes with their NOT_FOUND and what they
//! answered; a device no resolver knows completes too, every recipient saying why it had
//! nothing to act on.

use std::collections::BTreeMap;
use std::time::Duration;

use hush_contracts::recipients::RecipientConfig;
use hush_resolution::ResolverConfig;
use hush_simulators::postgres::local_postgres_url;
use hush_simulators::{DemoPostgres, DEMO_CONSUMERS};
use hush_tests::pipeline::{Options, Pipeline};
use serde_json::{json, Value};

const CUSTOMER_DB_VAR: &str = "HUSH_IT_GPC_DEVICE_CUSTOMER_DB_URL";
/// Jane's phone, known to the customer database.
const JANE_DEVICE: &str = "dev-jane-phone-7f3a";
/// A new customer's tablet: the customer database knows them, no vendor does yet.
const NEW_DEVICE: &str = "dev-new-tablet-19c2";
const NEW_EMAIL: &str = "new.customer@example.com";
const NEW_CUSTOMER_ID: &str = "cust-2001";
/// A device nobody knows.
const UNKNOWN_DEVICE: &str = "dev-unknown-0b4e";

/// The recipients of this test, by the ids the simulators' generated configuration gives them.
const RECIPIENTS: [&str; 7] = [
    "segment",
    "hubspot",
    "salesforce",
    "meta-audiences",
    "linkedin-segments",
    "google-customer-match",
    "google-ads-allowlisted",
];

/// The business's customer table with the devices it has seen, in a schema of this run's own.
async fn customer_table() -> String {
    let schema = format!("it_gpc_device_{}", uuid::Uuid::new_v4().simple());
    let jane = DEMO_CONSUMERS[0];
    hush_tests::postgres::connect()
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.customers (customer_id text PRIMARY KEY, email text NOT NULL);
             CREATE TABLE {schema}.devices (device_id text PRIMARY KEY,
                 customer_id text NOT NULL REFERENCES {schema}.customers);
             INSERT INTO {schema}.customers VALUES
                 ('{jane_id}', '{jane_email}'), ('{NEW_CUSTOMER_ID}', '{NEW_EMAIL}');
             INSERT INTO {schema}.devices VALUES
                 ('{JANE_DEVICE}', '{jane_id}'), ('{NEW_DEVICE}', '{NEW_CUSTOMER_ID}');",
            jane_id = jane.customer_id,
            jane_email = jane.email,
        ))
        .await
        .expect("customer tables");
    schema
}

fn resolvers(schema: &str) -> Vec<ResolverConfig> {
    #[derive(serde::Deserialize)]
    struct File {
        resolvers: Vec<ResolverConfig>,
    }
    let file: File = toml::from_str(&format!(
        r#"
        [[resolvers]]
        id = "customer-db"
        kind = "postgres"
        url_env = "{CUSTOMER_DB_VAR}"
        query = "SELECT c.customer_id, c.email FROM {schema}.devices d JOIN {schema}.customers c USING (customer_id) WHERE d.device_id = :device_id"
        columns = {{ customer_id = "CUSTOMER_ID", email = "EMAIL" }}
        "#
    ))
    .expect("resolvers");
    file.resolvers
}

/// Sends a GPC signal carrying only `device` as a browser would relay it; answers the request id.
async fn gpc(pipeline: &Pipeline, device: &str) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/gpc", pipeline.intake_url))
        .header("Sec-GPC", "1")
        .json(&json!({"device_id": device}))
        .send()
        .await
        .expect("intake reachable");
    assert_eq!(answer.status().as_u16(), 202, "GPC signal of {device}");
    let answer: Value = answer.json().await.expect("json answer");
    assert_eq!(answer["honored"], true, "{answer}");
    answer["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned()
}

fn outcome<'a>(record: &'a Value, id: &str) -> &'a Value {
    record["connectors"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["connector_id"] == id))
        .unwrap_or_else(|| panic!("no confirmation from {id}: {record:#}"))
}

/// Checks each recipient's (action, verification) and, where given, that its reason names
/// the text.
fn assert_outcomes(
    who: &str,
    record: &Value,
    expected: &BTreeMap<&str, (&str, &str, Option<&str>)>,
) {
    let mut required: Vec<&str> = record["required_connectors"]
        .as_array()
        .expect("required connectors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    let mut all = RECIPIENTS.to_vec();
    all.sort_unstable();
    assert_eq!(required, all, "{who}: every recipient is required");
    for (id, (action, verification, reason)) in expected {
        let got = outcome(record, id);
        assert_eq!(
            (got["action"].as_str(), got["verification"].as_str()),
            (Some(*action), Some(*verification)),
            "{who} at {id}: {got:#}"
        );
        if let Some(reason) = reason {
            let said = got["evidence"]["reason"].as_str().unwrap_or_default();
            assert!(said.contains(reason), "{who} at {id}: {got:#}");
        }
        let text = got["evidence"].to_string();
        for raw in [DEMO_CONSUMERS[0].email, NEW_EMAIL, JANE_DEVICE, NEW_DEVICE] {
            assert!(!text.contains(raw), "{who} at {id}: raw value in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_only_gpc_signal_reaches_every_recipient_through_the_customer_behind_it() {
    let schema = customer_table().await;
    std::env::set_var(CUSTOMER_DB_VAR, hush_tests::postgres::cluster_url());
    let postgres = DemoPostgres {
        url: local_postgres_url().expect("the local PostgreSQL server (deploy/local/postgres up)"),
        schema: format!("hush_gpc_device_{}", uuid::Uuid::new_v4().simple()),
    };
    let simulators = hush_simulators::start_all(None, &postgres)
        .await
        .expect("simulators");
    for var in &simulators.env {
        std::env::set_var(&var.name, &var.value);
    }
    let generated: toml::Table = toml::from_str(&simulators.config_toml).expect("generated");
    let recipients: Vec<RecipientConfig> = generated["recipients"]
        .clone()
        .try_into::<Vec<RecipientConfig>>()
        .expect("recipients")
        .into_iter()
        .filter(|r| RECIPIENTS.contains(&r.id.as_str()))
        .collect();
    assert_eq!(recipients.len(), RECIPIENTS.len());
    let hubspot_property = recipients
        .iter()
        .find(|r| r.id == "hubspot")
        .and_then(|r| r.settings.get("opt_out_property"))
        .and_then(|v| v.as_str())
        .expect("HubSpot's opt-out property")
        .to_owned();
    let pipeline = Pipeline::start(
        "gpc-device",
        Options {
            extra_recipients: recipients,
            builtin_recipients: false,
            resolvers: resolvers(&schema),
            timeout_ms: 5_000,
            ..Options::default()
        },
    )
    .await;
    let sims = &simulators.simulators;
    let jane = DEMO_CONSUMERS[0];
    assert!(sims.meta.members().contains(&jane.email_sha256()));
    assert!(sims
        .google_data_manager
        .members()
        .contains(&jane.email_sha256()));
    assert!(sims.google_ads.members().contains(&jane.email_sha256()));
    assert!(!sims.salesforce.contact_exists(NEW_EMAIL));
    assert!(!sims.hubspot.exists(NEW_EMAIL));

    let jane_id = gpc(&pipeline, JANE_DEVICE).await;
    let new_id = gpc(&pipeline, NEW_DEVICE).await;
    let unknown_id = gpc(&pipeline, UNKNOWN_DEVICE).await;
    let complete = |record: &Value| {
        record["missing_connectors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && record["connectors"]
                .as_array()
                .is_some_and(|c| c.len() == RECIPIENTS.len())
    };
    let mut records = Vec::new();
    for id in [&jane_id, &new_id, &unknown_id] {
        records.push(
            pipeline
                .wait_record(id, Duration::from_secs(120), complete)
                .await,
        );
    }
    for (who, record) in ["jane", "new customer", "unknown device"]
        .iter()
        .zip(&records)
    {
        assert_eq!(record["channel"], "GPC", "{who}: {record:#}");
        assert!(
            matches!(record["status"].as_str(), Some("CONFIRMED" | "VERIFIED")),
            "{who} completes: {record:#}"
        );
    }

    // Jane: found through her phone, suppressed wherever she is held.
    assert_outcomes(
        "jane",
        &records[0],
        &BTreeMap::from([
            ("segment", ("SUPPRESSED", "VERIFIED", None)),
            ("hubspot", ("FLAGGED", "VERIFIED", None)),
            ("salesforce", ("FLAGGED", "VERIFIED", None)),
            ("meta-audiences", ("SUPPRESSED", "UNVERIFIABLE", None)),
            ("linkedin-segments", ("SUPPRESSED", "UNVERIFIABLE", None)),
            ("google-customer-match", ("SUPPRESSED", "VERIFIED", None)),
            ("google-ads-allowlisted", ("SUPPRESSED", "VERIFIED", None)),
        ]),
    );
    let steps = &records[0]["resolution"];
    assert_eq!(steps[0]["resolver"], "customer-db", "{steps:#}");
    assert_eq!(steps[0]["outcome"], "RESOLVED", "{steps:#}");
    assert!(
        !records[0].to_string().contains(jane.customer_id),
        "no resolved value in the auditor's answer"
    );
    let regulated: Vec<String> = sims
        .segment
        .regulations()
        .into_iter()
        .flat_map(|r| r.subject_ids)
        .collect();
    assert!(
        regulated.contains(&jane.customer_id.to_owned()),
        "{regulated:?}"
    );
    assert_eq!(
        sims.hubspot
            .property(jane.email, &hubspot_property)
            .as_deref(),
        Some("true")
    );
    assert!(sims
        .salesforce
        .individual_flags(jane.email)
        .is_some_and(|f| f.has_opted_out_tracking));
    assert!(!sims.meta.members().contains(&jane.email_sha256()));
    assert!(!sims.linkedin.members().contains(&jane.email_sha256()));
    assert!(!sims
        .google_data_manager
        .members()
        .contains(&jane.email_sha256()));
    assert!(!sims.google_ads.members().contains(&jane.email_sha256()));

    // The new customer: resolved, but HubSpot and Salesforce hold nobody with that email.
    assert_outcomes(
        "new customer",
        &records[1],
        &BTreeMap::from([
            ("segment", ("SUPPRESSED", "VERIFIED", None)),
            ("hubspot", ("NOT_FOUND", "VERIFIED", None)),
            (
                "salesforce",
                (
                    "NOT_FOUND",
                    "VERIFIED",
                    Some("no Contact or Lead has the subject's email"),
                ),
            ),
        ]),
    );
    assert_eq!(
        outcome(&records[1], "hubspot")["evidence"]["contacts_not_found"],
        "1",
        "HubSpot answered that it holds no such contact"
    );
    assert!(
        regulated.contains(&NEW_CUSTOMER_ID.to_owned()),
        "{regulated:?}"
    );
    assert!(!sims.hubspot.exists(NEW_EMAIL), "no contact was created");
    assert!(!sims.salesforce.contact_exists(NEW_EMAIL));

    // The unknown device: no resolver knows it, and no recipient can match a device id. Every
    // one says NOT_FOUND (the subject is not in that system under anything it matches on),
    // each with its reason; none fails and none calls itself not applicable.
    assert_eq!(
        records[2]["resolution"][0]["outcome"], "UNKNOWN_SUBJECT",
        "{:#}",
        records[2]["resolution"]
    );
    assert_outcomes(
        "unknown device",
        &records[2],
        &BTreeMap::from([
            (
                "segment",
                ("NOT_FOUND", "UNVERIFIABLE", Some("no CUSTOMER_ID")),
            ),
            (
                "salesforce",
                ("NOT_FOUND", "UNVERIFIABLE", Some("no EMAIL identifier")),
            ),
            (
                "google-customer-match",
                ("NOT_FOUND", "UNVERIFIABLE", Some("no email or phone")),
            ),
            (
                "google-ads-allowlisted",
                ("NOT_FOUND", "UNVERIFIABLE", Some("no email or phone")),
            ),
            (
                "hubspot",
                ("NOT_FOUND", "UNVERIFIABLE", Some("no EMAIL identifier")),
            ),
            (
                "meta-audiences",
                ("NOT_FOUND", "UNVERIFIABLE", Some("nothing Meta")),
            ),
            (
                "linkedin-segments",
                ("NOT_FOUND", "UNVERIFIABLE", Some("nothing LinkedIn")),
            ),
        ]),
    );
    pipeline.stop();
}
