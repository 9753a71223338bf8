//! The Snowflake recipient's configuration: the statement templates of its `settings` block,
//! where they run (warehouse, database, schema, role), how long to wait for them, and the
//! credential named in `credentials` (a private key for key-pair authentication, or a bearer
//! token), validated at start-up with errors that name the field.

use std::sync::Mutex;
use std::time::Duration;

use hush_connector_kit::poll::{DefaultWaits, JobWaits};
use hush_connector_kit::settings::Fields;
use hush_connector_kit::sql::jobs::RunSettings;
use hush_connector_kit::sql::rights::RightSettings;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

use crate::auth::{self, Authorization, SigningKey};
use crate::request::{Snowflake, StatementContext};

/// The connector kind this crate implements (`kind = "snowflake"`).
pub const KIND: &str = "snowflake";

/// Most work items one call carries. The SQL API has no batch form; every run of a statement
/// is its own request, so this only bounds how long one call takes.
pub const MAX_BATCH: usize = 100;

/// Host suffix of Snowflake accounts; the account identifier is the first label before it.
const SNOWFLAKE_HOST: &str = ".snowflakecomputing.com";

/// Default wait between two reads of a running statement, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 500;
/// Default longest wait for running statements inside one call, in milliseconds; a statement
/// still running then is confirmed `PENDING` with its handle and read back later.
pub const DEFAULT_MAX_WAIT_MS: u64 = 30_000;
/// Default `timeout` of a statement, in seconds, after which Snowflake cancels it.
pub const DEFAULT_STATEMENT_TIMEOUT_S: u64 = 300;

/// The `[recipients.settings]` block of a Snowflake recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnowflakeSettings {
    /// Account identifier for key-pair authentication (`myorg-myaccount`, or an account
    /// locator); by default the first label of `base_url`'s `*.snowflakecomputing.com` host.
    #[serde(default)]
    pub account: Option<String>,
    /// Snowflake user the key pair belongs to; required with `credentials.private_key`.
    #[serde(default)]
    pub user: Option<String>,
    /// With `credentials.token`: `OAUTH` or `PROGRAMMATIC_ACCESS_TOKEN` (the default).
    #[serde(default)]
    pub token_type: Option<String>,
    /// Warehouse the statements run on (else the user's `DEFAULT_WAREHOUSE`).
    #[serde(default)]
    pub warehouse: Option<String>,
    /// Database (else the user's default namespace).
    #[serde(default)]
    pub database: Option<String>,
    /// Schema (else the user's default namespace).
    #[serde(default)]
    pub schema: Option<String>,
    /// Role (else the user's `DEFAULT_ROLE`).
    #[serde(default)]
    pub role: Option<String>,
    /// Seconds before Snowflake cancels a statement (`timeout`; 0 is Snowflake's maximum).
    #[serde(default = "default_statement_timeout_s")]
    pub statement_timeout_s: u64,
    /// `poll_interval_ms` and `max_wait_ms`: how long to wait for running runs.
    #[serde(flatten)]
    pub waits: JobWaits,
    /// The rights' tables: `[settings.opt_out]`, `[settings.limit]`, `[settings.delete]` and
    /// `[settings.opt_in]`, each required when the recipient's `request_kinds` include its right.
    #[serde(flatten)]
    pub rights: RightSettings,
}

fn default_statement_timeout_s() -> u64 {
    DEFAULT_STATEMENT_TIMEOUT_S
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// Everything the Snowflake connector needs, resolved and validated.
#[derive(Debug)]
pub struct SnowflakeConfig {
    /// The account URL (`https://<account>.snowflakecomputing.com`), without a trailing slash.
    pub base_url: String,
    /// How calls are authorised.
    pub authorization: Authorization,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// Where statements run and their `timeout`.
    pub context: StatementContext,
    /// The recipient id (`connector_id` in confirmations), the SQL of each configured right,
    /// and how long to wait for running runs.
    pub runs: RunSettings,
}

impl SnowflakeConfig {
    /// Reads and validates a `kind = "snowflake"` recipient, with the credential from the
    /// environment variable `credentials.private_key` or `credentials.token` names.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "Snowflake")?;
        let settings: SnowflakeSettings = recipient.settings()?;
        let has = |name: &str| recipient.credentials.contains_key(name);
        let authorization = match (has("private_key"), has("token")) {
            (true, true) => {
                return Err(fields.invalid(
                    "credentials",
                    "names both private_key and token; keep one (private_key for key-pair \
                     authentication, token for an OAuth or programmatic access token)",
                ))
            }
            (false, false) => {
                return Err(fields.invalid(
                    "credentials",
                    "needs private_key (key-pair authentication) or token (an OAuth or \
                     programmatic access token): the name of an environment variable",
                ))
            }
            (true, false) => {
                let pem = fields.credential("private_key")?;
                let key = SigningKey::from_pem(pem.expose())
                    .map_err(|e| fields.invalid("credentials.private_key", e))?;
                key_pair(recipient, &settings, key)?
            }
            (false, true) => {
                let token = fields.credential("token")?;
                token_authorization(recipient, &settings, token)?
            }
        };
        Self::with_authorization(recipient, settings, authorization)
    }

    /// Validates the recipient's settings with an authorization obtained by the caller.
    pub fn with_authorization(
        recipient: &RecipientConfig,
        settings: SnowflakeSettings,
        authorization: Authorization,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.http_url("base_url", &recipient.base_url)?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let name = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
            Some("") => Err(fields.invalid(
                &format!("settings.{field}"),
                "is empty; leave it out for the user's default",
            )),
            other => Ok(other.map(str::to_owned)),
        };
        let context = StatementContext {
            timeout_seconds: settings.statement_timeout_s,
            warehouse: name("warehouse", &settings.warehouse)?,
            database: name("database", &settings.database)?,
            schema: name("schema", &settings.schema)?,
            role: name("role", &settings.role)?,
        };
        let runs = RunSettings::configure(
            recipient,
            &Snowflake,
            &settings.rights,
            &settings.waits,
            DEFAULT_WAITS,
        )?;
        Ok(Self {
            base_url: fields.base_url(),
            authorization,
            timeout: fields.timeout(),
            context,
            runs,
        })
    }

    /// The account host, for evidence (`myorg-myaccount.snowflakecomputing.com`).
    pub fn host(&self) -> &str {
        let host = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, rest)| rest);
        host.split('/').next().unwrap_or(host)
    }
}

/// Key-pair authorization: the account (from the settings or `base_url`) and user, upper case.
pub fn key_pair(
    recipient: &RecipientConfig,
    settings: &SnowflakeSettings,
    key: SigningKey,
) -> Result<Authorization, ConfigError> {
    let fields = Fields::of(recipient);
    if settings.token_type.is_some() {
        return Err(fields.invalid(
            "settings.token_type",
            "applies only to credentials.token; key-pair authentication always sends KEYPAIR_JWT",
        ));
    }
    let account = match settings.account.as_deref().map(str::trim) {
        Some(account) if !account.is_empty() => auth::jwt_account(account),
        Some(_) => return Err(fields.invalid("settings.account", "is empty")),
        None => account_of(&recipient.base_url).ok_or_else(|| {
            fields.invalid(
                "settings.account",
                "is required: base_url is not an https://<account>.snowflakecomputing.com URL, \
                 so the account identifier for the key-pair JWT cannot be taken from it",
            )
        })?,
    };
    let user = match settings.user.as_deref().map(str::trim) {
        Some(user) if !user.is_empty() => user.to_ascii_uppercase(),
        _ => {
            return Err(fields.invalid(
                "settings.user",
                "is required with credentials.private_key: the Snowflake user the public key \
                 is assigned to",
            ))
        }
    };
    Ok(Authorization::KeyPair {
        account,
        user,
        key,
        cached: Mutex::new(None),
    })
}

/// Bearer-token authorization with the configured token type.
pub fn token_authorization(
    recipient: &RecipientConfig,
    settings: &SnowflakeSettings,
    token: hush_connector_kit::secret::Secret,
) -> Result<Authorization, ConfigError> {
    let fields = Fields::of(recipient);
    fields.not_blank("credentials.token", &token)?;
    if settings.user.is_some() || settings.account.is_some() {
        return Err(fields.invalid(
            "settings.user",
            "and settings.account apply only to key-pair authentication (credentials.private_key)",
        ));
    }
    let token_type = match settings.token_type.as_deref() {
        None | Some(auth::PROGRAMMATIC_ACCESS_TOKEN) => auth::PROGRAMMATIC_ACCESS_TOKEN,
        Some(auth::OAUTH) => auth::OAUTH,
        Some(other) => {
            return Err(fields.invalid(
                "settings.token_type",
                format_args!("is `{other}`; use OAUTH or PROGRAMMATIC_ACCESS_TOKEN"),
            ))
        }
    };
    Ok(Authorization::Token { token, token_type })
}

/// The account identifier of a `https://<account>.snowflakecomputing.com` URL, upper case,
/// without region or privatelink labels.
fn account_of(base_url: &str) -> Option<String> {
    let host = base_url.split_once("://")?.1.split(['/', ':']).next()?;
    let host = host.to_ascii_lowercase();
    host.strip_suffix(SNOWFLAKE_HOST)?;
    host.split('.')
        .next()
        .filter(|a| !a.is_empty())
        .map(str::to_ascii_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;
    use hush_contracts::events::RequestKind;

    fn recipient(base_url: &str, settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"wh\"\nkind = \"snowflake\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"{base_url}\"\n\
             request_kinds = [\"DELETE\"]\n[settings]\n{settings}\n[settings.delete]\n\
             statement = \"DELETE FROM c WHERE e = :email_sha256\"\n\
             check = \"SELECT COUNT(*) FROM c WHERE e = :email_sha256\"\n"
        ))
        .unwrap()
    }

    fn token(r: &RecipientConfig) -> Result<SnowflakeConfig, ConfigError> {
        let settings: SnowflakeSettings = r.settings()?;
        let authorization = token_authorization(r, &settings, "pat-value".into())?;
        SnowflakeConfig::with_authorization(r, settings, authorization)
    }

    #[test]
    fn a_token_recipient_reads_its_context_and_defaults() {
        let r = recipient(
            "https://myorg-myaccount.snowflakecomputing.com/",
            "warehouse = \"PRIVACY_WH\"\nrole = \"HUSH\"",
        );
        let config = token(&r).unwrap();
        assert_eq!(
            config.base_url,
            "https://myorg-myaccount.snowflakecomputing.com"
        );
        assert_eq!(config.host(), "myorg-myaccount.snowflakecomputing.com");
        assert_eq!(config.context.warehouse.as_deref(), Some("PRIVACY_WH"));
        assert_eq!(config.context.timeout_seconds, DEFAULT_STATEMENT_TIMEOUT_S);
        assert_eq!(
            config.runs.max_wait,
            Duration::from_millis(DEFAULT_MAX_WAIT_MS)
        );
        assert!(config
            .runs
            .rights
            .right(RequestKind::Delete)
            .unwrap()
            .check
            .is_some());
        assert!(config
            .runs
            .rights
            .right(RequestKind::OptOutSaleShare)
            .is_none());
        assert!(matches!(
            config.authorization,
            Authorization::Token {
                token_type: auth::PROGRAMMATIC_ACCESS_TOKEN,
                ..
            }
        ));
        assert!(!format!("{config:?}").contains("pat-value"));
    }

    #[test]
    fn the_account_comes_from_the_host_unless_configured() {
        assert_eq!(
            account_of("https://xy12345.us-east-1.snowflakecomputing.com"),
            Some("XY12345".into())
        );
        assert_eq!(
            account_of("https://MyOrg-MyAccount.privatelink.snowflakecomputing.com:443/x"),
            Some("MYORG-MYACCOUNT".into())
        );
        assert_eq!(account_of("http://127.0.0.1:9000"), None);
    }

    #[test]
    fn errors_name_the_field() {
        let r = recipient(
            "https://a.snowflakecomputing.com",
            "token_type = \"PASSWORD\"",
        );
        assert_names_field(token(&r), "recipients.wh.settings.token_type");
        let r = recipient("https://a.snowflakecomputing.com", "warehouse = \" \"");
        assert_names_field(token(&r), "recipients.wh.settings.warehouse");
        let r = recipient("https://a.snowflakecomputing.com", "user = \"HUSH\"");
        assert_names_field(token(&r), "recipients.wh.settings.user");
        let r = recipient("https://a.snowflakecomputing.com", "poll_interval_ms = 0");
        assert_names_field(token(&r), "recipients.wh.settings.poll_interval_ms");
        let r = recipient("https://a.snowflakecomputing.com", "table = \"customers\"");
        assert_names_field(token(&r), "recipients.wh.settings");
        let mut r = recipient("https://a.snowflakecomputing.com", "");
        r.request_kinds.push(RequestKind::OptOutSaleShare);
        assert_names_field(token(&r), "recipients.wh.settings.opt_out.statement");
        let mut r = recipient("https://a.snowflakecomputing.com", "");
        r.settings["delete"]
            .as_table_mut()
            .unwrap()
            .insert("statement".into(), "DELETE FROM c WHERE e = ?".into());
        assert_names_field(token(&r), "recipients.wh.settings.delete.statement");
    }

    #[test]
    fn credentials_must_name_exactly_one_way_to_authenticate() {
        let mut r = recipient("https://a.snowflakecomputing.com", "");
        assert_names_field(
            SnowflakeConfig::from_recipient(&r),
            "recipients.wh.credentials",
        );
        let both: toml::Table = toml::from_str(
            "private_key = \"HUSH_SF_TEST_UNSET_KEY\"\ntoken = \"HUSH_SF_TEST_UNSET_TOKEN\"",
        )
        .unwrap();
        r.credentials = both.try_into().unwrap();
        assert_names_field(
            SnowflakeConfig::from_recipient(&r),
            "recipients.wh.credentials",
        );
    }
}
