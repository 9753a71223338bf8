//! Second stage, pure: which decoded requests this recipient has nothing to do for, which were
//! already confirmed, and the vendor calls (one operation, within the batch limit) for the rest.

use hush_contracts::connector::{ConnectorError, Operation, SuppressionWork};
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{EpochMillis, PrivacyRequest};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::kafka::IncomingMessage;

use crate::done::DoneSet;
use crate::retry::RetryState;
use crate::work::work_for;

/// A request in flight at this recipient, with its retry bookkeeping.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The consumed message (re-published as is to the retry topic).
    pub message: IncomingMessage,
    /// The connector's view of the request.
    pub work: SuppressionWork,
    /// Vendor calls made so far.
    pub attempts: u32,
    /// First vendor call.
    pub first_attempt_at: Option<EpochMillis>,
    /// Latest vendor call.
    pub last_attempt_at: Option<EpochMillis>,
    /// Latest failure.
    pub last_error: Option<ConnectorError>,
}

impl InFlight {
    /// A request as consumed, with the calls its retry headers count.
    pub fn new(message: IncomingMessage, work: SuppressionWork, state: &RetryState) -> Self {
        Self {
            message,
            work,
            attempts: state.attempts,
            first_attempt_at: state.first_attempt_at,
            last_attempt_at: None,
            last_error: None,
        }
    }
}

/// What to do with the requests of one consumed batch.
#[derive(Debug, Default)]
pub struct Plan {
    /// Requests outside this recipient's scope, with the reason; confirmed `NOT_APPLICABLE`.
    pub not_applicable: Vec<(InFlight, String)>,
    /// Requests this recipient already confirmed; not sent again.
    pub already_confirmed: usize,
    /// Vendor calls: requests of one operation, at most the batch limit each.
    pub calls: Vec<(Operation, Vec<InFlight>)>,
}

/// Plans `requests` (in consumed order) for `recipient`: skips those in `done`, answers those
/// it does not apply to, and groups the rest by operation into calls of at most `batch_limit`.
pub fn plan(
    requests: Vec<(IncomingMessage, PrivacyRequest, RetryState)>,
    recipient: &RecipientConfig,
    done: &DoneSet,
    cipher: Option<&FieldCipher>,
    batch_limit: usize,
) -> Plan {
    let mut plan = Plan::default();
    let mut by_operation: Vec<(Operation, Vec<InFlight>)> = vec![
        (Operation::Suppress, Vec::new()),
        (Operation::Delete, Vec::new()),
    ];
    for (message, request, state) in requests {
        if done.contains(&request.request_id) {
            plan.already_confirmed += 1;
            continue;
        }
        let item = InFlight::new(message, work_for(&request, cipher), &state);
        if !recipient.applies_to(&request) {
            let reason = format!(
                "{} is outside this recipient's scope (request kinds {:?}, categories {:?})",
                request.kind.as_str(),
                recipient.request_kinds,
                recipient.categories
            );
            plan.not_applicable.push((item, reason));
            continue;
        }
        let operation = Operation::of(request.kind);
        if let Some((_, items)) = by_operation.iter_mut().find(|(op, _)| *op == operation) {
            items.push(item);
        }
    }
    let limit = batch_limit.max(1);
    for (operation, mut items) in by_operation {
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(limit));
            plan.calls.push((operation, items));
            items = rest;
        }
    }
    plan
}

/// When a consumed message may be handled, given the latest moment (`horizon`) this batch may
/// wait for in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Now, or after waiting until the given instant (within the horizon).
    At(Option<EpochMillis>),
    /// After the horizon: it goes back to the retry topic once the horizon is reached.
    AfterHorizon,
}

/// When the message with `state` is due, for a batch that waits at most until `horizon`.
pub fn due(state: &RetryState, horizon: EpochMillis) -> Due {
    match state.not_before {
        Some(at) if at > horizon => Due::AfterHorizon,
        at => Due::At(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{Category, RecipientRole, RequestKind};

    fn request(id: &str, kind: RequestKind) -> (IncomingMessage, PrivacyRequest, RetryState) {
        let request = crate::fakes::request(id, kind);
        (crate::fakes::message(), request, RetryState::default())
    }

    fn recipient(request_kinds: Vec<RequestKind>) -> RecipientConfig {
        let mut recipient = crate::fakes::recipient();
        recipient.request_kinds = request_kinds;
        recipient.categories = vec![Category::All];
        recipient.role = RecipientRole::ThirdParty;
        recipient
    }

    #[test]
    fn calls_hold_one_operation_each_within_the_batch_limit() {
        let requests = vec![
            request("a", RequestKind::OptOutSaleShare),
            request("b", RequestKind::Delete),
            request("c", RequestKind::LimitSensitive),
            request("d", RequestKind::OptOutSaleShare),
        ];
        let kinds = vec![
            RequestKind::OptOutSaleShare,
            RequestKind::LimitSensitive,
            RequestKind::Delete,
        ];
        let plan = plan(requests, &recipient(kinds), &DoneSet::default(), None, 2);
        let calls: Vec<(Operation, Vec<&str>)> = plan
            .calls
            .iter()
            .map(|(op, items)| {
                (
                    *op,
                    items.iter().map(|i| i.work.request_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                (Operation::Suppress, vec!["a", "c"]),
                (Operation::Suppress, vec!["d"]),
                (Operation::Delete, vec!["b"]),
            ]
        );
    }

    #[test]
    fn confirmed_requests_are_skipped_and_out_of_scope_ones_answered() {
        let done = DoneSet::default();
        done.insert("a".into());
        let requests = vec![
            request("a", RequestKind::OptOutSaleShare),
            request("b", RequestKind::Delete),
        ];
        let plan = plan(
            requests,
            &recipient(vec![RequestKind::OptOutSaleShare]),
            &done,
            None,
            10,
        );
        assert_eq!(plan.already_confirmed, 1);
        assert!(plan.calls.is_empty());
        assert_eq!(plan.not_applicable.len(), 1);
        let (item, reason) = &plan.not_applicable[0];
        assert_eq!(item.work.request_id, "b");
        assert!(reason.contains("DELETE"), "{reason}");
    }

    #[test]
    fn a_retry_due_after_the_horizon_is_not_waited_for() {
        let state = |not_before| RetryState {
            attempts: 1,
            first_attempt_at: Some(0),
            not_before,
        };
        assert_eq!(due(&state(None), 1_000), Due::At(None));
        assert_eq!(due(&state(Some(900)), 1_000), Due::At(Some(900)));
        assert_eq!(due(&state(Some(1_001)), 1_000), Due::AfterHorizon);
    }
}
