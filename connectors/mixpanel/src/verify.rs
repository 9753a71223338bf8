//! Read-back: a deletion task's status, polled until Mixpanel stops changing it or the wait
//! runs out. `SUCCESS` is `VERIFIED`; `FAILURE`, `REVOKED` (cancelled) and `NOT_FOUND` are
//! `FAILED`; `PENDING`, `STAGING`, `STARTED` and `UNKNOWN` are still `PENDING`.

use std::time::Duration;

use hush_connector_kit::poll::{self, NamedStatus, PollOutcome, StatusNames};
use hush_contracts::events::VerificationStatus;

use crate::client::{MixpanelClient, TaskStatus};

impl NamedStatus for TaskStatus {
    const NAMES: StatusNames = StatusNames {
        verified: &["SUCCESS"],
        failed: &["FAILURE", "REVOKED", "NOT_FOUND"],
    };

    fn status(&self) -> &str {
        &self.status
    }
}

/// Polls the task every `interval` until its status is final or `max_wait` has passed.
pub async fn wait_for_task(
    client: &MixpanelClient,
    task_id: &str,
    interval: Duration,
    max_wait: Duration,
) -> PollOutcome<TaskStatus> {
    poll::wait_until_final(|| client.task(task_id), interval, max_wait).await
}

/// Reads the task once and says what it proves; a failed read leaves it `PENDING`.
pub async fn read_back(client: &MixpanelClient, task_id: &str) -> VerificationStatus {
    poll::read_named(client.task(task_id), "Mixpanel deletion task", task_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verification() {
        let verification_of = |status| TaskStatus::NAMES.verification_of(status);
        assert_eq!(verification_of("SUCCESS"), VerificationStatus::Verified);
        for failed in ["FAILURE", "REVOKED", "NOT_FOUND"] {
            assert_eq!(verification_of(failed), VerificationStatus::Failed);
        }
        for pending in ["PENDING", "STAGING", "STARTED", "UNKNOWN"] {
            assert_eq!(verification_of(pending), VerificationStatus::Pending);
        }
    }
}
