//! Pure functions from suppression work to User Privacy API deletion requests. Amplitude
//! deletes by `user_id`, the business's own user id, so the subject is the request's
//! `CUSTOMER_ID` identifier in its raw form. No I/O.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use serde_json::{json, Value};

/// Path of the deletion endpoint under the REST host.
pub const DELETIONS_PATH: &str = "/api/2/deletions/users";
/// Most `amplitude_ids` and `user_ids` one request may carry (documented limit).
pub const MAX_IDS_PER_REQUEST: usize = 100;

/// One deletion request: its user ids and the work items they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletionRequest {
    /// Distinct `user_ids`, in batch order.
    pub user_ids: Vec<String>,
    /// Items carried, with the SHA-256 of their customer ids (for evidence).
    pub items: Vec<(usize, Vec<String>)>,
}

/// What a batch turns into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletionPlan {
    /// Requests to send, in batch order; an item is never split across two.
    pub requests: Vec<DeletionRequest>,
    /// Items no Amplitude user can match (no customer id): `NOT_FOUND`, with the reason.
    pub unmatched: Vec<(usize, String)>,
    /// Items that cannot be sent, with the reason.
    pub refused: Vec<(usize, String)>,
}

/// Collects the raw `CUSTOMER_ID` values of the items into requests of at most `max_ids` user
/// ids.
pub fn plan_deletions<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
    max_ids: usize,
) -> DeletionPlan {
    let mut plan = DeletionPlan::default();
    let mut current = DeletionRequest::default();
    for (index, work) in items {
        let customer_ids: Vec<_> = work.identifiers_of(IdentifierType::CustomerId).collect();
        if customer_ids.is_empty() {
            plan.unmatched.push((
                index,
                "no CUSTOMER_ID identifier: Amplitude deletes people by user_id, and this request \
                 carries none, so no Amplitude user matches it"
                    .to_owned(),
            ));
            continue;
        }
        let mut user_ids: Vec<String> = Vec::new();
        let mut hashes = Vec::new();
        let mut missing_raw = false;
        for identifier in customer_ids {
            match identifier.raw.as_ref().map(|r| r.expose().trim()) {
                Some(raw) if !raw.is_empty() => {
                    if !user_ids.iter().any(|u| u == raw) {
                        user_ids.push(raw.to_owned());
                        hashes.push(identifier.sha256.clone());
                    }
                }
                _ => missing_raw = true,
            }
        }
        if missing_raw {
            plan.refused.push((
                index,
                "the CUSTOMER_ID identifier has no raw value: Amplitude deletes by user_id, so \
                 intake must keep the customer id (encrypted) and the suppressor must be able to \
                 decrypt it"
                    .to_owned(),
            ));
            continue;
        }
        if user_ids.len() > max_ids {
            plan.refused.push((
                index,
                format!(
                    "{} customer ids exceed Amplitude's {max_ids} ids per deletion request",
                    user_ids.len()
                ),
            ));
            continue;
        }
        let new = user_ids
            .iter()
            .filter(|u| !current.user_ids.contains(u))
            .count();
        if current.user_ids.len() + new > max_ids {
            plan.requests.push(std::mem::take(&mut current));
        }
        for user_id in user_ids {
            if !current.user_ids.contains(&user_id) {
                current.user_ids.push(user_id);
            }
        }
        current.items.push((index, hashes));
    }
    if !current.items.is_empty() {
        plan.requests.push(current);
    }
    plan
}

/// Body of `POST /api/2/deletions/users`. Unknown user ids are skipped rather than failing the
/// whole request (`ignore_invalid_id`); booleans are written as Amplitude's documented examples
/// write them, `"true"` / `"false"`.
pub fn deletion_body(user_ids: &[String], requester: &str, delete_from_org: bool) -> Value {
    json!({
        "user_ids": user_ids,
        "requester": requester,
        "ignore_invalid_id": "true",
        "delete_from_org": if delete_from_org { "true" } else { "false" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{email, hashed, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;
    use hush_contracts::identifiers::sha256_hex;

    fn customer(raw: &str) -> hush_contracts::connector::WorkIdentifier {
        with_raw(IdentifierType::CustomerId, raw)
    }

    #[test]
    fn body_matches_the_documented_example() {
        assert_eq!(
            deletion_body(
                &["1000".into(), "2999".into()],
                "employee@yourcompany.com",
                false
            ),
            json!({"user_ids": ["1000", "2999"], "requester": "employee@yourcompany.com",
                   "ignore_invalid_id": "true", "delete_from_org": "false"})
        );
        assert_eq!(deletion_body(&[], "x", true)["delete_from_org"], "true");
    }

    #[test]
    fn customer_ids_become_user_ids_and_the_rest_is_sorted_out() {
        let batch = [
            work(RequestKind::Delete)
                .with(customer("u-1"))
                .with(customer("u-1")),
            work(RequestKind::Delete).with(email("a@example.com")),
            work(RequestKind::Delete).with(hashed(IdentifierType::CustomerId, "u-2")),
            work(RequestKind::Delete)
                .with(customer("u-1"))
                .with(customer("u-3")),
        ];
        let plan = plan_deletions(batch.iter().enumerate(), MAX_IDS_PER_REQUEST);
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].user_ids, vec!["u-1", "u-3"]);
        assert_eq!(
            plan.requests[0].items,
            vec![
                (0, vec![sha256_hex("u-1")]),
                (3, vec![sha256_hex("u-1"), sha256_hex("u-3")])
            ]
        );
        assert_eq!(plan.unmatched.len(), 1);
        assert_eq!(plan.unmatched[0].0, 1);
        assert!(plan.unmatched[0].1.contains("no CUSTOMER_ID"));
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, 2);
        assert!(plan.refused[0].1.contains("no raw value"));
    }

    #[test]
    fn requests_respect_the_id_limit_without_splitting_an_item() {
        let batch = [
            work(RequestKind::Delete).with(customer("a")),
            work(RequestKind::Delete)
                .with(customer("b"))
                .with(customer("c")),
            work(RequestKind::Delete).with(customer("c")),
            work(RequestKind::Delete)
                .with(customer("d"))
                .with(customer("e"))
                .with(customer("f")),
        ];
        let plan = plan_deletions(batch.iter().enumerate(), 2);
        let ids: Vec<_> = plan.requests.iter().map(|r| r.user_ids.clone()).collect();
        assert_eq!(ids, vec![vec!["a"], vec!["b", "c"]]);
        let items: Vec<_> = plan.requests[1].items.iter().map(|(i, _)| *i).collect();
        assert_eq!(items, vec![1, 2]);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, 3);
        assert!(plan.refused[0].1.contains("exceed"));
    }
}
