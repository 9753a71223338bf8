//! Pure functions: suppression work → the parameters of Meta's
//! `DELETE /{api_version}/{audience_id}/users` call. No I/O.
//!
//! Meta matches customer-list audiences on SHA-256 hashes of normalised values:
//! - email: trimmed, lowercased (the form intake already hashed), schema `EMAIL_SHA256`;
//! - phone: digits only, country code included, no `+` and no leading zeros. Intake hashes the
//!   E.164 form *with* `+`, so the phone hash is recomputed here from the decrypted raw value;
//!   without it the phone key is left out;
//! - mobile advertiser id (IDFA or AAID): sent **unhashed**, lowercase with its hyphens, as
//!   Meta's Business SDK sends `MOBILE_ADVERTISER_ID` ("for mobile_advertiser_id, don't hash
//!   it") and Meta's customer-list format shows it. It comes from the decrypted raw value;
//!   without it the MAID key is left out.
//!
//! A batch where any person carries a phone or a MAID uses the multi-key schema
//! `["EMAIL","PHONE","MADID"]`, with an empty string for a missing key. Meta takes at most
//! [`MAX_ROWS_PER_CALL`] rows a call; a longer batch is split into calls that share one
//! `session` (`session_id`, `batch_seq` from 1, `last_batch_flag` on the last call,
//! `estimated_num_total` = all rows).

use hush_connector_kit::outcome::BatchPlan;
use hush_contracts::connector::{RawValue, SuppressionWork};
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::{is_sha256_hex, sha256_hex};
use serde::Serialize;

/// Most rows Meta accepts in one call.
pub const MAX_ROWS_PER_CALL: usize = 10_000;

/// Single-key schema of hashed emails.
pub const EMAIL_SHA256: &str = "EMAIL_SHA256";

/// Multi-key schema used when any person carries a phone or a mobile advertiser id.
pub const MULTI_KEY_SCHEMA: [&str; 3] = ["EMAIL", "PHONE", "MADID"];

/// The `schema` field of the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Schema {
    /// One key per row, e.g. `"EMAIL_SHA256"`.
    Single(&'static str),
    /// Several keys per row, in this order.
    MultiKey([&'static str; 3]),
}

/// One row of `data`: one person as Meta sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Row {
    /// A hashed email.
    Single(String),
    /// Hashed email, phone and MAID; an empty string for a missing key.
    MultiKey([String; 3]),
}

impl Row {
    /// The non-empty values of the row.
    pub fn values(&self) -> Vec<&str> {
        match self {
            Row::Single(value) => vec![value.as_str()],
            Row::MultiKey(values) => values
                .iter()
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .collect(),
        }
    }
}

/// The `payload` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// Key names.
    pub schema: Schema,
    /// Rows.
    pub data: Vec<Row>,
}

/// The `session` parameter of a batch split over several calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Identifies the session; the same on every call of it.
    pub session_id: u64,
    /// 1-based position of this call in the session.
    pub batch_seq: u32,
    /// Whether this is the session's last call.
    pub last_batch_flag: bool,
    /// Rows in the whole session.
    pub estimated_num_total: usize,
}

/// One `DELETE .../users` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalCall {
    /// The `payload` parameter.
    pub payload: Payload,
    /// The `session` parameter, when the batch needs more than one call.
    pub session: Option<Session>,
    /// For each row of `payload.data`, the index of the work item it belongs to.
    pub owners: Vec<usize>,
}

impl RemovalCall {
    /// The form parameters of the call except the access token: `payload` and, when split,
    /// `session`, each JSON-encoded as Meta expects.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![("payload", to_json(&self.payload))];
        if let Some(session) = &self.session {
            form.push(("session", to_json(session)));
        }
        form
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("payload types always serialise")
}

/// What the connector can do for one work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPlan {
    /// Its rows are in the calls.
    Send {
        /// Rows sent for the person.
        rows: usize,
        /// Phone numbers left out for want of a raw value to re-hash.
        phones_without_raw: usize,
        /// Mobile advertiser ids left out for want of a raw value to send.
        madids_without_raw: usize,
    },
    /// The person has no identifier Meta matches customer lists on (email, phone, MAID).
    NothingToMatch,
    /// The person cannot be sent; the reason says why.
    Unsendable(String),
}

/// The calls for a batch and what happens to each item.
pub type RemovalPlan = BatchPlan<ItemPlan, RemovalCall>;

/// The SHA-256 Meta expects for a phone number: digits only, no leading zeros.
pub fn meta_phone_hash(raw: &RawValue) -> String {
    let digits: String = raw.expose().chars().filter(char::is_ascii_digit).collect();
    sha256_hex(digits.trim_start_matches('0'))
}

#[derive(Default)]
struct ItemKeys {
    emails: Vec<String>,
    phones: Vec<String>,
    madids: Vec<String>,
    phones_without_raw: usize,
    madids_without_raw: usize,
    malformed: usize,
}

impl ItemKeys {
    fn of(work: &SuppressionWork) -> Self {
        let mut keys = ItemKeys::default();
        for identifier in &work.identifiers {
            match identifier.kind {
                IdentifierType::Email if !is_sha256_hex(&identifier.sha256) => {
                    keys.malformed += 1;
                }
                IdentifierType::Email => keys.emails.push(identifier.sha256.clone()),
                IdentifierType::Maid => match &identifier.raw {
                    Some(raw) => keys.madids.push(raw.expose().trim().to_lowercase()),
                    None => keys.madids_without_raw += 1,
                },
                IdentifierType::Phone => match &identifier.raw {
                    Some(raw) => keys.phones.push(meta_phone_hash(raw)),
                    None => keys.phones_without_raw += 1,
                },
                IdentifierType::DeviceId
                | IdentifierType::CookieId
                | IdentifierType::CustomerId => {}
            }
        }
        keys
    }

    fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.phones.is_empty() && self.madids.is_empty()
    }

    fn needs_multi_key(&self) -> bool {
        !self.phones.is_empty() || !self.madids.is_empty()
    }

    fn rows(&self, multi_key: bool) -> Vec<Row> {
        if !multi_key {
            return self.emails.iter().cloned().map(Row::Single).collect();
        }
        let count = self
            .emails
            .len()
            .max(self.phones.len())
            .max(self.madids.len());
        let at = |keys: &[String], i: usize| keys.get(i).cloned().unwrap_or_default();
        (0..count)
            .map(|i| {
                Row::MultiKey([
                    at(&self.emails, i),
                    at(&self.phones, i),
                    at(&self.madids, i),
                ])
            })
            .collect()
    }

    fn plan(&self) -> ItemPlan {
        if self.malformed > 0 {
            return ItemPlan::Unsendable(format!(
                "{} identifier hash(es) are not lowercase SHA-256 hex digests; Meta would count \
                 them as invalid entries",
                self.malformed
            ));
        }
        if self.is_empty() {
            if self.phones_without_raw > 0 {
                return ItemPlan::Unsendable(
                    "Meta matches phone numbers hashed without the leading `+`, and this request \
                     carries only a phone hash with no raw value to re-hash; keep raw phone \
                     numbers at intake for this recipient"
                        .to_owned(),
                );
            }
            if self.madids_without_raw > 0 {
                return ItemPlan::Unsendable(
                    "Meta matches mobile advertiser ids unhashed, and this request carries only \
                     a MAID hash with no raw value to send; keep raw MAIDs at intake for this \
                     recipient"
                        .to_owned(),
                );
            }
            return ItemPlan::NothingToMatch;
        }
        ItemPlan::Send {
            rows: 0,
            phones_without_raw: self.phones_without_raw,
            madids_without_raw: self.madids_without_raw,
        }
    }
}

/// Plans the removal of every person in `batch` from the audience. `session_id` is used only
/// when the rows need more than one call.
pub fn plan_removal(batch: &[SuppressionWork], session_id: u64) -> RemovalPlan {
    let keys: Vec<ItemKeys> = batch.iter().map(ItemKeys::of).collect();
    let mut items: Vec<ItemPlan> = keys.iter().map(ItemKeys::plan).collect();
    let multi_key = keys
        .iter()
        .zip(&items)
        .any(|(k, plan)| matches!(plan, ItemPlan::Send { .. }) && k.needs_multi_key());

    let mut rows = Vec::new();
    let mut owners = Vec::new();
    for (index, (item_keys, plan)) in keys.iter().zip(items.iter_mut()).enumerate() {
        if let ItemPlan::Send { rows: count, .. } = plan {
            let item_rows = item_keys.rows(multi_key);
            *count = item_rows.len();
            owners.extend(std::iter::repeat_n(index, item_rows.len()));
            rows.extend(item_rows);
        }
    }

    let schema = if multi_key {
        Schema::MultiKey(MULTI_KEY_SCHEMA)
    } else {
        Schema::Single(EMAIL_SHA256)
    };
    let total = rows.len();
    let chunk_count = total.div_ceil(MAX_ROWS_PER_CALL);
    let calls = rows
        .chunks(MAX_ROWS_PER_CALL)
        .zip(owners.chunks(MAX_ROWS_PER_CALL))
        .enumerate()
        .map(|(i, (data, owners))| RemovalCall {
            payload: Payload {
                schema: schema.clone(),
                data: data.to_vec(),
            },
            session: (chunk_count > 1).then(|| Session {
                session_id,
                batch_seq: u32::try_from(i + 1).expect("fewer than 2^32 calls"),
                last_batch_flag: i + 1 == chunk_count,
                estimated_num_total: total,
            }),
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
    use serde_json::json;

    #[test]
    fn emails_only_use_the_documented_single_key_payload() {
        let plan = plan_removal(
            &[
                opt_out_of(vec![email("a@example.com")]),
                opt_out_of(vec![email("b@example.com")]),
            ],
            7,
        );
        assert_eq!(plan.calls.len(), 1);
        let call = &plan.calls[0];
        assert_eq!(call.session, None);
        assert_eq!(
            serde_json::to_value(&call.payload).unwrap(),
            json!({
                "schema": "EMAIL_SHA256",
                "data": [sha256_hex("a@example.com"), sha256_hex("b@example.com")],
            })
        );
        assert_eq!(call.owners, vec![0, 1]);
        assert_eq!(call.form().len(), 1);
    }

    #[test]
    fn a_phone_switches_the_batch_to_multi_key_rows_hashed_without_plus() {
        let plan = plan_removal(
            &[
                opt_out_of(vec![
                    email("a@example.com"),
                    with_raw(IdentifierType::Phone, "+14155550100"),
                ]),
                opt_out_of(vec![email("b@example.com")]),
            ],
            7,
        );
        let expected_phone = sha256_hex("14155550100");
        assert_ne!(expected_phone, sha256_hex("+14155550100"));
        assert_eq!(
            serde_json::to_value(&plan.calls[0].payload).unwrap(),
            json!({
                "schema": ["EMAIL", "PHONE", "MADID"],
                "data": [
                    [sha256_hex("a@example.com"), expected_phone, ""],
                    [sha256_hex("b@example.com"), "", ""],
                ],
            })
        );
    }

    #[test]
    fn a_maid_is_sent_unhashed_in_lowercase_with_its_hyphens() {
        let maid = with_raw(IdentifierType::Maid, "AECE52E7-03EE-455A-B3C4-E57283966239");
        let plan = plan_removal(&[opt_out_of(vec![maid])], 7);
        assert_eq!(
            plan.calls[0].payload.data,
            vec![Row::MultiKey([
                String::new(),
                String::new(),
                "aece52e7-03ee-455a-b3c4-e57283966239".to_owned(),
            ])]
        );
    }

    #[test]
    fn a_person_with_only_a_maid_hash_is_unsendable() {
        let maid = hashed(IdentifierType::Maid, "aece52e7-03ee-455a-b3c4-e57283966239");
        let plan = plan_removal(&[opt_out_of(vec![maid])], 7);
        assert!(
            matches!(&plan.items[0], ItemPlan::Unsendable(reason) if reason.contains("raw MAIDs")),
            "{:?}",
            plan.items[0]
        );
        assert!(plan.calls.is_empty());
    }

    #[test]
    fn more_than_ten_thousand_rows_are_split_into_one_session() {
        let batch: Vec<_> = (0..10_001)
            .map(|i| opt_out_of(vec![email(&format!("p{i}@example.com"))]))
            .collect();
        let plan = plan_removal(&batch, 42);
        assert_eq!(plan.calls.len(), 2);
        assert_eq!(plan.calls[0].payload.data.len(), 10_000);
        assert_eq!(plan.calls[1].payload.data.len(), 1);
        assert_eq!(
            plan.calls[0].session,
            Some(Session {
                session_id: 42,
                batch_seq: 1,
                last_batch_flag: false,
                estimated_num_total: 10_001
            })
        );
        assert_eq!(
            plan.calls[1].session,
            Some(Session {
                session_id: 42,
                batch_seq: 2,
                last_batch_flag: true,
                estimated_num_total: 10_001
            })
        );
        assert_eq!(plan.calls[1].owners, vec![10_000]);
        let form = plan.calls[1].form();
        assert_eq!(form[1].0, "session");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&form[1].1).unwrap(),
            json!({"session_id": 42, "batch_seq": 2, "last_batch_flag": true, "estimated_num_total": 10_001})
        );
    }

    #[test]
    fn a_phone_without_raw_value_is_left_out_and_counted() {
        let plan = plan_removal(
            &[opt_out_of(vec![
                email("a@example.com"),
                hashed(IdentifierType::Phone, "+14155550100"),
            ])],
            7,
        );
        assert_eq!(
            plan.items,
            vec![ItemPlan::Send {
                rows: 1,
                phones_without_raw: 1,
                madids_without_raw: 0
            }]
        );
        assert_eq!(plan.calls[0].payload.schema, Schema::Single(EMAIL_SHA256));
    }

    #[test]
    fn people_meta_cannot_match_are_not_sent() {
        let plan = plan_removal(
            &[
                opt_out_of(vec![hashed(IdentifierType::CookieId, "cookie")]),
                opt_out_of(vec![hashed(IdentifierType::Phone, "+14155550100")]),
                opt_out_of(vec![unhashed_email("Jane@Example.com")]),
            ],
            7,
        );
        assert!(plan.calls.is_empty());
        assert_eq!(plan.items[0], ItemPlan::NothingToMatch);
        assert!(matches!(&plan.items[1], ItemPlan::Unsendable(r) if r.contains("raw")));
        assert!(matches!(&plan.items[2], ItemPlan::Unsendable(r) if r.contains("SHA-256")));
    }
}
