//! The `[[resolvers]]` configuration: one entry per resolver, run in the order listed. Every
//! entry has an `id`, a `kind` (`http`, `segment_profiles` or `postgres`), the bounds of its
//! retries, and the settings of its kind; credentials are named by environment variable, never
//! written in the file. Errors name the resolver and the setting at fault.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hush_contracts::config::SecretRef;
use hush_contracts::events::IdentifierType;
use serde::{Deserialize, Serialize};

/// Default bound of one call to a resolver's system, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// Default number of calls before a resolver that is down is skipped.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default first wait between two calls, in milliseconds (doubled after each failure).
pub const DEFAULT_BACKOFF_MS: u64 = 200;
/// Default longest wait between two calls, in milliseconds.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 2_000;
/// Segment's Profile API (its EU workspaces use `https://profiles.euw1.segment.com`).
pub const SEGMENT_PROFILES_URL: &str = "https://profiles.segment.com";

/// One `[[resolvers]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ResolverEntry", into = "ResolverEntry")]
pub struct ResolverConfig {
    /// Name recorded in each request's provenance and in metrics, e.g. `customer-db`.
    pub id: String,
    /// Bound of one call, in milliseconds.
    pub timeout_ms: u64,
    /// Calls made before a resolver that is down is skipped (at least 1).
    pub max_attempts: u32,
    /// First wait between two calls, in milliseconds; doubled after each failure.
    pub backoff_ms: u64,
    /// Longest wait between two calls, in milliseconds (a `Retry-After` is capped by it).
    pub max_backoff_ms: u64,
    /// What the resolver asks, and how.
    pub source: ResolverSource,
}

/// The system a resolver asks.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolverSource {
    /// `kind = "http"`: the business's own customer service.
    Http(HttpSettings),
    /// `kind = "segment_profiles"`: Segment's Profile API.
    SegmentProfiles(SegmentProfilesSettings),
    /// `kind = "postgres"`: a read-only query against the business's customer database.
    Postgres(PostgresSettings),
}

impl ResolverSource {
    /// The `kind` of the entry.
    pub fn kind(&self) -> &'static str {
        match self {
            ResolverSource::Http(_) => "http",
            ResolverSource::SegmentProfiles(_) => "segment_profiles",
            ResolverSource::Postgres(_) => "postgres",
        }
    }
}

/// Settings of an `http` resolver: `GET url` with the identifier's hash filled in, answered
/// with `{"identifiers": [{"type": "CUSTOMER_ID", "value": "…"}, {"type": "MAID", "sha256":
/// "…"}]}`, or 404 for a subject the service does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// URL template with exactly one placeholder `{<type>_sha256}`, e.g.
    /// `https://customers.internal/lookup?email_sha256={email_sha256}`: only hashes travel in
    /// the URL, so no raw identifier reaches the service's access logs.
    pub url: String,
    /// Environment variable holding the bearer token sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub token_env: Option<SecretRef>,
}

/// Settings of a `segment_profiles` resolver: finds the subject's Segment profile by one of
/// its external ids and adds the profile's other external ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentProfilesSettings {
    /// Profile API base URL.
    #[serde(default = "segment_profiles_url")]
    pub base_url: String,
    /// The Unify space id (Unify settings → API access).
    pub space_id: String,
    /// Environment variable holding the space's access token (sent as the Basic-auth user
    /// name with an empty password, as Segment documents).
    pub token_env: SecretRef,
    /// Segment external id types the profile is looked up by, in order, e.g. `["email"]`; each
    /// must be a key of `external_ids`, whose identifier type supplies the value.
    #[serde(default = "segment_lookup_by")]
    pub lookup_by: Vec<String>,
    /// Segment external id type → the identifier type it becomes, e.g. `user_id =
    /// "CUSTOMER_ID"`. External ids of other types are not added.
    #[serde(default = "segment_external_ids")]
    pub external_ids: BTreeMap<String, IdentifierType>,
    /// Pages of external ids read per profile (100 a page).
    #[serde(default = "segment_max_pages")]
    pub max_pages: u32,
}

/// Settings of a `postgres` resolver: a query with named parameters, run in a read-only
/// transaction, whose result columns are identifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// Environment variable holding the connection string, e.g.
    /// `postgres://hush_resolver:…@db.internal/customers?sslmode=require`.
    pub url_env: SecretRef,
    /// The query. Parameters are named `:<type>` for the raw value (`:email`, `:phone`,
    /// `:customer_id`, `:device_id`, `:cookie_id`, `:maid`) or `:<type>_sha256` for its hash,
    /// and are always bound, never written into the text.
    pub query: String,
    /// Result column → the identifier type it holds, e.g. `customer_id = "CUSTOMER_ID"`. Every
    /// column the query returns must be listed.
    pub columns: BTreeMap<String, IdentifierType>,
    /// PEM file of a certificate authority to trust besides the system's (a private CA).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Most rows taken from one look-up; more are left out and the step says so.
    #[serde(default = "postgres_max_rows")]
    pub max_rows: u32,
}

fn segment_profiles_url() -> String {
    SEGMENT_PROFILES_URL.to_owned()
}

fn segment_lookup_by() -> Vec<String> {
    vec!["email".to_owned()]
}

fn segment_external_ids() -> BTreeMap<String, IdentifierType> {
    BTreeMap::from([
        ("user_id".to_owned(), IdentifierType::CustomerId),
        ("email".to_owned(), IdentifierType::Email),
        ("anonymous_id".to_owned(), IdentifierType::CookieId),
    ])
}

fn segment_max_pages() -> u32 {
    3
}

fn postgres_max_rows() -> u32 {
    16
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

fn default_backoff_ms() -> u64 {
    DEFAULT_BACKOFF_MS
}

fn default_max_backoff_ms() -> u64 {
    DEFAULT_MAX_BACKOFF_MS
}

/// The entry as written: the common fields, and the kind's settings left for a second pass so
/// that each kind refuses fields it does not know.
#[derive(Serialize, Deserialize)]
struct ResolverEntry {
    id: String,
    kind: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_backoff_ms")]
    backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    max_backoff_ms: u64,
    #[serde(flatten)]
    settings: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<ResolverEntry> for ResolverConfig {
    type Error = String;

    fn try_from(entry: ResolverEntry) -> Result<Self, String> {
        let id = entry.id;
        let settings = serde_json::Value::Object(entry.settings);
        let invalid = |error: serde_json::Error| format!("resolver `{id}`: {error}");
        let source = match entry.kind.as_str() {
            "http" => ResolverSource::Http(serde_json::from_value(settings).map_err(invalid)?),
            "segment_profiles" => {
                ResolverSource::SegmentProfiles(serde_json::from_value(settings).map_err(invalid)?)
            }
            "postgres" => {
                ResolverSource::Postgres(serde_json::from_value(settings).map_err(invalid)?)
            }
            other => {
                return Err(format!(
                "resolver `{id}`: unknown kind `{other}`; use http, segment_profiles or postgres"
            ))
            }
        };
        Ok(ResolverConfig {
            id,
            timeout_ms: entry.timeout_ms,
            max_attempts: entry.max_attempts,
            backoff_ms: entry.backoff_ms,
            max_backoff_ms: entry.max_backoff_ms,
            source,
        })
    }
}

impl From<ResolverConfig> for ResolverEntry {
    fn from(config: ResolverConfig) -> Self {
        let kind = config.source.kind().to_owned();
        let settings = match config.source {
            ResolverSource::Http(settings) => serde_json::to_value(settings),
            ResolverSource::SegmentProfiles(settings) => serde_json::to_value(settings),
            ResolverSource::Postgres(settings) => serde_json::to_value(settings),
        };
        let settings = match settings {
            Ok(serde_json::Value::Object(map)) => map,
            // Every settings type is a struct of plain fields, which serialises to an object.
            _ => serde_json::Map::new(),
        };
        ResolverEntry {
            id: config.id,
            kind,
            timeout_ms: config.timeout_ms,
            max_attempts: config.max_attempts,
            backoff_ms: config.backoff_ms,
            max_backoff_ms: config.max_backoff_ms,
            settings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<ResolverConfig>, String> {
        #[derive(Deserialize)]
        struct File {
            resolvers: Vec<ResolverConfig>,
        }
        toml::from_str::<File>(text)
            .map(|file| file.resolvers)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_kind_reads_its_settings_and_the_common_bounds_default() {
        let resolvers = parse(
            r#"
            [[resolvers]]
            id = "customer-db"
            kind = "postgres"
            url_env = "HUSH_CUSTOMER_DB_URL"
            query = "SELECT customer_id FROM customers WHERE email = :email"
            columns = { customer_id = "CUSTOMER_ID" }

            [[resolvers]]
            id = "segment"
            kind = "segment_profiles"
            space_id = "spa_9aQ1"
            token_env = "HUSH_SEGMENT_PROFILES_TOKEN"
            max_attempts = 5

            [[resolvers]]
            id = "crm"
            kind = "http"
            url = "https://customers.internal/lookup?email_sha256={email_sha256}"
            token_env = "HUSH_CRM_TOKEN"
            timeout_ms = 500
            "#,
        )
        .unwrap();
        assert_eq!(resolvers.len(), 3);
        let ResolverSource::Postgres(postgres) = &resolvers[0].source else {
            panic!("{:?}", resolvers[0])
        };
        assert_eq!(postgres.columns["customer_id"], IdentifierType::CustomerId);
        assert_eq!(postgres.max_rows, 16);
        assert_eq!(
            (resolvers[0].timeout_ms, resolvers[0].max_attempts),
            (DEFAULT_TIMEOUT_MS, DEFAULT_MAX_ATTEMPTS)
        );
        let ResolverSource::SegmentProfiles(segment) = &resolvers[1].source else {
            panic!("{:?}", resolvers[1])
        };
        assert_eq!(segment.base_url, SEGMENT_PROFILES_URL);
        assert_eq!(segment.lookup_by, ["email"]);
        assert_eq!(segment.external_ids["user_id"], IdentifierType::CustomerId);
        assert_eq!(resolvers[1].max_attempts, 5);
        assert_eq!(resolvers[2].source.kind(), "http");
        assert_eq!(resolvers[2].timeout_ms, 500);
    }

    #[test]
    fn a_setting_of_another_kind_is_refused_with_the_resolver_named() {
        let error = parse(
            r#"
            [[resolvers]]
            id = "crm"
            kind = "http"
            url = "https://customers.internal/lookup?email_sha256={email_sha256}"
            query = "SELECT 1"
            "#,
        )
        .unwrap_err();
        assert!(error.contains("resolver `crm`"), "{error}");
        assert!(error.contains("unknown field `query`"), "{error}");
    }

    #[test]
    fn an_unknown_kind_is_refused_with_the_known_ones() {
        let error = parse(
            r#"
            [[resolvers]]
            id = "ldap"
            kind = "ldap"
            "#,
        )
        .unwrap_err();
        assert!(error.contains("unknown kind `ldap`"), "{error}");
        assert!(error.contains("segment_profiles"), "{error}");
    }

    #[test]
    fn a_missing_setting_is_named() {
        let error = parse(
            r#"
            [[resolvers]]
            id = "customer-db"
            kind = "postgres"
            url_env = "HUSH_CUSTOMER_DB_URL"
            columns = { customer_id = "CUSTOMER_ID" }
            "#,
        )
        .unwrap_err();
        assert!(error.contains("missing field `query`"), "{error}");
    }

    #[test]
    fn the_configuration_serialises_back_to_what_was_read() {
        let resolvers = parse(
            r#"
            [[resolvers]]
            id = "segment"
            kind = "segment_profiles"
            space_id = "spa_9aQ1"
            token_env = "HUSH_SEGMENT_PROFILES_TOKEN"
            external_ids = { user_id = "CUSTOMER_ID", "ios.idfa" = "MAID" }
            "#,
        )
        .unwrap();
        let json = serde_json::to_value(&resolvers[0]).unwrap();
        assert_eq!(json["kind"], "segment_profiles");
        assert_eq!(json["external_ids"]["ios.idfa"], "MAID");
        let back: ResolverConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, resolvers[0]);
    }
}
