//! Running statement templates through a vendor's asynchronous SQL API (Snowflake's SQL API,
//! BigQuery's `jobs.query`): submit every run of each item's statement, wait for them within
//! the connector's `max_wait`, settle each item from the rows its runs affected, and read back
//! with the right's check query. A connector implements [`StatementApi`] (its HTTP calls and
//! the words of its evidence) and hands [`apply`] and [`verify`] to the `Connector` trait.
//!
//! # Outcomes
//!
//! `FLAGGED` for an opt-out, limit or opt-in that changed rows, `DELETED` for a deletion that
//! removed some, `NOT_FOUND` when no row matched, `NOT_APPLICABLE` when the person has no
//! identifier the statement matches on or the kind has no statement. A run still running when
//! the wait ends leaves its item `PENDING` with the run's handle as evidence. After a retryable
//! failure the rest of the batch is not submitted and carries that error.
//!
//! Read-back: a completion whose runs were left running reads them back first (failed →
//! `FAILED`, still running → `PENDING`); then, for an item whose statement ran, the right's
//! check query counts the subject's rows that do not comply yet: `0` is `VERIFIED`, more is
//! `FAILED`; a check that cannot run or finish in time leaves the item `PENDING`. Without a
//! check the status stays as it was, or `UNVERIFIABLE` once the runs have finished.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::connector::{
    BatchResult, Completion, ConnectorError, Evidence, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;

use super::rights::{
    not_configured, statement_ran, unbindable, ConfiguredSql, RightSettings, Rights,
};
use super::template::{Dialect, Execution};
use crate::poll::{self, DefaultWaits, JobWaits, PolledStatus, Waits};
use crate::settings::Fields;

pub use super::rights::EVIDENCE_STATEMENT;
/// Evidence key: SHA-256 of the statement's configured text.
pub const EVIDENCE_STATEMENT_SHA256: &str = "statement_sha256";
/// Evidence key: rows the statement affected, summed over its runs.
pub const EVIDENCE_ROWS_AFFECTED: &str = "rows_affected";

/// What replaces a bound value that a vendor repeats in its message.
pub const REDACTED: &str = "<identifier>";

/// A finished run's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// The vendor's handle of the run (statement handle, job id).
    pub handle: String,
    /// Rows the statement inserted, updated or deleted, when it was DML.
    pub rows_affected: Option<u64>,
    /// Each column's name and the vendor's type name.
    pub columns: Vec<(String, String)>,
    /// The first page's rows, each value as text (`None` for SQL `NULL`).
    pub rows: Vec<Vec<Option<String>>>,
}

impl QueryResult {
    /// The `(name, type)` of each column a result's schema lists as JSON objects with `name`
    /// and `type` (BigQuery's `schema.fields`, Snowflake's `resultSetMetaData.rowType`); a
    /// schema that is not a list has no columns.
    pub fn columns_of(schema: &serde_json::Value) -> Vec<(String, String)> {
        schema
            .as_array()
            .into_iter()
            .flatten()
            .map(|column| {
                let text = |key: &str| column[key].as_str().unwrap_or_default().to_owned();
                (text("name"), text("type"))
            })
            .collect()
    }

    /// The one integer a check query returns (how many rows do not comply yet); `NULL` is 0.
    /// `is_integer` says which of the vendor's type names are integers. A result of another
    /// shape is an error saying what it was.
    pub fn count(&self, is_integer: impl Fn(&str) -> bool) -> Result<u64, String> {
        match (self.columns.as_slice(), self.rows.as_slice()) {
            ([(_, kind)], [row]) if is_integer(kind) && row.len() == 1 => match &row[0] {
                None => Ok(0),
                Some(text) => text
                    .parse::<u64>()
                    .map_err(|_| format!("it returned `{text}`, not a count")),
            },
            ([(_, kind)], _) if !is_integer(kind) => Err(format!("it returns one {kind} column")),
            (columns, rows) if columns.len() != 1 => Err(format!(
                "it returns {} columns ({} rows)",
                columns.len(),
                rows.len()
            )),
            (_, rows) => Err(format!("it returns {} rows", rows.len())),
        }
    }
}

/// Where a run stands after its submission or a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Finished.
    Done(QueryResult),
    /// Still running, with its handle.
    Running(String),
    /// The statement's own failure (transient where running it again may succeed).
    Failed(ConnectorError),
}

/// The words a vendor's evidence and logs use for its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vocabulary {
    /// The vendor, e.g. `Snowflake`.
    pub vendor: &'static str,
    /// What one run is called, e.g. `statement` or `job`.
    pub run: &'static str,
    /// Evidence key of the runs' handles, comma-separated.
    pub handles_key: &'static str,
    /// Evidence key of the handles still running when the call's wait ended, read back by
    /// [`verify`].
    pub running_key: &'static str,
}

/// What the runs loop needs of a statement-running recipient's configuration: whose it is, the
/// SQL of each right, and how long to wait for running runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// The recipient id, for logs and error texts.
    pub recipient_id: String,
    /// The SQL of every configured right.
    pub rights: Rights,
    /// Wait between two reads of running runs.
    pub poll_interval: Duration,
    /// Longest wait for running runs inside one call.
    pub max_wait: Duration,
}

impl RunSettings {
    /// Reads `recipient`'s `rights` in `dialect` (see [`Rights::configure`]) with its
    /// `waits`: `settings.poll_interval_ms` (at least 1) and `settings.max_wait_ms` (0 does not
    /// wait), each `defaults`' where left out; errors name the field at fault.
    pub fn configure(
        recipient: &RecipientConfig,
        dialect: &dyn Dialect,
        rights: &RightSettings,
        waits: &JobWaits,
        defaults: DefaultWaits,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        let Waits {
            poll_interval,
            max_wait,
        } = waits.configure(&fields, defaults)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            rights: Rights::configure(&fields, &recipient.request_kinds, dialect, rights)?,
            poll_interval,
            max_wait,
        })
    }
}

/// A vendor's asynchronous SQL API, as [`apply`] and [`verify`] use it.
#[async_trait]
pub trait StatementApi: Sync {
    /// The words of this vendor's evidence and logs.
    fn vocabulary(&self) -> &Vocabulary;
    /// Whose runs these are, the SQL of each right, and how long to wait for them.
    fn runs(&self) -> &RunSettings;
    /// Adds to `evidence` where the statements ran (account, project, how it authenticated).
    fn describe(&self, evidence: &mut Evidence);
    /// Whether the vendor's column type `name` is an integer (what a check must return).
    fn is_integer_type(&self, name: &str) -> bool;
    /// Submits run `run` of `sql` bound with `execution`; `request_key` makes the vendor's
    /// request id, so a resubmission of the same run is recognised. `Err` means the call did
    /// not go through.
    async fn submit(
        &self,
        sql: &ConfiguredSql,
        request_key: &str,
        run: usize,
        execution: &Execution,
    ) -> Result<RunState, ConnectorError>;
    /// Where the run `handle` stands; `execution` are its values, to redact from messages.
    async fn read(&self, handle: &str, execution: &Execution) -> Result<RunState, ConnectorError>;
}

/// One submitted run of a statement and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The values it was bound with (to redact them from the vendor's messages).
    pub execution: Execution,
    /// Its latest known state.
    pub state: RunState,
}

/// Runs being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Runs(Vec<Run>);

impl PolledStatus for Runs {
    fn is_final(&self) -> bool {
        !self
            .0
            .iter()
            .any(|run| matches!(run.state, RunState::Running(_)))
    }

    fn name(&self) -> &str {
        if self.is_final() {
            "finished"
        } else {
            "running"
        }
    }
}

/// One work item on its way through a batch.
enum Item {
    /// Settled without waiting for the vendor.
    Settled(Result<Completion, ConnectorError>),
    /// Its runs were submitted.
    Submitted {
        /// Index of its first run in the batch's run list.
        first: usize,
        /// How many runs.
        count: usize,
    },
}

/// Applies each item's statement (by its request kind), one vendor request per run, then waits
/// for the runs still running within the API's `max_wait`; one result per item, in batch order
/// (see the module documentation for the outcomes).
pub async fn apply(api: &dyn StatementApi, batch: &[SuppressionWork]) -> BatchResult {
    let mut items = Vec::with_capacity(batch.len());
    let mut runs: Vec<Run> = Vec::new();
    let mut halted: Option<ConnectorError> = None;
    for work in batch {
        if let Some(error) = &halted {
            let item = match api.runs().rights.right(work.kind) {
                Some(_) => Item::Settled(Err(error.clone())),
                None => Item::Settled(Ok(not_configured(work.kind))),
            };
            items.push(item);
            continue;
        }
        let first = runs.len();
        match submit(api, work, &mut runs).await {
            Ok(count) => items.push(Item::Submitted { first, count }),
            Err(settled) => {
                runs.truncate(first);
                if let Err(error) = &settled {
                    if error.is_retryable() {
                        halted = Some(error.clone());
                    }
                }
                items.push(Item::Settled(settled));
            }
        }
    }
    let (runs, poll_error) = wait_for(api, runs).await;
    Ok(items
        .into_iter()
        .zip(batch)
        .map(|(item, work)| match item {
            Item::Settled(result) => result,
            Item::Submitted { first, count } => {
                settle(api, work, &runs[first..first + count], poll_error.as_ref())
            }
        })
        .collect())
}

/// Submits every run of one item's statement; `Err` settles the item.
async fn submit(
    api: &dyn StatementApi,
    work: &SuppressionWork,
    runs: &mut Vec<Run>,
) -> Result<usize, Result<Completion, ConnectorError>> {
    let Some(right) = api.runs().rights.right(work.kind) else {
        return Err(Ok(not_configured(work.kind)));
    };
    let statement = &right.statement;
    let executions = statement
        .template
        .bind(work)
        .map_err(|why| unbindable(work, statement, why))?;
    let count = executions.len();
    for (number, execution) in executions.into_iter().enumerate() {
        match api
            .submit(statement, &work.request_id, number, &execution)
            .await
        {
            Ok(RunState::Failed(error)) | Err(error) => return Err(Err(error)),
            Ok(state) => runs.push(Run { execution, state }),
        }
    }
    Ok(count)
}

/// The completion of an item whose runs were all submitted and waited for.
fn settle(
    api: &dyn StatementApi,
    work: &SuppressionWork,
    runs: &[Run],
    poll_error: Option<&String>,
) -> Result<Completion, ConnectorError> {
    let Some(right) = api.runs().rights.right(work.kind) else {
        return Err(ConnectorError::Permanent(
            "internal error: a submitted item has no statement".into(),
        ));
    };
    let words = api.vocabulary();
    let mut handles = Vec::new();
    let mut running = Vec::new();
    let mut affected = 0;
    for run in runs {
        match &run.state {
            RunState::Failed(error) => return Err(error.clone()),
            RunState::Running(handle) => {
                handles.push(handle.clone());
                running.push(handle.clone());
            }
            RunState::Done(result) => {
                handles.push(result.handle.clone());
                affected += result.rows_affected.unwrap_or(0);
            }
        }
    }
    let mut evidence = Evidence::new();
    evidence.insert(EVIDENCE_STATEMENT.into(), right.statement.field.clone());
    evidence.insert(
        EVIDENCE_STATEMENT_SHA256.into(),
        right.statement.sha256.clone(),
    );
    evidence.insert(words.handles_key.into(), handles.join(","));
    evidence.insert("executions".into(), runs.len().to_string());
    api.describe(&mut evidence);
    let applied = match work.kind {
        RequestKind::Delete => ConfirmationAction::Deleted,
        _ => ConfirmationAction::Flagged,
    };
    if !running.is_empty() {
        evidence.insert(words.running_key.into(), running.join(","));
        evidence.insert(
            EVIDENCE_ROWS_AFFECTED.into(),
            format!("unknown: {}s still running", words.run),
        );
        if let Some(error) = poll_error {
            evidence.insert("last_read_error".into(), error.clone());
        }
        return Ok(
            Completion::new(applied, evidence).with_verification(VerificationStatus::Pending)
        );
    }
    evidence.insert(EVIDENCE_ROWS_AFFECTED.into(), affected.to_string());
    let action = if affected == 0 {
        evidence.insert(
            "reason".into(),
            "the statement matched no row of the subject".into(),
        );
        ConfirmationAction::NotFound
    } else {
        applied
    };
    let verification = if right.check.is_some() {
        VerificationStatus::Pending
    } else {
        VerificationStatus::Unverifiable
    };
    Ok(Completion::new(action, evidence).with_verification(verification))
}

/// The read-back of `completion` for `work` (see the module documentation).
pub async fn verify(
    api: &dyn StatementApi,
    work: &SuppressionWork,
    completion: &Completion,
) -> VerificationStatus {
    let running_key = api.vocabulary().running_key;
    if let Some(running) = completion.evidence.get(running_key) {
        let handles: Vec<&str> = running.split(',').filter(|h| !h.is_empty()).collect();
        if let Some(status) = read_runs(api, &handles).await {
            return status;
        }
    }
    let check = api
        .runs()
        .rights
        .right(work.kind)
        .and_then(|right| right.check.as_ref());
    match check {
        Some(check) if statement_ran(completion) => read_back(api, check, work).await,
        None if completion.evidence.contains_key(running_key) => VerificationStatus::Unverifiable,
        _ => completion.verification,
    }
}

/// Reads every running run (at least once) until none is running or the API's `max_wait` has
/// passed; the runs as last read, and the last read error if the wait ended on one.
async fn wait_for(api: &dyn StatementApi, runs: Vec<Run>) -> (Vec<Run>, Option<String>) {
    let current = Mutex::new(Runs(runs));
    if lock(&current).is_final() {
        return (into_runs(current), None);
    }
    let outcome = poll::wait_until_final(
        || {
            let current = &current;
            async move {
                let mut runs = lock(current).clone();
                let mut failed_read = None;
                for run in &mut runs.0 {
                    if let RunState::Running(handle) = &run.state {
                        match api.read(handle, &run.execution).await {
                            Ok(state) => run.state = state,
                            Err(error) => failed_read = Some(error),
                        }
                    }
                }
                *lock(current) = runs.clone();
                match failed_read {
                    Some(error) => Err(error),
                    None => Ok(runs),
                }
            }
        },
        api.runs().poll_interval,
        api.runs().max_wait,
    )
    .await;
    let last_error = match outcome {
        poll::PollOutcome::Finished(_) => None,
        poll::PollOutcome::StillRunning { last_error, .. } => last_error,
    };
    (into_runs(current), last_error)
}

fn lock(runs: &Mutex<Runs>) -> std::sync::MutexGuard<'_, Runs> {
    runs.lock().unwrap_or_else(|e| e.into_inner())
}

fn into_runs(runs: Mutex<Runs>) -> Vec<Run> {
    runs.into_inner().unwrap_or_else(|e| e.into_inner()).0
}

/// Reads back the runs `handles` (left running by an earlier call): any failed is `FAILED`,
/// any still running (or unreadable) is `PENDING`, all finished is `None` (the caller goes on
/// to the check query).
async fn read_runs(api: &dyn StatementApi, handles: &[&str]) -> Option<VerificationStatus> {
    let words = api.vocabulary();
    for handle in handles {
        match api.read(handle, &Vec::new()).await {
            Ok(RunState::Done(_)) => {}
            Ok(RunState::Running(_)) => return Some(VerificationStatus::Pending),
            Ok(RunState::Failed(error)) => {
                tracing::warn!(
                    recipient = %api.runs().recipient_id,
                    %handle,
                    "{} {} left running has failed: {error}",
                    words.vendor,
                    words.run
                );
                return Some(VerificationStatus::Failed);
            }
            Err(error) => {
                tracing::warn!(
                    recipient = %api.runs().recipient_id,
                    %handle,
                    "{} {} status read failed: {error}",
                    words.vendor,
                    words.run
                );
                return Some(VerificationStatus::Pending);
            }
        }
    }
    None
}

/// The verification a count of non-complying rows stands for.
fn verification_of(remaining: u64) -> VerificationStatus {
    if remaining == 0 {
        VerificationStatus::Verified
    } else {
        VerificationStatus::Failed
    }
}

/// Runs `check` for `work` (a fresh request id each time, so the vendor runs it again) and
/// says what it proves.
async fn read_back(
    api: &dyn StatementApi,
    check: &ConfiguredSql,
    work: &SuppressionWork,
) -> VerificationStatus {
    let vendor = api.vocabulary().vendor;
    match count(api, check, work).await {
        Ok(remaining) => {
            if remaining != 0 {
                tracing::warn!(
                    recipient = %api.runs().recipient_id,
                    request_id = %work.request_id,
                    field = %check.field,
                    remaining,
                    "{vendor} read-back found rows that do not comply"
                );
            }
            verification_of(remaining)
        }
        Err(error) => {
            tracing::warn!(
                recipient = %api.runs().recipient_id,
                request_id = %work.request_id,
                field = %check.field,
                "{vendor} read-back did not complete: {error}"
            );
            VerificationStatus::Pending
        }
    }
}

/// The sum of the counts `check` returns over its runs for `work`.
async fn count(
    api: &dyn StatementApi,
    check: &ConfiguredSql,
    work: &SuppressionWork,
) -> Result<u64, ConnectorError> {
    let executions = check.template.bind(work).map_err(|unbindable| {
        ConnectorError::Permanent(format!(
            "{} cannot bind the request's identifiers: {unbindable:?}",
            check.field
        ))
    })?;
    let key = format!("{}/check/{}", work.request_id, unique_suffix());
    let mut runs = Vec::with_capacity(executions.len());
    for (number, execution) in executions.into_iter().enumerate() {
        let state = api.submit(check, &key, number, &execution).await?;
        runs.push(Run { execution, state });
    }
    let (runs, last_error) = wait_for(api, runs).await;
    let mut total = 0;
    for run in runs {
        match run.state {
            RunState::Done(result) => {
                total += result
                    .count(|name| api.is_integer_type(name))
                    .map_err(|shape| {
                        ConnectorError::Permanent(format!(
                            "recipients.{}.{} must return one integer column (how many of the \
                             subject's rows do not comply yet, e.g. SELECT COUNT(*) …), but {shape}",
                            api.runs().recipient_id,
                            check.field
                        ))
                    })?
            }
            RunState::Failed(error) => return Err(error),
            RunState::Running(handle) => {
                return Err(ConnectorError::Transient(format!(
                    "the check {} {handle} was still running after max_wait_ms{}",
                    api.vocabulary().run,
                    last_error
                        .map(|e| format!(" (last read error: {e})"))
                        .unwrap_or_default()
                )))
            }
        }
    }
    Ok(total)
}

/// Nanoseconds since the epoch: makes each check's request id new.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The request id of one run: a UUID derived from the Hush request, the setting and the run,
/// so that a resubmission after a lost answer is recognised by the vendor and not run twice.
pub fn request_uuid(request_id: &str, field: &str, run: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("hush\n{request_id}\n{field}\n{run}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8: custom
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `text` with every non-empty value of `bound` replaced by [`REDACTED`].
pub fn redact(text: &str, bound: &[&str]) -> String {
    let mut text = text.to_owned();
    for value in bound.iter().filter(|v| !v.is_empty()) {
        text = text.replace(value, REDACTED);
    }
    text
}

/// The values of `execution` as text, for [`redact`].
pub fn bound_values(execution: &Execution) -> Vec<&str> {
    execution.iter().flatten().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::sql::rights::RightSql;
    use crate::sql::template::Template;
    use crate::sql::Plain;
    use crate::testing::{email, hashed, work, WorkExt};
    use hush_contracts::events::IdentifierType;

    const WORDS: Vocabulary = Vocabulary {
        vendor: "Warehouse",
        run: "statement",
        handles_key: "handles",
        running_key: "running",
    };

    fn sql(field: &str, text: &str) -> ConfiguredSql {
        ConfiguredSql {
            field: field.into(),
            sha256: format!("sha-of-{field}"),
            template: Template::parse(text, &Plain).unwrap(),
        }
    }

    /// A vendor answering from scripts: each submission and each read takes the next answer.
    struct Scripted {
        runs: RunSettings,
        submits: Mutex<VecDeque<Result<RunState, ConnectorError>>>,
        reads: Mutex<VecDeque<Result<RunState, ConnectorError>>>,
        submitted: Mutex<Vec<(String, String, usize, Execution)>>,
    }

    impl Scripted {
        fn new(check: bool) -> Self {
            let right = |name: &str| RightSql {
                statement: sql(
                    &format!("settings.{name}.statement"),
                    "UPDATE c SET f = TRUE WHERE e = :email_sha256",
                ),
                check: check.then(|| {
                    sql(
                        &format!("settings.{name}.check"),
                        "SELECT COUNT(*) FROM c WHERE e = :email_sha256 AND NOT f",
                    )
                }),
            };
            Self {
                runs: RunSettings {
                    recipient_id: "wh".into(),
                    rights: Rights {
                        opt_out: Some(right("opt_out")),
                        limit: None,
                        delete: Some(right("delete")),
                        opt_in: None,
                    },
                    poll_interval: Duration::from_millis(1),
                    max_wait: Duration::from_millis(20),
                },
                submits: Mutex::default(),
                reads: Mutex::default(),
                submitted: Mutex::default(),
            }
        }

        fn on_submit(
            self,
            answers: impl IntoIterator<Item = Result<RunState, ConnectorError>>,
        ) -> Self {
            self.submits.lock().unwrap().extend(answers);
            self
        }

        fn on_read(
            self,
            answers: impl IntoIterator<Item = Result<RunState, ConnectorError>>,
        ) -> Self {
            self.reads.lock().unwrap().extend(answers);
            self
        }
    }

    #[async_trait]
    impl StatementApi for Scripted {
        fn vocabulary(&self) -> &Vocabulary {
            &WORDS
        }

        fn runs(&self) -> &RunSettings {
            &self.runs
        }

        fn describe(&self, evidence: &mut Evidence) {
            evidence.insert("account".into(), "acme".into());
        }

        fn is_integer_type(&self, name: &str) -> bool {
            name == "INT"
        }

        async fn submit(
            &self,
            sql: &ConfiguredSql,
            request_key: &str,
            run: usize,
            execution: &Execution,
        ) -> Result<RunState, ConnectorError> {
            self.submitted.lock().unwrap().push((
                sql.field.clone(),
                request_key.to_owned(),
                run,
                execution.clone(),
            ));
            self.submits
                .lock()
                .unwrap()
                .pop_front()
                .expect("a scripted submission answer")
        }

        async fn read(
            &self,
            handle: &str,
            _execution: &Execution,
        ) -> Result<RunState, ConnectorError> {
            // Once the script is read out, the run keeps running.
            self.reads
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(RunState::Running(handle.to_owned())))
        }
    }

    fn done(handle: &str, rows_affected: u64) -> Result<RunState, ConnectorError> {
        Ok(RunState::Done(QueryResult {
            handle: handle.into(),
            rows_affected: Some(rows_affected),
            columns: vec![],
            rows: vec![],
        }))
    }

    fn counted(handle: &str, count: &str) -> Result<RunState, ConnectorError> {
        Ok(RunState::Done(QueryResult {
            handle: handle.into(),
            rows_affected: None,
            columns: vec![("COUNT".into(), "INT".into())],
            rows: vec![vec![Some(count.into())]],
        }))
    }

    fn opt_out(address: &str) -> SuppressionWork {
        work(RequestKind::OptOutSaleShare).with(email(address))
    }

    #[tokio::test]
    async fn each_run_is_submitted_and_the_rows_it_changed_settle_the_item() {
        let api = Scripted::new(true).on_submit([done("h1", 1), done("h2", 2), done("h3", 0)]);
        let two_emails = opt_out("a@example.com").with(email("b@example.com"));
        let nobody = work(RequestKind::Delete).with(email("c@example.com"));
        let results = apply(&api, &[two_emails.clone(), nobody]).await.unwrap();
        assert_eq!(results.len(), 2);
        let flagged = results[0].as_ref().unwrap();
        assert_eq!(flagged.action, ConfirmationAction::Flagged);
        assert_eq!(flagged.verification, VerificationStatus::Pending);
        assert_eq!(flagged.evidence[EVIDENCE_ROWS_AFFECTED], "3");
        assert_eq!(flagged.evidence["handles"], "h1,h2");
        assert_eq!(flagged.evidence["executions"], "2");
        assert_eq!(flagged.evidence["account"], "acme");
        assert_eq!(
            flagged.evidence[EVIDENCE_STATEMENT],
            "settings.opt_out.statement"
        );
        let not_found = results[1].as_ref().unwrap();
        assert_eq!(not_found.action, ConfirmationAction::NotFound);
        let submitted = api.submitted.lock().unwrap().clone();
        assert_eq!(submitted.len(), 3);
        assert_eq!(submitted[1].1, two_emails.request_id);
        assert_eq!(submitted[1].2, 1, "the second run is numbered 1");
        assert_eq!(
            submitted[1].3,
            vec![Some(two_emails.identifiers[1].sha256.clone())]
        );
    }

    #[tokio::test]
    async fn items_that_cannot_run_are_settled_without_a_call() {
        let api = Scripted::new(false);
        let phone_only =
            work(RequestKind::OptOutSaleShare).with(hashed(IdentifierType::Phone, "+14155550100"));
        let limit = work(RequestKind::LimitSensitive).with(email("a@example.com"));
        let results = apply(&api, &[phone_only, limit]).await.unwrap();
        let answers: Vec<(ConfirmationAction, &str)> = results
            .iter()
            .map(|r| {
                let completion = r.as_ref().unwrap();
                (completion.action, completion.evidence["reason"].as_str())
            })
            .collect();
        assert_eq!(
            answers,
            vec![
                (
                    ConfirmationAction::NotFound,
                    "no EMAIL identifier: settings.opt_out.statement matches on EMAIL"
                ),
                (
                    ConfirmationAction::NotApplicable,
                    "no statement is configured for LIMIT_SENSITIVE (settings.limit)"
                ),
            ]
        );
        assert!(api.submitted.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn after_a_retryable_failure_the_rest_of_the_batch_carries_it() {
        let busy = ConnectorError::Transient("HTTP 503".into());
        let api = Scripted::new(false).on_submit([Err(busy.clone())]);
        let limit = work(RequestKind::LimitSensitive).with(email("c@example.com"));
        let batch = [opt_out("a@example.com"), opt_out("b@example.com"), limit];
        let results = apply(&api, &batch).await.unwrap();
        assert_eq!(results[0], Err(busy.clone()));
        assert_eq!(results[1], Err(busy));
        assert_eq!(
            results[2].as_ref().map(|c| c.action),
            Ok(ConfirmationAction::NotApplicable)
        );
        assert_eq!(api.submitted.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_statement_fails_only_its_item() {
        let refused = ConnectorError::Permanent("no such column".into());
        let api =
            Scripted::new(false).on_submit([Ok(RunState::Failed(refused.clone())), done("h2", 1)]);
        let results = apply(&api, &[opt_out("a@example.com"), opt_out("b@example.com")])
            .await
            .unwrap();
        assert_eq!(results[0], Err(refused));
        assert_eq!(
            results[1].as_ref().map(|c| c.action),
            Ok(ConfirmationAction::Flagged)
        );
    }

    #[tokio::test]
    async fn a_run_still_running_after_the_wait_leaves_its_item_pending_with_its_handle() {
        let api = Scripted::new(false)
            .on_submit([Ok(RunState::Running("h1".into()))])
            .on_read([Err(ConnectorError::Transient("read timed out".into()))]);
        let results = apply(&api, &[opt_out("a@example.com")]).await.unwrap();
        let pending = results[0].as_ref().unwrap();
        assert_eq!(pending.action, ConfirmationAction::Flagged);
        assert_eq!(pending.verification, VerificationStatus::Pending);
        assert_eq!(pending.evidence["running"], "h1");
        assert_eq!(
            pending.evidence[EVIDENCE_ROWS_AFFECTED],
            "unknown: statements still running"
        );
    }

    #[tokio::test]
    async fn a_run_that_finishes_while_waited_for_settles_normally() {
        let api = Scripted::new(false)
            .on_submit([Ok(RunState::Running("h1".into()))])
            .on_read([done("h1", 4)]);
        let results = apply(&api, &[opt_out("a@example.com")]).await.unwrap();
        let flagged = results[0].as_ref().unwrap();
        assert_eq!(flagged.evidence[EVIDENCE_ROWS_AFFECTED], "4");
        assert_eq!(flagged.verification, VerificationStatus::Unverifiable);
        assert!(!flagged.evidence.contains_key("running"));
    }

    #[tokio::test]
    async fn the_check_counts_rows_that_do_not_comply() {
        let item = opt_out("a@example.com");
        let ran = Completion::new(ConfirmationAction::Flagged, Evidence::new());
        let clean = Scripted::new(true).on_submit([counted("c1", "0")]);
        assert_eq!(
            verify(&clean, &item, &ran).await,
            VerificationStatus::Verified
        );
        let submitted = clean.submitted.lock().unwrap().clone();
        assert_eq!(submitted[0].0, "settings.opt_out.check");
        assert!(
            submitted[0]
                .1
                .starts_with(&format!("{}/check/", item.request_id)),
            "a check gets a fresh request key"
        );
        let left = Scripted::new(true).on_submit([counted("c1", "2")]);
        assert_eq!(verify(&left, &item, &ran).await, VerificationStatus::Failed);
        let wrong_shape = Scripted::new(true).on_submit([Ok(RunState::Done(QueryResult {
            handle: "c1".into(),
            rows_affected: None,
            columns: vec![("EMAIL".into(), "TEXT".into())],
            rows: vec![],
        }))]);
        assert_eq!(
            verify(&wrong_shape, &item, &ran).await,
            VerificationStatus::Pending
        );
    }

    #[tokio::test]
    async fn runs_left_running_are_read_back_before_the_check() {
        let item = opt_out("a@example.com");
        let mut evidence = Evidence::new();
        evidence.insert("running".into(), "h1".into());
        let left = Completion::new(ConfirmationAction::Flagged, evidence)
            .with_verification(VerificationStatus::Pending);
        let failed = Scripted::new(true)
            .on_read([Ok(RunState::Failed(ConnectorError::Permanent("x".into())))]);
        assert_eq!(
            verify(&failed, &item, &left).await,
            VerificationStatus::Failed
        );
        let running = Scripted::new(true).on_read([Ok(RunState::Running("h1".into()))]);
        assert_eq!(
            verify(&running, &item, &left).await,
            VerificationStatus::Pending
        );
        let finished_unchecked = Scripted::new(false).on_read([done("h1", 1)]);
        assert_eq!(
            verify(&finished_unchecked, &item, &left).await,
            VerificationStatus::Unverifiable
        );
        let finished_checked = Scripted::new(true)
            .on_read([done("h1", 1)])
            .on_submit([counted("c1", "0")]);
        assert_eq!(
            verify(&finished_checked, &item, &left).await,
            VerificationStatus::Verified
        );
    }

    #[tokio::test]
    async fn an_item_whose_statement_did_not_run_keeps_its_status() {
        let api = Scripted::new(true);
        let skipped = Completion::not_found("no EMAIL identifier");
        assert_eq!(
            verify(&api, &opt_out("a@example.com"), &skipped).await,
            skipped.verification
        );
        assert!(api.submitted.lock().unwrap().is_empty());
    }

    #[test]
    fn columns_are_read_by_name_and_type_and_a_missing_schema_has_none() {
        let schema = serde_json::json!([{"name": "COUNT(*)", "type": "fixed"}, {"name": "e"}]);
        assert_eq!(
            QueryResult::columns_of(&schema),
            vec![
                ("COUNT(*)".to_owned(), "fixed".to_owned()),
                ("e".to_owned(), String::new())
            ]
        );
        assert!(QueryResult::columns_of(&serde_json::Value::Null).is_empty());
    }

    #[test]
    fn a_check_must_return_one_integer() {
        let result = |columns: &[(&str, &str)], rows: Vec<Vec<Option<&str>>>| QueryResult {
            handle: "h".into(),
            rows_affected: None,
            columns: columns
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
            rows: rows
                .into_iter()
                .map(|r| r.into_iter().map(|v| v.map(str::to_owned)).collect())
                .collect(),
        };
        let int = |t: &str| t == "INT";
        assert_eq!(
            result(&[("n", "INT")], vec![vec![Some("4")]]).count(int),
            Ok(4)
        );
        assert_eq!(result(&[("n", "INT")], vec![vec![None]]).count(int), Ok(0));
        assert_eq!(
            result(&[("n", "INT")], vec![vec![Some("-1")]]).count(int),
            Err("it returned `-1`, not a count".into())
        );
        assert_eq!(
            result(&[("n", "TEXT")], vec![vec![Some("x")]]).count(int),
            Err("it returns one TEXT column".into())
        );
        assert_eq!(
            result(&[("a", "INT"), ("b", "INT")], vec![]).count(int),
            Err("it returns 2 columns (0 rows)".into())
        );
        assert_eq!(
            result(&[("n", "INT")], vec![vec![Some("1")], vec![Some("2")]]).count(int),
            Err("it returns 2 rows".into())
        );
    }

    #[test]
    fn request_uuids_are_stable_per_run_and_shaped_like_uuids() {
        let a = request_uuid("req-1", "settings.delete.statement", 0);
        assert_eq!(a, request_uuid("req-1", "settings.delete.statement", 0));
        assert_ne!(a, request_uuid("req-1", "settings.delete.statement", 1));
        assert_ne!(a, request_uuid("req-1", "settings.delete.check", 0));
        assert_ne!(a, request_uuid("req-2", "settings.delete.statement", 0));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "8");
    }

    #[test]
    fn bound_values_are_redacted_from_vendor_text() {
        let execution = vec![Some("jane@example.com".into()), None, Some(String::new())];
        assert_eq!(
            redact(
                "Numeric value 'jane@example.com' is not recognized",
                &bound_values(&execution)
            ),
            "Numeric value '<identifier>' is not recognized"
        );
    }

    #[test]
    fn run_settings_read_the_rights_and_waits_and_name_the_field_at_fault() {
        let block: RecipientConfig = toml::from_str(
            "id = \"wh\"\nkind = \"k\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://h\"\n\
             request_kinds = [\"DELETE\"]\n",
        )
        .unwrap();
        let delete = crate::sql::rights::StatementSettings {
            statement: "DELETE FROM c WHERE e = :email_sha256".into(),
            check: None,
        };
        let rights = RightSettings {
            delete: Some(delete),
            ..RightSettings::default()
        };
        let unset = JobWaits::default();
        let defaults = DefaultWaits {
            poll_interval_ms: 5,
            max_wait_ms: 0,
        };
        let runs = RunSettings::configure(&block, &Plain, &rights, &unset, defaults).unwrap();
        assert_eq!(runs.recipient_id, "wh");
        assert_eq!(runs.poll_interval, Duration::from_millis(5));
        assert_eq!(runs.max_wait, Duration::ZERO);
        assert!(runs.rights.right(RequestKind::Delete).is_some());
        let set = JobWaits {
            poll_interval_ms: Some(7),
            max_wait_ms: Some(9),
        };
        let runs = RunSettings::configure(&block, &Plain, &rights, &set, defaults).unwrap();
        assert_eq!(
            runs.poll_interval,
            Duration::from_millis(7),
            "set, not default"
        );
        assert_eq!(runs.max_wait, Duration::from_millis(9), "set, not default");
        let no_pause = JobWaits {
            poll_interval_ms: Some(0),
            max_wait_ms: None,
        };
        let refused =
            RunSettings::configure(&block, &Plain, &rights, &no_pause, defaults).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("recipients.wh.settings.poll_interval_ms"),
            "{refused}"
        );
        let without_delete = RightSettings {
            delete: None,
            ..rights
        };
        let missing =
            RunSettings::configure(&block, &Plain, &without_delete, &unset, defaults).unwrap_err();
        assert!(missing.to_string().contains("settings.delete"), "{missing}");
    }
}
