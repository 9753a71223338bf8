//! Pure translation of suppression work into HubSpot request bodies: which contact (by raw
//! email, HubSpot's `idProperty=email`), which property and value, and how writes are grouped
//! into calls (batch update holds at most 100 distinct contacts).

use std::collections::{BTreeMap, BTreeSet};

use hush_contracts::connector::{ConnectorError, SuppressionWork};
use hush_contracts::events::{IdentifierType, RequestKind};
use hush_contracts::identifiers::normalise;
use serde::{Deserialize, Serialize};

use crate::config::HubSpotSettings;

/// Most inputs one `batch/update` call accepts.
pub const BATCH_LIMIT: usize = 100;

/// The unique property contacts are addressed by.
pub const ID_PROPERTY: &str = "email";

/// Body of `PATCH /crm/objects/{version}/contacts/{email}?idProperty=email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertiesBody {
    /// Property internal name → value.
    pub properties: BTreeMap<String, String>,
}

/// Body of `POST /crm/objects/{version}/contacts/batch/update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchUpdateBody {
    /// One input per contact, at most [`BATCH_LIMIT`], ids unique.
    pub inputs: Vec<BatchInput>,
}

/// One contact in a batch update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// The contact's email (or object id when `id_property` is absent).
    pub id: String,
    /// `email`; absent means `id` is HubSpot's object id.
    #[serde(
        rename = "idProperty",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub id_property: Option<String>,
    /// Property internal name → value.
    pub properties: BTreeMap<String, String>,
}

/// Body of `POST /crm/objects/{version}/contacts/batch/read`: contacts looked up by email, with
/// the properties to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReadBody {
    /// One input per contact, at most [`BATCH_LIMIT`].
    pub inputs: Vec<BatchReadInput>,
    /// `email`: the inputs' ids are emails.
    #[serde(rename = "idProperty")]
    pub id_property: &'static str,
    /// Properties to return for each contact.
    pub properties: Vec<String>,
}

/// One contact in a batch read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReadInput {
    /// The contact's email.
    pub id: String,
}

/// The body reading `emails` (at most [`BATCH_LIMIT`]) with `properties` and `email` itself, so
/// each result can be matched to its input.
pub fn batch_read_body(emails: &[&str], properties: &BTreeSet<&str>) -> BatchReadBody {
    let mut properties: BTreeSet<&str> = properties.clone();
    properties.insert(ID_PROPERTY);
    BatchReadBody {
        inputs: emails
            .iter()
            .map(|email| BatchReadInput {
                id: (*email).to_owned(),
            })
            .collect(),
        id_property: ID_PROPERTY,
        properties: properties.into_iter().map(str::to_owned).collect(),
    }
}

/// Body of `POST /crm/objects/{version}/contacts/gdpr-delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GdprDeleteBody {
    /// The contact's email (or object id when `id_property` is absent).
    #[serde(rename = "objectId")]
    pub object_id: String,
    /// `email`; absent means `object_id` is HubSpot's object id.
    #[serde(
        rename = "idProperty",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub id_property: Option<String>,
}

/// A property value to write for a request kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    /// Property internal name.
    pub property: String,
    /// `"true"` or `"false"`.
    pub value: &'static str,
}

/// The property write a request kind calls for: opt-out sets `opt_out_property` to `"true"`,
/// opt-in sets it back to `"false"`, limit sets `limit_property` to `"true"`. A deletion is not
/// a property write (`None`).
pub fn property_change(kind: RequestKind, settings: &HubSpotSettings) -> Option<PropertyChange> {
    let (property, value) = match kind {
        RequestKind::OptOutSaleShare => (&settings.opt_out_property, "true"),
        RequestKind::OptInSaleShare => (&settings.opt_out_property, "false"),
        RequestKind::LimitSensitive => (&settings.limit_property, "true"),
        RequestKind::Delete => return None,
    };
    Some(PropertyChange {
        property: property.clone(),
        value,
    })
}

/// The normalised raw emails HubSpot needs to find the subject's contacts, deduplicated, in
/// identifier order. Refused (permanently) when the work has no EMAIL identifier, when any EMAIL
/// identifier arrived without its raw value, or when a raw value is not an email address. Errors
/// never contain the address.
pub fn contact_emails(work: &SuppressionWork) -> Result<Vec<String>, ConnectorError> {
    let mut emails = Vec::new();
    let mut seen = BTreeSet::new();
    let mut without_raw = 0;
    for identifier in work.identifiers_of(IdentifierType::Email) {
        let Some(raw) = &identifier.raw else {
            without_raw += 1;
            continue;
        };
        let email = normalise(IdentifierType::Email, raw.expose()).map_err(|_| {
            ConnectorError::Permanent(format!(
                "the raw value of EMAIL identifier {} is not an email address",
                identifier.sha256
            ))
        })?;
        if seen.insert(email.clone()) {
            emails.push(email);
        }
    }
    if without_raw > 0 {
        return Err(ConnectorError::Permanent(format!(
            "HubSpot finds contacts by raw email (idProperty=email) but {without_raw} EMAIL \
             identifier(s) of request {} arrived hashed only; intake must keep raw emails \
             (encrypted) for this recipient",
            work.request_id
        )));
    }
    if emails.is_empty() {
        return Err(ConnectorError::Permanent(format!(
            "HubSpot finds contacts by email, and request {} carries no EMAIL identifier",
            work.request_id
        )));
    }
    Ok(emails)
}

/// One contact write on behalf of one work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactUpdate {
    /// Index of the work item in its batch.
    pub item: usize,
    /// Normalised email of the contact.
    pub email: String,
    /// What to write.
    pub change: PropertyChange,
}

/// Groups writes into calls, keeping their order: a call holds at most [`BATCH_LIMIT`] writes
/// and never the same contact twice (HubSpot refuses duplicate ids), so a later write to the
/// same contact lands in a later call. A call of one write is sent as a single `PATCH`.
pub fn plan_calls(updates: Vec<ContactUpdate>) -> Vec<Vec<ContactUpdate>> {
    let mut calls: Vec<Vec<ContactUpdate>> = Vec::new();
    let mut in_current = BTreeSet::new();
    for update in updates {
        let start_new = match calls.last() {
            None => true,
            Some(current) => current.len() >= BATCH_LIMIT || in_current.contains(&update.email),
        };
        if start_new {
            calls.push(Vec::new());
            in_current.clear();
        }
        in_current.insert(update.email.clone());
        calls
            .last_mut()
            .expect("a call was just pushed")
            .push(update);
    }
    calls
}

/// Body of a single-contact `PATCH`.
pub fn single_update_body(change: &PropertyChange) -> PropertiesBody {
    PropertiesBody {
        properties: BTreeMap::from([(change.property.clone(), change.value.to_owned())]),
    }
}

/// Body of a `batch/update` call, inputs in the order given.
pub fn batch_update_body(updates: &[ContactUpdate]) -> BatchUpdateBody {
    BatchUpdateBody {
        inputs: updates
            .iter()
            .map(|update| BatchInput {
                id: update.email.clone(),
                id_property: Some(ID_PROPERTY.to_owned()),
                properties: single_update_body(&update.change).properties,
            })
            .collect(),
    }
}

/// Body of a GDPR delete by email.
pub fn gdpr_delete_body(email: &str) -> GdprDeleteBody {
    GdprDeleteBody {
        object_id: email.to_owned(),
        id_property: Some(ID_PROPERTY.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::opt_out_of;
    use hush_contracts::connector::{RawValue, WorkIdentifier};
    use hush_contracts::identifiers::sha256_hex;
    use serde_json::json;

    fn email(raw: Option<&str>, hashed_from: &str) -> WorkIdentifier {
        WorkIdentifier {
            kind: IdentifierType::Email,
            sha256: sha256_hex(hashed_from),
            raw: raw.map(RawValue::new),
        }
    }

    fn update(item: usize, address: &str) -> ContactUpdate {
        ContactUpdate {
            item,
            email: address.into(),
            change: property_change(RequestKind::OptOutSaleShare, &HubSpotSettings::default())
                .unwrap(),
        }
    }

    #[test]
    fn kinds_map_to_their_property_and_value() {
        let settings = HubSpotSettings::default();
        let change = |kind| property_change(kind, &settings);
        assert_eq!(
            change(RequestKind::OptOutSaleShare),
            Some(PropertyChange {
                property: "hush_do_not_sell".into(),
                value: "true"
            })
        );
        assert_eq!(
            change(RequestKind::OptInSaleShare),
            Some(PropertyChange {
                property: "hush_do_not_sell".into(),
                value: "false"
            })
        );
        assert_eq!(
            change(RequestKind::LimitSensitive),
            Some(PropertyChange {
                property: "hush_limit_sensitive".into(),
                value: "true"
            })
        );
        assert_eq!(change(RequestKind::Delete), None);
    }

    #[test]
    fn single_update_matches_hubspots_documented_body() {
        let change =
            property_change(RequestKind::OptOutSaleShare, &HubSpotSettings::default()).unwrap();
        assert_eq!(
            serde_json::to_value(single_update_body(&change)).unwrap(),
            json!({"properties": {"hush_do_not_sell": "true"}})
        );
    }

    #[test]
    fn batch_update_addresses_contacts_by_email() {
        let body = batch_update_body(&[update(0, "a@example.com"), update(1, "b@example.com")]);
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"inputs": [
                {"id": "a@example.com", "idProperty": "email", "properties": {"hush_do_not_sell": "true"}},
                {"id": "b@example.com", "idProperty": "email", "properties": {"hush_do_not_sell": "true"}},
            ]})
        );
    }

    #[test]
    fn batch_read_looks_contacts_up_by_email_and_returns_the_email_too() {
        let body = batch_read_body(
            &["a@example.com", "b@example.com"],
            &BTreeSet::from(["hush_do_not_sell"]),
        );
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({
                "inputs": [{"id": "a@example.com"}, {"id": "b@example.com"}],
                "idProperty": "email",
                "properties": ["email", "hush_do_not_sell"],
            })
        );
    }

    #[test]
    fn gdpr_delete_matches_hubspots_documented_body() {
        assert_eq!(
            serde_json::to_value(gdpr_delete_body("jane@example.com")).unwrap(),
            json!({"objectId": "jane@example.com", "idProperty": "email"})
        );
    }

    #[test]
    fn raw_emails_are_normalised_and_deduplicated() {
        let emails = contact_emails(&opt_out_of(vec![
            email(Some(" Jane@Example.com "), "jane@example.com"),
            email(Some("jane@example.com"), "jane@example.com"),
            email(Some("j.doe@example.org"), "j.doe@example.org"),
        ]))
        .unwrap();
        assert_eq!(emails, vec!["jane@example.com", "j.doe@example.org"]);
    }

    #[test]
    fn a_hashed_only_email_is_a_permanent_error_that_asks_for_the_raw_value() {
        let err = contact_emails(&opt_out_of(vec![email(None, "jane@example.com")])).unwrap_err();
        match err {
            ConnectorError::Permanent(detail) => {
                assert!(detail.contains("raw email"), "{detail}");
                assert!(!detail.contains("jane"), "{detail}");
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[test]
    fn a_request_without_email_is_a_permanent_error() {
        let err = contact_emails(&opt_out_of(vec![])).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(d) if d.contains("no EMAIL identifier")),
            "{err:?}"
        );
    }

    #[test]
    fn calls_hold_at_most_one_hundred_writes() {
        let updates = (0..250)
            .map(|i| update(i, &format!("user{i}@example.com")))
            .collect();
        let sizes: Vec<usize> = plan_calls(updates).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[test]
    fn a_contact_written_twice_lands_in_a_later_call_in_order() {
        let calls = plan_calls(vec![
            update(0, "a@example.com"),
            update(1, "b@example.com"),
            update(2, "a@example.com"),
        ]);
        let items: Vec<Vec<usize>> = calls
            .iter()
            .map(|call| call.iter().map(|u| u.item).collect())
            .collect();
        assert_eq!(items, vec![vec![0, 1], vec![2]]);
    }
}
