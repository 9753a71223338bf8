//! Read-back: an offline user data job's status, polled until it is final or the wait runs
//! out. Google does not let anyone read a Customer Match list's members, so the job's status is
//! the only read-back there is: `SUCCESS` for a job whose operations Google accepted is
//! `VERIFIED`, `FAILED` is `FAILED`, anything else is still `PENDING`.

use hush_connector_kit::poll::{self, NamedStatus, PollOutcome, StatusNames, Waits};
use hush_contracts::events::VerificationStatus;

use crate::client::{GoogleAdsClient, JobStatus};

/// Where a job stood when polling stopped: `Finished` once it reached `SUCCESS` or `FAILED`.
pub type JobOutcome = PollOutcome<JobStatus>;

/// An offline user data job is final at `SUCCESS` or `FAILED`; `PENDING` and `RUNNING` run on.
impl NamedStatus for JobStatus {
    const NAMES: StatusNames = StatusNames {
        verified: &["SUCCESS"],
        failed: &["FAILED"],
    };

    fn status(&self) -> &str {
        &self.status
    }
}

/// Polls the job every `waits.poll_interval` until it is final or `waits.max_wait` has passed (see
/// [`poll::wait_until_final`]: failed reads do not end the wait, Google's `Retry-After` is
/// honoured).
pub async fn wait_for_job(client: &GoogleAdsClient, job: &str, waits: Waits) -> JobOutcome {
    let read = || client.job_status(job);
    poll::wait_until_final(read, waits.poll_interval, waits.max_wait).await
}

/// Reads the job once and says what it proves; a failed read leaves it `PENDING`.
pub async fn read_back(client: &GoogleAdsClient, job: &str) -> VerificationStatus {
    poll::read_named(client.job_status(job), "Google Ads job", job).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_success_verifies() {
        let of = |s: &str| {
            JobStatus {
                status: s.into(),
                failure_reason: None,
            }
            .verification()
        };
        assert_eq!(of("SUCCESS"), VerificationStatus::Verified);
        assert_eq!(of("FAILED"), VerificationStatus::Failed);
        assert_eq!(of("RUNNING"), VerificationStatus::Pending);
        assert_eq!(of("PENDING"), VerificationStatus::Pending);
    }
}
