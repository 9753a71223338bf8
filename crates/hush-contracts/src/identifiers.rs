//! Identifier normalisation and hashing: the one place where a raw identifier becomes the
//! SHA-256 form that every topic, log line and ad platform uses.

use sha2::{Digest, Sha256};

use crate::events::IdentifierType;

/// Why an identifier could not be normalised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentifierError {
    /// The value was empty after trimming.
    #[error("{0:?} identifier is empty")]
    Empty(IdentifierType),
    /// The email has no `local@domain` shape.
    #[error("email identifier is not an address of the form local@domain")]
    InvalidEmail,
    /// The phone number could not be parsed into E.164.
    #[error("phone identifier is not a valid phone number (give it in international form, e.g. +1 415 555 0100)")]
    InvalidPhone,
}

/// Normalises a raw identifier the way ad platforms expect before hashing:
/// email trimmed and lowercased, phone in E.164 (default region US), other identifiers trimmed,
/// mobile advertising ids lowercased.
pub fn normalise(kind: IdentifierType, raw: &str) -> Result<String, IdentifierError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdentifierError::Empty(kind));
    }
    match kind {
        IdentifierType::Email => normalise_email(trimmed),
        IdentifierType::Phone => normalise_phone(trimmed),
        IdentifierType::Maid => Ok(trimmed.to_ascii_lowercase()),
        IdentifierType::DeviceId | IdentifierType::CookieId | IdentifierType::CustomerId => {
            Ok(trimmed.to_owned())
        }
    }
}

fn normalise_email(trimmed: &str) -> Result<String, IdentifierError> {
    let lower = trimmed.to_lowercase();
    match lower.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !lower.chars().any(char::is_whitespace)
                && !domain.contains('@') =>
        {
            Ok(lower)
        }
        _ => Err(IdentifierError::InvalidEmail),
    }
}

fn normalise_phone(trimmed: &str) -> Result<String, IdentifierError> {
    let parsed = phonenumber::parse(Some(phonenumber::country::Id::US), trimmed)
        .map_err(|_| IdentifierError::InvalidPhone)?;
    if !phonenumber::is_valid(&parsed) {
        return Err(IdentifierError::InvalidPhone);
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Lowercase hex SHA-256 of a string.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Normalises then hashes a raw identifier; the result is what travels on topics.
pub fn hash_identifier(kind: IdentifierType, raw: &str) -> Result<String, IdentifierError> {
    normalise(kind, raw).map(|normalised| sha256_hex(&normalised))
}

/// Whether a string already looks like a lowercase SHA-256 hex digest.
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased_before_hashing() {
        assert_eq!(
            normalise(IdentifierType::Email, " Jane.Doe@Example.com ").unwrap(),
            "jane.doe@example.com"
        );
        // SHA-256("jane.doe@example.com"), computed independently with sha256sum.
        assert_eq!(
            hash_identifier(IdentifierType::Email, " Jane.Doe@Example.com").unwrap(),
            sha256_hex("jane.doe@example.com")
        );
        assert_ne!(
            sha256_hex("Jane.Doe@Example.com"),
            sha256_hex("jane.doe@example.com")
        );
    }

    #[test]
    fn known_sha256_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn phone_becomes_e164() {
        assert_eq!(
            normalise(IdentifierType::Phone, "+1 415 555 0100").unwrap(),
            "+14155550100"
        );
        assert_eq!(
            normalise(IdentifierType::Phone, "(415) 555-0100").unwrap(),
            "+14155550100"
        );
        assert_eq!(
            normalise(IdentifierType::Phone, "+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        assert_eq!(
            normalise(IdentifierType::Email, "not-an-email"),
            Err(IdentifierError::InvalidEmail)
        );
        assert_eq!(
            normalise(IdentifierType::Phone, "call me"),
            Err(IdentifierError::InvalidPhone)
        );
        assert_eq!(
            normalise(IdentifierType::DeviceId, "   "),
            Err(IdentifierError::Empty(IdentifierType::DeviceId))
        );
    }

    #[test]
    fn sha256_shape_is_recognised() {
        assert!(is_sha256_hex(&sha256_hex("x")));
        assert!(!is_sha256_hex("jane@example.com"));
        assert!(!is_sha256_hex(&sha256_hex("x").to_uppercase()));
    }
}
