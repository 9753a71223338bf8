//! Verification you can check: a deletion or a consumer-initiated opt-in carries a JWT that the
//! business's identity system signed after verifying the consumer, naming one of the request's
//! identifiers by hash, the method and the time. A bare `{"method", "verified_at"}` claim is
//! not enough.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::AttestationConfig;
use crate::jwks::{KeySetError, TokenError, TokenVerifier};

/// The claims of an attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationClaims {
    /// The identity system (`[auth.attestation] issuer`).
    pub iss: String,
    /// Audience, when the identity system sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issue time (seconds since the epoch).
    pub iat: i64,
    /// Lowercase hex SHA-256 of the normalised identifier the consumer proved, as Hush hashes
    /// it (e.g. of `jane.doe@example.com`).
    pub identifier_sha256: String,
    /// How the consumer was verified, e.g. `EMAIL_LINK`.
    pub method: String,
    /// When (seconds since the epoch).
    pub verified_at: i64,
}

/// What an accepted attestation establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// Verification method (upper case).
    pub method: String,
    /// When verification succeeded (milliseconds since the epoch).
    pub verified_at_ms: i64,
    /// Who attests it.
    pub issuer: String,
}

/// Why an attestation was refused; the message is safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The signature or a standard claim failed.
    #[error("the verification attestation is not valid: {0}")]
    Token(TokenError),
    /// It names none of the request's identifiers.
    #[error("the verification attestation names none of the request's identifiers")]
    Subject,
    /// `method` is empty.
    #[error("the verification attestation names no method")]
    Method,
    /// `verified_at` is older than `max_age_secs`.
    #[error("the verification is older than {0} s; verify the consumer again")]
    Stale(u64),
    /// `verified_at` is in the future.
    #[error("the verification time is in the future")]
    Future,
}

/// Checks attestations against `[auth.attestation]`.
#[derive(Clone)]
pub struct AttestationVerifier {
    tokens: TokenVerifier,
    max_age_secs: u64,
    leeway_secs: u64,
}

impl std::fmt::Debug for AttestationVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationVerifier")
            .field("max_age_secs", &self.max_age_secs)
            .finish_non_exhaustive()
    }
}

impl AttestationVerifier {
    /// Loads the identity system's keys (refreshing a URL until `shutdown`).
    pub async fn new(
        config: &AttestationConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, KeySetError> {
        Ok(Self {
            tokens: TokenVerifier::load(
                &config.keys,
                &config.issuer,
                config.audience.as_deref(),
                config.leeway_secs,
                &config.algorithms,
                shutdown,
            )
            .await?,
            max_age_secs: config.max_age_secs,
            leeway_secs: config.leeway_secs,
        })
    }

    /// Verifies `token` for a request carrying `identifier_hashes`, received at
    /// `received_at_ms`.
    pub fn verify(
        &self,
        token: &str,
        identifier_hashes: &[&str],
        received_at_ms: i64,
    ) -> Result<Attested, AttestationError> {
        let claims: AttestationClaims =
            self.tokens.verify(token).map_err(AttestationError::Token)?;
        let named = claims.identifier_sha256.to_ascii_lowercase();
        if !identifier_hashes.iter().any(|hash| *hash == named) {
            return Err(AttestationError::Subject);
        }
        if claims.method.trim().is_empty() {
            return Err(AttestationError::Method);
        }
        let verified_at_ms = claims.verified_at.saturating_mul(1000);
        let leeway_ms = (self.leeway_secs as i64) * 1000;
        if verified_at_ms > received_at_ms + leeway_ms {
            return Err(AttestationError::Future);
        }
        if received_at_ms - verified_at_ms > (self.max_age_secs as i64) * 1000 + leeway_ms {
            return Err(AttestationError::Stale(self.max_age_secs));
        }
        Ok(Attested {
            method: claims.method.trim().to_ascii_uppercase(),
            verified_at_ms,
            issuer: claims.iss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySourceConfig;
    use crate::keys::SigningKey;

    const ISSUER: &str = "https://id.example.com";
    const JANE: &str = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514";

    async fn verifier(key: &SigningKey, dir: &std::path::Path) -> AttestationVerifier {
        let path = dir.join("jwks.json");
        std::fs::write(&path, key.jwks().to_string()).unwrap();
        let config = AttestationConfig {
            issuer: ISSUER.into(),
            audience: Some("hush".into()),
            keys: KeySourceConfig {
                jwks_file: Some(path),
                ..Default::default()
            },
            leeway_secs: 60,
            max_age_secs: 3600,
            algorithms: vec![jsonwebtoken::Algorithm::EdDSA],
        };
        AttestationVerifier::new(&config, CancellationToken::new())
            .await
            .unwrap()
    }

    fn claims(now: i64) -> AttestationClaims {
        AttestationClaims {
            iss: ISSUER.into(),
            aud: Some("hush".into()),
            exp: now + 600,
            iat: now,
            identifier_sha256: JANE.into(),
            method: "email_link".into(),
            verified_at: now - 30,
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hush-auth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_signed_attestation_for_the_requests_identifier_is_accepted() {
        let key = SigningKey::generate("idp-1");
        let verifier = verifier(&key, &temp_dir("ok")).await;
        let now = chrono_now();
        let attested = verifier
            .verify(&key.sign(&claims(now)), &[JANE], now * 1000)
            .unwrap();
        assert_eq!(attested.method, "EMAIL_LINK");
        assert_eq!(attested.verified_at_ms, (now - 30) * 1000);
        assert_eq!(attested.issuer, ISSUER);
    }

    #[tokio::test]
    async fn forged_misdirected_expired_or_stale_attestations_are_refused() {
        let key = SigningKey::generate("idp-1");
        let verifier = verifier(&key, &temp_dir("bad")).await;
        let now = chrono_now();
        let forger = SigningKey::generate("idp-1");
        assert!(matches!(
            verifier.verify(&forger.sign(&claims(now)), &[JANE], now * 1000),
            Err(AttestationError::Token(TokenError::Signature))
        ));
        assert_eq!(
            verifier.verify(
                &key.sign(&claims(now)),
                &["00".repeat(32).as_str()],
                now * 1000
            ),
            Err(AttestationError::Subject)
        );
        let mut expired = claims(now);
        expired.exp = now - 3600;
        assert_eq!(
            verifier.verify(&key.sign(&expired), &[JANE], now * 1000),
            Err(AttestationError::Token(TokenError::Expired))
        );
        let mut elsewhere = claims(now);
        elsewhere.aud = Some("someone-else".into());
        assert_eq!(
            verifier.verify(&key.sign(&elsewhere), &[JANE], now * 1000),
            Err(AttestationError::Token(TokenError::Audience))
        );
        let mut stale = claims(now);
        stale.verified_at = now - 7200;
        assert_eq!(
            verifier.verify(&key.sign(&stale), &[JANE], now * 1000),
            Err(AttestationError::Stale(3600))
        );
        assert_eq!(
            verifier.verify("not-a-jwt", &[JANE], now * 1000),
            Err(AttestationError::Token(TokenError::Malformed))
        );
    }

    fn chrono_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}
