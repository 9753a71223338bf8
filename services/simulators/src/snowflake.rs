//! The demo's Snowflake warehouse: the simulated account's `customers` table, the statements it
//! can run, and the templates the generated `snowflake` recipient sends. The simulator does not
//! parse SQL, so each template is registered with it in the form the SQL API receives (`?` for
//! each placeholder).

use hush_connector_snowflake::sim::{SimAuth, SimStatement, SnowflakeSimConfig};

use crate::warehouse::{demo_rows, DemoTemplates};

/// The programmatic access token the simulated account accepts.
pub(crate) const TOKEN: &str = "sim-snowflake-programmatic-access-token";

/// A template as the SQL API receives it: its one placeholder as a `?` bind variable.
fn sent(template: &str) -> String {
    template.replace(":email_sha256", "?")
}

/// The simulated account: token authentication, one row per demo consumer, and the six
/// statements of [`settings`].
pub(crate) fn sim_config() -> SnowflakeSimConfig {
    SnowflakeSimConfig {
        auth: SimAuth::Token {
            token: TOKEN.into(),
            token_type: "PROGRAMMATIC_ACCESS_TOKEN".into(),
        },
        statements: templates().statements(
            sent,
            SimStatement::update,
            SimStatement::count,
            SimStatement::delete,
        ),
        rows: demo_rows(),
        running_reads: 1,
    }
}

/// The `snowflake` recipient's per-right `[settings]` tables.
pub(crate) fn settings() -> Vec<(&'static str, toml::Value)> {
    templates().settings()
}

/// The templates for the account's `customers` table.
fn templates() -> DemoTemplates {
    DemoTemplates::for_table("customers")
}
