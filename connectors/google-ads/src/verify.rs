//! Read-back: an offline user data job's status, polled until it is final or the wait runs
//! out. Google does not let anyone read a Customer Match list's members, so the job's status is
//! the only read-back there is: `SUCCESS` for a job whose operations Google accepted is
//! `VERIFIED`, `FAILED` is `FAILED`, anything else is still `PENDING`.

use std::time::{Duration, Instant};

use hush_core::connector::ConnectorError;
use hush_core::events::VerificationStatus;

use crate::client::{GoogleAdsClient, JobStatus};

/// Where a job stood when polling stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The job reached `SUCCESS` or `FAILED`.
    Finished(JobStatus),
    /// The wait ran out; the last status seen (if any read succeeded) and the last read error.
    StillRunning {
        /// Last status read.
        last_status: Option<String>,
        /// Last read error, if the last read failed.
        last_error: Option<String>,
    },
}

/// Polls the job every `interval` until it is final or `max_wait` has passed. A failed read
/// does not end the wait (the job runs on regardless); the next read is made after the
/// interval, or after the delay Google asked for if longer.
pub async fn wait_for_job(
    client: &GoogleAdsClient,
    job: &str,
    interval: Duration,
    max_wait: Duration,
) -> JobOutcome {
    let deadline = Instant::now() + max_wait;
    let mut last_status = None;
    loop {
        let mut pause = interval;
        let last_error = match client.job_status(job).await {
            Ok(status) if status.is_final() => return JobOutcome::Finished(status),
            Ok(status) => {
                last_status = Some(status.status);
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
            return JobOutcome::StillRunning {
                last_status,
                last_error,
            };
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
    }
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
    match client.job_status(job).await {
        Ok(status) => verification_of(&status),
        Err(error) => {
            tracing::warn!(job, "Google Ads job read-back failed: {error}");
            VerificationStatus::Pending
        }
    }
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
