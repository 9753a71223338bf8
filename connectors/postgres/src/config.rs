//! The PostgreSQL recipient's configuration: the statement templates of its `settings` block and
//! the connection string named by `credentials.url`, validated at start-up with errors that name
//! the field.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hush_connector_kit::settings::Fields;
use hush_connector_kit::sql::rights::{RightSettings, Rights};
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use tokio_postgres::config::SslMode;

use crate::request::Postgres;

/// The connector kind this crate implements (`kind = "postgres"`).
pub const KIND: &str = "postgres";

/// Most work items one call carries. PostgreSQL has no batch limit of its own; each item runs in
/// its own transaction, so this only bounds how long one call holds the connection.
pub const MAX_BATCH: usize = 500;

/// `application_name` the connector gives its sessions when the connection string sets none,
/// so a DBA can find them in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "hush-connector-postgres";

/// The `[recipients.settings]` block of a PostgreSQL recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// The rights' tables: `[settings.opt_out]`, `[settings.limit]`, `[settings.delete]` and
    /// `[settings.opt_in]`, each required when the recipient's `request_kinds` include its right.
    #[serde(flatten)]
    pub rights: RightSettings,
    /// PEM file of the certificate authorities that sign the server's certificate, instead of
    /// the system's roots (libpq's `sslrootcert`).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

/// Everything the PostgreSQL connector needs, resolved and validated.
#[derive(Clone)]
pub struct PostgresConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// The connection, parsed from the connection string (its `Debug` hides the password).
    pub connection: tokio_postgres::Config,
    /// TLS for `sslmode=prefer`/`require`: the server's certificate is always verified.
    pub tls: rustls::ClientConfig,
    /// The recipient's `timeout_ms`: the server's `statement_timeout`, and the bound of one
    /// connection attempt.
    pub timeout: Duration,
    /// The SQL of each configured right.
    pub rights: Rights,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("recipient_id", &self.recipient_id)
            .field("connection", &self.connection)
            .field("timeout", &self.timeout)
            .field("rights", &self.rights)
            .finish_non_exhaustive()
    }
}

impl PostgresConfig {
    /// Reads and validates a `kind = "postgres"` recipient: the connection string from the
    /// environment variable `credentials.url` names, and every template of the settings block.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "PostgreSQL")?;
        let settings: PostgresSettings = recipient.settings()?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let timeout = Duration::from_millis(recipient.timeout_ms);

        let url = fields.credential("url")?;
        let mut connection: tokio_postgres::Config = url.expose().parse().map_err(|e| {
            fields.invalid(
                "credentials.url",
                format_args!(
                    "does not hold a PostgreSQL connection string: {}",
                    cause(&e)
                ),
            )
        })?;
        if connection.get_hosts().is_empty() {
            return Err(fields.invalid("credentials.url", "names no host"));
        }
        if connection.get_user().is_none() {
            return Err(fields.invalid("credentials.url", "names no user"));
        }
        if connection.get_application_name().is_none() {
            connection.application_name(APPLICATION_NAME);
        }
        if connection.get_connect_timeout().is_none() {
            connection.connect_timeout(timeout);
        }
        let tls = match (&settings.tls_ca_file, connection.get_ssl_mode()) {
            (Some(_), SslMode::Disable) => {
                return Err(fields.invalid(
                    "settings.tls_ca_file",
                    "is set, but credentials.url says sslmode=disable",
                ))
            }
            (Some(path), _) => tls_config(ca_roots(path, &fields)?, &fields)?,
            (None, SslMode::Disable) => tls_config(rustls::RootCertStore::empty(), &fields)?,
            (None, _) => tls_config(system_roots(&fields)?, &fields)?,
        };

        let rights = Rights::configure(
            &fields,
            &recipient.request_kinds,
            &Postgres,
            &settings.rights,
        )?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            connection,
            tls,
            timeout,
            rights,
        })
    }

    /// The database name, for evidence (the user's name when the string sets none, as
    /// PostgreSQL defaults it).
    pub fn database(&self) -> &str {
        self.connection
            .get_dbname()
            .or(self.connection.get_user())
            .unwrap_or_default()
    }
}

/// The cause of a connection-string parse error (its `Display` alone says only "invalid
/// connection string"); it names an option, never a value.
fn cause(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

fn ca_roots(path: &Path, fields: &Fields<'_>) -> Result<rustls::RootCertStore, ConfigError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        fields.invalid(
            "settings.tls_ca_file",
            format_args!(
                "cannot be read as PEM certificates ({}): {e}",
                path.display()
            ),
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        let certificate = certificate.map_err(|e| unreadable(&e))?;
        roots.add(certificate).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(fields.invalid(
            "settings.tls_ca_file",
            format_args!("holds no certificate ({})", path.display()),
        ));
    }
    Ok(roots)
}

fn system_roots(fields: &Fields<'_>) -> Result<rustls::RootCertStore, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        return Err(fields.invalid(
            "credentials.url",
            "asks for TLS (sslmode is prefer, the default, or require) but the system has no \
             root certificates: set settings.tls_ca_file, or sslmode=disable",
        ));
    }
    Ok(roots)
}

fn tls_config(
    roots: rustls::RootCertStore,
    fields: &Fields<'_>,
) -> Result<rustls::ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fields.invalid("settings.tls_ca_file", format_args!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;
    use hush_contracts::events::RequestKind;
    use hush_contracts::identifiers::sha256_hex;

    const URL_VAR: &str = "HUSH_POSTGRES_CONFIG_TEST_URL";
    const PASSWORD: &str = "s3cret-pw";

    fn recipient(extra: &str, settings: &str) -> RecipientConfig {
        static SET: std::sync::Once = std::sync::Once::new();
        SET.call_once(|| {
            std::env::set_var(
                URL_VAR,
                format!("postgres://hush:{PASSWORD}@db.internal:5432/crm?sslmode=disable"),
            )
        });
        toml::from_str(&format!(
            "id = \"db\"\nkind = \"postgres\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://unused\"\n\
             credentials = {{ url = \"{URL_VAR}\" }}\n{extra}\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    const ALL_THREE: &str = "
[settings.opt_out]
statement = \"UPDATE c SET dns = true WHERE e = :email_sha256\"
check = \"SELECT count(*) FROM c WHERE e = :email_sha256 AND NOT dns\"
[settings.limit]
statement = \"UPDATE c SET lim = true WHERE e = :email_sha256\"
[settings.delete]
statement = \"DELETE FROM c WHERE e = :email_sha256\"
";

    fn with_all_three(extra: &str) -> RecipientConfig {
        // The table headers must follow the top-level keys.
        let mut r = recipient(extra, "");
        let table: toml::Table = toml::from_str(ALL_THREE).unwrap();
        r.settings = table["settings"].as_table().unwrap().clone();
        r
    }

    #[test]
    fn a_complete_block_is_read_with_each_template_converted() {
        let config = PostgresConfig::from_recipient(&with_all_three("")).unwrap();
        let opt_out = config.rights.right(RequestKind::OptOutSaleShare).unwrap();
        assert_eq!(opt_out.statement.field, "settings.opt_out.statement");
        assert_eq!(
            opt_out.statement.template.sql,
            "UPDATE c SET dns = true WHERE e = $1"
        );
        assert_eq!(
            opt_out.statement.sha256,
            sha256_hex("UPDATE c SET dns = true WHERE e = :email_sha256")
        );
        assert_eq!(
            opt_out.check.as_ref().unwrap().field,
            "settings.opt_out.check"
        );
        assert!(config
            .rights
            .right(RequestKind::LimitSensitive)
            .unwrap()
            .check
            .is_none());
        assert!(config.rights.right(RequestKind::OptInSaleShare).is_none());
        assert_eq!(config.rights.templates().count(), 4);
        assert_eq!(config.database(), "crm");
        assert_eq!(
            config.connection.get_application_name(),
            Some(APPLICATION_NAME)
        );
        assert_eq!(
            config.connection.get_connect_timeout(),
            Some(&config.timeout)
        );
        assert!(!format!("{config:?}").contains(PASSWORD));
    }

    #[test]
    fn a_right_in_request_kinds_needs_its_statement() {
        assert_names_field(
            PostgresConfig::from_recipient(&recipient("", "")),
            "recipients.db.settings.opt_out.statement",
        );
        let mut r = with_all_three("request_kinds = [\"DELETE\", \"OPT_IN_SALE_SHARE\"]");
        r.settings.remove("opt_out");
        assert_names_field(
            PostgresConfig::from_recipient(&r),
            "recipients.db.settings.opt_in.statement",
        );
        r.request_kinds = vec![RequestKind::Delete];
        assert!(PostgresConfig::from_recipient(&r).is_ok());
    }

    #[test]
    fn a_bad_template_is_refused_naming_its_field_and_the_reason() {
        let mut r = with_all_three("");
        r.settings["delete"].as_table_mut().unwrap().insert(
            "check".into(),
            "SELECT count(*) FROM c WHERE e = :emial".into(),
        );
        let error = PostgresConfig::from_recipient(&r).unwrap_err().to_string();
        assert!(
            error.contains(
                "recipients.db.settings.delete.check uses the unknown placeholder `:emial`"
            ),
            "{error}"
        );
        r.settings["delete"]
            .as_table_mut()
            .unwrap()
            .insert("statement".into(), "DELETE FROM c".into());
        assert_names_field(
            PostgresConfig::from_recipient(&r),
            "recipients.db.settings.delete.statement",
        );
    }

    #[test]
    fn unknown_settings_are_refused() {
        let mut r = with_all_three("");
        r.settings.insert("table".into(), "customers".into());
        assert_names_field(PostgresConfig::from_recipient(&r), "recipients.db.settings");
    }

    #[test]
    fn a_missing_url_names_the_credential() {
        let mut r = with_all_three("");
        r.credentials.clear();
        assert_names_field(PostgresConfig::from_recipient(&r), "credentials.url");
    }

    #[test]
    fn a_ca_file_with_tls_disabled_is_refused() {
        let mut r = with_all_three("");
        r.settings
            .insert("tls_ca_file".into(), "/etc/ssl/certs/ca.pem".into());
        assert_names_field(
            PostgresConfig::from_recipient(&r),
            "recipients.db.settings.tls_ca_file",
        );
    }

    #[test]
    fn another_kind_is_refused() {
        let mut r = with_all_three("");
        r.kind = "hubspot".into();
        assert_names_field(PostgresConfig::from_recipient(&r), "recipients.db.kind");
    }
}
