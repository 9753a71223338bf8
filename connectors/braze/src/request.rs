//! Pure functions from suppression work to Braze REST bodies: who the subject is in Braze
//! (`external_id` from the business's customer id, email addresses to look up), which attribute
//! a request writes, and calls cut to Braze's documented limits. No I/O.

use hush_connector_kit::contacts::{raw_lookups, OnlyHashed};
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::{IdentifierType, RequestKind};
use serde_json::{json, Map, Value};

use crate::config::BrazeSettings;

/// Most `braze_ids` one `/users/delete` request may carry (documented: up to 50 identifiers,
/// of one kind only).
pub const MAX_DELETE_IDS: usize = 50;
/// Most attribute objects one `/users/track` request may carry (documented: 75 attributes,
/// events and purchases combined per request).
pub const MAX_TRACK_ATTRIBUTES: usize = 75;
/// Most `external_ids` one `/users/export/ids` request may carry (documented: up to 50; an
/// email address is one per request).
pub const MAX_EXPORT_EXTERNAL_IDS: usize = 50;

/// The profile fields `/users/export/ids` is asked for: enough to find the profiles and read
/// the written values back, nothing more (`fields_to_export` is required of workspaces
/// onboarded since 22 August 2024).
pub const EXPORT_FIELDS: [&str; 4] = [
    "braze_id",
    "external_id",
    "custom_attributes",
    "email_subscribe",
];

/// How a subject is found in Braze.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lookup {
    /// By `external_id`: the business's customer id, exported up to 50 at a time.
    ExternalId(String),
    /// By email address, one export per address; every profile holding it is found.
    Email(String),
}

/// The subject of one request as Braze knows people: its raw customer ids and emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The lookups that find the subject's profiles, deduplicated, in identifier order.
    pub lookups: Vec<Lookup>,
}

impl Subject {
    /// Every raw value the subject carries, to keep them out of reported vendor text.
    pub fn raw_values(&self) -> Vec<&str> {
        self.lookups
            .iter()
            .map(|lookup| match lookup {
                Lookup::ExternalId(value) | Lookup::Email(value) => value.as_str(),
            })
            .collect()
    }
}

/// The subject of `work`: `Ok(None)` when the request names neither a customer id nor an email
/// (nothing Braze can match), an error when it names them but only hashed (Braze looks people
/// up by the raw value, so intake must keep it encrypted for this recipient).
pub fn subject_of(work: &SuppressionWork) -> Result<Option<Subject>, String> {
    let kinds = [IdentifierType::CustomerId, IdentifierType::Email];
    let lookups = raw_lookups(work, &kinds, |kind, raw| match kind {
        IdentifierType::Email => Lookup::Email(raw.to_lowercase()),
        _ => Lookup::ExternalId(raw.to_owned()),
    })
    .map_err(|OnlyHashed| {
        format!(
            "request {}: its CUSTOMER_ID / EMAIL identifiers have no raw value; Braze finds \
             profiles by external_id or email address, so intake must keep them (encrypted) \
             for this recipient",
            work.request_id
        )
    })?;
    Ok((!lookups.is_empty()).then_some(Subject { lookups }))
}

/// What a suppression writes on each of the subject's profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Custom attribute written.
    pub attribute: String,
    /// Boolean value written.
    pub value: bool,
    /// Whether `email_subscribe` is set to `unsubscribed` as well.
    pub unsubscribe_email: bool,
}

/// The change a request of `kind` makes: the opt-out attribute `true` (and the email
/// unsubscribe, when configured) for an opt-out, the limit attribute `true` for a limit, the
/// opt-out attribute back to `false` for an opt-in (the email subscription is left alone: a new
/// opt-in to marketing email is the consumer's own act). A deletion writes nothing.
pub fn change_for(kind: RequestKind, settings: &BrazeSettings) -> Option<Change> {
    let (attribute, value, unsubscribe_email) = match kind {
        RequestKind::OptOutSaleShare => (
            &settings.opt_out_attribute,
            true,
            settings.unsubscribe_email,
        ),
        RequestKind::LimitSensitive => (&settings.limit_attribute, true, false),
        RequestKind::OptInSaleShare => (&settings.opt_out_attribute, false, false),
        RequestKind::Delete => return None,
    };
    Some(Change {
        attribute: attribute.clone(),
        value,
        unsubscribe_email,
    })
}

/// One attribute object of `/users/track` for the profile `braze_id`. `_update_existing_only`
/// keeps Braze from creating a profile that does not exist.
pub fn attribute_object(braze_id: &str, change: &Change) -> Value {
    let mut object = Map::new();
    object.insert("braze_id".into(), json!(braze_id));
    object.insert("_update_existing_only".into(), json!(true));
    object.insert(change.attribute.clone(), json!(change.value));
    if change.unsubscribe_email {
        object.insert("email_subscribe".into(), json!("unsubscribed"));
    }
    Value::Object(object)
}

/// Body of `POST /users/track` carrying attribute objects only.
pub fn track_body(objects: Vec<Value>) -> Value {
    json!({ "attributes": objects })
}

/// Body of `POST /users/delete` by Braze profile ids (one identifier kind per request).
pub fn delete_body(braze_ids: &[&str]) -> Value {
    json!({ "braze_ids": braze_ids })
}

/// Body of `POST /users/export/ids` for up to 50 external ids.
pub fn export_by_external_ids(external_ids: &[&str]) -> Value {
    json!({ "external_ids": external_ids, "fields_to_export": EXPORT_FIELDS })
}

/// Body of `POST /users/export/ids` for one email address.
pub fn export_by_email(email: &str) -> Value {
    json!({ "email_address": email, "fields_to_export": EXPORT_FIELDS })
}

/// One vendor-side target (a profile, or a profile with the change written on it) and the
/// batch items that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<K> {
    /// What is sent.
    pub key: K,
    /// Batch items it is sent for, in batch order.
    pub items: Vec<usize>,
}

/// Groups `(item, key)` pairs by key, keeping the order in which keys first appear, so a
/// profile two requests name is written or deleted once for both.
pub fn group<K: PartialEq>(pairs: impl IntoIterator<Item = (usize, K)>) -> Vec<Target<K>> {
    let mut targets: Vec<Target<K>> = Vec::new();
    for (item, key) in pairs {
        match targets.iter_mut().find(|target| target.key == key) {
            Some(target) => {
                if !target.items.contains(&item) {
                    target.items.push(item);
                }
            }
            None => targets.push(Target {
                key,
                items: vec![item],
            }),
        }
    }
    targets
}

/// Cuts targets into calls of at most `limit`.
pub fn calls<K>(targets: Vec<Target<K>>, limit: usize) -> Vec<Vec<Target<K>>> {
    let mut calls = Vec::new();
    let mut current = Vec::new();
    for target in targets {
        if current.len() == limit.max(1) {
            calls.push(std::mem::take(&mut current));
        }
        current.push(target);
    }
    if !current.is_empty() {
        calls.push(current);
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{email, with_raw, work, WorkExt};

    #[test]
    fn subjects_are_raw_customer_ids_and_lowercase_emails_without_repeats() {
        let request = work(RequestKind::Delete)
            .with(with_raw(IdentifierType::CustomerId, "u-1"))
            .with(with_raw(IdentifierType::Email, "Jane@Example.com"))
            .with(with_raw(IdentifierType::Email, "jane@example.com"))
            .with(with_raw(IdentifierType::Phone, "+14155550100"));
        let subject = subject_of(&request).unwrap().unwrap();
        assert_eq!(
            subject.lookups,
            vec![
                Lookup::ExternalId("u-1".into()),
                Lookup::Email("jane@example.com".into())
            ]
        );
        assert_eq!(subject.raw_values(), vec!["u-1", "jane@example.com"]);
    }

    #[test]
    fn hashed_only_identifiers_are_refused_and_none_at_all_is_no_subject() {
        let hashed = work(RequestKind::Delete).with(email("jane@example.com"));
        let refused = subject_of(&hashed).unwrap_err();
        assert!(refused.contains("no raw value"), "{refused}");
        let cookie_only = work(RequestKind::OptOutSaleShare);
        assert_eq!(subject_of(&cookie_only), Ok(None));
    }

    #[test]
    fn each_kind_writes_its_attribute() {
        let settings = BrazeSettings {
            unsubscribe_email: true,
            ..BrazeSettings::default()
        };
        assert_eq!(
            change_for(RequestKind::OptOutSaleShare, &settings),
            Some(Change {
                attribute: "hush_do_not_sell".into(),
                value: true,
                unsubscribe_email: true
            })
        );
        assert_eq!(
            change_for(RequestKind::LimitSensitive, &settings),
            Some(Change {
                attribute: "hush_limit_sensitive".into(),
                value: true,
                unsubscribe_email: false
            })
        );
        assert_eq!(
            change_for(RequestKind::OptInSaleShare, &settings),
            Some(Change {
                attribute: "hush_do_not_sell".into(),
                value: false,
                unsubscribe_email: false
            })
        );
        assert_eq!(change_for(RequestKind::Delete, &settings), None);
    }

    #[test]
    fn bodies_follow_the_documented_shapes() {
        let change = Change {
            attribute: "hush_do_not_sell".into(),
            value: true,
            unsubscribe_email: true,
        };
        assert_eq!(
            track_body(vec![attribute_object("5fbd99bac125ca40511f2cb1", &change)]),
            json!({"attributes": [{
                "braze_id": "5fbd99bac125ca40511f2cb1",
                "_update_existing_only": true,
                "hush_do_not_sell": true,
                "email_subscribe": "unsubscribed"
            }]})
        );
        assert_eq!(
            delete_body(&["b1", "b2"]),
            json!({"braze_ids": ["b1", "b2"]})
        );
        assert_eq!(
            export_by_external_ids(&["u-1"]),
            json!({"external_ids": ["u-1"], "fields_to_export": ["braze_id", "external_id", "custom_attributes", "email_subscribe"]})
        );
        assert_eq!(
            export_by_email("a@example.com")["email_address"],
            "a@example.com"
        );
    }

    #[test]
    fn targets_are_grouped_by_key_and_cut_to_the_limit() {
        let targets = group([(0, "a"), (1, "b"), (2, "a"), (2, "c"), (2, "a")]);
        assert_eq!(
            targets,
            vec![
                Target {
                    key: "a",
                    items: vec![0, 2]
                },
                Target {
                    key: "b",
                    items: vec![1]
                },
                Target {
                    key: "c",
                    items: vec![2]
                },
            ]
        );
        let cut: Vec<Vec<&str>> = calls(targets, 2)
            .into_iter()
            .map(|call| call.into_iter().map(|t| t.key).collect())
            .collect();
        assert_eq!(cut, vec![vec!["a", "b"], vec!["c"]]);
    }
}
