//! Classifies an answer of TikTok's API for Business. TikTok answers most outcomes with HTTP 200
//! and a `code` in the body (`0` is success), so both the status and the body code are read.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde::Deserialize;

/// TikTok's envelope, on success and on failure alike.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// `0` on success, otherwise TikTok's return code.
    pub code: i64,
    /// TikTok's text (`OK` on success).
    #[serde(default)]
    pub message: String,
    /// TikTok's log id of the call, kept as evidence.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Return codes meaning "too many requests" (TikTok's appendix names 40100; 42900 is accepted
/// too, as some TikTok services answer it).
const RATE_LIMITED: [i64; 2] = [40100, 42900];
/// Return codes about the access token (missing, wrong, revoked or expired).
const TOKEN_REFUSED: [i64; 4] = [40102, 40104, 40105, 40106];
/// Return code for a token without permission on the advertiser or audience.
const NO_PERMISSION: i64 = 40001;

/// Success (TikTok's envelope), or why the call did not complete. `default_wait` applies to a
/// rate limit that names no delay.
pub fn classify(answer: &VendorAnswer, default_wait: Duration) -> Result<Envelope, ConnectorError> {
    let wait = || answer.wait_or(default_wait);
    let envelope = serde_json::from_str::<Envelope>(&answer.body).ok();
    if answer.status == 429 {
        let text = envelope.map_or_else(|| answer.body.clone(), |e| describe(&e));
        return Err(ConnectorError::RetryAfter {
            after: wait(),
            detail: format!("HTTP 429: {text}"),
        });
    }
    if !(200..300).contains(&answer.status) {
        let text = envelope.map_or_else(|| answer.body.clone(), |e| describe(&e));
        return Err(
            classify_http_status(answer.status, None, &text).unwrap_or_else(|| {
                ConnectorError::Transient(format!("HTTP {} from TikTok", answer.status))
            }),
        );
    }
    let Some(envelope) = envelope else {
        return Err(ConnectorError::Transient(format!(
            "HTTP {} from TikTok with a body that is not its JSON envelope; the call is safe to \
             repeat",
            answer.status
        )));
    };
    let text = describe(&envelope);
    match envelope.code {
        0 => Ok(envelope),
        code if RATE_LIMITED.contains(&code) => Err(ConnectorError::RetryAfter {
            after: wait(),
            detail: text,
        }),
        code if TOKEN_REFUSED.contains(&code) => Err(ConnectorError::Permanent(format!(
            "TikTok refused the access token; issue a new long-term token for the advertiser \
             and update the variable credentials.access_token names ({text})"
        ))),
        NO_PERMISSION => Err(ConnectorError::Permanent(format!(
            "the access token has no permission on settings.advertiser_id or one of \
             settings.audience_ids; authorise the app for the ad account with the Audience \
             Management scope ({text})"
        ))),
        code if code >= 50000 => Err(ConnectorError::Transient(text)),
        _ => Err(ConnectorError::Permanent(text)),
    }
}

fn describe(envelope: &Envelope) -> String {
    let mut text = format!("TikTok code {}: {}", envelope.code, envelope.message);
    if let Some(id) = &envelope.request_id {
        text.push_str(&format!(" (request_id {id})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer as answer;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn code_zero_is_success_with_the_request_id() {
        let ok = classify(
            &answer(
                200,
                None,
                r#"{"code":0,"message":"OK","request_id":"2026120100","data":{}}"#,
            ),
            MINUTE,
        )
        .unwrap();
        assert_eq!(ok.request_id.as_deref(), Some("2026120100"));
    }

    #[test]
    fn a_rate_limit_in_the_body_waits_the_default_and_an_http_429_its_retry_after() {
        let body = r#"{"code":40100,"message":"Too many requests","request_id":"r"}"#;
        assert_eq!(
            classify(&answer(200, None, body), MINUTE),
            Err(ConnectorError::RetryAfter {
                after: MINUTE,
                detail: "TikTok code 40100: Too many requests (request_id r)".into()
            })
        );
        assert!(matches!(
            classify(&answer(429, Some("7"), "slow down"), MINUTE),
            Err(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(7)
        ));
    }

    #[test]
    fn a_refused_token_names_the_credential() {
        let body = r#"{"code":40105,"message":"Access token is incorrect or has been revoked."}"#;
        assert!(matches!(
            classify(&answer(200, None, body), MINUTE),
            Err(ConnectorError::Permanent(t)) if t.contains("credentials.access_token") && t.contains("revoked")
        ));
    }

    #[test]
    fn system_errors_are_transient_and_parameter_errors_permanent() {
        let system = r#"{"code":50000,"message":"System error"}"#;
        assert!(matches!(
            classify(&answer(200, None, system), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
        let param = r#"{"code":40002,"message":"audience_ids: audience 9 does not exist"}"#;
        assert!(matches!(
            classify(&answer(200, None, param), MINUTE),
            Err(ConnectorError::Permanent(t)) if t.contains("audience 9 does not exist")
        ));
        assert!(matches!(
            classify(&answer(200, None, "<html>"), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify(&answer(503, None, "down"), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
    }
}
