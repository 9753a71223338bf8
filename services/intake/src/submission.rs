//! A submitted request as JSON, and its validation into a [`PrivacyRequest`]: identifiers are
//! normalised and hashed here, raw values kept only encrypted, and a deletion or a
//! consumer-initiated opt-in without a signed verification attestation is refused.

use chrono::{DateTime, Utc};
use hush_auth::attestation::AttestationVerifier;
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

/// Identity verification: the attestation the business's identity system signed (required for
/// a deletion and a consumer-initiated opt-in), or, for other requests, a described method and
/// time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedVerification {
    /// Compact JWS signed by the identity system configured in `[auth.attestation]`.
    #[serde(default)]
    pub attestation: Option<String>,
    /// Method, e.g. `EMAIL_LINK` (taken from the attestation when there is one).
    #[serde(default)]
    pub method: Option<String>,
    /// When it succeeded, RFC 3339 (taken from the attestation when there is one).
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
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
    /// Checks verification attestations; `None` refuses requests that need one.
    pub attestation: Option<&'a AttestationVerifier>,
}

/// Longest accepted raw identifier.
const MAX_IDENTIFIER_LEN: usize = 512;
/// Most identifiers one request may carry.
const MAX_IDENTIFIERS: usize = 32;
/// Clock skew tolerated on `verified_at`.
const VERIFICATION_SKEW_MS: i64 = 5 * 60 * 1000;
/// Longest accepted idempotency key, in bytes.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
/// Most categories one request may name.
const MAX_CATEGORIES: usize = 16;
/// Longest accepted attestation, in bytes.
const MAX_ATTESTATION_LEN: usize = 8 * 1024;
/// Longest accepted verification method name.
const MAX_METHOD_LEN: usize = 64;

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
    if let Some(key) = &submission.idempotency_key {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(ApiError::invalid(
                "invalid_field",
                "idempotency_key",
                format!("give an idempotency key of 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes"),
            ));
        }
    }
    if submission
        .categories
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CATEGORIES)
    {
        return Err(ApiError::invalid(
            "invalid_field",
            "categories",
            format!("at most {MAX_CATEGORIES} categories per request"),
        ));
    }
    let identifiers = submission
        .identifiers
        .iter()
        .enumerate()
        .map(|(index, identifier)| hash_one(index, identifier, &receipt))
        .collect::<Result<Vec<_>, _>>()?;
    let verification = verification_of(&submission, &identifiers, &receipt)?;
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

/// Whether `submission` may only proceed with a signed attestation: a deletion (irreversible
/// at every recipient) and a consumer-initiated opt-in (which lifts an opt-out).
fn needs_attestation(submission: &Submission) -> bool {
    submission.kind == RequestKind::Delete
        || (submission.kind == RequestKind::OptInSaleShare
            && submission.consumer_initiated.unwrap_or(false))
}

fn verification_of(
    submission: &Submission,
    identifiers: &[Identifier],
    receipt: &Receipt<'_>,
) -> Result<Option<Verification>, ApiError> {
    let required = needs_attestation(submission);
    let given = submission.verification.as_ref();
    match given.and_then(|v| v.attestation.as_deref()) {
        Some(token) => attested(token, identifiers, receipt).map(Some),
        None if required => Err(ApiError::invalid(
            "verification_required",
            "verification.attestation",
            "a deletion or an opt-in needs identity verification you can check (Civ. Code \
             1798.140(ak), 11 CCR 7060): add {\"attestation\": \"<JWT>\"} signed by the identity \
             system configured in [auth.attestation]; a bare method and time are not accepted",
        )),
        None => given.map(|v| described(v, receipt.received_at)).transpose(),
    }
}

/// Checks the identity system's signed attestation against the request's identifiers.
fn attested(
    token: &str,
    identifiers: &[Identifier],
    receipt: &Receipt<'_>,
) -> Result<Verification, ApiError> {
    if token.len() > MAX_ATTESTATION_LEN {
        return Err(ApiError::invalid(
            "invalid_attestation",
            "verification.attestation",
            format!("the attestation is longer than {MAX_ATTESTATION_LEN} bytes"),
        ));
    }
    let Some(verifier) = receipt.attestation else {
        return Err(ApiError::invalid(
            "verification_required",
            "verification.attestation",
            "this Hush has no identity system configured ([auth.attestation]), so it cannot \
             check any verification; deletions and opt-ins are refused until one is",
        ));
    };
    let hashes: Vec<&str> = identifiers.iter().map(|i| i.sha256.as_str()).collect();
    let attested = verifier
        .verify(token, &hashes, receipt.received_at)
        .map_err(|error| {
            ApiError::invalid(
                "invalid_attestation",
                "verification.attestation",
                error.to_string(),
            )
        })?;
    Ok(Verification {
        method: attested.method,
        verified_at: attested.verified_at_ms,
        attested_by: Some(attested.issuer),
        attestation: Some(token.to_owned()),
    })
}

/// A verification described but not attested (accepted only where none is required).
fn described(
    given: &SubmittedVerification,
    received_at: EpochMillis,
) -> Result<Verification, ApiError> {
    let method = given.method.as_deref().map(str::trim).unwrap_or_default();
    if method.is_empty() || method.len() > MAX_METHOD_LEN {
        return Err(ApiError::invalid(
            "invalid_field",
            "verification.method",
            format!("name the verification method (at most {MAX_METHOD_LEN} characters), e.g. EMAIL_LINK"),
        ));
    }
    let Some(verified_at) = given.verified_at else {
        return Err(ApiError::invalid(
            "invalid_field",
            "verification.verified_at",
            "give the verification time (RFC 3339)",
        ));
    };
    let verified_at = verified_at.timestamp_millis();
    if verified_at > received_at + VERIFICATION_SKEW_MS {
        return Err(ApiError::invalid(
            "invalid_field",
            "verification.verified_at",
            "verification time is in the future",
        ));
    }
    Ok(Verification {
        method: method.to_ascii_uppercase(),
        verified_at,
        attested_by: None,
        attestation: None,
    })
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
    use hush_auth::attestation::AttestationClaims;
    use hush_auth::keys::SigningKey;

    fn cipher() -> FieldCipher {
        FieldCipher::from_base64_key(&base64::engine::general_purpose::STANDARD.encode([3u8; 32]))
            .unwrap()
    }

    fn validate(body: &str) -> Result<PrivacyRequest, ApiError> {
        validate_with(body, None)
    }

    fn validate_with(
        body: &str,
        attestation: Option<&AttestationVerifier>,
    ) -> Result<PrivacyRequest, ApiError> {
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
                attestation,
            },
        )
    }

    const RECEIVED_SECS: i64 = 1_790_000_000;
    const ISSUER: &str = "https://id.example.com";

    /// An identity system's key and a verifier trusting it.
    async fn identity_system() -> (SigningKey, AttestationVerifier) {
        let key = SigningKey::generate("idp");
        let path = std::env::temp_dir().join(format!("intake-jwks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, key.jwks().to_string()).unwrap();
        let config: hush_auth::config::AttestationConfig = toml::from_str(&format!(
            "issuer = \"{ISSUER}\"\njwks_file = \"{}\"\nmax_age_secs = 3600",
            path.display()
        ))
        .unwrap();
        let verifier = AttestationVerifier::new(&config, Default::default())
            .await
            .unwrap();
        (key, verifier)
    }

    fn attestation_for(key: &SigningKey, email: &str) -> String {
        key.sign(&AttestationClaims {
            iss: ISSUER.into(),
            aud: None,
            // Expiry is checked against the wall clock; the age against receipt.
            exp: chrono::Utc::now().timestamp() + 600,
            iat: RECEIVED_SECS,
            identifier_sha256: sha256_hex(email),
            method: "email_link".into(),
            verified_at: RECEIVED_SECS - 60,
        })
    }

    #[tokio::test]
    async fn a_delete_with_the_identity_systems_attestation_is_accepted_and_keeps_it() {
        let (key, verifier) = identity_system().await;
        let token = attestation_for(&key, "a@b.co");
        let request = validate_with(
            &format!(
                r#"{{"kind":"DELETE","identifiers":[{{"type":"EMAIL","value":"A@b.co"}}],
                    "verification":{{"attestation":"{token}"}}}}"#
            ),
            Some(&verifier),
        )
        .unwrap();
        let verification = request.verification.unwrap();
        assert_eq!(verification.method, "EMAIL_LINK");
        assert_eq!(verification.verified_at, (RECEIVED_SECS - 60) * 1000);
        assert_eq!(verification.attested_by.as_deref(), Some(ISSUER));
        assert_eq!(verification.attestation, Some(token));
    }

    #[tokio::test]
    async fn a_bare_claim_or_someone_elses_attestation_does_not_verify_a_delete() {
        let (key, verifier) = identity_system().await;
        let bare = validate_with(
            r#"{"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"a@b.co"}],
                "verification":{"method":"ACCOUNT_LOGIN","verified_at":"2026-09-21T00:00:00Z"}}"#,
            Some(&verifier),
        )
        .unwrap_err();
        assert_eq!(
            (bare.status().as_u16(), bare.error),
            (422, "verification_required")
        );
        let other = attestation_for(&key, "someone.else@b.co");
        let misdirected = validate_with(
            &format!(
                r#"{{"kind":"DELETE","identifiers":[{{"type":"EMAIL","value":"a@b.co"}}],
                    "verification":{{"attestation":"{other}"}}}}"#
            ),
            Some(&verifier),
        )
        .unwrap_err();
        assert_eq!(misdirected.error, "invalid_attestation");
        assert_eq!(
            misdirected.field.as_deref(),
            Some("verification.attestation")
        );
        let forged = attestation_for(&SigningKey::generate("idp"), "a@b.co");
        let forged = validate_with(
            &format!(
                r#"{{"kind":"DELETE","identifiers":[{{"type":"EMAIL","value":"a@b.co"}}],
                    "verification":{{"attestation":"{forged}"}}}}"#
            ),
            Some(&verifier),
        )
        .unwrap_err();
        assert_eq!(forged.error, "invalid_attestation");
    }

    #[tokio::test]
    async fn a_consumer_opt_in_needs_an_attestation_too() {
        let (key, verifier) = identity_system().await;
        let unsigned = validate_with(
            r#"{"kind":"OPT_IN_SALE_SHARE","consumer_initiated":true,"identifiers":[{"type":"EMAIL","value":"a@b.co"}]}"#,
            Some(&verifier),
        )
        .unwrap_err();
        assert_eq!(unsigned.error, "verification_required");
        let token = attestation_for(&key, "a@b.co");
        let signed = validate_with(
            &format!(
                r#"{{"kind":"OPT_IN_SALE_SHARE","consumer_initiated":true,"identifiers":[{{"type":"EMAIL","value":"a@b.co"}}],
                    "verification":{{"attestation":"{token}"}}}}"#
            ),
            Some(&verifier),
        );
        assert!(signed.is_ok(), "{signed:?}");
    }

    #[test]
    fn without_an_identity_system_every_delete_is_refused() {
        let err = validate(
            r#"{"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"a@b.co"}],
                "verification":{"attestation":"eyJhbGciOiJFZERTQSJ9.e30.c2ln"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.error, "verification_required");
        assert!(
            err.message.contains("[auth.attestation]"),
            "{}",
            err.message
        );
    }

    #[test]
    fn oversized_keys_and_category_lists_are_refused_by_field() {
        let key = validate(&format!(
            r#"{{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{{"type":"COOKIE_ID","value":"c"}}],"idempotency_key":"{}"}}"#,
            "k".repeat(201)
        ))
        .unwrap_err();
        assert_eq!(key.field.as_deref(), Some("idempotency_key"));
        let categories = validate(&format!(
            r#"{{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{{"type":"COOKIE_ID","value":"c"}}],"categories":[{}]}}"#,
            vec!["\"ALL\""; 17].join(",")
        ))
        .unwrap_err();
        assert_eq!(categories.field.as_deref(), Some("categories"));
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
        assert_eq!(err.field.as_deref(), Some("verification.attestation"));
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
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"a@b.co"}],
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
