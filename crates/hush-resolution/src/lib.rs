//! Identity resolution before fan-out. A consumer types an email; Segment knows them by user
//! id, the CRM by a record id, the ad platforms by device ids. The resolvers configured in
//! `[[resolvers]]` run in order between intake's validation and its publish, each seeing the
//! identifiers known so far (given or found by an earlier resolver), and expand the request's
//! identifiers with what they find:
//!
//! - `http`: the business's own customer service, asked by identifier hash;
//! - `segment_profiles`: Segment's Profile API (the external ids of the profile found by
//!   `email:` or another external id);
//! - `postgres`: a read-only query against the business's customer database, parameters bound.
//!
//! Every resolver leaves one [`ResolutionStep`] on the request: what it added (type and hash,
//! never a value), or that it does not know the subject, has nothing to look up by, or was
//! skipped. A resolver that is down is retried with backoff within its bounds and then skipped
//! with a warning: a missing identifier never blocks an opt-out. Found values are normalised
//! here, the one way intake normalises; intake hashes and encrypts them as it does its own.

pub mod config;
mod http;
mod postgres;
mod segment_profiles;
#[cfg(feature = "sim")]
pub mod sim;

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::RawValue;
use hush_contracts::events::{
    now_millis, IdentifierType, ResolutionOutcome, ResolutionStep, ResolvedIdentifier,
};
use hush_contracts::identifiers::{is_sha256_hex, normalise, sha256_hex};
use hush_contracts::redact::{redact, REDACTED};
use prometheus::{register_int_counter_vec, IntCounterVec};
use tokio::time::Instant;

pub use config::{ResolverConfig, ResolverSource};

/// Most identifiers resolution adds to one request; more are left out and the step says so.
pub const MAX_RESOLVED: usize = 32;
/// Default time one request may spend in all its resolvers.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(3);

/// Look-ups by resolver and outcome (`RESOLVED`, `UNKNOWN_SUBJECT`, `NOT_APPLICABLE`,
/// `SKIPPED`).
static LOOKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_identity_resolution_total",
        "Identity resolution look-ups, by resolver and outcome",
        &["resolver", "outcome"]
    )
    .expect("metric registers once")
});

/// One identifier of the subject: its hash, and its normalised raw value where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectIdentifier {
    /// Kind of identifier.
    pub kind: IdentifierType,
    /// Lowercase hex SHA-256 of the normalised value.
    pub sha256: String,
    /// The normalised raw value (absent when only the hash is known).
    pub value: Option<RawValue>,
}

/// What resolution produced for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Identifiers found, not already known, in the order found (at most [`MAX_RESOLVED`]).
    pub found: Vec<SubjectIdentifier>,
    /// One step per resolver, in the order they ran.
    pub steps: Vec<ResolutionStep>,
}

/// A value a resolver's system answered with, before normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// A raw value.
    Raw(IdentifierType, RawValue),
    /// The SHA-256 hex of a normalised value.
    Sha256(IdentifierType, String),
}

/// A resolver's answer for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The subject is known: these are its identifiers (notes say what was left out).
    Found {
        candidates: Vec<Candidate>,
        notes: Vec<String>,
    },
    /// The system answered and does not know the subject.
    Unknown,
    /// The subject carries nothing this resolver looks up by.
    NotApplicable(String),
}

/// Why a look-up did not answer. Texts never hold a raw identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LookupError {
    /// The system is down, overloaded or timed out: worth another attempt.
    #[error("{detail}")]
    Unavailable {
        /// What happened.
        detail: String,
        /// How long the system asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The system refused (credentials, a query it rejects, an answer Hush cannot read):
    /// another attempt would fail the same way.
    #[error("{0}")]
    Refused(String),
}

impl LookupError {
    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        LookupError::Unavailable {
            detail: detail.into(),
            retry_after: None,
        }
    }
}

/// The system one resolver asks.
#[async_trait]
pub(crate) trait Lookup: Send + Sync {
    /// Looks the subject up by the identifiers known so far.
    async fn lookup(&self, known: &[SubjectIdentifier]) -> Result<Answer, LookupError>;
}

/// One configured resolver with its bounds.
struct Resolver {
    id: String,
    timeout: Duration,
    max_attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
    system: Box<dyn Lookup>,
}

/// How one resolver's attempts ended.
enum Settled {
    Answered(Answer),
    Skipped(String),
}

impl Resolver {
    /// Asks the system, retrying an unavailable one with doubling waits (a `Retry-After`
    /// capped by `max_backoff`), each call bounded by `timeout`, all of it by `deadline` (the
    /// request's resolution budget); the attempts made.
    async fn settle(
        &self,
        known: &[SubjectIdentifier],
        deadline: Instant,
        budget: Duration,
    ) -> (Settled, i32) {
        let mut wait = self.backoff;
        let mut attempts = 0;
        loop {
            let call_deadline = (Instant::now() + self.timeout).min(deadline);
            if call_deadline <= Instant::now() {
                return (
                    Settled::Skipped(format!(
                        "not asked: the resolution budget ({} ms) was spent before its turn",
                        budget.as_millis()
                    )),
                    attempts,
                );
            }
            attempts += 1;
            let cut_short = call_deadline == deadline;
            let (detail, retry_after) =
                match tokio::time::timeout_at(call_deadline, self.system.lookup(known)).await {
                    Ok(Ok(answer)) => return (Settled::Answered(answer), attempts),
                    Ok(Err(LookupError::Refused(detail))) => {
                        return (Settled::Skipped(format!("refused: {detail}")), attempts)
                    }
                    Ok(Err(LookupError::Unavailable {
                        detail,
                        retry_after,
                    })) => (detail, retry_after),
                    Err(_) if cut_short => (
                        format!(
                            "no answer before the resolution budget ({} ms) ran out",
                            budget.as_millis()
                        ),
                        None,
                    ),
                    Err(_) => (
                        format!("no answer within {} ms", self.timeout.as_millis()),
                        None,
                    ),
                };
            if attempts >= self.max_attempts as i32 || Instant::now() >= deadline {
                return (
                    Settled::Skipped(format!("unavailable after {attempts} attempts: {detail}")),
                    attempts,
                );
            }
            let pause = retry_after.unwrap_or(wait).min(self.max_backoff);
            if Instant::now() + pause >= deadline {
                return (
                    Settled::Skipped(format!(
                        "unavailable after {attempts} attempts (the resolution budget of {} ms \
                         leaves no time for another): {detail}",
                        budget.as_millis()
                    )),
                    attempts,
                );
            }
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(self.max_backoff);
        }
    }
}

/// The configured resolvers, in order, and the time one request may spend in all of them.
pub struct Resolvers {
    chain: Vec<Resolver>,
    budget: Duration,
}

impl std::fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.chain.iter().map(|r| &r.id))
            .finish()
    }
}

impl Resolvers {
    /// No resolver: requests keep the identifiers they were given.
    pub fn none() -> Self {
        Self {
            chain: Vec::new(),
            budget: DEFAULT_BUDGET,
        }
    }

    /// The same resolvers with at most `budget` spent on one request, over all of them
    /// (default [`DEFAULT_BUDGET`]): a resolver still retrying when it runs out, and any after
    /// it, are skipped. Intake keeps it below its HTTP request timeout, so a resolver that is
    /// down never turns a submission into a time-out.
    pub fn within(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Builds every resolver of `configs`: checks each setting (naming the resolver and the
    /// setting at fault) and reads each credential from the environment. Nothing is called
    /// yet, so a system that is down does not stop intake from starting.
    pub fn build(configs: &[ResolverConfig]) -> Result<Self, ConfigError> {
        let mut chain = Vec::with_capacity(configs.len());
        for config in configs {
            check_common(config)?;
            if chain.iter().any(|r: &Resolver| r.id == config.id) {
                return Err(ConfigError::Invalid(format!(
                    "resolvers: two resolvers are named `{}`; each id must be unique",
                    config.id
                )));
            }
            let timeout = Duration::from_millis(config.timeout_ms);
            let system: Box<dyn Lookup> = match &config.source {
                ResolverSource::Http(settings) => {
                    Box::new(http::HttpLookup::new(&config.id, settings, timeout)?)
                }
                ResolverSource::SegmentProfiles(settings) => Box::new(
                    segment_profiles::SegmentProfilesLookup::new(&config.id, settings, timeout)?,
                ),
                ResolverSource::Postgres(settings) => Box::new(postgres::PostgresLookup::new(
                    &config.id, settings, timeout,
                )?),
            };
            chain.push(Resolver {
                id: config.id.clone(),
                timeout,
                max_attempts: config.max_attempts,
                backoff: Duration::from_millis(config.backoff_ms),
                max_backoff: Duration::from_millis(config.max_backoff_ms),
                system,
            });
        }
        Ok(Self {
            chain,
            budget: DEFAULT_BUDGET,
        })
    }

    /// Whether no resolver is configured.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// Runs every resolver in order on the subject `given`; each sees what earlier ones found.
    /// Never fails: a resolver that cannot answer is recorded as skipped and the next one runs.
    pub async fn resolve(&self, given: &[SubjectIdentifier]) -> Resolution {
        let mut known = given.to_vec();
        let mut resolution = Resolution::default();
        let deadline = Instant::now() + self.budget;
        for resolver in &self.chain {
            let (settled, attempts) = resolver.settle(&known, deadline, self.budget).await;
            let mut step = ResolutionStep {
                resolver: resolver.id.clone(),
                outcome: ResolutionOutcome::Skipped,
                identifiers: Vec::new(),
                resolved_at: now_millis(),
                attempts,
                reason: None,
            };
            match settled {
                Settled::Answered(Answer::Found { candidates, notes }) => {
                    step.outcome = ResolutionOutcome::Resolved;
                    let mut notes = notes;
                    notes.extend(admit(
                        candidates,
                        &mut known,
                        &mut resolution.found,
                        &mut step.identifiers,
                    ));
                    step.reason = (!notes.is_empty()).then(|| notes.join("; "));
                }
                Settled::Answered(Answer::Unknown) => {
                    step.outcome = ResolutionOutcome::UnknownSubject;
                }
                Settled::Answered(Answer::NotApplicable(reason)) => {
                    step.outcome = ResolutionOutcome::NotApplicable;
                    step.attempts = 0;
                    step.reason = Some(reason);
                }
                Settled::Skipped(reason) => {
                    step.reason = Some(reason);
                }
            }
            step.reason = step.reason.map(|reason| without_values(&reason, &known));
            if step.outcome == ResolutionOutcome::Skipped {
                tracing::warn!(
                    resolver = %resolver.id,
                    attempts,
                    reason = step.reason.as_deref().unwrap_or_default(),
                    "identity resolver skipped; the request goes on without what it would add"
                );
            } else {
                tracing::debug!(
                    resolver = %resolver.id,
                    outcome = step.outcome.as_str(),
                    added = step.identifiers.len(),
                    "identity resolver answered"
                );
            }
            LOOKUPS
                .with_label_values(&[resolver.id.as_str(), step.outcome.as_str()])
                .inc();
            resolution.steps.push(step);
        }
        resolution
    }
}

/// Checks the fields every resolver has.
fn check_common(config: &ResolverConfig) -> Result<(), ConfigError> {
    let id = &config.id;
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::Invalid(format!(
            "resolvers: id `{id}` must be 1 to 64 letters, digits, `-` or `_` (it is recorded on \
             requests and used as a metrics label)"
        )));
    }
    let field = |name: &str, must: &str| {
        ConfigError::Invalid(format!("resolver `{id}`: {name} must be {must}"))
    };
    if !(1..=60_000).contains(&config.timeout_ms) {
        return Err(field("timeout_ms", "between 1 and 60000"));
    }
    if !(1..=10).contains(&config.max_attempts) {
        return Err(field("max_attempts", "between 1 and 10"));
    }
    if config.backoff_ms > config.max_backoff_ms || config.max_backoff_ms > 60_000 {
        return Err(field(
            "backoff_ms",
            "at most max_backoff_ms, itself at most 60000",
        ));
    }
    Ok(())
}

/// Normalises and checks `candidates`, adds the new ones to `known`, `found` and `added` (up to
/// [`MAX_RESOLVED`] in all); notes what was left out, by type and count only.
fn admit(
    candidates: Vec<Candidate>,
    known: &mut Vec<SubjectIdentifier>,
    found: &mut Vec<SubjectIdentifier>,
    added: &mut Vec<ResolvedIdentifier>,
) -> Vec<String> {
    let mut invalid: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut beyond_limit = 0;
    for candidate in candidates {
        let identifier = match candidate {
            Candidate::Raw(kind, raw) => match normalise(kind, raw.expose()) {
                Ok(normalised) => SubjectIdentifier {
                    kind,
                    sha256: sha256_hex(&normalised),
                    value: Some(RawValue::new(normalised)),
                },
                Err(_) => {
                    *invalid.entry(kind.as_str()).or_default() += 1;
                    continue;
                }
            },
            Candidate::Sha256(kind, sha256) => {
                let sha256 = sha256.trim().to_ascii_lowercase();
                if !is_sha256_hex(&sha256) {
                    *invalid.entry(kind.as_str()).or_default() += 1;
                    continue;
                }
                SubjectIdentifier {
                    kind,
                    sha256,
                    value: None,
                }
            }
        };
        if known
            .iter()
            .any(|k| k.kind == identifier.kind && k.sha256 == identifier.sha256)
        {
            continue;
        }
        if found.len() >= MAX_RESOLVED {
            beyond_limit += 1;
            continue;
        }
        added.push(ResolvedIdentifier {
            kind: identifier.kind,
            sha256: identifier.sha256.clone(),
        });
        known.push(identifier.clone());
        found.push(identifier);
    }
    let mut notes: Vec<String> = invalid
        .into_iter()
        .map(|(kind, count)| format!("{count} {kind} value(s) not valid, left out"))
        .collect();
    if beyond_limit > 0 {
        notes.push(format!(
            "{beyond_limit} more identifier(s) left out: at most {MAX_RESOLVED} are added to a request"
        ));
    }
    notes
}

/// `text` with every raw value of `known` replaced, whatever a system echoed back.
fn without_values(text: &str, known: &[SubjectIdentifier]) -> String {
    let values: Vec<&str> = known
        .iter()
        .filter_map(|k| k.value.as_ref().map(RawValue::expose))
        .collect();
    redact(text, &values, REDACTED)
}

/// The values of `kind` among `known`: raw ones when `raw`, hashes otherwise.
pub(crate) fn values_of(known: &[SubjectIdentifier], kind: IdentifierType, raw: bool) -> Vec<&str> {
    let mut values: Vec<&str> = Vec::new();
    for identifier in known.iter().filter(|k| k.kind == kind) {
        let value = if raw {
            identifier.value.as_ref().map(RawValue::expose)
        } else {
            Some(identifier.sha256.as_str())
        };
        if let Some(value) = value {
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    values
}

/// The lowercase name of an identifier type in settings and placeholders, e.g. `customer_id`.
pub(crate) fn type_name(kind: IdentifierType) -> String {
    kind.as_str().to_ascii_lowercase()
}

/// Every identifier type, for parsing names.
pub(crate) const IDENTIFIER_TYPES: [IdentifierType; 6] = IdentifierType::SUBJECT_KEY_PRIORITY;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    /// A system that answers from a script, one entry per call (the last one repeats).
    struct Scripted {
        answers: Mutex<Vec<Result<Answer, LookupError>>>,
        calls: Arc<AtomicU32>,
        seen: Arc<Mutex<Vec<Vec<IdentifierType>>>>,
    }

    #[async_trait]
    impl Lookup for Scripted {
        async fn lookup(&self, known: &[SubjectIdentifier]) -> Result<Answer, LookupError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.seen
                .lock()
                .unwrap()
                .push(known.iter().map(|k| k.kind).collect());
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            }
        }
    }

    struct Probe {
        calls: Arc<AtomicU32>,
        seen: Arc<Mutex<Vec<Vec<IdentifierType>>>>,
    }

    fn scripted(id: &str, answers: Vec<Result<Answer, LookupError>>) -> (Resolver, Probe) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let resolver = Resolver {
            id: id.to_owned(),
            timeout: Duration::from_millis(200),
            max_attempts: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            system: Box::new(Scripted {
                answers: Mutex::new(answers),
                calls: calls.clone(),
                seen: seen.clone(),
            }),
        };
        (resolver, Probe { calls, seen })
    }

    fn email(value: &str) -> SubjectIdentifier {
        SubjectIdentifier {
            kind: IdentifierType::Email,
            sha256: sha256_hex(value),
            value: Some(RawValue::new(value)),
        }
    }

    fn customer(value: &str) -> Candidate {
        Candidate::Raw(IdentifierType::CustomerId, RawValue::new(value))
    }

    fn found(candidates: Vec<Candidate>) -> Result<Answer, LookupError> {
        Ok(Answer::Found {
            candidates,
            notes: Vec::new(),
        })
    }

    #[tokio::test]
    async fn resolvers_run_in_order_and_each_sees_what_earlier_ones_found() {
        let (first, _) = scripted("customer-db", vec![found(vec![customer(" cust-1001 ")])]);
        let (second, probe) = scripted(
            "segment",
            vec![found(vec![
                customer("cust-1001"),
                Candidate::Raw(IdentifierType::CookieId, RawValue::new("anon-7")),
            ])],
        );
        let resolvers = Resolvers {
            chain: vec![first, second],
            budget: DEFAULT_BUDGET,
        };
        let resolution = resolvers.resolve(&[email("jane@example.com")]).await;
        assert_eq!(
            probe.seen.lock().unwrap()[0],
            [IdentifierType::Email, IdentifierType::CustomerId]
        );
        let kinds: Vec<_> = resolution.found.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [IdentifierType::CustomerId, IdentifierType::CookieId]
        );
        assert_eq!(
            resolution.found[0].value.as_ref().map(RawValue::expose),
            Some("cust-1001"),
            "normalised (trimmed)"
        );
        assert_eq!(resolution.steps.len(), 2);
        assert_eq!(resolution.steps[0].outcome, ResolutionOutcome::Resolved);
        assert_eq!(
            resolution.steps[0].identifiers,
            [ResolvedIdentifier {
                kind: IdentifierType::CustomerId,
                sha256: sha256_hex("cust-1001"),
            }]
        );
        assert_eq!(
            resolution.steps[1].identifiers.len(),
            1,
            "the customer id already known is not added twice"
        );
        assert_eq!(
            resolution.steps[1].identifiers[0].kind,
            IdentifierType::CookieId
        );
    }

    #[tokio::test]
    async fn a_resolver_that_stays_down_is_retried_within_its_bounds_then_skipped() {
        let (down, probe) = scripted(
            "customer-db",
            vec![Err(LookupError::unavailable("connection refused"))],
        );
        let (next, _) = scripted("segment", vec![found(vec![customer("cust-1")])]);
        let resolvers = Resolvers {
            chain: vec![down, next],
            budget: DEFAULT_BUDGET,
        };
        let resolution = resolvers.resolve(&[email("jane@example.com")]).await;
        assert_eq!(probe.calls.load(Ordering::SeqCst), 3);
        let skipped = &resolution.steps[0];
        assert_eq!(skipped.outcome, ResolutionOutcome::Skipped);
        assert_eq!(skipped.attempts, 3);
        assert_eq!(
            skipped.reason.as_deref(),
            Some("unavailable after 3 attempts: connection refused")
        );
        assert_eq!(
            resolution.steps[1].outcome,
            ResolutionOutcome::Resolved,
            "the next resolver still runs"
        );
    }

    #[tokio::test]
    async fn a_resolver_that_recovers_within_its_attempts_answers() {
        let (flaky, probe) = scripted(
            "crm",
            vec![
                Err(LookupError::unavailable("HTTP 503")),
                found(vec![customer("cust-2")]),
            ],
        );
        let resolution = Resolvers {
            chain: vec![flaky],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        assert_eq!(probe.calls.load(Ordering::SeqCst), 2);
        assert_eq!(resolution.steps[0].outcome, ResolutionOutcome::Resolved);
        assert_eq!(resolution.steps[0].attempts, 2);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried() {
        let (refusing, probe) = scripted("crm", vec![Err(LookupError::Refused("HTTP 401".into()))]);
        let resolution = Resolvers {
            chain: vec![refusing],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
        assert_eq!(resolution.steps[0].outcome, ResolutionOutcome::Skipped);
        assert_eq!(
            resolution.steps[0].reason.as_deref(),
            Some("refused: HTTP 401")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_hangs_counts_as_a_failed_attempt() {
        struct Hangs;
        #[async_trait]
        impl Lookup for Hangs {
            async fn lookup(&self, _: &[SubjectIdentifier]) -> Result<Answer, LookupError> {
                std::future::pending().await
            }
        }
        let resolver = Resolver {
            id: "slow".into(),
            timeout: Duration::from_millis(500),
            max_attempts: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(100),
            system: Box::new(Hangs),
        };
        let resolution = Resolvers {
            chain: vec![resolver],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        assert_eq!(
            resolution.steps[0].reason.as_deref(),
            Some("unavailable after 2 attempts: no answer within 500 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_all_resolvers_together() {
        struct Hangs;
        #[async_trait]
        impl Lookup for Hangs {
            async fn lookup(&self, _: &[SubjectIdentifier]) -> Result<Answer, LookupError> {
                std::future::pending().await
            }
        }
        let hanging = |id: &str| Resolver {
            id: id.into(),
            timeout: Duration::from_millis(800),
            max_attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(100),
            system: Box::new(Hangs),
        };
        let resolvers = Resolvers {
            chain: vec![hanging("first"), hanging("second")],
            budget: DEFAULT_BUDGET,
        }
        .within(Duration::from_millis(1_000));
        let started = Instant::now();
        let resolution = resolvers.resolve(&[email("jane@example.com")]).await;
        assert_eq!(started.elapsed(), Duration::from_millis(1_000));
        assert_eq!(
            resolution.steps[0].reason.as_deref(),
            Some(
                "unavailable after 2 attempts: no answer before the resolution budget (1000 ms) \
                 ran out"
            )
        );
        assert_eq!(
            (resolution.steps[1].outcome, resolution.steps[1].attempts),
            (ResolutionOutcome::Skipped, 0)
        );
        assert_eq!(
            resolution.steps[1].reason.as_deref(),
            Some("not asked: the resolution budget (1000 ms) was spent before its turn")
        );
    }

    #[tokio::test]
    async fn a_quick_failure_is_retried_while_the_budget_lasts() {
        let (mut flaky, probe) = scripted(
            "crm",
            vec![
                Err(LookupError::unavailable("HTTP 503")),
                found(vec![customer("cust-3")]),
            ],
        );
        flaky.timeout = Duration::from_secs(5);
        let resolution = Resolvers {
            chain: vec![flaky],
            budget: DEFAULT_BUDGET,
        }
        .within(Duration::from_secs(1))
        .resolve(&[email("jane@example.com")])
        .await;
        assert_eq!(probe.calls.load(Ordering::SeqCst), 2);
        assert_eq!(resolution.steps[0].outcome, ResolutionOutcome::Resolved);
    }

    #[tokio::test]
    async fn unknown_subjects_and_missing_inputs_are_recorded_as_such() {
        let (unknown, _) = scripted("customer-db", vec![Ok(Answer::Unknown)]);
        let (empty, _) = scripted("crm", vec![found(Vec::new())]);
        let (needs_phone, probe) = scripted(
            "phones",
            vec![Ok(Answer::NotApplicable("needs a PHONE identifier".into()))],
        );
        let resolution = Resolvers {
            chain: vec![unknown, empty, needs_phone],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        assert!(resolution.found.is_empty());
        assert_eq!(
            resolution.steps[0].outcome,
            ResolutionOutcome::UnknownSubject
        );
        assert_eq!(
            resolution.steps[1].outcome,
            ResolutionOutcome::Resolved,
            "found, with nothing new"
        );
        assert!(resolution.steps[1].identifiers.is_empty());
        assert_eq!(
            resolution.steps[2].outcome,
            ResolutionOutcome::NotApplicable
        );
        assert_eq!(resolution.steps[2].attempts, 0);
        assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalid_values_are_counted_by_type_and_never_quoted() {
        let (resolver, _) = scripted(
            "crm",
            vec![found(vec![
                Candidate::Raw(IdentifierType::Email, RawValue::new("not-an-email")),
                Candidate::Sha256(IdentifierType::Maid, "zz".into()),
                Candidate::Sha256(IdentifierType::Maid, sha256_hex("maid-1").to_uppercase()),
            ])],
        );
        let resolution = Resolvers {
            chain: vec![resolver],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        assert_eq!(resolution.found.len(), 1);
        assert_eq!(resolution.found[0].sha256, sha256_hex("maid-1"));
        assert_eq!(resolution.found[0].value, None);
        let reason = resolution.steps[0].reason.clone().unwrap();
        assert_eq!(
            reason,
            "1 EMAIL value(s) not valid, left out; 1 MAID value(s) not valid, left out"
        );
    }

    #[tokio::test]
    async fn at_most_the_limit_is_added_to_one_request() {
        let many = (0..MAX_RESOLVED + 3)
            .map(|n| customer(&format!("cust-{n}")))
            .collect();
        let (resolver, _) = scripted("crm", vec![found(many)]);
        let resolution = Resolvers {
            chain: vec![resolver],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        assert_eq!(resolution.found.len(), MAX_RESOLVED);
        assert!(resolution.steps[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("3 more identifier(s) left out"));
    }

    #[tokio::test]
    async fn a_reason_that_echoes_a_raw_value_is_redacted() {
        let (resolver, _) = scripted(
            "customer-db",
            vec![Err(LookupError::Refused(
                "invalid input syntax for type bigint: \"jane@example.com\"".into(),
            ))],
        );
        let resolution = Resolvers {
            chain: vec![resolver],
            budget: DEFAULT_BUDGET,
        }
        .resolve(&[email("jane@example.com")])
        .await;
        let reason = resolution.steps[0].reason.clone().unwrap();
        assert!(!reason.contains("jane"), "{reason}");
        assert!(reason.contains(REDACTED), "{reason}");
    }

    fn config(text: &str) -> ResolverConfig {
        #[derive(serde::Deserialize)]
        struct File {
            resolvers: Vec<ResolverConfig>,
        }
        toml::from_str::<File>(text).unwrap().resolvers.remove(0)
    }

    #[test]
    fn ids_and_bounds_are_checked_at_start_up() {
        let http = |extra: &str| {
            config(&format!(
                r#"
                [[resolvers]]
                kind = "http"
                url = "http://127.0.0.1:9/lookup?h={{email_sha256}}"
                {extra}
                "#
            ))
        };
        let duplicate = Resolvers::build(&[http("id = \"crm\""), http("id = \"crm\"")])
            .unwrap_err()
            .to_string();
        assert!(
            duplicate.contains("two resolvers are named `crm`"),
            "{duplicate}"
        );
        let bad_id = Resolvers::build(&[http("id = \"crm db\"")])
            .unwrap_err()
            .to_string();
        assert!(bad_id.contains("id `crm db`"), "{bad_id}");
        let attempts = Resolvers::build(&[http("id = \"crm\"\nmax_attempts = 0")])
            .unwrap_err()
            .to_string();
        assert!(
            attempts.contains("resolver `crm`: max_attempts"),
            "{attempts}"
        );
        let backoff = Resolvers::build(&[http("id = \"crm\"\nbackoff_ms = 5000")])
            .unwrap_err()
            .to_string();
        assert!(backoff.contains("backoff_ms"), "{backoff}");
        assert!(Resolvers::build(&[http("id = \"crm\"")]).is_ok());
    }
}
