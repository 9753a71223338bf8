//! Reading PostgreSQL's answer: one function classifies a failed call as retryable or
//! permanent, with PostgreSQL's own text (SQLSTATE, message, hint) and never a bound value.

use hush_connector_kit::sql::jobs::redact;
use hush_contracts::connector::ConnectorError;

/// Classifies a failed call. `bound` are the values bound in it; any of them PostgreSQL
/// repeats in its message is replaced by [`hush_connector_kit::sql::jobs::REDACTED`].
///
/// - A server error is transient for the SQLSTATEs a retry can fix ([`is_transient_sqlstate`]:
///   lost connections, serialization failures and deadlocks, lack of resources, a cancelled
///   statement such as `statement_timeout`, a shut-down server, a lock not available) and
///   permanent otherwise (syntax, undefined column or table, missing privilege, failed login,
///   constraint violation, bad data), with `SQLSTATE <code>: <message>` and the hint.
/// - A closed connection or a network failure is transient.
/// - A certificate the client does not trust, a failed authentication exchange, and a value
///   that cannot be sent are permanent.
pub fn classify(error: &tokio_postgres::Error, bound: &[&str]) -> ConnectorError {
    if let Some(db) = error.as_db_error() {
        let mut message = db.message().to_owned();
        if let Some(hint) = db.hint() {
            message.push_str(&format!(" (hint: {hint})"));
        }
        let code = db.code().code();
        let text = format!("SQLSTATE {code}: {}", redact(&message, bound));
        return if is_transient_sqlstate(code) {
            ConnectorError::Transient(text)
        } else {
            ConnectorError::Permanent(text)
        };
    }
    if error.is_closed() {
        return ConnectorError::Transient("the database closed the connection".to_owned());
    }
    let source = std::error::Error::source(error);
    let text = match source {
        Some(source) => redact(&format!("{error}: {source}"), bound),
        None => error.to_string(),
    };
    match source.and_then(|s| s.downcast_ref::<std::io::Error>()) {
        Some(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            ConnectorError::Permanent(text)
        }
        Some(_) => ConnectorError::Transient(text),
        None => ConnectorError::Permanent(text),
    }
}

/// Whether retrying may clear an error of this SQLSTATE: classes 08 (connection exception),
/// 40 (transaction rollback), 53 (insufficient resources), 57 (operator intervention, but not
/// 57P04 database dropped), 58 (system error), XX (internal error), and 55P03 (lock not
/// available).
pub fn is_transient_sqlstate(code: &str) -> bool {
    if code == "55P03" {
        return true;
    }
    if code == "57P04" {
        return false;
    }
    matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58" | "XX"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_a_retry_can_fix_are_transient() {
        for code in [
            "08006", "40001", "40P01", "53300", "57014", "57P01", "58030", "XX000", "55P03",
        ] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in [
            "42703", "42P01", "42501", "28P01", "23503", "22P02", "57P04", "0A000",
        ] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn bound_values_are_redacted() {
        assert_eq!(
            redact(
                "invalid input syntax for type bigint: \"jane@example.com\"",
                &["jane@example.com", ""]
            ),
            "invalid input syntax for type bigint: \"<identifier>\""
        );
    }
}
