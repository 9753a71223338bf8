//! The demo's Snowflake warehouse: the simulated account's `customers` table, the statements it
//! can run, and the templates the generated `snowflake` recipient sends. The simulator does not
//! parse SQL, so each template is registered with it in the form the SQL API receives (`?` for
//! each placeholder).

use hush_connector_snowflake::sim::{SimAuth, SimRow, SimStatement, SnowflakeSimConfig};

use crate::DEMO_CONSUMERS;

/// The programmatic access token the simulated account accepts.
pub(crate) const TOKEN: &str = "sim-snowflake-programmatic-access-token";

const OPT_OUT: &str = "UPDATE customers SET do_not_sell = TRUE WHERE email_sha256 = :email_sha256";
const OPT_OUT_CHECK: &str =
    "SELECT COUNT(*) FROM customers WHERE email_sha256 = :email_sha256 AND NOT do_not_sell";
const LIMIT: &str =
    "UPDATE customers SET limit_sensitive = TRUE WHERE email_sha256 = :email_sha256";
const LIMIT_CHECK: &str =
    "SELECT COUNT(*) FROM customers WHERE email_sha256 = :email_sha256 AND NOT limit_sensitive";
const DELETE: &str = "DELETE FROM customers WHERE email_sha256 = :email_sha256";
const DELETE_CHECK: &str = "SELECT COUNT(*) FROM customers WHERE email_sha256 = :email_sha256";

/// A template as the SQL API receives it: its one placeholder as a `?` bind variable.
fn sent(template: &str) -> String {
    template.replace(":email_sha256", "?")
}

/// The simulated account: token authentication, one row per demo consumer, and the six
/// statements of [`settings`].
pub(crate) fn sim_config() -> SnowflakeSimConfig {
    let flag = |template: &str, column: &str| {
        SimStatement::update(&sent(template), "email_sha256", column, "true")
    };
    let unflagged = |template: &str, column: &str| {
        SimStatement::count(&sent(template), "email_sha256", Some((column, "true")))
    };
    SnowflakeSimConfig {
        auth: SimAuth::Token {
            token: TOKEN.into(),
            token_type: "PROGRAMMATIC_ACCESS_TOKEN".into(),
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

/// The `snowflake` recipient's per-right `[settings]` tables.
pub(crate) fn settings() -> Vec<(&'static str, toml::Value)> {
    let right = |statement: &str, check: &str| {
        toml::Value::Table(toml::Table::from_iter([
            ("statement".to_owned(), statement.into()),
            ("check".to_owned(), check.into()),
        ]))
    };
    vec![
        ("opt_out", right(OPT_OUT, OPT_OUT_CHECK)),
        ("limit", right(LIMIT, LIMIT_CHECK)),
        ("delete", right(DELETE, DELETE_CHECK)),
    ]
}
