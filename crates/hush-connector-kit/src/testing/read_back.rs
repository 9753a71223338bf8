//! Reading a `PENDING` completion back until the vendor has finished, for contract tests whose
//! simulated job or request stays unfinished for a number of reads that depends on timing.

use hush_contracts::connector::{Completion, Connector, SuppressionWork};
use hush_contracts::events::VerificationStatus;

/// Reads `item`'s `completion` back through `connector` until the answer is no longer
/// `PENDING`, and answers that status; panics when it is still `PENDING` after `most` reads.
pub async fn read_back_until_settled(
    connector: &dyn Connector,
    item: &SuppressionWork,
    completion: &Completion,
    most: usize,
) -> VerificationStatus {
    for _ in 0..most {
        let status = connector.verify(item, completion).await;
        if status != VerificationStatus::Pending {
            return status;
        }
    }
    panic!("still PENDING after {most} reads");
}

/// Panics unless `completion` of `item` is `PENDING`, reading it back through `connector`
/// first answers `PENDING` again, and the reads that follow settle on `VERIFIED` within `most`
/// more reads.
pub async fn assert_pending_then_verified(
    connector: &dyn Connector,
    item: &SuppressionWork,
    completion: &Completion,
    most: usize,
) {
    assert_eq!(
        completion.verification,
        VerificationStatus::Pending,
        "the vendor had not finished when the wait ran out"
    );
    assert_eq!(
        connector.verify(item, completion).await,
        VerificationStatus::Pending,
        "the first read back is still pending"
    );
    assert_eq!(
        read_back_until_settled(connector, item, completion, most).await,
        VerificationStatus::Verified
    );
}
