//! Reading the SQL API's answers: one function ([`read`]) classifies an answer as a finished
//! statement (200, a `ResultSet`), a running one (202, a `QueryStatus` with its handle), a
//! failed one (422 `QueryFailureStatus`, or 408 when Snowflake cancelled it at its `timeout`),
//! or a call that did not go through (429 → retry after, 5xx → retry, other 4xx → permanent
//! with Snowflake's `code` and `message`). A bound value Snowflake repeats in a message
//! (`Numeric value '…' is not recognized`) is replaced by `<identifier>`.

use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_connector_kit::sql::jobs::{redact, QueryResult, RunState};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Whether a Snowflake column type is an integer (what a check query must return).
pub fn is_integer_type(name: &str) -> bool {
    name.eq_ignore_ascii_case("fixed")
}

/// Classifies an answer of `POST /api/v2/statements` or `GET /api/v2/statements/{handle}`.
/// `Err` means the call itself did not go through; `bound` are the values bound in it.
pub fn read(answer: &VendorAnswer, bound: &[&str]) -> Result<RunState, ConnectorError> {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    let handle = body["statementHandle"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match answer.status {
        200 => result_set(&body).map(RunState::Done),
        202 if !handle.is_empty() => Ok(RunState::Running(handle)),
        202 => Err(ConnectorError::Transient(
            "Snowflake answered 202 without a statementHandle".into(),
        )),
        422 => {
            let sql_state = body["sqlState"].as_str().unwrap_or_default();
            let text = format!(
                "Snowflake statement {handle} failed: SQLSTATE {sql_state} (code {}): {}",
                body["code"].as_str().unwrap_or("?"),
                redact(&message(&body, &answer.body), bound)
            );
            Ok(RunState::Failed(if is_transient_sqlstate(sql_state) {
                ConnectorError::Transient(text)
            } else {
                ConnectorError::Permanent(text)
            }))
        }
        408 => Ok(RunState::Failed(ConnectorError::Transient(format!(
            "Snowflake cancelled statement {handle} at its timeout (settings.statement_timeout_s): {}",
            redact(&message(&body, &answer.body), bound)
        )))),
        status => {
            let text = format!("Snowflake: {}", redact(&describe(&body, &answer.body), bound));
            Err(classify_http_status(status, answer.retry_after.as_deref(), &text)
                .unwrap_or_else(|| {
                    ConnectorError::Transient(format!("unexpected HTTP {status}: {text}"))
                }))
        }
    }
}

/// Whether a failed statement may succeed when run again: SQLSTATE classes 08 (connection),
/// 40 (transaction rollback, deadlock), 53 (insufficient resources), 57 (operator
/// intervention), 58 (system error) and XX (internal error).
pub fn is_transient_sqlstate(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58" | "XX"))
}

fn message(body: &Value, raw: &str) -> String {
    body["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| raw.chars().take(500).collect())
}

/// `code: message` of an error body, or the body itself.
fn describe(body: &Value, raw: &str) -> String {
    match (body["code"].as_str(), body["message"].as_str()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message.to_owned(),
        _ => raw.chars().take(500).collect(),
    }
}

fn result_set(body: &Value) -> Result<QueryResult, ConnectorError> {
    let handle = body["statementHandle"]
        .as_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ConnectorError::Transient(
                "Snowflake answered a result without its statementHandle".into(),
            )
        })?
        .to_owned();
    let columns = QueryResult::columns_of(&body["resultSetMetaData"]["rowType"]);
    let rows: Vec<Vec<Option<String>>> = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .collect();
    let stats = &body["stats"];
    let rows_affected = if stats.is_object() {
        Some(
            ["numRowsInserted", "numRowsUpdated", "numRowsDeleted"]
                .iter()
                .filter_map(|key| stats[*key].as_u64())
                .sum(),
        )
    } else {
        // A DML result without stats: its first column is "number of rows …".
        columns
            .first()
            .filter(|(name, _)| name.starts_with("number of rows"))
            .and_then(|_| rows.first()?.first()?.as_deref()?.parse().ok())
    };
    Ok(QueryResult {
        handle,
        rows_affected,
        columns,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{json_answer, vendor_answer};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn a_finished_dml_statement_reports_the_rows_it_changed() {
        let done = read(
            &json_answer(
                200,
                json!({
                    "code": "090001", "sqlState": "00000", "message": "Statement executed successfully.",
                    "statementHandle": "01b2-0001",
                    "resultSetMetaData": {"numRows": 1, "format": "jsonv2",
                        "rowType": [{"name": "number of rows updated", "type": "fixed"},
                                    {"name": "number of multi-joined rows updated", "type": "fixed"}]},
                    "data": [["2", "0"]],
                    "stats": {"numRowsUpdated": 2, "numDmlDuplicates": 0}
                }),
            ),
            &[],
        )
        .unwrap();
        let RunState::Done(result) = done else {
            panic!("{done:?}")
        };
        assert_eq!(result.handle, "01b2-0001");
        assert_eq!(result.rows_affected, Some(2));
    }

    #[test]
    fn without_stats_the_row_count_column_is_read() {
        let RunState::Done(result) = read(
            &json_answer(
                200,
                json!({"statementHandle": "h",
                       "resultSetMetaData": {"rowType": [{"name": "number of rows deleted", "type": "fixed"}]},
                       "data": [["3"]]}),
            ),
            &[],
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(result.rows_affected, Some(3));
    }

    #[test]
    fn a_check_must_return_one_count() {
        let result = |rows: Value, kind: &str| QueryResult {
            handle: "h".into(),
            rows_affected: None,
            columns: vec![("COUNT(*)".into(), kind.into())],
            rows: serde_json::from_value(rows).unwrap(),
        };
        assert_eq!(
            result(json!([["0"]]), "fixed").count(is_integer_type),
            Ok(0)
        );
        assert_eq!(
            result(json!([[null]]), "fixed").count(is_integer_type),
            Ok(0)
        );
        assert_eq!(
            result(json!([["4"]]), "FIXED").count(is_integer_type),
            Ok(4)
        );
        assert_eq!(
            result(json!([["x"]]), "text").count(is_integer_type),
            Err("it returns one text column".into())
        );
        assert_eq!(
            result(json!([["1"], ["2"]]), "fixed").count(is_integer_type),
            Err("it returns 2 rows".into())
        );
    }

    #[test]
    fn a_running_statement_carries_its_handle() {
        assert_eq!(
            read(
                &json_answer(
                    202,
                    json!({"code": "333334", "message": "Asynchronous execution in progress.",
                                    "statementHandle": "01b2-0002"})
                ),
                &[]
            ),
            Ok(RunState::Running("01b2-0002".into()))
        );
    }

    #[test]
    fn a_failed_statement_is_permanent_with_snowflakes_text_and_no_bound_value() {
        let failed = read(
            &json_answer(
                422,
                json!({"code": "100038", "sqlState": "22018", "statementHandle": "h1",
                       "message": "Numeric value 'jane@example.com' is not recognized"}),
            ),
            &["jane@example.com"],
        );
        assert_eq!(
            failed,
            Ok(RunState::Failed(ConnectorError::Permanent(
                "Snowflake statement h1 failed: SQLSTATE 22018 (code 100038): Numeric value \
                 '<identifier>' is not recognized"
                    .into()
            )))
        );
        let deadlock = read(
            &json_answer(
                422,
                json!({"code": "000625", "sqlState": "40001", "statementHandle": "h2", "message": "x"}),
            ),
            &[],
        );
        assert!(matches!(
            deadlock,
            Ok(RunState::Failed(ConnectorError::Transient(_)))
        ));
        let cancelled = read(
            &json_answer(408, json!({"statementHandle": "h3", "message": "timeout"})),
            &[],
        );
        assert!(matches!(
            cancelled,
            Ok(RunState::Failed(ConnectorError::Transient(_)))
        ));
    }

    #[test]
    fn calls_that_did_not_go_through_are_classified() {
        let limited = vendor_answer(429, Some("9"), r#"{"message": "Too many requests"}"#);
        assert!(matches!(
            read(&limited, &[]),
            Err(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(9)
        ));
        assert_eq!(
            read(
                &json_answer(
                    401,
                    json!({"code": "390144", "message": "JWT token is invalid."})
                ),
                &[]
            ),
            Err(ConnectorError::Permanent(
                "HTTP 401: Snowflake: 390144: JWT token is invalid.".into()
            ))
        );
        assert!(matches!(
            read(&json_answer(503, json!({})), &[]),
            Err(ConnectorError::Transient(_))
        ));
    }
}
