//! Making credentials: API keys (and the hash the configuration holds), and Ed25519 signing
//! keys with their public JWKS, for `hush keys`, the demo and tests. An identity system in
//! production signs attestations with its own keys.

use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Prefix of every API key Hush makes, so a leaked one is recognisable in a secret scanner.
pub const API_KEY_PREFIX: &str = "hush_sk_";

/// A new API key and the hash to configure for it.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key: give it to the client, store it nowhere else.
    pub key: String,
    /// Lowercase hex SHA-256 of the key, for `[[auth.api_keys]] sha256`.
    pub sha256: String,
}

/// Makes a 256-bit random API key.
pub fn new_api_key() -> NewApiKey {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).expect("the system random source works");
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewApiKey {
        sha256: api_key_sha256(&key),
        key,
    }
}

/// The hash the configuration holds for `key`.
pub fn api_key_sha256(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// An Ed25519 key that signs JWTs (`EdDSA`), with its key id.
pub struct SigningKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a signing key could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not an Ed25519 PKCS#8 private key: {0}")]
pub struct KeyError(String);

impl SigningKey {
    /// A fresh random key named `kid`.
    pub fn generate(kid: &str) -> Self {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("the system random source works");
        Self::from_pkcs8_der(kid, document.as_ref()).expect("a generated key reads back")
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self {
            pkcs8: der.to_vec(),
            public: pair.public_key().as_ref().to_vec(),
            kid: kid.to_owned(),
        })
    }

    /// Reads a `PRIVATE KEY` PEM, as [`SigningKey::to_pem`] writes it.
    pub fn from_pem(kid: &str, pem: &str) -> Result<Self, KeyError> {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD
            .decode(body.trim())
            .map_err(|e| KeyError(e.to_string()))?;
        Self::from_pkcs8_der(kid, &der)
    }

    /// The private key as a PKCS#8 `PRIVATE KEY` PEM.
    pub fn to_pem(&self) -> String {
        let encoded = STANDARD.encode(&self.pkcs8);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    /// The public JWKS a verifier is configured with.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.public),
        }]})
    }

    /// Signs `claims` as a compact JWT with this key's `kid`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .expect("Ed25519 signing of serialisable claims succeeds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_is_random_prefixed_and_hashed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with(API_KEY_PREFIX) && a.key.len() > 40);
        assert_eq!(a.sha256, api_key_sha256(&a.key));
        assert_eq!(a.sha256.len(), 64);
    }

    #[test]
    fn a_signing_key_survives_its_pem() {
        let key = SigningKey::generate("k1");
        let again = SigningKey::from_pem("k1", &key.to_pem()).unwrap();
        assert_eq!(again.jwks(), key.jwks());
        assert!(SigningKey::from_pem("k1", "-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err());
    }
}
