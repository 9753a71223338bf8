//! Pure functions from suppression work to a Segment workspace regulation. Segment regulates
//! by `userId`, the business's own user id, so the subject is the request's `CUSTOMER_ID`
//! identifier in its raw form. No I/O.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::{IdentifierType, RequestKind};
use serde_json::{json, Value};

/// Most `subjectIds` one regulation may carry (documented Public API limit).
pub const MAX_SUBJECT_IDS: usize = 5_000;

/// `regulationType` for a request kind: `SUPPRESS_ONLY` for an opt-out or a limit on sensitive
/// PI, `SUPPRESS_WITH_DELETE` for a deletion. An opt-in has none.
pub fn regulation_type(kind: RequestKind) -> Option<&'static str> {
    match kind {
        RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => Some("SUPPRESS_ONLY"),
        RequestKind::Delete => Some("SUPPRESS_WITH_DELETE"),
        RequestKind::OptInSaleShare => None,
    }
}

/// One regulation: its subjects and the work items they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regulation {
    /// Distinct `userId`s, in batch order.
    pub subject_ids: Vec<String>,
    /// Items carried, with the SHA-256 of their customer ids (for evidence).
    pub items: Vec<(usize, Vec<String>)>,
}

/// What a batch turns into: regulations of at most the subject limit, and refused items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegulationPlan {
    /// Regulations to create, in batch order; an item is never split across two.
    pub regulations: Vec<Regulation>,
    /// Items that cannot be regulated, with the reason.
    pub refused: Vec<(usize, String)>,
    /// Items no Segment user can match (no customer id): `NOT_FOUND`, with the reason.
    pub unmatched: Vec<(usize, String)>,
}

/// Collects the raw `CUSTOMER_ID` values of the items into regulations of at most
/// `max_subjects` subject ids. An item without a usable customer id is refused: Segment has no
/// other handle on a person.
pub fn plan_regulations<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
    max_subjects: usize,
) -> RegulationPlan {
    let mut plan = RegulationPlan::default();
    let mut current = Regulation::default();
    for (index, work) in items {
        let customer_ids: Vec<_> = work.identifiers_of(IdentifierType::CustomerId).collect();
        let mut subjects: Vec<String> = Vec::new();
        let mut hashes = Vec::new();
        for identifier in &customer_ids {
            let Some(raw) = identifier.raw.as_ref().map(|r| r.expose().trim()) else {
                continue;
            };
            if raw.is_empty() {
                continue;
            }
            if !subjects.iter().any(|s| s == raw) {
                subjects.push(raw.to_owned());
            }
            hashes.push(identifier.sha256.clone());
        }
        if subjects.is_empty() {
            if customer_ids.is_empty() {
                plan.unmatched.push((
                    index,
                    "no CUSTOMER_ID identifier: Segment knows people by userId, and this request \
                     carries none, so no Segment user matches it"
                        .to_owned(),
                ));
            } else {
                plan.refused.push((
                    index,
                    "the CUSTOMER_ID identifier has no raw value: Segment regulates by userId, so \
                     intake must keep the customer id (encrypted) and the suppressor must be able \
                     to decrypt it"
                        .to_owned(),
                ));
            }
            continue;
        }
        if subjects.len() > max_subjects {
            plan.refused.push((
                index,
                format!(
                    "{} customer ids exceed Segment's {max_subjects} subject ids per regulation",
                    subjects.len()
                ),
            ));
            continue;
        }
        let new = subjects
            .iter()
            .filter(|s| !current.subject_ids.contains(s))
            .count();
        if current.subject_ids.len() + new > max_subjects {
            plan.regulations.push(std::mem::take(&mut current));
        }
        for subject in subjects {
            if !current.subject_ids.contains(&subject) {
                current.subject_ids.push(subject);
            }
        }
        current.items.push((index, hashes));
    }
    if !current.items.is_empty() {
        plan.regulations.push(current);
    }
    plan
}

/// Body of `POST /regulations`.
pub fn regulation_body(regulation_type: &str, subject_ids: &[String]) -> Value {
    json!({
        "regulationType": regulation_type,
        "subjectType": "USER_ID",
        "subjectIds": subject_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{work, WorkExt};
    use hush_contracts::connector::{RawValue, WorkIdentifier};
    use hush_contracts::identifiers::sha256_hex;

    fn customer(raw: Option<&str>) -> WorkIdentifier {
        WorkIdentifier {
            kind: IdentifierType::CustomerId,
            sha256: sha256_hex(raw.unwrap_or("unknown")),
            raw: raw.map(RawValue::new),
        }
    }

    #[test]
    fn body_matches_the_documented_example() {
        assert_eq!(
            regulation_body("SUPPRESS_ONLY", &["test_user_id_1".into()]),
            json!({"regulationType": "SUPPRESS_ONLY", "subjectType": "USER_ID", "subjectIds": ["test_user_id_1"]})
        );
    }

    #[test]
    fn kinds_map_to_regulation_types() {
        assert_eq!(
            regulation_type(RequestKind::OptOutSaleShare),
            Some("SUPPRESS_ONLY")
        );
        assert_eq!(
            regulation_type(RequestKind::LimitSensitive),
            Some("SUPPRESS_ONLY")
        );
        assert_eq!(
            regulation_type(RequestKind::Delete),
            Some("SUPPRESS_WITH_DELETE")
        );
        assert_eq!(regulation_type(RequestKind::OptInSaleShare), None);
    }

    #[test]
    fn subjects_are_raw_customer_ids_deduplicated_and_a_request_without_one_is_not_found() {
        let email = WorkIdentifier {
            kind: IdentifierType::Email,
            sha256: sha256_hex("a@example.com"),
            raw: Some(RawValue::new("a@example.com")),
        };
        let batch = [
            work(RequestKind::Delete)
                .with(email.clone())
                .with(customer(Some("u-1"))),
            work(RequestKind::Delete).with(email),
            work(RequestKind::Delete).with(customer(None)),
            work(RequestKind::Delete)
                .with(customer(Some("u-1")))
                .with(customer(Some("u-2"))),
        ];
        let plan = plan_regulations(batch.iter().enumerate(), MAX_SUBJECT_IDS);
        assert_eq!(plan.regulations.len(), 1);
        let regulation = &plan.regulations[0];
        assert_eq!(regulation.subject_ids, vec!["u-1", "u-2"]);
        assert_eq!(regulation.items[0], (0, vec![sha256_hex("u-1")]));
        assert_eq!(
            regulation.items[1],
            (3, vec![sha256_hex("u-1"), sha256_hex("u-2")])
        );
        assert_eq!(
            plan.unmatched.len(),
            1,
            "no customer id: no Segment user matches"
        );
        assert_eq!(plan.unmatched[0].0, 1);
        assert!(plan.unmatched[0].1.contains("no CUSTOMER_ID"));
        assert_eq!(
            plan.refused.len(),
            1,
            "a customer id without its raw value is refused"
        );
        assert_eq!(plan.refused[0].0, 2);
        assert!(plan.refused[0].1.contains("no raw value"));
    }

    #[test]
    fn regulations_respect_the_subject_limit_without_splitting_an_item() {
        let batch = [
            work(RequestKind::Delete).with(customer(Some("a"))),
            work(RequestKind::Delete)
                .with(customer(Some("b")))
                .with(customer(Some("c"))),
            work(RequestKind::Delete).with(customer(Some("c"))),
            work(RequestKind::Delete)
                .with(customer(Some("d")))
                .with(customer(Some("e")))
                .with(customer(Some("f"))),
        ];
        let plan = plan_regulations(batch.iter().enumerate(), 2);
        let subjects: Vec<_> = plan
            .regulations
            .iter()
            .map(|r| r.subject_ids.clone())
            .collect();
        assert_eq!(subjects, vec![vec!["a"], vec!["b", "c"]]);
        assert_eq!(
            plan.regulations[1]
                .items
                .iter()
                .map(|(i, _)| *i)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, 3);
    }
}
