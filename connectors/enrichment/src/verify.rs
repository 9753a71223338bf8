//! Read-back: whether the deny-list's answer shows a request's suppression in force. The
//! deny-list is the only place the suppression exists, so reading it is the verification.

use std::collections::{BTreeMap, BTreeSet};

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::RequestKind;

use crate::client::CheckAnswer;

/// The deny reason of a deletion. A deletion counts as in force only when every identifier is
/// denied for this reason, because no later opt-in can lift it.
pub const DELETED: &str = "DELETED";

/// What the deny-list shows for one request whose suppression is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    /// Distinct identifiers of the request, all denied.
    pub denied_identifiers: usize,
    /// The deny reasons seen, e.g. `{"SALE_SHARE_OPT_OUT"}`.
    pub reasons: BTreeSet<String>,
}

/// `Some` when every identifier of `work` is denied in `answer` (for a `DELETE`, denied as
/// `DELETED`); `None` while any is still allowed. `answer` may cover more identifiers than
/// `work` (one call serves a whole batch).
pub fn enforced(work: &SuppressionWork, answer: &CheckAnswer) -> Option<Enforcement> {
    let reasons: BTreeMap<&str, &str> = answer
        .denied
        .iter()
        .map(|d| (d.sha256.as_str(), d.reason.as_str()))
        .collect();
    let hashes: BTreeSet<&str> = work.identifiers.iter().map(|i| i.sha256.as_str()).collect();
    let mut seen = BTreeSet::new();
    for hash in &hashes {
        let reason = reasons.get(hash)?;
        if work.kind == RequestKind::Delete && *reason != DELETED {
            return None;
        }
        seen.insert((*reason).to_owned());
    }
    (!hashes.is_empty()).then_some(Enforcement {
        denied_identifiers: hashes.len(),
        reasons: seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::DeniedEntry;
    use hush_contracts::connector::WorkIdentifier;
    use hush_contracts::events::IdentifierType;

    fn work(kind: RequestKind, hashes: &[&str]) -> SuppressionWork {
        SuppressionWork {
            request_id: "r".into(),
            subject_key: "s".into(),
            kind,
            identifiers: hashes
                .iter()
                .map(|h| WorkIdentifier {
                    kind: IdentifierType::Email,
                    sha256: (*h).into(),
                    raw: None,
                })
                .collect(),
            categories: vec![],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        }
    }

    fn answer(denied: &[(&str, &str)]) -> CheckAnswer {
        CheckAnswer {
            allowed: denied.is_empty(),
            denied: denied
                .iter()
                .map(|(sha256, reason)| DeniedEntry {
                    sha256: (*sha256).into(),
                    reason: (*reason).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn an_opt_out_is_in_force_when_every_identifier_is_denied_for_any_reason() {
        let shown = enforced(
            &work(RequestKind::OptOutSaleShare, &["a", "b", "a"]),
            &answer(&[
                ("a", "SALE_SHARE_OPT_OUT"),
                ("b", "DELETED"),
                ("c", "DELETED"),
            ]),
        )
        .unwrap();
        assert_eq!(shown.denied_identifiers, 2);
        assert_eq!(
            shown.reasons,
            BTreeSet::from(["DELETED".to_owned(), "SALE_SHARE_OPT_OUT".to_owned()])
        );
    }

    #[test]
    fn one_allowed_identifier_means_not_yet_in_force() {
        assert_eq!(
            enforced(
                &work(RequestKind::LimitSensitive, &["a", "b"]),
                &answer(&[("a", "SENSITIVE_LIMITED")]),
            ),
            None
        );
    }

    #[test]
    fn a_deletion_needs_every_identifier_denied_as_deleted() {
        let opted_out = answer(&[("a", "SALE_SHARE_OPT_OUT")]);
        assert_eq!(
            enforced(&work(RequestKind::Delete, &["a"]), &opted_out),
            None
        );
        let deleted = answer(&[("a", "DELETED")]);
        assert!(enforced(&work(RequestKind::Delete, &["a"]), &deleted).is_some());
    }
}
