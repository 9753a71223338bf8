//! Pure functions from a configured SQL template and a work item to what `jobs.query`
//! receives: the template's named placeholders (`:email_sha256`, `:customer_id`, …, the same
//! names as the `postgres` and `snowflake` connectors') become BigQuery named query parameters
//! (`@email_sha256`) once, at start-up, and each work item's identifiers travel in the request's
//! `queryParameters` — never spliced into the SQL text, so no identifier can change a statement.
//!
//! # The placeholder scheme
//!
//! | placeholder | binds |
//! |---|---|
//! | `:email_sha256`, `:phone_sha256`, `:customer_id_sha256`, `:device_id_sha256`, `:cookie_id_sha256`, `:maid_sha256` | lowercase hex SHA-256 of the normalised identifier, as intake hashed it |
//! | `:email`, `:phone`, `:customer_id`, `:device_id`, `:cookie_id`, `:maid` | the normalised raw value (lowercase email, E.164 phone); intake must keep it (`[intake] keep_raw`) |
//! | `:request_id` | the request id, e.g. to record which request flagged a row |
//!
//! Every value is a `STRING` parameter; cast in the template for other column types
//! (`WHERE id = CAST(:customer_id AS INT64)`). Left alone: anything inside string and bytes
//! literals (`'…'`, `"…"`, triple-quoted, `r'…'` raw), backquoted names and comments (`#`, `--`,
//! `/* */`), and `@@` system variables. BigQuery's own parameter syntaxes (`?`, `@name`) are
//! refused: one scheme only.
//!
//! A statement runs once per identifier value (a person with two emails runs
//! `… WHERE email_sha256 = :email_sha256` twice), each run its own query job. A template naming
//! several identifier types runs `n` times, `n` being the most identifiers of one of those types
//! the person has; run `i` binds the `i`-th identifier of each type and `NULL` where a type has
//! fewer. Write such a template as alternatives (`… OR …`): `NULL` never matches.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use serde_json::{json, Map, Value};

/// Standard SQL type every value is bound as.
pub const PARAMETER_TYPE: &str = "STRING";

/// Path of `jobs.query` for `project` (its `/{jobId}` is `jobs.getQueryResults`).
pub fn queries_path(project: &str) -> String {
    format!("/bigquery/v2/projects/{project}/queries")
}

/// The identifier types a placeholder can name, in the order error messages list them.
const IDENTIFIER_TYPES: [IdentifierType; 6] = [
    IdentifierType::Email,
    IdentifierType::Phone,
    IdentifierType::CustomerId,
    IdentifierType::DeviceId,
    IdentifierType::CookieId,
    IdentifierType::Maid,
];

/// What one named placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `:<type>_sha256`: the identifier's SHA-256 as intake computed it.
    Hashed(IdentifierType),
    /// `:<type>`: the identifier's normalised raw value.
    Raw(IdentifierType),
    /// `:request_id`: the request id.
    RequestId,
}

impl Placeholder {
    /// The placeholder called `name` (without the colon), if the scheme has one.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "request_id" {
            return Some(Placeholder::RequestId);
        }
        IDENTIFIER_TYPES.into_iter().find_map(|kind| {
            let base = kind.as_str().to_ascii_lowercase();
            if name == base {
                Some(Placeholder::Raw(kind))
            } else if name.strip_suffix("_sha256") == Some(base.as_str()) {
                Some(Placeholder::Hashed(kind))
            } else {
                None
            }
        })
    }

    /// The placeholder's name, without the colon.
    pub fn name(self) -> String {
        match self {
            Placeholder::RequestId => "request_id".to_owned(),
            Placeholder::Raw(kind) => kind.as_str().to_ascii_lowercase(),
            Placeholder::Hashed(kind) => format!("{}_sha256", kind.as_str().to_ascii_lowercase()),
        }
    }

    /// The identifier type it binds, unless it is the request id.
    pub fn identifier_type(self) -> Option<IdentifierType> {
        match self {
            Placeholder::Hashed(kind) | Placeholder::Raw(kind) => Some(kind),
            Placeholder::RequestId => None,
        }
    }

    /// Every placeholder name of the scheme, `:`-prefixed, comma-separated.
    pub fn known_names() -> String {
        IDENTIFIER_TYPES
            .into_iter()
            .flat_map(|kind| [Placeholder::Hashed(kind), Placeholder::Raw(kind)])
            .chain([Placeholder::RequestId])
            .map(|p| format!(":{}", p.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a configured template cannot be used; the configuration error names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// A placeholder the scheme does not have.
    #[error("uses the unknown placeholder `:{0}` (known: {known})", known = Placeholder::known_names())]
    UnknownPlaceholder(String),
    /// BigQuery's own parameter syntax (`?` or `@name`).
    #[error("uses BigQuery's query parameter `{0}`; write a named placeholder such as `:email_sha256` instead")]
    Positional(String),
    /// A string literal, quoted identifier or comment that never ends.
    #[error("has an unterminated {0}")]
    Unterminated(&'static str),
    /// No identifier placeholder: the statement would act on no one or on everyone.
    #[error("names no identifier placeholder (such as `:email_sha256`), so it cannot select the subject's rows")]
    NoIdentifier,
}

/// The values of one run, one per distinct placeholder; `None` binds SQL `NULL`.
pub type Execution = Vec<Option<String>>;

/// Why a work item cannot be bound to a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unbindable {
    /// The person has no identifier of any type the template matches on.
    NoIdentifier(Vec<IdentifierType>),
    /// The template binds the raw value of this type, but an identifier of it came hashed only.
    RawMissing(IdentifierType),
}

/// A configured template, converted for `jobs.query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The SQL text as BigQuery receives it, each `:name` replaced by `@name`.
    pub sql: String,
    /// The distinct placeholders, in order of first use.
    pub params: Vec<Placeholder>,
}

impl Template {
    /// Converts `text`'s named placeholders to named query parameters.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut sql = String::with_capacity(text.len());
        let mut params: Vec<Placeholder> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let end = match c {
                '\'' | '"' => {
                    // r'…' and rb'…' take no backslash escapes.
                    let raw = previous.is_some_and(|p| p == 'r' || p == 'R')
                        || (previous.is_some_and(|p| p == 'b' || p == 'B')
                            && i.checked_sub(2)
                                .is_some_and(|p| chars[p] == 'r' || chars[p] == 'R'));
                    let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                    if triple {
                        let close: String = [c, c, c].iter().collect();
                        find(&chars, i + 3, &close, !raw)
                            .ok_or(TemplateError::Unterminated("triple-quoted string"))?
                    } else {
                        quoted_end(&chars, i, c, !raw)
                            .ok_or(TemplateError::Unterminated("string literal"))?
                    }
                }
                '`' => quoted_end(&chars, i, '`', true)
                    .ok_or(TemplateError::Unterminated("quoted name"))?,
                '#' => line_end(&chars, i),
                '-' if next == Some('-') => line_end(&chars, i),
                '/' if next == Some('*') => find(&chars, i + 2, "*/", false)
                    .ok_or(TemplateError::Unterminated("comment"))?,
                '?' => return Err(TemplateError::Positional("?".into())),
                '@' if next == Some('@') => i + 2,
                '@' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| is_name_char(**c))
                        .collect();
                    return Err(TemplateError::Positional(format!("@{name}")));
                }
                ':' if previous.is_some_and(is_name_char) => i + 1,
                ':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| is_name_char(**c))
                        .collect();
                    let placeholder = Placeholder::from_name(&name)
                        .ok_or_else(|| TemplateError::UnknownPlaceholder(name.clone()))?;
                    if !params.contains(&placeholder) {
                        params.push(placeholder);
                    }
                    sql.push('@');
                    sql.push_str(&name);
                    i += 1 + name.chars().count();
                    continue;
                }
                _ => i + 1,
            };
            sql.extend(&chars[i..end]);
            i = end;
        }
        if !params.iter().any(|p| p.identifier_type().is_some()) {
            return Err(TemplateError::NoIdentifier);
        }
        Ok(Self { sql, params })
    }

    /// The identifier types the template matches on, each once, in parameter order.
    pub fn identifier_types(&self) -> Vec<IdentifierType> {
        let mut types = Vec::new();
        for kind in self.params.iter().filter_map(|p| p.identifier_type()) {
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
        types
    }

    /// The runs `work` needs: one per identifier value (see the module documentation).
    pub fn bind(&self, work: &SuppressionWork) -> Result<Vec<Execution>, Unbindable> {
        let mut values: Vec<Vec<String>> = Vec::with_capacity(self.params.len());
        for param in &self.params {
            values.push(match param {
                Placeholder::RequestId => vec![work.request_id.clone()],
                Placeholder::Hashed(kind) => work
                    .identifiers_of(*kind)
                    .map(|i| i.sha256.clone())
                    .collect(),
                Placeholder::Raw(kind) => work
                    .identifiers_of(*kind)
                    .map(|i| {
                        i.raw
                            .as_ref()
                            .map(|raw| raw.expose().to_owned())
                            .ok_or(Unbindable::RawMissing(*kind))
                    })
                    .collect::<Result<_, _>>()?,
            });
        }
        let runs = self
            .params
            .iter()
            .zip(&values)
            .filter(|(p, _)| p.identifier_type().is_some())
            .map(|(_, v)| v.len())
            .max()
            .unwrap_or(0);
        if runs == 0 {
            return Err(Unbindable::NoIdentifier(self.identifier_types()));
        }
        Ok((0..runs)
            .map(|run| {
                self.params
                    .iter()
                    .zip(&values)
                    .map(|(param, values)| match param {
                        Placeholder::RequestId => values.first().cloned(),
                        _ => values.get(run).cloned(),
                    })
                    .collect()
            })
            .collect())
    }

    /// The `queryParameters` of one run: one named `STRING` parameter per placeholder, `null`
    /// for SQL `NULL`.
    pub fn query_parameters(&self, execution: &Execution) -> Value {
        Value::Array(
            self.params
                .iter()
                .enumerate()
                .map(|(index, param)| {
                    json!({
                        "name": param.name(),
                        "parameterType": {"type": PARAMETER_TYPE},
                        "parameterValue": {"value": execution.get(index).cloned().flatten()},
                    })
                })
                .collect(),
        )
    }
}

/// Where a query runs and how long BigQuery holds the call: the body fields besides the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryContext {
    /// `location` of the dataset (`US`, `EU`, `europe-west3`, …), if configured.
    pub location: Option<String>,
    /// `defaultDataset`: the project and dataset of unqualified table names, if configured.
    pub default_dataset: Option<(String, String)>,
    /// `timeoutMs`: how long BigQuery waits for the query before answering `jobComplete: false`.
    pub wait_ms: u64,
}

/// The body of `jobs.query` for one run of `template`, with its `requestId`.
pub fn query_body(
    template: &Template,
    execution: &Execution,
    context: &QueryContext,
    request_id: &str,
) -> Value {
    let mut body = Map::new();
    body.insert("query".into(), Value::String(template.sql.clone()));
    body.insert("useLegacySql".into(), Value::Bool(false));
    body.insert("parameterMode".into(), Value::String("NAMED".into()));
    body.insert(
        "queryParameters".into(),
        template.query_parameters(execution),
    );
    body.insert("requestId".into(), Value::String(request_id.to_owned()));
    body.insert("timeoutMs".into(), json!(context.wait_ms));
    if let Some(location) = &context.location {
        body.insert("location".into(), Value::String(location.clone()));
    }
    if let Some((project, dataset)) = &context.default_dataset {
        body.insert(
            "defaultDataset".into(),
            json!({"projectId": project, "datasetId": dataset}),
        );
    }
    Value::Object(body)
}

/// The `requestId` of one run: a UUID derived from the Hush request, the setting and the run,
/// so that a resubmission after a lost answer is recognised by BigQuery and not run twice.
pub fn request_uuid(request_id: &str, field: &str, run: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("hush\n{request_id}\n{field}\n{run}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8: custom
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index after the end of the line starting a comment at `start`.
fn line_end(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(chars.len(), |n| start + n + 1)
}

/// The index after the first `needle` at or after `from`, skipping backslash-escaped
/// characters where `backslash`.
fn find(chars: &[char], from: usize, needle: &str, backslash: bool) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    let mut j = from;
    while j + needle.len() <= chars.len() {
        if backslash && chars[j] == '\\' {
            j += 2;
            continue;
        }
        if chars[j..].starts_with(&needle) {
            return Some(j + needle.len());
        }
        j += 1;
    }
    None
}

/// The index after the quote closing the one at `start`, skipping backslash-escaped
/// characters where `backslash`.
fn quoted_end(chars: &[char], start: usize, quote: char, backslash: bool) -> Option<usize> {
    let mut j = start + 1;
    while j < chars.len() {
        if backslash && chars[j] == '\\' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{hashed, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;

    fn parsed(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    #[test]
    fn placeholders_become_named_query_parameters() {
        let template = parsed(
            "UPDATE crm.customers SET do_not_sell = TRUE, opted_out_by = :request_id \
             WHERE email_sha256 = :email_sha256 OR LOWER(email) = :email OR backup_sha256 = :email_sha256",
        );
        assert_eq!(
            template.sql,
            "UPDATE crm.customers SET do_not_sell = TRUE, opted_out_by = @request_id \
             WHERE email_sha256 = @email_sha256 OR LOWER(email) = @email OR backup_sha256 = @email_sha256"
        );
        assert_eq!(
            template.params,
            vec![
                Placeholder::RequestId,
                Placeholder::Hashed(IdentifierType::Email),
                Placeholder::Raw(IdentifierType::Email),
            ]
        );
    }

    #[test]
    fn literals_quoted_names_comments_and_system_variables_are_left_alone() {
        let text = "DELETE FROM `proj.ds.t:x` WHERE id = CAST(:customer_id AS INT64) \
                    AND note <> 'a :email b' AND tag <> \"it\\\"s :phone\" AND r <> r'\\d :maid' \
                    AND body <> '''x ' :maid ? @p''' AND b <> b\"\"\":cookie_id\"\"\" \
                    AND @@session.time_zone = 'UTC' # :cookie_id ?\n -- :device_id\n /* :device_id @x */";
        let template = parsed(text);
        assert_eq!(
            template.sql,
            text.replace("CAST(:customer_id", "CAST(@customer_id")
        );
        assert_eq!(
            template.params,
            vec![Placeholder::Raw(IdentifierType::CustomerId)]
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let refused = |text: &str| Template::parse(text).unwrap_err();
        assert_eq!(refused("\t"), TemplateError::Empty);
        assert_eq!(
            refused("DELETE FROM t WHERE e = :emial"),
            TemplateError::UnknownPlaceholder("emial".into())
        );
        assert!(refused("DELETE FROM t WHERE e = :emial")
            .to_string()
            .contains(":email_sha256"));
        assert_eq!(
            refused("DELETE FROM t WHERE e = ?"),
            TemplateError::Positional("?".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = @email"),
            TemplateError::Positional("@email".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = '''x"),
            TemplateError::Unterminated("triple-quoted string")
        );
        assert_eq!(
            refused("DELETE FROM `t WHERE e = 1"),
            TemplateError::Unterminated("quoted name")
        );
        assert_eq!(
            refused("DELETE FROM t WHERE r = :request_id"),
            TemplateError::NoIdentifier
        );
    }

    #[test]
    fn a_run_per_identifier_value_with_null_for_a_shorter_type() {
        let template = parsed(
            "DELETE FROM c WHERE email_sha256 = :email_sha256 OR phone = :phone OR r = :request_id",
        );
        let item = work(RequestKind::Delete)
            .id("req-1")
            .with(hashed(IdentifierType::Email, "a@example.com"))
            .with(hashed(IdentifierType::Email, "b@example.com"))
            .with(with_raw(IdentifierType::Phone, "+14155550100"));
        let runs = template.bind(&item).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            template.query_parameters(&runs[1]),
            json!([
                {"name": "email_sha256", "parameterType": {"type": "STRING"},
                 "parameterValue": {"value": item.identifiers[1].sha256}},
                {"name": "phone", "parameterType": {"type": "STRING"},
                 "parameterValue": {"value": null}},
                {"name": "request_id", "parameterType": {"type": "STRING"},
                 "parameterValue": {"value": "req-1"}},
            ])
        );
        let no_phone = parsed("DELETE FROM c WHERE phone = :phone");
        assert_eq!(
            no_phone.bind(
                &work(RequestKind::Delete).with(hashed(IdentifierType::Email, "a@example.com"))
            ),
            Err(Unbindable::NoIdentifier(vec![IdentifierType::Phone]))
        );
        assert_eq!(
            no_phone.bind(
                &work(RequestKind::Delete).with(hashed(IdentifierType::Phone, "+14155550100"))
            ),
            Err(Unbindable::RawMissing(IdentifierType::Phone))
        );
    }

    #[test]
    fn the_body_is_standard_sql_with_named_parameters_and_the_context() {
        let template = parsed("UPDATE c SET dns = TRUE WHERE e = :email_sha256");
        let body = query_body(
            &template,
            &vec![Some("abc".into())],
            &QueryContext {
                location: Some("EU".into()),
                default_dataset: Some(("acme-prod".into(), "crm".into())),
                wait_ms: 4000,
            },
            "6f1c1c3e-8c1d-8c38-9a8b-3a4c9e7d5b21",
        );
        assert_eq!(
            body,
            json!({
                "query": "UPDATE c SET dns = TRUE WHERE e = @email_sha256",
                "useLegacySql": false,
                "parameterMode": "NAMED",
                "queryParameters": [{"name": "email_sha256", "parameterType": {"type": "STRING"},
                                     "parameterValue": {"value": "abc"}}],
                "requestId": "6f1c1c3e-8c1d-8c38-9a8b-3a4c9e7d5b21",
                "timeoutMs": 4000,
                "location": "EU",
                "defaultDataset": {"projectId": "acme-prod", "datasetId": "crm"},
            })
        );
    }

    #[test]
    fn request_uuids_are_stable_per_run_and_at_most_36_characters() {
        let a = request_uuid("req-1", "settings.delete.statement", 0);
        assert_eq!(a, request_uuid("req-1", "settings.delete.statement", 0));
        assert_ne!(a, request_uuid("req-1", "settings.delete.statement", 1));
        assert_eq!(a.len(), 36);
    }
}
