//! The calls to PostgreSQL: one connection per recipient, opened at first use (every template
//! is prepared then, so a template naming a missing column fails at once with PostgreSQL's
//! text), every statement run with bound parameters, each work item in its own transaction.
//! After a lost connection or a time-out the connection is dropped and the next call opens a
//! new one.

use std::collections::BTreeMap;
use std::time::Duration;

use hush_contracts::connector::ConnectorError;
use tokio::sync::Mutex;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use hush_connector_kit::sql::rights::ConfiguredSql;
use hush_connector_kit::sql::template::Execution;

use crate::config::PostgresConfig;
use crate::response::classify;

/// Extra time the client waits past the server's `statement_timeout` before it gives up on a
/// silent server (a network that drops packets, say).
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// Why a bounded call did not yield a value.
enum Outcome<E> {
    /// It failed.
    Failed(E),
    /// It did not finish in time.
    TimedOut,
}

fn timed_out() -> ConnectorError {
    ConnectorError::Transient("the database did not answer before the timeout".into())
}

/// The prepared statement of `sql`.
fn prepared(session: &Session, sql: &ConfiguredSql) -> Result<Statement, ConnectorError> {
    session.prepared.get(&sql.field).cloned().ok_or_else(|| {
        ConnectorError::Permanent(format!("internal error: {} was not prepared", sql.field))
    })
}

/// The classified result of a call on the session in `slot`; the session is dropped after a
/// time-out or a failure of the connection itself (the next call opens a new one).
fn settle<T>(
    slot: &mut Option<Session>,
    outcome: Result<T, Outcome<tokio_postgres::Error>>,
    executions: &[Execution],
) -> Result<T, ConnectorError> {
    match outcome {
        Ok(value) => Ok(value),
        Err(Outcome::TimedOut) => {
            *slot = None;
            Err(timed_out())
        }
        Err(Outcome::Failed(error)) => {
            let bound: Vec<&str> = executions
                .iter()
                .flatten()
                .flatten()
                .map(String::as_str)
                .collect();
            let classified = classify(&error, &bound);
            if error.as_db_error().is_none() || classified.is_retryable() {
                *slot = None;
            }
            Err(classified)
        }
    }
}

/// An open connection with every configured template prepared, by setting name.
struct Session {
    client: Client,
    prepared: BTreeMap<String, Statement>,
}

/// The connection to one recipient's database.
pub struct PostgresClient {
    config: PostgresConfig,
    session: Mutex<Option<Session>>,
}

impl PostgresClient {
    /// A client for `config`; nothing is opened until the first call.
    pub fn new(config: PostgresConfig) -> Self {
        Self {
            config,
            session: Mutex::new(None),
        }
    }

    /// The configuration this client serves.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// Opens the connection and prepares every template, unless already done. A template that
    /// does not prepare (a missing column or table, a syntax error, a check query not
    /// returning one integer column) is a permanent error naming its setting.
    pub async fn ensure_connected(&self) -> Result<(), ConnectorError> {
        let mut slot = self.session.lock().await;
        self.open(&mut slot).await.map(drop)
    }

    /// Runs `sql` once per execution in one transaction; the rows it affected.
    pub async fn execute(
        &self,
        sql: &ConfiguredSql,
        executions: &[Execution],
    ) -> Result<u64, ConnectorError> {
        let mut slot = self.session.lock().await;
        let session = self.open(&mut slot).await?;
        let statement = prepared(session, sql)?;
        let client = &mut session.client;
        let outcome = self
            .bounded(async {
                let transaction = client.transaction().await?;
                let mut affected = 0;
                for values in executions {
                    affected += transaction.execute(&statement, &params(values)).await?;
                }
                transaction.commit().await?;
                Ok(affected)
            })
            .await;
        settle(&mut slot, outcome, executions)
    }

    /// Runs the check query `sql` once per execution; the sum of the counts it returned (a
    /// `NULL` count is 0).
    pub async fn count(
        &self,
        sql: &ConfiguredSql,
        executions: &[Execution],
    ) -> Result<i64, ConnectorError> {
        let mut slot = self.session.lock().await;
        let session = self.open(&mut slot).await?;
        let statement = prepared(session, sql)?;
        let client = &session.client;
        let outcome = self
            .bounded(async {
                let mut total = 0;
                for values in executions {
                    let row = client.query_one(&statement, &params(values)).await?;
                    total += match *statement.columns()[0].type_() {
                        Type::INT2 => row.try_get::<_, Option<i16>>(0)?.map(i64::from),
                        Type::INT4 => row.try_get::<_, Option<i32>>(0)?.map(i64::from),
                        _ => row.try_get::<_, Option<i64>>(0)?,
                    }
                    .unwrap_or(0);
                }
                Ok(total)
            })
            .await;
        settle(&mut slot, outcome, executions)
    }

    /// The open session in `slot`, opened first when there is none or its connection closed.
    async fn open<'s>(
        &self,
        slot: &'s mut Option<Session>,
    ) -> Result<&'s mut Session, ConnectorError> {
        if slot.as_ref().is_none_or(|s| s.client.is_closed()) {
            *slot = None;
            let session = match self.bounded(self.connect()).await {
                Ok(session) => session,
                Err(Outcome::Failed(error)) => return Err(error),
                Err(Outcome::TimedOut) => return Err(timed_out()),
            };
            *slot = Some(session);
        }
        slot.as_mut()
            .ok_or_else(|| ConnectorError::Transient("the database connection was lost".into()))
    }

    /// `future` bounded by the statement timeout plus a grace.
    async fn bounded<T, E>(
        &self,
        future: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Outcome<E>> {
        match tokio::time::timeout(self.config.timeout + CLIENT_GRACE, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Outcome::Failed(error)),
            Err(_) => Err(Outcome::TimedOut),
        }
    }

    async fn connect(&self) -> Result<Session, ConnectorError> {
        let tls = MakeRustlsConnect::new(self.config.tls.clone());
        let (client, connection) = self
            .config
            .connection
            .connect(tls)
            .await
            .map_err(|e| classify(&e, &[]))?;
        let recipient = self.config.recipient_id.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%recipient, "PostgreSQL connection ended: {error}");
            }
        });
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                self.config.timeout.as_millis()
            ))
            .await
            .map_err(|e| classify(&e, &[]))?;
        let mut prepared = BTreeMap::new();
        for sql in self.config.rights.templates() {
            let types = vec![Type::TEXT; sql.template.params.len()];
            let statement = client
                .prepare_typed(&sql.template.sql, &types)
                .await
                .map_err(|e| match classify(&e, &[]) {
                    ConnectorError::Permanent(text) => ConnectorError::Permanent(format!(
                        "recipients.{}.{} does not prepare: {text}",
                        self.config.recipient_id, sql.field
                    )),
                    other => other,
                })?;
            if sql.field.ends_with(".check") {
                check_shape(&statement).map_err(|shape| {
                    ConnectorError::Permanent(format!(
                        "recipients.{}.{} must return one integer column (how many of the \
                         subject's rows do not comply yet, e.g. SELECT count(*) …), but {shape}",
                        self.config.recipient_id, sql.field
                    ))
                })?;
            }
            prepared.insert(sql.field.clone(), statement);
        }
        Ok(Session { client, prepared })
    }
}

/// What is wrong with a check query's result columns, if anything.
fn check_shape(statement: &Statement) -> Result<(), String> {
    match statement.columns() {
        [column] if matches!(*column.type_(), Type::INT2 | Type::INT4 | Type::INT8) => Ok(()),
        [column] => Err(format!("it returns one {} column", column.type_())),
        columns => Err(format!("it returns {} columns", columns.len())),
    }
}

fn params(values: &Execution) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}
