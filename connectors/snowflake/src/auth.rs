//! How the connector proves who it is to the SQL API: a key-pair JWT it signs itself
//! (`X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT`), or a bearer token the business
//! provides (an OAuth access token, or a programmatic access token).
//!
//! The JWT follows Snowflake's key-pair authentication: RS256, issuer
//! `ACCOUNT.USER.SHA256:<fingerprint>`, subject `ACCOUNT.USER`, at most an hour long, the
//! fingerprint being the base64 SHA-256 of the public key's DER (`SubjectPublicKeyInfo`), the
//! value `DESCRIBE USER` shows as `RSA_PUBLIC_KEY_FP`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hush_connector_kit::jwt;
use hush_connector_kit::secret::Secret;
use hush_contracts::connector::ConnectorError;
use sha2::{Digest, Sha256};

/// `X-Snowflake-Authorization-Token-Type` of a key-pair JWT.
pub const KEYPAIR_JWT: &str = "KEYPAIR_JWT";
/// `X-Snowflake-Authorization-Token-Type` of an OAuth access token.
pub const OAUTH: &str = "OAUTH";
/// `X-Snowflake-Authorization-Token-Type` of a programmatic access token.
pub const PROGRAMMATIC_ACCESS_TOKEN: &str = "PROGRAMMATIC_ACCESS_TOKEN";

/// Lifetime of a JWT the connector signs (Snowflake accepts at most one hour).
pub const JWT_LIFETIME: Duration = Duration::from_secs(59 * 60);
/// A JWT is signed anew this long before it expires.
const JWT_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// Why a private key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not PEM at all.
    #[error("does not hold a PEM private key (-----BEGIN PRIVATE KEY----- …)")]
    NotPem,
    /// An encrypted PKCS#8 key.
    #[error("holds an encrypted private key; decrypt it first (openssl pkcs8 -topk8 -nocrypt) and keep it in the secret store")]
    Encrypted,
    /// PEM of another kind, or a key that is not RSA.
    #[error("holds a `{0}` PEM block; Snowflake key-pair authentication needs an RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)")]
    WrongKind(String),
    /// The DER inside does not parse as an RSA key.
    #[error("holds a private key that does not parse as an RSA key: {0}")]
    Rejected(String),
}

/// An RSA private key and the fingerprint of its public key.
pub struct SigningKey {
    key_pair: KeyPair,
    fingerprint: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM private key (PKCS#8 or PKCS#1, unencrypted). An environment variable that
    /// holds the PEM on one line with `\n` escapes is accepted too.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pem = pem.replace("\\n", "\n");
        let (label, der) = pem_block(&pem).ok_or(KeyError::NotPem)?;
        let key_pair = match label.as_str() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => KeyPair::from_der(&der),
            "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
            other => return Err(KeyError::WrongKind(other.to_owned())),
        }
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let public = key_pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Rejected("its public key cannot be encoded".into()))?;
        let fingerprint = format!(
            "SHA256:{}",
            STANDARD.encode(Sha256::digest(public.as_ref()))
        );
        Ok(Self {
            key_pair,
            fingerprint,
        })
    }

    /// `SHA256:<base64>`, as `DESCRIBE USER` shows it in `RSA_PUBLIC_KEY_FP`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A JWT for `account` and `user` (both already in Snowflake's upper case) valid from
    /// `issued_at` for [`JWT_LIFETIME`].
    pub fn jwt(&self, account: &str, user: &str, issued_at: u64) -> Result<String, ConnectorError> {
        let subject = format!("{account}.{user}");
        let claims = serde_json::json!({
            "iss": format!("{subject}.{}", self.fingerprint),
            "sub": subject,
            "iat": issued_at,
            "exp": issued_at + JWT_LIFETIME.as_secs(),
        });
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        jwt::rs256(&self.key_pair, &header, &claims, "the key-pair JWT")
    }
}

/// The label and decoded body of the first PEM block of `text`.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body: String = rest[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok().map(|der| (label, der))
}

/// The account identifier as the JWT names it: upper case, without the region of an account
/// locator (`xy12345.us-east-1` → `XY12345`).
pub fn jwt_account(account: &str) -> String {
    account
        .split('.')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase()
}

/// How every SQL API call is authorised.
#[derive(Debug)]
pub enum Authorization {
    /// A JWT signed with the user's private key, cached until shortly before it expires.
    KeyPair {
        /// Account identifier, upper case, without region.
        account: String,
        /// User name, upper case.
        user: String,
        /// The private key.
        key: SigningKey,
        /// The current JWT and when it expires (seconds since the epoch).
        cached: Mutex<Option<(String, u64)>>,
    },
    /// A bearer token given by the business, with its token type.
    Token {
        /// The token.
        token: Secret,
        /// `OAUTH` or `PROGRAMMATIC_ACCESS_TOKEN`.
        token_type: &'static str,
    },
}

impl Authorization {
    /// The bearer token and `X-Snowflake-Authorization-Token-Type` of the next call.
    pub fn bearer(&self) -> Result<(String, &'static str), ConnectorError> {
        match self {
            Authorization::Token { token, token_type } => {
                Ok((token.expose().to_owned(), token_type))
            }
            Authorization::KeyPair {
                account,
                user,
                key,
                cached,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut cached = cached.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((jwt, expires)) = cached.as_ref() {
                    if now + JWT_RENEW_BEFORE.as_secs() < *expires {
                        return Ok((jwt.clone(), KEYPAIR_JWT));
                    }
                }
                let jwt = key.jwt(account, user, now)?;
                *cached = Some((jwt.clone(), now + JWT_LIFETIME.as_secs()));
                Ok((jwt, KEYPAIR_JWT))
            }
        }
    }

    /// Forgets a cached JWT (Snowflake refused it), so the next call signs a new one.
    pub fn forget(&self) {
        if let Authorization::KeyPair { cached, .. } = self {
            cached.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::Pkcs8V1Der;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn pem_of(key: &KeyPair) -> String {
        let der: Pkcs8V1Der<'static> = key.as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn the_jwt_names_account_user_and_fingerprint_and_verifies_with_the_public_key() {
        let generated = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = SigningKey::from_pem(&pem_of(&generated)).unwrap();
        let public = generated.public_key().as_der().unwrap();
        let expected_fp = format!(
            "SHA256:{}",
            STANDARD.encode(Sha256::digest(public.as_ref()))
        );
        assert_eq!(key.fingerprint(), expected_fp);

        let jwt = key.jwt("MYORG-MYACCOUNT", "HUSH", 1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], format!("MYORG-MYACCOUNT.HUSH.{expected_fp}"));
        assert_eq!(claims["sub"], "MYORG-MYACCOUNT.HUSH");
        assert_eq!(claims["exp"], 1_800_000_000u64 + 59 * 60);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public.as_ref())
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies");
    }

    #[test]
    fn a_one_line_pem_with_escaped_newlines_is_accepted() {
        let generated = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let one_line = pem_of(&generated).replace('\n', "\\n");
        assert!(SigningKey::from_pem(&one_line).is_ok());
    }

    #[test]
    fn keys_snowflake_cannot_use_are_refused_with_the_reason() {
        assert_eq!(
            SigningKey::from_pem("not a key").unwrap_err(),
            KeyError::NotPem
        );
        assert_eq!(
            SigningKey::from_pem(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
            )
            .unwrap_err(),
            KeyError::Encrypted
        );
        assert_eq!(
            SigningKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .unwrap_err(),
            KeyError::WrongKind("CERTIFICATE".into())
        );
        assert!(matches!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            Err(KeyError::Rejected(_))
        ));
    }

    #[test]
    fn the_jwt_account_drops_the_locators_region() {
        assert_eq!(jwt_account("xy12345.us-east-1"), "XY12345");
        assert_eq!(jwt_account("myorg-myaccount"), "MYORG-MYACCOUNT");
    }

    #[test]
    fn a_cached_jwt_is_reused_until_forgotten() {
        let generated = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let auth = Authorization::KeyPair {
            account: "A".into(),
            user: "U".into(),
            key: SigningKey::from_pem(&pem_of(&generated)).unwrap(),
            cached: Mutex::new(Some(("cached-jwt".into(), u64::MAX))),
        };
        assert_eq!(auth.bearer().unwrap(), ("cached-jwt".into(), KEYPAIR_JWT));
        auth.forget();
        let (fresh, kind) = auth.bearer().unwrap();
        assert_ne!(fresh, "cached-jwt");
        assert_eq!(kind, KEYPAIR_JWT);
    }
}
