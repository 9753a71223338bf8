//! The demo's BigQuery warehouse: the simulated project's `crm.customers` table, the queries it
//! can run, the OAuth client it grants access tokens to, and the templates the generated
//! `bigquery` recipient sends. The simulator does not parse SQL, so each template is registered
//! with it in the form `jobs.query` receives (`@name` for each `:name` placeholder).

use hush_connector_bigquery::sim::{BigQuerySimConfig, SimGrant, SimRow, SimStatement};

use crate::DEMO_CONSUMERS;

/// The simulated project the jobs run in.
pub(crate) const PROJECT_ID: &str = "hush-demo";
/// The OAuth client id the simulated token endpoint accepts.
pub(crate) const CLIENT_ID: &str = "demo-bigquery-client.apps.googleusercontent.com";
/// The OAuth client secret the simulated token endpoint accepts.
pub(crate) const CLIENT_SECRET: &str = "demo-bigquery-client-secret-not-real";
/// The refresh token the simulated token endpoint accepts.
pub(crate) const REFRESH_TOKEN: &str = "1//demo-bigquery-refresh-token-not-real";

const OPT_OUT: &str =
    "UPDATE crm.customers SET do_not_sell = TRUE WHERE email_sha256 = :email_sha256";
const OPT_OUT_CHECK: &str =
    "SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = :email_sha256 AND NOT do_not_sell";
const LIMIT: &str =
    "UPDATE crm.customers SET limit_sensitive = TRUE WHERE email_sha256 = :email_sha256";
const LIMIT_CHECK: &str =
    "SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = :email_sha256 AND NOT limit_sensitive";
const DELETE: &str = "DELETE FROM crm.customers WHERE email_sha256 = :email_sha256";
const DELETE_CHECK: &str = "SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = :email_sha256";

/// A template as `jobs.query` receives it: its one placeholder as a named `@` parameter.
fn sent(template: &str) -> String {
    template.replace(":email_sha256", "@email_sha256")
}

/// The simulated project: the refresh-token grant of [`CLIENT_ID`], one row per demo consumer,
/// and the six queries of [`settings`]. Every job answers `jobComplete: false` once, so the
/// connector's polling runs in the demo.
pub(crate) fn sim_config() -> BigQuerySimConfig {
    let flag = |template: &str, column: &str| {
        SimStatement::update(&sent(template), "email_sha256", column, "true")
    };
    let unflagged = |template: &str, column: &str| {
        SimStatement::count(&sent(template), "email_sha256", Some((column, "true")))
    };
    BigQuerySimConfig {
        project_id: PROJECT_ID.into(),
        grant: SimGrant::RefreshToken {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: REFRESH_TOKEN.into(),
        },
        statements: vec![
            flag(OPT_OUT, "do_not_sell"),
            unflagged(OPT_OUT_CHECK, "do_not_sell"),
            flag(LIMIT, "limit_sensitive"),
            unflagged(LIMIT_CHECK, "limit_sensitive"),
            SimStatement::delete(&sent(DELETE), "email_sha256"),
            SimStatement::count(&sent(DELETE_CHECK), "email_sha256", None),
        ],
        rows: DEMO_CONSUMERS
            .iter()
            .map(|consumer| {
                SimRow::from([
                    ("customer_id".to_owned(), consumer.customer_id.to_owned()),
                    ("email_sha256".to_owned(), consumer.email_sha256()),
                    ("do_not_sell".to_owned(), "false".to_owned()),
                    ("limit_sensitive".to_owned(), "false".to_owned()),
                ])
            })
            .collect(),
        running_reads: 1,
    }
}

/// The `bigquery` recipient's `project_id` and per-right `[settings]` tables.
pub(crate) fn settings() -> Vec<(&'static str, toml::Value)> {
    let right = |statement: &str, check: &str| {
        toml::Value::Table(toml::Table::from_iter([
            ("statement".to_owned(), statement.into()),
            ("check".to_owned(), check.into()),
        ]))
    };
    vec![
        ("project_id", PROJECT_ID.into()),
        ("opt_out", right(OPT_OUT, OPT_OUT_CHECK)),
        ("limit", right(LIMIT, LIMIT_CHECK)),
        ("delete", right(DELETE, DELETE_CHECK)),
    ]
}
