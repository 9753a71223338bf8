//! The identifier normaliser (`hush_contracts::identifiers::normalise` / `hash_identifier`),
//! the one place every raw identifier becomes the hash on topics, in the gate and at ad
//! platforms. The first byte picks the identifier type, the rest is the raw value. Nothing may
//! panic, and:
//!
//! - a normalised value is a fixed point (normalising it again changes nothing), so a value
//!   normalised at intake and again by a connector or the gate hashes the same;
//! - it has no surrounding whitespace and is never empty;
//! - `hash_identifier` is the lowercase SHA-256 hex of `normalise`, and fails exactly when it
//!   does.

#![no_main]

use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::{hash_identifier, is_sha256_hex, normalise, sha256_hex};
use libfuzzer_sys::fuzz_target;

const KINDS: [IdentifierType; 6] = [
    IdentifierType::Email,
    IdentifierType::Phone,
    IdentifierType::DeviceId,
    IdentifierType::CookieId,
    IdentifierType::CustomerId,
    IdentifierType::Maid,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(raw) else {
        return;
    };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let normalised = normalise(kind, raw);
    let hashed = hash_identifier(kind, raw);
    match (&normalised, &hashed) {
        (Ok(value), Ok(hash)) => {
            assert!(!value.is_empty());
            assert_eq!(value.trim(), value, "{kind:?} keeps surrounding whitespace");
            assert_eq!(
                normalise(kind, value).as_ref(),
                Ok(value),
                "{kind:?} normalisation is not idempotent"
            );
            assert_eq!(hash, &sha256_hex(value));
            assert!(is_sha256_hex(hash));
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("normalise and hash_identifier disagree for {kind:?}"),
    }
});
