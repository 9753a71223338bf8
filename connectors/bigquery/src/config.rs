//! The BigQuery recipient's configuration: the statement templates of its `settings` block,
//! the project (and optionally location and default dataset) they run in, how long to wait for
//! them, and the credentials named in `credentials` (a service-account key, or an OAuth client's
//! refresh token), validated at start-up with errors that name the field.

use std::time::Duration;

use hush_connector_kit::oauth::{AccessTokens, RefreshTokenGrant};
use hush_connector_kit::poll::{DefaultWaits, JobWaits};
use hush_connector_kit::settings::Fields;
use hush_connector_kit::sql::jobs::RunSettings;
use hush_connector_kit::sql::rights::RightSettings;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

use crate::auth::{ServiceAccountKey, ServiceAccountTokens, TokenSource};
use crate::request::{BigQuery, QueryContext};

/// The connector kind this crate implements (`kind = "bigquery"`).
pub const KIND: &str = "bigquery";
/// The BigQuery API's host.
pub const DEFAULT_BASE_URL: &str = "https://bigquery.googleapis.com";
/// Google's OAuth 2.0 token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Most work items one call carries. `jobs.query` runs one query a request, so this only bounds
/// how long one call takes.
pub const MAX_BATCH: usize = 100;
/// Default wait between two reads of a running query job, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
/// Default longest wait for running jobs inside one call, in milliseconds; a job still running
/// then is confirmed `PENDING` with its id and read back later.
pub const DEFAULT_MAX_WAIT_MS: u64 = 30_000;
/// Longest `timeoutMs` asked of BigQuery in one call (its own default is 10 s).
const MAX_SERVER_WAIT_MS: u64 = 10_000;

/// The `[recipients.settings]` block of a BigQuery recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQuerySettings {
    /// Project the query jobs run in (and are billed to).
    pub project_id: String,
    /// Location of the datasets (`US`, `EU`, `europe-west3`, …); needed outside `US`/`EU`
    /// multi-regions for BigQuery to find the job.
    #[serde(default)]
    pub location: Option<String>,
    /// Dataset of unqualified table names (`defaultDataset`), in `project_id`.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Token endpoint (the refresh-token grant; a service-account key's own `token_uri`
    /// otherwise).
    #[serde(default)]
    pub token_url: Option<String>,
    /// `poll_interval_ms` and `max_wait_ms`: how long to wait for running runs.
    #[serde(flatten)]
    pub waits: JobWaits,
    /// The rights' tables: `[settings.opt_out]`, `[settings.limit]`, `[settings.delete]` and
    /// `[settings.opt_in]`, each required when the recipient's `request_kinds` include its right.
    #[serde(flatten)]
    pub rights: RightSettings,
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// Everything the BigQuery connector needs, resolved and validated.
#[derive(Debug)]
pub struct BigQueryConfig {
    /// API host without a trailing slash.
    pub base_url: String,
    /// Project the jobs run in.
    pub project_id: String,
    /// Where access tokens come from.
    pub tokens: TokenSource,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// Location, default dataset and BigQuery's wait per call.
    pub context: QueryContext,
    /// The recipient id (`connector_id` in confirmations), the SQL of each configured right,
    /// and how long to wait for running runs.
    pub runs: RunSettings,
}

impl BigQueryConfig {
    /// Reads and validates a `kind = "bigquery"` recipient, with the credentials from the
    /// environment variables `credentials` names: `service_account_key`, or `client_id`,
    /// `client_secret` and `refresh_token`.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "BigQuery")?;
        let settings: BigQuerySettings = recipient.settings()?;
        let has = |name: &str| recipient.credentials.contains_key(name);
        let oauth = ["client_id", "client_secret", "refresh_token"];
        let tokens = match (has("service_account_key"), oauth.iter().any(|n| has(n))) {
            (true, true) => {
                return Err(fields.invalid(
                    "credentials",
                    "names both service_account_key and an OAuth client (client_id, \
                     client_secret, refresh_token); keep one",
                ))
            }
            (false, false) => {
                return Err(fields.invalid(
                    "credentials",
                    "needs service_account_key (a service-account key file's JSON), or \
                     client_id, client_secret and refresh_token: names of environment variables",
                ))
            }
            (true, false) => {
                let json = fields.credential("service_account_key")?;
                let key = ServiceAccountKey::from_json(json.expose())
                    .map_err(|e| fields.invalid("credentials.service_account_key", e))?;
                let token_url = settings
                    .token_url
                    .clone()
                    .unwrap_or_else(|| key.token_uri.clone());
                fields.http_url("settings.token_url", &token_url)?;
                TokenSource::ServiceAccount(ServiceAccountTokens::new(key, token_url))
            }
            (false, true) => {
                let token_url = settings
                    .token_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned());
                fields.http_url("settings.token_url", &token_url)?;
                TokenSource::RefreshToken(AccessTokens::new(RefreshTokenGrant {
                    token_url,
                    client_id: recipient.credential("client_id")?,
                    client_secret: fields.credential("client_secret")?,
                    refresh_token: fields.credential("refresh_token")?,
                }))
            }
        };
        Self::with_tokens(recipient, settings, tokens)
    }

    /// Validates the recipient's settings with a token source obtained by the caller.
    pub fn with_tokens(
        recipient: &RecipientConfig,
        settings: BigQuerySettings,
        tokens: TokenSource,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.http_url("base_url", &recipient.base_url)?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let project_id = settings.project_id.trim().to_owned();
        if project_id.is_empty()
            || !project_id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:.".contains(c))
        {
            return Err(fields.invalid(
                "settings.project_id",
                "must be a Google Cloud project id (lowercase letters, digits and hyphens)",
            ));
        }
        let optional = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
            Some("") => Err(fields.invalid(&format!("settings.{field}"), "is empty; leave it out")),
            other => Ok(other.map(str::to_owned)),
        };
        let location = optional("location", &settings.location)?;
        let dataset = optional("dataset", &settings.dataset)?;
        // BigQuery holds the call up to `timeoutMs`: keep it well inside the HTTP timeout.
        let wait_ms = (recipient.timeout_ms / 2).min(MAX_SERVER_WAIT_MS);
        let runs = RunSettings::configure(
            recipient,
            &BigQuery,
            &settings.rights,
            &settings.waits,
            DEFAULT_WAITS,
        )?;
        Ok(Self {
            base_url: fields.base_url(),
            context: QueryContext {
                location,
                default_dataset: dataset.map(|d| (project_id.clone(), d)),
                wait_ms,
            },
            project_id,
            tokens,
            timeout: fields.timeout(),
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;
    use hush_contracts::config::SecretRef;
    use hush_contracts::events::RequestKind;

    fn recipient(settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"bq\"\nkind = \"bigquery\"\nrole = \"SERVICE_PROVIDER\"\n\
             base_url = \"https://bigquery.googleapis.com/\"\nrequest_kinds = [\"DELETE\"]\n\
             [settings]\n{settings}\n[settings.delete]\n\
             statement = \"DELETE FROM crm.customers WHERE email_sha256 = :email_sha256\"\n"
        ))
        .unwrap()
    }

    fn refresh_tokens() -> TokenSource {
        TokenSource::RefreshToken(AccessTokens::new(RefreshTokenGrant {
            token_url: DEFAULT_TOKEN_URL.into(),
            client_id: "id".into(),
            client_secret: "client-secret-value".into(),
            refresh_token: "refresh-token-value".into(),
        }))
    }

    fn config(settings: &str) -> Result<BigQueryConfig, ConfigError> {
        let r = recipient(settings);
        BigQueryConfig::with_tokens(&r, r.settings()?, refresh_tokens())
    }

    #[test]
    fn a_recipient_reads_project_location_and_dataset() {
        let c = config("project_id = \"acme-prod\"\nlocation = \"EU\"\ndataset = \"crm\"").unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.project_id, "acme-prod");
        assert_eq!(c.context.location.as_deref(), Some("EU"));
        assert_eq!(
            c.context.default_dataset,
            Some(("acme-prod".into(), "crm".into()))
        );
        assert_eq!(c.context.wait_ms, 5_000);
        assert_eq!(c.runs.max_wait, Duration::from_millis(DEFAULT_MAX_WAIT_MS));
        assert!(c.runs.rights.right(RequestKind::Delete).is_some());
        let debug = format!("{c:?}");
        assert!(!debug.contains("refresh-token-value") && !debug.contains("client-secret-value"));
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(config(""), "recipients.bq.settings");
        assert_names_field(
            config("project_id = \"Acme Prod\""),
            "recipients.bq.settings.project_id",
        );
        assert_names_field(
            config("project_id = \"acme\"\nlocation = \"\""),
            "recipients.bq.settings.location",
        );
        assert_names_field(
            config("project_id = \"acme\"\npoll_interval_ms = 0"),
            "recipients.bq.settings.poll_interval_ms",
        );
        assert_names_field(
            config("project_id = \"acme\"\nuse_legacy_sql = true"),
            "recipients.bq.settings",
        );
        let mut r = recipient("project_id = \"acme\"");
        r.request_kinds.push(RequestKind::LimitSensitive);
        assert_names_field(
            BigQueryConfig::with_tokens(&r, r.settings().unwrap(), refresh_tokens()),
            "recipients.bq.settings.limit.statement",
        );
        let mut r = recipient("project_id = \"acme\"");
        r.settings["delete"]
            .as_table_mut()
            .unwrap()
            .insert("statement".into(), "DELETE FROM t WHERE e = @email".into());
        assert_names_field(
            BigQueryConfig::with_tokens(&r, r.settings().unwrap(), refresh_tokens()),
            "recipients.bq.settings.delete.statement",
        );
    }

    #[test]
    fn credentials_must_name_one_way_to_get_tokens() {
        let mut r = recipient("project_id = \"acme\"");
        assert_names_field(
            BigQueryConfig::from_recipient(&r),
            "recipients.bq.credentials",
        );
        r.credentials.insert(
            "service_account_key".into(),
            SecretRef("HUSH_BQ_TEST_UNSET_KEY".into()),
        );
        r.credentials.insert(
            "refresh_token".into(),
            SecretRef("HUSH_BQ_TEST_UNSET_TOKEN".into()),
        );
        assert_names_field(
            BigQueryConfig::from_recipient(&r),
            "recipients.bq.credentials",
        );
    }
}
