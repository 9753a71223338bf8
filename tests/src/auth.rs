//! Credentials of the test pipelines: one API key holding every scope (sent by the harness's
//! HTTP client), one key for the enrichment connector's deny-list reads, and an identity system
//! whose signed attestations verify deletions and opt-ins.

use std::path::PathBuf;
use std::sync::OnceLock;

use hush_auth::attestation::AttestationClaims;
use hush_auth::config::{ApiKeyConfig, AttestationConfig, KeySourceConfig};
use hush_auth::keys::{new_api_key, NewApiKey, SigningKey};
use hush_auth::{AuthConfig, Scope};
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::hash_identifier;

/// Issuer of the test identity system.
pub const ISSUER: &str = "https://id.hush-tests.example";
/// Environment variable holding the enrichment connector's deny-list key.
pub const DENYLIST_KEY_VAR: &str = "HUSH_IT_DENYLIST_API_KEY";

/// The test credentials, made once per process.
pub struct TestAuth {
    /// Key holding every scope (the harness sends it).
    pub operator: NewApiKey,
    /// Key holding only `denylist:check` (the enrichment connector sends it).
    pub denylist: NewApiKey,
    /// The identity system's signing key.
    pub identity: SigningKey,
    jwks: PathBuf,
}

/// The process's test credentials.
pub fn test_auth() -> &'static TestAuth {
    static AUTH: OnceLock<TestAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let identity = SigningKey::generate("hush-tests-idp");
        let jwks = std::env::temp_dir().join(format!(
            "hush-tests-idp-{}-{}.json",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&jwks, identity.jwks().to_string()).expect("JWKS written");
        let denylist = new_api_key();
        std::env::set_var(DENYLIST_KEY_VAR, &denylist.key);
        TestAuth {
            operator: new_api_key(),
            denylist,
            identity,
            jwks,
        }
    })
}

impl TestAuth {
    /// `[auth]` of every test service.
    pub fn config(&self) -> AuthConfig {
        AuthConfig {
            anonymous_scopes: vec![Scope::RequestsOptOut],
            api_keys: vec![
                ApiKeyConfig {
                    client: "integration-tests".into(),
                    sha256: self.operator.sha256.clone(),
                    scopes: Scope::ALL.to_vec(),
                },
                ApiKeyConfig {
                    client: "suppressor-enrichment".into(),
                    sha256: self.denylist.sha256.clone(),
                    scopes: vec![Scope::DenylistCheck],
                },
            ],
            jwt: None,
            attestation: Some(AttestationConfig {
                issuer: ISSUER.into(),
                audience: None,
                keys: KeySourceConfig {
                    jwks_file: Some(self.jwks.clone()),
                    jwks_url: None,
                    jwks_refresh_secs: 300,
                },
                leeway_secs: 60,
                max_age_secs: 24 * 3600,
                algorithms: vec![jsonwebtoken_eddsa()],
            }),
        }
    }

    /// `Authorization` value of the operator key.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.operator.key)
    }

    /// An attestation that the owner of `email` verified by `method` a minute ago.
    pub fn attest_email(&self, email: &str, method: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.identity.sign(&AttestationClaims {
            iss: ISSUER.into(),
            aud: None,
            exp: now + 600,
            iat: now,
            identifier_sha256: hash_identifier(IdentifierType::Email, email)
                .expect("a valid test email"),
            method: method.into(),
            verified_at: now - 60,
        })
    }
}

fn jsonwebtoken_eddsa() -> jsonwebtoken::Algorithm {
    jsonwebtoken::Algorithm::EdDSA
}

/// An HTTP client that sends the operator key on every request.
pub fn operator_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        test_auth().bearer().parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}
