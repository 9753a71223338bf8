//! Pure functions: suppression work → the body of LinkedIn's
//! `POST /rest/dmpSegments/{segment_id}/users` with `X-RestLi-Method: BATCH_CREATE`. No I/O.
//!
//! Each person becomes one element `{"action":"REMOVE","userIds":[…]}` carrying every id
//! LinkedIn matches users on: `SHA256_EMAIL` (the lowercase hex SHA-256 of the trimmed,
//! lowercased email, as intake hashed it) and `GOOGLE_AID` (the raw advertising id; LinkedIn
//! does not take it hashed, so it is sent only when the suppressor decrypted the raw value).
//! LinkedIn has no phone id type for DMP users.

use hush_connector_kit::outcome::BatchPlan;
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::is_sha256_hex;
use serde::Serialize;

/// Most elements sent in one call. The LinkedIn pages consulted document a per-member rate
/// (600 requests a minute) but no element count for `BATCH_CREATE`; 5,000 is a conservative cap.
pub const MAX_ELEMENTS_PER_CALL: usize = 5_000;

/// LinkedIn's documented per-member limit on the DMP streaming endpoints, per minute.
pub const RATE_LIMIT_PER_MINUTE: usize = 500;

/// Identifier types the connector sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IdType {
    /// Lowercase hex SHA-256 of a normalised email.
    #[serde(rename = "SHA256_EMAIL")]
    Sha256Email,
    /// Android advertising id, raw.
    #[serde(rename = "GOOGLE_AID")]
    GoogleAid,
}

/// One id of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserId {
    /// Type of the id.
    #[serde(rename = "idType")]
    pub id_type: IdType,
    /// The id in its type's format.
    #[serde(rename = "idValue")]
    pub id_value: String,
}

/// What to do with a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    /// Remove from the segment (idempotent: removing an absent user succeeds).
    #[serde(rename = "REMOVE")]
    Remove,
}

/// One user of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    /// Always `REMOVE` here.
    pub action: Action,
    /// Ids of the user.
    #[serde(rename = "userIds")]
    pub user_ids: Vec<UserId>,
}

/// Body of a `BATCH_CREATE` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchBody {
    /// One element per user.
    pub elements: Vec<Element>,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalCall {
    /// The body.
    pub body: BatchBody,
    /// For each element, the index of the work item it belongs to.
    pub owners: Vec<usize>,
}

/// What the connector can do for one work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPlan {
    /// Its element is in the calls.
    Send {
        /// Ids in the element.
        user_ids: usize,
        /// Mobile advertising ids left out for want of a raw value.
        maids_without_raw: usize,
    },
    /// The person has no id LinkedIn matches DMP users on (email, mobile advertising id).
    NothingToMatch,
    /// The person cannot be sent; the reason says why.
    Unsendable(String),
}

/// The calls for a batch and what happens to each item.
pub type RemovalPlan = BatchPlan<ItemPlan, RemovalCall>;

fn element_for(work: &SuppressionWork) -> (ItemPlan, Option<Element>) {
    let mut user_ids = Vec::new();
    let mut malformed = 0;
    let mut maids_without_raw = 0;
    for identifier in &work.identifiers {
        match identifier.kind {
            IdentifierType::Email if is_sha256_hex(&identifier.sha256) => user_ids.push(UserId {
                id_type: IdType::Sha256Email,
                id_value: identifier.sha256.clone(),
            }),
            IdentifierType::Email => malformed += 1,
            IdentifierType::Maid => match &identifier.raw {
                Some(raw) => user_ids.push(UserId {
                    id_type: IdType::GoogleAid,
                    id_value: raw.expose().to_owned(),
                }),
                None => maids_without_raw += 1,
            },
            IdentifierType::Phone
            | IdentifierType::DeviceId
            | IdentifierType::CookieId
            | IdentifierType::CustomerId => {}
        }
    }
    if malformed > 0 {
        let reason = format!(
            "{malformed} email hash(es) are not lowercase SHA-256 hex digests; LinkedIn refuses \
             the whole batch for such a value"
        );
        return (ItemPlan::Unsendable(reason), None);
    }
    if user_ids.is_empty() {
        let plan = if maids_without_raw > 0 {
            ItemPlan::Unsendable(
                "LinkedIn matches mobile advertising ids (GOOGLE_AID) on the raw id, and this \
                 request carries only its hash; keep raw MAIDs at intake for this recipient"
                    .to_owned(),
            )
        } else {
            ItemPlan::NothingToMatch
        };
        return (plan, None);
    }
    let plan = ItemPlan::Send {
        user_ids: user_ids.len(),
        maids_without_raw,
    };
    let element = Element {
        action: Action::Remove,
        user_ids,
    };
    (plan, Some(element))
}

/// Plans the removal of every person in `batch` from the segment, at most
/// [`MAX_ELEMENTS_PER_CALL`] people a call.
pub fn plan_removal(batch: &[SuppressionWork]) -> RemovalPlan {
    let mut items = Vec::with_capacity(batch.len());
    let mut elements = Vec::new();
    let mut owners = Vec::new();
    for (index, work) in batch.iter().enumerate() {
        let (plan, element) = element_for(work);
        items.push(plan);
        if let Some(element) = element {
            elements.push(element);
            owners.push(index);
        }
    }
    let calls = elements
        .chunks(MAX_ELEMENTS_PER_CALL)
        .zip(owners.chunks(MAX_ELEMENTS_PER_CALL))
        .map(|(elements, owners)| RemovalCall {
            body: BatchBody {
                elements: elements.to_vec(),
            },
            owners: owners.to_vec(),
        })
        .collect();
    RemovalPlan { items, calls }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::audience::unhashed_email;
    use hush_connector_kit::testing::{email, hashed, opt_out_of, with_raw};

    use hush_contracts::identifiers::sha256_hex;
    use serde_json::json;

    const GAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

    #[test]
    fn each_person_is_one_remove_element_in_the_documented_shape() {
        let plan = plan_removal(&[
            opt_out_of(vec![email("a@example.com")]),
            opt_out_of(vec![
                email("b@example.com"),
                with_raw(IdentifierType::Maid, GAID),
            ]),
        ]);
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(
            serde_json::to_value(&plan.calls[0].body).unwrap(),
            json!({"elements": [
                {"action": "REMOVE", "userIds": [
                    {"idType": "SHA256_EMAIL", "idValue": sha256_hex("a@example.com")}
                ]},
                {"action": "REMOVE", "userIds": [
                    {"idType": "SHA256_EMAIL", "idValue": sha256_hex("b@example.com")},
                    {"idType": "GOOGLE_AID", "idValue": "38400000-8cf0-11bd-b23e-10b96e40000d"}
                ]},
            ]})
        );
        assert_eq!(plan.calls[0].owners, vec![0, 1]);
    }

    #[test]
    fn more_than_five_thousand_people_take_two_calls() {
        let batch: Vec<_> = (0..5_001)
            .map(|i| opt_out_of(vec![email(&format!("p{i}@example.com"))]))
            .collect();
        let plan = plan_removal(&batch);
        assert_eq!(plan.calls.len(), 2);
        assert_eq!(plan.calls[0].body.elements.len(), 5_000);
        assert_eq!(plan.calls[1].owners, vec![5_000]);
    }

    #[test]
    fn a_maid_without_raw_value_is_left_out_and_counted() {
        let maid_hash = hashed(IdentifierType::Maid, GAID);
        let plan = plan_removal(&[opt_out_of(vec![email("a@example.com"), maid_hash])]);
        assert_eq!(
            plan.items,
            vec![ItemPlan::Send {
                user_ids: 1,
                maids_without_raw: 1
            }]
        );
    }

    #[test]
    fn people_linkedin_cannot_match_are_not_sent() {
        let plan = plan_removal(&[
            opt_out_of(vec![unhashed_email("Jane@Example.com")]),
            opt_out_of(vec![hashed(IdentifierType::Maid, GAID)]),
            opt_out_of(vec![hashed(IdentifierType::Phone, "+14155550100")]),
        ]);
        assert!(plan.calls.is_empty());
        assert!(matches!(&plan.items[0], ItemPlan::Unsendable(r) if r.contains("SHA-256")));
        assert!(matches!(&plan.items[1], ItemPlan::Unsendable(r) if r.contains("GOOGLE_AID")));
        assert_eq!(plan.items[2], ItemPlan::NothingToMatch);
    }
}
