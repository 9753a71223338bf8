//! Pure functions from suppression work to Salesforce's wire format, and the wire types of its
//! answers. No I/O.
//!
//! Shapes follow the Salesforce REST API: SOQL through `GET .../query?q=`, sObject Collections
//! (`POST|PATCH|DELETE .../composite/sobjects`, at most 200 records a call, one `SaveResult`
//! per record, in order) and the `Individual` data-privacy object.

use std::collections::BTreeMap;

use hush_contracts::connector::{ConnectorError, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind};
use hush_contracts::identifiers::normalise;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::SalesforceSettings;

/// Most records (or ids) one sObject Collections call accepts.
pub const MAX_COLLECTION: usize = 200;

/// `LastName` of an `Individual` the connector creates (the field is required). It carries no
/// personal data: the record exists to hold the person's privacy flags.
pub const CREATED_INDIVIDUAL_LAST_NAME: &str = "Privacy preferences (Hush)";

/// The `Individual` field that asks every process to forget the person.
pub const SHOULD_FORGET: &str = "ShouldForget";

/// The sObject types the connector touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SObjectType {
    /// A contact.
    Contact,
    /// A lead.
    Lead,
    /// The data-privacy record of a person.
    Individual,
}

impl SObjectType {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            SObjectType::Contact => "Contact",
            SObjectType::Lead => "Lead",
            SObjectType::Individual => "Individual",
        }
    }
}

/// The people-holding objects searched by email, in search order.
pub const PERSON_OBJECTS: [SObjectType; 2] = [SObjectType::Contact, SObjectType::Lead];

/// Escapes a value for a SOQL single-quoted string literal: backslash and both quote
/// characters are escaped, and so are the control characters SOQL has escapes for.
pub fn escape_soql_literal(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\'' => escaped.push_str("\\'"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\u{8}' => escaped.push_str("\\b"),
            '\u{c}' => escaped.push_str("\\f"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Most emails one SOQL query names. Salesforce answers at most 2,000 records a page (REST API
/// guide, Query More Results; further pages through `nextRecordsUrl`), so 100 emails keep an
/// answer to one page up to 20 records per email.
pub const MAX_EMAILS_PER_QUERY: usize = 100;

/// Most bytes the URL-encoded `q` parameter of one query may take. Salesforce accepts at most
/// 16,384 bytes of URI and headers together on a REST call (414 / 431 beyond; Salesforce Help
/// article 000386264), and a SOQL statement of at most 100,000 characters ("SOQL and SOSL
/// Limits for Search Queries"); 8,000 bytes leaves room for the path, host and bearer token.
pub const MAX_ENCODED_QUERY_BYTES: usize = 8_000;

/// The SOQL that finds the records of `object` whose `Email` is one of `emails`, selecting the
/// `Email` so that each record can be mapped back to the email that found it.
pub fn people_query(object: SObjectType, emails: &[String]) -> String {
    let literals = emails
        .iter()
        .map(|email| format!("'{}'", escape_soql_literal(email)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT Id, IndividualId, Email FROM {} WHERE Email IN ({literals})",
        object.as_str()
    )
}

/// Splits `emails` into runs for [`people_query`]: at most [`MAX_EMAILS_PER_QUERY`] each, and
/// each query's URL-encoded form within [`MAX_ENCODED_QUERY_BYTES`] (an email too long for that
/// on its own still gets a query of its own).
pub fn email_chunks(object: SObjectType, emails: &[String]) -> Vec<&[String]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < emails.len() {
        let mut end = start + 1;
        while end < emails.len()
            && end - start < MAX_EMAILS_PER_QUERY
            && encoded_len(&people_query(object, &emails[start..=end])) <= MAX_ENCODED_QUERY_BYTES
        {
            end += 1;
        }
        chunks.push(&emails[start..end]);
        start = end;
    }
    chunks
}

/// The length of `text` percent-encoded as a query-string value (unreserved bytes as is, every
/// other byte as `%XX`): an upper bound on what the HTTP client sends.
pub fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                1
            } else {
                3
            }
        })
        .sum()
}

/// The normalised plain emails of a work item. Salesforce stores plain emails, so a hashed
/// identifier alone cannot be matched: an EMAIL identifier without its raw value is a
/// permanent item error.
pub fn emails_of(work: &SuppressionWork) -> Result<Vec<String>, ConnectorError> {
    let mut emails = Vec::new();
    for identifier in work.identifiers_of(IdentifierType::Email) {
        let raw = identifier.raw.as_ref().ok_or_else(|| {
            ConnectorError::Permanent(
                "Salesforce matches people by plain email: the raw EMAIL identifier is required \
                 (keep it encrypted at intake for this recipient)"
                    .into(),
            )
        })?;
        let email = normalise(IdentifierType::Email, raw.expose())
            .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    Ok(emails)
}

/// Field values to write on a person's `Individual`, keyed by field name.
pub type IndividualFields = BTreeMap<&'static str, bool>;

/// What a request kind writes on the `Individual` and the outcome it reports.
///
/// - OPT_OUT_SALE_SHARE: `opt_out_flags` = `true` → FLAGGED.
/// - LIMIT_SENSITIVE: `limit_sensitive_flags` = `true` → FLAGGED.
/// - OPT_IN_SALE_SHARE: `opt_out_flags` = `false` → FLAGGED.
///
/// FLAGGED, not SUPPRESSED: Salesforce records the preference on the person's privacy record;
/// the org's processes honour it.
/// - DELETE: `ShouldForget` = `true` → DELETED (FLAGGED when records are kept).
///
/// A flag a request does not name is never written, so one request cannot undo another.
pub fn individual_fields(
    kind: RequestKind,
    settings: &SalesforceSettings,
) -> (IndividualFields, ConfirmationAction) {
    let set = |flags: &[crate::config::IndividualFlag], value: bool| {
        flags
            .iter()
            .map(|f| (f.field(), value))
            .collect::<IndividualFields>()
    };
    match kind {
        RequestKind::OptOutSaleShare => (
            set(&settings.opt_out_flags, true),
            ConfirmationAction::Flagged,
        ),
        RequestKind::LimitSensitive => (
            set(&settings.limit_sensitive_flags, true),
            ConfirmationAction::Flagged,
        ),
        RequestKind::OptInSaleShare => (
            set(&settings.opt_out_flags, false),
            ConfirmationAction::Flagged,
        ),
        RequestKind::Delete => (
            IndividualFields::from([(SHOULD_FORGET, true)]),
            if settings.delete_records {
                ConfirmationAction::Deleted
            } else {
                ConfirmationAction::Flagged
            },
        ),
    }
}

/// One record of an sObject Collections update of an `Individual`.
pub fn individual_update(id: &str, fields: &IndividualFields) -> Value {
    let mut record = json!({"attributes": {"type": "Individual"}, "id": id});
    for (field, value) in fields {
        record[*field] = Value::Bool(*value);
    }
    record
}

/// One record of an sObject Collections create of a new `Individual`.
pub fn new_individual() -> Value {
    json!({"attributes": {"type": "Individual"}, "LastName": CREATED_INDIVIDUAL_LAST_NAME})
}

/// One record of an sObject Collections update linking a Contact or Lead to an `Individual`.
pub fn link_to_individual(object: SObjectType, id: &str, individual_id: &str) -> Value {
    json!({"attributes": {"type": object.as_str()}, "id": id, "IndividualId": individual_id})
}

/// The body of an sObject Collections create or update: records processed independently.
pub fn collection_body(records: &[Value]) -> Value {
    json!({"allOrNone": false, "records": records})
}

/// The query string of an sObject Collections delete.
pub fn delete_query(ids: &[String]) -> [(&'static str, String); 2] {
    [("ids", ids.join(",")), ("allOrNone", "false".into())]
}

/// The `fields` parameter of an `Individual` read-back.
pub fn individual_read_fields() -> String {
    [
        "HasOptedOutTracking",
        "HasOptedOutProfiling",
        "HasOptedOutProcessing",
        "HasOptedOutSolicit",
        SHOULD_FORGET,
    ]
    .join(",")
}

/// The answer to a SOQL query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse {
    /// Records found.
    pub total_size: u64,
    /// Whether every record is in this answer.
    pub done: bool,
    /// The records.
    pub records: Vec<PersonRecord>,
    /// Where the next page of records is, when `done` is false
    /// (`/services/data/vXX.X/query/<locator>`).
    #[serde(default)]
    pub next_records_url: Option<String>,
}

/// A Contact or Lead found by email.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PersonRecord {
    /// Record id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Linked `Individual`, if any.
    #[serde(rename = "IndividualId")]
    pub individual_id: Option<String>,
    /// The record's email as stored (any letter case).
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
}

/// The per-record result of an sObject Collections call (`SaveResult` / `DeleteResult`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SaveResult {
    /// Record id (absent for a failed create).
    #[serde(default)]
    pub id: Option<String>,
    /// Whether the record was processed.
    pub success: bool,
    /// Why not.
    #[serde(default)]
    pub errors: Vec<RecordError>,
}

/// One error of a record in an sObject Collections answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    /// Salesforce status code, e.g. `UNABLE_TO_LOCK_ROW`.
    pub status_code: String,
    /// Salesforce's text.
    #[serde(default)]
    pub message: String,
    /// Fields concerned.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// The answer to an `Individual` read-back (fields absent from the answer read as `false`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct IndividualState {
    /// Don't Track.
    #[serde(rename = "HasOptedOutTracking", default)]
    pub has_opted_out_tracking: bool,
    /// Don't Profile.
    #[serde(rename = "HasOptedOutProfiling", default)]
    pub has_opted_out_profiling: bool,
    /// Don't Process.
    #[serde(rename = "HasOptedOutProcessing", default)]
    pub has_opted_out_processing: bool,
    /// Don't Market.
    #[serde(rename = "HasOptedOutSolicit", default)]
    pub has_opted_out_solicit: bool,
    /// Forget this Individual.
    #[serde(rename = "ShouldForget", default)]
    pub should_forget: bool,
}

impl IndividualState {
    /// The value of a field by API name (`None` for a field it does not hold).
    pub fn field(&self, name: &str) -> Option<bool> {
        match name {
            "HasOptedOutTracking" => Some(self.has_opted_out_tracking),
            "HasOptedOutProfiling" => Some(self.has_opted_out_profiling),
            "HasOptedOutProcessing" => Some(self.has_opted_out_processing),
            "HasOptedOutSolicit" => Some(self.has_opted_out_solicit),
            SHOULD_FORGET => Some(self.should_forget),
            _ => None,
        }
    }

    /// Whether every field of `expected` holds its expected value.
    pub fn matches(&self, expected: &IndividualFields) -> bool {
        expected
            .iter()
            .all(|(field, value)| self.field(field) == Some(*value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IndividualFlag;
    use hush_connector_kit::testing::opt_out_of;
    use hush_contracts::connector::{RawValue, WorkIdentifier};
    use hush_contracts::identifiers::sha256_hex;

    fn email(raw: Option<&str>) -> WorkIdentifier {
        WorkIdentifier {
            kind: IdentifierType::Email,
            sha256: sha256_hex("x"),
            raw: raw.map(RawValue::new),
        }
    }

    #[test]
    fn soql_literal_escapes_quotes_and_backslashes() {
        assert_eq!(
            escape_soql_literal("o'brien@example.com"),
            "o\\'brien@example.com"
        );
        assert_eq!(
            escape_soql_literal("a\\b@example.com"),
            "a\\\\b@example.com"
        );
        assert_eq!(escape_soql_literal("say \"hi\""), "say \\\"hi\\\"");
        assert_eq!(escape_soql_literal("x\ny\tz"), "x\\ny\\tz");
        // An injection attempt stays inside the literal.
        assert_eq!(
            escape_soql_literal("x' OR Email != '"),
            "x\\' OR Email != \\'"
        );
        // A trailing backslash cannot escape the closing quote.
        assert_eq!(escape_soql_literal("x\\"), "x\\\\");
    }

    #[test]
    fn people_query_selects_id_individual_and_email_by_a_list_of_emails() {
        let emails = [
            "o'brien@example.com".to_owned(),
            "jane@example.com".to_owned(),
        ];
        assert_eq!(
            people_query(SObjectType::Contact, &emails),
            "SELECT Id, IndividualId, Email FROM Contact WHERE Email IN \
             ('o\\'brien@example.com', 'jane@example.com')"
        );
        assert_eq!(
            people_query(SObjectType::Lead, &emails[1..]),
            "SELECT Id, IndividualId, Email FROM Lead WHERE Email IN ('jane@example.com')"
        );
    }

    #[test]
    fn emails_are_chunked_by_count_and_by_encoded_length() {
        let short: Vec<String> = (0..250).map(|i| format!("p{i}@example.com")).collect();
        let chunks = email_chunks(SObjectType::Contact, &short);
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        assert_eq!(chunks.concat(), short, "every email once, in order");

        let long: Vec<String> = (0..100)
            .map(|i| format!("{i}{}@example.com", "x".repeat(200)))
            .collect();
        let chunks = email_chunks(SObjectType::Lead, &long);
        assert!(chunks.len() > 1, "100 long emails exceed the URL budget");
        assert_eq!(chunks.concat(), long);
        for chunk in &chunks {
            assert!(
                encoded_len(&people_query(SObjectType::Lead, chunk)) <= MAX_ENCODED_QUERY_BYTES
            );
        }

        let huge = vec!["y".repeat(MAX_ENCODED_QUERY_BYTES)];
        assert_eq!(email_chunks(SObjectType::Contact, &huge), [&huge[..]]);
        assert!(email_chunks(SObjectType::Contact, &[]).is_empty());
    }

    #[test]
    fn encoded_length_counts_reserved_bytes_three_times() {
        assert_eq!(encoded_len("a.b-c_d~"), 8);
        assert_eq!(encoded_len("a@b c"), 1 + 3 + 1 + 3 + 1);
        assert_eq!(encoded_len("\u{e9}"), 6);
    }

    #[test]
    fn emails_are_normalised_and_deduplicated() {
        let w = opt_out_of(vec![
            email(Some(" Jane@Example.COM ")),
            email(Some("jane@example.com")),
            WorkIdentifier {
                kind: IdentifierType::Phone,
                sha256: sha256_hex("p"),
                raw: Some(RawValue::new("+14155550100")),
            },
        ]);
        assert_eq!(emails_of(&w).unwrap(), ["jane@example.com"]);
    }

    #[test]
    fn email_without_raw_value_is_a_permanent_error() {
        let err = emails_of(&opt_out_of(vec![email(None)])).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(m) if m.contains("raw EMAIL identifier is required")),
            "{err:?}"
        );
    }

    #[test]
    fn opt_out_writes_only_the_configured_flags() {
        let settings = SalesforceSettings::default();
        let (fields, action) = individual_fields(RequestKind::OptOutSaleShare, &settings);
        assert_eq!(action, ConfirmationAction::Flagged);
        assert_eq!(
            individual_update("0PK000000000000001", &fields),
            json!({
                "attributes": {"type": "Individual"},
                "id": "0PK000000000000001",
                "HasOptedOutTracking": true,
                "HasOptedOutProfiling": true
            })
        );
    }

    #[test]
    fn limit_and_opt_in_and_delete_follow_the_settings() {
        let settings = SalesforceSettings {
            limit_sensitive_flags: vec![IndividualFlag::HasOptedOutSolicit],
            delete_records: false,
            ..Default::default()
        };
        let (limit, _) = individual_fields(RequestKind::LimitSensitive, &settings);
        assert_eq!(
            limit,
            IndividualFields::from([("HasOptedOutSolicit", true)])
        );
        let (opt_in, action) = individual_fields(RequestKind::OptInSaleShare, &settings);
        assert_eq!(action, ConfirmationAction::Flagged);
        assert_eq!(
            opt_in,
            IndividualFields::from([
                ("HasOptedOutTracking", false),
                ("HasOptedOutProfiling", false)
            ])
        );
        let (forget, action) = individual_fields(RequestKind::Delete, &settings);
        assert_eq!(forget, IndividualFields::from([(SHOULD_FORGET, true)]));
        assert_eq!(action, ConfirmationAction::Flagged);
        let (_, action) = individual_fields(RequestKind::Delete, &SalesforceSettings::default());
        assert_eq!(action, ConfirmationAction::Deleted);
    }

    #[test]
    fn collection_bodies_match_the_documented_shapes() {
        let body = collection_body(&[
            new_individual(),
            link_to_individual(
                SObjectType::Contact,
                "003000000000000001",
                "0PK000000000000001",
            ),
        ]);
        assert_eq!(
            body,
            json!({
                "allOrNone": false,
                "records": [
                    {"attributes": {"type": "Individual"}, "LastName": CREATED_INDIVIDUAL_LAST_NAME},
                    {"attributes": {"type": "Contact"}, "id": "003000000000000001", "IndividualId": "0PK000000000000001"}
                ]
            })
        );
        assert_eq!(
            delete_query(&["003A".into(), "00QB".into()]),
            [
                ("ids", "003A,00QB".to_owned()),
                ("allOrNone", "false".to_owned())
            ]
        );
    }

    #[test]
    fn documented_answers_parse() {
        // Shapes from the REST API guide (query, sObject Collections delete with a failure).
        let query: QueryResponse = serde_json::from_value(json!({
            "totalSize": 1, "done": true,
            "records": [{"attributes": {"type": "Contact", "url": "/services/data/v61.0/sobjects/Contact/003A"},
                         "Id": "003A", "IndividualId": null}]
        }))
        .unwrap();
        assert_eq!(query.records[0].id, "003A");
        assert_eq!(query.records[0].individual_id, None);
        let results: Vec<SaveResult> = serde_json::from_value(json!([
            {"id": "001RM000003oLrfYAE", "success": true, "errors": []},
            {"success": false, "errors": [{"statusCode": "MALFORMED_ID", "message": "malformed id 001RM000003oLrB000", "fields": []}]}
        ]))
        .unwrap();
        assert!(results[0].success);
        assert_eq!(results[1].errors[0].status_code, "MALFORMED_ID");
        let state: IndividualState = serde_json::from_value(json!({
            "attributes": {"type": "Individual"}, "Id": "0PK1",
            "HasOptedOutTracking": true, "ShouldForget": false
        }))
        .unwrap();
        assert!(state.matches(&IndividualFields::from([("HasOptedOutTracking", true)])));
        assert!(!state.matches(&IndividualFields::from([("HasOptedOutProfiling", true)])));
    }
}
