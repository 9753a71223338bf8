//! Waiting for submitted statements, and read-back.
//!
//! [`wait_for`] reads every running statement until all have finished or the connector's
//! `max_wait_ms` has passed. [`read_back`] runs the right's configured check query, which counts
//! the subject's rows that do not comply yet: `0` is `VERIFIED`, more is `FAILED`; a check that
//! cannot run or finish in time leaves the item `PENDING`. [`read_statements`] reads back the
//! statements a confirmation left running.

use std::sync::Mutex;

use hush_connector_kit::poll::{self, PolledStatus};
use hush_contracts::connector::{ConnectorError, SuppressionWork};
use hush_contracts::events::VerificationStatus;

use crate::client::SnowflakeClient;
use crate::config::ConfiguredSql;
use crate::request::Execution;
use crate::response::Statement;

/// One submitted run of a statement and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The values it was bound with (to redact them from Snowflake's messages).
    pub execution: Execution,
    /// Its latest known state.
    pub state: Statement,
}

/// Runs being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs(pub Vec<Run>);

impl PolledStatus for Runs {
    fn is_final(&self) -> bool {
        !self
            .0
            .iter()
            .any(|run| matches!(run.state, Statement::Running(_)))
    }

    fn name(&self) -> &str {
        if self.is_final() {
            "finished"
        } else {
            "running"
        }
    }
}

/// Reads every running run (at least once) until none is running or the connector's
/// `max_wait` has passed; the runs as last read, and the last read error if the wait ended on
/// one.
pub async fn wait_for(client: &SnowflakeClient, runs: Vec<Run>) -> (Vec<Run>, Option<String>) {
    let current = Mutex::new(Runs(runs));
    if lock(&current).is_final() {
        return (into_runs(current), None);
    }
    let config = client.config();
    let outcome = poll::wait_until_final(
        || {
            let current = &current;
            async move {
                let mut runs = lock(current).clone();
                let mut failed_read = None;
                for run in &mut runs.0 {
                    if let Statement::Running(handle) = &run.state {
                        match client.status(handle, &run.execution).await {
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
        config.poll_interval,
        config.max_wait,
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

/// Reads back the statements `handles` (left running by an earlier call): any failed is
/// `FAILED`, any still running (or unreadable) is `PENDING`, all finished is `None` (the
/// caller goes on to the check query).
pub async fn read_statements(
    client: &SnowflakeClient,
    handles: &[&str],
) -> Option<VerificationStatus> {
    for handle in handles {
        match client.status(handle, &Vec::new()).await {
            Ok(Statement::Done(_)) => {}
            Ok(Statement::Running(_)) => return Some(VerificationStatus::Pending),
            Ok(Statement::Failed(error)) => {
                tracing::warn!(
                    recipient = %client.config().recipient_id,
                    %handle,
                    "Snowflake statement left running has failed: {error}"
                );
                return Some(VerificationStatus::Failed);
            }
            Err(error) => {
                tracing::warn!(
                    recipient = %client.config().recipient_id,
                    %handle,
                    "Snowflake statement status read failed: {error}"
                );
                return Some(VerificationStatus::Pending);
            }
        }
    }
    None
}

/// The verification a count of non-complying rows stands for.
pub fn verification_of(remaining: u64) -> VerificationStatus {
    if remaining == 0 {
        VerificationStatus::Verified
    } else {
        VerificationStatus::Failed
    }
}

/// Runs `check` for `work` (a fresh request id each time, so Snowflake runs it again) and
/// says what it proves.
pub async fn read_back(
    client: &SnowflakeClient,
    check: &ConfiguredSql,
    work: &SuppressionWork,
) -> VerificationStatus {
    let recipient = &client.config().recipient_id;
    match count(client, check, work).await {
        Ok(remaining) => {
            if remaining != 0 {
                tracing::warn!(
                    %recipient,
                    request_id = %work.request_id,
                    field = %check.field,
                    remaining,
                    "Snowflake read-back found rows that do not comply"
                );
            }
            verification_of(remaining)
        }
        Err(error) => {
            tracing::warn!(
                %recipient,
                request_id = %work.request_id,
                field = %check.field,
                "Snowflake read-back did not complete: {error}"
            );
            VerificationStatus::Pending
        }
    }
}

/// The sum of the counts `check` returns over its runs for `work`.
async fn count(
    client: &SnowflakeClient,
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
        let state = client.submit(check, &key, number, &execution).await?;
        runs.push(Run { execution, state });
    }
    let (runs, last_error) = wait_for(client, runs).await;
    let mut total = 0;
    for run in runs {
        match run.state {
            Statement::Done(result) => {
                total += result.count().map_err(|shape| {
                    ConnectorError::Permanent(format!(
                        "recipients.{}.{} must return one integer column (how many of the \
                         subject's rows do not comply yet, e.g. SELECT COUNT(*) …), but {shape}",
                        client.config().recipient_id,
                        check.field
                    ))
                })?
            }
            Statement::Failed(error) => return Err(error),
            Statement::Running(handle) => {
                return Err(ConnectorError::Transient(format!(
                    "the check {handle} was still running after max_wait_ms{}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_remaining_row_is_verified_and_any_is_failed() {
        assert_eq!(verification_of(0), VerificationStatus::Verified);
        assert_eq!(verification_of(2), VerificationStatus::Failed);
    }

    #[test]
    fn runs_are_final_when_none_is_running() {
        let run = |state| Run {
            execution: vec![],
            state,
        };
        let failed = Statement::Failed(ConnectorError::Permanent("x".into()));
        assert!(Runs(vec![run(failed.clone())]).is_final());
        let waiting = Runs(vec![run(failed), run(Statement::Running("h".into()))]);
        assert!(!waiting.is_final());
        assert_eq!(waiting.name(), "running");
    }
}
