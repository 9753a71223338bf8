//! Encryption of raw identifier values (AES-256-GCM). Raw values travel only encrypted, only on
//! the requests topic, and only for connectors that need them (a CRM looks people up by email).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;

use crate::config::{ConfigError, SecretRef};

/// Environment variable that holds the key by default.
pub const DEFAULT_KEY_VAR: &str = "HUSH_ENCRYPTION_KEY";

const NONCE_LEN: usize = 12;

/// Why a value could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    /// Not base64, or too short to hold a nonce.
    #[error("encrypted value is not base64 nonce || ciphertext")]
    Malformed,
    /// Wrong key, tampered ciphertext, or bound to another identifier.
    #[error("encrypted value does not authenticate with this key")]
    Unauthenticated,
}

/// AES-256-GCM with a random 96-bit nonce per value; the identifier's hash is bound as
/// associated data, so a ciphertext cannot be moved to another identifier.
#[derive(Clone)]
pub struct FieldCipher {
    cipher: Aes256Gcm,
}

impl FieldCipher {
    /// A cipher from a base64-encoded 32-byte key.
    pub fn from_base64_key(key: &str) -> Result<Self, ConfigError> {
        let bytes = BASE64.decode(key.trim()).map_err(|_| {
            ConfigError::Invalid(
                "encryption key is not base64 (expected 32 random bytes, base64)".into(),
            )
        })?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            ConfigError::Invalid(format!(
                "encryption key is {} bytes; AES-256-GCM needs 32 (generate one with `openssl rand -base64 32`)",
                bytes.len()
            ))
        })?;
        Ok(Self { cipher })
    }

    /// A cipher whose key is read from the environment variable `secret` names.
    pub fn from_env(secret: &SecretRef) -> Result<Self, ConfigError> {
        Self::from_base64_key(&secret.resolve("encryption key")?)
    }

    /// Encrypts `plain`, bound to `identifier_hash`; returns base64(nonce || ciphertext).
    pub fn encrypt(&self, plain: &str, identifier_hash: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: identifier_hash.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BASE64.encode(out)
    }

    /// Decrypts a value produced by [`FieldCipher::encrypt`] for `identifier_hash`.
    pub fn decrypt(&self, encoded: &str, identifier_hash: &str) -> Result<String, DecryptError> {
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| DecryptError::Malformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(DecryptError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: identifier_hash.as_bytes(),
                },
            )
            .map_err(|_| DecryptError::Unauthenticated)?;
        String::from_utf8(plain).map_err(|_| DecryptError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        BASE64.encode([7u8; 32])
    }

    #[test]
    fn round_trip_and_fresh_nonce_each_time() {
        let cipher = FieldCipher::from_base64_key(&key()).unwrap();
        let a = cipher.encrypt("jane@example.com", "h1");
        let b = cipher.encrypt("jane@example.com", "h1");
        assert_ne!(a, b, "nonces differ");
        assert!(!a.contains("jane"));
        assert_eq!(cipher.decrypt(&a, "h1").unwrap(), "jane@example.com");
    }

    #[test]
    fn wrong_key_wrong_identifier_and_tampering_are_refused() {
        let cipher = FieldCipher::from_base64_key(&key()).unwrap();
        let other = FieldCipher::from_base64_key(&BASE64.encode([8u8; 32])).unwrap();
        let sealed = cipher.encrypt("jane@example.com", "h1");
        assert_eq!(
            other.decrypt(&sealed, "h1"),
            Err(DecryptError::Unauthenticated)
        );
        assert_eq!(
            cipher.decrypt(&sealed, "h2"),
            Err(DecryptError::Unauthenticated)
        );
        assert_eq!(cipher.decrypt("!!", "h1"), Err(DecryptError::Malformed));
    }

    #[test]
    fn short_keys_are_refused_with_the_length() {
        let err = FieldCipher::from_base64_key(&BASE64.encode([1u8; 16]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("16 bytes"), "{err}");
    }
}
