//! Pure functions: suppression work → the bodies of TikTok's Audience Segment API call
//! `POST /open_api/v1.3/segment/mapping/` with `action: "delete"`. No I/O.
//!
//! The call names its columns in `id_schema` and carries one row per identifier in
//! `batch_data`; each row holds one cell per column, `{"id": …, "audience_ids": […]}` in the
//! identifier's own column and `{}` in the others. TikTok matches on SHA-256 digests, the form
//! intake already hashed every identifier in, so no raw value is needed:
//!
//! - email → `EMAIL_SHA256` (lowercase hex SHA-256 of the trimmed, lowercased address);
//! - phone → `PHONE_SHA256` (of the E.164 number, `+` included);
//! - mobile advertising id → `IDFA_SHA256` and `AAID_SHA256` (of the lowercased id): a MAID does
//!   not say whether it is Apple's or Google's, and a removal under the wrong column matches no
//!   one, so both are sent.
//!
//! Device ids, cookie ids and customer ids mean nothing to TikTok audiences and are not sent.

use hush_connector_kit::outcome::BatchPlan;
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::is_sha256_hex;
use serde::Serialize;

/// Most rows (identifiers) sent in one call. TikTok's own page for the endpoint could not be
/// read from here; 1,000 is the batch size TikTok-certified integrations (Tealium's TikTok
/// Audiences connector) send to it, see the crate README.
pub const MAX_ROWS_PER_CALL: usize = 1_000;

/// A column of `id_schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum IdSchema {
    /// SHA-256 of a normalised email.
    #[serde(rename = "EMAIL_SHA256")]
    EmailSha256,
    /// SHA-256 of an E.164 phone number.
    #[serde(rename = "PHONE_SHA256")]
    PhoneSha256,
    /// SHA-256 of an Apple advertising id.
    #[serde(rename = "IDFA_SHA256")]
    IdfaSha256,
    /// SHA-256 of an Android advertising id.
    #[serde(rename = "AAID_SHA256")]
    AaidSha256,
}

/// One cell of a row: the identifier and the audiences to remove it from, or `{}` when the row's
/// identifier belongs to another column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Cell {
    /// The identifier's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Audiences the identifier is removed from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audience_ids: Vec<String>,
}

/// Body of one `segment/mapping` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingBody {
    /// The ad account owning the audiences.
    pub advertiser_ids: Vec<String>,
    /// Always `delete` here.
    pub action: &'static str,
    /// The columns of every row.
    pub id_schema: Vec<IdSchema>,
    /// One row per identifier.
    pub batch_data: Vec<Vec<Cell>>,
}

/// One call with, for each row, the index of the work item it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingCall {
    /// The body.
    pub body: MappingBody,
    /// Work item of each row, in row order.
    pub owners: Vec<usize>,
}

/// What the connector does for one work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPlan {
    /// Its rows are in the calls.
    Send {
        /// Rows sent for it (a MAID counts twice: IDFA and AAID).
        rows: usize,
    },
    /// The person has no identifier TikTok audiences match on.
    NothingToMatch,
    /// The person cannot be sent; the reason says why.
    Unsendable(String),
}

/// The calls for a batch and what happens to each item.
pub type RemovalPlan = BatchPlan<ItemPlan, MappingCall>;

/// One identifier to remove: its column and digest.
type Row = (IdSchema, String);

fn rows_for(work: &SuppressionWork) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for identifier in &work.identifiers {
        let columns: &[IdSchema] = match identifier.kind {
            IdentifierType::Email => &[IdSchema::EmailSha256],
            IdentifierType::Phone => &[IdSchema::PhoneSha256],
            IdentifierType::Maid => &[IdSchema::IdfaSha256, IdSchema::AaidSha256],
            IdentifierType::DeviceId | IdentifierType::CookieId | IdentifierType::CustomerId => &[],
        };
        if !columns.is_empty() && !is_sha256_hex(&identifier.sha256) {
            return Err(format!(
                "a {} hash of request {} is not a lowercase SHA-256 hex digest, which TikTok \
                 refuses for the whole call",
                identifier.kind.as_str(),
                work.request_id
            ));
        }
        for column in columns {
            let row = (*column, identifier.sha256.clone());
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Plans the removal of every person in `batch` from `audience_ids` of `advertiser_id`, at most
/// [`MAX_ROWS_PER_CALL`] rows a call (a person's rows may span two calls).
pub fn plan_removal(
    batch: &[SuppressionWork],
    advertiser_id: &str,
    audience_ids: &[String],
) -> RemovalPlan {
    let mut items = Vec::with_capacity(batch.len());
    let mut rows: Vec<(usize, Row)> = Vec::new();
    for (index, work) in batch.iter().enumerate() {
        match rows_for(work) {
            Err(reason) => items.push(ItemPlan::Unsendable(reason)),
            Ok(found) if found.is_empty() => items.push(ItemPlan::NothingToMatch),
            Ok(found) => {
                items.push(ItemPlan::Send { rows: found.len() });
                rows.extend(found.into_iter().map(|row| (index, row)));
            }
        }
    }
    let calls = rows
        .chunks(MAX_ROWS_PER_CALL)
        .map(|chunk| call_for(chunk, advertiser_id, audience_ids))
        .collect();
    RemovalPlan { items, calls }
}

fn call_for(rows: &[(usize, Row)], advertiser_id: &str, audience_ids: &[String]) -> MappingCall {
    let mut id_schema: Vec<IdSchema> = rows.iter().map(|(_, (column, _))| *column).collect();
    id_schema.sort_unstable();
    id_schema.dedup();
    let batch_data = rows
        .iter()
        .map(|(_, (column, digest))| {
            id_schema
                .iter()
                .map(|c| {
                    if c == column {
                        Cell {
                            id: Some(digest.clone()),
                            audience_ids: audience_ids.to_vec(),
                        }
                    } else {
                        Cell::default()
                    }
                })
                .collect()
        })
        .collect();
    MappingCall {
        body: MappingBody {
            advertiser_ids: vec![advertiser_id.to_owned()],
            action: "delete",
            id_schema,
            batch_data,
        },
        owners: rows.iter().map(|(owner, _)| *owner).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::audience::unhashed_email;
    use hush_connector_kit::testing::{email, hashed, opt_out_of};
    use hush_contracts::identifiers::sha256_hex;
    use serde_json::json;

    fn audiences() -> Vec<String> {
        vec!["111".into(), "222".into()]
    }

    #[test]
    fn each_identifier_is_one_row_in_its_own_column() {
        let maid = "38400000-8cf0-11bd-b23e-10b96e40000d";
        let plan = plan_removal(
            &[
                opt_out_of(vec![email("a@example.com")]),
                opt_out_of(vec![
                    hashed(IdentifierType::Phone, "+1 415 555 0100"),
                    hashed(IdentifierType::Maid, maid),
                ]),
            ],
            "7000001",
            &audiences(),
        );
        assert_eq!(plan.calls.len(), 1);
        let cell = |id: String| json!({"id": id, "audience_ids": ["111", "222"]});
        assert_eq!(
            serde_json::to_value(&plan.calls[0].body).unwrap(),
            json!({
                "advertiser_ids": ["7000001"],
                "action": "delete",
                "id_schema": ["EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "AAID_SHA256"],
                "batch_data": [
                    [cell(sha256_hex("a@example.com")), {}, {}, {}],
                    [{}, cell(sha256_hex("+14155550100")), {}, {}],
                    [{}, {}, cell(sha256_hex(maid)), {}],
                    [{}, {}, {}, cell(sha256_hex(maid))],
                ],
            })
        );
        assert_eq!(plan.calls[0].owners, vec![0, 1, 1, 1]);
        assert_eq!(
            plan.items,
            vec![ItemPlan::Send { rows: 1 }, ItemPlan::Send { rows: 3 }]
        );
    }

    #[test]
    fn only_the_columns_a_call_uses_are_named() {
        let plan = plan_removal(
            &[opt_out_of(vec![email("a@example.com")])],
            "1",
            &audiences(),
        );
        assert_eq!(plan.calls[0].body.id_schema, vec![IdSchema::EmailSha256]);
    }

    #[test]
    fn more_rows_than_the_limit_take_several_calls() {
        let batch: Vec<_> = (0..MAX_ROWS_PER_CALL + 1)
            .map(|i| opt_out_of(vec![email(&format!("p{i}@example.com"))]))
            .collect();
        let plan = plan_removal(&batch, "1", &audiences());
        assert_eq!(plan.calls.len(), 2);
        assert_eq!(plan.calls[0].body.batch_data.len(), MAX_ROWS_PER_CALL);
        assert_eq!(plan.calls[1].owners, vec![MAX_ROWS_PER_CALL]);
    }

    #[test]
    fn people_tiktok_cannot_match_are_not_sent() {
        let plan = plan_removal(
            &[
                opt_out_of(vec![unhashed_email("Jane@Example.com")]),
                opt_out_of(vec![hashed(IdentifierType::CustomerId, "cust-1")]),
            ],
            "1",
            &audiences(),
        );
        assert!(plan.calls.is_empty());
        assert!(matches!(&plan.items[0], ItemPlan::Unsendable(r) if r.contains("SHA-256")));
        assert_eq!(plan.items[1], ItemPlan::NothingToMatch);
    }

    #[test]
    fn a_repeated_identifier_is_sent_once_per_person() {
        let plan = plan_removal(
            &[opt_out_of(vec![
                email("a@example.com"),
                email("a@example.com"),
            ])],
            "1",
            &audiences(),
        );
        assert_eq!(plan.calls[0].body.batch_data.len(), 1);
    }
}
