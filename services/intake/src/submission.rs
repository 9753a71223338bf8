//! A submitted request as JSON, and its validation into a [`PrivacyRequest`]: identifiers are
//! normalised and hashed here, raw values kept only encrypted, and a deletion without identity
//! verification is refused.

use chrono::{DateTime, Utc};
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{
    AgeBand, Category, Channel, EpochMillis, Identifier, IdentifierType, PrivacyRequest,
    RequestKind, Verification,
};
use hush_contracts::identifiers::{is_sha256_hex, normalise, sha256_hex, IdentifierError};
use hush_runtime::api_error::ApiError;
use serde::Deserialize;

/// Body of `POST /v1/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Right exercised.
    pub kind: RequestKind,
    /// ISO 3166-2 jurisdiction; the configured default when absent.
    pub jurisdiction: Option<String>,
    /// Channel; `API` when absent.
    pub channel: Option<Channel>,
    /// Raw identifiers; at least one.
    #[serde(default)]
    pub identifiers: Vec<SubmittedIdentifier>,
    /// Categories; `["ALL"]` when absent.
    pub categories: Option<Vec<Category>>,
    /// Identity verification; required for `DELETE`.
    pub verification: Option<SubmittedVerification>,
    /// Age band, when known.
    pub age_band: Option<AgeBand>,
    /// Whether the consumer started this request (needed for an opt-in).
    #[serde(default)]
    pub consumer_initiated: Option<bool>,
    /// Caller's idempotency key.
    pub idempotency_key: Option<String>,
}

/// One identifier: its raw value, or the SHA-256 hex of its normalised value (exactly one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedIdentifier {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// Raw value as the consumer gave it.
    #[serde(default)]
    pub value: Option<String>,
    /// Lowercase hex SHA-256 of the normalised value, when the caller holds no raw value (it
    /// cannot reach recipients that need the raw value).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Identity verification.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedVerification {
    /// Method, e.g. `EMAIL_LINK`.
    pub method: String,
    /// When it succeeded (RFC 3339).
    pub verified_at: DateTime<Utc>,
}

/// What intake adds to a submission.
pub struct Receipt<'a> {
    /// Request id.
    pub request_id: String,
    /// Receipt time.
    pub received_at: EpochMillis,
    /// Jurisdiction when the submission names none.
    pub default_jurisdiction: &'a str,
    /// Identifier kinds whose raw value is kept, encrypted.
    pub keep_raw: &'a [IdentifierType],
    /// Cipher for raw values.
    pub cipher: &'a FieldCipher,
    /// System name recorded on the request.
    pub source_system: &'a str,
}

/// Longest accepted raw identifier.
const MAX_IDENTIFIER_LEN: usize = 512;
/// Most identifiers one request may carry.
const MAX_IDENTIFIERS: usize = 32;
/// Clock skew tolerated on `verified_at`.
const VERIFICATION_SKEW_MS: i64 = 5 * 60 * 1000;

/// Parses a JSON body into a [`Submission`], naming the field at fault.
pub fn parse(body: &[u8]) -> Result<Submission, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("body is not a valid request object: {inner}"),
            )
        } else {
            ApiError::invalid("invalid_field", path, inner.to_string())
        }
    })
}

/// Validates `submission` into the event intake publishes.
pub fn into_request(
    submission: Submission,
    receipt: Receipt<'_>,
) -> Result<PrivacyRequest, ApiError> {
    if submission.identifiers.is_empty() {
        return Err(ApiError::invalid(
            "missing_identifier",
            "identifiers",
            "give at least one identifier, e.g. {\"type\":\"EMAIL\",\"value\":\"jane@example.com\"}",
        ));
    }
    if submission.identifiers.len() > MAX_IDENTIFIERS {
        return Err(ApiError::invalid(
            "too_many_identifiers",
            "identifiers",
            format!("at most {MAX_IDENTIFIERS} identifiers per request"),
        ));
    }
    let verification = verification_of(&submission, receipt.received_at)?;
    let identifiers = submission
        .identifiers
        .iter()
        .enumerate()
        .map(|(index, identifier)| hash_one(index, identifier, &receipt))
        .collect::<Result<Vec<_>, _>>()?;
    let jurisdiction = submission
        .jurisdiction
        .unwrap_or_else(|| receipt.default_jurisdiction.to_owned())
        .trim()
        .to_ascii_uppercase();
    if !is_iso_3166_2(&jurisdiction) {
        return Err(ApiError::invalid(
            "invalid_jurisdiction",
            "jurisdiction",
            "give an ISO 3166-2 code such as US-CA",
        ));
    }
    let categories = submission.categories.unwrap_or_else(|| vec![Category::All]);
    if categories.is_empty() {
        return Err(ApiError::invalid(
            "invalid_field",
            "categories",
            "give at least one category, or omit the field for ALL",
        ));
    }
    Ok(PrivacyRequest {
        request_id: receipt.request_id,
        subject_key: subject_key(&identifiers),
        kind: submission.kind,
        channel: submission.channel.unwrap_or(Channel::Api),
        jurisdiction,
        received_at: receipt.received_at,
        identifiers,
        categories,
        verification,
        age_band: submission.age_band,
        source_system: receipt.source_system.to_owned(),
        consumer_initiated: submission.consumer_initiated.unwrap_or(false),
        idempotency_key: submission.idempotency_key,
    })
}

fn verification_of(
    submission: &Submission,
    received_at: EpochMillis,
) -> Result<Option<Verification>, ApiError> {
    let Some(given) = &submission.verification else {
        if submission.kind == RequestKind::Delete {
            return Err(ApiError::invalid(
                "verification_required",
                "verification",
                "a deletion request needs verified identity (Civ. Code 1798.140(ak), 11 CCR 7060): \
                 add {\"method\":...,\"verified_at\":...}; opt-outs never need it",
            ));
        }
        return Ok(None);
    };
    if given.method.trim().is_empty() {
        return Err(ApiError::invalid(
            "invalid_field",
            "verification.method",
            "name the verification method, e.g. EMAIL_LINK",
        ));
    }
    let verified_at = given.verified_at.timestamp_millis();
    if verified_at > received_at + VERIFICATION_SKEW_MS {
        return Err(ApiError::invalid(
            "invalid_field",
            "verification.verified_at",
            "verification time is in the future",
        ));
    }
    Ok(Some(Verification {
        method: given.method.trim().to_ascii_uppercase(),
        verified_at,
    }))
}

fn hash_one(
    index: usize,
    identifier: &SubmittedIdentifier,
    receipt: &Receipt<'_>,
) -> Result<Identifier, ApiError> {
    let value = match (&identifier.value, &identifier.sha256) {
        (Some(value), None) => value,
        (None, Some(sha256)) => return hashed_one(index, identifier.kind, sha256),
        _ => {
            return Err(ApiError::invalid(
                "invalid_identifier",
                format!("identifiers[{index}]"),
                "give exactly one of value and sha256",
            ))
        }
    };
    let field = format!("identifiers[{index}].value");
    if value.len() > MAX_IDENTIFIER_LEN {
        return Err(ApiError::invalid(
            "invalid_identifier",
            field,
            format!("identifier longer than {MAX_IDENTIFIER_LEN} bytes"),
        ));
    }
    let normalised = normalise(identifier.kind, value).map_err(|e| match e {
        IdentifierError::Empty(_) => {
            ApiError::invalid("missing_identifier", field.clone(), e.to_string())
        }
        _ => ApiError::invalid("invalid_identifier", field.clone(), e.to_string()),
    })?;
    let sha256 = sha256_hex(&normalised);
    let encrypted_value = receipt
        .keep_raw
        .contains(&identifier.kind)
        .then(|| receipt.cipher.encrypt(&normalised, &sha256));
    Ok(Identifier {
        kind: identifier.kind,
        sha256,
        encrypted_value,
    })
}

/// An identifier given already hashed: checked to be a SHA-256 hex digest, kept without a raw
/// value.
fn hashed_one(index: usize, kind: IdentifierType, sha256: &str) -> Result<Identifier, ApiError> {
    let sha256 = sha256.trim().to_ascii_lowercase();
    if !is_sha256_hex(&sha256) {
        return Err(ApiError::invalid(
            "invalid_identifier",
            format!("identifiers[{index}].sha256"),
            "not the 64-digit hex SHA-256 of a normalised identifier",
        ));
    }
    Ok(Identifier {
        kind,
        sha256,
        encrypted_value: None,
    })
}

/// The subject key: the hash of the most stable identifier given.
pub fn subject_key(identifiers: &[Identifier]) -> String {
    IdentifierType::SUBJECT_KEY_PRIORITY
        .iter()
        .find_map(|kind| identifiers.iter().find(|i| i.kind == *kind))
        .or(identifiers.first())
        .map(|i| i.sha256.clone())
        .unwrap_or_default()
}

fn is_iso_3166_2(code: &str) -> bool {
    match code.split_once('-') {
        Some((country, region)) => {
            country.len() == 2
                && country.chars().all(|c| c.is_ascii_uppercase())
                && (1..=3).contains(&region.len())
                && region.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn cipher() -> FieldCipher {
        FieldCipher::from_base64_key(&base64::engine::general_purpose::STANDARD.encode([3u8; 32]))
            .unwrap()
    }

    fn validate(body: &str) -> Result<PrivacyRequest, ApiError> {
        let cipher = cipher();
        into_request(
            parse(body.as_bytes())?,
            Receipt {
                request_id: "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into(),
                received_at: 1_790_000_000_000,
                default_jurisdiction: "US-CA",
                keep_raw: &[IdentifierType::Email],
                cipher: &cipher,
                source_system: "intake",
            },
        )
    }

    #[test]
    fn the_contract_example_is_accepted_with_hashed_identifiers() {
        let request = validate(
            r#"{"kind":"OPT_OUT_SALE_SHARE","jurisdiction":"US-CA","channel":"WEB_FORM",
                "identifiers":[{"type":"EMAIL","value":" Jane.Doe@Example.com"},{"type":"PHONE","value":"+1 415 555 0100"}],
                "categories":["ALL"],"idempotency_key":"form-7f3a"}"#,
        )
        .unwrap();
        assert_eq!(
            request.identifiers[0].sha256,
            sha256_hex("jane.doe@example.com")
        );
        assert_eq!(request.identifiers[1].sha256, sha256_hex("+14155550100"));
        let sealed = request.identifiers[0].encrypted_value.as_ref().unwrap();
        assert_eq!(
            cipher()
                .decrypt(sealed, &request.identifiers[0].sha256)
                .unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(
            request.identifiers[1].encrypted_value, None,
            "phone not kept raw"
        );
        assert_eq!(request.subject_key, sha256_hex("jane.doe@example.com"));
        assert_eq!(request.channel, Channel::WebForm);
    }

    #[test]
    fn unverified_delete_is_refused_with_the_reason() {
        let err =
            validate(r#"{"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"a@b.co"}]}"#)
                .unwrap_err();
        assert_eq!(err.status().as_u16(), 422);
        assert_eq!(err.error, "verification_required");
        assert_eq!(err.field.as_deref(), Some("verification"));
    }

    #[test]
    fn opt_out_never_asks_for_verification() {
        let request = validate(
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"COOKIE_ID","value":"c-1"}]}"#,
        )
        .unwrap();
        assert_eq!(request.verification, None);
        assert_eq!(request.jurisdiction, "US-CA", "default jurisdiction");
        assert_eq!(request.categories, vec![Category::All]);
    }

    #[test]
    fn errors_name_the_field() {
        let unknown_kind = validate(r#"{"kind":"SELL_ME","identifiers":[]}"#).unwrap_err();
        assert_eq!(unknown_kind.field.as_deref(), Some("kind"));
        assert_eq!(unknown_kind.error, "invalid_field");
        let no_identifier =
            validate(r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[]}"#).unwrap_err();
        assert_eq!(no_identifier.error, "missing_identifier");
        let bad_email = validate(
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"nope"}]}"#,
        )
        .unwrap_err();
        assert_eq!(bad_email.field.as_deref(), Some("identifiers[0].value"));
        let bad_type =
            validate(r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"SSN","value":"1"}]}"#)
                .unwrap_err();
        assert_eq!(bad_type.field.as_deref(), Some("identifiers[0].type"));
        let malformed = validate(r#"{"kind": "#).unwrap_err();
        assert_eq!(
            (malformed.status().as_u16(), malformed.error),
            (400, "malformed_json")
        );
        let future = validate(
            r#"{"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"a@b.co"}],
                "verification":{"method":"EMAIL_LINK","verified_at":"2099-01-01T00:00:00Z"}}"#,
        )
        .unwrap_err();
        assert_eq!(future.field.as_deref(), Some("verification.verified_at"));
        let jurisdiction = validate(
            r#"{"kind":"OPT_OUT_SALE_SHARE","jurisdiction":"California","identifiers":[{"type":"COOKIE_ID","value":"c"}]}"#,
        )
        .unwrap_err();
        assert_eq!(jurisdiction.error, "invalid_jurisdiction");
    }

    #[test]
    fn subject_key_prefers_the_customer_id() {
        let request = validate(
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"a@b.co"},{"type":"CUSTOMER_ID","value":"42"}]}"#,
        )
        .unwrap();
        assert_eq!(request.subject_key, sha256_hex("42"));
    }

    #[test]
    fn an_identifier_given_hashed_is_kept_hashed_without_a_raw_value() {
        let hash = sha256_hex("jane.doe@example.com");
        let request = validate(&format!(
            r#"{{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{{"type":"EMAIL","sha256":"{}"}}]}}"#,
            hash.to_uppercase()
        ))
        .unwrap();
        assert_eq!(request.identifiers[0].sha256, hash);
        assert_eq!(request.identifiers[0].encrypted_value, None);
    }

    #[test]
    fn an_identifier_needs_exactly_one_of_value_and_sha256() {
        let both = validate(&format!(
            r#"{{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{{"type":"EMAIL","value":"a@b.co","sha256":"{}"}}]}}"#,
            "a".repeat(64)
        ))
        .unwrap_err();
        assert_eq!(
            (both.error, both.field.as_deref()),
            ("invalid_identifier", Some("identifiers[0]"))
        );
        let not_hex = validate(
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","sha256":"jane@example.com"}]}"#,
        )
        .unwrap_err();
        assert_eq!(not_hex.field.as_deref(), Some("identifiers[0].sha256"));
        assert!(!not_hex.message.contains("jane"));
    }
}
