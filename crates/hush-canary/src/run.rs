//! A canary run: for each opt-out channel, a synthetic subject's opt-out submitted the way a
//! consumer's would be and followed through intake, the auditor, every recipient's
//! confirmation and read-back, the gate and the leak watch, then lifted by a re-opt-in; for the
//! `DELETE` channel, a record created fresh at each recipient that allows it, deleted through
//! an attested request and read back as gone. Each channel's [`CanaryResult`] is published on
//! `hush.canaries.v1`.

use std::time::Duration;

use hush_auth::attestation::AttestationClaims;
use hush_auth::keys::SigningKey;
use hush_contracts::canary::{
    CanaryChannel, CanaryResult, CanarySection, CanaryStage, CanaryStageStatus,
};
use hush_contracts::events::{now_millis, Category, PrivacyRequest};
use hush_contracts::gate::{
    suppression_applies, GateSection, GateStream, RecordFormat, WatchedEgress,
};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, KafkaConfig, TopicsConfig};
use hush_runtime::kafka::EventProducer;
use rdkafka::message::OwnedHeaders;
use serde_json::Value;
use tokio::time::Instant;

use crate::seed;
use crate::subject::{control_value, event_id_of, outbound_event, EventRole, Subject};
use crate::tail::Tail;
use crate::timeline::Timeline;
use crate::verdict::{self, Forwarded, RecordView, Verdict};

/// How often the auditor is asked again while a stage waits.
const POLL: Duration = Duration::from_millis(250);
/// How long the gate's destination is still read after the control event arrived, for a
/// forwarded subject event on another partition.
const SETTLE: Duration = Duration::from_secs(1);
/// Validity of the re-opt-in's attestation.
const ATTESTATION_TTL_SECS: i64 = 600;

/// Why a run could not be made (as opposed to a stage that failed, which its result says).
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    /// The `[canary]`, `[gate]` or `[[recipients]]` blocks do not allow a run.
    #[error("canary configuration: {0}")]
    Config(String),
    /// A Kafka client could not be made or a topic read.
    #[error("kafka: {0}")]
    Kafka(String),
}

/// Where the canary submits and reads.
#[derive(Debug, Clone)]
pub struct Target {
    /// Intake's base URL.
    pub intake_url: String,
    /// The auditor's base URL.
    pub auditor_url: String,
    /// API key with `requests:opt_out`, `requests:opt_in` and `auditor:read`.
    pub api_key: Option<String>,
}

/// The results of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's id.
    pub run_id: String,
    /// One result per channel, in order.
    pub results: Vec<CanaryResult>,
    /// Why results could not be published on the canaries topic, when they could not.
    pub unpublished: Option<String>,
}

/// A configured canary, ready to run.
pub struct Canary {
    target: Target,
    kafka: KafkaConfig,
    topics: TopicsConfig,
    section: CanarySection,
    recipients: Vec<RecipientConfig>,
    stream: Option<GateStream>,
    watch: Option<WatchedEgress>,
    signing: Option<(SigningKey, String)>,
    http: reqwest::Client,
    anonymous: reqwest::Client,
    producer: EventProducer,
    timeout: Duration,
}

/// What one stage concluded, or why it did not apply.
enum Stage {
    Concluded(Verdict),
    Skipped(String),
}

impl Canary {
    /// Checks the configuration (the `[canary]` block, the gate stream and watched topic it
    /// names, the recipients its subjects are at, the re-opt-in key's variable) and builds the
    /// clients. Errors name the setting at fault.
    pub fn new(
        target: Target,
        common: &CommonConfig,
        gate: &GateSection,
        section: &CanarySection,
        recipients: &[RecipientConfig],
    ) -> Result<Self, CanaryError> {
        let config = |e: &dyn std::fmt::Display| CanaryError::Config(e.to_string());
        section.validate().map_err(|e| config(&e))?;
        section
            .validate_recipients(recipients)
            .map_err(|e| config(&e))?;
        let needs_subjects = section
            .channels
            .iter()
            .any(|c| !matches!(c, CanaryChannel::Gpc | CanaryChannel::Delete));
        if needs_subjects && section.identities().is_empty() {
            return Err(CanaryError::Config(
                "no [[canary.subjects]]: the web form and signal channels opt out the configured \
                 synthetic identities (a test contact in each recipient)"
                    .into(),
            ));
        }
        let stream = match &section.gate_stream {
            Some(source) => Some(
                gate.streams
                    .iter()
                    .find(|s| &s.source == source)
                    .cloned()
                    .ok_or_else(|| {
                        CanaryError::Config(format!(
                            "canary.gate_stream = \"{source}\" is not a [[gate.streams]] source"
                        ))
                    })?,
            ),
            None => None,
        };
        let watch = match &section.leak_topic {
            Some(topic) => Some(
                gate.watch
                    .iter()
                    .find(|w| &w.topic == topic)
                    .cloned()
                    .ok_or_else(|| {
                        CanaryError::Config(format!(
                            "canary.leak_topic = \"{topic}\" is not a [[gate.watch]] topic"
                        ))
                    })?,
            ),
            None => None,
        };
        let signing = match &section.reopt_in {
            Some(key) => {
                let pem = key
                    .key_env
                    .resolve("canary.reopt_in.key_env")
                    .map_err(|e| config(&e))?;
                let signer = SigningKey::from_pem(&key.kid, &pem)
                    .map_err(|e| CanaryError::Config(format!("canary.reopt_in.key_env: {e}")))?;
                Some((signer, key.issuer.clone()))
            }
            None => None,
        };
        let codec = AvroCodec::from_config(&common.schema_registry).map_err(|e| config(&e))?;
        let producer = EventProducer::new(&common.kafka, codec, "hush-canary")
            .map_err(|e| CanaryError::Kafka(e.to_string()))?;
        Ok(Self {
            http: http_client(target.api_key.as_deref())?,
            anonymous: http_client(None)?,
            target,
            kafka: common.kafka.clone(),
            topics: common.topics.clone(),
            section: section.clone(),
            recipients: recipients.to_vec(),
            stream,
            watch,
            signing,
            producer,
            timeout: Duration::from_secs(section.stage_timeout_secs),
        })
    }

    /// Runs every channel in `channels` (the configured ones when empty) in turn and publishes
    /// each result on the canaries topic.
    pub async fn run(&self, channels: &[CanaryChannel]) -> Run {
        let run_id = uuid::Uuid::new_v4().to_string();
        let channels = if channels.is_empty() {
            &self.section.channels
        } else {
            channels
        };
        let mut results = Vec::new();
        let mut unpublished = None;
        for channel in channels {
            let result = self.run_channel(&run_id, *channel).await;
            for stage in &result.stages {
                tracing::info!(
                    run_id = %run_id,
                    channel = channel.as_str(),
                    stage = stage.stage.as_str(),
                    status = stage.status.as_str(),
                    duration_ms = stage.duration_ms,
                    detail = stage.detail.as_deref().unwrap_or_default(),
                    "canary stage"
                );
            }
            if let Err(error) = self
                .producer
                .send(&self.topics.canaries, channel.as_str(), &result)
                .await
            {
                unpublished = Some(error.to_string());
            }
            results.push(result);
        }
        Run {
            run_id,
            results,
            unpublished,
        }
    }

    async fn run_channel(&self, run_id: &str, channel: CanaryChannel) -> CanaryResult {
        if channel == CanaryChannel::Delete {
            return self.run_delete(run_id).await;
        }
        let mut timeline = Timeline::start(run_id, channel);
        timeline.skip(
            CanaryStage::Seed,
            "an opt-out uses the configured synthetic subjects",
        );
        let subject = Subject::for_channel(&self.section, channel, run_id);
        let key = format!("hush-canary-{run_id}-{}", channel.as_str().to_lowercase());
        timeline.begin(CanaryStage::Submit);
        let request_id = match self.submit(channel, &subject, &key).await {
            Ok((request_id, detail)) => {
                timeline.end(CanaryStageStatus::Passed, detail);
                timeline.set_request(&request_id);
                request_id
            }
            Err(reason) => {
                timeline.end(CanaryStageStatus::Failed, reason);
                return timeline.finish();
            }
        };
        let submitted = Instant::now();
        let optional = self.section.read_back_optional.clone();
        let followed = self
            .follow_through(&mut timeline, &request_id, |r| {
                verdict::read_back(r, &optional)
            })
            .await;
        if !followed {
            return self.clean_up(timeline, &subject, &key).await;
        }
        timeline.begin(CanaryStage::Gate);
        let gate = self.gate(run_id, &subject).await;
        if !conclude(&mut timeline, gate) {
            return self.clean_up(timeline, &subject, &key).await;
        }
        timeline.begin(CanaryStage::Leak);
        let leak = self.leak(run_id, &request_id, &subject, submitted).await;
        if !conclude(&mut timeline, leak) {
            return self.clean_up(timeline, &subject, &key).await;
        }
        timeline.begin(CanaryStage::ReoptIn);
        let reopt_in = match self.opt_in(&subject, &key).await {
            Ok(Some(opt_in_id)) => {
                Stage::Concluded(match self.follow(&opt_in_id, verdict::confirmed).await {
                    Verdict::Passed(detail) => {
                        Verdict::Passed(format!("opt-in {opt_in_id} applied: {detail}"))
                    }
                    other => other,
                })
            }
            Ok(None) => Stage::Skipped(
                "no [canary.reopt_in] key configured: the subject stays opted out".into(),
            ),
            Err(reason) => Stage::Concluded(Verdict::Failed(reason)),
        };
        conclude(&mut timeline, reopt_in);
        timeline.finish()
    }

    /// RECORD, CONFIRM and READ_BACK of `request_id`, READ_BACK judged by `read_back`; whether
    /// all three passed.
    async fn follow_through(
        &self,
        timeline: &mut Timeline,
        request_id: &str,
        read_back: impl Fn(&RecordView) -> Verdict,
    ) -> bool {
        timeline.begin(CanaryStage::Record);
        let recorded = self
            .follow(request_id, |_| {
                Verdict::Passed("the auditor opened the request's record".into())
            })
            .await;
        if !conclude(timeline, Stage::Concluded(recorded)) {
            return false;
        }
        timeline.begin(CanaryStage::Confirm);
        let confirmed = self.follow(request_id, verdict::confirmed).await;
        if !conclude(timeline, Stage::Concluded(confirmed)) {
            return false;
        }
        timeline.begin(CanaryStage::ReadBack);
        let read = self.follow(request_id, read_back).await;
        conclude(timeline, Stage::Concluded(read))
    }

    /// The `DELETE` channel: SEED creates a record for a fresh synthetic email at every
    /// recipient that takes deletions and has a seeder, SUBMIT sends the attested deletion,
    /// and READ_BACK passes only when each created record was deleted and read back as gone.
    /// GATE, LEAK and REOPT_IN are the opt-out channels' and are skipped.
    async fn run_delete(&self, run_id: &str) -> CanaryResult {
        let mut timeline = Timeline::start(run_id, CanaryChannel::Delete);
        timeline.begin(CanaryStage::Seed);
        let subject = Subject::for_channel(&self.section, CanaryChannel::Delete, run_id);
        let ready = self.section.delete_prerequisites().and_then(|()| {
            subject
                .identities
                .first()
                .map(|identity| identity.value.clone())
                .ok_or_else(|| "no fresh email for the run".to_owned())
        });
        let email = match ready {
            Ok(email) => email,
            Err(why) => {
                timeline.end(
                    CanaryStageStatus::Failed,
                    format!("the DELETE round cannot run: {why}"),
                );
                return timeline.finish();
            }
        };
        let seeded = match seed::seed_all(&self.recipients, &email).await {
            Ok(seeded) => seeded,
            Err(error) => {
                timeline.end(
                    CanaryStageStatus::Failed,
                    format!("no fresh record could be created at {error}"),
                );
                return timeline.finish();
            }
        };
        let created = seed::created_at(&seeded);
        if created.is_empty() {
            timeline.end(
                CanaryStageStatus::Skipped,
                format!(
                    "no recipient that takes deletions lets the canary create a record: {}",
                    seed::describe(&seeded)
                ),
            );
            for stage in CanaryStage::ALL.into_iter().skip(1) {
                timeline.skip(stage, "no fresh record was created to delete");
            }
            return timeline.finish();
        }
        timeline.end(CanaryStageStatus::Passed, seed::describe(&seeded));
        let key = format!("hush-canary-{run_id}-delete");
        timeline.begin(CanaryStage::Submit);
        let request_id = match self.submit(CanaryChannel::Delete, &subject, &key).await {
            Ok((request_id, detail)) => {
                timeline.end(CanaryStageStatus::Passed, detail);
                timeline.set_request(&request_id);
                request_id
            }
            Err(reason) => {
                timeline.end(CanaryStageStatus::Failed, reason);
                return timeline.finish();
            }
        };
        let optional = self.section.read_back_optional.clone();
        let followed = self
            .follow_through(&mut timeline, &request_id, |r| {
                verdict::records_gone(r, &created, &optional)
            })
            .await;
        if followed {
            for stage in [CanaryStage::Gate, CanaryStage::Leak] {
                timeline.skip(
                    stage,
                    "the opt-out channels check the gate and the leak watch",
                );
            }
            timeline.skip(
                CanaryStage::ReoptIn,
                "a deleted record is not restored; each DELETE round creates its own",
            );
        }
        timeline.finish()
    }

    /// SUBMIT of the `DELETE` channel: the deletion of `subject`, attested by the canary's
    /// identity-system key; the request id.
    async fn submit_delete(&self, subject: &Subject, key: &str) -> Result<String, String> {
        let attestation = self
            .attest(subject)?
            .ok_or("no [canary.reopt_in] key to attest the deletion")?;
        let url = format!("{}/v1/requests", self.target.intake_url);
        let body = subject.delete_body(&self.section.jurisdiction, key, &attestation);
        let answer = self.post(&self.http, &url, &body, None).await?;
        accepted(&answer, "the DELETE").map(|(id, _)| id)
    }

    /// An attestation that the identity system verified `subject`'s first identity, signed
    /// with the `[canary.reopt_in]` key; `None` when no key is configured.
    fn attest(&self, subject: &Subject) -> Result<Option<String>, String> {
        let Some((signer, issuer)) = &self.signing else {
            return Ok(None);
        };
        let now = chrono::Utc::now().timestamp();
        Ok(Some(signer.sign(&AttestationClaims {
            iss: issuer.clone(),
            aud: None,
            exp: now + ATTESTATION_TTL_SECS,
            iat: now,
            identifier_sha256: subject.attested_hash().map_err(|e| e.to_string())?,
            method: "HUSH_CANARY".into(),
            verified_at: now,
        })))
    }

    /// After a failed stage: the subject still opts back in (not followed), so the next run
    /// starts clean.
    async fn clean_up(&self, mut timeline: Timeline, subject: &Subject, key: &str) -> CanaryResult {
        timeline.begin(CanaryStage::ReoptIn);
        let detail = match self.opt_in(subject, key).await {
            Ok(Some(id)) => {
                format!("not followed after the failure; cleanup opt-in {id} submitted")
            }
            Ok(None) => "not run after the failure".into(),
            Err(reason) => {
                format!("not followed after the failure; cleanup opt-in refused: {reason}")
            }
        };
        timeline.end(CanaryStageStatus::NotRun, detail);
        timeline.finish()
    }

    /// SUBMIT: the opt-out through `channel` (the deletion, for `DELETE`); the request id and
    /// what intake said.
    async fn submit(
        &self,
        channel: CanaryChannel,
        subject: &Subject,
        key: &str,
    ) -> Result<(String, String), String> {
        let jurisdiction = &self.section.jurisdiction;
        match channel {
            CanaryChannel::WebForm => {
                let url = format!("{}/v1/requests", self.target.intake_url);
                let body = subject.opt_out_body(jurisdiction, key);
                let answer = self.post(&self.http, &url, &body, None).await?;
                accepted(&answer, "POST /v1/requests")
            }
            CanaryChannel::Gpc => {
                let url = format!("{}/v1/gpc", self.target.intake_url);
                let client = if self.section.gpc_anonymous {
                    &self.anonymous
                } else {
                    &self.http
                };
                let body = subject.gpc_body(jurisdiction);
                let answer = self
                    .post(client, &url, &body, Some(("Sec-GPC", "1")))
                    .await?;
                if answer.get("honored") != Some(&Value::Bool(true)) {
                    return Err(format!("intake did not honour the GPC signal: {answer}"));
                }
                accepted(&answer, "POST /v1/gpc with Sec-GPC: 1")
            }
            CanaryChannel::Signals => self.signal(subject, key).await,
            CanaryChannel::Delete => self.submit_delete(subject, key).await.map(|id| {
                (
                    id,
                    "the attested DELETE was accepted by POST /v1/requests".into(),
                )
            }),
        }
    }

    /// SUBMIT through `hush.signals.v1`: publishes the signal and waits for intake's request on
    /// the requests topic.
    async fn signal(&self, subject: &Subject, key: &str) -> Result<(String, String), String> {
        let tail = Tail::open(&self.kafka, &self.topics.requests, false)
            .await
            .map_err(|e| e.to_string())?;
        let source = &self.section.signal_source;
        let signal = subject.signal(source, key, &self.section.jurisdiction, now_millis());
        self.producer
            .send(&self.topics.signals, key, &signal)
            .await
            .map_err(|e| format!("the signal could not be published: {e}"))?;
        let wanted = format!("{source}:{key}");
        let deadline = Instant::now() + self.timeout;
        let codec = self.producer.codec();
        while let Some(message) = tail.next(deadline).await {
            let Ok(request) = codec
                .decode::<PrivacyRequest>(message.payload.as_deref().unwrap_or_default())
                .await
            else {
                continue;
            };
            if request.idempotency_key.as_deref() == Some(wanted.as_str()) {
                return Ok((
                    request.request_id,
                    format!(
                        "signal published to {}; intake published the request to {}",
                        self.topics.signals, self.topics.requests
                    ),
                ));
            }
        }
        Err(format!(
            "the signal published to {} did not become a request on {} within {} s (is \
             intake's signals consumer running? a signal intake refused is on {})",
            self.topics.signals,
            self.topics.requests,
            self.timeout.as_secs(),
            self.topics.dlq
        ))
    }

    /// Posts `body` as JSON; the answer's JSON, or why there is none.
    async fn post(
        &self,
        client: &reqwest::Client,
        url: &str,
        body: &Value,
        header: Option<(&str, &str)>,
    ) -> Result<Value, String> {
        let mut request = client.post(url).json(body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "intake at {} unreachable: {}",
                self.target.intake_url,
                e.without_url()
            )
        })?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer)
        } else {
            Err(format!(
                "intake answered HTTP {}: {} {}",
                status.as_u16(),
                answer["error"].as_str().unwrap_or("(no error code)"),
                answer["message"].as_str().unwrap_or_default()
            ))
        }
    }

    /// Polls the auditor's record of `request_id` until `check` concludes or the stage times
    /// out; a refusal of the canary's credentials fails at once.
    async fn follow(&self, request_id: &str, check: impl Fn(&RecordView) -> Verdict) -> Verdict {
        let deadline = Instant::now() + self.timeout;
        let url = format!("{}/v1/requests/{request_id}", self.target.auditor_url);
        let mut last;
        loop {
            match self.http.get(&url).send().await {
                Err(error) => {
                    last = format!(
                        "the auditor at {} is unreachable: {}",
                        self.target.auditor_url,
                        error.without_url()
                    );
                }
                Ok(response) if response.status().as_u16() == 404 => {
                    last = format!("the auditor has no record of request {request_id}");
                }
                Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                    return Verdict::Failed(format!(
                        "the auditor refused the canary's credentials (HTTP {}): give its API \
                         key auditor:read",
                        response.status().as_u16()
                    ));
                }
                Ok(response) if !response.status().is_success() => {
                    last = format!("the auditor answered HTTP {}", response.status().as_u16());
                }
                Ok(response) => match response.json::<RecordView>().await {
                    Ok(record) => match check(&record) {
                        Verdict::Waiting(waiting) => last = waiting,
                        done => return done,
                    },
                    Err(error) => {
                        last = format!(
                            "the auditor's record did not parse: {}",
                            error.without_url()
                        )
                    }
                },
            }
            if Instant::now() >= deadline {
                return Verdict::Failed(format!("{last} after {} s", self.timeout.as_secs()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// GATE: an event about the subject and a control event on the configured stream's source;
    /// the control must reach the destination and the subject's event must be treated as the
    /// stream's policy says.
    async fn gate(&self, run_id: &str, subject: &Subject) -> Stage {
        let Some(stream) = &self.stream else {
            return Stage::Skipped("no canary.gate_stream configured".into());
        };
        if stream.format == RecordFormat::Avro {
            return Stage::Skipped(format!(
                "stream {} is Avro; the canary writes JSON events",
                stream.source
            ));
        }
        if !opt_out_applies(&stream.categories, stream.sensitive) {
            return Stage::Skipped(format!(
                "an opt-out of sale and sharing does not apply to stream {} (its categories)",
                stream.source
            ));
        }
        let Some((path, identity)) = subject.locate(&stream.identifiers) else {
            return Stage::Skipped(format!(
                "stream {} locates none of this channel's identifier kinds",
                stream.source
            ));
        };
        let Some(control) = control_value(path.kind, &self.section, run_id) else {
            return Stage::Skipped(format!(
                "stream {} locates only phones, and no phone number is certainly nobody's",
                stream.source
            ));
        };
        let events =
            outbound_event(run_id, EventRole::Subject, path, &identity.value).and_then(|subject| {
                outbound_event(run_id, EventRole::Control, path, &control)
                    .map(|control| (subject, control))
            });
        let ((subject_id, subject_event), (control_id, control_event)) = match events {
            Ok(events) => events,
            Err(error) => return Stage::Concluded(Verdict::Failed(error.to_string())),
        };
        let tail = match Tail::open(&self.kafka, &stream.destination, true).await {
            Ok(tail) => tail,
            Err(error) => return Stage::Concluded(Verdict::Failed(error.to_string())),
        };
        // One key: both go to one partition, so the gate decides the subject's event first.
        let key = format!("hush-canary-{run_id}");
        for event in [&subject_event, &control_event] {
            let payload = serde_json::to_vec(event).expect("JSON serialises");
            if let Err(error) = self
                .producer
                .send_bytes(
                    &stream.source,
                    Some(key.as_bytes()),
                    &payload,
                    OwnedHeaders::new(),
                )
                .await
            {
                return Stage::Concluded(Verdict::Failed(format!(
                    "the outbound events could not be written to {}: {error}",
                    stream.source
                )));
            }
        }
        let mut deadline = Instant::now() + self.timeout;
        let (mut control_seen, mut subject_forwarded) = (false, None);
        while let Some(message) = tail.next(deadline).await {
            let Ok(value) =
                serde_json::from_slice::<Value>(message.payload.as_deref().unwrap_or_default())
            else {
                continue;
            };
            match event_id_of(&value) {
                Some(id) if id == subject_id => {
                    subject_forwarded = Some(Forwarded {
                        value,
                        headers: message
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                            .collect(),
                    });
                }
                Some(id) if id == control_id && !control_seen => {
                    control_seen = true;
                    deadline = Instant::now() + SETTLE;
                }
                _ => {}
            }
        }
        if !control_seen {
            return Stage::Concluded(Verdict::Failed(format!(
                "the control event was not forwarded from {} to {} within {} s: the gate is not \
                 running or not keeping up",
                stream.source,
                stream.destination,
                self.timeout.as_secs()
            )));
        }
        Stage::Concluded(verdict::gate_enforced(stream, subject_forwarded.as_ref()))
    }

    /// LEAK: an event about the subject written straight to the watched egress topic must come
    /// back as a leak of the canary's request.
    async fn leak(
        &self,
        run_id: &str,
        request_id: &str,
        subject: &Subject,
        submitted: Instant,
    ) -> Stage {
        let Some(watch) = &self.watch else {
            return Stage::Skipped("no canary.leak_topic configured".into());
        };
        if watch.format == RecordFormat::Avro {
            return Stage::Skipped(format!(
                "topic {} is Avro; the canary writes JSON events",
                watch.topic
            ));
        }
        if !opt_out_applies(&watch.categories, watch.sensitive) {
            return Stage::Skipped(format!(
                "an opt-out of sale and sharing does not apply to topic {} (its categories)",
                watch.topic
            ));
        }
        let Some((path, identity)) = subject.locate(&watch.identifiers) else {
            return Stage::Skipped(format!(
                "topic {} locates none of this channel's identifier kinds",
                watch.topic
            ));
        };
        // An event inside the topic's grace period is not a leak: write after it.
        let grace = Duration::from_millis(u64::try_from(watch.grace_ms).unwrap_or(0));
        if grace > self.timeout {
            return Stage::Skipped(format!(
                "topic {}'s grace_ms is longer than the stage timeout",
                watch.topic
            ));
        }
        tokio::time::sleep_until(submitted + grace + Duration::from_millis(10)).await;
        let event = match outbound_event(run_id, EventRole::Subject, path, &identity.value) {
            Ok((_, event)) => serde_json::to_vec(&event).expect("JSON serialises"),
            Err(error) => return Stage::Concluded(Verdict::Failed(error.to_string())),
        };
        let delivered = match self
            .producer
            .send_bytes(&watch.topic, None, &event, OwnedHeaders::new())
            .await
        {
            Ok(delivered) => delivered,
            Err(error) => {
                return Stage::Concluded(Verdict::Failed(format!(
                    "the synthetic egress event could not be written to {}: {error}",
                    watch.topic
                )))
            }
        };
        let (topic, partition, offset) = (&watch.topic, delivered.partition, delivered.offset);
        Stage::Concluded(
            self.follow(request_id, |r| {
                verdict::leak_reported(r, topic, partition, offset)
            })
            .await,
        )
    }

    /// Submits the consumer-initiated opt-in that lifts the subject's opt-out; `None` when no
    /// key is configured to attest it.
    async fn opt_in(&self, subject: &Subject, key: &str) -> Result<Option<String>, String> {
        let Some(attestation) = self.attest(subject)? else {
            return Ok(None);
        };
        let url = format!("{}/v1/requests", self.target.intake_url);
        let body = subject.opt_in_body(
            &self.section.jurisdiction,
            &format!("{key}-opt-in"),
            &attestation,
        );
        let answer = self.post(&self.http, &url, &body, None).await?;
        accepted(&answer, "the opt-in").map(|(id, _)| Some(id))
    }
}

/// Whether an opt-out of sale and sharing applies to a stream of these categories.
fn opt_out_applies(categories: &[Category], sensitive: bool) -> bool {
    suppression_applies(categories, sensitive, false, true, false)
}

/// The request id of an accepted answer.
fn accepted(answer: &Value, what: &str) -> Result<(String, String), String> {
    answer["request_id"]
        .as_str()
        .map(|id| (id.to_owned(), format!("{what} accepted")))
        .ok_or_else(|| format!("{what} answered without a request_id: {answer}"))
}

/// Records the stage begun last; whether the run goes on.
fn conclude(timeline: &mut Timeline, stage: Stage) -> bool {
    match stage {
        Stage::Skipped(why) => {
            timeline.end(CanaryStageStatus::Skipped, why);
            true
        }
        Stage::Concluded(Verdict::Passed(detail)) => {
            timeline.end(CanaryStageStatus::Passed, detail);
            true
        }
        Stage::Concluded(Verdict::Failed(reason) | Verdict::Waiting(reason)) => {
            timeline.end(CanaryStageStatus::Failed, reason);
            false
        }
    }
}

/// An HTTP client sending `api_key` as a bearer token, when one is given.
fn http_client(api_key: Option<&str>) -> Result<reqwest::Client, CanaryError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = api_key {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| CanaryError::Config("the API key is not a valid header value".into()))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CanaryError::Config(format!("HTTP client: {}", e.without_url())))
}
