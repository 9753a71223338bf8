//! Read-back: a removal request's status, polled with `requestStatus:retrieve` until it is
//! final or the wait runs out. Google does not let anyone read a Customer Match audience's
//! members, so the request status is the only read-back there is: `SUCCESS` is `VERIFIED`,
//! `FAILED` and `PARTIAL_SUCCESS` (Google does not say which records failed) are `FAILED`,
//! anything else is still `PENDING`.

use hush_connector_kit::poll::{self, NamedStatus, PollOutcome, StatusNames, Waits};
use hush_contracts::events::VerificationStatus;

use crate::client::{DataManagerClient, RequestStatus};

/// Where a request stood when polling stopped: `Finished` once it reached `SUCCESS`,
/// `FAILED` or `PARTIAL_SUCCESS`.
pub type RequestOutcome = PollOutcome<RequestStatus>;

/// A removal request is final at `SUCCESS`, `FAILED` or `PARTIAL_SUCCESS`;
/// `REQUEST_STATUS_UNKNOWN` and `PROCESSING` run on.
impl NamedStatus for RequestStatus {
    const NAMES: StatusNames = StatusNames {
        verified: &["SUCCESS"],
        failed: &["FAILED", "PARTIAL_SUCCESS"],
    };

    fn status(&self) -> &str {
        &self.status
    }
}

/// Polls the request every `waits.poll_interval` until it is final or `waits.max_wait` has
/// passed (see
/// [`poll::wait_until_final`]: failed reads do not end the wait, Google's `Retry-After` is
/// honoured).
pub async fn wait_for_request(
    client: &DataManagerClient,
    request_id: &str,
    waits: Waits,
) -> RequestOutcome {
    let read = || client.request_status(request_id);
    poll::wait_until_final(read, waits.poll_interval, waits.max_wait).await
}

/// Reads the request once and says what it proves; a failed read leaves it `PENDING`.
pub async fn read_back(client: &DataManagerClient, request_id: &str) -> VerificationStatus {
    let read = client.request_status(request_id);
    poll::read_named(read, "Google Data Manager status", request_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str) -> RequestStatus {
        RequestStatus {
            status: s.into(),
            errors: vec![],
            removed_records: None,
        }
    }

    #[test]
    fn only_success_verifies_and_a_partial_success_is_a_failure() {
        let of = |s: &str| status(s).verification();
        assert_eq!(of("SUCCESS"), VerificationStatus::Verified);
        assert_eq!(of("FAILED"), VerificationStatus::Failed);
        assert_eq!(of("PARTIAL_SUCCESS"), VerificationStatus::Failed);
        assert_eq!(of("PROCESSING"), VerificationStatus::Pending);
        assert_eq!(of("REQUEST_STATUS_UNKNOWN"), VerificationStatus::Pending);
    }

    #[test]
    fn processing_is_not_final() {
        use hush_connector_kit::poll::PolledStatus;
        assert!(!status("PROCESSING").is_final());
        assert!(!status("REQUEST_STATUS_UNKNOWN").is_final());
        assert!(status("PARTIAL_SUCCESS").is_final());
    }
}
