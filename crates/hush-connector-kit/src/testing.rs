//! The contract-test kit (feature `testing`): builders for the work a connector receives, the
//! compliance suite every connector runs against its simulator, the suite every warehouse
//! connector runs ([`warehouse`]), the checks of ad-audience connectors ([`audience`]), those
//! of deletion-only vendors ([`deletion_only`]), those of vendors keeping a profile per person
//! ([`profiles`]) and those of a configured API version ([`versions`]).

pub mod audience;
pub mod deletion_only;
pub mod from_env;
pub mod google;
pub mod profiles;
pub mod read_back;
pub mod versions;
pub mod warehouse;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hush_contracts::connector::{
    Completion, Connector, ConnectorError, ConnectorFactory, FromRecipient, ItemResults, Operation,
    RawValue, SuppressionWork, WorkIdentifier,
};
use hush_contracts::events::{
    Category, ConfirmationAction, IdentifierType, RequestKind, VerificationStatus,
};
use hush_contracts::identifiers::hash_identifier;
use hush_contracts::recipients::RecipientConfig;

use crate::http::VendorAnswer;
use crate::sql::template::{Dialect, Execution, Placeholder, Template, TemplateError};

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// A work item of `kind` for a fresh request: a unique UUID-shaped request id, subject key
/// `subject`, jurisdiction `US-CA`, every category, no identifiers yet.
pub fn work(kind: RequestKind) -> SuppressionWork {
    let number = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
    SuppressionWork {
        request_id: format!("00000000-0000-4000-8000-{number:012}"),
        subject_key: "subject".into(),
        kind,
        identifiers: vec![],
        categories: vec![Category::All],
        jurisdiction: "US-CA".into(),
        received_at: 0,
    }
}

/// An opt-out of sale/share for the person with email `address` (hashed only).
pub fn opt_out(address: &str) -> SuppressionWork {
    work(RequestKind::OptOutSaleShare).with(email(address))
}

/// An opt-out of sale/share for the person with `identifiers`.
pub fn opt_out_of(identifiers: impl IntoIterator<Item = WorkIdentifier>) -> SuppressionWork {
    SuppressionWork {
        identifiers: identifiers.into_iter().collect(),
        ..work(RequestKind::OptOutSaleShare)
    }
}

/// The `[[recipients]]` block of service provider `id` of `kind` at `base_url`, with a timeout
/// of `timeout_ms` and `[settings]` holding the TOML `settings`, each key of the TOML
/// `overrides` then replacing the block's own as in [`recipient_with`].
pub fn service_provider(
    id: &str,
    kind: &str,
    base_url: &str,
    timeout_ms: u64,
    settings: &str,
    overrides: &str,
) -> RecipientConfig {
    let block = format!(
        "id = \"{id}\"\nkind = \"{kind}\"\nrole = \"SERVICE_PROVIDER\"\n\
         base_url = \"{base_url}\"\ntimeout_ms = {timeout_ms}\n[settings]\n{settings}\n"
    );
    recipient_with(&block, overrides)
}

/// A `[[recipients]]` block read from the TOML `text`, with each key of the TOML `overrides`
/// replacing the block's own: `timeout_ms` at the top, any other key in `[settings]`. Contract
/// tests keep one block per connector and change only what a test is about.
pub fn recipient_with(text: &str, overrides: &str) -> RecipientConfig {
    let mut table: toml::Table = toml::from_str(text).expect("the block is TOML");
    let overrides: toml::Table = toml::from_str(overrides).expect("the overrides are TOML");
    for (key, value) in overrides {
        if key == "timeout_ms" {
            table.insert(key, value);
        } else {
            table
                .entry("settings")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("[settings] is a table")
                .insert(key, value);
        }
    }
    table.try_into().expect("a valid [[recipients]] block")
}

/// Builds connector `C` from the `[[recipients]]` block `text` as the suppressor does at
/// start-up, and panics unless the build is refused, naming the first of `env`'s variables,
/// while that one is unset, then succeeds (as do `factory`'s validation and its `kinds`) once
/// every variable of `env` holds its value. It sets environment variables, so a test calling it
/// belongs in a test binary of its own. Returns the block, for the crate's further checks.
pub fn builds_with_credentials_from_env<C: FromRecipient>(
    factory: &ConnectorFactory,
    text: &str,
    env: &[(&str, &str)],
) -> RecipientConfig {
    let recipient: RecipientConfig = toml::from_str(text).expect("a valid [[recipients]] block");
    let (first, _) = env.first().expect("at least one credential variable");
    match C::from_recipient(&recipient) {
        Ok(_) => panic!("built although {first} is not set"),
        Err(error) => assert!(
            error.to_string().contains(first),
            "the refusal names {first}: {error}"
        ),
    }
    for (name, value) in env {
        std::env::set_var(name, value);
    }
    if let Err(error) = C::from_recipient(&recipient) {
        panic!("still refused once every credential is set: {error}");
    }
    if let Err(error) = (factory.validate)(&recipient) {
        panic!("the factory refuses what builds: {error}");
    }
    assert!(
        factory.serves(&recipient.kind),
        "the factory serves kind {}",
        recipient.kind
    );
    recipient
}

/// Panics unless `dialect` converts `text`, whose one placeholder is `:customer_id` written as
/// `placeholder` amid what the dialect must leave alone (string literals, quoted names,
/// comments, casts and its own syntax), into `text` with `placeholder` replaced by `parameter`
/// and nothing else, binding the raw customer id alone.
pub fn assert_dialect_binds_only_the_placeholder(
    dialect: &dyn Dialect,
    text: &str,
    placeholder: &str,
    parameter: &str,
) {
    let template = Template::parse(text, dialect).expect("the template parses");
    assert_eq!(template.sql, text.replace(placeholder, parameter));
    assert_eq!(
        template.params,
        vec![Placeholder::Raw(IdentifierType::CustomerId)]
    );
}

/// Panics unless `dialect` writes the placeholders of a statement using `:request_id`, then
/// `:email_sha256`, `:email` and `:email_sha256` again, as `written` says (one parameter per use,
/// in order), and binds the three distinct placeholders once each, in order of first use.
/// Answers the template for the dialect's own checks.
pub fn assert_dialect_writes_each_use(dialect: &dyn Dialect, written: [&str; 4]) -> Template {
    let statement = |p: [&str; 4]| {
        format!(
            "UPDATE customers SET do_not_sell = TRUE, opted_out_by = {} \
             WHERE email_sha256 = {} OR LOWER(email) = {} OR backup_sha256 = {}",
            p[0], p[1], p[2], p[3]
        )
    };
    let text = statement([":request_id", ":email_sha256", ":email", ":email_sha256"]);
    let template = Template::parse(&text, dialect).expect("the template parses");
    assert_eq!(template.sql, statement(written));
    assert_eq!(
        template.params,
        vec![
            Placeholder::RequestId,
            Placeholder::Hashed(IdentifierType::Email),
            Placeholder::Raw(IdentifierType::Email),
        ]
    );
    assert_eq!(template.identifier_types(), vec![IdentifierType::Email]);
    template
}

/// Binds, through `dialect`, a statement matching `:email_sha256` or `:phone` and recording
/// `:request_id` to request `req-1` of a person with two hashed emails and a raw phone, and
/// panics unless that makes one run per email, the phone bound in the first run only (`NULL`
/// in the second) and the request id in both. Answers the template, the item and the runs, for
/// the dialect to check how it sends the second run.
pub fn assert_dialect_runs_once_per_value(
    dialect: &dyn Dialect,
) -> (Template, SuppressionWork, Vec<Execution>) {
    let template = Template::parse(
        "DELETE FROM c WHERE email_sha256 = :email_sha256 OR phone = :phone OR r = :request_id",
        dialect,
    )
    .expect("the template parses");
    let item = work(RequestKind::Delete)
        .id("req-1")
        .with(hashed(IdentifierType::Email, "a@example.com"))
        .with(hashed(IdentifierType::Email, "b@example.com"))
        .with(with_raw(IdentifierType::Phone, "+14155550100"));
    let runs = template.bind(&item).expect("the person binds");
    assert_eq!(runs.len(), 2, "one run per email");
    assert_eq!(runs[0][0].as_deref(), Some(&*item.identifiers[0].sha256));
    assert_eq!(runs[0][1].as_deref(), Some("+14155550100"));
    assert_eq!(runs[1][0].as_deref(), Some(&*item.identifiers[1].sha256));
    assert_eq!(runs[1][1], None, "the phone is bound once");
    assert!(runs.iter().all(|run| run[2].as_deref() == Some("req-1")));
    (template, item, runs)
}

/// Panics unless `dialect` refuses what no dialect may accept, each with its reason: a blank
/// template, an unknown placeholder (the error naming the known ones), an unterminated string
/// literal, and a statement that names no identifier (only `:request_id`).
pub fn assert_dialect_refuses_bad_templates(dialect: &dyn Dialect) {
    let refused = |text: &str| match Template::parse(text, dialect) {
        Ok(template) => panic!("{text:?} was accepted as {:?}", template.sql),
        Err(error) => error,
    };
    assert_eq!(refused(" \t\n"), TemplateError::Empty);
    let unknown = refused("DELETE FROM t WHERE e = :emial");
    assert_eq!(unknown, TemplateError::UnknownPlaceholder("emial".into()));
    assert!(unknown.to_string().contains(":email_sha256"), "{unknown}");
    assert!(
        matches!(
            refused("DELETE FROM t WHERE e = :email_sha256 AND n = 'x"),
            TemplateError::Unterminated(_)
        ),
        "an unterminated string literal is refused"
    );
    assert_eq!(
        refused("UPDATE t SET by = :request_id"),
        TemplateError::NoIdentifier
    );
}

/// Changes a built work item in the ways contract tests need.
pub trait WorkExt {
    /// Adds an identifier.
    fn with(self, identifier: WorkIdentifier) -> Self;
    /// Adds an identifier of `kind` with its raw value, when there is a `value`.
    fn with_raw_if(self, kind: IdentifierType, value: Option<&str>) -> Self;
    /// Sets the request id.
    fn id(self, request_id: &str) -> Self;
    /// Sets the categories.
    fn categories(self, categories: Vec<Category>) -> Self;
}

impl WorkExt for SuppressionWork {
    fn with(mut self, identifier: WorkIdentifier) -> Self {
        self.identifiers.push(identifier);
        self
    }

    fn with_raw_if(self, kind: IdentifierType, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.with(with_raw(kind, value)),
            None => self,
        }
    }

    fn id(mut self, request_id: &str) -> Self {
        self.request_id = request_id.into();
        self
    }

    fn categories(mut self, categories: Vec<Category>) -> Self {
        self.categories = categories;
        self
    }
}

/// An identifier of `kind` as intake would hash it, without its raw value.
pub fn hashed(kind: IdentifierType, value: &str) -> WorkIdentifier {
    WorkIdentifier {
        kind,
        sha256: hash_identifier(kind, value).expect("a valid identifier"),
        raw: None,
    }
}

/// An identifier of `kind` as intake would hash it, with its raw value (which intake keeps
/// encrypted for the connectors that need it).
pub fn with_raw(kind: IdentifierType, value: &str) -> WorkIdentifier {
    WorkIdentifier {
        raw: Some(RawValue::new(value)),
        ..hashed(kind, value)
    }
}

/// An email, hashed only.
pub fn email(address: &str) -> WorkIdentifier {
    hashed(IdentifierType::Email, address)
}

/// The SHA-256 hex intake derives from the email `address` (normalised first): what a vendor's
/// list or table holds for that person.
pub fn email_sha256(address: &str) -> String {
    email(address).sha256
}

/// The single result of a one-item batch; panics when the batch failed or holds more.
pub fn one(result: Result<ItemResults, ConnectorError>) -> Result<Completion, ConnectorError> {
    let mut items = result.expect("the batch itself does not fail");
    assert_eq!(items.len(), 1, "one result for one item");
    items.remove(0)
}

/// What `connector` answers for `item` applied alone under `operation`; panics when the batch
/// itself fails or does not answer exactly one result.
pub async fn apply_one(
    connector: &dyn Connector,
    operation: Operation,
    item: &SuppressionWork,
) -> Result<Completion, ConnectorError> {
    one(connector.apply(operation, std::slice::from_ref(item)).await)
}

/// What `connector` answers to the person with email `address` opting out of sale/share, alone
/// in a batch; panics when the batch itself fails or does not answer exactly one result.
pub async fn opting_out(
    connector: &dyn Connector,
    address: &str,
) -> Result<Completion, ConnectorError> {
    apply_one(connector, Operation::Suppress, &opt_out(address)).await
}

/// The completion of `item` applied alone under `operation`; panics unless it completed.
pub async fn completed(
    connector: &dyn Connector,
    operation: Operation,
    item: &SuppressionWork,
) -> Completion {
    match apply_one(connector, operation, item).await {
        Ok(completion) => completion,
        Err(error) => panic!("{operation:?} of one item failed: {error}"),
    }
}

/// Panics unless `result` is a configuration error whose text names `field` (a settings
/// check must say which line of the configuration to fix).
pub fn assert_names_field<T: std::fmt::Debug>(
    result: Result<T, hush_contracts::config::ConfigError>,
    field: &str,
) {
    match result {
        Err(error) => assert!(error.to_string().contains(field), "{error}"),
        Ok(value) => panic!("expected an error naming {field}, got {value:?}"),
    }
}

/// Suppresses `batch` through `connector` and panics unless every item comes back
/// `NOT_APPLICABLE`, one result per item.
pub async fn assert_not_applicable(connector: &dyn Connector, batch: &[SuppressionWork]) {
    for (n, completion) in suppress_each(connector, batch).await.iter().enumerate() {
        assert_eq!(
            completion.as_ref().map(|c| c.action),
            Ok(ConfirmationAction::NotApplicable),
            "item {n} is not applicable"
        );
    }
}

/// Suppresses `batch` through `connector` and panics unless every item comes back `NOT_FOUND`
/// with an evidence `reason` containing `reason`, one result per item: the answer of a
/// recipient that cannot match the subject (nothing it looks people up by, or no one found).
pub async fn assert_not_found(connector: &dyn Connector, batch: &[SuppressionWork], reason: &str) {
    for (n, completion) in suppress_each(connector, batch).await.iter().enumerate() {
        assert_eq!(
            completion.as_ref().map(|c| c.action),
            Ok(ConfirmationAction::NotFound),
            "item {n} is not found"
        );
        let given = completion
            .as_ref()
            .ok()
            .and_then(|c| c.evidence.get("reason"));
        assert!(
            given.is_some_and(|given| given.contains(reason)),
            "item {n} says why ({reason:?}), got {given:?}"
        );
    }
}

/// The results of suppressing `batch`, one per item; panics when the batch fails or the count
/// differs.
async fn suppress_each(
    connector: &dyn Connector,
    batch: &[SuppressionWork],
) -> Vec<Result<Completion, ConnectorError>> {
    let results = connector.apply(Operation::Suppress, batch).await;
    let results = results.expect("the batch itself does not fail");
    assert_eq!(results.len(), batch.len(), "one result per item");
    results
}

/// Panics unless `results` holds exactly `items` results, each a completion with `action`.
pub fn assert_every_item(results: &ItemResults, items: usize, action: ConfirmationAction) {
    assert_eq!(results.len(), items, "one result per item");
    for (n, result) in results.iter().enumerate() {
        assert_eq!(
            result.as_ref().map(|c| c.action),
            Ok(action),
            "item {n} completed {action:?}"
        );
    }
}

/// Panics unless `result` (a whole batch's, or one item's) is a permanent refusal with a reason
/// containing `reason`.
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, ConnectorError>, reason: &str) {
    match result {
        Err(ConnectorError::Permanent(detail)) => {
            assert!(detail.contains(reason), "{detail}")
        }
        other => panic!("expected a permanent refusal saying {reason:?}, got {other:?}"),
    }
}

/// Panics unless `result` (a whole batch's, or one item's) is a permanent refusal with a reason
/// containing `reason` and not `hidden`: a raw identifier the vendor quoted back, which must
/// never reach an error.
pub fn assert_refused_without<T: std::fmt::Debug>(
    result: Result<T, ConnectorError>,
    hidden: &str,
    reason: &str,
) {
    match result {
        Err(ConnectorError::Permanent(detail)) => {
            assert!(
                !detail.contains(hidden),
                "{hidden:?} reached the error: {detail}"
            );
            assert!(detail.contains(reason), "{detail}");
        }
        other => panic!("expected a permanent refusal saying {reason:?}, got {other:?}"),
    }
}

/// Panics unless `result` (a whole batch's, or one item's) asks to retry after exactly `after`
/// with a detail containing `says`.
pub fn assert_retry_after_saying<T: std::fmt::Debug>(
    result: Result<T, ConnectorError>,
    after: Duration,
    says: &str,
) {
    match result {
        Err(ConnectorError::RetryAfter {
            after: asked,
            detail,
        }) => {
            assert_eq!(asked, after, "{detail}");
            assert!(detail.contains(says), "the wait says {says:?}: {detail}");
        }
        other => panic!("expected a retry after {after:?} saying {says:?}, got {other:?}"),
    }
}

/// Reads `item`'s `completion` back through `connector` and panics unless the first `pending`
/// reads answer `PENDING` and the next one `VERIFIED`.
pub async fn assert_verified_after(
    connector: &dyn Connector,
    item: &SuppressionWork,
    completion: &Completion,
    pending: usize,
) {
    for read in 1..=pending {
        assert_eq!(
            connector.verify(item, completion).await,
            VerificationStatus::Pending,
            "read {read} of {pending} still pending"
        );
    }
    assert_eq!(
        connector.verify(item, completion).await,
        VerificationStatus::Verified,
        "verified after {pending} pending reads"
    );
}

/// Panics unless `result` (a whole batch's, or one item's) asks to retry after exactly
/// `after`.
pub fn assert_retry_after<T: std::fmt::Debug>(result: Result<T, ConnectorError>, after: Duration) {
    match result {
        Err(ConnectorError::RetryAfter { after: asked, .. }) => assert_eq!(asked, after),
        other => panic!("expected a retry after {after:?}, got {other:?}"),
    }
}

/// A vendor's answer with `status`, `Retry-After` value `retry_after` and `body`, as the HTTP
/// layer hands it to a connector's classification (no rate-limit reset header).
pub fn vendor_answer(status: u16, retry_after: Option<&str>, body: &str) -> VendorAnswer {
    VendorAnswer {
        status,
        retry_after: retry_after.map(str::to_owned),
        rate_limit_reset: None,
        body: body.to_owned(),
    }
}

/// A vendor's answer with `status` and the JSON `body`, without `Retry-After`, as the HTTP layer
/// hands it to a connector's classification.
pub fn json_answer(status: u16, body: serde_json::Value) -> VendorAnswer {
    vendor_answer(status, None, &body.to_string())
}

/// The JSON that `request`, a raw call to a simulator, is answered with; panics when the call
/// fails or its body is not that JSON.
pub async fn answered_json<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    let answer = request.send().await.expect("the simulator answers");
    answer.json().await.expect("the answer is JSON")
}

/// A connector calling with an OAuth access token, and what its simulator says about tokens.
pub struct RejectedToken<'a> {
    /// The connector under test, not yet used.
    pub connector: &'a dyn Connector,
    /// The operation the samples are applied under.
    pub operation: Operation,
    /// A fresh work item the simulated vendor completes.
    pub sample: &'a dyn Fn() -> SuppressionWork,
    /// Makes the simulator reject every access token issued so far.
    pub expire: &'a dyn Fn(),
    /// How many access tokens the simulator has issued.
    pub issued: &'a dyn Fn() -> u64,
    /// How many calls to the vendor's API the simulator answered 401.
    pub rejected: &'a dyn Fn() -> usize,
}

impl RejectedToken<'_> {
    /// Panics unless the connector's first call takes one token and, once the vendor rejects
    /// it, the next call obtains exactly one more and is repeated once, completing; answers
    /// that completion.
    pub async fn run(&self) -> Completion {
        completed(self.connector, self.operation, &(self.sample)()).await;
        assert_eq!((self.issued)(), 1, "one token serves the first call");
        (self.expire)();
        let repeated = completed(self.connector, self.operation, &(self.sample)()).await;
        assert_eq!((self.issued)(), 2, "one new token after the rejection");
        assert_eq!((self.rejected)(), 1, "the rejected call was repeated once");
        repeated
    }
}

/// A failure the simulator serves instead of the vendor's answer, for the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorFault {
    /// `429` with `Retry-After` in seconds.
    TooManyRequests(u64),
    /// `500`.
    ServerError,
    /// No answer for this long (longer than the connector's timeout).
    Hang(Duration),
}

/// A simulator that can be told to fail its next call.
pub trait InjectFaults: Sync {
    /// Serves `fault` for the next call only.
    fn fail_next(&self, fault: VendorFault);
}

/// What every connector must do, checked against its simulator. Each check panics with what
/// went wrong.
pub struct ComplianceSuite<'a> {
    /// The connector under test, with a timeout shorter than [`ComplianceSuite::hang`].
    pub connector: &'a dyn Connector,
    /// Most items one call may carry (the connector factory's `max_batch`).
    pub max_batch: usize,
    /// A work item of the given kind that the simulated vendor can act on (a known person).
    pub sample: &'a (dyn Fn(RequestKind) -> SuppressionWork + Sync),
    /// Whether the vendor can apply an opt-in (otherwise it must be `NOT_APPLICABLE`).
    pub applies_opt_ins: bool,
    /// The simulator's fault injection, where the vendor is simulated.
    pub faults: Option<&'a dyn InjectFaults>,
    /// How long a hang lasts: longer than the connector's timeout.
    pub hang: Duration,
}

impl<'a> ComplianceSuite<'a> {
    /// The suite for `connector`, as `factory` builds it (its `max_batch`), with `sample` items:
    /// opt-ins not applied, no fault injection, and hangs of 2 s, until told otherwise.
    pub fn new(
        connector: &'a dyn Connector,
        factory: &ConnectorFactory,
        sample: &'a (dyn Fn(RequestKind) -> SuppressionWork + Sync),
    ) -> Self {
        Self {
            connector,
            max_batch: factory.max_batch,
            sample,
            applies_opt_ins: false,
            faults: None,
            hang: Duration::from_secs(2),
        }
    }

    /// The vendor applies opt-ins (they must not come back `NOT_APPLICABLE`).
    pub fn applying_opt_ins(self) -> Self {
        Self {
            applies_opt_ins: true,
            ..self
        }
    }

    /// Failures are injected through the simulator's `faults`.
    pub fn with_faults(self, faults: &'a dyn InjectFaults) -> Self {
        Self {
            faults: Some(faults),
            ..self
        }
    }

    /// Runs every check.
    pub async fn run(&self) {
        let mut seen = Vec::new();
        seen.extend(self.results_match_the_batch().await);
        seen.extend(self.opt_ins_are_answered().await);
        if let Some(faults) = self.faults {
            seen.extend(self.failures_are_classified(faults).await);
        }
        self.no_raw_identifier_is_reported(&seen);
    }

    fn batch(&self, kinds: &[RequestKind]) -> Vec<SuppressionWork> {
        let room = self.max_batch.max(1);
        kinds
            .iter()
            .take(room)
            .map(|kind| (self.sample)(*kind))
            .collect()
    }

    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> Seen {
        let result = self.connector.apply(operation, batch).await;
        Seen {
            batch: batch.to_vec(),
            result,
        }
    }

    async fn results_match_the_batch(&self) -> Vec<Seen> {
        let suppress = self.batch(&[
            RequestKind::OptOutSaleShare,
            RequestKind::LimitSensitive,
            RequestKind::OptOutSaleShare,
        ]);
        let delete = self.batch(&[RequestKind::Delete]);
        let mut seen = Vec::new();
        for (operation, batch) in [(Operation::Suppress, suppress), (Operation::Delete, delete)] {
            let applied = self.apply(operation, &batch).await;
            match &applied.result {
                Ok(items) => assert_eq!(
                    items.len(),
                    batch.len(),
                    "{operation:?}: one result per item, in batch order"
                ),
                Err(error) => panic!("{operation:?} of a valid batch failed: {error}"),
            }
            seen.push(applied);
        }
        seen
    }

    async fn opt_ins_are_answered(&self) -> Vec<Seen> {
        let batch = self.batch(&[RequestKind::OptInSaleShare]);
        let applied = self.apply(Operation::Suppress, &batch).await;
        let action = match &applied.result {
            Ok(items) if items.len() == 1 => items[0].as_ref().map(|c| c.action),
            other => panic!("an opt-in answers one result, got {other:?}"),
        };
        if self.applies_opt_ins {
            assert!(
                matches!(action, Ok(a) if a != ConfirmationAction::NotApplicable),
                "an opt-in this vendor supports is applied, got {action:?}"
            );
        } else {
            assert_eq!(
                action,
                Ok(ConfirmationAction::NotApplicable),
                "an opt-in this vendor cannot apply is NOT_APPLICABLE"
            );
        }
        vec![applied]
    }

    async fn failures_are_classified(&self, faults: &dyn InjectFaults) -> Vec<Seen> {
        let expectations: [(VendorFault, Expected, &str); 3] = [
            (
                VendorFault::TooManyRequests(7),
                |e| matches!(e, ConnectorError::RetryAfter { after, .. } if after.as_secs() == 7),
                "a 429 is retried after the vendor's Retry-After (7 s)",
            ),
            (
                VendorFault::ServerError,
                |e| matches!(e, ConnectorError::Transient(_)),
                "a 5xx is transient",
            ),
            (
                VendorFault::Hang(self.hang),
                |e| matches!(e, ConnectorError::Transient(_)),
                "a time-out is transient",
            ),
        ];
        let mut seen = Vec::new();
        for (fault, expected, rule) in expectations {
            faults.fail_next(fault);
            let batch = self.batch(&[RequestKind::OptOutSaleShare]);
            let applied = self.apply(Operation::Suppress, &batch).await;
            let error = match &applied.result {
                Err(error) => error.clone(),
                Ok(items) => match items.as_slice() {
                    [Err(error)] => error.clone(),
                    other => panic!("{rule}, but the item came back {other:?}"),
                },
            };
            assert!(expected(&error), "{rule}, got {error:?}");
            seen.push(applied);
        }
        seen
    }

    fn no_raw_identifier_is_reported(&self, seen: &[Seen]) {
        for applied in seen {
            let raws: Vec<&str> = applied
                .batch
                .iter()
                .flat_map(|work| &work.identifiers)
                .filter_map(|identifier| identifier.raw.as_ref().map(RawValue::expose))
                .collect();
            for text in applied.texts() {
                for raw in &raws {
                    assert!(
                        !text.contains(raw),
                        "a raw identifier reached evidence or an error: {text}"
                    );
                }
            }
        }
    }
}

/// Whether an error is of the class a rule expects.
type Expected = fn(&ConnectorError) -> bool;

/// A batch and what the connector answered.
struct Seen {
    batch: Vec<SuppressionWork>,
    result: Result<ItemResults, ConnectorError>,
}

impl Seen {
    /// Every text the connector reported: error messages and evidence.
    fn texts(&self) -> Vec<String> {
        let items = match &self.result {
            Err(error) => return vec![error.to_string()],
            Ok(items) => items,
        };
        items
            .iter()
            .flat_map(|item| match item {
                Err(error) => vec![error.to_string()],
                Ok(completion) => completion
                    .evidence
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .chain(completion.exception_basis.clone())
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::BatchResult;

    #[test]
    fn an_emails_digest_is_taken_after_normalising_it() {
        assert_eq!(
            email_sha256("  Jane@Example.com "),
            hush_contracts::identifiers::sha256_hex("jane@example.com")
        );
    }

    #[test]
    fn every_item_must_be_answered_with_the_action() {
        let flagged = Ok(Completion::new(
            ConfirmationAction::Flagged,
            Default::default(),
        ));
        let results = vec![flagged.clone(), flagged];
        assert_every_item(&results, 2, ConfirmationAction::Flagged);
        let short = std::panic::catch_unwind(|| {
            assert_every_item(&results, 3, ConfirmationAction::Flagged)
        });
        assert!(short.is_err(), "a result missing fails");
        let other = std::panic::catch_unwind(|| {
            assert_every_item(&results, 2, ConfirmationAction::Deleted)
        });
        assert!(other.is_err(), "another action fails");
    }

    #[test]
    #[should_panic(expected = "reached the error")]
    fn a_refusal_quoting_the_hidden_value_fails() {
        let quoted: Result<(), _> = Err(ConnectorError::Permanent("bad id cust-1".into()));
        assert_refused_without(quoted, "cust-1", "bad id");
    }

    #[test]
    #[should_panic(expected = "1 request per second")]
    fn a_wait_that_does_not_say_why_fails() {
        let throttled: Result<(), _> = Err(ConnectorError::RetryAfter {
            after: Duration::from_secs(5),
            detail: "HTTP 429".into(),
        });
        assert_retry_after_saying(throttled, Duration::from_secs(5), "1 request per second");
    }

    /// Answers each read back with the next of its statuses.
    struct ReadsBack(std::sync::Mutex<Vec<VerificationStatus>>);

    #[async_trait::async_trait]
    impl Connector for ReadsBack {
        async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            Ok(vec![Ok(Completion::not_applicable("unused")); batch.len()])
        }

        async fn verify(&self, _work: &SuppressionWork, _: &Completion) -> VerificationStatus {
            self.0.lock().unwrap().remove(0)
        }
    }

    #[tokio::test]
    async fn a_read_back_verified_after_the_pending_reads_passes_and_one_too_early_fails() {
        use VerificationStatus::{Pending, Verified};
        let item = work(RequestKind::Delete);
        let completion = Completion::not_applicable("unused");
        let reads = ReadsBack(std::sync::Mutex::new(vec![Pending, Pending, Verified]));
        assert_verified_after(&reads, &item, &completion, 2).await;
        let early = ReadsBack(std::sync::Mutex::new(vec![Pending, Verified]));
        let task = tokio::spawn(async move {
            let (item, completion) = (work(RequestKind::Delete), Completion::not_applicable("x"));
            assert_verified_after(&early, &item, &completion, 2).await;
        });
        assert!(
            task.await.is_err(),
            "verified after one pending read, not two"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "one new token after the rejection")]
    async fn a_connector_that_never_refreshes_fails_the_token_check() {
        let connector = Answering(Some(Completion::not_found("x")));
        RejectedToken {
            connector: &connector,
            operation: Operation::Suppress,
            sample: &|| opt_out("a@example.com"),
            expire: &|| {},
            issued: &|| 1,
            rejected: &|| 0,
        }
        .run()
        .await;
    }

    /// Answers every item with `answer`, or with nothing at all.
    struct Answering(Option<Completion>);

    #[async_trait::async_trait]
    impl Connector for Answering {
        async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            Ok(match &self.0 {
                Some(answer) => vec![Ok(answer.clone()); batch.len()],
                None => vec![],
            })
        }
    }

    fn suite(connector: &Answering) -> ComplianceSuite<'_> {
        ComplianceSuite {
            connector,
            max_batch: 10,
            sample: &|kind| work(kind).with(with_raw(IdentifierType::Email, "jane@example.com")),
            applies_opt_ins: false,
            faults: None,
            hang: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_builder_starts_from_the_factory_and_sets_what_it_is_told() {
        const FACTORY: ConnectorFactory = ConnectorFactory::of::<NeedsKey>(&["k"], 7);
        struct NoFaults;
        impl InjectFaults for NoFaults {
            fn fail_next(&self, _fault: VendorFault) {}
        }
        let connector = Answering(None);
        let sample = |kind| work(kind);
        let plain = ComplianceSuite::new(&connector, &FACTORY, &sample);
        assert_eq!(plain.max_batch, 7);
        assert!(!plain.applies_opt_ins && plain.faults.is_none());
        assert_eq!(plain.hang, Duration::from_secs(2));
        let told = plain.applying_opt_ins().with_faults(&NoFaults);
        assert!(told.applies_opt_ins && told.faults.is_some());
    }

    #[tokio::test]
    #[should_panic(expected = "one result per item")]
    async fn a_connector_dropping_results_fails_the_suite() {
        suite(&Answering(None)).run().await;
    }

    #[tokio::test]
    #[should_panic(expected = "a raw identifier reached evidence")]
    async fn a_connector_echoing_a_raw_identifier_fails_the_suite() {
        suite(&Answering(Some(Completion::not_applicable(
            "no contact jane@example.com",
        ))))
        .run()
        .await;
    }

    #[tokio::test]
    async fn a_connector_with_nothing_to_do_passes_without_faults() {
        suite(&Answering(Some(Completion::not_applicable("nothing here"))))
            .run()
            .await;
    }

    #[tokio::test]
    async fn one_item_is_applied_alone_and_its_completion_returned() {
        let answer = Completion::not_applicable("nothing here");
        let connector = Answering(Some(answer.clone()));
        let item = opt_out("a@example.com");
        let applied = apply_one(&connector, Operation::Suppress, &item).await;
        assert_eq!(applied, Ok(answer.clone()));
        assert_eq!(
            opting_out(&connector, "a@example.com").await,
            Ok(answer.clone())
        );
        assert_eq!(
            completed(&connector, Operation::Delete, &item).await,
            answer
        );
    }

    #[tokio::test]
    async fn items_answered_not_applicable_pass_and_others_fail() {
        let batch = [opt_out("a@example.com"), opt_out("b@example.com")];
        let skipping = Answering(Some(Completion::not_applicable("no such call")));
        assert_not_applicable(&skipping, &batch).await;
        let applying = Answering(Some(Completion::new(
            ConfirmationAction::Suppressed,
            Default::default(),
        )));
        let applied = tokio::spawn(async move {
            let batch = [opt_out("a@example.com")];
            assert_not_applicable(&applying, &batch).await;
        });
        assert!(applied.await.is_err(), "an applied item fails the check");
    }

    #[tokio::test]
    async fn items_not_found_with_the_reason_pass_and_others_fail() {
        let batch = [opt_out("a@example.com"), opt_out("b@example.com")];
        let unmatched = Answering(Some(Completion::not_found("no EMAIL identifier")));
        assert_not_found(&unmatched, &batch, "no EMAIL").await;
        let failing = [
            Completion::not_applicable("no EMAIL identifier"),
            Completion::not_found("the subject is elsewhere"),
            Completion::new(ConfirmationAction::NotFound, Default::default()),
        ];
        for answer in failing {
            let checked = tokio::spawn(async move {
                let batch = [opt_out("a@example.com")];
                assert_not_found(&Answering(Some(answer)), &batch, "no EMAIL").await;
            });
            assert!(
                checked.await.is_err(),
                "another action, or no such reason, fails the check"
            );
        }
    }

    #[tokio::test]
    #[should_panic(expected = "one result for one item")]
    async fn one_item_without_a_result_panics() {
        let _ = apply_one(
            &Answering(None),
            Operation::Suppress,
            &opt_out("a@example.com"),
        )
        .await;
    }

    #[test]
    fn a_refusal_must_name_the_field() {
        use hush_contracts::config::ConfigError;
        let refused: Result<(), _> = Err(ConfigError::Invalid("recipients.x.kind is odd".into()));
        assert_names_field(refused, "recipients.x.kind");
        let missed = std::panic::catch_unwind(|| {
            assert_names_field(
                Err::<(), _>(ConfigError::Invalid("something".into())),
                "recipients.x.kind",
            )
        });
        assert!(missed.is_err(), "an error not naming the field fails");
    }

    #[test]
    fn a_refusal_must_be_permanent_and_say_why() {
        assert_refused::<ItemResults>(
            Err(ConnectorError::Permanent("HTTP 400: bad".into())),
            "bad",
        );
        let others: [Result<ItemResults, ConnectorError>; 3] = [
            Err(ConnectorError::Transient("HTTP 400: bad".into())),
            Err(ConnectorError::Permanent("HTTP 400: other".into())),
            Ok(vec![Ok(Completion::not_applicable("bad"))]),
        ];
        for other in others {
            let passed = std::panic::catch_unwind(|| assert_refused(other, "bad")).is_ok();
            assert!(!passed, "only a permanent refusal saying why passes");
        }
    }

    /// Built only when its block's `credentials.api_key` names a variable that is set.
    struct NeedsKey;

    #[async_trait::async_trait]
    impl Connector for NeedsKey {
        async fn apply(&self, _operation: Operation, _batch: &[SuppressionWork]) -> BatchResult {
            Ok(vec![])
        }
    }

    impl FromRecipient for NeedsKey {
        fn from_recipient(
            recipient: &RecipientConfig,
        ) -> Result<Self, hush_contracts::config::ConfigError> {
            recipient.credential("api_key").map(|_| NeedsKey)
        }
    }

    /// Built whatever its block says.
    struct Keyless;

    impl FromRecipient for Keyless {
        fn from_recipient(
            _recipient: &RecipientConfig,
        ) -> Result<Self, hush_contracts::config::ConfigError> {
            Ok(Keyless)
        }
    }

    #[test]
    fn only_a_connector_that_needs_its_credential_from_the_environment_passes() {
        const FACTORY: ConnectorFactory = ConnectorFactory::of::<NeedsKey>(&["k"], 1);
        let block = |var: &str| {
            format!(
                "id = \"x\"\nkind = \"k\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://h\"\n\
                 credentials = {{ api_key = \"{var}\" }}\n"
            )
        };
        let env = [("HUSH_KIT_TEST_NEEDED_KEY", "v")];
        let built = builds_with_credentials_from_env::<NeedsKey>(&FACTORY, &block(env[0].0), &env);
        assert_eq!(built.id, "x");
        let env = [("HUSH_KIT_TEST_IGNORED_KEY", "v")];
        let keyless = std::panic::catch_unwind(|| {
            builds_with_credentials_from_env::<Keyless>(&FACTORY, &block(env[0].0), &env)
        });
        assert!(keyless.is_err(), "a build that ignores the variable fails");
    }

    #[test]
    fn the_plain_dialect_writes_each_use_and_runs_once_per_email() {
        assert_dialect_writes_each_use(&crate::sql::Plain, ["?"; 4]);
        let (template, _, runs) = assert_dialect_runs_once_per_value(&crate::sql::Plain);
        assert_eq!(template.sql.matches('?').count(), 3);
        assert_eq!(runs.len(), 2);
    }

    #[test]
    #[should_panic(expected = "left: \"UPDATE customers SET do_not_sell = TRUE, opted_out_by = ?")]
    fn a_dialect_written_other_than_said_fails() {
        assert_dialect_writes_each_use(&crate::sql::Plain, ["$1", "$2", "$3", "$2"]);
    }

    /// The kit's plain dialect knows no string literals, so it accepts an unterminated one.
    #[test]
    #[should_panic(expected = "was accepted")]
    fn a_dialect_accepting_an_unterminated_literal_fails() {
        assert_dialect_refuses_bad_templates(&crate::sql::Plain);
    }

    #[test]
    fn a_vendor_answer_carries_what_it_was_given() {
        let answer = vendor_answer(429, Some("7"), "slow down");
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after.as_deref(), Some("7"));
        assert_eq!(answer.rate_limit_reset, None);
        assert_eq!(answer.body, "slow down");
    }

    #[test]
    fn a_rate_limit_must_say_how_long() {
        let limited = |secs| -> Result<(), ConnectorError> {
            Err(ConnectorError::RetryAfter {
                after: Duration::from_secs(secs),
                detail: "HTTP 429".into(),
            })
        };
        assert_retry_after(limited(60), Duration::from_secs(60));
        let wrong =
            std::panic::catch_unwind(|| assert_retry_after(limited(1), Duration::from_secs(60)));
        assert!(wrong.is_err(), "another delay fails");
    }

    #[test]
    fn overrides_replace_the_timeout_at_the_top_and_everything_else_in_settings() {
        let text = "id = \"x\"\nkind = \"k\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://h\"\n\
                    timeout_ms = 1000\n[settings]\nmax_wait_ms = 500\npoll_interval_ms = 10\n";
        let recipient = recipient_with(text, "timeout_ms = 50\nmax_wait_ms = 0\nextra = \"e\"");
        assert_eq!(recipient.timeout_ms, 50);
        assert_eq!(recipient.settings["max_wait_ms"].as_integer(), Some(0));
        assert_eq!(
            recipient.settings["poll_interval_ms"].as_integer(),
            Some(10)
        );
        assert_eq!(recipient.settings["extra"].as_str(), Some("e"));
        let without_settings = &text[..text.find("[settings]").unwrap()];
        let bare = recipient_with(without_settings, "audience = \"1\"");
        assert_eq!(bare.settings["audience"].as_str(), Some("1"));
    }

    #[test]
    fn built_work_is_fresh_and_carries_what_was_added() {
        let (a, b) = (opt_out("a@example.com"), opt_out("a@example.com"));
        assert_ne!(a.request_id, b.request_id);
        assert_eq!(a.identifiers, vec![email("a@example.com")]);
        assert_eq!(a.clone().id("r").request_id, "r");
        let maybe = work(RequestKind::Delete)
            .with_raw_if(IdentifierType::CustomerId, None)
            .with_raw_if(IdentifierType::Email, Some("a@example.com"));
        assert_eq!(
            maybe.identifiers,
            vec![with_raw(IdentifierType::Email, "a@example.com")]
        );
        let raw = with_raw(IdentifierType::Email, "a@example.com");
        assert_eq!(raw.sha256, a.identifiers[0].sha256);
        assert_eq!(
            raw.raw.as_ref().map(RawValue::expose),
            Some("a@example.com")
        );
    }
}
