//! Read-back. A suppression job is read until Klaviyo reports it `complete` (`VERIFIED`) or
//! `cancelled` (refused); a deletion, which Klaviyo's Data Privacy API runs without a job to
//! read, is read back from the profiles API until no profile holds any of the subject's
//! identifiers (`VERIFIED`). Anything unfinished when the wait runs out is `PENDING`.

use std::time::Duration;

use hush_connector_kit::poll::{self, NamedStatus, PollOutcome, StatusNames, Waits};
use hush_contracts::events::VerificationStatus;

use crate::client::{KlaviyoClient, SuppressionJob};
use crate::request::ProfileKey;

/// A suppression job is final once `complete` (`VERIFIED`) or `cancelled` (`FAILED`);
/// `queued` and `processing` run on.
impl NamedStatus for SuppressionJob {
    const NAMES: StatusNames = StatusNames {
        verified: &["complete"],
        failed: &["cancelled"],
    };

    fn status(&self) -> &str {
        &self.status
    }
}

/// Reads the job every `interval` until it is final or `max_wait` has passed.
pub async fn wait_for_job(
    client: &KlaviyoClient,
    job_id: &str,
    interval: Duration,
    max_wait: Duration,
) -> PollOutcome<SuppressionJob> {
    poll::wait_until_final(|| client.suppression_job(job_id), interval, max_wait).await
}

/// Reads the job once; a failed read leaves it `PENDING`.
pub async fn read_job(client: &KlaviyoClient, job_id: &str) -> VerificationStatus {
    let read = client.suppression_job(job_id);
    poll::read_named(read, "Klaviyo suppression job", job_id).await
}

/// Whether every key's profiles are gone: `VERIFIED` when none is found, `PENDING` while one
/// is (Klaviyo deletes asynchronously) or a read failed.
pub async fn read_deletion(client: &KlaviyoClient, keys: &[ProfileKey]) -> VerificationStatus {
    for key in keys {
        match client.count_profiles(key).await {
            Ok(0) => {}
            Ok(_) => return VerificationStatus::Pending,
            Err(error) => {
                tracing::warn!("Klaviyo profile read-back failed: {error}");
                return VerificationStatus::Pending;
            }
        }
    }
    VerificationStatus::Verified
}

/// Reads the deletions back every `waits.poll_interval` until every item's profiles are gone or
/// `waits.max_wait` has passed (at least once); the last status of each item.
pub async fn wait_until_deleted(
    client: &KlaviyoClient,
    items: &[Vec<ProfileKey>],
    waits: Waits,
) -> Vec<VerificationStatus> {
    let sweep = |previous: Vec<VerificationStatus>| async move {
        let mut statuses = Vec::with_capacity(items.len());
        for (keys, before) in items.iter().zip(previous) {
            statuses.push(match before {
                VerificationStatus::Verified => before,
                _ => read_deletion(client, keys).await,
            });
        }
        statuses
    };
    poll::sweep_until_settled(items.len(), sweep, waits.poll_interval, waits.max_wait).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_statuses_map_to_verification() {
        let job_verification = |status| SuppressionJob::NAMES.verification_of(status);
        assert_eq!(job_verification("complete"), VerificationStatus::Verified);
        assert_eq!(job_verification("cancelled"), VerificationStatus::Failed);
        assert_eq!(job_verification("processing"), VerificationStatus::Pending);
        assert_eq!(job_verification("queued"), VerificationStatus::Pending);
    }
}
