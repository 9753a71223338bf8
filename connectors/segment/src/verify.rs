//! Read-back: a regulation's overall status, polled until Segment stops changing it or the wait
//! runs out. `FINISHED` is `VERIFIED`; `FAILED`, `INVALID`, `NOT_SUPPORTED` and
//! `PARTIAL_SUCCESS` (some destination did not comply) are `FAILED`; `INITIALIZED` and
//! `RUNNING` are still `PENDING`.

use std::time::{Duration, Instant};

use hush_core::connector::ConnectorError;
use hush_core::events::VerificationStatus;

use crate::client::{RegulationStatus, SegmentClient};

/// Where a regulation stood when polling stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegulationOutcome {
    /// Segment reached a final status.
    Finished(RegulationStatus),
    /// The wait ran out; the last status seen and the last read error, if the last read failed.
    StillRunning {
        /// Last overall status read.
        last_status: Option<String>,
        /// Last read error.
        last_error: Option<String>,
    },
}

/// Polls the regulation every `interval` until its status is final or `max_wait` has passed.
/// A failed read does not end the wait; a 429 stretches the pause to the delay Segment asked.
pub async fn wait_for_regulation(
    client: &SegmentClient,
    regulate_id: &str,
    interval: Duration,
    max_wait: Duration,
) -> RegulationOutcome {
    let deadline = Instant::now() + max_wait;
    let mut last_status = None;
    loop {
        let mut pause = interval;
        let last_error = match client.regulation(regulate_id).await {
            Ok(status) if status.is_final() => return RegulationOutcome::Finished(status),
            Ok(status) => {
                last_status = Some(status.overall_status);
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
            return RegulationOutcome::StillRunning {
                last_status,
                last_error,
            };
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
    }
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
    match client.regulation(regulate_id).await {
        Ok(status) => verification_of(&status.overall_status),
        Err(error) => {
            tracing::warn!(regulate_id, "Segment regulation read-back failed: {error}");
            VerificationStatus::Pending
        }
    }
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
