//! Classifies an answer of The Trade Desk's `POST /data/deletion-optout/advertiser`: accepted
//! (with the lines TTD refused, if any), retry after a wait, retry, or a permanent refusal with
//! TTD's own text.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde::Deserialize;
use serde_json::Value;

/// One id TTD refused (`AdvertiserDsrFailedLine`); TTD may leave out any field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FailedLine {
    /// `InvalidUserId` or `Unknown`.
    pub error_code: Option<String>,
    /// TTD's text.
    pub message: Option<String>,
    /// The refused entry's position in `Items`, 1-based (TTD sends it as a string).
    pub item_number: Option<Value>,
}

impl FailedLine {
    /// The 0-based index in `Items` this line refers to, when it names one.
    pub fn item_index(&self) -> Option<usize> {
        let number = match self.item_number.as_ref()? {
            Value::String(text) => text.trim().parse::<usize>().ok()?,
            Value::Number(number) => usize::try_from(number.as_u64()?).ok()?,
            _ => return None,
        };
        number.checked_sub(1)
    }

    /// TTD's code and text, e.g. `InvalidUserId: …`.
    pub fn describe(&self) -> String {
        format!(
            "{}: {}",
            self.error_code.as_deref().unwrap_or("Unknown"),
            self.message.as_deref().unwrap_or("no message")
        )
    }
}

/// TTD's answer (`AdvertiserDsrResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DsrResponse {
    /// Ids TTD refused; `null` or empty when it took them all.
    #[serde(default)]
    pub failed_lines: Option<Vec<FailedLine>>,
}

/// The call's outcome: accepted (with refused lines) or why not. `default_wait` applies to a 429
/// without `Retry-After`.
pub fn classify(
    answer: &VendorAnswer,
    default_wait: Duration,
) -> Result<DsrResponse, ConnectorError> {
    let status = answer.status;
    let text = || match serde_json::from_str::<DsrResponse>(&answer.body) {
        Ok(DsrResponse {
            failed_lines: Some(lines),
        }) if !lines.is_empty() => lines
            .iter()
            .map(FailedLine::describe)
            .collect::<Vec<_>>()
            .join("; "),
        _ => answer.body.trim().to_owned(),
    };
    match status {
        200..=299 if answer.body.trim().is_empty() => Ok(DsrResponse::default()),
        200..=299 => serde_json::from_str(&answer.body).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {status} from The Trade Desk with an unreadable body ({e}); the call is \
                 safe to repeat"
            ))
        }),
        429 => Err(ConnectorError::RetryAfter {
            after: answer.wait_or(default_wait),
            detail: format!("HTTP 429: {}", text()),
        }),
        401 | 403 => Err(ConnectorError::Permanent(format!(
            "HTTP {status}: The Trade Desk will not take data subject requests for \
             settings.advertiser_id with this token; check the advertiser id and the token \
             credentials.auth_token names ({})",
            text()
        ))),
        413 => Err(ConnectorError::Permanent(format!(
            "HTTP 413: the call was larger than The Trade Desk accepts; lower the recipient's \
             batch_size ({})",
            text()
        ))),
        _ => Err(
            classify_http_status(status, None, &text()).unwrap_or_else(|| {
                ConnectorError::Transient(format!("HTTP {status} from The Trade Desk"))
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer as answer;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_accepted_call_carries_its_failed_lines() {
        let ok = classify(&answer(200, None, r#"{"FailedLines":null}"#), MINUTE).unwrap();
        assert_eq!(ok.failed_lines, None);
        let partial = classify(
            &answer(
                200,
                None,
                r#"{"FailedLines":[{"ErrorCode":"InvalidUserId","Message":"bad id","ItemNumber":"2"}]}"#,
            ),
            MINUTE,
        )
        .unwrap();
        let lines = partial.failed_lines.unwrap();
        assert_eq!(lines[0].item_index(), Some(1));
        assert_eq!(lines[0].describe(), "InvalidUserId: bad id");
        assert_eq!(
            classify(&answer(200, None, ""), MINUTE),
            Ok(DsrResponse::default())
        );
    }

    #[test]
    fn a_429_waits_for_retry_after_or_the_default() {
        assert!(matches!(
            classify(&answer(429, Some("7"), ""), MINUTE),
            Err(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(&answer(429, None, r#"{"FailedLines":[]}"#), MINUTE),
            Err(ConnectorError::RetryAfter { after, .. }) if after == MINUTE
        ));
    }

    #[test]
    fn refusals_say_what_to_fix() {
        assert!(matches!(
            classify(&answer(403, None, "\"Cannot process data subject request\""), MINUTE),
            Err(ConnectorError::Permanent(t)) if t.contains("settings.advertiser_id") && t.contains("Cannot process")
        ));
        assert!(matches!(
            classify(&answer(413, None, "too large"), MINUTE),
            Err(ConnectorError::Permanent(t)) if t.contains("batch_size")
        ));
        assert!(matches!(
            classify(
                &answer(400, None, r#"{"FailedLines":[{"ErrorCode":"Unknown","Message":"advertiser not configured"}]}"#),
                MINUTE
            ),
            Err(ConnectorError::Permanent(t)) if t.contains("Unknown: advertiser not configured")
        ));
        assert!(matches!(
            classify(&answer(503, None, "dropped"), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
    }
}
