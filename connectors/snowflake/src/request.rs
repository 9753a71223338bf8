//! Pure functions from a configured SQL template and a work item to what the SQL API receives:
//! the template's named placeholders (`:email_sha256`, `:customer_id`, …, the same names as the
//! `postgres` connector's) become `?` bind variables once, at start-up, and each work item's
//! identifiers travel in the request's `bindings` object — never spliced into the SQL text, so
//! no identifier can change a statement.
//!
//! # The placeholder scheme
//!
//! | placeholder | binds |
//! |---|---|
//! | `:email_sha256`, `:phone_sha256`, `:customer_id_sha256`, `:device_id_sha256`, `:cookie_id_sha256`, `:maid_sha256` | lowercase hex SHA-256 of the normalised identifier, as intake hashed it |
//! | `:email`, `:phone`, `:customer_id`, `:device_id`, `:cookie_id`, `:maid` | the normalised raw value (lowercase email, E.164 phone); intake must keep it (`[intake] keep_raw`) |
//! | `:request_id` | the request id, e.g. to record which request flagged a row |
//!
//! Every value is bound as `TEXT`; cast in the template for other column types
//! (`WHERE id = :customer_id::NUMBER`). Left alone: a `::` cast, a colon right after a name,
//! `]`, `)` or `"` (Snowflake's path into a VARIANT, `payload:email`), and anything inside string
//! literals (`'…'` with backslash escapes, `$$…$$`), quoted identifiers and comments (`--`, `//`,
//! `/* */`). Snowflake's own bind syntaxes (`?`, `:1`) are refused: one scheme only.
//!
//! A statement runs once per identifier value (a person with two emails runs
//! `… WHERE email_sha256 = :email_sha256` twice), each run its own SQL API request. A template
//! naming several identifier types runs `n` times, `n` being the most identifiers of one of
//! those types the person has; run `i` binds the `i`-th identifier of each type and SQL `NULL`
//! where a type has fewer. Write such a template as alternatives (`… OR …`): `NULL` never
//! matches.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use serde_json::{json, Map, Value};

/// Path of the SQL API's statements resource.
pub const STATEMENTS_PATH: &str = "/api/v2/statements";
/// Snowflake type every value is bound as.
pub const BIND_TYPE: &str = "TEXT";

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
    /// Snowflake's own bind syntax (`?` or `:1`).
    #[error("uses Snowflake's bind variable `{0}`; write a named placeholder such as `:email_sha256` instead")]
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

/// A configured template, converted for the SQL API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The SQL text as Snowflake receives it, each placeholder replaced by `?`.
    pub sql: String,
    /// The distinct placeholders, in order of first use.
    pub params: Vec<Placeholder>,
    /// For each `?` in `sql`, in order, the index in `params` it binds.
    pub slots: Vec<usize>,
}

impl Template {
    /// Converts `text`'s named placeholders to `?` bind variables.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut sql = String::with_capacity(text.len());
        let mut params: Vec<Placeholder> = Vec::new();
        let mut slots = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let end = match c {
                '\'' => quoted_end(&chars, i, '\'', true)
                    .ok_or(TemplateError::Unterminated("string literal"))?,
                '"' => quoted_end(&chars, i, '"', false)
                    .ok_or(TemplateError::Unterminated("quoted identifier"))?,
                '$' if next == Some('$') => {
                    find(&chars, i + 2, "$$").ok_or(TemplateError::Unterminated("$$ string"))?
                }
                '-' if next == Some('-') => line_end(&chars, i),
                '/' if next == Some('/') => line_end(&chars, i),
                '/' if next == Some('*') => {
                    find(&chars, i + 2, "*/").ok_or(TemplateError::Unterminated("comment"))?
                }
                '?' => return Err(TemplateError::Positional("?".into())),
                ':' if next == Some(':') => i + 2,
                ':' if previous
                    .is_some_and(|p| is_name_char(p) || matches!(p, ']' | ')' | '"')) =>
                {
                    i + 1
                }
                ':' if next.is_some_and(|n| n.is_ascii_digit()) => {
                    let digits: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    return Err(TemplateError::Positional(format!(":{digits}")));
                }
                ':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| is_name_char(**c) && **c != '$')
                        .collect();
                    let placeholder = Placeholder::from_name(&name)
                        .ok_or_else(|| TemplateError::UnknownPlaceholder(name.clone()))?;
                    let index = match params.iter().position(|p| *p == placeholder) {
                        Some(index) => index,
                        None => {
                            params.push(placeholder);
                            params.len() - 1
                        }
                    };
                    slots.push(index);
                    sql.push('?');
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
        Ok(Self { sql, params, slots })
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

    /// The `bindings` object of one run: `{"1": {"type": "TEXT", "value": …}, …}`, one entry
    /// per `?` in order (a placeholder used twice is bound twice).
    pub fn bindings(&self, execution: &Execution) -> Value {
        let mut bindings = Map::new();
        for (position, slot) in self.slots.iter().enumerate() {
            let value = execution.get(*slot).cloned().flatten();
            bindings.insert(
                (position + 1).to_string(),
                json!({ "type": BIND_TYPE, "value": value }),
            );
        }
        Value::Object(bindings)
    }
}

/// Where a statement runs and how long it may take: the body fields besides the statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementContext {
    /// `timeout`: seconds before Snowflake cancels the statement.
    pub timeout_seconds: u64,
    /// `warehouse`, if configured (else the user's `DEFAULT_WAREHOUSE`).
    pub warehouse: Option<String>,
    /// `database`, if configured.
    pub database: Option<String>,
    /// `schema`, if configured.
    pub schema: Option<String>,
    /// `role`, if configured.
    pub role: Option<String>,
}

/// The body of `POST /api/v2/statements` for one run of `template`.
pub fn statement_body(
    template: &Template,
    execution: &Execution,
    context: &StatementContext,
) -> Value {
    let mut body = Map::new();
    body.insert("statement".into(), Value::String(template.sql.clone()));
    body.insert("timeout".into(), json!(context.timeout_seconds));
    for (field, value) in [
        ("warehouse", &context.warehouse),
        ("database", &context.database),
        ("schema", &context.schema),
        ("role", &context.role),
    ] {
        if let Some(value) = value {
            body.insert(field.into(), Value::String(value.clone()));
        }
    }
    if !template.slots.is_empty() {
        body.insert("bindings".into(), template.bindings(execution));
    }
    Value::Object(body)
}

/// The `requestId` of one run: a UUID derived from the Hush request, the setting and the run,
/// so that a resubmission after a lost answer (`retry=true`) is recognised by Snowflake and not
/// executed twice.
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
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The index after the end of the line starting a comment at `start`.
fn line_end(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(chars.len(), |n| start + n + 1)
}

/// The index after the first `needle` at or after `from`.
fn find(chars: &[char], from: usize, needle: &str) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    (from..=chars.len().saturating_sub(needle.len()))
        .find(|&j| chars[j..].starts_with(&needle))
        .map(|j| j + needle.len())
}

/// The index after the quote closing the one at `start`; a doubled quote is an escaped one,
/// and so is a backslash-escaped one where `backslash` (Snowflake's string literals).
fn quoted_end(chars: &[char], start: usize, quote: char, backslash: bool) -> Option<usize> {
    let mut j = start + 1;
    while j < chars.len() {
        if backslash && chars[j] == '\\' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            if chars.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
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
    fn each_placeholder_becomes_a_question_mark_bound_per_use() {
        let template = parsed(
            "UPDATE customers SET do_not_sell = TRUE, opted_out_by = :request_id \
             WHERE email_sha256 = :email_sha256 OR LOWER(email) = :email OR backup_sha256 = :email_sha256",
        );
        assert_eq!(
            template.sql,
            "UPDATE customers SET do_not_sell = TRUE, opted_out_by = ? \
             WHERE email_sha256 = ? OR LOWER(email) = ? OR backup_sha256 = ?"
        );
        assert_eq!(
            template.params,
            vec![
                Placeholder::RequestId,
                Placeholder::Hashed(IdentifierType::Email),
                Placeholder::Raw(IdentifierType::Email),
            ]
        );
        assert_eq!(template.slots, vec![0, 1, 2, 1]);
    }

    #[test]
    fn casts_paths_literals_quoted_names_and_comments_are_left_alone() {
        let text = "DELETE FROM \"t:x\" WHERE id = :customer_id::NUMBER \
                    AND payload:email::STRING <> 'a :email b' AND tag <> 'it\\'s :phone' \
                    AND arr[0]:maid IS NULL AND f(x):cookie_id IS NULL AND body <> $$ :maid ? $$ \
                    -- :cookie_id ?\n // :device_id\n /* :device_id ? */ AND \"Col\":k = 1";
        let template = parsed(text);
        assert_eq!(
            template.sql,
            text.replace(":customer_id::NUMBER", "?::NUMBER")
        );
        assert_eq!(
            template.params,
            vec![Placeholder::Raw(IdentifierType::CustomerId)]
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let refused = |text: &str| Template::parse(text).unwrap_err();
        assert_eq!(refused(" \n"), TemplateError::Empty);
        assert_eq!(
            refused("DELETE FROM t WHERE e = :emial"),
            TemplateError::UnknownPlaceholder("emial".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = ?"),
            TemplateError::Positional("?".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = :1"),
            TemplateError::Positional(":1".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = 'x"),
            TemplateError::Unterminated("string literal")
        );
        assert_eq!(
            refused("DELETE FROM t /* x"),
            TemplateError::Unterminated("comment")
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
        assert_eq!(runs[0][1].as_deref(), Some("+14155550100"));
        assert_eq!(runs[1][1], None);
        assert_eq!(runs[1][2].as_deref(), Some("req-1"));
        assert_eq!(
            template.bindings(&runs[1]),
            json!({
                "1": {"type": "TEXT", "value": item.identifiers[1].sha256},
                "2": {"type": "TEXT", "value": null},
                "3": {"type": "TEXT", "value": "req-1"},
            })
        );
    }

    #[test]
    fn unbindable_items_say_why() {
        let template = parsed("DELETE FROM c WHERE phone = :phone");
        let no_phone =
            work(RequestKind::Delete).with(hashed(IdentifierType::Email, "a@example.com"));
        assert_eq!(
            template.bind(&no_phone),
            Err(Unbindable::NoIdentifier(vec![IdentifierType::Phone]))
        );
        let hashed_only =
            work(RequestKind::Delete).with(hashed(IdentifierType::Phone, "+14155550100"));
        assert_eq!(
            template.bind(&hashed_only),
            Err(Unbindable::RawMissing(IdentifierType::Phone))
        );
    }

    #[test]
    fn the_body_carries_the_statement_context_and_bindings() {
        let template = parsed("UPDATE c SET dns = TRUE WHERE e = :email_sha256");
        let body = statement_body(
            &template,
            &vec![Some("abc".into())],
            &StatementContext {
                timeout_seconds: 60,
                warehouse: Some("PRIVACY_WH".into()),
                role: Some("HUSH".into()),
                ..StatementContext::default()
            },
        );
        assert_eq!(
            body,
            json!({
                "statement": "UPDATE c SET dns = TRUE WHERE e = ?",
                "timeout": 60,
                "warehouse": "PRIVACY_WH",
                "role": "HUSH",
                "bindings": {"1": {"type": "TEXT", "value": "abc"}},
            })
        );
    }

    #[test]
    fn request_uuids_are_stable_per_run_and_shaped_like_uuids() {
        let a = request_uuid("req-1", "settings.delete.statement", 0);
        assert_eq!(a, request_uuid("req-1", "settings.delete.statement", 0));
        assert_ne!(a, request_uuid("req-1", "settings.delete.statement", 1));
        assert_ne!(a, request_uuid("req-2", "settings.delete.statement", 0));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "8");
    }
}
