//! The demo's PostgreSQL recipient: not a simulator but a schema on a REAL PostgreSQL server
//! (`deploy/local/postgres up`), holding a `customers` table seeded with the demo consumers, and
//! the statement templates the `postgres` connector runs against it.

use std::path::Path;
use std::process::Command;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

use crate::{SimulatorsError, DEMO_CONSUMERS};

/// Environment variable holding the demo database's connection string: the simulators read it
/// to create the demo schema, and the generated `postgres` recipient names it in
/// `credentials.url`.
pub const POSTGRES_URL_VAR: &str = "HUSH_DEMO_POSTGRES_URL";
/// Schema `make demo` keeps its `customers` table in (dropped and re-created at each start).
pub const DEMO_SCHEMA: &str = "hush_demo";

/// Where the demo's `postgres` recipient keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPostgres {
    /// Connection string of a PostgreSQL server whose user may create a schema (the value of
    /// [`POSTGRES_URL_VAR`]); plaintext or `sslmode=prefer`, as the local server on loopback.
    pub url: String,
    /// Schema of the demo `customers` table: a lowercase SQL identifier. Whatever it holds is
    /// dropped at start.
    pub schema: String,
}

/// One row of the demo `customers` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCustomerRow {
    /// Set by an opt-out of sale/sharing.
    pub do_not_sell: bool,
    /// Set by a limit of sensitive personal information.
    pub limit_sensitive: bool,
    /// Request id of the opt-out that set `do_not_sell`.
    pub do_not_sell_request: Option<String>,
}

/// The demo schema on the real server, seeded, with a session to inspect it.
pub struct DemoDatabase {
    client: Client,
    schema: String,
    url: String,
    base_url: String,
}

impl DemoDatabase {
    /// Connects, drops `postgres.schema` if it exists, and creates it with a `customers` table
    /// holding every demo consumer (customer id, email, SHA-256 of the email).
    pub async fn create(postgres: &DemoPostgres) -> Result<Self, SimulatorsError> {
        let schema = &postgres.schema;
        let valid = schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(SimulatorsError::PostgresSchema(schema.clone()));
        }
        let config: tokio_postgres::Config =
            postgres
                .url
                .parse()
                .map_err(|source| SimulatorsError::Postgres {
                    doing: "parsing the connection string",
                    source,
                })?;
        let base_url = match (config.get_hosts().first(), config.get_ports().first()) {
            (Some(Host::Tcp(host)), port) => format!("http://{host}:{}", port.unwrap_or(&5432)),
            _ => return Err(SimulatorsError::PostgresHost),
        };
        let (client, connection) =
            config
                .connect(NoTls)
                .await
                .map_err(|source| SimulatorsError::Postgres {
                    doing: "connecting",
                    source,
                })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!("the demo database session ended: {error}");
            }
        });
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE;
                 CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.customers (
                     customer_id text PRIMARY KEY,
                     email text NOT NULL,
                     email_sha256 text NOT NULL,
                     do_not_sell boolean NOT NULL DEFAULT false,
                     limit_sensitive boolean NOT NULL DEFAULT false,
                     do_not_sell_request text);"
            ))
            .await
            .map_err(|source| SimulatorsError::Postgres {
                doing: "creating the demo schema",
                source,
            })?;
        for consumer in DEMO_CONSUMERS {
            let hash = consumer.email_sha256();
            client
                .execute(
                    &format!(
                        "INSERT INTO {schema}.customers (customer_id, email, email_sha256) \
                         VALUES ($1, $2, $3)"
                    ),
                    &[&consumer.customer_id, &consumer.email, &hash],
                )
                .await
                .map_err(|source| SimulatorsError::Postgres {
                    doing: "seeding the demo customers",
                    source,
                })?;
        }
        Ok(Self {
            client,
            schema: schema.clone(),
            url: postgres.url.clone(),
            base_url,
        })
    }

    /// The schema holding the demo `customers` table.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection string (the value of [`POSTGRES_URL_VAR`]).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `http://host:port` of the server, the recipient's (unused) `base_url`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The row of the customer `customer_id`, if it still exists.
    pub async fn customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<DemoCustomerRow>, tokio_postgres::Error> {
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT do_not_sell, limit_sensitive, do_not_sell_request \
                     FROM {}.customers WHERE customer_id = $1",
                    self.schema
                ),
                &[&customer_id],
            )
            .await?;
        Ok(row.map(|row| DemoCustomerRow {
            do_not_sell: row.get(0),
            limit_sensitive: row.get(1),
            do_not_sell_request: row.get(2),
        }))
    }

    /// The `postgres` recipient's `[settings]`: per right, a statement matching the person's
    /// rows by email hash or customer id (bound parameters) and a check counting the rows that
    /// do not comply yet.
    pub(crate) fn settings(&self) -> Vec<(&'static str, toml::Value)> {
        let s = &self.schema;
        let subject = "(email_sha256 = :email_sha256 OR customer_id = :customer_id)";
        let right = |statement: String, check: String| {
            toml::Value::Table(toml::Table::from_iter([
                ("statement".to_owned(), statement.into()),
                ("check".to_owned(), check.into()),
            ]))
        };
        vec![
            (
                "opt_out",
                right(
                    format!(
                        "UPDATE {s}.customers SET do_not_sell = true, \
                         do_not_sell_request = :request_id WHERE {subject}"
                    ),
                    format!(
                        "SELECT count(*) FROM {s}.customers WHERE {subject} AND NOT do_not_sell"
                    ),
                ),
            ),
            (
                "limit",
                right(
                    format!("UPDATE {s}.customers SET limit_sensitive = true WHERE {subject}"),
                    format!(
                        "SELECT count(*) FROM {s}.customers WHERE {subject} \
                         AND NOT limit_sensitive"
                    ),
                ),
            ),
            (
                "delete",
                right(
                    format!("DELETE FROM {s}.customers WHERE {subject}"),
                    format!("SELECT count(*) FROM {s}.customers WHERE {subject}"),
                ),
            ),
        ]
    }
}

/// Starts (or finds running) the local PostgreSQL server of this source tree with
/// `deploy/local/postgres up` and returns its connection string. For tests: `make demo` runs
/// the script itself.
pub fn local_postgres_url() -> Result<String, SimulatorsError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/postgres");
    let output = Command::new(&script)
        .arg("up")
        .output()
        .map_err(|source| SimulatorsError::LocalPostgres(format!("cannot run it: {source}")))?;
    if !output.status.success() {
        return Err(SimulatorsError::LocalPostgres(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
