//! The `[auth]` and `[http]` sections of the configuration file.

use std::path::PathBuf;

use hush_runtime::config::ConfigError;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use crate::scope::Scope;

/// `[auth]`: who may call intake, the auditor and the deny-list. With no API key and no JWT
/// issuer configured every authenticated endpoint answers 401: Hush fails closed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Scopes a caller without credentials gets (a consumer's browser posting the opt-out form
    /// or a GPC signal). Only `requests:opt_out` is allowed here.
    pub anonymous_scopes: Vec<Scope>,
    /// API keys, by hash. List two entries for one client to rotate its key.
    pub api_keys: Vec<ApiKeyConfig>,
    /// OIDC/JWT bearer tokens from an identity provider.
    pub jwt: Option<JwtConfig>,
    /// The identity system whose signed attestations verify a deletion or an opt-in.
    pub attestation: Option<AttestationConfig>,
}

/// `[[auth.api_keys]]`: one key of one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Client name, recorded as the actor of what the key does.
    pub client: String,
    /// Lowercase hex SHA-256 of the key (`hush keys api-key` prints both); the key itself is
    /// never stored.
    pub sha256: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

/// `[auth.jwt]`: bearer tokens signed by an OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Where the signing keys come from.
    #[serde(flatten)]
    pub keys: KeySourceConfig,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Claim holding the scopes: a space-separated string (OAuth `scope`) or an array.
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
    /// Claim naming the client (recorded as the actor).
    #[serde(default = "default_client_claim")]
    pub client_claim: String,
    /// Signature algorithms accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
}

/// `[auth.attestation]`: the identity system that verifies consumers before a deletion or an
/// opt-in, and signs a JWT saying so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`, when the identity system sets one.
    pub audience: Option<String>,
    /// Where its signing keys come from.
    #[serde(flatten)]
    pub keys: KeySourceConfig,
    /// Clock skew tolerated, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Oldest `verified_at` accepted, relative to receipt, in seconds.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Signature algorithms accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
}

/// Where a set of signing keys (a JWKS) comes from: exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySourceConfig {
    /// HTTPS URL of the JWKS (fetched at start-up and every `jwks_refresh_secs`).
    pub jwks_url: Option<String>,
    /// A JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// Refresh period of `jwks_url`, in seconds.
    #[serde(default = "default_refresh_secs")]
    pub jwks_refresh_secs: u64,
}

/// `[http]`: limits every Hush HTTP server applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Longest a request may take before the answer is 503 `request_timeout`, in milliseconds.
    pub request_timeout_ms: u64,
    /// Sustained requests per second from one IP address.
    pub per_ip_per_second: u32,
    /// Burst from one IP address.
    pub per_ip_burst: u32,
    /// Sustained requests per second of one authenticated client.
    pub per_client_per_second: u32,
    /// Burst of one authenticated client.
    pub per_client_burst: u32,
    /// Take the client IP from `X-Forwarded-For`/`Forwarded` (set only behind a trusted ingress).
    pub trust_forwarded_for: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 10_000,
            per_ip_per_second: 20,
            per_ip_burst: 100,
            per_client_per_second: 500,
            per_client_burst: 2_000,
            trust_forwarded_for: false,
        }
    }
}

fn default_leeway_secs() -> u64 {
    60
}
fn default_scope_claim() -> String {
    "scope".into()
}
fn default_client_claim() -> String {
    "sub".into()
}
fn default_max_age_secs() -> u64 {
    24 * 3600
}
fn default_refresh_secs() -> u64 {
    300
}
fn default_algorithms() -> Vec<Algorithm> {
    vec![
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ]
}

impl AuthConfig {
    /// Checks every field; the error names the one at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (index, scope) in self.anonymous_scopes.iter().enumerate() {
            if !scope.may_be_anonymous() {
                return Err(ConfigError::Invalid(format!(
                    "auth.anonymous_scopes[{index}]: `{scope}` cannot be granted anonymously; only \
                     `requests:opt_out` can (a deletion or an opt-in needs an authenticated caller)"
                )));
            }
        }
        for (index, key) in self.api_keys.iter().enumerate() {
            if key.client.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "auth.api_keys[{index}].client: name the client"
                )));
            }
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid(format!(
                    "auth.api_keys[{index}].sha256: give the 64-character hex SHA-256 of the key \
                     (`hush keys api-key` prints it), never the key itself"
                )));
            }
            if key.scopes.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "auth.api_keys[{index}].scopes: give at least one scope"
                )));
            }
        }
        if let Some(jwt) = &self.jwt {
            non_empty(&jwt.issuer, "auth.jwt.issuer")?;
            non_empty(&jwt.audience, "auth.jwt.audience")?;
            jwt.keys.validate("auth.jwt")?;
            if jwt.algorithms.is_empty() {
                return Err(ConfigError::Invalid(
                    "auth.jwt.algorithms: give at least one algorithm".into(),
                ));
            }
        }
        if let Some(attestation) = &self.attestation {
            non_empty(&attestation.issuer, "auth.attestation.issuer")?;
            attestation.keys.validate("auth.attestation")?;
            if attestation.max_age_secs == 0 {
                return Err(ConfigError::Invalid(
                    "auth.attestation.max_age_secs: must be positive".into(),
                ));
            }
        }
        Ok(())
    }
}

impl KeySourceConfig {
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        match (&self.jwks_url, &self.jwks_file) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
                "{section}: give jwks_url or jwks_file, not both"
            ))),
            (None, None) => Err(ConfigError::Invalid(format!(
                "{section}.jwks_url: give the JWKS URL (or jwks_file)"
            ))),
            (Some(url), None) if !url.starts_with("https://") && !is_loopback(url) => {
                Err(ConfigError::Invalid(format!(
                    "{section}.jwks_url: must be https:// (plain http only on loopback)"
                )))
            }
            _ => Ok(()),
        }
    }
}

fn is_loopback(url: &str) -> bool {
    url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost")
}

fn non_empty(value: &str, field: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::Invalid(format!("{field}: must not be empty")))
    } else {
        Ok(())
    }
}

impl HttpConfig {
    /// Checks every field; the error names the one at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (value, field) in [
            (self.request_timeout_ms, "http.request_timeout_ms"),
            (u64::from(self.per_ip_per_second), "http.per_ip_per_second"),
            (u64::from(self.per_ip_burst), "http.per_ip_burst"),
            (
                u64::from(self.per_client_per_second),
                "http.per_client_per_second",
            ),
            (u64::from(self.per_client_burst), "http.per_client_burst"),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{field}: must be positive")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AuthConfig {
        toml::from_str::<toml::Table>(text).unwrap()["auth"]
            .clone()
            .try_into()
            .unwrap()
    }

    #[test]
    fn a_delete_scope_cannot_be_granted_anonymously() {
        let config =
            parse("[auth]\nanonymous_scopes = [\"requests:opt_out\", \"requests:delete\"]");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("auth.anonymous_scopes[1]"), "{err}");
    }

    #[test]
    fn a_plaintext_key_in_place_of_its_hash_is_refused() {
        let config = parse(
            "[[auth.api_keys]]\nclient = \"portal\"\nsha256 = \"hush_sk_secret\"\nscopes = [\"requests:opt_out\"]",
        );
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("auth.api_keys[0].sha256"), "{err}");
    }

    #[test]
    fn a_jwt_issuer_needs_exactly_one_key_source() {
        let none = parse("[auth.jwt]\nissuer = \"https://id\"\naudience = \"hush\"");
        assert!(none
            .validate()
            .unwrap_err()
            .to_string()
            .contains("auth.jwt.jwks_url"));
        let both = parse(
            "[auth.jwt]\nissuer = \"https://id\"\naudience = \"hush\"\njwks_url = \"https://id/jwks\"\njwks_file = \"/x\"",
        );
        assert!(both
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not both"));
        let plain = parse(
            "[auth.jwt]\nissuer = \"https://id\"\naudience = \"hush\"\njwks_url = \"http://id.example/jwks\"",
        );
        assert!(plain
            .validate()
            .unwrap_err()
            .to_string()
            .contains("https://"));
    }

    #[test]
    fn an_unknown_scope_is_a_parse_error() {
        let text = "[auth]\nanonymous_scopes = [\"requests:everything\"]";
        let table = toml::from_str::<toml::Table>(text).unwrap();
        let result: Result<AuthConfig, _> = table["auth"].clone().try_into();
        assert!(result.is_err());
    }
}
