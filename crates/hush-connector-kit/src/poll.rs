//! Waiting for a vendor's asynchronous job (a Google Ads offline user data job, a Segment
//! regulation): its status is read again and again until the vendor says it is final or the
//! wait runs out.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use hush_contracts::config::ConfigError;
use hush_contracts::connector::{Completion, ConnectorError};
use hush_contracts::events::VerificationStatus;

use crate::settings::Fields;

/// The `[recipients.settings]` keys of how long a recipient waits for the vendor's jobs, which
/// its connector's settings take in with `#[serde(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobWaits {
    /// Wait between two reads of a running job, in milliseconds (`poll_interval_ms`); the
    /// connector's default when left out.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Longest wait for running jobs inside one call, in milliseconds (`max_wait_ms`; 0 does
    /// not wait); the connector's default when left out.
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
}

/// A connector's waits for running jobs where the recipient sets none, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultWaits {
    /// Wait between two reads of a running job.
    pub poll_interval_ms: u64,
    /// Longest wait for running jobs inside one call.
    pub max_wait_ms: u64,
}

/// How long a connector waits for the vendor's jobs, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// Wait between two reads of a running job.
    pub poll_interval: Duration,
    /// Longest wait for running jobs inside one call (zero does not wait).
    pub max_wait: Duration,
}

impl JobWaits {
    /// The waits the recipient of `fields` set, each `defaults`' where left out; refuses a
    /// `settings.poll_interval_ms` of 0, naming the field.
    pub fn configure(&self, fields: &Fields, defaults: DefaultWaits) -> Result<Waits, ConfigError> {
        let poll_interval_ms = self.poll_interval_ms.unwrap_or(defaults.poll_interval_ms);
        let max_wait_ms = self.max_wait_ms.unwrap_or(defaults.max_wait_ms);
        fields.at_least_one("settings.poll_interval_ms", poll_interval_ms)?;
        Ok(Waits {
            poll_interval: Duration::from_millis(poll_interval_ms),
            max_wait: Duration::from_millis(max_wait_ms),
        })
    }
}

/// The read-back of a completion left `PENDING` because the vendor's job was still running: the
/// job named by the evidence under `job_key` is read again with `read_back`. Any other
/// completion keeps its status; one without the job stays `PENDING`.
pub async fn read_back_pending<F, Fut>(
    completion: &Completion,
    job_key: &str,
    read_back: F,
) -> VerificationStatus
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = VerificationStatus>,
{
    if completion.verification != VerificationStatus::Pending {
        return completion.verification;
    }
    match completion.evidence.get(job_key) {
        Some(job) => read_back(job.clone()).await,
        None => VerificationStatus::Pending,
    }
}

/// What one read of the vendor's job `job` proves: `verification_of` its status, or `PENDING`
/// when the read failed (logged as a failed read-back of `what`, e.g. `Segment regulation`).
pub async fn read_once<S, Fut>(
    read: Fut,
    verification_of: impl FnOnce(&S) -> VerificationStatus,
    what: &str,
    job: &str,
) -> VerificationStatus
where
    Fut: Future<Output = Result<S, ConnectorError>>,
{
    match read.await {
        Ok(status) => verification_of(&status),
        Err(error) => {
            tracing::warn!(job, "{what} read-back failed: {error}");
            VerificationStatus::Pending
        }
    }
}

/// A vendor job's status as read back.
pub trait PolledStatus {
    /// Whether the vendor will not change the status any more.
    fn is_final(&self) -> bool;
    /// The vendor's name for the status, kept as evidence.
    fn name(&self) -> &str;
}

/// How a vendor names the statuses of its asynchronous job: those that prove the work done and
/// those that prove it failed. Every other status, an unknown one included, is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusNames {
    /// Final statuses that prove the work done (`VERIFIED`).
    pub verified: &'static [&'static str],
    /// Final statuses that prove it failed (`FAILED`).
    pub failed: &'static [&'static str],
}

impl StatusNames {
    /// The verification the status named `status` stands for.
    pub fn verification_of(&self, status: &str) -> VerificationStatus {
        if self.verified.contains(&status) {
            VerificationStatus::Verified
        } else if self.failed.contains(&status) {
            VerificationStatus::Failed
        } else {
            VerificationStatus::Pending
        }
    }

    /// Whether the vendor will not change the status named `status` any more.
    pub fn is_final(&self, status: &str) -> bool {
        self.verification_of(status) != VerificationStatus::Pending
    }
}

/// A vendor job's status that its name alone judges, by the vendor's [`StatusNames`]; it is a
/// [`PolledStatus`] too.
pub trait NamedStatus {
    /// The vendor's status names.
    const NAMES: StatusNames;

    /// The vendor's name for this status.
    fn status(&self) -> &str;

    /// The verification this status stands for.
    fn verification(&self) -> VerificationStatus {
        Self::NAMES.verification_of(self.status())
    }
}

impl<S: NamedStatus> PolledStatus for S {
    fn is_final(&self) -> bool {
        S::NAMES.is_final(self.status())
    }

    fn name(&self) -> &str {
        self.status()
    }
}

/// [`read_once`] of a [`NamedStatus`]: what one read of job `job` proves by its status's name,
/// or `PENDING` when the read failed.
pub async fn read_named<S, Fut>(read: Fut, what: &str, job: &str) -> VerificationStatus
where
    S: NamedStatus,
    Fut: Future<Output = Result<S, ConnectorError>>,
{
    read_once(read, S::verification, what, job).await
}

/// Where a job stood when polling stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome<S> {
    /// The job reached a final status.
    Finished(S),
    /// The wait ran out; the last status seen (if any read succeeded) and the last read error.
    StillRunning {
        /// Name of the last status read.
        last_status: Option<String>,
        /// Last read error, if the last read failed.
        last_error: Option<String>,
    },
}

/// Reads the status with `read` every `interval` until it is final or `max_wait` has passed.
/// A failed read does not end the wait (the job runs on regardless); the next read is made
/// after the interval, or after the delay the vendor asked for (`RetryAfter`) if longer.
pub async fn wait_until_final<S, F, Fut>(
    mut read: F,
    interval: Duration,
    max_wait: Duration,
) -> PollOutcome<S>
where
    S: PolledStatus,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, ConnectorError>>,
{
    let deadline = Instant::now() + max_wait;
    let mut last_status = None;
    loop {
        let mut pause = interval;
        let last_error = match read().await {
            Ok(status) if status.is_final() => return PollOutcome::Finished(status),
            Ok(status) => {
                last_status = Some(status.name().to_owned());
                None
            }
            Err(error) => {
                if let ConnectorError::RetryAfter { after, .. } = &error {
                    pause = pause.max(*after);
                }
                Some(error.to_string())
            }
        };
        let now = Instant::now();
        if now >= deadline {
            return PollOutcome::StillRunning {
                last_status,
                last_error,
            };
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
    }
}

/// The statuses of one read-back of every item being waited for: final once none is `PENDING`.
struct Sweep {
    statuses: Vec<VerificationStatus>,
    summary: String,
}

impl PolledStatus for Sweep {
    fn is_final(&self) -> bool {
        !self.statuses.contains(&VerificationStatus::Pending)
    }

    fn name(&self) -> &str {
        &self.summary
    }
}

/// Reads `items` items back with `sweep` every `interval` until none is `PENDING` or
/// `max_wait` has passed (at least once), and answers the last statuses read, one per item.
/// `sweep` is given the statuses of the sweep before (all `PENDING` at first), so an item
/// already settled need not be read again.
pub async fn sweep_until_settled<F, Fut>(
    items: usize,
    mut sweep: F,
    interval: Duration,
    max_wait: Duration,
) -> Vec<VerificationStatus>
where
    F: FnMut(Vec<VerificationStatus>) -> Fut,
    Fut: Future<Output = Vec<VerificationStatus>>,
{
    let last = std::sync::Mutex::new(vec![VerificationStatus::Pending; items]);
    let read = || {
        let next = sweep(last.lock().expect("sweep statuses").clone());
        let last = &last;
        async move {
            let statuses = next.await;
            let pending = statuses
                .iter()
                .filter(|s| **s == VerificationStatus::Pending)
                .count();
            *last.lock().expect("sweep statuses") = statuses.clone();
            Ok::<_, ConnectorError>(Sweep {
                summary: format!("{pending} of {} pending", statuses.len()),
                statuses,
            })
        }
    };
    let _ = wait_until_final(read, interval, max_wait).await;
    last.into_inner().expect("sweep statuses")
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::future::{ready, Ready};

    use super::*;
    use hush_contracts::events::ConfirmationAction;

    #[tokio::test(start_paused = true)]
    async fn a_sweep_repeats_until_no_item_is_pending_and_sees_the_sweep_before() {
        use VerificationStatus::{Failed, Pending, Verified};
        let seen = RefCell::new(Vec::new());
        let answers = RefCell::new(VecDeque::from([
            vec![Pending, Failed],
            vec![Verified, Failed],
        ]));
        let statuses = sweep_until_settled(
            2,
            |previous| {
                seen.borrow_mut().push(previous);
                ready(
                    answers
                        .borrow_mut()
                        .pop_front()
                        .expect("two sweeps at most"),
                )
            },
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(statuses, vec![Verified, Failed]);
        assert_eq!(
            seen.into_inner(),
            vec![vec![Pending, Pending], vec![Pending, Failed]]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_without_time_to_wait_reads_once_and_answers_what_it_read() {
        use VerificationStatus::{Pending, Verified};
        let sweeps = RefCell::new(0);
        let statuses = sweep_until_settled(
            2,
            |_| {
                *sweeps.borrow_mut() += 1;
                ready(vec![Verified, Pending])
            },
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .await;
        assert_eq!(statuses, vec![Verified, Pending]);
        assert_eq!(sweeps.into_inner(), 1);
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Status(&'static str);

    impl PolledStatus for Status {
        fn is_final(&self) -> bool {
            self.0 == "DONE"
        }
        fn name(&self) -> &str {
            self.0
        }
    }

    /// A reader that answers `answers` in order, then `RUNNING` for ever.
    fn reader(
        answers: Vec<Result<Status, ConnectorError>>,
    ) -> impl FnMut() -> Ready<Result<Status, ConnectorError>> {
        let mut answers = VecDeque::from(answers);
        move || ready(answers.pop_front().unwrap_or(Ok(Status("RUNNING"))))
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_status_ends_the_wait_through_failed_reads() {
        let outcome = wait_until_final(
            reader(vec![
                Ok(Status("RUNNING")),
                Err(ConnectorError::Transient("HTTP 503".into())),
                Ok(Status("DONE")),
            ]),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(outcome, PollOutcome::Finished(Status("DONE")));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_runs_out_with_the_last_status_and_error() {
        let started = Instant::now();
        let outcome = wait_until_final(
            reader(vec![
                Ok(Status("RUNNING")),
                Err(ConnectorError::Transient("HTTP 503".into())),
                Err(ConnectorError::Transient("HTTP 502".into())),
                Err(ConnectorError::Transient("HTTP 500".into())),
            ]),
            Duration::from_secs(1),
            Duration::from_millis(2_500),
        )
        .await;
        assert_eq!(
            outcome,
            PollOutcome::StillRunning {
                last_status: Some("RUNNING".into()),
                last_error: Some("transient vendor failure: HTTP 500".into()),
            }
        );
        assert!(started.elapsed() >= Duration::from_millis(2_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_longer_than_the_interval_stretches_the_pause() {
        let reads = RefCell::new(Vec::new());
        let mut answers = VecDeque::from(vec![
            Err(ConnectorError::RetryAfter {
                after: Duration::from_secs(10),
                detail: "HTTP 429".into(),
            }),
            Ok(Status("DONE")),
        ]);
        let started = Instant::now();
        let outcome = wait_until_final(
            || {
                reads.borrow_mut().push(started.elapsed());
                ready(answers.pop_front().unwrap())
            },
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(outcome, PollOutcome::Finished(Status("DONE")));
        assert_eq!(
            *reads.borrow(),
            vec![Duration::ZERO, Duration::from_secs(10)]
        );
    }

    #[tokio::test]
    async fn only_a_pending_completion_with_its_job_is_read_back() {
        let pending = |evidence: &[(&str, &str)]| {
            Completion::new(
                ConfirmationAction::Suppressed,
                evidence
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .with_verification(VerificationStatus::Pending)
        };
        let read = |job: String| async move {
            assert_eq!(job, "jobs/1");
            VerificationStatus::Verified
        };
        let with_job = pending(&[("job", "jobs/1")]);
        assert_eq!(
            read_back_pending(&with_job, "job", read).await,
            VerificationStatus::Verified
        );
        assert_eq!(
            read_back_pending(&pending(&[]), "job", read).await,
            VerificationStatus::Pending
        );
        let done = with_job.with_verification(VerificationStatus::Failed);
        assert_eq!(
            read_back_pending(&done, "job", read).await,
            VerificationStatus::Failed
        );
    }

    /// A status named like a Google Ads job's.
    struct Named(&'static str);

    impl NamedStatus for Named {
        const NAMES: StatusNames = StatusNames {
            verified: &["SUCCESS"],
            failed: &["FAILED", "CANCELLED"],
        };

        fn status(&self) -> &str {
            self.0
        }
    }

    #[tokio::test]
    async fn a_named_status_is_final_and_verifies_by_its_name_alone() {
        use VerificationStatus::{Failed, Pending, Verified};
        let judged = |name| {
            let status = Named(name);
            (
                status.verification(),
                status.is_final(),
                status.name().to_owned(),
            )
        };
        assert_eq!(judged("SUCCESS"), (Verified, true, "SUCCESS".into()));
        assert_eq!(judged("FAILED"), (Failed, true, "FAILED".into()));
        assert_eq!(judged("CANCELLED"), (Failed, true, "CANCELLED".into()));
        assert_eq!(judged("RUNNING"), (Pending, false, "RUNNING".into()));
        assert_eq!(
            judged("NEVER_HEARD_OF"),
            (Pending, false, "NEVER_HEARD_OF".into())
        );
        let read = |answer| read_named(ready(answer), "Example job", "job-1");
        assert_eq!(read(Ok(Named("SUCCESS"))).await, Verified);
        assert_eq!(read(Ok(Named("CANCELLED"))).await, Failed);
        assert_eq!(
            read(Err(ConnectorError::Transient("HTTP 503".into()))).await,
            Pending
        );
    }

    #[tokio::test]
    async fn one_read_proves_what_the_status_says_and_a_failed_read_proves_nothing() {
        let verified = read_once(
            ready(Ok::<_, ConnectorError>("SUCCESS")),
            |status: &&str| match *status {
                "SUCCESS" => VerificationStatus::Verified,
                _ => VerificationStatus::Failed,
            },
            "Example job",
            "job-1",
        )
        .await;
        assert_eq!(verified, VerificationStatus::Verified);
        let unread = read_once(
            ready(Err::<&str, _>(ConnectorError::Transient("HTTP 503".into()))),
            |_: &&str| VerificationStatus::Verified,
            "Example job",
            "job-1",
        )
        .await;
        assert_eq!(unread, VerificationStatus::Pending);
    }
}
