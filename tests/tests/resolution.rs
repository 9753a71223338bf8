//! Identity resolution end to end, on the real broker and registry and a real PostgreSQL:
//! an opt-out that carries only an email reaches Segment (which knows people only by user id)
//! because intake's `postgres` resolver maps the email to the customer id; a subject no
//! resolver knows completes with Segment answering NOT_FOUND; and a resolver that is down is
//! skipped, recorded as such, without holding the request back.

use std::time::Duration;

use hush_connector_segment::sim::{SegmentSim, SegmentSimConfig};
use hush_contracts::events::{IdentifierType, PrivacyRequest, ResolutionOutcome};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_resolution::sim::{SegmentProfilesSim, SegmentProfilesSimConfig};
use hush_resolution::ResolverConfig;
use hush_sim_kit::Fault;
use hush_tests::pipeline::{Options, Pipeline};
use serde_json::{json, Value};

const SEGMENT_TOKEN_VAR: &str = "HUSH_IT_RESOLUTION_SEGMENT_TOKEN";
const PROFILES_TOKEN_VAR: &str = "HUSH_IT_RESOLUTION_PROFILES_TOKEN";
const CUSTOMER_DB_VAR: &str = "HUSH_IT_RESOLUTION_CUSTOMER_DB_URL";

/// The business's customer table, in a schema of this run's own.
async fn customer_table() -> String {
    let schema = format!("it_resolution_{}", uuid::Uuid::new_v4().simple());
    hush_tests::postgres::connect()
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.customers (customer_id text PRIMARY KEY, email text NOT NULL);
             INSERT INTO {schema}.customers VALUES
                 ('cust-1001', 'jane.doe@example.com'),
                 ('cust-1002', 'sam.lee@example.com');"
        ))
        .await
        .expect("customer table");
    schema
}

fn segment_recipient(base_url: &str) -> RecipientConfig {
    toml::from_str(&format!(
        r#"
        id = "segment"
        kind = "segment"
        role = "SERVICE_PROVIDER"
        base_url = "{base_url}"
        credentials = {{ token = "{SEGMENT_TOKEN_VAR}" }}
        timeout_ms = 5000
        rate_limit_per_second = 100
        [settings]
        poll_interval_ms = 100
        max_wait_ms = 10000
        "#
    ))
    .expect("segment recipient")
}

fn resolvers(schema: &str, profiles: &SegmentProfilesSim) -> Vec<ResolverConfig> {
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
        query = "SELECT customer_id FROM {schema}.customers WHERE email = :email"
        columns = {{ customer_id = "CUSTOMER_ID" }}

        [[resolvers]]
        id = "segment-profiles"
        kind = "segment_profiles"
        base_url = "{profiles}"
        space_id = "{space}"
        token_env = "{PROFILES_TOKEN_VAR}"
        lookup_by = ["email"]
        backoff_ms = 50
        max_backoff_ms = 100
        "#,
        profiles = profiles.base_url(),
        space = SegmentProfilesSimConfig::default().space_id,
    ))
    .expect("resolvers");
    file.resolvers
}

fn email_only(email: &str) -> Value {
    json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [{"type": "EMAIL", "value": email}]
    })
}

fn segment_outcome(record: &Value) -> &Value {
    record["connectors"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["connector_id"] == "segment"))
        .unwrap_or_else(|| panic!("no confirmation from segment: {record:#}"))
}

/// The requests intake published, by request id.
async fn published(pipeline: &Pipeline, ids: &[&str]) -> Vec<PrivacyRequest> {
    let records = pipeline.stack.read_all(
        &pipeline.topics.requests,
        ids.len(),
        Duration::from_secs(10),
    );
    let codec = pipeline.stack.codec();
    let mut requests = Vec::new();
    for record in records {
        let request: PrivacyRequest = codec
            .decode(record.payload.as_deref().unwrap_or_default())
            .await
            .expect("request decodes");
        requests.push(request);
    }
    ids.iter()
        .map(|id| {
            requests
                .iter()
                .find(|r| r.request_id == *id)
                .unwrap_or_else(|| panic!("request {id} was not published"))
                .clone()
        })
        .collect()
}

fn outcomes(request: &PrivacyRequest) -> Vec<(&str, ResolutionOutcome)> {
    request
        .resolution
        .iter()
        .map(|step| (step.resolver.as_str(), step.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn email_only_opt_outs_reach_segment_through_resolution_and_never_wait_for_a_resolver() {
    let schema = customer_table().await;
    std::env::set_var(CUSTOMER_DB_VAR, hush_tests::postgres::cluster_url());
    let segment = SegmentSim::start(SegmentSimConfig::default())
        .await
        .expect("segment simulator");
    std::env::set_var(SEGMENT_TOKEN_VAR, SegmentSimConfig::default().token);
    let profiles_config = SegmentProfilesSimConfig::default();
    std::env::set_var(PROFILES_TOKEN_VAR, &profiles_config.token);
    let profiles = SegmentProfilesSim::start(profiles_config)
        .await
        .expect("profile api simulator");
    profiles.add_profile(&[
        ("email", "jane.doe@example.com"),
        ("user_id", "cust-1001"),
        ("anonymous_id", "anon-jane-1"),
    ]);
    profiles.add_profile(&[("email", "alex.kim@example.com"), ("user_id", "cust-1003")]);
    let pipeline = Pipeline::start(
        "resolution",
        Options {
            extra_recipients: vec![segment_recipient(&segment.base_url())],
            resolvers: resolvers(&schema, &profiles),
            timeout_ms: 5_000,
            ..Options::default()
        },
    )
    .await;

    // Jane: the customer database maps her email to her Segment user id.
    let (status, jane) = pipeline.submit(email_only("Jane.Doe@example.com")).await;
    assert_eq!(status, 202, "{jane}");
    // Nobody: no resolver knows the subject.
    let (status, nobody) = pipeline.submit(email_only("nobody@example.com")).await;
    assert_eq!(status, 202, "{nobody}");
    // The Profile API goes down: Sam is still resolved by the database; Alex, whom only
    // Segment's profiles know, goes on without a user id.
    profiles.control().fail_always(Fault::server_error());
    let (status, sam) = pipeline.submit(email_only("sam.lee@example.com")).await;
    assert_eq!(status, 202, "{sam}");
    let (status, alex) = pipeline.submit(email_only("alex.kim@example.com")).await;
    assert_eq!(status, 202, "{alex}");
    let ids: Vec<&str> = [&jane, &nobody, &sam, &alex]
        .iter()
        .map(|a| a["request_id"].as_str().unwrap())
        .collect();

    let records = [
        pipeline.wait_complete(ids[0]).await,
        pipeline.wait_complete(ids[1]).await,
        pipeline.wait_complete(ids[2]).await,
        pipeline.wait_complete(ids[3]).await,
    ];
    let jane_at_segment = segment_outcome(&records[0]);
    assert_eq!(
        (
            jane_at_segment["action"].as_str(),
            jane_at_segment["verification"].as_str()
        ),
        (Some("SUPPRESSED"), Some("VERIFIED")),
        "{jane_at_segment:#}"
    );
    // The auditor's record shows each step by resolver, outcome and identifier type only.
    let jane_steps = &records[0]["resolution"];
    assert_eq!(jane_steps[0]["resolver"], "customer-db", "{jane_steps:#}");
    assert_eq!(jane_steps[0]["outcome"], "RESOLVED");
    assert_eq!(jane_steps[0]["identifier_types"], json!(["CUSTOMER_ID"]));
    assert!(
        !records[0].to_string().contains("cust-1001"),
        "no resolved value in the auditor's answer"
    );
    let sam_at_segment = segment_outcome(&records[2]);
    assert_eq!(
        (
            sam_at_segment["action"].as_str(),
            sam_at_segment["verification"].as_str()
        ),
        (Some("SUPPRESSED"), Some("VERIFIED")),
        "a resolver that is down does not hold back what the others found: {sam_at_segment:#}"
    );
    for (who, record) in [("nobody", &records[1]), ("alex", &records[3])] {
        let at_segment = segment_outcome(record);
        assert_eq!(at_segment["action"], "NOT_FOUND", "{who}: {at_segment:#}");
        assert!(
            at_segment["evidence"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no CUSTOMER_ID")),
            "{who}: {at_segment:#}"
        );
    }
    let subjects: Vec<String> = segment
        .regulations()
        .into_iter()
        .flat_map(|r| r.subject_ids)
        .collect();
    assert!(subjects.contains(&"cust-1001".to_owned()), "{subjects:?}");
    assert!(subjects.contains(&"cust-1002".to_owned()), "{subjects:?}");
    assert!(
        !subjects.contains(&"cust-1003".to_owned()),
        "Alex's user id was only in the Profile API, which was down: {subjects:?}"
    );

    let requests = published(&pipeline, &ids).await;
    let [jane, nobody, sam, alex] = [&requests[0], &requests[1], &requests[2], &requests[3]];
    assert_eq!(
        outcomes(jane),
        [
            ("customer-db", ResolutionOutcome::Resolved),
            ("segment-profiles", ResolutionOutcome::Resolved)
        ]
    );
    let kinds: Vec<IdentifierType> = jane.identifiers.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            IdentifierType::Email,
            IdentifierType::CustomerId,
            IdentifierType::CookieId
        ]
    );
    assert_eq!(jane.identifiers[1].sha256, sha256_hex("cust-1001"));
    assert!(
        jane.identifiers[1].encrypted_value.is_some(),
        "a customer id is kept raw, encrypted, as intake keeps its own"
    );
    assert_eq!(
        jane.subject_key,
        sha256_hex("jane.doe@example.com"),
        "the subject key is the given identifier's"
    );
    assert_eq!(
        outcomes(nobody),
        [
            ("customer-db", ResolutionOutcome::UnknownSubject),
            ("segment-profiles", ResolutionOutcome::UnknownSubject)
        ]
    );
    assert_eq!(nobody.identifiers.len(), 1);
    assert_eq!(
        outcomes(sam),
        [
            ("customer-db", ResolutionOutcome::Resolved),
            ("segment-profiles", ResolutionOutcome::Skipped)
        ]
    );
    assert_eq!(
        outcomes(alex),
        [
            ("customer-db", ResolutionOutcome::UnknownSubject),
            ("segment-profiles", ResolutionOutcome::Skipped)
        ]
    );
    let skipped = &alex.resolution[1];
    assert_eq!(skipped.attempts, 3);
    assert_eq!(
        skipped.reason.as_deref(),
        Some("unavailable after 3 attempts: HTTP 500")
    );
    for request in &requests {
        let text = format!("{:?}", request.resolution);
        for raw in ["jane.doe", "sam.lee", "alex.kim", "nobody@", "cust-100"] {
            assert!(!text.contains(raw), "provenance names a raw value: {text}");
        }
    }
    pipeline.stop();
}
