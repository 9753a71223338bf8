//! Classification of a recipient's answer to a notice.

use hush_connector_kit::http::classify_http_status;
use hush_contracts::connector::ConnectorError;

/// Classifies the recipient's answer: 2xx is `None` (delivered). On top of the shared HTTP rules
/// (429 honours `Retry-After`, 408/5xx transient, other 4xx permanent):
/// - a redirect (3xx) is permanent: redirects are not followed, because a signed notice must
///   reach the configured address and nowhere else; the detail names the new location so the
///   operator can update `base_url`/`settings.path`;
/// - 401 and 403 are permanent with a hint that the recipient refused the signature, which
///   means the two sides hold different signing secrets.
///
/// `body` is the recipient's text, kept in the detail.
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    location: Option<&str>,
    body: &str,
) -> Option<ConnectorError> {
    match status {
        300..=399 => Some(ConnectorError::Permanent(format!(
            "HTTP {status}: the recipient redirects notices to {}; redirects are not followed, \
             update base_url or settings.path",
            location.unwrap_or("an unnamed location")
        ))),
        401 | 403 => classify_http_status(status, retry_after, body).map(|error| match error {
            ConnectorError::Permanent(detail) => ConnectorError::Permanent(format!(
                "{detail} (the recipient refused the signed notice: check that \
                 credentials.signing_secret matches the secret the recipient holds)"
            )),
            other => other,
        }),
        _ => classify_http_status(status, retry_after, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn success_is_none() {
        assert_eq!(classify(200, None, None, ""), None);
        assert_eq!(classify(202, None, None, "queued"), None);
    }

    #[test]
    fn redirects_are_permanent_and_name_the_location() {
        match classify(308, None, Some("https://new.example.com/hook"), "") {
            Some(ConnectorError::Permanent(detail)) => {
                assert!(detail.contains("https://new.example.com/hook"), "{detail}")
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[test]
    fn refused_signatures_point_at_the_secret() {
        match classify(401, None, None, "bad signature") {
            Some(ConnectorError::Permanent(detail)) => {
                assert!(detail.contains("bad signature"), "{detail}");
                assert!(detail.contains("credentials.signing_secret"), "{detail}");
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[test]
    fn shared_rules_apply_otherwise() {
        assert_eq!(
            classify(429, Some("12"), None, "slow"),
            Some(ConnectorError::RetryAfter {
                after: Duration::from_secs(12),
                detail: "HTTP 429: slow".into()
            })
        );
        assert!(matches!(
            classify(502, None, None, ""),
            Some(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify(422, None, None, "bad"),
            Some(ConnectorError::Permanent(d)) if d.contains("bad")
        ));
    }
}
