//! What stands in for read-back at a recipient without an API: its own signed callback.
//!
//! A webhook recipient cannot be read back. When the business configures `callback_url`, the
//! recipient posts a [`RecipientCallback`] to the auditor, signed exactly like the notice (same
//! secret, same `X-Hush-Timestamp` / `X-Hush-Signature` headers). The auditor checks it with
//! [`verify_callback`] and turns it into the recipient's confirmation with
//! [`RecipientCallback::completion`].

use std::time::Duration;

use crate::connector::{Completion, Evidence};
use crate::events::{ConfirmationAction, RequestKind, VerificationStatus};
use crate::identifiers::sha256_hex;
use serde::{Deserialize, Serialize};

use crate::signature::{verify_signature, SignatureError};

/// The connector kind whose recipients confirm by callback: the webhook.
pub const WEBHOOK_KIND: &str = "webhook";

/// The recipient's answer to a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientCallback {
    /// The `request_id` of the notice being answered.
    pub request_id: String,
    /// The `connector_id` of the notice, echoed back (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// What the recipient did.
    pub status: CallbackStatus,
    /// Statutory basis (e.g. `Cal. Civ. Code § 1798.105(d)(8)`); required with
    /// `RETAINED_UNDER_EXCEPTION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_basis: Option<String>,
    /// Free text from the recipient; kept only as a digest in evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the recipient reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallbackStatus {
    /// It complied (and forwarded the request where the rule requires).
    Completed,
    /// It holds nothing about the consumer.
    NotFound,
    /// It keeps some data under a statutory deletion exception.
    RetainedUnderException,
}

impl CallbackStatus {
    /// The wire symbol, e.g. `COMPLETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Completed => "COMPLETED",
            CallbackStatus::NotFound => "NOT_FOUND",
            CallbackStatus::RetainedUnderException => "RETAINED_UNDER_EXCEPTION",
        }
    }
}

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The signature or its timestamp did not check out.
    #[error("callback signature refused: {0}")]
    Signature(#[from] SignatureError),
    /// The body is not a callback.
    #[error("callback body is not valid: {0}")]
    Malformed(String),
}

/// Parses a callback body and checks what serde cannot: a non-empty `request_id`, and an
/// `exception_basis` whenever the status is `RETAINED_UNDER_EXCEPTION`.
pub fn parse_callback(body: &[u8]) -> Result<RecipientCallback, CallbackError> {
    let callback: RecipientCallback =
        serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    if callback.request_id.trim().is_empty() {
        return Err(CallbackError::Malformed("request_id is empty".into()));
    }
    let has_basis = callback
        .exception_basis
        .as_deref()
        .is_some_and(|basis| !basis.trim().is_empty());
    if callback.status == CallbackStatus::RetainedUnderException && !has_basis {
        return Err(CallbackError::Malformed(
            "RETAINED_UNDER_EXCEPTION needs exception_basis (the § 1798.105(d) exception relied on)"
                .into(),
        ));
    }
    Ok(callback)
}

/// Checks a received callback's signature (raw `X-Hush-Timestamp` and `X-Hush-Signature` values,
/// `now` in unix seconds) and then parses it. Nothing in the body is trusted before the
/// signature is.
pub fn verify_callback(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<RecipientCallback, CallbackError> {
    verify_signature(secret, timestamp, body, signature, now, tolerance)?;
    parse_callback(body)
}

impl RecipientCallback {
    /// The recipient's outcome for a request of `kind`: `COMPLETED` is `DELETED` for a deletion,
    /// `SUPPRESSED` for an opt-out or limit and `NOTIFIED` for an opt-in; `NOT_FOUND` and
    /// `RETAINED_UNDER_EXCEPTION` map to themselves. Verification is `VERIFIED`: the recipient
    /// confirmed under its signature, which is the most a recipient without an API can give.
    /// Evidence holds the status and a digest of `detail`, never the text.
    pub fn completion(&self, kind: RequestKind) -> Completion {
        let action = match (self.status, kind) {
            (CallbackStatus::Completed, RequestKind::Delete) => ConfirmationAction::Deleted,
            (CallbackStatus::Completed, RequestKind::OptInSaleShare) => {
                ConfirmationAction::Notified
            }
            (CallbackStatus::Completed, _) => ConfirmationAction::Suppressed,
            (CallbackStatus::NotFound, _) => ConfirmationAction::NotFound,
            (CallbackStatus::RetainedUnderException, _) => {
                ConfirmationAction::RetainedUnderException
            }
        };
        let mut evidence = Evidence::new();
        evidence.insert("callback_status".into(), self.status.as_str().into());
        if let Some(detail) = &self.detail {
            evidence.insert("callback_detail_sha256".into(), sha256_hex(detail));
        }
        let mut completion =
            Completion::new(action, evidence).with_verification(VerificationStatus::Verified);
        if self.status == CallbackStatus::RetainedUnderException {
            completion.exception_basis = self.exception_basis.clone();
        }
        completion
    }
}

/// Verification status a delivered notice starts with: `PENDING` while a callback is expected,
/// `UNVERIFIABLE` when none is configured.
pub fn delivered_verification(callback_configured: bool) -> VerificationStatus {
    if callback_configured {
        VerificationStatus::Pending
    } else {
        VerificationStatus::Unverifiable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign, DEFAULT_TOLERANCE};

    const SECRET: &str = "whsec_test_0123456789abcdef";

    #[test]
    fn a_signed_callback_is_parsed() {
        let body = br#"{"request_id":"r-1","connector_id":"partner","status":"COMPLETED"}"#;
        let signature = sign(SECRET, 1_700_000_000, body);
        let callback = verify_callback(
            SECRET,
            "1700000000",
            &signature,
            body,
            1_700_000_010,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        assert_eq!(callback.request_id, "r-1");
        assert_eq!(callback.connector_id.as_deref(), Some("partner"));
        assert_eq!(callback.status, CallbackStatus::Completed);
    }

    #[test]
    fn a_tampered_callback_is_refused_before_parsing() {
        let body = br#"{"request_id":"r-1","status":"COMPLETED"}"#;
        let signature = sign(SECRET, 1_700_000_000, body);
        let forged = br#"{"request_id":"r-1","status":"NOT_FOUND"}"#;
        assert_eq!(
            verify_callback(
                SECRET,
                "1700000000",
                &signature,
                forged,
                1_700_000_000,
                DEFAULT_TOLERANCE
            ),
            Err(CallbackError::Signature(SignatureError::Mismatch))
        );
    }

    #[test]
    fn retained_without_a_basis_is_malformed() {
        let err = parse_callback(br#"{"request_id":"r-1","status":"RETAINED_UNDER_EXCEPTION"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("exception_basis"), "{err}");
    }

    #[test]
    fn unknown_statuses_and_fields_are_malformed() {
        assert!(parse_callback(br#"{"request_id":"r-1","status":"DONE"}"#).is_err());
        assert!(parse_callback(br#"{"request_id":"r-1","status":"COMPLETED","extra":1}"#).is_err());
        assert!(parse_callback(br#"{"request_id":" ","status":"COMPLETED"}"#).is_err());
    }

    #[test]
    fn completion_maps_status_and_kind() {
        let callback = |status, basis: Option<&str>| RecipientCallback {
            request_id: "r-1".into(),
            connector_id: None,
            status,
            exception_basis: basis.map(str::to_owned),
            detail: Some("removed from segment 12 for jane@example.com".into()),
        };
        let deleted = callback(CallbackStatus::Completed, None).completion(RequestKind::Delete);
        assert_eq!(deleted.action, ConfirmationAction::Deleted);
        assert_eq!(deleted.verification, VerificationStatus::Verified);
        assert!(!format!("{:?}", deleted.evidence).contains("jane"));
        assert_eq!(
            callback(CallbackStatus::Completed, None)
                .completion(RequestKind::OptOutSaleShare)
                .action,
            ConfirmationAction::Suppressed
        );
        let retained = callback(
            CallbackStatus::RetainedUnderException,
            Some("Cal. Civ. Code § 1798.105(d)(8)"),
        )
        .completion(RequestKind::Delete);
        assert_eq!(retained.action, ConfirmationAction::RetainedUnderException);
        assert_eq!(
            retained.exception_basis.as_deref(),
            Some("Cal. Civ. Code § 1798.105(d)(8)")
        );
    }

    #[test]
    fn delivered_verification_depends_on_the_callback() {
        assert_eq!(delivered_verification(true), VerificationStatus::Pending);
        assert_eq!(
            delivered_verification(false),
            VerificationStatus::Unverifiable
        );
    }
}
