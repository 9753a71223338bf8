//! The `postgres` resolver: a configured query against the business's customer database, run
//! in a read-only transaction (PostgreSQL itself refuses any write), its named parameters
//! (`:email`, `:customer_id_sha256`, …) turned into bound `$n` parameters, never text. Each
//! result column is an identifier of the type configured for it. One connection per resolver,
//! opened at first use (over TLS when the connection string asks, trusting the system's
//! certificate authorities and `tls_ca_file`); a lost or timed-out connection is dropped and
//! the next look-up opens a new one.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::RawValue;
use hush_contracts::events::IdentifierType;
use hush_contracts::redact::{redact, REDACTED};
use tokio::sync::Mutex;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PostgresSettings;
use crate::{
    type_name, values_of, Answer, Candidate, Lookup, LookupError, SubjectIdentifier,
    IDENTIFIER_TYPES,
};

/// Most executions of the query for one request (one per combination of parameter values).
const MAX_EXECUTIONS: usize = 8;

/// A named parameter of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parameter {
    kind: IdentifierType,
    /// `:<type>_sha256`: the hash rather than the raw value.
    hashed: bool,
}

impl Parameter {
    fn name(&self) -> String {
        if self.hashed {
            format!("{}_sha256", type_name(self.kind))
        } else {
            type_name(self.kind)
        }
    }
}

/// The query with its named parameters replaced by `$1…$n`, in order of first use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NamedQuery {
    text: String,
    parameters: Vec<Parameter>,
}

/// Replaces `:name` parameters outside string literals, quoted identifiers, comments and
/// dollar-quoted bodies (and leaves `::` casts alone). Errors name what is wrong.
fn bind_names(query: &str) -> Result<NamedQuery, String> {
    let chars: Vec<char> = query.chars().collect();
    let mut text = String::with_capacity(query.len());
    let mut parameters: Vec<Parameter> = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let next = chars.get(at + 1).copied();
        match c {
            '\'' | '"' => {
                let escapes = c == '\''
                    && at > 0
                    && matches!(chars[at - 1], 'e' | 'E')
                    && !chars
                        .get(at.wrapping_sub(2))
                        .is_some_and(|p| p.is_alphanumeric() || *p == '_');
                let end = quoted_end(&chars, at, c, escapes)
                    .ok_or_else(|| format!("unterminated {c}…{c} in the query"))?;
                text.extend(&chars[at..end]);
                at = end;
            }
            '-' if next == Some('-') => {
                let end = chars[at..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| at + p);
                text.extend(&chars[at..end]);
                at = end;
            }
            '/' if next == Some('*') => {
                let end = find(&chars, at + 2, &['*', '/'])
                    .map(|p| p + 2)
                    .ok_or("unterminated /* comment in the query")?;
                text.extend(&chars[at..end]);
                at = end;
            }
            '$' if next.is_some_and(|n| n == '$' || n.is_alphabetic() || n == '_') => {
                let tag_end = chars[at + 1..]
                    .iter()
                    .position(|&c| c == '$')
                    .map(|p| at + 1 + p);
                let tag_ok = tag_end.is_some_and(|end| {
                    chars[at + 1..end]
                        .iter()
                        .all(|c| c.is_alphanumeric() || *c == '_')
                });
                match tag_end {
                    Some(end) if tag_ok => {
                        let tag: Vec<char> = chars[at..=end].to_vec();
                        let close = find(&chars, end + 1, &tag)
                            .ok_or("unterminated dollar-quoted string in the query")?;
                        text.extend(&chars[at..close + tag.len()]);
                        at = close + tag.len();
                    }
                    _ => {
                        text.push(c);
                        at += 1;
                    }
                }
            }
            '$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                return Err(
                    "positional parameters ($1) are not accepted: name them, e.g. :email".into(),
                );
            }
            ':' if next == Some(':') => {
                text.push_str("::");
                at += 2;
            }
            ':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                let end = chars[at + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map_or(chars.len(), |p| at + 1 + p);
                let name: String = chars[at + 1..end].iter().collect();
                let parameter = parameter_named(&name.to_ascii_lowercase()).ok_or_else(|| {
                    format!(
                        "unknown parameter :{name}; use :<type> for a raw value or \
                         :<type>_sha256 for its hash, with <type> one of {}",
                        IDENTIFIER_TYPES
                            .iter()
                            .map(|k| type_name(*k))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let index = match parameters.iter().position(|p| *p == parameter) {
                    Some(index) => index,
                    None => {
                        parameters.push(parameter);
                        parameters.len() - 1
                    }
                };
                text.push_str(&format!("${}", index + 1));
                at = end;
            }
            _ => {
                text.push(c);
                at += 1;
            }
        }
    }
    if parameters.is_empty() {
        return Err("the query has no parameter: look the subject up by one, e.g. :email".into());
    }
    Ok(NamedQuery { text, parameters })
}

/// The end (exclusive) of the quoted run opened at `start` by `quote`; a doubled quote is an
/// escaped one, and so is a backslash-escaped one in an `E'…'` string.
fn quoted_end(chars: &[char], start: usize, quote: char, backslash: bool) -> Option<usize> {
    let mut at = start + 1;
    while at < chars.len() {
        if backslash && chars[at] == '\\' {
            at += 2;
            continue;
        }
        if chars[at] == quote {
            if chars.get(at + 1) == Some(&quote) {
                at += 2;
                continue;
            }
            return Some(at + 1);
        }
        at += 1;
    }
    None
}

/// The first position at or after `from` where `needle` starts.
fn find(chars: &[char], from: usize, needle: &[char]) -> Option<usize> {
    (from..chars.len()).find(|&at| chars[at..].starts_with(needle))
}

fn parameter_named(name: &str) -> Option<Parameter> {
    IDENTIFIER_TYPES.into_iter().find_map(|kind| {
        let base = type_name(kind);
        if name == base {
            Some(Parameter {
                kind,
                hashed: false,
            })
        } else if name == format!("{base}_sha256") {
            Some(Parameter { kind, hashed: true })
        } else {
            None
        }
    })
}

/// An open connection with the query prepared.
struct Session {
    client: Client,
    statement: Statement,
    /// Set while a look-up runs on it: found still set, the look-up was abandoned (timed out)
    /// mid-way and the connection is not trusted again.
    in_flight: bool,
}

/// A `postgres` resolver.
pub(crate) struct PostgresLookup {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    query: NamedQuery,
    columns: BTreeMap<String, IdentifierType>,
    max_rows: usize,
    session: Mutex<Option<Session>>,
}

impl PostgresLookup {
    /// Checks the query and columns, reads the connection string and loads the certificate
    /// authorities. Nothing is connected yet.
    pub(crate) fn new(
        id: &str,
        settings: &PostgresSettings,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let invalid = |field: &str, must: String| {
            ConfigError::Invalid(format!("resolver `{id}`: {field} {must}"))
        };
        let query = bind_names(&settings.query).map_err(|e| invalid("query:", e))?;
        if settings.columns.is_empty() {
            return Err(invalid(
                "columns",
                "must map each result column to an identifier type, e.g. { customer_id = \
                 \"CUSTOMER_ID\" }"
                    .into(),
            ));
        }
        if !(1..=100).contains(&settings.max_rows) {
            return Err(invalid("max_rows", "must be between 1 and 100".into()));
        }
        let setting = format!("resolvers.{id}.url_env");
        let url = settings.url_env.resolve(&setting)?;
        // The parser's messages name options, never their values (the password among them).
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            ConfigError::Invalid(format!(
                "resolver `{id}`: the connection string in {} is not valid: {e}",
                settings.url_env.0
            ))
        })?;
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("hush-identity-resolution");
        }
        let tls = tls_connector(id, settings)?;
        Ok(Self {
            config,
            tls,
            query,
            columns: settings.columns.clone(),
            max_rows: settings.max_rows as usize,
            session: Mutex::new(None),
        })
    }

    /// Connects and prepares the query: a column or parameter the resolver cannot use is a
    /// refusal naming it.
    async fn open(&self) -> Result<Session, LookupError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| unavailable_or_refused(&e, &[]))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "identity resolution database connection closed");
            }
        });
        let statement = client
            .prepare(&self.query.text)
            .await
            .map_err(|e| unavailable_or_refused(&e, &[]))?;
        for column in statement.columns() {
            if !self.columns.contains_key(column.name()) {
                return Err(LookupError::Refused(format!(
                    "the query returns column `{}`, which columns does not map to an \
                     identifier type",
                    column.name()
                )));
            }
            if !(<String as FromSql>::accepts(column.type_()) || is_integer(column.type_())) {
                return Err(LookupError::Refused(format!(
                    "column `{}` is of type {}; return text or an integer (cast it, e.g. \
                     {}::text)",
                    column.name(),
                    column.type_(),
                    column.name()
                )));
            }
        }
        if let Some(missing) = self
            .columns
            .keys()
            .find(|name| !statement.columns().iter().any(|c| c.name() == *name))
        {
            return Err(LookupError::Refused(format!(
                "columns names `{missing}`, which the query does not return"
            )));
        }
        for (parameter, ty) in self.query.parameters.iter().zip(statement.params()) {
            if !(<&str as ToSql>::accepts(ty) || is_integer(ty)) {
                return Err(LookupError::Refused(format!(
                    "parameter :{} is compared as {ty}; compare it as text (e.g. :{}::text)",
                    parameter.name(),
                    parameter.name()
                )));
            }
        }
        Ok(Session {
            client,
            statement,
            in_flight: false,
        })
    }

    /// Every combination of parameter values to run the query with (at most
    /// [`MAX_EXECUTIONS`]), or the parameter the subject has no value for.
    fn executions<'a>(
        &self,
        known: &'a [SubjectIdentifier],
    ) -> Result<(Vec<Vec<&'a str>>, bool), Parameter> {
        let mut executions: Vec<Vec<&str>> = vec![Vec::new()];
        let mut capped = false;
        for parameter in &self.query.parameters {
            let values = values_of(known, parameter.kind, !parameter.hashed);
            if values.is_empty() {
                return Err(*parameter);
            }
            let mut next = Vec::new();
            for execution in &executions {
                for value in &values {
                    if next.len() == MAX_EXECUTIONS {
                        capped = true;
                        break;
                    }
                    let mut execution = execution.clone();
                    execution.push(*value);
                    next.push(execution);
                }
            }
            executions = next;
        }
        Ok((executions, capped))
    }
}

#[async_trait]
impl Lookup for PostgresLookup {
    async fn lookup(&self, known: &[SubjectIdentifier]) -> Result<Answer, LookupError> {
        let (executions, capped) = match self.executions(known) {
            Ok(executions) => executions,
            Err(parameter) => {
                return Ok(Answer::NotApplicable(format!(
                    "the query needs :{}, and the request carries no {}{}",
                    parameter.name(),
                    if parameter.hashed { "" } else { "raw " },
                    parameter.kind.as_str()
                )))
            }
        };
        let mut slot = self.session.lock().await;
        if slot
            .as_ref()
            .is_some_and(|s| s.in_flight || s.client.is_closed())
        {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(self.open().await?);
        }
        let Some(session) = slot.as_mut() else {
            return Err(LookupError::unavailable("no database connection"));
        };
        session.in_flight = true;
        let bound: Vec<&str> = executions.iter().flatten().copied().collect();
        let rows = run(session, &executions).await;
        session.in_flight = false;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                if error.as_db_error().is_none() {
                    *slot = None;
                }
                return Err(unavailable_or_refused(&error, &bound));
            }
        };
        let mut candidates = Vec::new();
        let mut notes = Vec::new();
        if capped {
            notes.push(format!(
                "the query ran for the first {MAX_EXECUTIONS} combinations of parameter values"
            ));
        }
        if rows.len() > self.max_rows {
            notes.push(format!(
                "{} row(s) beyond max_rows ({}) left out",
                rows.len() - self.max_rows,
                self.max_rows
            ));
        }
        if rows.is_empty() {
            return Ok(Answer::Unknown);
        }
        for row in rows.iter().take(self.max_rows) {
            for (index, column) in row.columns().iter().enumerate() {
                let Some(kind) = self.columns.get(column.name()) else {
                    continue;
                };
                let value = if is_integer(column.type_()) {
                    integer(row, index).map(|v| v.map(|v| v.to_string()))
                } else {
                    row.try_get::<_, Option<String>>(index)
                };
                match value {
                    Ok(Some(value)) => candidates.push(Candidate::Raw(*kind, RawValue::new(value))),
                    Ok(None) => {}
                    Err(_) => {
                        return Err(LookupError::Refused(format!(
                            "column `{}` could not be read as {}",
                            column.name(),
                            column.type_()
                        )))
                    }
                }
            }
        }
        Ok(Answer::Found { candidates, notes })
    }
}

/// Runs the prepared query once per execution in one read-only transaction; every row.
async fn run(
    session: &mut Session,
    executions: &[Vec<&str>],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let statement = session.statement.clone();
    let transaction = session
        .client
        .build_transaction()
        .read_only(true)
        .start()
        .await?;
    let mut rows = Vec::new();
    'executions: for values in executions {
        let mut owned: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(values.len());
        for (value, ty) in values.iter().zip(statement.params()) {
            // A value an integer parameter cannot hold matches nothing: that execution is
            // left out.
            let param: Box<dyn ToSql + Sync + Send> = match *ty {
                Type::INT2 => match value.parse::<i16>() {
                    Ok(n) => Box::new(n),
                    Err(_) => continue 'executions,
                },
                Type::INT4 => match value.parse::<i32>() {
                    Ok(n) => Box::new(n),
                    Err(_) => continue 'executions,
                },
                Type::INT8 => match value.parse::<i64>() {
                    Ok(n) => Box::new(n),
                    Err(_) => continue 'executions,
                },
                _ => Box::new((*value).to_owned()),
            };
            owned.push(param);
        }
        let params: Vec<&(dyn ToSql + Sync)> = owned
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        rows.extend(transaction.query(&statement, &params).await?);
    }
    transaction.commit().await?;
    Ok(rows)
}

fn is_integer(ty: &Type) -> bool {
    matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
}

fn integer(row: &tokio_postgres::Row, index: usize) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(match *row.columns()[index].type_() {
        Type::INT2 => row.try_get::<_, Option<i16>>(index)?.map(i64::from),
        Type::INT4 => row.try_get::<_, Option<i32>>(index)?.map(i64::from),
        _ => row.try_get::<_, Option<i64>>(index)?,
    })
}

/// A database error is a refusal unless its class says the server is unavailable
/// (connection exceptions, shutdown, insufficient resources, a serialization failure); any
/// other failure (refused connection, time-out, closed connection) is worth another attempt.
/// The server's message is kept with every bound value removed.
fn unavailable_or_refused(error: &tokio_postgres::Error, bound: &[&str]) -> LookupError {
    let Some(db) = error.as_db_error() else {
        let detail = redact(&source_text(error), bound, REDACTED);
        return LookupError::unavailable(format!("database unreachable: {detail}"));
    };
    let code = db.code().code();
    let detail = redact(
        &format!("SQLSTATE {code}: {}", db.message()),
        bound,
        REDACTED,
    );
    if code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("53")
        || code == "40001"
    {
        LookupError::unavailable(detail)
    } else {
        LookupError::Refused(detail)
    }
}

/// The error's text with its causes (`tokio_postgres::Error` shows only its own kind).
fn source_text(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// TLS for `sslmode=require` (or `prefer`): the system's certificate authorities and
/// `tls_ca_file`.
fn tls_connector(id: &str, settings: &PostgresSettings) -> Result<MakeRustlsConnect, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is left out, as every TLS client does.
        let _ = roots.add(certificate);
    }
    if let Some(path) = &settings.tls_ca_file {
        let invalid = |why: String| {
            ConfigError::Invalid(format!(
                "resolver `{id}`: tls_ca_file {}: {why}",
                path.display()
            ))
        };
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| invalid(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certificates.is_empty() {
            return Err(invalid("holds no PEM certificate".into()));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| invalid(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid(format!("resolver `{id}`: TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(query: &str) -> Vec<String> {
        bind_names(query)
            .unwrap()
            .parameters
            .iter()
            .map(Parameter::name)
            .collect()
    }

    #[test]
    fn named_parameters_become_positional_ones_in_order_of_first_use() {
        let query = bind_names(
            "SELECT customer_id FROM customers WHERE email = :email OR email_hash = \
             :email_sha256 OR backup_email = :email",
        )
        .unwrap();
        assert_eq!(
            query.text,
            "SELECT customer_id FROM customers WHERE email = $1 OR email_hash = $2 OR \
             backup_email = $1"
        );
        assert_eq!(
            parameters("SELECT 1 WHERE :CUSTOMER_ID = x"),
            ["customer_id"]
        );
    }

    #[test]
    fn casts_literals_comments_and_dollar_quotes_are_left_alone() {
        let query = bind_names(
            "SELECT id::text AS customer_id -- :phone in a comment\n\
             FROM customers /* :maid */ WHERE note <> ':device_id' AND tag <> E'\\':x' \
             AND body <> $q$ :cookie_id $q$ AND \"odd:col\" = :email::citext",
        )
        .unwrap();
        assert_eq!(
            query.parameters,
            [Parameter {
                kind: IdentifierType::Email,
                hashed: false
            }]
        );
        assert!(
            query.text.ends_with("\"odd:col\" = $1::citext"),
            "{}",
            query.text
        );
        assert!(query.text.contains("':device_id'"));
        assert!(query.text.contains("$q$ :cookie_id $q$"));
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        let error = |query: &str| bind_names(query).unwrap_err();
        assert!(error("SELECT id FROM c WHERE email = :mail").contains("unknown parameter :mail"));
        assert!(error("SELECT id FROM c WHERE email = $1").contains("positional"));
        assert!(error("SELECT id FROM c").contains("no parameter"));
        assert!(error("SELECT id FROM c WHERE e = ':email").contains("unterminated"));
    }
}
