//! Intake's submission parser and validation (`hush_intake::submission::parse` then
//! `into_request`), on arbitrary bytes as an HTTP body or a `hush.signals.v1` signal would
//! bring them. Nothing may panic, and what comes out must hold:
//!
//! - a refusal is 400 `malformed_json` or a documented 422 code, and names a field;
//! - an accepted request has 1 to 32 identifiers, each a lowercase SHA-256 hex digest, whose
//!   encrypted raw value (when kept) decrypts to a value hashing to that digest; its subject key
//!   is one of them; its jurisdiction is ISO 3166-2; it has a category;
//! - a deletion, or a consumer-initiated opt-in, is accepted only with an attestation the
//!   identity system signed.
//!
//! An input whose `verification.attestation` is `"signed"` gets it replaced by a token the
//! test identity system signed for its first identifier, so the fuzzer also explores requests
//! that pass verification.

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use hush_auth::attestation::{AttestationClaims, AttestationVerifier};
use hush_auth::config::AttestationConfig;
use hush_auth::keys::SigningKey;
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{IdentifierType, RequestKind};
use hush_contracts::identifiers::{hash_identifier, is_sha256_hex, sha256_hex};
use hush_intake::submission::{into_request, parse, Receipt, Submission};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.fuzz.hush.example";
/// Receipt time of every input (2026-09-21T…Z).
const RECEIVED_AT_MS: i64 = 1_790_000_000_000;
const ALL_KINDS: [IdentifierType; 6] = [
    IdentifierType::Email,
    IdentifierType::Phone,
    IdentifierType::DeviceId,
    IdentifierType::CookieId,
    IdentifierType::CustomerId,
    IdentifierType::Maid,
];
/// The codes `into_request` may refuse with (intake's OpenAPI document lists them under 422).
const VALIDATION_CODES: [&str; 7] = [
    "invalid_field",
    "missing_identifier",
    "invalid_identifier",
    "too_many_identifiers",
    "verification_required",
    "invalid_attestation",
    "invalid_jurisdiction",
];

struct Fixture {
    cipher: FieldCipher,
    identity: SigningKey,
    verifier: AttestationVerifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let identity = SigningKey::generate("fuzz-idp");
        let jwks = std::env::temp_dir().join(format!("hush-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&jwks, identity.jwks().to_string()).expect("JWKS written");
        let config: AttestationConfig = serde_json::from_value(serde_json::json!({
            "issuer": ISSUER,
            "jwks_file": jwks,
            "max_age_secs": 86_400,
        }))
        .expect("attestation config");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime to load the JWKS");
        let verifier = runtime
            .block_on(AttestationVerifier::new(&config, Default::default()))
            .expect("JWKS loads");
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        Fixture {
            cipher: FieldCipher::from_base64_key(&key).expect("a 32-byte key"),
            identity,
            verifier,
        }
    })
}

/// Replaces an attestation of `"signed"` by one the identity system signed for the first
/// identifier (when its hash can be computed).
fn sign_placeholder(submission: &mut Submission, fixture: &Fixture) {
    let Some(verification) = submission.verification.as_mut() else {
        return;
    };
    if verification.attestation.as_deref() != Some("signed") {
        return;
    }
    let Some(first) = submission.identifiers.first() else {
        return;
    };
    let hash = match (&first.value, &first.sha256) {
        (Some(value), None) => hash_identifier(first.kind, value).ok(),
        (None, Some(hash)) => Some(hash.trim().to_ascii_lowercase()),
        _ => None,
    };
    let Some(hash) = hash else {
        return;
    };
    let now = RECEIVED_AT_MS / 1000;
    verification.attestation = Some(fixture.identity.sign(&AttestationClaims {
        iss: ISSUER.into(),
        aud: None,
        // Expiry is checked against the wall clock.
        exp: i64::from(u32::MAX),
        iat: now,
        identifier_sha256: hash,
        method: "email_link".into(),
        verified_at: now - 60,
    }));
}

fuzz_target!(|body: &[u8]| {
    let fixture = fixture();
    let mut submission = match parse(body) {
        Ok(submission) => submission,
        Err(error) => {
            let status = error.status().as_u16();
            assert!(
                (status == 400 && error.error == "malformed_json")
                    || (status == 422 && error.error == "invalid_field" && error.field.is_some()),
                "parse refused with {status} {}",
                error.error
            );
            assert!(!error.message.is_empty());
            return;
        }
    };
    sign_placeholder(&mut submission, fixture);
    let kind = submission.kind;
    let needs_attestation = kind == RequestKind::Delete
        || (kind == RequestKind::OptInSaleShare && submission.consumer_initiated == Some(true));
    let receipt = Receipt {
        request_id: "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into(),
        received_at: RECEIVED_AT_MS,
        default_jurisdiction: "US-CA",
        keep_raw: &ALL_KINDS,
        cipher: &fixture.cipher,
        source_system: "fuzz",
        attestation: Some(&fixture.verifier),
    };
    let request = match into_request(submission, receipt) {
        Ok(request) => request,
        Err(error) => {
            assert_eq!(error.status().as_u16(), 422, "{}", error.error);
            assert!(
                VALIDATION_CODES.contains(&error.error),
                "undocumented code {}",
                error.error
            );
            assert!(error.field.is_some(), "{} names no field", error.error);
            return;
        }
    };
    assert!((1..=32).contains(&request.identifiers.len()));
    for identifier in &request.identifiers {
        assert!(is_sha256_hex(&identifier.sha256), "{}", identifier.sha256);
        if let Some(encrypted) = &identifier.encrypted_value {
            let raw = fixture
                .cipher
                .decrypt(encrypted, &identifier.sha256)
                .expect("a kept raw value decrypts under its own hash");
            assert_eq!(
                sha256_hex(&raw),
                identifier.sha256,
                "kept value and hash differ"
            );
        }
    }
    assert!(request
        .identifiers
        .iter()
        .any(|i| i.sha256 == request.subject_key));
    let (country, region) = request
        .jurisdiction
        .split_once('-')
        .expect("an ISO 3166-2 code");
    assert!(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()));
    assert!((1..=3).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(!request.categories.is_empty());
    if needs_attestation {
        let verification = request
            .verification
            .as_ref()
            .expect("a deletion or opt-in carries its verification");
        assert_eq!(verification.attested_by.as_deref(), Some(ISSUER));
        assert!(verification.attestation.is_some());
    }
});
