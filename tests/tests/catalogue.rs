//! The whole connector catalogue at once, through Kafka: one opt-out and one verified delete
//! reach every recipient kind (webhook, HubSpot, Salesforce, Meta, LinkedIn, Google Data
//! Manager and Google Ads, Segment, Google Analytics, Amplitude, Mixpanel, Braze, Klaviyo,
//! Mailchimp, Snowflake, BigQuery, TikTok, The Trade Desk, the enrichment deny-list, and
//! PostgreSQL), each speaking its
//! vendor's API to a simulator — the PostgreSQL recipient to the REAL local server
//! (`deploy/local/postgres up`) — and the auditor shows every confirmation with the vendor's
//! evidence.

use std::collections::BTreeMap;
use std::time::Duration;

use hush_contracts::recipients::RecipientConfig;
use hush_simulators::postgres::local_postgres_url;
use hush_simulators::{DemoPostgres, BRAZE_OPT_OUT_ATTRIBUTE, DEMO_CONSUMERS};
use hush_tests::auth::test_auth;
use hush_tests::pipeline::{Options, Pipeline};
use serde_json::{json, Value};

/// Jane's and Sam's mobile advertising ids (the ids The Trade Desk takes; TikTok gets their hashes).
const JANE_MAID: &str = "6d92078a-8246-4ba4-ae5b-76104861e7dc";
const SAM_MAID: &str = "2c9b3b1e-7f4d-4a8e-9c3d-5b1f0e2a4c6d";

/// Expected (action, verification) per connector for one request kind.
type Expectation = BTreeMap<&'static str, (&'static str, &'static str)>;

fn outcome<'a>(record: &'a Value, id: &str) -> &'a Value {
    record["connectors"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["connector_id"] == id))
        .unwrap_or_else(|| panic!("no confirmation from {id}: {record:#}"))
}

fn assert_outcomes(record: &Value, expected: &Expectation) {
    let required: Vec<&str> = record["required_connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required.len(),
        expected.len(),
        "every recipient is required: {required:?}"
    );
    for (id, (action, verification)) in expected {
        let got = outcome(record, id);
        assert_eq!(
            (
                got["action"].as_str().unwrap(),
                got["verification"].as_str().unwrap()
            ),
            (*action, *verification),
            "{id}: {got:#}"
        );
        let evidence = got["evidence"].as_object().unwrap();
        assert!(
            evidence.len() >= 2,
            "{id} carries vendor evidence: {evidence:?}"
        );
        let text = serde_json::to_string(evidence).unwrap();
        for consumer in DEMO_CONSUMERS {
            assert!(
                !text.contains(consumer.email),
                "{id} evidence holds a raw email: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_opt_out_and_a_verified_delete_reach_every_connector_with_vendor_evidence() {
    let postgres = DemoPostgres {
        url: local_postgres_url().expect("the local PostgreSQL server (deploy/local/postgres up)"),
        schema: format!("hush_catalogue_{}", uuid::Uuid::new_v4().simple()),
    };
    let simulators = hush_simulators::start_all(None, &postgres)
        .await
        .expect("simulators");
    for var in &simulators.env {
        std::env::set_var(&var.name, &var.value);
    }
    let generated: toml::Table = toml::from_str(&simulators.config_toml).unwrap();
    let extra: Vec<RecipientConfig> = generated["recipients"]
        .clone()
        .try_into::<Vec<RecipientConfig>>()
        .unwrap()
        .into_iter()
        // The pipeline brings its own webhook and HubSpot recipients.
        .filter(|r| r.id != "partner-webhook" && r.id != "hubspot")
        .collect();
    assert_eq!(extra.len(), 17);
    let pipeline = Pipeline::start(
        "catalogue",
        Options {
            extra_recipients: extra,
            with_denylist: true,
            timeout_ms: 5_000,
            ..Options::default()
        },
    )
    .await;
    let (jane, sam) = (DEMO_CONSUMERS[0], DEMO_CONSUMERS[1]);
    pipeline.hubspot.add_contact(jane.email);
    pipeline.hubspot.add_contact(sam.email);
    let meta_before = simulators.simulators.meta.members();
    assert!(meta_before.contains(&jane.email_sha256()));

    let (status, opt_out) = pipeline
        .submit(json!({
            "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_LINK",
            "identifiers": [
                {"type": "EMAIL", "value": jane.email},
                {"type": "PHONE", "value": "+1 415 555 0100"},
                {"type": "CUSTOMER_ID", "value": jane.customer_id},
                {"type": "MAID", "value": JANE_MAID}
            ]
        }))
        .await;
    assert_eq!(status, 202, "{opt_out}");
    let (status, delete) = pipeline
        .submit(json!({
            "kind": "DELETE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
            "identifiers": [
                {"type": "EMAIL", "value": sam.email},
                {"type": "CUSTOMER_ID", "value": sam.customer_id},
                {"type": "MAID", "value": SAM_MAID}
            ],
            "verification": {"attestation": test_auth().attest_email(sam.email, "ACCOUNT_LOGIN")}
        }))
        .await;
    assert_eq!(status, 202, "{delete}");

    let complete = |record: &Value| {
        record["missing_connectors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && record["connectors"]
                .as_array()
                .is_some_and(|c| c.len() >= 20)
    };
    let opt_out_record = pipeline
        .wait_record(
            opt_out["request_id"].as_str().unwrap(),
            Duration::from_secs(120),
            complete,
        )
        .await;
    let delete_record = pipeline
        .wait_record(
            delete["request_id"].as_str().unwrap(),
            Duration::from_secs(120),
            complete,
        )
        .await;

    assert_outcomes(
        &opt_out_record,
        &BTreeMap::from([
            ("partner-webhook", ("NOTIFIED", "PENDING")),
            ("hubspot", ("FLAGGED", "VERIFIED")),
            ("salesforce", ("FLAGGED", "VERIFIED")),
            ("meta-audiences", ("SUPPRESSED", "UNVERIFIABLE")),
            ("linkedin-segments", ("SUPPRESSED", "UNVERIFIABLE")),
            ("google-customer-match", ("SUPPRESSED", "VERIFIED")),
            ("google-ads-allowlisted", ("SUPPRESSED", "VERIFIED")),
            ("segment", ("SUPPRESSED", "VERIFIED")),
            ("clearbit", ("SUPPRESSED", "VERIFIED")),
            // Analytics vendors have no per-user opt-out call; the reason is the evidence.
            ("google-analytics", ("NOT_APPLICABLE", "UNVERIFIABLE")),
            ("amplitude", ("NOT_APPLICABLE", "UNVERIFIABLE")),
            ("mixpanel", ("NOT_APPLICABLE", "UNVERIFIABLE")),
            ("braze", ("FLAGGED", "VERIFIED")),
            ("klaviyo", ("SUPPRESSED", "VERIFIED")),
            ("mailchimp", ("SUPPRESSED", "VERIFIED")),
            ("warehouse", ("FLAGGED", "VERIFIED")),
            ("bigquery", ("FLAGGED", "VERIFIED")),
            ("customers-db", ("FLAGGED", "VERIFIED")),
            // Neither ad platform can be read back per person.
            ("tiktok-audiences", ("SUPPRESSED", "UNVERIFIABLE")),
            ("the-trade-desk", ("SUPPRESSED", "UNVERIFIABLE")),
        ]),
    );
    assert_outcomes(
        &delete_record,
        &BTreeMap::from([
            ("partner-webhook", ("NOTIFIED", "PENDING")),
            ("hubspot", ("DELETED", "VERIFIED")),
            ("salesforce", ("DELETED", "VERIFIED")),
            ("meta-audiences", ("SUPPRESSED", "UNVERIFIABLE")),
            ("linkedin-segments", ("SUPPRESSED", "UNVERIFIABLE")),
            ("google-customer-match", ("DELETED", "VERIFIED")),
            ("google-ads-allowlisted", ("DELETED", "VERIFIED")),
            ("segment", ("DELETED", "VERIFIED")),
            ("clearbit", ("SUPPRESSED", "VERIFIED")),
            // Google offers no read-back of a deletion request.
            ("google-analytics", ("DELETED", "UNVERIFIABLE")),
            ("amplitude", ("DELETED", "VERIFIED")),
            ("mixpanel", ("DELETED", "VERIFIED")),
            ("braze", ("DELETED", "VERIFIED")),
            ("klaviyo", ("DELETED", "VERIFIED")),
            ("mailchimp", ("DELETED", "VERIFIED")),
            ("warehouse", ("DELETED", "VERIFIED")),
            ("bigquery", ("DELETED", "VERIFIED")),
            ("customers-db", ("DELETED", "VERIFIED")),
            // TikTok offers removal from its audiences, not deletion.
            ("tiktok-audiences", ("SUPPRESSED", "UNVERIFIABLE")),
            ("the-trade-desk", ("DELETED", "UNVERIFIABLE")),
        ]),
    );

    // The vendors' own state changed.
    let sims = &simulators.simulators;
    assert!(!sims.meta.members().contains(&jane.email_sha256()));
    assert!(!sims.meta.members().contains(&sam.email_sha256()));
    assert!(!sims
        .google_data_manager
        .members()
        .contains(&jane.email_sha256()));
    assert!(!sims.google_ads.members().contains(&jane.email_sha256()));
    let tiktok_audiences: Vec<String> = extra_ids(&generated, "tiktok-audiences", "audience_ids");
    assert!(!tiktok_audiences.is_empty());
    for audience in tiktok_audiences {
        let members = sims.tiktok.members(&audience);
        assert!(!members.contains(&jane.email_sha256()), "{audience}");
        assert!(!members.contains(&sam.email_sha256()), "{audience}");
        assert!(
            members.contains(&DEMO_CONSUMERS[2].email_sha256()),
            "{audience}"
        );
    }
    // The Trade Desk got each person's raw advertising id as a DAID, and nothing else.
    let ttd: Vec<(String, Vec<(String, String)>)> = sims
        .the_trade_desk
        .accepted()
        .into_iter()
        .map(|dsr| (dsr.request_type, dsr.ids))
        .collect();
    assert!(
        ttd.contains(&("OptOut".into(), vec![("DAID".into(), JANE_MAID.into())])),
        "{ttd:?}"
    );
    assert!(
        ttd.contains(&("Deletion".into(), vec![("DAID".into(), SAM_MAID.into())])),
        "{ttd:?}"
    );
    assert_eq!(ttd.len(), 2, "{ttd:?}");
    assert!(!sims.salesforce.contact_exists(sam.email));
    assert!(sims
        .salesforce
        .individual_flags(jane.email)
        .is_some_and(|f| f.has_opted_out_tracking));
    assert!(!pipeline.hubspot.exists(sam.email));
    let braze_profile = |customer_id: &str| {
        sims.braze
            .profiles()
            .into_iter()
            .find(|p| p.external_id.as_deref() == Some(customer_id))
    };
    assert_eq!(
        braze_profile(jane.customer_id)
            .and_then(|p| p.custom_attributes.get(BRAZE_OPT_OUT_ATTRIBUTE).cloned()),
        Some(json!(true))
    );
    assert!(braze_profile(sam.customer_id).is_none());
    let klaviyo = sims.klaviyo.profiles();
    assert!(klaviyo
        .iter()
        .any(|p| p.email.as_deref() == Some(jane.email) && p.suppressed));
    assert!(!klaviyo
        .iter()
        .any(|p| p.email.as_deref() == Some(sam.email)));
    assert_eq!(
        sims.mailchimp
            .member(jane.email)
            .map(|m| m.status)
            .as_deref(),
        Some("unsubscribed")
    );
    assert!(sims.mailchimp.member(sam.email).is_none());
    for (warehouse, rows) in [
        ("snowflake", sims.snowflake.rows()),
        ("bigquery", sims.bigquery.rows()),
    ] {
        assert!(
            rows.iter()
                .any(|r| r.get("email_sha256") == Some(&jane.email_sha256())
                    && r.get("do_not_sell").map(String::as_str) == Some("true")),
            "{warehouse}: {rows:?}"
        );
        assert!(
            !rows
                .iter()
                .any(|r| r.get("email_sha256") == Some(&sam.email_sha256())),
            "{warehouse}: {rows:?}"
        );
    }
    let ga = sims.google_analytics.deletion_requests();
    assert_eq!(ga.len(), 1, "one USER_ID deletion: {ga:?}");
    assert_eq!(
        (ga[0].id_type.as_str(), ga[0].user_id.as_str()),
        ("USER_ID", sam.customer_id)
    );
    assert!(sims.amplitude.jobs().iter().any(|j| j.status == "done"
        && j.scheduled
            .iter()
            .any(|s| s.user_id.as_deref() == Some(sam.customer_id))));
    let tasks = sims.mixpanel.tasks();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].distinct_ids, [sam.customer_id]);
    assert_eq!(tasks[0].compliance_type, "CCPA");
    // The real database: Jane's row is flagged by her opt-out, Sam's row is gone.
    let jane_row = sims.postgres.customer(jane.customer_id).await.unwrap();
    assert!(
        jane_row
            .as_ref()
            .is_some_and(|r| r.do_not_sell
                && r.do_not_sell_request.as_deref() == opt_out["request_id"].as_str()),
        "{jane_row:?}"
    );
    assert_eq!(sims.postgres.customer(sam.customer_id).await.unwrap(), None);
}

/// The string list `setting` of the generated recipient `id`.
fn extra_ids(generated: &toml::Table, id: &str, setting: &str) -> Vec<String> {
    generated["recipients"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["id"].as_str() == Some(id)))
        .and_then(|r| r["settings"][setting].as_array())
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
