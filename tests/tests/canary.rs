//! The canary on the real broker and registry, against the whole pipeline (intake with its
//! signals consumer, state, the auditor, a suppressor per recipient, the gate and its leak
//! watch): a healthy round passes every stage of every channel, then one part at a time is
//! broken — intake down, HubSpot's credentials wrong, the gate stopped, HubSpot answering
//! success without applying the change — and the canary names exactly the stage that failed.
//! The DELETE round creates a fresh HubSpot contact, deletes it and reads it back as gone, and
//! fails at READ_BACK when HubSpot answers the deletion without applying it. A real request
//! made alongside stays untouched, and no canary request is in the 7102 report or in intake's
//! request counter.

use std::time::Duration;

use hush_canary::{Canary, Run, Target};
use hush_contracts::canary::{
    CanaryAttestationKey, CanaryChannel, CanaryIdentity, CanaryOutcome, CanaryResult,
    CanarySection, CanaryStage, CanaryStageStatus, CanarySubject,
};
use hush_contracts::config::SecretRef;
use hush_contracts::events::{AuditRecord, Category, IdentifierType, SuppressionState};
use hush_contracts::gate::{
    GatePolicy, GateSection, GateStream, IdentifierPath, RecordFormat, WatchedEgress,
};
use hush_contracts::identifiers::hash_identifier;
use hush_gate::service::Mode;
use hush_runtime::config::{CommonConfig, RegistryConfig};
use hush_runtime::ops::Readiness;
use hush_tests::auth::{operator_client, test_auth, ISSUER};
use hush_tests::pipeline::{free_addr, Options, Pipeline, HUBSPOT_TOKEN, HUBSPOT_TOKEN_VAR};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The test contact the HubSpot portal holds for the canary.
const CANARY_EMAIL: &str = "canary+crm@hush-canary.example";
/// The canary's customer id, which the partner (webhook) recipient is told about.
const CANARY_CUSTOMER: &str = "hush-canary-customer-1";
/// A consumer whose request runs alongside the canaries.
const REAL_EMAIL: &str = "real.person@example.com";
/// Holds the identity system's key, which signs the canary's re-opt-in attestations.
const IDENTITY_KEY_VAR: &str = "HUSH_IT_CANARY_IDENTITY_KEY";

fn identifier(path: &str, kind: IdentifierType) -> IdentifierPath {
    IdentifierPath {
        path: path.into(),
        kind,
        hashed: false,
    }
}

/// Everything a canary round needs, with the parts the test breaks kept apart: intake (HTTP
/// and signals) and the gate run on their own tokens.
struct Fixture {
    pipeline: Pipeline,
    common: CommonConfig,
    intake_config: hush_intake::service::Config,
    intake_url: String,
    intake: CancellationToken,
    gate_config: hush_gate::service::Config,
    gate: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    canary: CanarySection,
}

impl Fixture {
    async fn start() -> Self {
        let pipeline = Pipeline::start("canary", Options::default()).await;
        pipeline.hubspot.add_contact(CANARY_EMAIL);
        pipeline.hubspot.add_contact(REAL_EMAIL);
        let topics = pipeline.topics.clone();
        let common = CommonConfig {
            kafka: pipeline.stack.kafka.clone(),
            schema_registry: RegistryConfig {
                url: pipeline.stack.registry_url.clone(),
                ..Default::default()
            },
            topics: topics.clone(),
        };
        let stream = GateStream {
            source: format!("{}.conversions", topics.requests),
            destination: format!("{}.conversions.cleared", topics.requests),
            format: RecordFormat::Json,
            categories: vec![Category::Advertising],
            sensitive: false,
            identifiers: vec![
                identifier("user.email", IdentifierType::Email),
                identifier("user.id", IdentifierType::CustomerId),
            ],
            policy: GatePolicy::Drop,
            destination_path: None,
            annotate_field: None,
        };
        let egress = WatchedEgress {
            topic: format!("{}.egress", topics.requests),
            format: RecordFormat::Json,
            categories: vec![Category::Advertising],
            sensitive: false,
            identifiers: vec![
                identifier("user.email", IdentifierType::Email),
                identifier("user.id", IdentifierType::CustomerId),
            ],
            grace_ms: 0,
            destination_path: None,
        };
        pipeline
            .stack
            .create_extra_topics(
                &topics,
                &[
                    stream.source.clone(),
                    stream.destination.clone(),
                    egress.topic.clone(),
                ],
            )
            .await;
        std::env::set_var(IDENTITY_KEY_VAR, test_auth().identity.to_pem());
        let canary = CanarySection {
            subjects: vec![
                CanarySubject {
                    recipient: "hubspot".into(),
                    identifiers: vec![CanaryIdentity {
                        kind: IdentifierType::Email,
                        value: CANARY_EMAIL.into(),
                    }],
                },
                CanarySubject {
                    recipient: "partner-webhook".into(),
                    identifiers: vec![CanaryIdentity {
                        kind: IdentifierType::CustomerId,
                        value: CANARY_CUSTOMER.into(),
                    }],
                },
            ],
            stage_timeout_secs: 20,
            // The partner confirms through its callback, which its simulator sends only when
            // asked: its read-back stays PENDING.
            read_back_optional: vec!["partner-webhook".into()],
            gate_stream: Some(stream.source.clone()),
            leak_topic: Some(egress.topic.clone()),
            gpc_anonymous: true,
            fresh_email_domain: Some("hush-canary.example".into()),
            reopt_in: Some(CanaryAttestationKey {
                key_env: SecretRef(IDENTITY_KEY_VAR.into()),
                kid: "hush-tests-idp".into(),
                issuer: ISSUER.into(),
            }),
            ..CanarySection::default()
        };
        let mut intake_config = hush_intake::service::Config {
            common: common.clone(),
            auth: test_auth().config(),
            canary: canary.clone(),
            ..Default::default()
        };
        intake_config.intake.listen = free_addr();
        intake_config.intake.signals_group_id =
            format!("it-canary-signals-{}", uuid::Uuid::new_v4().simple());
        let gate_config = hush_gate::service::Config {
            common: common.clone(),
            gate: GateSection {
                listen: free_addr(),
                group_id: format!("it-canary-gate-{}", uuid::Uuid::new_v4().simple()),
                instance_id: Some(format!("it-canary-{}", uuid::Uuid::new_v4().simple())),
                transaction_timeout_ms: 10_000,
                max_batch: 50,
                streams: vec![stream],
                watch: vec![egress],
            },
        };
        let mut fixture = Fixture {
            intake_url: format!("http://{}", intake_config.intake.listen),
            pipeline,
            common,
            intake_config,
            intake: CancellationToken::new(),
            gate_config,
            gate: None,
            canary,
        };
        fixture.start_intake().await;
        fixture.start_gate().await;
        fixture
    }

    /// Starts intake (HTTP and the signals consumer) and waits until it is ready.
    async fn start_intake(&mut self) {
        self.intake = CancellationToken::new();
        tokio::spawn(hush_intake::service::run(
            self.intake_config.clone(),
            self.intake.clone(),
        ));
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{}/readyz", self.intake_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "intake not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop_intake(&self) {
        self.intake.cancel();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// Starts the gate (enforcement and leak watch) and waits until it is ready.
    async fn start_gate(&mut self) {
        let stop = CancellationToken::new();
        let readiness = Readiness::default();
        let task = tokio::spawn(hush_gate::service::run(
            self.gate_config.clone(),
            Mode::All,
            readiness.clone(),
            stop.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !readiness.unmet().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gate not ready: {:?}",
                readiness.unmet()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.gate = Some((stop, task));
    }

    async fn stop_gate(&mut self) {
        let (stop, task) = self.gate.take().expect("the gate runs");
        stop.cancel();
        task.await.unwrap().unwrap();
    }

    /// One canary round through `channels`, each stage given `timeout_secs`.
    async fn round(&self, channels: &[CanaryChannel], timeout_secs: u64) -> Run {
        let canary = CanarySection {
            stage_timeout_secs: timeout_secs,
            ..self.canary.clone()
        };
        Canary::new(
            Target {
                intake_url: self.intake_url.clone(),
                auditor_url: self.pipeline.auditor_url.clone(),
                api_key: Some(test_auth().operator.key.clone()),
            },
            &self.common,
            &self.gate_config.gate,
            &canary,
            &self.pipeline.recipients,
        )
        .expect("canary configured")
        .run(channels)
        .await
    }
}

fn stage(result: &CanaryResult, stage: CanaryStage) -> (CanaryStageStatus, String) {
    let found = result
        .stages
        .iter()
        .find(|s| s.stage == stage)
        .expect("every stage is reported");
    (found.status, found.detail.clone().unwrap_or_default())
}

/// The status a stage of a healthy run ends with: SEED is the `DELETE` channel's, skipped by
/// the opt-out channels; GATE, LEAK and REOPT_IN are the opt-out channels', skipped by `DELETE`.
fn healthy_status(channel: CanaryChannel, stage: CanaryStage) -> CanaryStageStatus {
    let skipped = match channel {
        CanaryChannel::Delete => matches!(
            stage,
            CanaryStage::Gate | CanaryStage::Leak | CanaryStage::ReoptIn
        ),
        _ => stage == CanaryStage::Seed,
    };
    if skipped {
        CanaryStageStatus::Skipped
    } else {
        CanaryStageStatus::Passed
    }
}

/// Asserts `result` failed at `failed` and nothing before it did; returns the reason.
fn failed_at(result: &CanaryResult, failed: CanaryStage) -> String {
    assert_eq!(result.outcome, CanaryOutcome::Failed, "{result:#?}");
    assert_eq!(result.failed_stage, Some(failed), "{result:#?}");
    for earlier in CanaryStage::ALL.iter().take_while(|s| **s != failed) {
        assert_eq!(
            stage(result, *earlier).0,
            healthy_status(result.channel, *earlier),
            "{earlier:?} before {failed:?}: {result:#?}"
        );
    }
    for later in CanaryStage::ALL
        .iter()
        .skip_while(|s| **s != failed)
        .skip(1)
    {
        assert_eq!(
            stage(result, *later).0,
            CanaryStageStatus::NotRun,
            "{later:?}: {result:#?}"
        );
    }
    result.failure_reason.clone().unwrap_or_default()
}

/// The value of the sample of `metric` with exactly these labels in Prometheus text, 0 when
/// absent.
fn sample(text: &str, metric: &str, labels: &str) -> f64 {
    let wanted = format!("{metric}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(wanted.as_str()))
        .map_or(0.0, |value| value.trim().parse().expect("a sample value"))
}

async fn intake_metrics(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .expect("intake's /metrics")
        .text()
        .await
        .unwrap()
}

fn passed(result: &CanaryResult) {
    assert_eq!(result.outcome, CanaryOutcome::Passed, "{result:#?}");
    for stage in &result.stages {
        assert_eq!(
            stage.status,
            healthy_status(result.channel, stage.stage),
            "{:?}: {result:#?}",
            stage.stage
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_canary_names_exactly_the_stage_that_broke_and_stays_out_of_the_report() {
    let mut fixture = Fixture::start().await;
    let http = operator_client();

    // A consumer's own opt-out, alongside everything below.
    let (status, accepted) = fixture
        .pipeline
        .submit(json!({"kind": "OPT_OUT_SALE_SHARE", "channel": "WEB_FORM",
                       "identifiers": [{"type": "EMAIL", "value": REAL_EMAIL}],
                       "idempotency_key": format!("real-{}", uuid::Uuid::new_v4())}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let real_id = accepted["request_id"].as_str().unwrap().to_owned();
    fixture.pipeline.wait_complete(&real_id).await;

    // 1. Everything healthy: every stage of every channel passes.
    let healthy = fixture.round(&CanaryChannel::OPT_OUT, 20).await;
    assert_eq!(healthy.unpublished, None);
    assert_eq!(healthy.results.len(), 3);
    for result in &healthy.results {
        passed(result);
    }
    let web_form = &healthy.results[0];
    assert!(
        stage(web_form, CanaryStage::Confirm)
            .1
            .contains("hubspot FLAGGED"),
        "{web_form:#?}"
    );
    assert!(stage(web_form, CanaryStage::ReadBack)
        .1
        .contains("verified: hubspot"));
    assert!(stage(web_form, CanaryStage::Leak)
        .1
        .contains("reported as a leak of this request"));
    let canary_ids: Vec<String> = healthy
        .results
        .iter()
        .map(|r| r.request_id.clone().expect("accepted"))
        .collect();
    for id in &canary_ids {
        let record: Value = http
            .get(format!("{}/v1/requests/{id}", fixture.pipeline.auditor_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            record["status"], "LEAKING",
            "the injected leak is the canary's"
        );
    }

    // 1b. The DELETE round: a fresh HubSpot contact is created, deleted through an attested
    // request and read back as gone; the partner (no API to create a record) is skipped.
    let deleted = fixture.round(&[CanaryChannel::Delete], 20).await;
    let delete = &deleted.results[0];
    passed(delete);
    let fresh = fixture.canary.fresh_email(&deleted.run_id).unwrap();
    let (_, seeded) = stage(delete, CanaryStage::Seed);
    assert!(seeded.contains("created hubspot contact"), "{seeded}");
    assert!(
        seeded.contains("skipped partner-webhook (kind webhook"),
        "{seeded}"
    );
    assert!(
        stage(delete, CanaryStage::ReadBack)
            .1
            .contains("gone at hubspot"),
        "{delete:#?}"
    );
    assert!(
        !fixture.pipeline.hubspot.exists(&fresh),
        "the contact is deleted"
    );
    assert!(!seeded.contains(&fresh), "the email is not in the result");

    // 2. Intake down: no channel gets past SUBMIT.
    fixture.stop_intake().await;
    let down = fixture.round(&CanaryChannel::OPT_OUT, 6).await;
    for result in &down.results {
        let reason = failed_at(result, CanaryStage::Submit);
        match result.channel {
            CanaryChannel::Signals => {
                assert!(reason.contains("did not become a request"), "{reason}")
            }
            _ => assert!(reason.contains("unreachable"), "{reason}"),
        }
    }
    fixture.start_intake().await;
    // The signal published while intake was down is taken up now: let it settle first.
    let late = hush_intake::signals::request_id_for(
        "hush-canary",
        &format!("hush-canary-{}-signals", down.run_id),
    );
    fixture.pipeline.wait_complete(&late).await;

    // 3. HubSpot's credentials wrong: the web form's subject fails at CONFIRM, naming HubSpot;
    // the GPC subject (a browser and an account HubSpot cannot match) is not affected.
    fixture.pipeline.stop_suppressor("hubspot").await;
    std::env::set_var(HUBSPOT_TOKEN_VAR, "pat-na1-revoked-token");
    fixture.pipeline.start_suppressor("hubspot").await;
    let wrong = fixture
        .round(&[CanaryChannel::WebForm, CanaryChannel::Gpc], 20)
        .await;
    let reason = failed_at(&wrong.results[0], CanaryStage::Confirm);
    assert!(
        reason.contains("recipient hubspot failed permanently"),
        "{reason}"
    );
    passed(&wrong.results[1]);
    fixture.pipeline.stop_suppressor("hubspot").await;
    std::env::set_var(HUBSPOT_TOKEN_VAR, HUBSPOT_TOKEN);
    fixture.pipeline.start_suppressor("hubspot").await;

    // 4. The gate stopped: the control event never comes through.
    fixture.stop_gate().await;
    let stopped = fixture.round(&[CanaryChannel::WebForm], 6).await;
    let reason = failed_at(&stopped.results[0], CanaryStage::Gate);
    assert!(
        reason.contains("control event was not forwarded"),
        "{reason}"
    );
    fixture.start_gate().await;

    // 5. HubSpot answers success but applies nothing: only the read-back can tell. (The
    // contact's property is cleared first, as a re-opt-in HubSpot took would have; the test's
    // HubSpot recipient takes no opt-ins.)
    fixture
        .pipeline
        .hubspot
        .set_property(CANARY_EMAIL, "hush_do_not_sell", "false");
    fixture.pipeline.hubspot.drop_writes(true);
    let silent = fixture.round(&[CanaryChannel::WebForm], 20).await;
    let reason = failed_at(&silent.results[0], CanaryStage::ReadBack);
    assert!(reason.contains("not applied at hubspot"), "{reason}");
    fixture.pipeline.hubspot.drop_writes(false);

    // 6. HubSpot answers the deletion (204) but deletes nothing: only the read-back can tell.
    fixture.pipeline.hubspot.drop_deletes(true);
    let kept = fixture.round(&[CanaryChannel::Delete], 20).await;
    let reason = failed_at(&kept.results[0], CanaryStage::ReadBack);
    assert!(reason.contains("record still there at hubspot"), "{reason}");
    let fresh = fixture.canary.fresh_email(&kept.run_id).unwrap();
    assert!(
        fixture.pipeline.hubspot.exists(&fresh),
        "the contact is kept"
    );
    fixture.pipeline.hubspot.drop_deletes(false);

    // The consumer's request is untouched: no leak was attributed to it.
    let real: Value = http
        .get(format!(
            "{}/v1/requests/{real_id}",
            fixture.pipeline.auditor_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(real["leaks"], 0, "{real:#}");
    assert_ne!(real["status"], "LEAKING");

    // The 7102 report counts the consumer's request and no canary.
    let report: Value = http
        .get(format!("{}/v1/report", fixture.pipeline.auditor_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let received = |kind: &str| {
        report["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind)
            .map(|k| k["received"].clone())
    };
    assert_eq!(received("OPT_OUT_SALE_SHARE"), Some(json!(1)), "{report:#}");
    assert_eq!(received("OPT_IN_SALE_SHARE"), Some(json!(0)), "{report:#}");
    assert_eq!(received("DELETE"), Some(json!(0)), "{report:#}");

    // Intake counted the consumer's request alone; the canary's are counted apart.
    let metrics = intake_metrics(&fixture.intake_url).await;
    let received_total = |labels: &str| sample(&metrics, "hush_requests_received_total", labels);
    let canary_total =
        |labels: &str| sample(&metrics, "hush_canary_requests_received_total", labels);
    let web_opt_out = r#"channel="WEB_FORM",kind="OPT_OUT_SALE_SHARE""#;
    let web_delete = r#"channel="WEB_FORM",kind="DELETE""#;
    assert_eq!(received_total(web_opt_out), 1.0, "{metrics}");
    assert_eq!(received_total(web_delete), 0.0, "{metrics}");
    assert!(canary_total(web_opt_out) >= 3.0, "{metrics}");
    assert_eq!(canary_total(web_delete), 2.0, "{metrics}");

    // Stored as synthetic: every canary record on the audit topic, and not the consumer's.
    let stack = &fixture.pipeline.stack;
    let codec = stack.codec();
    let mut synthetic = std::collections::HashMap::new();
    for record in stack.read_all(
        &fixture.common.topics.audit,
        usize::MAX,
        Duration::from_secs(5),
    ) {
        let audit: AuditRecord = codec
            .decode(record.payload.as_deref().unwrap_or_default())
            .await
            .unwrap();
        synthetic.insert(audit.request_id, audit.synthetic);
    }
    let delete_ids = [&deleted, &kept].map(|run| run.results[0].request_id.clone().unwrap());
    for id in canary_ids.iter().chain(&delete_ids) {
        assert_eq!(synthetic.get(id), Some(&true), "canary request {id}");
    }
    assert_eq!(synthetic.get(&real_id), Some(&false));

    // The state service marked the canary's suppression states synthetic (left out of counts,
    // still enforced: the GATE stages above passed), and the consumer's not.
    let mut states = std::collections::HashMap::new();
    for record in stack.read_all(
        &fixture.common.topics.suppressions,
        usize::MAX,
        Duration::from_secs(5),
    ) {
        let state: SuppressionState = codec
            .decode(record.payload.as_deref().unwrap_or_default())
            .await
            .unwrap();
        states.insert(state.identifier_hash.clone(), state);
    }
    let state_of = |kind: IdentifierType, value: &str| {
        states
            .get(&hash_identifier(kind, value).unwrap())
            .unwrap_or_else(|| panic!("a state for {kind:?}"))
    };
    let real_state = state_of(IdentifierType::Email, REAL_EMAIL);
    assert!(real_state.sale_share_opted_out && !real_state.synthetic);
    let deleted_state = state_of(
        IdentifierType::Email,
        &fixture.canary.fresh_email(&deleted.run_id).unwrap(),
    );
    assert!(deleted_state.deleted && deleted_state.synthetic);
    assert!(state_of(IdentifierType::CustomerId, CANARY_CUSTOMER).synthetic);

    // One result per channel run on the canaries topic.
    let runs = healthy.results.len()
        + down.results.len()
        + wrong.results.len()
        + stopped.results.len()
        + silent.results.len()
        + deleted.results.len()
        + kept.results.len();
    let published = stack.read_all(
        &fixture.common.topics.canaries,
        runs,
        Duration::from_secs(20),
    );
    assert_eq!(published.len(), runs);
    let mut decoded = Vec::new();
    for record in &published {
        let result: CanaryResult = codec
            .decode(record.payload.as_deref().unwrap_or_default())
            .await
            .unwrap();
        assert_eq!(
            record.key.as_deref(),
            Some(result.channel.as_str().as_bytes()),
            "keyed by channel"
        );
        decoded.push(result);
    }
    for result in healthy.results.iter().chain(&deleted.results) {
        assert!(decoded.contains(result), "{result:#?} was published");
    }

    fixture.stop_gate().await;
    fixture.intake.cancel();
}
