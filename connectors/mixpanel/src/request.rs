//! Pure functions from suppression work to GDPR/CCPA API deletion tasks. Mixpanel deletes by
//! `distinct_id`; Hush sends the request's raw `CUSTOMER_ID` (the id the business passes to
//! Mixpanel's `identify`). No I/O.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use serde_json::{json, Value};

/// Path of the deletion endpoint under the host.
pub const DELETIONS_PATH: &str = "/api/app/data-deletions/v3.0";
/// Most `distinct_ids` one request may carry (documented limit).
pub const MAX_DISTINCT_IDS: usize = 2_000;
/// `compliance_type` of every task Hush creates: the requests are made under the CCPA and the
/// state laws that copy it.
pub const COMPLIANCE_TYPE: &str = "CCPA";

/// One deletion task: its distinct ids and the work items they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletionTask {
    /// Distinct `distinct_ids`, in batch order.
    pub distinct_ids: Vec<String>,
    /// Items carried, with the SHA-256 of their customer ids (for evidence).
    pub items: Vec<(usize, Vec<String>)>,
}

/// What a batch turns into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPlan {
    /// Tasks to create, in batch order; an item is never split across two.
    pub tasks: Vec<DeletionTask>,
    /// Items no Mixpanel user can match (no customer id): `NOT_FOUND`, with the reason.
    pub unmatched: Vec<(usize, String)>,
    /// Items that cannot be sent, with the reason.
    pub refused: Vec<(usize, String)>,
}

/// Collects the raw `CUSTOMER_ID` values of the items into tasks of at most `max_ids`
/// distinct ids.
pub fn plan_tasks<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
    max_ids: usize,
) -> TaskPlan {
    let mut plan = TaskPlan::default();
    let mut current = DeletionTask::default();
    for (index, work) in items {
        let customer_ids: Vec<_> = work.identifiers_of(IdentifierType::CustomerId).collect();
        if customer_ids.is_empty() {
            plan.unmatched.push((
                index,
                "no CUSTOMER_ID identifier: Mixpanel deletes people by distinct_id, and this \
                 request carries none, so no Mixpanel user matches it"
                    .to_owned(),
            ));
            continue;
        }
        let mut ids: Vec<String> = Vec::new();
        let mut hashes = Vec::new();
        let mut missing_raw = false;
        for identifier in customer_ids {
            match identifier.raw.as_ref().map(|r| r.expose().trim()) {
                Some(raw) if !raw.is_empty() => {
                    if !ids.iter().any(|i| i == raw) {
                        ids.push(raw.to_owned());
                        hashes.push(identifier.sha256.clone());
                    }
                }
                _ => missing_raw = true,
            }
        }
        if missing_raw {
            plan.refused.push((
                index,
                "the CUSTOMER_ID identifier has no raw value: Mixpanel deletes by distinct_id, \
                 so intake must keep the customer id (encrypted) and the suppressor must be able \
                 to decrypt it"
                    .to_owned(),
            ));
            continue;
        }
        if ids.len() > max_ids {
            plan.refused.push((
                index,
                format!(
                    "{} customer ids exceed Mixpanel's {max_ids} distinct ids per deletion task",
                    ids.len()
                ),
            ));
            continue;
        }
        let new = ids
            .iter()
            .filter(|i| !current.distinct_ids.contains(i))
            .count();
        if current.distinct_ids.len() + new > max_ids {
            plan.tasks.push(std::mem::take(&mut current));
        }
        for id in ids {
            if !current.distinct_ids.contains(&id) {
                current.distinct_ids.push(id);
            }
        }
        current.items.push((index, hashes));
    }
    if !current.items.is_empty() {
        plan.tasks.push(current);
    }
    plan
}

/// Body of `POST /api/app/data-deletions/v3.0/`.
pub fn deletion_body(distinct_ids: &[String]) -> Value {
    json!({"distinct_ids": distinct_ids, "compliance_type": COMPLIANCE_TYPE})
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
    fn body_names_the_ccpa() {
        assert_eq!(
            deletion_body(&["distinct_id_1".into()]),
            json!({"distinct_ids": ["distinct_id_1"], "compliance_type": "CCPA"})
        );
    }

    #[test]
    fn customer_ids_become_distinct_ids_and_the_rest_is_sorted_out() {
        let batch = [
            work(RequestKind::Delete)
                .with(customer("d-1"))
                .with(customer("d-1")),
            work(RequestKind::Delete).with(email("a@example.com")),
            work(RequestKind::Delete).with(hashed(IdentifierType::CustomerId, "d-2")),
        ];
        let plan = plan_tasks(batch.iter().enumerate(), MAX_DISTINCT_IDS);
        assert_eq!(plan.tasks.len(), 1);
        assert_eq!(plan.tasks[0].distinct_ids, vec!["d-1"]);
        assert_eq!(plan.tasks[0].items, vec![(0, vec![sha256_hex("d-1")])]);
        assert_eq!(plan.unmatched[0].0, 1);
        assert_eq!(plan.refused[0].0, 2);
        assert!(plan.refused[0].1.contains("no raw value"));
    }

    #[test]
    fn tasks_respect_the_id_limit_without_splitting_an_item() {
        let batch = [
            work(RequestKind::Delete).with(customer("a")),
            work(RequestKind::Delete)
                .with(customer("b"))
                .with(customer("c")),
            work(RequestKind::Delete)
                .with(customer("d"))
                .with(customer("e"))
                .with(customer("f")),
        ];
        let plan = plan_tasks(batch.iter().enumerate(), 2);
        let ids: Vec<_> = plan.tasks.iter().map(|t| t.distinct_ids.clone()).collect();
        assert_eq!(ids, vec![vec!["a"], vec!["b", "c"]]);
        assert_eq!(plan.refused[0].0, 2);
    }
}
