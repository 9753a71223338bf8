//! The demo's BigQuery warehouse: the simulated project's `crm.customers` table, the queries it
//! can run, the OAuth client it grants access tokens to, and the templates the generated
//! `bigquery` recipient sends. The simulator does not parse SQL, so each template is registered
//! with it in the form `jobs.query` receives (`@name` for each `:name` placeholder).

use hush_connector_bigquery::sim::{BigQuerySimConfig, SimGrant, SimStatement};

use crate::warehouse::{demo_rows, DemoTemplates};

/// The simulated project the jobs run in.
pub(crate) const PROJECT_ID: &str = "hush-demo";
/// The OAuth client id the simulated token endpoint accepts.
pub(crate) const CLIENT_ID: &str = "demo-bigquery-client.apps.googleusercontent.com";
/// The OAuth client secret the simulated token endpoint accepts.
pub(crate) const CLIENT_SECRET: &str = "demo-bigquery-client-secret-not-real";
/// The refresh token the simulated token endpoint accepts.
pub(crate) const REFRESH_TOKEN: &str = "1//demo-bigquery-refresh-token-not-real";

/// A template as `jobs.query` receives it: its one placeholder as a named `@` parameter.
fn sent(template: &str) -> String {
    template.replace(":email_sha256", "@email_sha256")
}

/// The simulated project: the refresh-token grant of [`CLIENT_ID`], one row per demo consumer,
/// and the six queries of [`settings`]. Every job answers `jobComplete: false` once, so the
/// connector's polling runs in the demo.
pub(crate) fn sim_config() -> BigQuerySimConfig {
    BigQuerySimConfig {
        project_id: PROJECT_ID.into(),
        grant: SimGrant::RefreshToken {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: REFRESH_TOKEN.into(),
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

/// The `bigquery` recipient's `project_id` and per-right `[settings]` tables.
pub(crate) fn settings() -> Vec<(&'static str, toml::Value)> {
    let mut settings = vec![("project_id", PROJECT_ID.into())];
    settings.extend(templates().settings());
    settings
}

/// The templates for the project's `crm.customers` table.
fn templates() -> DemoTemplates {
    DemoTemplates::for_table("crm.customers")
}
