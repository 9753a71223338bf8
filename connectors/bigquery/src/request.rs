//! BigQuery's dialect of the statement templates and the body of `jobs.query`: the template's
//! named placeholders (`:email_sha256`, `:customer_id`, …; the scheme and the binding of a work
//! item's identifiers are in [`hush_connector_kit::sql::template`]) become BigQuery named query
//! parameters (`@email_sha256`) once, at start-up, and each work item's identifiers travel in
//! the request's `queryParameters` — never spliced into the SQL text, so no identifier can
//! change a statement.
//!
//! Every value is a `STRING` parameter; cast in the template for other column types
//! (`WHERE id = CAST(:customer_id AS INT64)`). Left alone: anything inside string and bytes
//! literals (`'…'`, `"…"`, triple-quoted, `r'…'` raw), backquoted names and comments (`#`, `--`,
//! `/* */`), and `@@` system variables. BigQuery's own parameter syntaxes (`?`, `@name`) are
//! refused: one scheme only. Each run of a statement is its own query job.

use hush_connector_kit::sql::template::{
    find_end, line_end, quoted_end, Dialect, Escapes, Execution, Placeholder, Template,
    TemplateError,
};
use serde_json::{json, Map, Value};

/// Standard SQL type every value is bound as.
pub const PARAMETER_TYPE: &str = "STRING";

/// Path of `jobs.query` for `project` (its `/{jobId}` is `jobs.getQueryResults`).
pub fn queries_path(project: &str) -> String {
    format!("/bigquery/v2/projects/{project}/queries")
}

/// BigQuery's standard SQL: named `@name` query parameters; string and bytes literals (`'…'`,
/// `"…"`, triple-quoted, `r'…'` raw), backquoted names and comments (`#`, `--`, `/* */`)
/// stepped over; `@@` system variables left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct BigQuery;

impl Dialect for BigQuery {
    fn skip(&self, chars: &[char], i: usize) -> Result<usize, TemplateError> {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let previous = i.checked_sub(1).map(|p| chars[p]);
        Ok(match c {
            '\'' | '"' => {
                // r'…' and rb'…' take no backslash escapes.
                let raw = previous.is_some_and(|p| p == 'r' || p == 'R')
                    || (previous.is_some_and(|p| p == 'b' || p == 'B')
                        && i.checked_sub(2)
                            .is_some_and(|p| chars[p] == 'r' || chars[p] == 'R'));
                let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                if triple {
                    find_end(chars, i + 3, &[c, c, c], !raw)
                        .ok_or(TemplateError::Unterminated("triple-quoted string"))?
                } else {
                    quoted_end(chars, i, c, backslash(!raw))
                        .ok_or(TemplateError::Unterminated("string literal"))?
                }
            }
            '`' => quoted_end(chars, i, '`', backslash(true))
                .ok_or(TemplateError::Unterminated("quoted name"))?,
            '#' => line_end(chars, i),
            '-' if next == Some('-') => line_end(chars, i),
            '/' if next == Some('*') => find_end(chars, i + 2, &['*', '/'], false)
                .ok_or(TemplateError::Unterminated("comment"))?,
            '?' => return Err(query_parameter("?".into())),
            '@' if next == Some('@') => i + 2,
            '@' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| is_name_char(**c))
                    .collect();
                return Err(query_parameter(format!("@{name}")));
            }
            _ => i + 1,
        })
    }

    fn opens_placeholder(&self, chars: &[char], at: usize) -> bool {
        !at.checked_sub(1).is_some_and(|p| is_name_char(chars[p]))
    }

    fn parameter(&self, placeholder: Placeholder, _index: usize) -> String {
        format!("@{}", placeholder.name())
    }
}

/// Escapes of a BigQuery quoted token: backslashes where `backslash`, never a doubled quote.
fn backslash(backslash: bool) -> Escapes {
    Escapes {
        doubled: false,
        backslash,
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn query_parameter(written: String) -> TemplateError {
    TemplateError::VendorParameter {
        syntax: "BigQuery's query parameter",
        written,
    }
}

/// The `queryParameters` of one run of `template`: one named `STRING` parameter per
/// placeholder, `null` for SQL `NULL`.
pub fn query_parameters(template: &Template, execution: &Execution) -> Value {
    Value::Array(
        template
            .params
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
        query_parameters(template, execution),
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

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::sql::template::Unbindable;
    use hush_connector_kit::testing::{hashed, work, WorkExt};
    use hush_contracts::events::{IdentifierType, RequestKind};

    fn parsed(text: &str) -> Template {
        Template::parse(text, &BigQuery).unwrap()
    }

    #[test]
    fn placeholders_become_named_query_parameters() {
        hush_connector_kit::testing::assert_dialect_writes_each_use(
            &BigQuery,
            ["@request_id", "@email_sha256", "@email", "@email_sha256"],
        );
    }

    #[test]
    fn literals_quoted_names_comments_and_system_variables_are_left_alone() {
        let text = "DELETE FROM `proj.ds.t:x` WHERE id = CAST(:customer_id AS INT64) \
                    AND note <> 'a :email b' AND tag <> \"it\\\"s :phone\" AND r <> r'\\d :maid' \
                    AND body <> '''x ' :maid ? @p''' AND b <> b\"\"\":cookie_id\"\"\" \
                    AND @@session.time_zone = 'UTC' # :cookie_id ?\n -- :device_id\n /* :device_id @x */";
        hush_connector_kit::testing::assert_dialect_binds_only_the_placeholder(
            &BigQuery,
            text,
            "CAST(:customer_id",
            "CAST(@customer_id",
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        hush_connector_kit::testing::assert_dialect_refuses_bad_templates(&BigQuery);
        let refused = |text: &str| Template::parse(text, &BigQuery).unwrap_err();
        assert_eq!(
            refused("DELETE FROM t WHERE e = ?"),
            query_parameter("?".into())
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = @email").to_string(),
            "uses BigQuery's query parameter `@email`; write a named placeholder such as \
             `:email_sha256` instead"
        );
        assert_eq!(
            refused("DELETE FROM t WHERE e = '''x"),
            TemplateError::Unterminated("triple-quoted string")
        );
        assert_eq!(
            refused("DELETE FROM `t WHERE e = 1"),
            TemplateError::Unterminated("quoted name")
        );
    }

    #[test]
    fn a_run_per_identifier_value_with_null_for_a_shorter_type() {
        let (template, item, runs) =
            hush_connector_kit::testing::assert_dialect_runs_once_per_value(&BigQuery);
        assert_eq!(
            query_parameters(&template, &runs[1]),
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
}
