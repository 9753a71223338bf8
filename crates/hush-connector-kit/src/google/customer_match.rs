//! Removing people from a Google Customer Match list, as both of Google's paths to it need:
//! the Google Ads API (a `remove` operation of an offline user data job) and the Data Manager
//! API (an `AudienceMember` of `audienceMembers:remove`). Both carry one person's hashed
//! emails and phone numbers as `userIdentifiers`, refuse an unhashed value, find no one without
//! an email or phone, and have no opt-in call; each API keeps its own field names, limits and
//! request bodies.

use hush_contracts::connector::{
    fill_results, BatchResult, Completion, ConnectorError, ItemSlot, Operation, SuppressionWork,
    WorkIdentifier,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind};
use serde_json::{json, Value};

use crate::contacts::plan_contacts;

/// One hashed identifier as Google receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedIdentifier {
    /// `Email` or `Phone`.
    pub kind: IdentifierType,
    /// Lowercase hex SHA-256 of the value in Google's normal form (E.164 for phones).
    pub sha256: String,
}

impl HashedIdentifier {
    /// A short label for errors and evidence, e.g. `EMAIL sha256 5f4d…` (hash only, never raw
    /// data).
    pub fn label(&self) -> String {
        let kind = match self.kind {
            IdentifierType::Phone => "PHONE",
            _ => "EMAIL",
        };
        format!("{kind} sha256 {}", self.sha256)
    }
}

/// The names an API gives a hashed email and a hashed phone number in `userIdentifiers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentifierFields {
    /// Field of a hashed email (`hashedEmail`, `emailAddress`).
    pub email: &'static str,
    /// Field of a hashed phone number (`hashedPhoneNumber`, `phoneNumber`).
    pub phone: &'static str,
}

/// One person's identifiers in one entry of a removal (at most the API's limit per entry), and
/// the work item they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Index of the work item in the batch.
    pub item: usize,
    /// Identifiers of the person.
    pub identifiers: Vec<HashedIdentifier>,
}

impl Member {
    /// The member's `userIdentifiers` under the API's `fields`:
    /// `[{"hashedEmail": "…"}, {"hashedPhoneNumber": "…"}]`.
    pub fn user_identifiers(&self, fields: IdentifierFields) -> Vec<Value> {
        self.identifiers
            .iter()
            .map(|i| {
                let field = match i.kind {
                    IdentifierType::Phone => fields.phone,
                    _ => fields.email,
                };
                json!({ field: i.sha256 })
            })
            .collect()
    }
}

/// The hashes `members` carry, comma-separated in order: a removal's `identifier_sha256`
/// evidence.
pub fn identifier_digests<'a>(members: impl IntoIterator<Item = &'a Member>) -> String {
    members
        .into_iter()
        .flat_map(|m| m.identifiers.iter().map(|i| i.sha256.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// What a batch turns into: the members to remove, and the items not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovalPlan {
    /// Members in batch order.
    pub members: Vec<Member>,
    /// Items that cannot be sent, with the reason.
    pub refused: Vec<(usize, String)>,
    /// Items with nothing Customer Match matches on (no email, no phone): not found.
    pub unmatchable: Vec<usize>,
}

/// Turns work items (with their batch index) into members of at most `per_member`
/// identifiers, each email or phone sent as the hashes `google_form` makes of it. An item
/// without an email or phone is unmatchable (Customer Match matches on nothing else); an item
/// whose identifier is not a SHA-256 hex digest is refused, naming `api`: an unhashed value
/// never leaves Hush. An item with more identifiers than `per_member` becomes several members.
pub fn plan_removals<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
    google_form: impl Fn(&WorkIdentifier) -> Vec<String>,
    per_member: usize,
    api: &str,
) -> RemovalPlan {
    let plan = plan_contacts(items, google_form, per_member, api);
    let members = plan.groups.into_iter().map(|(item, group)| Member {
        item,
        identifiers: group
            .into_iter()
            .map(|(kind, sha256)| HashedIdentifier { kind, sha256 })
            .collect(),
    });
    RemovalPlan {
        members: members.collect(),
        refused: plan.refused,
        unmatchable: plan.unmatchable,
    }
}

/// A removal of `batch` before any call: one slot per item, answered already where no call is
/// needed (an opt-in is not applicable, an item `plan` refuses is a permanent error, an item
/// without an email or phone is `NOT_FOUND` saying `unmatchable`), and the members `plan`
/// makes of the other items, to send.
pub fn answered_before_sending<'a>(
    batch: &'a [SuppressionWork],
    plan: impl FnOnce(Vec<(usize, &'a SuppressionWork)>) -> RemovalPlan,
    unmatchable: &str,
) -> (Vec<ItemSlot>, Vec<Member>) {
    let mut results: Vec<ItemSlot> = vec![None; batch.len()];
    let mut removable = Vec::new();
    for (index, work) in batch.iter().enumerate() {
        if work.kind == RequestKind::OptInSaleShare {
            results[index] = Some(Ok(opt_in_not_applicable()));
        } else {
            removable.push((index, work));
        }
    }
    let plan = plan(removable);
    for (item, reason) in plan.refused {
        results[item] = Some(Err(ConnectorError::Permanent(reason)));
    }
    for item in plan.unmatchable {
        results[item] = Some(Ok(Completion::not_found(unmatchable)));
    }
    (results, plan.members)
}

/// Removes `batch` under `operation`, each person removed reported `SUPPRESSED` or, for a
/// deletion, `DELETED`: what needs no call is answered as in [`answered_before_sending`], and
/// `send` removes the members `plan` makes of the rest (it is not called when there are none),
/// filling the slots of the items they carry with that action. A slot left empty is an
/// internal error.
pub async fn remove<'a>(
    batch: &'a [SuppressionWork],
    operation: Operation,
    plan: impl FnOnce(Vec<(usize, &'a SuppressionWork)>) -> RemovalPlan,
    unmatchable: &str,
    send: impl AsyncFnOnce(&[Member], ConfirmationAction, &mut [ItemSlot]) -> Result<(), ConnectorError>,
) -> BatchResult {
    let action = match operation {
        Operation::Suppress => ConfirmationAction::Suppressed,
        Operation::Delete => ConfirmationAction::Deleted,
    };
    let (mut results, members) = answered_before_sending(batch, plan, unmatchable);
    if !members.is_empty() {
        send(&members, action, &mut results).await?;
    }
    Ok(fill_results(results))
}

/// Customer Match has no "opt back in": the business re-uploads people through its own
/// audience pipeline, so Hush records that there was nothing to do here.
fn opt_in_not_applicable() -> Completion {
    Completion::not_applicable(
        "Customer Match has no opt-in call; people are re-added by the business's own audience uploads",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: IdentifierFields = IdentifierFields {
        email: "hashedEmail",
        phone: "hashedPhoneNumber",
    };

    fn work(kind: RequestKind, identifiers: &[(IdentifierType, String)]) -> SuppressionWork {
        SuppressionWork {
            request_id: "r".into(),
            subject_key: "s".into(),
            kind,
            identifiers: identifiers
                .iter()
                .map(|(kind, sha256)| WorkIdentifier {
                    kind: *kind,
                    sha256: sha256.clone(),
                    raw: None,
                })
                .collect(),
            categories: vec![],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        }
    }

    fn as_sent(identifier: &WorkIdentifier) -> Vec<String> {
        vec![identifier.sha256.clone()]
    }

    #[test]
    fn a_member_names_each_identifier_by_the_apis_field_and_its_label_shows_only_the_hash() {
        let member = Member {
            item: 0,
            identifiers: vec![
                HashedIdentifier {
                    kind: IdentifierType::Email,
                    sha256: "e".repeat(64),
                },
                HashedIdentifier {
                    kind: IdentifierType::Phone,
                    sha256: "f".repeat(64),
                },
            ],
        };
        assert_eq!(
            member.user_identifiers(FIELDS),
            vec![
                json!({"hashedEmail": "e".repeat(64)}),
                json!({"hashedPhoneNumber": "f".repeat(64)})
            ]
        );
        assert_eq!(
            member.identifiers[1].label(),
            format!("PHONE sha256 {}", "f".repeat(64))
        );
        assert_eq!(
            identifier_digests([&member, &member]),
            [
                &"e".repeat(64),
                &"f".repeat(64),
                &"e".repeat(64),
                &"f".repeat(64)
            ]
            .map(|s| s.as_str())
            .join(",")
        );
    }

    #[test]
    fn opt_ins_refusals_and_unmatchable_people_are_answered_before_sending() {
        let batch = [
            work(
                RequestKind::OptInSaleShare,
                &[(IdentifierType::Email, "a".repeat(64))],
            ),
            work(
                RequestKind::OptOutSaleShare,
                &[(IdentifierType::Email, "jane@example.com".into())],
            ),
            work(
                RequestKind::Delete,
                &[(IdentifierType::CustomerId, "c".repeat(64))],
            ),
            work(
                RequestKind::Delete,
                &[(IdentifierType::Phone, "d".repeat(64))],
            ),
        ];
        let (results, members) = answered_before_sending(
            &batch,
            |items| plan_removals(items, as_sent, 20, "Google"),
            "no email or phone",
        );
        assert_eq!(
            results[0].as_ref().unwrap().as_ref().unwrap(),
            &opt_in_not_applicable()
        );
        assert!(
            matches!(&results[1], Some(Err(ConnectorError::Permanent(r))) if r.contains("unhashed") && !r.contains("jane"))
        );
        assert_eq!(
            results[2].as_ref().unwrap().as_ref().unwrap(),
            &Completion::not_found("no email or phone")
        );
        assert!(results[3].is_none(), "left for the call");
        assert_eq!(
            members,
            vec![Member {
                item: 3,
                identifiers: vec![HashedIdentifier {
                    kind: IdentifierType::Phone,
                    sha256: "d".repeat(64)
                }]
            }]
        );
    }

    #[tokio::test]
    async fn a_removal_sends_only_the_members_with_the_operations_action_and_fills_the_rest() {
        let batch = [
            work(
                RequestKind::Delete,
                &[(IdentifierType::Phone, "d".repeat(64))],
            ),
            work(
                RequestKind::Delete,
                &[(IdentifierType::Email, "e".repeat(64))],
            ),
            work(RequestKind::Delete, &[]),
        ];
        let plan = |items| plan_removals(items, as_sent, 20, "Google");
        let mut sent = Vec::new();
        let send = async |members: &[Member], action, results: &mut [ItemSlot]| {
            sent.push((members.len(), action));
            results[members[0].item] = Some(Ok(Completion::new(action, Default::default())));
            Ok(())
        };
        let results = remove(&batch, Operation::Delete, plan, "nothing", send)
            .await
            .unwrap();
        assert_eq!(sent, [(2, ConfirmationAction::Deleted)]);
        assert_eq!(
            results[0].as_ref().unwrap().action,
            ConfirmationAction::Deleted
        );
        assert!(
            matches!(&results[1], Err(ConnectorError::Permanent(r)) if r.contains("internal error")),
            "a slot the call left empty is an error"
        );
        assert_eq!(results[2], Ok(Completion::not_found("nothing")));

        let opt_in = [work(RequestKind::OptInSaleShare, &[])];
        let unused = async |_: &[Member], _, _: &mut [ItemSlot]| -> Result<(), ConnectorError> {
            panic!("nothing to send")
        };
        let results = remove(&opt_in, Operation::Suppress, plan, "nothing", unused)
            .await
            .unwrap();
        assert_eq!(results, [Ok(opt_in_not_applicable())]);
    }

    #[test]
    fn a_person_with_more_identifiers_than_a_member_holds_becomes_several_members() {
        let many: Vec<_> = (0..5)
            .map(|n| (IdentifierType::Email, format!("{n}").repeat(64)))
            .collect();
        let batch = [work(RequestKind::OptOutSaleShare, &many)];
        let plan = plan_removals(batch.iter().enumerate(), as_sent, 2, "Google");
        let sizes: Vec<_> = plan
            .members
            .iter()
            .map(|m| (m.item, m.identifiers.len()))
            .collect();
        assert_eq!(sizes, vec![(0, 2), (0, 2), (0, 1)]);
    }
}
