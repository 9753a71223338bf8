//! Rust forms of the Avro event contracts in `schemas/`. Each type serialises to exactly the
//! record its `.avsc` file describes; `tests` below prove the round trip.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC (Avro `timestamp-millis`).
pub type EpochMillis = i64;

/// An event type with an Avro schema registered under its topic's `-value` subject.
pub trait AvroEvent: Serialize + for<'de> Deserialize<'de> + Send + Sync {
    /// Full Avro name, e.g. `dev.hush.v1.PrivacyRequest`.
    const FULL_NAME: &'static str;
    /// The `.avsc` text of the record.
    const SCHEMA: &'static str;
}

macro_rules! avro_event {
    ($ty:ty, $name:literal, $file:literal) => {
        impl AvroEvent for $ty {
            const FULL_NAME: &'static str = concat!("dev.hush.v1.", $name);
            const SCHEMA: &'static str = include_str!(concat!("../../../schemas/", $file));
        }
    };
}

/// The right a consumer exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestKind {
    /// Opt out of sale and sharing (15 business days in California).
    OptOutSaleShare,
    /// Limit use of sensitive personal information (15 business days).
    LimitSensitive,
    /// Delete (45 calendar days, one 45-day extension); needs verified identity.
    Delete,
    /// Opt back in to sale and sharing; honoured only when consumer-initiated.
    OptInSaleShare,
}

impl RequestKind {
    /// Every kind, in schema order.
    pub const ALL: [RequestKind; 4] = [
        RequestKind::OptOutSaleShare,
        RequestKind::LimitSensitive,
        RequestKind::Delete,
        RequestKind::OptInSaleShare,
    ];

    /// The schema symbol, e.g. `OPT_OUT_SALE_SHARE`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::OptOutSaleShare => "OPT_OUT_SALE_SHARE",
            RequestKind::LimitSensitive => "LIMIT_SENSITIVE",
            RequestKind::Delete => "DELETE",
            RequestKind::OptInSaleShare => "OPT_IN_SALE_SHARE",
        }
    }
}

/// How a request reached the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    /// "Do Not Sell or Share" link.
    WebLink,
    /// Web form.
    WebForm,
    /// Global Privacy Control browser signal.
    Gpc,
    /// Direct API call.
    Api,
    /// Email to the privacy team.
    Email,
    /// Toll-free number.
    Phone,
    /// An authorised agent acting for the consumer.
    AuthorizedAgent,
    /// Forwarded by an upstream system.
    Upstream,
}

impl Channel {
    /// The schema symbol, e.g. `WEB_FORM`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::WebLink => "WEB_LINK",
            Channel::WebForm => "WEB_FORM",
            Channel::Gpc => "GPC",
            Channel::Api => "API",
            Channel::Email => "EMAIL",
            Channel::Phone => "PHONE",
            Channel::AuthorizedAgent => "AUTHORIZED_AGENT",
            Channel::Upstream => "UPSTREAM",
        }
    }
}

/// Kind of identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdentifierType {
    /// Email address.
    Email,
    /// Phone number.
    Phone,
    /// Device identifier.
    DeviceId,
    /// Browser cookie identifier.
    CookieId,
    /// The business's own customer id.
    CustomerId,
    /// Mobile advertising id (IDFA/GAID).
    Maid,
}

impl IdentifierType {
    /// The schema symbol, e.g. `EMAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Email => "EMAIL",
            IdentifierType::Phone => "PHONE",
            IdentifierType::DeviceId => "DEVICE_ID",
            IdentifierType::CookieId => "COOKIE_ID",
            IdentifierType::CustomerId => "CUSTOMER_ID",
            IdentifierType::Maid => "MAID",
        }
    }

    /// Preference order for the subject key: the most stable identifier first.
    pub const SUBJECT_KEY_PRIORITY: [IdentifierType; 6] = [
        IdentifierType::CustomerId,
        IdentifierType::Email,
        IdentifierType::Phone,
        IdentifierType::Maid,
        IdentifierType::DeviceId,
        IdentifierType::CookieId,
    ];
}

/// Data-use category a request covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// Targeted and cross-context behavioural advertising.
    Advertising,
    /// Marketing partners that receive data.
    MarketingPartners,
    /// Analytics.
    Analytics,
    /// Data enrichment.
    Enrichment,
    /// Every category.
    All,
}

/// Age band of a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgeBand {
    /// Under 13: a parent's affirmative opt-in is needed for sale/share.
    #[serde(rename = "UNDER_13")]
    Under13,
    /// 13 to 15: the minor's own affirmative opt-in is needed.
    #[serde(rename = "AGE_13_TO_15")]
    Age13To15,
    /// 16 or older.
    #[serde(rename = "AGE_16_PLUS")]
    Age16Plus,
}

/// One hashed identifier of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    /// Kind of identifier.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// SHA-256 hex of the normalised value.
    pub sha256: String,
    /// Base64 nonce || AES-256-GCM ciphertext of the normalised value, where kept.
    pub encrypted_value: Option<String>,
}

/// Identity verification attached to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Method, e.g. `EMAIL_LINK`.
    pub method: String,
    /// When verification succeeded.
    pub verified_at: EpochMillis,
    /// Issuer of the signed attestation intake verified.
    pub attested_by: Option<String>,
    /// The compact JWS the identity system signed, kept as evidence.
    pub attestation: Option<String>,
}

/// A consumer's privacy request (value of `hush.requests.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyRequest {
    /// UUID of the request.
    pub request_id: String,
    /// Partition key: hash of the strongest identifier.
    pub subject_key: String,
    /// Right exercised.
    pub kind: RequestKind,
    /// Submission channel.
    pub channel: Channel,
    /// ISO 3166-2 jurisdiction, e.g. `US-CA`.
    pub jurisdiction: String,
    /// Receipt time.
    pub received_at: EpochMillis,
    /// At least one identifier.
    pub identifiers: Vec<Identifier>,
    /// Categories covered.
    pub categories: Vec<Category>,
    /// Identity verification, when performed.
    pub verification: Option<Verification>,
    /// Age band, when known.
    pub age_band: Option<AgeBand>,
    /// System that captured the request.
    pub source_system: String,
    /// True when the consumer started the request.
    pub consumer_initiated: bool,
    /// Caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// Identity resolution: what each configured resolver did, in order (empty when none is
    /// configured). Identifiers it added are in `identifiers` too.
    #[serde(default)]
    pub resolution: Vec<ResolutionStep>,
}

/// How one identity resolver's look-up ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResolutionOutcome {
    /// The resolver knows the subject; the step lists the identifiers it added.
    Resolved,
    /// The resolver answered and does not know the subject.
    UnknownSubject,
    /// The request carries nothing this resolver looks up by.
    NotApplicable,
    /// The resolver was unreachable (after its retries) or refused the look-up; the request
    /// went on without it.
    Skipped,
}

impl ResolutionOutcome {
    /// The schema symbol, e.g. `UNKNOWN_SUBJECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionOutcome::Resolved => "RESOLVED",
            ResolutionOutcome::UnknownSubject => "UNKNOWN_SUBJECT",
            ResolutionOutcome::NotApplicable => "NOT_APPLICABLE",
            ResolutionOutcome::Skipped => "SKIPPED",
        }
    }
}

/// An identifier an identity resolver added, named by type and hash (never by value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedIdentifier {
    /// Kind of identifier.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// SHA-256 hex of the normalised value, as in the request's `identifiers`.
    pub sha256: String,
}

/// What one identity resolver did for a request: its provenance record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolutionStep {
    /// Id of the resolver in `[[resolvers]]`.
    pub resolver: String,
    /// How its look-up ended.
    pub outcome: ResolutionOutcome,
    /// Identifiers it added (already known ones are not repeated).
    #[serde(default)]
    pub identifiers: Vec<ResolvedIdentifier>,
    /// When its look-up ended.
    pub resolved_at: EpochMillis,
    /// Calls made to its system (0 when not applicable).
    #[serde(default)]
    pub attempts: i32,
    /// Why it was skipped or not applicable, or what it left out; never a raw identifier.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One identifier of a [`PrivacySignal`]: a raw value or the SHA-256 of the normalised value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalIdentifier {
    /// Kind of identifier.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// Raw value as the consumer gave it.
    pub value: Option<String>,
    /// Lowercase hex SHA-256 of the normalised value.
    pub sha256: Option<String>,
}

/// An upstream system's attestation that it verified the consumer's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalVerification {
    /// Method, e.g. `EMAIL_LINK`.
    pub method: String,
    /// When verification succeeded.
    pub verified_at: EpochMillis,
    /// Compact JWS the business's identity system signed; required for a deletion and a
    /// consumer-initiated opt-in.
    pub attestation: Option<String>,
}

/// A privacy request published by an upstream system (value of `hush.signals.v1`); intake
/// validates it exactly as an HTTP submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacySignal {
    /// Right exercised.
    pub kind: RequestKind,
    /// At least one identifier.
    pub identifiers: Vec<SignalIdentifier>,
    /// Channel; `UPSTREAM` when absent.
    pub channel: Option<Channel>,
    /// ISO 3166-2 jurisdiction; intake's default when absent.
    pub jurisdiction: Option<String>,
    /// Categories; `ALL` when empty.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Identity verification; required for a deletion.
    pub verification: Option<SignalVerification>,
    /// Age band, when known.
    pub age_band: Option<AgeBand>,
    /// Whether the consumer started the request.
    #[serde(default)]
    pub consumer_initiated: bool,
    /// When the upstream system received it.
    pub received_at: EpochMillis,
    /// Publishing system; scopes the idempotency key.
    pub source: String,
    /// Unique per request within the source.
    pub idempotency_key: String,
}

impl PrivacyRequest {
    /// Whether the request covers a category (`ALL` covers every one).
    pub fn covers(&self, category: Category) -> bool {
        self.categories
            .iter()
            .any(|c| *c == Category::All || *c == category)
    }
}

/// Whether the minors rule applies to an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MinorStatus {
    /// Consumer is 16 or older.
    NotMinor,
    /// Age not known.
    Unknown,
    /// Under 16 without affirmative opt-in: no sale/share.
    MinorNoOptIn,
    /// Under 16 with affirmative opt-in.
    MinorOptedIn,
}

/// Suppression state of one identifier (value of `hush.suppressions.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionState {
    /// SHA-256 hex of the identifier; the record key.
    pub identifier_hash: String,
    /// Kind of identifier.
    pub identifier_type: IdentifierType,
    /// Subject key of the last request.
    pub subject_key: String,
    /// Sale and sharing must not happen.
    pub sale_share_opted_out: bool,
    /// Sensitive PI use is limited.
    pub sensitive_limited: bool,
    /// Deletion was requested.
    pub deleted: bool,
    /// When the suppression took effect.
    pub effective_at: EpochMillis,
    /// No opt-in solicitation before this instant.
    pub resolicit_after: Option<EpochMillis>,
    /// Minors rule status.
    pub minor_status: MinorStatus,
    /// Request that produced this state.
    pub last_request_id: String,
    /// When this state was written.
    pub updated_at: EpochMillis,
    /// The request that produced it was the canary's (`source_system` `hush-canary`): the
    /// identifier is suppressed like any other but left out of counts of suppressed people.
    #[serde(default)]
    pub synthetic: bool,
}

/// Legal role of a downstream recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecipientRole {
    /// Receives data by sale or sharing: notified to comply and forward.
    ThirdParty,
    /// Processes on the business's behalf: directed.
    ServiceProvider,
    /// Contractor: directed.
    Contractor,
}

/// Outcome at a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfirmationAction {
    /// The recipient stopped using the data.
    Suppressed,
    /// The recipient deleted the data.
    Deleted,
    /// The recipient flagged the record (e.g. an opt-out property).
    Flagged,
    /// The recipient was notified (comply and forward).
    Notified,
    /// The recipient holds nothing about the subject.
    NotFound,
    /// Kept under a statutory deletion exception.
    RetainedUnderException,
    /// Gave up after the configured attempts.
    FailedPermanent,
    /// The recipient is not in scope for this request.
    NotApplicable,
}

impl ConfirmationAction {
    /// The schema symbol, e.g. `SUPPRESSED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationAction::Suppressed => "SUPPRESSED",
            ConfirmationAction::Deleted => "DELETED",
            ConfirmationAction::Flagged => "FLAGGED",
            ConfirmationAction::Notified => "NOTIFIED",
            ConfirmationAction::NotFound => "NOT_FOUND",
            ConfirmationAction::RetainedUnderException => "RETAINED_UNDER_EXCEPTION",
            ConfirmationAction::FailedPermanent => "FAILED_PERMANENT",
            ConfirmationAction::NotApplicable => "NOT_APPLICABLE",
        }
    }

    /// Whether the recipient complied (everything but a permanent failure).
    pub fn complied(self) -> bool {
        !matches!(self, ConfirmationAction::FailedPermanent)
    }
}

/// Read-back verification of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationStatus {
    /// Read back from the recipient and found as expected.
    Verified,
    /// The recipient offers no read-back.
    Unverifiable,
    /// Read-back not done yet (e.g. an asynchronous job).
    Pending,
    /// Read back and found wrong.
    Failed,
}

/// Evidence key of an outcome whose read-back stayed `PENDING` until the suppressor's
/// re-verification limit passed: its value says why (attempts, age, last status) and what to do.
/// Such an outcome keeps `PENDING` (nothing was read back) and needs an operator.
pub const READ_BACK_GAVE_UP_EVIDENCE_KEY: &str = "read_back_gave_up";

/// Evidence key counting the read-backs made after the one at completion (re-verifications).
pub const READ_BACKS_EVIDENCE_KEY: &str = "read_backs";

/// A recipient's outcome for one request (value of `hush.confirmations.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Request confirmed.
    pub request_id: String,
    /// Subject key of the request.
    pub subject_key: String,
    /// Recipient id.
    pub connector_id: String,
    /// Recipient role.
    pub role: RecipientRole,
    /// Outcome.
    pub action: ConfirmationAction,
    /// Statutory basis of a retention exception.
    pub exception_basis: Option<String>,
    /// Calls made, retries included.
    pub attempts: i32,
    /// First call.
    pub first_attempt_at: Option<EpochMillis>,
    /// Last call.
    pub last_attempt_at: Option<EpochMillis>,
    /// When the outcome became final.
    pub completed_at: EpochMillis,
    /// Read-back status.
    pub verification: VerificationStatus,
    /// Vendor evidence; never raw personal data.
    pub evidence: HashMap<String, String>,
}

/// Status of an audited request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditStatus {
    /// Confirmations outstanding, deadline not near.
    Open,
    /// Confirmations outstanding and the deadline is near.
    AtRisk,
    /// Every required connector confirmed; some could not be read back.
    Confirmed,
    /// Every required connector confirmed but a read-back is pending or failed.
    Unverified,
    /// Every required connector confirmed and every readable one verified.
    Verified,
    /// Deadline passed with confirmations missing.
    Overdue,
    /// Request denied (e.g. unverifiable deletion).
    Denied,
    /// The gate saw data flowing after the suppression took effect.
    Leaking,
    /// Verified, and no watched outbound stream carried an event about the subject over the
    /// observation window after the last confirmation.
    Proven,
    /// A required recipient failed permanently and the deadline has not passed: an operator
    /// must retry it or record an out-of-band resolution.
    ActionRequired,
}

/// Latest confirmation of one connector inside an [`AuditRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorOutcome {
    /// Recipient id.
    pub connector_id: String,
    /// Recipient role.
    pub role: RecipientRole,
    /// Outcome.
    pub action: ConfirmationAction,
    /// Read-back status.
    pub verification: VerificationStatus,
    /// Calls made.
    pub attempts: i32,
    /// When the outcome became final.
    pub completed_at: EpochMillis,
    /// Evidence.
    pub evidence: HashMap<String, String>,
}

/// The auditor's record of one request (value of `hush.audit.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Request audited.
    pub request_id: String,
    /// Subject key.
    pub subject_key: String,
    /// Right exercised.
    pub kind: RequestKind,
    /// Channel.
    pub channel: Channel,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Receipt.
    pub received_at: EpochMillis,
    /// Legal deadline.
    pub deadline: EpochMillis,
    /// Whether the 45-day extension was taken.
    pub extended: bool,
    /// Computed status.
    pub status: AuditStatus,
    /// When the last required confirmation arrived.
    pub completed_at: Option<EpochMillis>,
    /// Why the request was denied.
    pub denial_reason: Option<String>,
    /// Connectors that must confirm.
    pub required_connectors: Vec<String>,
    /// Confirmations so far.
    pub connectors: Vec<ConnectorOutcome>,
    /// Outbound events seen after suppression.
    pub leaks: i32,
    /// The leaks themselves.
    #[serde(default)]
    pub leak_evidence: Vec<LeakEvidence>,
    /// Evidence of the leak-free observation window, once the request is proven.
    #[serde(default)]
    pub proof: Option<LeakFreeWindow>,
    /// Operator changes (extension, denial, resolution, retry) and who made them.
    #[serde(default)]
    pub changes: Vec<AdminChange>,
    /// A canary's request about synthetic identities only: left out of the 11 CCR 7102 report
    /// and of the auditor's counts.
    #[serde(default)]
    pub synthetic: bool,
    /// The request's identity resolution, as intake published it: each resolver's outcome and
    /// the identifiers it added by type and hash, never by value.
    #[serde(default)]
    pub resolution: Vec<ResolutionStep>,
    /// When written.
    pub updated_at: EpochMillis,
}

/// One operator change inside an [`AuditRecord`], with the authenticated actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminChange {
    /// `EXTENSION`, `DENIAL`, `RESOLUTION` or `RETRY`.
    pub action: String,
    /// The authenticated client that made it.
    pub actor: String,
    /// When.
    pub at: EpochMillis,
    /// The reason, or the recipient concerned.
    pub note: Option<String>,
}

/// One leak inside an [`AuditRecord`]: where the event is, so anyone can re-read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakEvidence {
    /// Id of the detection.
    pub leak_id: String,
    /// Watched topic.
    pub source_topic: String,
    /// Partition.
    pub source_partition: i32,
    /// Offset.
    pub source_offset: i64,
    /// Kind of identifier matched (schema symbol).
    pub identifier_type: String,
    /// SHA-256 hex of the identifier.
    pub identifier_hash: String,
    /// Event timestamp.
    pub event_time: EpochMillis,
    /// How long after the suppression took effect the event was sent.
    pub ms_after_suppression: i64,
    /// What the gate did (schema symbol of [`GateAction`]).
    pub action_taken: String,
    /// When the leak watch saw it.
    pub detected_at: EpochMillis,
}

/// Evidence for point (3) of PROVEN: the watched streams were examined over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakFreeWindow {
    /// The last required confirmation.
    pub window_start: EpochMillis,
    /// End of the window.
    pub window_end: EpochMillis,
    /// Coverage of each watched stream.
    pub streams: Vec<WatchedStreamCoverage>,
}

/// How far one watched stream was examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedStreamCoverage {
    /// Watched topic.
    pub topic: String,
    /// Records examined on it, in all.
    pub records_examined: i64,
    /// Every record written before this instant had been examined.
    pub covered_until: EpochMillis,
    /// Next offset per partition (partition number as text).
    pub offsets: HashMap<String, i64>,
}

/// How far the leak watch has examined one watched topic (value of `hush.watch.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchProgress {
    /// Watched topic; the record key.
    pub topic: String,
    /// Records examined since the watch's consumer group started.
    pub records_examined: i64,
    /// Every record written before this instant has been examined.
    pub covered_until: EpochMillis,
    /// Next offset to examine per partition (partition number as text).
    pub offsets: HashMap<String, i64>,
    /// Leaks published for this topic.
    pub leaks_found: i64,
    /// When written.
    pub updated_at: EpochMillis,
}

/// What the gate did with an outbound event about a suppressed identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GateAction {
    /// Not forwarded.
    Blocked,
    /// Forwarded with Limited Data Use processing options.
    #[serde(rename = "REWRITTEN_LDU")]
    RewrittenLdu,
    /// Forwarded unchanged (observe mode).
    Passed,
}

impl GateAction {
    /// The schema symbol, e.g. `REWRITTEN_LDU`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::Blocked => "BLOCKED",
            GateAction::RewrittenLdu => "REWRITTEN_LDU",
            GateAction::Passed => "PASSED",
        }
    }
}

/// An outbound event about a suppressed identifier (value of `hush.leaks.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakDetected {
    /// Id of the detection.
    pub leak_id: String,
    /// Suppressed identifier found.
    pub identifier_hash: String,
    /// Its kind.
    pub identifier_type: IdentifierType,
    /// Subject key, when the leak watch knows it (empty otherwise).
    pub subject_key: String,
    /// Request whose suppression was violated.
    pub last_request_id: String,
    /// Outbound topic.
    pub source_topic: String,
    /// Partition of the event.
    pub source_partition: i32,
    /// Offset of the event.
    pub source_offset: i64,
    /// Recipient named by the event.
    pub destination: String,
    /// When the suppression took effect.
    pub suppression_effective_at: EpochMillis,
    /// Event timestamp.
    pub event_time: EpochMillis,
    /// Detection time.
    pub detected_at: EpochMillis,
    /// What the gate did.
    pub action_taken: GateAction,
}

avro_event!(PrivacyRequest, "PrivacyRequest", "privacy_request.avsc");
avro_event!(
    SuppressionState,
    "SuppressionState",
    "suppression_state.avsc"
);
avro_event!(Confirmation, "Confirmation", "confirmation.avsc");
avro_event!(AuditRecord, "AuditRecord", "audit_record.avsc");
avro_event!(LeakDetected, "LeakDetected", "leak_detected.avsc");
avro_event!(WatchProgress, "WatchProgress", "watch_progress.avsc");
avro_event!(PrivacySignal, "PrivacySignal", "privacy_signal.avsc");

/// Current time as [`EpochMillis`].
pub fn now_millis() -> EpochMillis {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
pub(crate) mod samples {
    //! Fully populated sample events, shared by the unit tests of this crate.
    use super::*;

    pub fn privacy_request() -> PrivacyRequest {
        PrivacyRequest {
            request_id: "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into(),
            subject_key: crate::identifiers::sha256_hex("jane.doe@example.com"),
            kind: RequestKind::Delete,
            channel: Channel::WebForm,
            jurisdiction: "US-CA".into(),
            received_at: 1_790_000_000_000,
            identifiers: vec![
                Identifier {
                    kind: IdentifierType::Email,
                    sha256: crate::identifiers::sha256_hex("jane.doe@example.com"),
                    encrypted_value: Some("bm9uY2U=".into()),
                },
                Identifier {
                    kind: IdentifierType::Phone,
                    sha256: crate::identifiers::sha256_hex("+14155550100"),
                    encrypted_value: None,
                },
            ],
            categories: vec![Category::Advertising, Category::All],
            verification: Some(Verification {
                method: "EMAIL_LINK".into(),
                verified_at: 1_789_999_000_000,
                attested_by: Some("https://id.example.com".into()),
                attestation: Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
            }),
            age_band: Some(AgeBand::Age13To15),
            source_system: "intake".into(),
            consumer_initiated: true,
            idempotency_key: Some("form-7f3a".into()),
            resolution: vec![
                ResolutionStep {
                    resolver: "customer-db".into(),
                    outcome: ResolutionOutcome::Resolved,
                    identifiers: vec![ResolvedIdentifier {
                        kind: IdentifierType::CustomerId,
                        sha256: crate::identifiers::sha256_hex("cust-1001"),
                    }],
                    resolved_at: 1_790_000_000_050,
                    attempts: 1,
                    reason: None,
                },
                ResolutionStep {
                    resolver: "segment-profiles".into(),
                    outcome: ResolutionOutcome::Skipped,
                    identifiers: Vec::new(),
                    resolved_at: 1_790_000_000_900,
                    attempts: 3,
                    reason: Some("unavailable after 3 attempts: HTTP 503".into()),
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::{from_value, to_value, Reader, Schema, Writer};

    fn round_trip<T: AvroEvent + PartialEq + std::fmt::Debug>(event: &T) {
        let schema = Schema::parse_str(T::SCHEMA).expect("schema parses");
        let value = to_value(event)
            .unwrap()
            .resolve(&schema)
            .expect("event fits its schema");
        let mut writer = Writer::new(&schema, Vec::new()).unwrap();
        writer.append_value(value).unwrap();
        let bytes = writer.into_inner().unwrap();
        let decoded = Reader::new(bytes.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let back: T = from_value(&decoded).unwrap();
        assert_eq!(&back, event);
    }

    #[test]
    fn privacy_request_round_trips_through_its_schema() {
        round_trip(&samples::privacy_request());
        let mut minimal = samples::privacy_request();
        minimal.verification = None;
        minimal.age_band = None;
        minimal.idempotency_key = None;
        minimal.resolution = Vec::new();
        round_trip(&minimal);
    }

    #[test]
    fn every_resolution_outcome_fits_the_schema() {
        for outcome in [
            ResolutionOutcome::Resolved,
            ResolutionOutcome::UnknownSubject,
            ResolutionOutcome::NotApplicable,
            ResolutionOutcome::Skipped,
        ] {
            let mut request = samples::privacy_request();
            request.resolution[0].outcome = outcome;
            round_trip(&request);
            assert_eq!(
                to_value(outcome).unwrap(),
                apache_avro::types::Value::String(outcome.as_str().into())
            );
        }
    }

    #[test]
    fn a_request_written_before_identity_resolution_reads_with_no_steps() {
        let mut older: serde_json::Value = serde_json::from_str(PrivacyRequest::SCHEMA).unwrap();
        let fields = older["fields"].as_array_mut().unwrap();
        fields.retain(|field| field["name"] != "resolution");
        let older = Schema::parse(&older).unwrap();
        let mut request = samples::privacy_request();
        request.resolution = Vec::new();
        let mut value = to_value(&request).unwrap();
        if let apache_avro::types::Value::Record(fields) = &mut value {
            fields.retain(|(name, _)| name != "resolution");
        }
        let mut writer = Writer::new(&older, Vec::new()).unwrap();
        writer.append_value(value.resolve(&older).unwrap()).unwrap();
        let bytes = writer.into_inner().unwrap();
        let decoded = Reader::new(bytes.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let back: PrivacyRequest = from_value(&decoded).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn every_enum_symbol_matches_the_schema() {
        let schema = Schema::parse_str(PrivacyRequest::SCHEMA).unwrap();
        for kind in RequestKind::ALL {
            let mut request = samples::privacy_request();
            request.kind = kind;
            round_trip(&request);
            assert_eq!(
                to_value(kind).unwrap(),
                apache_avro::types::Value::String(kind.as_str().into())
            );
        }
        for band in [AgeBand::Under13, AgeBand::Age13To15, AgeBand::Age16Plus] {
            let mut request = samples::privacy_request();
            request.age_band = Some(band);
            assert!(to_value(&request).unwrap().resolve(&schema).is_ok());
        }
    }

    #[test]
    fn covers_all_means_every_category() {
        let mut request = samples::privacy_request();
        request.categories = vec![Category::All];
        assert!(request.covers(Category::Enrichment));
        request.categories = vec![Category::Advertising];
        assert!(!request.covers(Category::Enrichment));
    }

    const SAMPLE_UUID: &str = "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10";

    #[test]
    fn a_request_id_that_is_not_a_uuid_does_not_fit() {
        let mut request = samples::privacy_request();
        request.request_id = "not-a-uuid".into();
        let schema = Schema::parse_str(PrivacyRequest::SCHEMA).unwrap();
        assert!(to_value(&request).unwrap().resolve(&schema).is_err());
    }

    #[test]
    fn the_new_events_round_trip() {
        round_trip(&PrivacySignal {
            kind: RequestKind::Delete,
            identifiers: vec![
                SignalIdentifier {
                    kind: IdentifierType::Email,
                    value: Some("jane@example.com".into()),
                    sha256: None,
                },
                SignalIdentifier {
                    kind: IdentifierType::Phone,
                    value: None,
                    sha256: Some("ab".repeat(32)),
                },
            ],
            channel: Some(Channel::Upstream),
            jurisdiction: Some("US-CA".into()),
            categories: vec![Category::Advertising],
            verification: Some(SignalVerification {
                method: "EMAIL_LINK".into(),
                verified_at: 5,
                attestation: Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
            }),
            age_band: Some(AgeBand::Age16Plus),
            consumer_initiated: true,
            received_at: 6,
            source: "crm".into(),
            idempotency_key: "k".into(),
        });
        round_trip(&WatchProgress {
            topic: "egress.v1".into(),
            records_examined: 10,
            covered_until: 11,
            offsets: HashMap::from([("0".to_string(), 4)]),
            leaks_found: 1,
            updated_at: 12,
        });
    }

    #[test]
    fn other_events_round_trip() {
        round_trip(&SuppressionState {
            identifier_hash: "ab".repeat(32),
            identifier_type: IdentifierType::Email,
            subject_key: "cd".repeat(32),
            sale_share_opted_out: true,
            sensitive_limited: false,
            deleted: false,
            effective_at: 1,
            resolicit_after: Some(2),
            minor_status: MinorStatus::MinorNoOptIn,
            last_request_id: SAMPLE_UUID.into(),
            updated_at: 3,
            synthetic: true,
        });
        let evidence = HashMap::from([("http_status".to_string(), "204".to_string())]);
        round_trip(&Confirmation {
            request_id: SAMPLE_UUID.into(),
            subject_key: "s".into(),
            connector_id: "hubspot".into(),
            role: RecipientRole::ServiceProvider,
            action: ConfirmationAction::RetainedUnderException,
            exception_basis: Some("1798.105(d)(8)".into()),
            attempts: 2,
            first_attempt_at: Some(1),
            last_attempt_at: Some(2),
            completed_at: 3,
            verification: VerificationStatus::Verified,
            evidence: evidence.clone(),
        });
        round_trip(&AuditRecord {
            request_id: SAMPLE_UUID.into(),
            subject_key: "s".into(),
            kind: RequestKind::OptOutSaleShare,
            channel: Channel::Gpc,
            jurisdiction: "US-CA".into(),
            received_at: 1,
            deadline: 2,
            extended: false,
            status: AuditStatus::AtRisk,
            completed_at: None,
            denial_reason: None,
            required_connectors: vec!["hubspot".into()],
            connectors: vec![ConnectorOutcome {
                connector_id: "hubspot".into(),
                role: RecipientRole::ThirdParty,
                action: ConfirmationAction::Notified,
                verification: VerificationStatus::Pending,
                attempts: 1,
                completed_at: 2,
                evidence,
            }],
            leaks: 0,
            leak_evidence: Vec::new(),
            proof: None,
            changes: Vec::new(),
            synthetic: false,
            resolution: vec![ResolutionStep {
                resolver: "customer-db".into(),
                outcome: ResolutionOutcome::Resolved,
                identifiers: vec![ResolvedIdentifier {
                    kind: IdentifierType::CustomerId,
                    sha256: crate::identifiers::sha256_hex("cust-1001"),
                }],
                resolved_at: 2,
                attempts: 1,
                reason: None,
            }],
            updated_at: 3,
        });
        round_trip(&LeakDetected {
            leak_id: SAMPLE_UUID.into(),
            identifier_hash: "h".into(),
            identifier_type: IdentifierType::Maid,
            subject_key: "s".into(),
            last_request_id: SAMPLE_UUID.into(),
            source_topic: "t".into(),
            source_partition: 0,
            source_offset: 9,
            destination: "meta".into(),
            suppression_effective_at: 1,
            event_time: 2,
            detected_at: 3,
            action_taken: GateAction::RewrittenLdu,
        });
    }
}
