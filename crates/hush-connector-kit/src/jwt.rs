//! RS256 JSON Web Tokens a connector signs with its own private key (a Google service
//! account's assertion, a Snowflake key-pair token). What the claims say stays with each
//! connector.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// `header.claims.signature`, each part base64url without padding, signed RS256 (RSASSA
/// PKCS#1 v1.5 with SHA-256) with `key`. A signing failure is permanent and names `what`
/// (e.g. "the service-account JWT"), never the key.
pub fn rs256(
    key: &KeyPair,
    header: &Value,
    claims: &Value,
    what: &str,
) -> Result<String, ConnectorError> {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| ConnectorError::Permanent(format!("cannot sign {what}")))?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    use serde_json::json;

    #[test]
    fn the_token_carries_header_and_claims_and_verifies_with_the_public_key() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let claims = json!({"iss": "hush", "iat": 1});
        let token = rs256(&key, &header, &claims, "a test JWT").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).unwrap();
        assert_eq!(decode(parts[0]), br#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(
            serde_json::from_slice::<Value>(&decode(parts[1])).unwrap(),
            claims
        );
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &decode(parts[2]),
            )
            .expect("the signature verifies");
    }
}
