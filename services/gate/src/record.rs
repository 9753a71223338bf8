//! What the gate reads in, and does to, one outbound record (a JSON object): the identifiers at
//! the configured paths, normalised and hashed exactly as intake does, and the rewrites of the
//! policies. Pure functions; no I/O.

use hush_contracts::events::IdentifierType;
use hush_contracts::gate::IdentifierPath;
use hush_contracts::identifiers::{hash_identifier, is_sha256_hex};
use serde_json::{Map, Value};

/// Meta's Limited Data Use option.
pub const LDU_OPTION: &str = "LDU";
/// `data_processing_options_country` for the United States.
pub const LDU_COUNTRY_US: i64 = 1;
/// `data_processing_options_state` for California.
pub const LDU_STATE_CALIFORNIA: i64 = 1000;

/// An identifier found in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundIdentifier {
    /// Kind, from the path's configuration.
    pub kind: IdentifierType,
    /// Lowercase hex SHA-256 of the normalised value.
    pub sha256: String,
}

/// Why a record could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The payload is not a JSON object.
    #[error("record is not a JSON object: {0}")]
    NotAnObject(String),
    /// A field at an identifier path holds something that is not an identifier of its kind.
    /// The value itself is never repeated.
    #[error("field `{path}` does not hold a valid {kind} identifier: {reason}")]
    InvalidIdentifier {
        /// Configured path.
        path: String,
        /// Configured kind.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parses a JSON payload into an object.
pub fn parse_json(payload: &[u8]) -> Result<Value, RecordError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| RecordError::NotAnObject(e.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(RecordError::NotAnObject(
            "the payload is JSON but not an object".into(),
        ))
    }
}

/// Every identifier at `paths` in `record`. A missing field or a null is no identifier; a path
/// through an array visits each element, and a list of values at the leaf yields each one.
pub fn identifiers_in(
    record: &Value,
    paths: &[IdentifierPath],
) -> Result<Vec<FoundIdentifier>, RecordError> {
    let mut found = Vec::new();
    for identifier in paths {
        let mut leaves = Vec::new();
        collect_leaves(record, &segments(&identifier.path), &mut leaves);
        for leaf in leaves {
            for value in scalar_values(leaf) {
                let invalid = |reason: String| RecordError::InvalidIdentifier {
                    path: identifier.path.clone(),
                    kind: identifier.kind.as_str(),
                    reason,
                };
                let Some(text) = value else {
                    return Err(invalid("not a string or a number".into()));
                };
                if text.trim().is_empty() {
                    continue;
                }
                let sha256 = if identifier.hashed {
                    let lower = text.trim().to_ascii_lowercase();
                    if !is_sha256_hex(&lower) {
                        return Err(invalid("not a SHA-256 hex digest".into()));
                    }
                    lower
                } else {
                    hash_identifier(identifier.kind, &text).map_err(|e| invalid(e.to_string()))?
                };
                found.push(FoundIdentifier {
                    kind: identifier.kind,
                    sha256,
                });
            }
        }
    }
    found.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    found.dedup();
    Ok(found)
}

/// The record with the field at every path in `paths` removed.
pub fn strip(record: &Value, paths: &[IdentifierPath]) -> Value {
    let mut stripped = record.clone();
    for identifier in paths {
        remove_at(&mut stripped, &segments(&identifier.path));
    }
    stripped
}

/// The record as a Meta Limited Data Use event: `data_processing_options: ["LDU"]`,
/// `data_processing_options_country: 1`, `data_processing_options_state: 1000`, with the raw
/// identifiers removed and the hashed ones kept (Meta accepts hashed customer information with
/// LDU and processes it as a service provider).
pub fn meta_ldu(record: &Value, paths: &[IdentifierPath]) -> Value {
    let raw: Vec<IdentifierPath> = paths.iter().filter(|p| !p.hashed).cloned().collect();
    let mut rewritten = strip(record, &raw);
    if let Some(object) = rewritten.as_object_mut() {
        object.insert(
            "data_processing_options".into(),
            Value::Array(vec![Value::String(LDU_OPTION.into())]),
        );
        object.insert(
            "data_processing_options_country".into(),
            Value::from(LDU_COUNTRY_US),
        );
        object.insert(
            "data_processing_options_state".into(),
            Value::from(LDU_STATE_CALIFORNIA),
        );
    }
    rewritten
}

/// The record with `value` set at the dotted `path`, creating objects on the way.
pub fn with_field(record: &Value, path: &str, value: Value) -> Value {
    let mut annotated = record.clone();
    let segments = segments(path);
    let Some((last, parents)) = segments.split_last() else {
        return annotated;
    };
    let mut node = &mut annotated;
    for segment in parents {
        let Some(object) = node.as_object_mut() else {
            return annotated;
        };
        node = object
            .entry(segment.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(object) = node.as_object_mut() {
        object.insert(last.to_string(), value);
    }
    annotated
}

/// The text at a dotted path, when it is a string (e.g. the recipient a record is headed to).
pub fn text_at(record: &Value, path: &str) -> Option<String> {
    let mut leaves = Vec::new();
    collect_leaves(record, &segments(path), &mut leaves);
    leaves.first().and_then(|v| v.as_str()).map(str::to_owned)
}

fn segments(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

fn collect_leaves<'a>(node: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match (node, path.split_first()) {
        (Value::Null, _) => {}
        (Value::Array(items), Some(_)) => {
            for item in items {
                collect_leaves(item, path, out);
            }
        }
        (Value::Object(object), Some((first, rest))) => {
            if let Some(child) = object.get(*first) {
                collect_leaves(child, rest, out);
            }
        }
        (_, Some(_)) => {}
        (leaf, None) => out.push(leaf),
    }
}

/// The texts of a leaf: a string or number gives one, an array one per element, and `None`
/// marks a value that is neither.
fn scalar_values(leaf: &Value) -> Vec<Option<String>> {
    match leaf {
        Value::Null => Vec::new(),
        Value::String(text) => vec![Some(text.clone())],
        Value::Number(number) => vec![Some(number.to_string())],
        Value::Array(items) => items.iter().flat_map(scalar_values).collect(),
        _ => vec![None],
    }
}

fn remove_at(node: &mut Value, path: &[&str]) {
    match (node, path.split_first()) {
        (Value::Array(items), Some(_)) => {
            for item in items {
                remove_at(item, path);
            }
        }
        (Value::Object(object), Some((last, []))) => {
            object.remove(*last);
        }
        (Value::Object(object), Some((first, rest))) => {
            if let Some(child) = object.get_mut(*first) {
                remove_at(child, rest);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::identifiers::sha256_hex;
    use serde_json::json;

    fn paths() -> Vec<IdentifierPath> {
        vec![
            IdentifierPath {
                path: "user.email".into(),
                kind: IdentifierType::Email,
                hashed: false,
            },
            IdentifierPath {
                path: "user_data.em".into(),
                kind: IdentifierType::Email,
                hashed: true,
            },
            IdentifierPath {
                path: "device.maid".into(),
                kind: IdentifierType::Maid,
                hashed: false,
            },
        ]
    }

    #[test]
    fn identifiers_are_normalised_and_hashed_as_intake_does() {
        let other = sha256_hex("other@example.com");
        let record = json!({
            "user": {"email": "  Jane.Doe@Example.COM "},
            "user_data": {"em": [other.to_uppercase()]},
            "event_name": "Purchase"
        });
        let found = identifiers_in(&record, &paths()).unwrap();
        let hashes: Vec<&str> = found.iter().map(|f| f.sha256.as_str()).collect();
        let mut expected = vec![sha256_hex("jane.doe@example.com"), other];
        expected.sort();
        assert_eq!(hashes, expected);
        assert!(found.iter().all(|f| f.kind == IdentifierType::Email));
    }

    #[test]
    fn a_path_through_an_array_visits_every_element() {
        let record = json!({"user": [{"email": "a@example.com"}, {"email": "b@example.com"}]});
        let found = identifiers_in(&record, &paths()[..1]).unwrap();
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn missing_and_null_fields_are_no_identifier() {
        let record = json!({"user": {"email": null}, "device": {}});
        assert_eq!(identifiers_in(&record, &paths()).unwrap(), vec![]);
    }

    #[test]
    fn a_bad_hash_is_refused_naming_the_path_not_the_value() {
        let record = json!({"user_data": {"em": "jane@example.com"}});
        let error = identifiers_in(&record, &paths()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("user_data.em"), "{text}");
        assert!(!text.contains("jane"), "{text}");
    }

    #[test]
    fn a_non_object_payload_is_refused() {
        assert!(matches!(
            parse_json(b"[1,2]"),
            Err(RecordError::NotAnObject(_))
        ));
        assert!(matches!(
            parse_json(b"{not json"),
            Err(RecordError::NotAnObject(_))
        ));
    }

    #[test]
    fn strip_removes_every_identifier_and_keeps_the_rest() {
        let record = json!({
            "user": {"email": "jane@example.com", "country": "US"},
            "user_data": {"em": ["ab"]},
            "value": 12.5
        });
        let stripped = strip(&record, &paths());
        assert_eq!(
            stripped,
            json!({"user": {"country": "US"}, "user_data": {}, "value": 12.5})
        );
    }

    #[test]
    fn meta_ldu_sets_the_processing_options_and_keeps_only_hashed_identifiers() {
        let record = json!({
            "event_name": "Purchase",
            "user": {"email": "jane@example.com"},
            "user_data": {"em": ["0f"]}
        });
        let ldu = meta_ldu(&record, &paths());
        assert_eq!(ldu["data_processing_options"], json!(["LDU"]));
        assert_eq!(ldu["data_processing_options_country"], json!(1));
        assert_eq!(ldu["data_processing_options_state"], json!(1000));
        assert_eq!(ldu["user_data"]["em"], json!(["0f"]));
        assert!(ldu["user"].get("email").is_none());
    }

    #[test]
    fn with_field_creates_the_path() {
        let record = json!({"a": 1});
        let annotated = with_field(&record, "regs.gpp", json!("DBABMA"));
        assert_eq!(annotated, json!({"a": 1, "regs": {"gpp": "DBABMA"}}));
    }

    #[test]
    fn text_at_reads_a_string() {
        let record = json!({"dest": {"name": "meta"}});
        assert_eq!(text_at(&record, "dest.name"), Some("meta".into()));
        assert_eq!(text_at(&record, "dest.missing"), None);
    }
}
