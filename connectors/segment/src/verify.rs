//! Read-back: a regulation's overall status, polled until Segment stops changing it or the wait
//! runs out. `FINISHED` is `VERIFIED`; `FAILED`, `INVALID`, `NOT_SUPPORTED` and
//! `PARTIAL_SUCCESS` (some destination did not comply) are `FAILED`; `INITIALIZED` and
//! `RUNNING` are still `PENDING`.

use std::time::Duration;

use hush_connector_kit::poll::{self, PollOutcome, PolledStatus};
use hush_contracts::events::VerificationStatus;

use crate::client::{RegulationStatus, SegmentClient};

/// Where a regulation stood when polling stopped: `Finished` once Segment reached a final
/// status.
pub type RegulationOutcome = PollOutcome<RegulationStatus>;

impl PolledStatus for RegulationStatus {
    fn is_final(&self) -> bool {
        RegulationStatus::is_final(self)
    }

    fn name(&self) -> &str {
        &self.overall_status
    }
}

/// Polls the regulation every `interval` until its status is final or `max_wait` has passed
/// (see [`poll::wait_until_final`]: failed reads do not end the wait, a 429 stretches the pause
/// to the delay Segment asked).
pub async fn wait_for_regulation(
    client: &SegmentClient,
    regulate_id: &str,
    interval: Duration,
    max_wait: Duration,
) -> RegulationOutcome {
    poll::wait_until_final(|| client.regulation(regulate_id), interval, max_wait).await
}

/// The verification an overall status stands for.
pub fn verification_of(overall_status: &str) -> VerificationStatus {
    match overall_status {
        "FINISHED" => VerificationStatus::Verified,
        "FAILED" | "INVALID" | "NOT_SUPPORTED" | "PARTIAL_SUCCESS" => VerificationStatus::Failed,
        _ => VerificationStatus::Pending,
    }
}

/// Reads the regulation once and says what it proves; a failed read leaves it `PENDING`.
pub async fn read_back(client: &SegmentClient, regulate_id: &str) -> VerificationStatus {
    let of_regulation = |regulation: &RegulationStatus| verification_of(&regulation.overall_status);
    let read = client.regulation(regulate_id);
    poll::read_once(read, of_regulation, "Segment regulation", regulate_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verification() {
        assert_eq!(verification_of("FINISHED"), VerificationStatus::Verified);
        for failed in ["FAILED", "INVALID", "NOT_SUPPORTED", "PARTIAL_SUCCESS"] {
            assert_eq!(verification_of(failed), VerificationStatus::Failed);
        }
        assert_eq!(verification_of("RUNNING"), VerificationStatus::Pending);
        assert_eq!(verification_of("INITIALIZED"), VerificationStatus::Pending);
    }
}
