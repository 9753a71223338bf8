//! Read-back: an offline user data job's status, polled until it is final or the wait runs
//! out. Google does not let anyone read a Customer Match list's members, so the job's status is
//! the only read-back there is: `SUCCESS` for a job whose operations Google accepted is
//! `VERIFIED`, `FAILED` is `FAILED`, anything else is still `PENDING`.

use std::time::Duration;

use hush_connector_kit::poll::{self, PollOutcome, PolledStatus};
use hush_contracts::events::VerificationStatus;

use crate::client::{GoogleAdsClient, JobStatus};

/// Where a job stood when polling stopped: `Finished` once it reached `SUCCESS` or `FAILED`.
pub type JobOutcome = PollOutcome<JobStatus>;

impl PolledStatus for JobStatus {
    fn is_final(&self) -> bool {
        JobStatus::is_final(self)
    }

    fn name(&self) -> &str {
        &self.status
    }
}

/// Polls the job every `interval` until it is final or `max_wait` has passed (see
/// [`poll::wait_until_final`]: failed reads do not end the wait, Google's `Retry-After` is
/// honoured).
pub async fn wait_for_job(
    client: &GoogleAdsClient,
    job: &str,
    interval: Duration,
    max_wait: Duration,
) -> JobOutcome {
    poll::wait_until_final(|| client.job_status(job), interval, max_wait).await
}

/// The verification a job status stands for.
pub fn verification_of(status: &JobStatus) -> VerificationStatus {
    match status.status.as_str() {
        "SUCCESS" => VerificationStatus::Verified,
        "FAILED" => VerificationStatus::Failed,
        _ => VerificationStatus::Pending,
    }
}

/// Reads the job once and says what it proves; a failed read leaves it `PENDING`.
pub async fn read_back(client: &GoogleAdsClient, job: &str) -> VerificationStatus {
    poll::read_once(
        client.job_status(job),
        verification_of,
        "Google Ads job",
        job,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_success_verifies() {
        let status = |s: &str| JobStatus {
            status: s.into(),
            failure_reason: None,
        };
        assert_eq!(
            verification_of(&status("SUCCESS")),
            VerificationStatus::Verified
        );
        assert_eq!(
            verification_of(&status("FAILED")),
            VerificationStatus::Failed
        );
        assert_eq!(
            verification_of(&status("RUNNING")),
            VerificationStatus::Pending
        );
        assert_eq!(
            verification_of(&status("PENDING")),
            VerificationStatus::Pending
        );
    }
}
