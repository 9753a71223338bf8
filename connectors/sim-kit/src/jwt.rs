//! RS256 JSON Web Tokens as simulated vendors receive them (a service account's assertion at
//! Google's token endpoint, a Snowflake key-pair token): the three parts decoded and the
//! signature verified with the caller's public key. What the claims must say, and the words of
//! each refusal, stay with each vendor's simulator. [`RsaTestKey`] is the key pair a test
//! signs such tokens with and registers with the simulator.

use std::sync::OnceLock;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

/// A freshly generated RSA-2048 key pair, in the forms a test hands out: the private key as a
/// PKCS#8 PEM (what a Google key file's `private_key` or a Snowflake user's key holds) and the
/// public key as DER `SubjectPublicKeyInfo` (what a simulator verifies with).
#[derive(Debug, Clone)]
pub struct RsaTestKey {
    /// `-----BEGIN PRIVATE KEY-----`, base64 wrapped at 64 characters as OpenSSL writes it.
    pub pem: String,
    /// The public key, DER `SubjectPublicKeyInfo`.
    pub public_der: Vec<u8>,
}

impl RsaTestKey {
    /// A new key pair (generating one takes a moment: see [`RsaTestKey::shared`]).
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("an RSA-2048 key is generated");
        let der: Pkcs8V1Der<'static> = pair.as_der().expect("a generated key encodes as PKCS#8");
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let public_der = pair
            .public_key()
            .as_der()
            .expect("a generated public key encodes as DER")
            .as_ref()
            .to_vec();
        Self { pem, public_der }
    }

    /// One key pair for the whole test binary, generated on first use.
    pub fn shared() -> &'static Self {
        static KEY: OnceLock<RsaTestKey> = OnceLock::new();
        KEY.get_or_init(Self::generate)
    }
}

/// Why a token was refused before its claims were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtFault {
    /// It is not three dot-separated parts.
    NotThreeParts,
    /// A part is not base64url.
    Base64,
    /// The header is not JSON.
    Header,
    /// The header's `alg` is not `RS256`.
    Algorithm,
    /// The signature does not verify with the public key.
    Signature,
    /// The payload is not JSON.
    Payload,
}

/// The claims of `token` once it is a well-formed RS256 token whose signature verifies with
/// `public_key_der` (DER, PKCS#1 or `SubjectPublicKeyInfo`).
pub fn rs256_claims(token: &str, public_key_der: &[u8]) -> Result<Value, JwtFault> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(JwtFault::NotThreeParts);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtFault::Base64);
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|_| JwtFault::Header)?;
    if header["alg"] != "RS256" {
        return Err(JwtFault::Algorithm);
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode(signature)?,
        )
        .map_err(|_| JwtFault::Signature)?;
    serde_json::from_slice(&decode(payload)?).map_err(|_| JwtFault::Payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::RSA_PKCS1_SHA256;

    fn signed(key: &KeyPair, header: &str, claims: &str) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn the_test_keys_pem_holds_the_private_half_of_its_public_key() {
        let key = RsaTestKey::shared();
        let body: String = key
            .pem
            .strip_prefix("-----BEGIN PRIVATE KEY-----\n")
            .and_then(|rest| rest.strip_suffix("-----END PRIVATE KEY-----\n"))
            .expect("a PKCS#8 PEM block")
            .lines()
            .inspect(|line| assert!(line.len() <= 64, "wrapped at 64: {line}"))
            .collect();
        let pair = KeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
        assert_eq!(pair.public_key().as_der().unwrap().as_ref(), key.public_der);
        assert!(
            std::ptr::eq(key, RsaTestKey::shared()),
            "one key per binary"
        );
        assert_ne!(RsaTestKey::generate().public_der, key.public_der);
    }

    #[test]
    fn a_token_signed_by_the_key_gives_its_claims_and_others_say_why_not() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = key.public_key().as_ref().to_vec();
        let rs256 = r#"{"alg":"RS256","typ":"JWT"}"#;
        let token = signed(&key, rs256, r#"{"iss":"me"}"#);
        assert_eq!(rs256_claims(&token, &public).unwrap()["iss"], "me");

        let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let by_other = signed(&other, rs256, r#"{"iss":"me"}"#);
        assert_eq!(rs256_claims(&by_other, &public), Err(JwtFault::Signature));
        let hs256 = signed(&key, r#"{"alg":"HS256"}"#, "{}");
        assert_eq!(rs256_claims(&hs256, &public), Err(JwtFault::Algorithm));
        assert_eq!(rs256_claims("a.b", &public), Err(JwtFault::NotThreeParts));
        assert_eq!(rs256_claims("YQ.b.c", &public), Err(JwtFault::Header));
        assert_eq!(rs256_claims("*.b.c", &public), Err(JwtFault::Base64));
        let not_json = signed(&key, rs256, "not json");
        assert_eq!(rs256_claims(&not_json, &public), Err(JwtFault::Payload));
    }
}
