//! Canaries: Hush testing itself end to end the way a regulator would, with synthetic subjects.
//!
//! - [`CanaryResult`]: the event one canary run writes per channel on `hush.canaries.v1`.
//! - [`CanarySection`]: the `[canary]` block of the configuration file: the synthetic
//!   identities per recipient, and how a run behaves.
//! - [`SyntheticIdentities`]: which identifiers are synthetic. Intake records a request that
//!   names only synthetic identifiers with `source_system` [`CANARY_SOURCE_SYSTEM`]; the auditor
//!   marks its record `synthetic` and leaves it out of the 11 CCR 7102 report and of its counts.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, SecretRef};
use crate::events::{AvroEvent, EpochMillis, IdentifierType};
use crate::identifiers::{hash_identifier, is_sha256_hex, normalise, sha256_hex};
use crate::recipients::RecipientConfig;

/// `source_system` of a request that names only synthetic identifiers: the canary captured it.
pub const CANARY_SOURCE_SYSTEM: &str = "hush-canary";

/// Shortest accepted [`CanarySection::fresh_id_prefix`]: a short prefix could match a real
/// visitor's id and hide a real request from the report.
pub const MIN_FRESH_ID_PREFIX_LEN: usize = 8;

/// The way in a canary's opt-out takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CanaryChannel {
    /// `POST /v1/requests`, as the web form sends it.
    WebForm,
    /// `POST /v1/gpc` with `Sec-GPC: 1`, as a browser's Global Privacy Control signal.
    Gpc,
    /// A `PrivacySignal` on `hush.signals.v1`, as an upstream system publishes it.
    Signals,
    /// A verified (attested) `DELETE` through `POST /v1/requests` for a record the run created
    /// at each recipient that lets it, followed until the record is read back as gone.
    Delete,
}

impl CanaryChannel {
    /// Every channel, in the order a run takes them.
    pub const ALL: [CanaryChannel; 4] = [
        CanaryChannel::WebForm,
        CanaryChannel::Gpc,
        CanaryChannel::Signals,
        CanaryChannel::Delete,
    ];

    /// The opt-out channels: what a run exercises unless `[canary] channels` says otherwise.
    pub const OPT_OUT: [CanaryChannel; 3] = [
        CanaryChannel::WebForm,
        CanaryChannel::Gpc,
        CanaryChannel::Signals,
    ];

    /// The schema symbol, e.g. `WEB_FORM`.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryChannel::WebForm => "WEB_FORM",
            CanaryChannel::Gpc => "GPC",
            CanaryChannel::Signals => "SIGNALS",
            CanaryChannel::Delete => "DELETE",
        }
    }
}

/// What a stage of a canary run checks, in the order a run takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CanaryStage {
    /// A fresh synthetic record was created at every recipient that lets the canary create one
    /// (the `DELETE` channel; the opt-out channels use the configured subjects and skip it).
    Seed,
    /// Intake accepted the request and published it.
    Submit,
    /// The auditor opened the request's record.
    Record,
    /// Every required recipient confirmed.
    Confirm,
    /// Every readable recipient was read back as applied.
    ReadBack,
    /// The gate dropped an outbound event about the subject and forwarded a control event.
    Gate,
    /// An event about the subject injected into observed egress was reported as a leak of the
    /// canary's request.
    Leak,
    /// The subject opted back in, so the next run starts clean.
    ReoptIn,
}

impl CanaryStage {
    /// Every stage, in order.
    pub const ALL: [CanaryStage; 8] = [
        CanaryStage::Seed,
        CanaryStage::Submit,
        CanaryStage::Record,
        CanaryStage::Confirm,
        CanaryStage::ReadBack,
        CanaryStage::Gate,
        CanaryStage::Leak,
        CanaryStage::ReoptIn,
    ];

    /// The schema symbol, e.g. `READ_BACK`.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryStage::Seed => "SEED",
            CanaryStage::Submit => "SUBMIT",
            CanaryStage::Record => "RECORD",
            CanaryStage::Confirm => "CONFIRM",
            CanaryStage::ReadBack => "READ_BACK",
            CanaryStage::Gate => "GATE",
            CanaryStage::Leak => "LEAK",
            CanaryStage::ReoptIn => "REOPT_IN",
        }
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CanaryStageStatus {
    /// The stage saw what it expected.
    Passed,
    /// It did not (the detail says what it saw).
    Failed,
    /// Not configured (the detail says why).
    Skipped,
    /// An earlier stage failed.
    NotRun,
}

impl CanaryStageStatus {
    /// The schema symbol, e.g. `NOT_RUN`.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryStageStatus::Passed => "PASSED",
            CanaryStageStatus::Failed => "FAILED",
            CanaryStageStatus::Skipped => "SKIPPED",
            CanaryStageStatus::NotRun => "NOT_RUN",
        }
    }
}

/// Whether a canary run passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CanaryOutcome {
    /// No stage failed.
    Passed,
    /// A stage failed.
    Failed,
}

/// One stage of a canary run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStageResult {
    /// What the stage checks.
    pub stage: CanaryStage,
    /// How it ended.
    pub status: CanaryStageStatus,
    /// When it started.
    pub started_at: EpochMillis,
    /// How long it took.
    pub duration_ms: i64,
    /// The failure's reason or why the stage was skipped; never personal data.
    pub detail: Option<String>,
}

/// One canary run through one channel (value of `hush.canaries.v1`, keyed by channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryResult {
    /// The run (UUID); every channel of one run shares it.
    pub run_id: String,
    /// The channel.
    pub channel: CanaryChannel,
    /// The opt-out request, once intake accepted it.
    pub request_id: Option<String>,
    /// When the channel's run started.
    pub started_at: EpochMillis,
    /// When it ended.
    pub finished_at: EpochMillis,
    /// Every stage, in order.
    pub stages: Vec<CanaryStageResult>,
    /// Whether it passed.
    pub outcome: CanaryOutcome,
    /// The first stage that failed.
    pub failed_stage: Option<CanaryStage>,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

impl AvroEvent for CanaryResult {
    const FULL_NAME: &'static str = "dev.hush.v1.CanaryResult";
    const SCHEMA: &'static str = include_str!("../../../schemas/canary_result.avsc");
}

/// One synthetic identity: a raw value that belongs to no real person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryIdentity {
    /// Kind of identifier.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// The value, e.g. the email of a test contact.
    pub value: String,
}

/// `[[canary.subjects]]`: the synthetic identities that exist at one recipient (a test contact
/// in the CRM, a test member of an ad audience's seed list, a test profile in the CDP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySubject {
    /// The recipient (`[[recipients]] id`) holding these identities.
    pub recipient: String,
    /// Its identities.
    pub identifiers: Vec<CanaryIdentity>,
}

/// `[canary.reopt_in]`: the identity-system key that signs the attestation of the canary's
/// re-opt-in (a consumer-initiated opt-in must carry one). Its public JWKS must be among the
/// keys `[auth.attestation]` trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryAttestationKey {
    /// Environment variable holding the PEM of the Ed25519 key (`hush keys identity` makes one).
    pub key_env: SecretRef,
    /// Its key id in the JWKS.
    pub kid: String,
    /// Issuer (`[auth.attestation] issuer`).
    pub issuer: String,
}

/// `[canary]`: the synthetic subjects and how a canary run behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanarySection {
    /// Synthetic identities, per recipient.
    pub subjects: Vec<CanarySubject>,
    /// Device and cookie ids starting with this are synthetic; a run mints a fresh cookie id
    /// with it for its GPC signal. At least [`MIN_FRESH_ID_PREFIX_LEN`] characters.
    pub fresh_id_prefix: String,
    /// Channels a run exercises, in this order.
    pub channels: Vec<CanaryChannel>,
    /// Jurisdiction of the canary's requests.
    pub jurisdiction: String,
    /// `source` of the canary's signals on `hush.signals.v1`.
    pub signal_source: String,
    /// Longest each stage may take, in seconds.
    pub stage_timeout_secs: u64,
    /// Recipients whose read-back may still be `PENDING` when the run ends (e.g. a webhook
    /// partner that confirms through its callback days later); any other recipient must be
    /// read back.
    pub read_back_optional: Vec<String>,
    /// The `[[gate.streams]]` source topic whose enforcement a run checks; unset: the stage is
    /// skipped.
    pub gate_stream: Option<String>,
    /// The `[[gate.watch]]` topic a run injects a synthetic leak into; unset: skipped.
    pub leak_topic: Option<String>,
    /// Send the GPC signal without credentials, as a browser does (intake must then allow
    /// anonymous opt-outs: `[auth] anonymous_scopes = ["requests:opt_out"]`).
    pub gpc_anonymous: bool,
    /// The key that signs the attestations of the re-opt-in and of the `DELETE` channel's
    /// deletion; unset: no re-opt-in (skipped), and no `DELETE` round (it fails at `SEED`).
    pub reopt_in: Option<CanaryAttestationKey>,
    /// Domain of the fresh email addresses the `DELETE` channel creates records for, one per
    /// run (`<fresh_id_prefix><run id>@<domain>`): a domain the business controls, so no such
    /// address is a real person's. An email there starting with `fresh_id_prefix` is synthetic.
    /// Required by the `DELETE` channel.
    pub fresh_email_domain: Option<String>,
}

impl Default for CanarySection {
    fn default() -> Self {
        Self {
            subjects: Vec::new(),
            fresh_id_prefix: "hush-canary-".into(),
            channels: CanaryChannel::OPT_OUT.to_vec(),
            jurisdiction: "US-CA".into(),
            signal_source: CANARY_SOURCE_SYSTEM.into(),
            stage_timeout_secs: 300,
            read_back_optional: Vec::new(),
            gate_stream: None,
            leak_topic: None,
            gpc_anonymous: false,
            reopt_in: None,
            fresh_email_domain: None,
        }
    }
}

impl CanarySection {
    /// Checks the block on its own: every identity normalises, the prefix is long enough, the
    /// channels are listed once each. Errors name the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.fresh_id_prefix.trim().chars().count() < MIN_FRESH_ID_PREFIX_LEN {
            return invalid(format!(
                "canary.fresh_id_prefix must have at least {MIN_FRESH_ID_PREFIX_LEN} characters: \
                 a short prefix could match a real visitor's id"
            ));
        }
        for (s, subject) in self.subjects.iter().enumerate() {
            if subject.identifiers.is_empty() {
                return invalid(format!(
                    "canary.subjects[{s}] (recipient {}) lists no identifiers",
                    subject.recipient
                ));
            }
            for (i, identity) in subject.identifiers.iter().enumerate() {
                if let Err(error) = normalise(identity.kind, &identity.value) {
                    return invalid(format!("canary.subjects[{s}].identifiers[{i}]: {error}"));
                }
            }
        }
        let mut seen = HashSet::new();
        for channel in &self.channels {
            if !seen.insert(*channel) {
                return invalid(format!("canary.channels lists {} twice", channel.as_str()));
            }
        }
        if self.signal_source.trim().is_empty() {
            return invalid("canary.signal_source is empty".into());
        }
        if self.stage_timeout_secs == 0 {
            return invalid("canary.stage_timeout_secs must be at least 1".into());
        }
        if let Some(domain) = &self.fresh_email_domain {
            let well_formed = domain.contains('.')
                && !domain.contains('@')
                && normalise(IdentifierType::Email, &format!("canary@{domain}")).is_ok();
            if !well_formed {
                return invalid(
                    "canary.fresh_email_domain must be a bare domain such as \
                     hush-canary.example.com (no @, no spaces)"
                        .into(),
                );
            }
        }
        if self.channels.contains(&CanaryChannel::Delete) {
            self.delete_prerequisites().map_err(|why| {
                ConfigError::Invalid(format!("canary.channels lists DELETE: {why}"))
            })?;
        }
        Ok(())
    }

    /// Why the `DELETE` channel cannot run with this block, if it cannot: it needs
    /// `fresh_email_domain` for its fresh records and `reopt_in`'s key to attest the deletion.
    pub fn delete_prerequisites(&self) -> Result<(), String> {
        if self.fresh_email_domain.is_none() {
            return Err(
                "set canary.fresh_email_domain, the domain of the fresh records' emails".into(),
            );
        }
        if self.reopt_in.is_none() {
            return Err(
                "set [canary.reopt_in], whose key attests the deletion (intake refuses \
                        an unverified delete)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The fresh email of run `run_id`'s `DELETE` round, normalised; `None` without
    /// `fresh_email_domain`.
    pub fn fresh_email(&self, run_id: &str) -> Option<String> {
        self.fresh_email_domain.as_ref().map(|domain| {
            format!("{}{run_id}@{}", self.fresh_id_prefix.trim(), domain.trim()).to_lowercase()
        })
    }

    /// Checks that every recipient the block names is configured.
    pub fn validate_recipients(&self, recipients: &[RecipientConfig]) -> Result<(), ConfigError> {
        let known = |id: &str| recipients.iter().any(|r| r.id == id);
        let named = self
            .subjects
            .iter()
            .map(|s| ("canary.subjects.recipient", s.recipient.as_str()))
            .chain(
                self.read_back_optional
                    .iter()
                    .map(|id| ("canary.read_back_optional", id.as_str())),
            );
        for (setting, id) in named {
            if !known(id) {
                return Err(ConfigError::Invalid(format!(
                    "{setting} names recipient `{id}`, which is not in [[recipients]]"
                )));
            }
        }
        Ok(())
    }

    /// Every configured identity once, in configuration order.
    pub fn identities(&self) -> Vec<CanaryIdentity> {
        let mut seen = HashSet::new();
        self.subjects
            .iter()
            .flat_map(|s| s.identifiers.iter())
            .filter(|i| {
                let key = hash_identifier(i.kind, &i.value).unwrap_or_else(|_| i.value.clone());
                seen.insert((i.kind, key))
            })
            .cloned()
            .collect()
    }

    /// A fresh synthetic device or cookie id for run `run_id`.
    pub fn fresh_id(&self, run_id: &str) -> String {
        format!("{}{run_id}", self.fresh_id_prefix.trim())
    }
}

/// Which identifiers are synthetic: the configured identities (by hash), device or cookie ids
/// starting with the fresh-id prefix, and emails at the fresh-email domain starting with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyntheticIdentities {
    hashes: HashSet<String>,
    fresh_id_prefix: String,
    /// `@<fresh_email_domain>`, lowercase, when one is configured.
    fresh_email_suffix: Option<String>,
}

impl SyntheticIdentities {
    /// The synthetic identities of a validated `[canary]` block.
    pub fn new(section: &CanarySection) -> Result<Self, ConfigError> {
        section.validate()?;
        let hashes = section
            .identities()
            .iter()
            .map(|i| hash_identifier(i.kind, &i.value))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(|e| ConfigError::Invalid(format!("canary.subjects: {e}")))?;
        Ok(Self {
            hashes,
            fresh_id_prefix: section.fresh_id_prefix.trim().to_owned(),
            fresh_email_suffix: section
                .fresh_email_domain
                .as_ref()
                .map(|domain| format!("@{}", domain.trim().to_lowercase())),
        })
    }

    /// Whether one identifier, given as a raw `value` or as the `sha256` of its normalised
    /// value, is synthetic. An identifier that does not normalise is not.
    pub fn is_synthetic(
        &self,
        kind: IdentifierType,
        value: Option<&str>,
        sha256: Option<&str>,
    ) -> bool {
        match (value, sha256) {
            (Some(value), None) => {
                let Ok(normalised) = normalise(kind, value) else {
                    return false;
                };
                let fresh = match kind {
                    IdentifierType::DeviceId | IdentifierType::CookieId => {
                        !self.fresh_id_prefix.is_empty()
                            && normalised.starts_with(&self.fresh_id_prefix)
                    }
                    IdentifierType::Email => self.fresh_email_suffix.as_ref().is_some_and(|at| {
                        !self.fresh_id_prefix.is_empty()
                            && normalised.starts_with(&self.fresh_id_prefix.to_lowercase())
                            && normalised.ends_with(at.as_str())
                    }),
                    _ => false,
                };
                fresh || self.hashes.contains(&sha256_hex(&normalised))
            }
            (None, Some(sha256)) => {
                let sha256 = sha256.trim().to_ascii_lowercase();
                is_sha256_hex(&sha256) && self.hashes.contains(&sha256)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::{from_value, to_value, Reader, Schema, Writer};

    fn section(toml_text: &str) -> CanarySection {
        toml::from_str(toml_text).expect("canary section parses")
    }

    const SUBJECTS: &str = r#"
        [[subjects]]
        recipient = "hubspot"
        identifiers = [{ type = "EMAIL", value = "Canary+CRM@hush-canary.example" }]
        [[subjects]]
        recipient = "segment"
        identifiers = [{ type = "CUSTOMER_ID", value = "canary-customer-1" },
                       { type = "EMAIL", value = "canary+crm@hush-canary.example" }]
    "#;

    fn result() -> CanaryResult {
        CanaryResult {
            run_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            channel: CanaryChannel::Gpc,
            request_id: Some("5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into()),
            started_at: 1,
            finished_at: 9,
            stages: CanaryStage::ALL
                .iter()
                .map(|stage| CanaryStageResult {
                    stage: *stage,
                    status: if *stage == CanaryStage::ReadBack {
                        CanaryStageStatus::Failed
                    } else {
                        CanaryStageStatus::NotRun
                    },
                    started_at: 2,
                    duration_ms: 3,
                    detail: Some("hubspot: verification FAILED".into()),
                })
                .collect(),
            outcome: CanaryOutcome::Failed,
            failed_stage: Some(CanaryStage::ReadBack),
            failure_reason: Some("hubspot: verification FAILED".into()),
        }
    }

    #[test]
    fn a_canary_result_round_trips_through_its_schema() {
        let schema = Schema::parse_str(CanaryResult::SCHEMA).expect("schema parses");
        for event in [
            result(),
            CanaryResult {
                request_id: None,
                failed_stage: None,
                failure_reason: None,
                outcome: CanaryOutcome::Passed,
                ..result()
            },
        ] {
            let value = to_value(&event).unwrap().resolve(&schema).expect("fits");
            let mut writer = Writer::new(&schema, Vec::new()).unwrap();
            writer.append_value(value).unwrap();
            let bytes = writer.into_inner().unwrap();
            let decoded = Reader::new(bytes.as_slice())
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(from_value::<CanaryResult>(&decoded).unwrap(), event);
        }
    }

    #[test]
    fn a_result_written_before_the_delete_channel_and_seed_stage_reads_with_this_schema() {
        // The first version of the schema: the same, without the two appended symbols.
        let first = CanaryResult::SCHEMA
            .replace(r#", "DELETE"]"#, "]")
            .replace(r#", "SEED"]"#, "]");
        assert_ne!(first, CanaryResult::SCHEMA, "both symbols were appended");
        let writer_schema = Schema::parse_str(&first).expect("first version parses");
        let reader_schema = Schema::parse_str(CanaryResult::SCHEMA).expect("schema parses");
        let old = CanaryResult {
            stages: result()
                .stages
                .into_iter()
                .filter(|s| s.stage != CanaryStage::Seed)
                .collect(),
            ..result()
        };
        let value = to_value(&old).unwrap().resolve(&writer_schema).unwrap();
        let mut writer = Writer::new(&writer_schema, Vec::new()).unwrap();
        writer.append_value(value).unwrap();
        let bytes = writer.into_inner().unwrap();
        let read = Reader::builder(bytes.as_slice())
            .reader_schema(&reader_schema)
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(from_value::<CanaryResult>(&read).unwrap(), old);
    }

    #[test]
    fn a_delete_result_round_trips_through_its_schema() {
        let schema = Schema::parse_str(CanaryResult::SCHEMA).unwrap();
        let event = CanaryResult {
            channel: CanaryChannel::Delete,
            ..result()
        };
        let value = to_value(&event).unwrap().resolve(&schema).expect("fits");
        let mut writer = Writer::new(&schema, Vec::new()).unwrap();
        writer.append_value(value).unwrap();
        let bytes = writer.into_inner().unwrap();
        let decoded = Reader::new(bytes.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(from_value::<CanaryResult>(&decoded).unwrap(), event);
    }

    #[test]
    fn a_fresh_email_at_the_canary_domain_is_synthetic_and_no_other_email_is() {
        let mut canary = section(SUBJECTS);
        canary.fresh_email_domain = Some("Hush-Canary.example".into());
        let fresh = canary.fresh_email("Run-1").unwrap();
        assert_eq!(fresh, "hush-canary-run-1@hush-canary.example");
        let synthetic = SyntheticIdentities::new(&canary).unwrap();
        assert!(synthetic.is_synthetic(IdentifierType::Email, Some(&fresh), None));
        assert!(synthetic.is_synthetic(
            IdentifierType::Email,
            Some(" HUSH-CANARY-run-2@hush-canary.EXAMPLE "),
            None
        ));
        // Another address at the domain, the prefix at another domain, a look-alike domain.
        for real in [
            "jane@hush-canary.example",
            "hush-canary-run-1@example.com",
            "hush-canary-run-1@evil-hush-canary.example.com",
        ] {
            assert!(
                !synthetic.is_synthetic(IdentifierType::Email, Some(real), None),
                "{real}"
            );
        }
        let without = SyntheticIdentities::new(&section(SUBJECTS)).unwrap();
        assert!(!without.is_synthetic(IdentifierType::Email, Some(&fresh), None));
    }

    #[test]
    fn the_delete_channel_is_refused_without_a_domain_or_an_attestation_key() {
        let mut canary = section(SUBJECTS);
        canary.channels.push(CanaryChannel::Delete);
        let error = canary.validate().unwrap_err().to_string();
        assert!(error.contains("canary.fresh_email_domain"), "{error}");
        canary.fresh_email_domain = Some("hush-canary.example".into());
        let error = canary.validate().unwrap_err().to_string();
        assert!(error.contains("[canary.reopt_in]"), "{error}");
        canary.reopt_in = Some(CanaryAttestationKey {
            key_env: SecretRef("HUSH_CANARY_IDENTITY_KEY".into()),
            kid: "k".into(),
            issuer: "https://id.example.com".into(),
        });
        assert!(canary.validate().is_ok());
        canary.fresh_email_domain = Some("user@hush-canary.example".into());
        let error = canary.validate().unwrap_err().to_string();
        assert!(error.contains("bare domain"), "{error}");
    }

    #[test]
    fn every_stage_and_channel_symbol_is_in_the_schema() {
        for stage in CanaryStage::ALL {
            assert!(CanaryResult::SCHEMA.contains(&format!("\"{}\"", stage.as_str())));
        }
        for channel in CanaryChannel::ALL {
            assert!(CanaryResult::SCHEMA.contains(&format!("\"{}\"", channel.as_str())));
        }
    }

    #[test]
    fn configured_identities_and_fresh_ids_are_synthetic_and_nothing_else() {
        let canary = section(SUBJECTS);
        let synthetic = SyntheticIdentities::new(&canary).unwrap();
        assert!(synthetic.is_synthetic(
            IdentifierType::Email,
            Some(" CANARY+crm@hush-canary.example "),
            None
        ));
        let hash = hash_identifier(IdentifierType::CustomerId, "canary-customer-1").unwrap();
        assert!(synthetic.is_synthetic(
            IdentifierType::CustomerId,
            None,
            Some(&hash.to_uppercase())
        ));
        assert!(synthetic.is_synthetic(
            IdentifierType::CookieId,
            Some(&canary.fresh_id("run-1")),
            None
        ));
        // A real person, a prefix on a kind that is not a browser id, and malformed input.
        assert!(!synthetic.is_synthetic(IdentifierType::Email, Some("jane@example.com"), None));
        assert!(!synthetic.is_synthetic(
            IdentifierType::CustomerId,
            Some("hush-canary-run-1"),
            None
        ));
        assert!(!synthetic.is_synthetic(IdentifierType::Email, Some("not-an-email"), None));
        assert!(!synthetic.is_synthetic(IdentifierType::Email, None, Some("abc")));
        assert!(!synthetic.is_synthetic(IdentifierType::Email, None, None));
    }

    #[test]
    fn identities_are_listed_once_across_recipients() {
        let identities = section(SUBJECTS).identities();
        assert_eq!(identities.len(), 2, "{identities:?}");
    }

    #[test]
    fn a_short_prefix_an_invalid_identity_or_a_repeated_channel_is_refused_by_name() {
        let error = section("fresh_id_prefix = \"c-\"")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("canary.fresh_id_prefix"), "{error}");
        let error = section(
            "[[subjects]]\nrecipient = \"crm\"\nidentifiers = [{ type = \"EMAIL\", value = \"nope\" }]",
        )
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("canary.subjects[0].identifiers[0]"),
            "{error}"
        );
        let error = section("channels = [\"GPC\", \"GPC\"]")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("GPC twice"), "{error}");
        assert!(section(SUBJECTS).validate().is_ok());
    }

    #[test]
    fn a_subject_at_an_unknown_recipient_is_refused_by_name() {
        let recipients: Vec<RecipientConfig> = vec![toml::from_str(
            "id = \"hubspot\"\nkind = \"hubspot\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://crm\"",
        )
        .unwrap()];
        let error = section(SUBJECTS)
            .validate_recipients(&recipients)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`segment`"), "{error}");
    }
}
