//! How a connector whose batch takes several vendor calls reaches one outcome per item: the
//! halt of the remaining calls after a rate limit or a transient failure ([`Halt`]), the error
//! that decides an item spread over several calls ([`keep_deciding`]), and the verification of
//! an item from the read-back of each of its records ([`verification_of`]), and the read-back
//! of one item by a connector that reads items back in batches ([`verify_through_batch`]). A
//! batch planned as calls that each carry several items is a [`BatchPlan`].

use hush_contracts::connector::{Completion, Connector, ConnectorError, SuppressionWork};
use hush_contracts::events::VerificationStatus;

/// Stops a sequence of calls after a rate limit or a transient failure, so the rest of the
/// batch is answered with that error and retried as a whole instead of pressing on a
/// struggling API.
#[derive(Debug, Default)]
pub struct Halt(Option<ConnectorError>);

impl Halt {
    /// Notes the failure of a call: the first retryable one halts the sequence.
    pub fn note(&mut self, error: &ConnectorError) {
        if error.is_retryable() && self.0.is_none() {
            self.0 = Some(error.clone());
        }
    }

    /// The error the sequence halted on, if it did: the answer of every call not yet made.
    pub fn halted(&self) -> Option<&ConnectorError> {
        self.0.as_ref()
    }
}

/// Records `error` as the one deciding an item whose work failed in one of several calls,
/// unless `deciding` already holds the one that decides: a permanent error decides the item;
/// otherwise the first retryable error does.
pub fn keep_deciding(deciding: &mut Option<ConnectorError>, error: ConnectorError) {
    match deciding {
        Some(ConnectorError::Permanent(_)) => {}
        Some(_) if error.is_retryable() => {}
        _ => *deciding = Some(error),
    }
}

/// What the read-back of one of an item's records showed against what the request demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCheck {
    /// The vendor holds what the request demands.
    Holds,
    /// The vendor does not show it yet (it applies changes later).
    NotYet,
    /// The vendor contradicts it.
    Contradicted,
    /// Nothing to check: the record no longer exists.
    Nothing,
    /// The read failed; try again later.
    Unknown,
}

/// An item's verification from the checks of its records: `FAILED` when any contradicts the
/// request, else `PENDING` when any does not show it yet or could not be read, else `VERIFIED`
/// when at least one holds it, else (nothing left to check) `UNVERIFIABLE`.
pub fn verification_of(checks: impl IntoIterator<Item = RecordCheck>) -> VerificationStatus {
    let checks: Vec<RecordCheck> = checks.into_iter().collect();
    let any = |wanted: &[RecordCheck]| checks.iter().any(|check| wanted.contains(check));
    if any(&[RecordCheck::Contradicted]) {
        VerificationStatus::Failed
    } else if any(&[RecordCheck::NotYet, RecordCheck::Unknown]) {
        VerificationStatus::Pending
    } else if any(&[RecordCheck::Holds]) {
        VerificationStatus::Verified
    } else {
        VerificationStatus::Unverifiable
    }
}

/// The calls for a batch and what happens to each item: the plan of a connector that packs
/// the batch's items into calls of its own, `I` saying what it does for one item and `C` being
/// one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan<I, C> {
    /// One entry per work item, in batch order.
    pub items: Vec<I>,
    /// Calls to make, in order.
    pub calls: Vec<C>,
}

impl<I, C> BatchPlan<I, C> {
    /// Each item's result, in batch order: `result` of the item's plan and of its entry of
    /// `outcomes`, what the calls carrying it answered (one entry per item, in batch order).
    pub fn results<O, R>(&self, outcomes: Vec<O>, mut result: impl FnMut(&I, O) -> R) -> Vec<R> {
        self.items
            .iter()
            .zip(outcomes)
            .map(|(item, outcome)| result(item, outcome))
            .collect()
    }
}

/// `connector`'s read-back of `work` alone through its `verify_batch`, for a connector that
/// reads items back in batches: the status the batch answers, or `completion`'s own when it
/// answers none.
pub async fn verify_through_batch<C: Connector + ?Sized>(
    connector: &C,
    work: &SuppressionWork,
    completion: &Completion,
) -> VerificationStatus {
    connector
        .verify_batch(&[(work, completion)])
        .await
        .pop()
        .unwrap_or(completion.verification)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn retry(detail: &str) -> ConnectorError {
        ConnectorError::RetryAfter {
            after: Duration::from_secs(1),
            detail: detail.into(),
        }
    }

    #[test]
    fn a_sequence_halts_on_its_first_retryable_failure_only() {
        let mut halt = Halt::default();
        halt.note(&ConnectorError::Permanent("refused".into()));
        assert_eq!(halt.halted(), None);
        halt.note(&retry("first"));
        halt.note(&ConnectorError::Transient("second".into()));
        assert_eq!(halt.halted(), Some(&retry("first")));
    }

    #[test]
    fn a_permanent_error_decides_the_item_else_the_first_retryable_one() {
        let mut deciding = None;
        keep_deciding(&mut deciding, retry("first"));
        keep_deciding(&mut deciding, ConnectorError::Transient("second".into()));
        assert_eq!(deciding, Some(retry("first")));
        keep_deciding(&mut deciding, ConnectorError::Permanent("refused".into()));
        keep_deciding(&mut deciding, retry("third"));
        keep_deciding(&mut deciding, ConnectorError::Permanent("later".into()));
        assert_eq!(deciding, Some(ConnectorError::Permanent("refused".into())));
    }

    #[test]
    fn a_contradiction_outweighs_everything_and_doubt_outweighs_a_hold() {
        use RecordCheck::*;
        let of = |checks: &[RecordCheck]| verification_of(checks.iter().copied());
        assert_eq!(
            of(&[Holds, Unknown, Contradicted]),
            VerificationStatus::Failed
        );
        assert_eq!(of(&[Holds, NotYet]), VerificationStatus::Pending);
        assert_eq!(of(&[Holds, Unknown]), VerificationStatus::Pending);
        assert_eq!(of(&[Holds, Nothing]), VerificationStatus::Verified);
        assert_eq!(of(&[Nothing]), VerificationStatus::Unverifiable);
        assert_eq!(of(&[]), VerificationStatus::Unverifiable);
    }

    /// A connector whose batch read-back answers `self.0`, whatever it is asked.
    struct Answers(Vec<VerificationStatus>);

    #[async_trait::async_trait]
    impl Connector for Answers {
        async fn apply(
            &self,
            _: hush_contracts::connector::Operation,
            _: &[SuppressionWork],
        ) -> hush_contracts::connector::BatchResult {
            Ok(vec![])
        }

        async fn verify_batch(
            &self,
            _: &[(&SuppressionWork, &Completion)],
        ) -> Vec<VerificationStatus> {
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn one_item_is_read_back_through_the_batch_or_keeps_its_status() {
        let work = SuppressionWork {
            request_id: "r".into(),
            subject_key: "s".into(),
            kind: hush_contracts::events::RequestKind::Delete,
            identifiers: vec![],
            categories: vec![],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        };
        let done = Completion::not_applicable("done");
        let verified = Answers(vec![VerificationStatus::Verified]);
        assert_eq!(
            verify_through_batch(&verified, &work, &done).await,
            VerificationStatus::Verified
        );
        let silent = Answers(vec![]);
        assert_eq!(
            verify_through_batch(&silent, &work, &done).await,
            done.verification
        );
    }

    #[test]
    fn a_plan_answers_each_item_from_its_plan_and_outcome_in_batch_order() {
        let plan = BatchPlan {
            items: vec!["a", "b"],
            calls: vec![()],
        };
        let results = plan.results(vec![1, 2], |item, outcome| format!("{item}{outcome}"));
        assert_eq!(results, ["a1", "b2"]);
    }
}
