//! Classification of HubSpot's answers.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, AuthHints};
use hush_contracts::connector::ConnectorError;
use serde::Deserialize;

/// HubSpot's error body (`{"status":"error","message":..,"correlationId":..,"category":..}`,
/// plus `policyName` on a 429).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HubSpotError {
    /// Human-readable message.
    pub message: Option<String>,
    /// Error category, e.g. `VALIDATION_ERROR`, `OBJECT_NOT_FOUND`.
    pub category: Option<String>,
    /// HubSpot's id for the failed call, for its support.
    pub correlation_id: Option<String>,
    /// Rate-limit policy hit on a 429: `TEN_SECONDLY_ROLLING`, `SECONDLY` or `DAILY`.
    pub policy_name: Option<String>,
}

/// How long to wait after a 429 that carries no `Retry-After`: the ten-second rolling window
/// (100 requests per 10 s for a private app), or an hour for the daily quota, which resets at
/// midnight in the portal's time zone.
pub fn default_wait(policy_name: Option<&str>) -> Duration {
    match policy_name {
        Some("DAILY") => Duration::from_secs(3600),
        _ => Duration::from_secs(10),
    }
}

/// What HubSpot's 401 and 403 point at.
const AUTH_HINTS: AuthHints = AuthHints {
    unauthorized: "HubSpot refused the private app token named by credentials.token",
    forbidden: "the private app needs the crm.objects.contacts.read and \
                crm.objects.contacts.write scopes",
};

/// Classifies a HubSpot answer: 2xx is `None`. Beyond the shared HTTP rules:
/// - 429 without `Retry-After` waits for the policy's window ([`default_wait`]) instead of 1 s;
/// - 401 and 403 are permanent with a hint about the token and its scopes;
/// - the detail is HubSpot's category, message and correlation id when the body is HubSpot's
///   error shape, else the body; every address in `redact` is replaced by `[email]` because
///   HubSpot echoes the emails it was given.
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    redact: &[&str],
) -> Option<ConnectorError> {
    let error: HubSpotError = serde_json::from_str(body).unwrap_or_default();
    let vendor_text = match &error.message {
        Some(message) => {
            let mut text = String::new();
            if let Some(category) = &error.category {
                text.push_str(category);
                text.push_str(": ");
            }
            text.push_str(message);
            if let Some(id) = &error.correlation_id {
                text.push_str(&format!(" (correlationId {id})"));
            }
            text
        }
        None => body.to_owned(),
    };
    let vendor_text = redact_emails(&vendor_text, redact);
    let classified = classify_http_status(status, retry_after, &vendor_text)?;
    Some(match (status, classified) {
        (429, ConnectorError::RetryAfter { after, detail }) => ConnectorError::RetryAfter {
            after: if retry_after.is_some() {
                after
            } else {
                default_wait(error.policy_name.as_deref())
            },
            detail,
        },
        (_, other) => AUTH_HINTS.apply(status, other),
    })
}

/// Replaces each address in `emails` by `[email]`, in any letter case and in the encoded forms
/// [`hush_contracts::redact`] knows (a contact path's `%40`, say).
pub fn redact_emails(text: &str, emails: &[&str]) -> String {
    hush_contracts::redact::redact(text, emails, "[email]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_honours_retry_after() {
        assert!(matches!(
            classify(429, Some("7"), "{}", &[]),
            Some(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(7)
        ));
    }

    #[test]
    fn a_429_without_retry_after_waits_for_the_policy_window() {
        let ten_secondly = r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"c0","policyName":"TEN_SECONDLY_ROLLING"}"#;
        assert!(matches!(
            classify(429, None, ten_secondly, &[]),
            Some(ConnectorError::RetryAfter { after, detail })
                if after == Duration::from_secs(10) && detail.contains("ten_secondly_rolling")
        ));
        let daily = r#"{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","correlationId":"c1","policyName":"DAILY"}"#;
        assert!(matches!(
            classify(429, None, daily, &[]),
            Some(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(3600)
        ));
    }

    #[test]
    fn validation_errors_are_permanent_with_hubspots_message_and_no_email() {
        let body = r#"{"status":"error","message":"Email address Jane@Example.com is invalid","correlationId":"abc-123","category":"VALIDATION_ERROR"}"#;
        match classify(400, None, body, &["jane@example.com"]) {
            Some(ConnectorError::Permanent(detail)) => {
                assert_eq!(
                    detail,
                    "HTTP 400: VALIDATION_ERROR: Email address [email] is invalid (correlationId abc-123)"
                );
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[test]
    fn auth_failures_point_at_the_token_and_scopes() {
        assert!(matches!(
            classify(401, None, r#"{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}"#, &[]),
            Some(ConnectorError::Permanent(d)) if d.contains("credentials.token") && d.contains("INVALID_AUTHENTICATION")
        ));
        assert!(matches!(
            classify(403, None, r#"{"status":"error","message":"This app hasn't been granted all required scopes","category":"MISSING_SCOPES"}"#, &[]),
            Some(ConnectorError::Permanent(d)) if d.contains("crm.objects.contacts.write")
        ));
    }

    #[test]
    fn server_errors_are_transient_and_success_is_none() {
        assert!(matches!(
            classify(502, None, "<html>bad gateway</html>", &[]),
            Some(ConnectorError::Transient(d)) if d.contains("bad gateway")
        ));
        assert_eq!(classify(204, None, "", &[]), None);
    }

    #[test]
    fn redaction_is_case_insensitive_and_total() {
        assert_eq!(
            redact_emails("a@x.io then A@X.IO then b@x.io", &["a@x.io", "b@x.io"]),
            "[email] then [email] then [email]"
        );
    }

    #[test]
    fn an_email_in_a_contact_path_is_redacted() {
        assert_eq!(
            redact_emails(
                "HTTP 404: /crm/objects/2026-09/contacts/Jane%2Bnews%40x.io not found",
                &["jane+news@x.io"]
            ),
            "HTTP 404: /crm/objects/2026-09/contacts/[email] not found"
        );
    }
}
