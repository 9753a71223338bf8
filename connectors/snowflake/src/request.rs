//! Snowflake's dialect of the statement templates and the SQL API's request body: the
//! template's named placeholders (`:email_sha256`, `:customer_id`, …; the scheme and the binding
//! of a work item's identifiers are in [`hush_connector_kit::sql::template`]) become `?` bind
//! variables once, at start-up, and each work item's identifiers travel in the request's
//! `bindings` object — never spliced into the SQL text, so no identifier can change a statement.
//!
//! Every value is bound as `TEXT`; cast in the template for other column types
//! (`WHERE id = :customer_id::NUMBER`). Left alone: a `::` cast, a colon right after a name,
//! `]`, `)` or `"` (Snowflake's path into a VARIANT, `payload:email`), and anything inside string
//! literals (`'…'` with backslash escapes, `$$…$$`), quoted identifiers and comments (`--`, `//`,
//! `/* */`). Snowflake's own bind syntaxes (`?`, `:1`) are refused: one scheme only. Each run
//! of a statement is its own SQL API request.

use hush_connector_kit::sql::template::{
    find_end, line_end, quoted_end, Dialect, Escapes, Execution, Placeholder, Template,
    TemplateError,
};
use serde_json::{json, Map, Value};

/// Path of the SQL API's statements resource.
pub const STATEMENTS_PATH: &str = "/api/v2/statements";
/// Snowflake type every value is bound as.
pub const BIND_TYPE: &str = "TEXT";

/// Snowflake's SQL: `?` bind variables; string literals (`'…'` with backslash escapes,
/// `$$…$$`), quoted identifiers and comments (`--`, `//`, `/* */`) stepped over; `::` casts and
/// paths into a VARIANT (`payload:email`) left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snowflake;

impl Dialect for Snowflake {
    fn skip(&self, chars: &[char], i: usize) -> Result<usize, TemplateError> {
        let next = chars.get(i + 1).copied();
        let escapes = |backslash| Escapes {
            doubled: true,
            backslash,
        };
        Ok(match chars[i] {
            '\'' => quoted_end(chars, i, '\'', escapes(true))
                .ok_or(TemplateError::Unterminated("string literal"))?,
            '"' => quoted_end(chars, i, '"', escapes(false))
                .ok_or(TemplateError::Unterminated("quoted identifier"))?,
            '$' if next == Some('$') => find_end(chars, i + 2, &['$', '$'], false)
                .ok_or(TemplateError::Unterminated("$$ string"))?,
            '-' if next == Some('-') => line_end(chars, i),
            '/' if next == Some('/') => line_end(chars, i),
            '/' if next == Some('*') => find_end(chars, i + 2, &['*', '/'], false)
                .ok_or(TemplateError::Unterminated("comment"))?,
            '?' => return Err(bind_variable("?".into())),
            ':' if next == Some(':') => i + 2,
            ':' if after_a_path(chars, i) => i + 1,
            ':' if next.is_some_and(|n| n.is_ascii_digit()) => {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                return Err(bind_variable(format!(":{digits}")));
            }
            _ => i + 1,
        })
    }

    fn opens_placeholder(&self, chars: &[char], at: usize) -> bool {
        !after_a_path(chars, at)
    }

    fn parameter(&self, _placeholder: Placeholder, _index: usize) -> String {
        "?".into()
    }
}

/// Whether the `:` at `at` follows a name, `]`, `)` or `"`: a path into a VARIANT.
fn after_a_path(chars: &[char], at: usize) -> bool {
    at.checked_sub(1)
        .is_some_and(|p| is_name_char(chars[p]) || matches!(chars[p], ']' | ')' | '"'))
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn bind_variable(written: String) -> TemplateError {
    TemplateError::VendorParameter {
        syntax: "Snowflake's bind variable",
        written,
    }
}

/// The `bindings` object of one run of `template`: `{"1": {"type": "TEXT", "value": …}, …}`,
/// one entry per `?` in order (a placeholder used twice is bound twice).
pub fn bindings(template: &Template, execution: &Execution) -> Value {
    let mut bindings = Map::new();
    for (position, slot) in template.slots.iter().enumerate() {
        let value = execution.get(*slot).cloned().flatten();
        bindings.insert(
            (position + 1).to_string(),
            json!({ "type": BIND_TYPE, "value": value }),
        );
    }
    Value::Object(bindings)
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
        body.insert("bindings".into(), bindings(template, execution));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Template {
        Template::parse(text, &Snowflake).unwrap()
    }

    #[test]
    fn each_placeholder_becomes_a_question_mark_bound_per_use() {
        let template =
            hush_connector_kit::testing::assert_dialect_writes_each_use(&Snowflake, ["?"; 4]);
        assert_eq!(template.slots, vec![0, 1, 2, 1]);
    }

    #[test]
    fn casts_paths_literals_quoted_names_and_comments_are_left_alone() {
        let text = "DELETE FROM \"t:x\" WHERE id = :customer_id::NUMBER \
                    AND payload:email::STRING <> 'a :email b' AND tag <> 'it\\'s :phone' \
                    AND arr[0]:maid IS NULL AND f(x):cookie_id IS NULL AND body <> $$ :maid ? $$ \
                    -- :cookie_id ?\n // :device_id\n /* :device_id ? */ AND \"Col\":k = 1";
        hush_connector_kit::testing::assert_dialect_binds_only_the_placeholder(
            &Snowflake,
            text,
            ":customer_id::NUMBER",
            "?::NUMBER",
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        hush_connector_kit::testing::assert_dialect_refuses_bad_templates(&Snowflake);
        let refused = |text: &str| Template::parse(text, &Snowflake).unwrap_err();
        assert_eq!(
            refused("DELETE FROM t WHERE e = ?"),
            bind_variable("?".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = :1").to_string(),
            "uses Snowflake's bind variable `:1`; write a named placeholder such as \
             `:email_sha256` instead"
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = 'x"),
            TemplateError::Unterminated("string literal")
        );
        assert_eq!(
            refused("DELETE FROM t /* x"),
            TemplateError::Unterminated("comment")
        );
    }

    #[test]
    fn a_run_per_identifier_value_with_null_for_a_shorter_type() {
        let (template, item, runs) =
            hush_connector_kit::testing::assert_dialect_runs_once_per_value(&Snowflake);
        assert_eq!(
            bindings(&template, &runs[1]),
            json!({
                "1": {"type": "TEXT", "value": item.identifiers[1].sha256},
                "2": {"type": "TEXT", "value": null},
                "3": {"type": "TEXT", "value": "req-1"},
            })
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
}
