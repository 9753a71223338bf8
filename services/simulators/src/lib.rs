//! Demo infrastructure: starts a simulator of every vendor API Hush talks to, on loopback, seeds
//! them with the demo consumers, and produces the Hush configuration (`[[recipients]]`) and the
//! fake credentials that point the real connectors at them.
//!
//! Nothing here is a vendor or talks to one. Every simulator is the `sim` module of its
//! connector crate (test and demo infrastructure); this crate only wires them together for
//! `make demo`. The one exception is the business's own database: the `postgres` recipient
//! points at a schema on a REAL PostgreSQL server (`deploy/local/postgres up`), see
//! [`postgres`].

#![warn(missing_docs)]

mod bigquery;
pub mod postgres;
mod snowflake;
mod warehouse;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use hush_connector_amplitude::sim::{AmplitudeSim, AmplitudeSimConfig};
use hush_connector_bigquery::sim::BigQuerySim;
use hush_connector_braze::sim::{BrazeSim, BrazeSimConfig};
use hush_connector_google_ads::sim::{GoogleAdsSim, GoogleAdsSimConfig};
use hush_connector_google_analytics::sim::{GoogleAnalyticsSim, GoogleAnalyticsSimConfig};
use hush_connector_google_data_manager::sim::{DataManagerSim, DataManagerSimConfig};
use hush_connector_hubspot::sim::HubSpotSimulator;
use hush_connector_klaviyo::sim::{KlaviyoSim, KlaviyoSimConfig};
use hush_connector_linkedin::sim::LinkedInSim;
use hush_connector_mailchimp::sim::{MailchimpSim, MailchimpSimConfig};
use hush_connector_meta::sim::MetaSim;
use hush_connector_mixpanel::sim::{MixpanelSim, MixpanelSimConfig};
use hush_connector_salesforce::sim::SalesforceSim;
use hush_connector_segment::sim::{SegmentSim, SegmentSimConfig};
use hush_connector_snowflake::sim::SnowflakeSim;
use hush_connector_the_trade_desk::sim::{TradeDeskSim, TradeDeskSimConfig};
use hush_connector_tiktok::sim::{TikTokSim, TikTokSimConfig};
use hush_connector_webhook::sim::WebhookSimulator;
use hush_contracts::events::{IdentifierType, RecipientRole};
use hush_contracts::identifiers::hash_identifier;
use hush_contracts::recipients::{self, RecipientConfig};
use hush_runtime::config::{ConfigError, SecretRef};
use hush_sim_kit::{RunningSim, SimControl};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use postgres::{DemoDatabase, DemoPostgres, DEMO_SCHEMA, POSTGRES_URL_VAR};

/// Wait between two status reads of an asynchronous vendor job in the generated settings, so
/// the demo completes in seconds.
pub const DEMO_POLL_INTERVAL_MS: u64 = 200;
/// Longest wait for an asynchronous vendor job inside one call in the generated settings.
pub const DEMO_MAX_WAIT_MS: u64 = 10_000;
/// Wait after a rate-limit answer without `Retry-After` in the generated settings.
pub const DEMO_RETRY_AFTER_SECS: u64 = 1;

/// Path the simulated webhook recipient accepts notices on.
pub const WEBHOOK_PATH: &str = "/hush/privacy-notices";
/// Marketing API version the generated Meta recipient calls: one the simulator serves, as Meta
/// does (see `hush_connector_meta::sim::contract`).
pub const META_API_VERSION: &str = "v27.0";
/// `LinkedIn-Version` the generated LinkedIn recipient sends: one the simulator serves, as
/// LinkedIn does (see `hush_connector_linkedin::sim::contract`).
pub const LINKEDIN_VERSION: &str = "202603";
/// Custom Audience id of the simulated Meta audience.
pub const META_AUDIENCE_ID: &str = "23850000000000001";
/// DMP segment id of the simulated LinkedIn segment.
pub const LINKEDIN_SEGMENT_ID: &str = "10804";
/// HubSpot contact property set on an opt-out (defined in the simulated portal).
pub const HUBSPOT_OPT_OUT_PROPERTY: &str = "hush_do_not_sell";
/// HubSpot contact property set on a limit of sensitive PI (defined in the simulated portal).
pub const HUBSPOT_LIMIT_PROPERTY: &str = "hush_limit_sensitive";
/// Recipient id of the demo's own database (`kind = "postgres"`).
pub const POSTGRES_RECIPIENT_ID: &str = "customers-db";
/// Braze custom attribute set on an opt-out (the connector's default, named explicitly).
pub const BRAZE_OPT_OUT_ATTRIBUTE: &str = "hush_do_not_sell";
/// Who the generated Amplitude recipient names as `requester` (recorded by Amplitude).
pub const AMPLITUDE_REQUESTER: &str = "privacy-team@demo.hush.invalid";
/// Wait between two task reads of the generated Mixpanel recipient: Mixpanel's GDPR API allows
/// one request a second, reads included.
pub const MIXPANEL_POLL_INTERVAL_MS: u64 = 1_100;

/// One fictional consumer the demo submits requests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConsumer {
    /// Email (already normalised).
    pub email: &'static str,
    /// The business's own customer id (Segment `userId`).
    pub customer_id: &'static str,
}

impl DemoConsumer {
    /// SHA-256 of the normalised email, the form the ad platforms hold.
    pub fn email_sha256(&self) -> String {
        hash_identifier(IdentifierType::Email, self.email).expect("demo emails are valid")
    }
}

/// The consumers every simulator is seeded with: CRM contacts (HubSpot, Salesforce with an
/// `Individual`), members of the Meta, LinkedIn and Google lists (by email hash), Braze profiles
/// (external id and email), Klaviyo profiles and Mailchimp audience members (email), Amplitude users (user id = customer id),
/// members of the TikTok audiences (by email hash)
/// and rows of the demo database's and the Snowflake and BigQuery warehouses' `customers` tables. Segment, Mixpanel and Google Analytics
/// accept a deletion for any id, so there is nothing to seed there; nor at The Trade Desk, which
/// takes an opt-out or deletion for any id it is sent (the demo consumers carry no id it takes,
/// so it answers NOT_FOUND with the reason unless a request names a mobile advertising id).
pub const DEMO_CONSUMERS: [DemoConsumer; 3] = [
    DemoConsumer {
        email: "jane.doe@example.com",
        customer_id: "cust-1001",
    },
    DemoConsumer {
        email: "sam.lee@example.com",
        customer_id: "cust-1002",
    },
    DemoConsumer {
        email: "alex.kim@example.com",
        customer_id: "cust-1003",
    },
];

/// The demo's canary subject (`[canary]` in `deploy/local/demo.toml`), seeded like a consumer so
/// it exists at every recipient: a synthetic identity that belongs to no one.
pub const CANARY_SUBJECT: DemoConsumer = DemoConsumer {
    email: "canary@hush-canary.example",
    customer_id: "hush-canary-customer-1",
};

/// Fake credentials the simulators accept, by the environment variable the configuration names.
const WEBHOOK_SECRET: (&str, &str) = (
    "HUSH_DEMO_WEBHOOK_SIGNING_SECRET",
    "demo-webhook-signing-secret-not-real",
);
const HUBSPOT_TOKEN: (&str, &str) = ("HUSH_DEMO_HUBSPOT_TOKEN", "pat-demo-simulator-token");
const SALESFORCE_CLIENT_ID: (&str, &str) = (
    "HUSH_DEMO_SALESFORCE_CLIENT_ID",
    "3MVG9demo.simulator.client.id",
);
const SALESFORCE_CLIENT_SECRET: (&str, &str) = (
    "HUSH_DEMO_SALESFORCE_CLIENT_SECRET",
    "demo-salesforce-client-secret",
);
const META_TOKEN: (&str, &str) = ("HUSH_DEMO_META_ACCESS_TOKEN", "EAAdemo-simulator-token");
const LINKEDIN_TOKEN: (&str, &str) = ("HUSH_DEMO_LINKEDIN_ACCESS_TOKEN", "AQVdemo-simulator-token");
const GOOGLE_DM_CLIENT_ID: &str = "HUSH_DEMO_GOOGLE_DM_CLIENT_ID";
const GOOGLE_DM_CLIENT_SECRET: &str = "HUSH_DEMO_GOOGLE_DM_CLIENT_SECRET";
const GOOGLE_DM_REFRESH_TOKEN: &str = "HUSH_DEMO_GOOGLE_DM_REFRESH_TOKEN";
const GOOGLE_CLIENT_ID: &str = "HUSH_DEMO_GOOGLE_ADS_CLIENT_ID";
const GOOGLE_CLIENT_SECRET: &str = "HUSH_DEMO_GOOGLE_ADS_CLIENT_SECRET";
const GOOGLE_REFRESH_TOKEN: &str = "HUSH_DEMO_GOOGLE_ADS_REFRESH_TOKEN";
const GOOGLE_DEVELOPER_TOKEN: &str = "HUSH_DEMO_GOOGLE_ADS_DEVELOPER_TOKEN";
const SEGMENT_TOKEN: &str = "HUSH_DEMO_SEGMENT_TOKEN";
const GA_CLIENT_ID: &str = "HUSH_DEMO_GA_CLIENT_ID";
const GA_CLIENT_SECRET: &str = "HUSH_DEMO_GA_CLIENT_SECRET";
const GA_REFRESH_TOKEN: &str = "HUSH_DEMO_GA_REFRESH_TOKEN";
const AMPLITUDE_API_KEY: &str = "HUSH_DEMO_AMPLITUDE_API_KEY";
const AMPLITUDE_SECRET_KEY: &str = "HUSH_DEMO_AMPLITUDE_SECRET_KEY";
const MIXPANEL_PROJECT_TOKEN: &str = "HUSH_DEMO_MIXPANEL_PROJECT_TOKEN";
const MIXPANEL_OAUTH_TOKEN: &str = "HUSH_DEMO_MIXPANEL_OAUTH_TOKEN";
const BRAZE_API_KEY: &str = "HUSH_DEMO_BRAZE_API_KEY";
const KLAVIYO_API_KEY: &str = "HUSH_DEMO_KLAVIYO_API_KEY";
const MAILCHIMP_API_KEY: &str = "HUSH_DEMO_MAILCHIMP_API_KEY";
const SNOWFLAKE_TOKEN: &str = "HUSH_DEMO_SNOWFLAKE_TOKEN";
const BIGQUERY_CLIENT_ID: &str = "HUSH_DEMO_BIGQUERY_CLIENT_ID";
const BIGQUERY_CLIENT_SECRET: &str = "HUSH_DEMO_BIGQUERY_CLIENT_SECRET";
const BIGQUERY_REFRESH_TOKEN: &str = "HUSH_DEMO_BIGQUERY_REFRESH_TOKEN";
const TIKTOK_ACCESS_TOKEN: &str = "HUSH_DEMO_TIKTOK_ACCESS_TOKEN";
const TTD_AUTH_TOKEN: &str = "HUSH_DEMO_TTD_AUTH_TOKEN";

/// Why the simulators could not be started or configured.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorsError {
    /// A simulator could not listen.
    #[error("the {simulator} simulator could not start: {source}")]
    Start {
        /// Which simulator.
        simulator: &'static str,
        /// The listener error.
        source: io::Error,
    },
    /// The base configuration plus the generated recipients is not valid TOML of the expected
    /// shape.
    #[error("the generated configuration does not parse (check --base-config): {0}")]
    Parse(#[from] toml::de::Error),
    /// The recipients do not pass `hush_contracts::recipients::validate`.
    #[error("the generated recipients are invalid: {0}")]
    Invalid(#[from] ConfigError),
    /// The demo database could not be prepared (the error never holds the connection string).
    #[error("the demo PostgreSQL database failed while {doing}: {source}")]
    Postgres {
        /// What was being done.
        doing: &'static str,
        /// PostgreSQL's error.
        source: tokio_postgres::Error,
    },
    /// The demo schema's name is not a plain lowercase SQL identifier.
    #[error("the demo PostgreSQL schema `{0}` is not a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)")]
    PostgresSchema(String),
    /// The connection string names no TCP host.
    #[error("the demo PostgreSQL connection string must name a TCP host (host=… or postgres://…@host:port/…)")]
    PostgresHost,
    /// `deploy/local/postgres up` failed.
    #[error("deploy/local/postgres up failed (run deploy/local/prerequisites for the server binaries): {0}")]
    LocalPostgres(String),
}

/// One environment variable the generated configuration refers to, with the simulator's fake
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name (named in `credentials`).
    pub name: String,
    /// Fake value the simulator accepts.
    pub value: String,
}

/// Every simulator, running; each stops when dropped.
pub struct Simulators {
    /// Simulated webhook recipient (`partner-webhook`).
    pub webhook: WebhookSimulator,
    /// Simulated HubSpot portal (`hubspot`).
    pub hubspot: HubSpotSimulator,
    /// Simulated Salesforce org, for seeding and inspection (`salesforce`).
    pub salesforce: SalesforceSim,
    /// The server of the simulated Salesforce org.
    pub salesforce_server: RunningSim,
    /// Simulated Meta Custom Audience (`meta-audiences`).
    pub meta: MetaSim,
    /// Simulated LinkedIn DMP segment (`linkedin-segments`).
    pub linkedin: LinkedInSim,
    /// Simulated Google Data Manager API and token endpoint (`google-customer-match`, the
    /// default path to Customer Match).
    pub google_data_manager: DataManagerSim,
    /// Simulated Google Ads account and token endpoint (`google-ads-allowlisted`: Customer
    /// Match through the Google Ads API, for accounts allowlisted before April 2026).
    pub google_ads: GoogleAdsSim,
    /// Simulated Segment workspace (`segment`).
    pub segment: SegmentSim,
    /// Simulated Google Analytics User Deletion API and token endpoint (`google-analytics`).
    pub google_analytics: GoogleAnalyticsSim,
    /// Simulated Amplitude project (`amplitude`).
    pub amplitude: AmplitudeSim,
    /// Simulated Mixpanel project (`mixpanel`).
    pub mixpanel: MixpanelSim,
    /// Simulated Braze workspace (`braze`).
    pub braze: BrazeSim,
    /// Simulated Klaviyo account (`klaviyo`).
    pub klaviyo: KlaviyoSim,
    /// Simulated Mailchimp audience (`mailchimp`).
    pub mailchimp: MailchimpSim,
    /// Simulated Snowflake account with a `customers` table (`warehouse`).
    pub snowflake: SnowflakeSim,
    /// Simulated BigQuery project and token endpoint with a `crm.customers` table (`bigquery`).
    pub bigquery: BigQuerySim,
    /// Simulated TikTok ad account and its audiences (`tiktok-audiences`).
    pub tiktok: TikTokSim,
    /// Simulated The Trade Desk deletion/opt-out endpoint (`the-trade-desk`).
    pub the_trade_desk: TradeDeskSim,
    /// The demo schema on the real PostgreSQL server (`customers-db`); it has no call log.
    pub postgres: DemoDatabase,
}

/// How many simulators log calls (every recipient but the PostgreSQL one).
const SIMULATORS: usize = 18;

impl Simulators {
    /// Each simulator's recipient id and call log (the PostgreSQL recipient talks to a real
    /// server and has none).
    pub fn controls(&self) -> [(&'static str, &SimControl); SIMULATORS] {
        [
            ("partner-webhook", self.webhook.control()),
            ("hubspot", self.hubspot.control()),
            ("salesforce", &self.salesforce_server.control),
            ("meta-audiences", self.meta.control()),
            ("linkedin-segments", self.linkedin.control()),
            ("google-customer-match", self.google_data_manager.control()),
            ("google-ads-allowlisted", self.google_ads.control()),
            ("segment", self.segment.control()),
            ("google-analytics", self.google_analytics.control()),
            ("amplitude", self.amplitude.control()),
            ("mixpanel", self.mixpanel.control()),
            ("braze", self.braze.control()),
            ("klaviyo", self.klaviyo.control()),
            ("mailchimp", self.mailchimp.control()),
            ("warehouse", self.snowflake.control()),
            ("bigquery", self.bigquery.control()),
            ("tiktok-audiences", self.tiktok.control()),
            ("the-trade-desk", self.the_trade_desk.control()),
        ]
    }
}

/// The running simulators and what the demo needs to reach them.
pub struct Running {
    /// The complete Hush configuration: the base configuration, then one `[[recipients]]`
    /// block per simulator.
    pub config_toml: String,
    /// The environment variables the configuration's `credentials` name.
    pub env: Vec<EnvVar>,
    /// The simulators themselves.
    pub simulators: Simulators,
}

/// One call a simulator received, as logged: no body, no query string, and no path segment
/// that carries an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLine {
    /// Recipient id of the simulator.
    pub simulator: &'static str,
    /// HTTP method.
    pub method: String,
    /// Path with personal data redacted (see [`redact_path`]).
    pub path: String,
    /// Status the simulator answered with.
    pub status: u16,
}

/// How many calls of each simulator have been logged already.
#[derive(Debug, Default)]
pub struct CallCursor {
    seen: [usize; SIMULATORS],
}

impl Running {
    /// `export NAME='value'` lines, one per credential, for a shell to source.
    pub fn env_lines(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|var| format!("export {}={}", var.name, shell_quote(&var.value)))
            .collect()
    }

    /// The env file: a comment saying what it is, then [`Running::env_lines`].
    pub fn env_file(&self) -> String {
        let mut text = String::from(
            "# Fake credentials of the Hush vendor simulators (demo infrastructure, not real \
             vendors).\n",
        );
        for line in self.env_lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// Calls received since `cursor` last looked, oldest first per simulator.
    pub fn new_calls(&self, cursor: &mut CallCursor) -> Vec<CallLine> {
        let mut lines = Vec::new();
        for (index, (simulator, control)) in self.simulators.controls().into_iter().enumerate() {
            let calls = control.calls();
            for call in calls.iter().skip(cursor.seen[index]) {
                lines.push(CallLine {
                    simulator,
                    method: call.method.to_string(),
                    path: redact_path(&call.path),
                    status: call.status,
                });
            }
            cursor.seen[index] = calls.len();
        }
        lines
    }

    /// Logs one line per call received (simulator, method, redacted path, status; never a
    /// body) until `shutdown` is cancelled.
    pub async fn log_calls_until(&self, shutdown: CancellationToken) {
        let mut cursor = CallCursor::default();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            let stop = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            for call in self.new_calls(&mut cursor) {
                tracing::info!(
                    simulator = call.simulator,
                    method = %call.method,
                    path = %call.path,
                    status = call.status,
                    "simulator call"
                );
            }
            if stop {
                return;
            }
        }
    }
}

/// The path of a recorded call without its query string, with every segment that holds an
/// email (`@` or `%40`) replaced by `{redacted}`: HubSpot addresses contacts by email in the
/// path, and Salesforce queries carry the email in `q=`.
pub fn redact_path(path_and_query: &str) -> String {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    path.split('/')
        .map(|segment| {
            if segment.contains('@') || segment.to_ascii_lowercase().contains("%40") {
                "{redacted}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, readable by
/// the owner only (on Unix), renamed over `path`. A reader never sees a partial file.
pub fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

fn started<T>(simulator: &'static str, result: io::Result<T>) -> Result<T, SimulatorsError> {
    result.map_err(|source| SimulatorsError::Start { simulator, source })
}

/// Starts every simulator on `127.0.0.1` (ephemeral ports), creates the demo schema on the real
/// PostgreSQL server `postgres` names, seeds the demo consumers and the canary subject everywhere, and returns the
/// configuration that points at them: `base_config` (kafka, registry, topics, service
/// sections), followed by one `[[recipients]]` block per simulator and one for the database.
/// The result is checked to parse and to pass [`hush_contracts::recipients::validate`] before
/// it is returned.
pub async fn start_all(
    base_config: Option<&str>,
    postgres: &DemoPostgres,
) -> Result<Running, SimulatorsError> {
    let database = DemoDatabase::create(postgres).await?;
    let simulators = start_simulators(database).await?;
    seed(&simulators);
    let (recipients, env) = recipients_for(&simulators);
    let config_toml = render(base_config, &recipients)?;
    #[derive(Deserialize)]
    struct Recipients {
        #[serde(default)]
        recipients: Vec<RecipientConfig>,
    }
    let parsed: Recipients = toml::from_str(&config_toml)?;
    recipients::validate(&parsed.recipients)?;
    Ok(Running {
        config_toml,
        env,
        simulators,
    })
}

async fn start_simulators(postgres: DemoDatabase) -> Result<Simulators, SimulatorsError> {
    let salesforce = SalesforceSim::new(SALESFORCE_CLIENT_ID.1, SALESFORCE_CLIENT_SECRET.1);
    let amplitude = AmplitudeSimConfig {
        users: DEMO_CONSUMERS
            .iter()
            .map(|c| c.customer_id.to_owned())
            .collect(),
        ..AmplitudeSimConfig::default()
    };
    Ok(Simulators {
        webhook: started(
            "webhook",
            WebhookSimulator::start(WEBHOOK_SECRET.1, WEBHOOK_PATH).await,
        )?,
        hubspot: started("HubSpot", HubSpotSimulator::start(HUBSPOT_TOKEN.1).await)?,
        salesforce_server: started("Salesforce", salesforce.start().await)?,
        salesforce,
        meta: started("Meta", MetaSim::start(META_AUDIENCE_ID, META_TOKEN.1).await)?,
        linkedin: started(
            "LinkedIn",
            LinkedInSim::start(LINKEDIN_SEGMENT_ID, LINKEDIN_TOKEN.1).await,
        )?,
        google_data_manager: started(
            "Google Data Manager",
            DataManagerSim::start(DataManagerSimConfig::default()).await,
        )?,
        google_ads: started(
            "Google Ads",
            GoogleAdsSim::start(GoogleAdsSimConfig::default()).await,
        )?,
        segment: started(
            "Segment",
            SegmentSim::start(SegmentSimConfig::default()).await,
        )?,
        google_analytics: started(
            "Google Analytics",
            GoogleAnalyticsSim::start(GoogleAnalyticsSimConfig::default()).await,
        )?,
        amplitude: started("Amplitude", AmplitudeSim::start(amplitude).await)?,
        mixpanel: started(
            "Mixpanel",
            MixpanelSim::start(MixpanelSimConfig::default()).await,
        )?,
        braze: started("Braze", BrazeSim::start(BrazeSimConfig::default()).await)?,
        klaviyo: started(
            "Klaviyo",
            KlaviyoSim::start(KlaviyoSimConfig::default()).await,
        )?,
        mailchimp: started(
            "Mailchimp",
            MailchimpSim::start(MailchimpSimConfig::default()).await,
        )?,
        snowflake: started(
            "Snowflake",
            SnowflakeSim::start(snowflake::sim_config()).await,
        )?,
        bigquery: started("BigQuery", BigQuerySim::start(bigquery::sim_config()).await)?,
        tiktok: started("TikTok", TikTokSim::start(TikTokSimConfig::default()).await)?,
        the_trade_desk: started(
            "The Trade Desk",
            TradeDeskSim::start(TradeDeskSimConfig::default()).await,
        )?,
        postgres,
    })
}

fn seed(simulators: &Simulators) {
    simulators.hubspot.define_property(HUBSPOT_OPT_OUT_PROPERTY);
    simulators.hubspot.define_property(HUBSPOT_LIMIT_PROPERTY);
    let seeded = DEMO_CONSUMERS.iter().chain([&CANARY_SUBJECT]);
    let hashes: Vec<String> = seeded.clone().map(|c| c.email_sha256()).collect();
    for consumer in seeded {
        simulators.hubspot.add_contact(consumer.email);
        simulators.salesforce.add_contact(consumer.email, true);
        simulators
            .braze
            .add_profile(Some(consumer.customer_id), Some(consumer.email));
        simulators.klaviyo.add_profile(Some(consumer.email), None);
        simulators
            .mailchimp
            .add_member(consumer.email, "subscribed");
    }
    simulators.meta.add_members(hashes.iter().cloned());
    simulators.linkedin.add_members(hashes.iter().cloned());
    simulators
        .google_data_manager
        .add_members(hashes.iter().cloned());
    simulators
        .tiktok
        .add_members("EMAIL_SHA256", hashes.iter().cloned());
    simulators.google_ads.add_members(hashes);
}

/// One `[[recipients]]` block under construction.
struct Block {
    id: &'static str,
    kind: &'static str,
    role: RecipientRole,
    base_url: String,
    credentials: Vec<(&'static str, &'static str)>,
    settings: Vec<(&'static str, toml::Value)>,
    /// The vendor's documented request rate, when the default would exceed it.
    rate_limit_per_second: Option<u32>,
}

impl Block {
    fn into_recipient(self) -> RecipientConfig {
        let mut table = toml::Table::new();
        table.insert("id".into(), self.id.into());
        table.insert("kind".into(), self.kind.into());
        table.insert(
            "role".into(),
            toml::Value::try_from(self.role).expect("a role serialises"),
        );
        table.insert("base_url".into(), self.base_url.into());
        if let Some(rate) = self.rate_limit_per_second {
            table.insert("rate_limit_per_second".into(), int(u64::from(rate)));
        }
        let mut recipient: RecipientConfig = table
            .try_into()
            .expect("id, kind, role and base_url make a recipient");
        recipient.credentials = self
            .credentials
            .into_iter()
            .map(|(name, var)| (name.to_owned(), SecretRef(var.to_owned())))
            .collect::<BTreeMap<_, _>>();
        recipient.settings = self
            .settings
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        recipient
    }
}

fn int(value: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(value).expect("demo settings are small"))
}

fn recipients_for(simulators: &Simulators) -> (Vec<RecipientConfig>, Vec<EnvVar>) {
    let google_dm = DataManagerSimConfig::default();
    let google = GoogleAdsSimConfig::default();
    let segment = SegmentSimConfig::default();
    let ga = GoogleAnalyticsSimConfig::default();
    let amplitude = AmplitudeSimConfig::default();
    let mixpanel = MixpanelSimConfig::default();
    let mailchimp = MailchimpSimConfig::default();
    let tiktok = TikTokSimConfig::default();
    let the_trade_desk = TradeDeskSimConfig::default();
    let env = [
        (WEBHOOK_SECRET.0, WEBHOOK_SECRET.1.to_owned()),
        (HUBSPOT_TOKEN.0, HUBSPOT_TOKEN.1.to_owned()),
        (SALESFORCE_CLIENT_ID.0, SALESFORCE_CLIENT_ID.1.to_owned()),
        (
            SALESFORCE_CLIENT_SECRET.0,
            SALESFORCE_CLIENT_SECRET.1.to_owned(),
        ),
        (META_TOKEN.0, META_TOKEN.1.to_owned()),
        (LINKEDIN_TOKEN.0, LINKEDIN_TOKEN.1.to_owned()),
        (GOOGLE_DM_CLIENT_ID, google_dm.oauth.client_id.clone()),
        (
            GOOGLE_DM_CLIENT_SECRET,
            google_dm.oauth.client_secret.clone(),
        ),
        (
            GOOGLE_DM_REFRESH_TOKEN,
            google_dm.oauth.refresh_token.clone(),
        ),
        (GOOGLE_CLIENT_ID, google.oauth.client_id.clone()),
        (GOOGLE_CLIENT_SECRET, google.oauth.client_secret.clone()),
        (GOOGLE_REFRESH_TOKEN, google.oauth.refresh_token.clone()),
        (GOOGLE_DEVELOPER_TOKEN, google.developer_token.clone()),
        (SEGMENT_TOKEN, segment.token.clone()),
        (GA_CLIENT_ID, ga.oauth.client_id.clone()),
        (GA_CLIENT_SECRET, ga.oauth.client_secret.clone()),
        (GA_REFRESH_TOKEN, ga.oauth.refresh_token.clone()),
        (AMPLITUDE_API_KEY, amplitude.api_key.clone()),
        (AMPLITUDE_SECRET_KEY, amplitude.secret_key.clone()),
        (MIXPANEL_PROJECT_TOKEN, mixpanel.project_token.clone()),
        (MIXPANEL_OAUTH_TOKEN, mixpanel.oauth_token.clone()),
        (BRAZE_API_KEY, BrazeSimConfig::default().api_key),
        (KLAVIYO_API_KEY, KlaviyoSimConfig::default().api_key),
        (MAILCHIMP_API_KEY, mailchimp.api_key.clone()),
        (SNOWFLAKE_TOKEN, snowflake::TOKEN.to_owned()),
        (BIGQUERY_CLIENT_ID, bigquery::CLIENT_ID.to_owned()),
        (BIGQUERY_CLIENT_SECRET, bigquery::CLIENT_SECRET.to_owned()),
        (BIGQUERY_REFRESH_TOKEN, bigquery::REFRESH_TOKEN.to_owned()),
        (TIKTOK_ACCESS_TOKEN, tiktok.access_token.clone()),
        (TTD_AUTH_TOKEN, the_trade_desk.auth_token.clone()),
        (POSTGRES_URL_VAR, simulators.postgres.url().to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name: name.to_owned(),
        value,
    })
    .collect();
    let blocks = [
        Block {
            id: "partner-webhook",
            kind: hush_connector_webhook::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.webhook.base_url(),
            credentials: vec![("signing_secret", WEBHOOK_SECRET.0)],
            settings: vec![("path", WEBHOOK_PATH.into())],
            rate_limit_per_second: None,
        },
        Block {
            id: "hubspot",
            kind: hush_connector_hubspot::config::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.hubspot.base_url(),
            credentials: vec![("token", HUBSPOT_TOKEN.0)],
            settings: vec![
                ("opt_out_property", HUBSPOT_OPT_OUT_PROPERTY.into()),
                ("limit_property", HUBSPOT_LIMIT_PROPERTY.into()),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "salesforce",
            kind: hush_connector_salesforce::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.salesforce_server.base_url(),
            credentials: vec![
                ("client_id", SALESFORCE_CLIENT_ID.0),
                ("client_secret", SALESFORCE_CLIENT_SECRET.0),
            ],
            settings: vec![("retry_after_default_secs", int(DEMO_RETRY_AFTER_SECS))],
            rate_limit_per_second: None,
        },
        Block {
            id: "meta-audiences",
            kind: hush_connector_meta::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.meta.base_url(),
            credentials: vec![("access_token", META_TOKEN.0)],
            settings: vec![
                ("audience_id", META_AUDIENCE_ID.into()),
                ("api_version", META_API_VERSION.into()),
                ("rate_limit_retry_after_secs", int(DEMO_RETRY_AFTER_SECS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "linkedin-segments",
            kind: hush_connector_linkedin::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.linkedin.base_url(),
            credentials: vec![("access_token", LINKEDIN_TOKEN.0)],
            settings: vec![
                ("segment_id", LINKEDIN_SEGMENT_ID.into()),
                ("linkedin_version", LINKEDIN_VERSION.into()),
                ("rate_limit_retry_after_secs", int(DEMO_RETRY_AFTER_SECS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "google-customer-match",
            kind: hush_connector_google_data_manager::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.google_data_manager.base_url(),
            credentials: vec![
                ("client_id", GOOGLE_DM_CLIENT_ID),
                ("client_secret", GOOGLE_DM_CLIENT_SECRET),
                ("refresh_token", GOOGLE_DM_REFRESH_TOKEN),
            ],
            settings: vec![
                (
                    "operating_account_id",
                    google_dm.operating_account_id.clone().into(),
                ),
                ("audience_id", google_dm.audience_id.clone().into()),
                (
                    "token_url",
                    simulators.google_data_manager.token_url().into(),
                ),
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "google-ads-allowlisted",
            kind: hush_connector_google_ads::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.google_ads.base_url(),
            credentials: vec![
                ("client_id", GOOGLE_CLIENT_ID),
                ("client_secret", GOOGLE_CLIENT_SECRET),
                ("refresh_token", GOOGLE_REFRESH_TOKEN),
                ("developer_token", GOOGLE_DEVELOPER_TOKEN),
            ],
            settings: vec![
                ("customer_id", google.customer_id.clone().into()),
                ("user_list_id", google.user_list_id.clone().into()),
                ("token_url", simulators.google_ads.token_url().into()),
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "segment",
            kind: hush_connector_segment::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.segment.base_url(),
            credentials: vec![("token", SEGMENT_TOKEN)],
            settings: vec![
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "google-analytics",
            kind: hush_connector_google_analytics::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.google_analytics.base_url(),
            credentials: vec![
                ("client_id", GA_CLIENT_ID),
                ("client_secret", GA_CLIENT_SECRET),
                ("refresh_token", GA_REFRESH_TOKEN),
            ],
            settings: vec![
                ("property_id", ga.property_id.clone().into()),
                ("token_url", simulators.google_analytics.token_url().into()),
            ],
            rate_limit_per_second: Some(1),
        },
        Block {
            id: "amplitude",
            kind: hush_connector_amplitude::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.amplitude.base_url(),
            credentials: vec![
                ("api_key", AMPLITUDE_API_KEY),
                ("secret_key", AMPLITUDE_SECRET_KEY),
            ],
            settings: vec![
                ("requester", AMPLITUDE_REQUESTER.into()),
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: Some(1),
        },
        Block {
            id: "mixpanel",
            kind: hush_connector_mixpanel::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.mixpanel.base_url(),
            credentials: vec![
                ("project_token", MIXPANEL_PROJECT_TOKEN),
                ("oauth_token", MIXPANEL_OAUTH_TOKEN),
            ],
            settings: vec![
                ("poll_interval_ms", int(MIXPANEL_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: Some(1),
        },
        Block {
            id: "braze",
            kind: hush_connector_braze::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.braze.base_url(),
            credentials: vec![("api_key", BRAZE_API_KEY)],
            settings: vec![
                ("opt_out_attribute", BRAZE_OPT_OUT_ATTRIBUTE.into()),
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "klaviyo",
            kind: hush_connector_klaviyo::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.klaviyo.base_url(),
            credentials: vec![("api_key", KLAVIYO_API_KEY)],
            settings: vec![
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "mailchimp",
            kind: hush_connector_mailchimp::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.mailchimp.base_url(),
            credentials: vec![("api_key", MAILCHIMP_API_KEY)],
            settings: vec![("list_id", mailchimp.list_id.clone().into())],
            rate_limit_per_second: None,
        },
        Block {
            id: "warehouse",
            kind: hush_connector_snowflake::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.snowflake.base_url(),
            credentials: vec![("token", SNOWFLAKE_TOKEN)],
            settings: [
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ]
            .into_iter()
            .chain(snowflake::settings())
            .collect(),
            rate_limit_per_second: None,
        },
        Block {
            id: "bigquery",
            kind: hush_connector_bigquery::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.bigquery.base_url(),
            credentials: vec![
                ("client_id", BIGQUERY_CLIENT_ID),
                ("client_secret", BIGQUERY_CLIENT_SECRET),
                ("refresh_token", BIGQUERY_REFRESH_TOKEN),
            ],
            settings: [
                ("token_url", simulators.bigquery.token_url().into()),
                ("poll_interval_ms", int(DEMO_POLL_INTERVAL_MS)),
                ("max_wait_ms", int(DEMO_MAX_WAIT_MS)),
            ]
            .into_iter()
            .chain(bigquery::settings())
            .collect(),
            rate_limit_per_second: None,
        },
        Block {
            id: "tiktok-audiences",
            kind: hush_connector_tiktok::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.tiktok.base_url(),
            credentials: vec![("access_token", TIKTOK_ACCESS_TOKEN)],
            settings: vec![
                ("advertiser_id", tiktok.advertiser_id.clone().into()),
                (
                    "audience_ids",
                    toml::Value::Array(
                        tiktok
                            .audience_ids
                            .iter()
                            .map(|id| id.clone().into())
                            .collect(),
                    ),
                ),
                ("rate_limit_retry_after_secs", int(DEMO_RETRY_AFTER_SECS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: "the-trade-desk",
            kind: hush_connector_the_trade_desk::KIND,
            role: RecipientRole::ThirdParty,
            base_url: simulators.the_trade_desk.api_base_url(),
            credentials: vec![("auth_token", TTD_AUTH_TOKEN)],
            settings: vec![
                ("advertiser_id", the_trade_desk.advertiser_id.clone().into()),
                ("rate_limit_retry_after_secs", int(DEMO_RETRY_AFTER_SECS)),
            ],
            rate_limit_per_second: None,
        },
        Block {
            id: POSTGRES_RECIPIENT_ID,
            kind: hush_connector_postgres::KIND,
            role: RecipientRole::ServiceProvider,
            base_url: simulators.postgres.base_url().to_owned(),
            credentials: vec![("url", POSTGRES_URL_VAR)],
            settings: simulators.postgres.settings(),
            rate_limit_per_second: None,
        },
    ];
    (blocks.into_iter().map(Block::into_recipient).collect(), env)
}

fn render(
    base_config: Option<&str>,
    recipients: &[RecipientConfig],
) -> Result<String, SimulatorsError> {
    #[derive(Serialize)]
    struct One<'a> {
        recipients: [&'a RecipientConfig; 1],
    }
    let mut text = String::new();
    if let Some(base) = base_config.map(str::trim_end).filter(|b| !b.is_empty()) {
        text.push_str(base);
        text.push_str("\n\n");
    }
    text.push_str(
        "# Recipients generated by hush-simulators: every base_url below is a vendor SIMULATOR on\n\
         # loopback (test and demo infrastructure), never a real vendor; the PostgreSQL recipient\n\
         # is a schema on the real local server (deploy/local/postgres). Credentials name the\n\
         # environment variables of the env file written with --env-file.\n",
    );
    for recipient in recipients {
        let block = toml::to_string(&One {
            recipients: [recipient],
        })
        .map_err(|e| ConfigError::Invalid(format!("recipients.{}: {e}", recipient.id)))?;
        if recipient.id == POSTGRES_RECIPIENT_ID {
            text.push_str(&format!(
                "\n# {}: the REAL local PostgreSQL at {} (deploy/local/postgres), a demo schema; \
                 the postgres connector does not use base_url\n",
                recipient.id, recipient.base_url
            ));
        } else {
            text.push_str(&format!(
                "\n# {} simulator at {} (demo infrastructure)\n",
                recipient.id, recipient.base_url
            ));
        }
        text.push_str(&block);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_segments_and_query_strings_are_redacted() {
        assert_eq!(
            redact_path("/crm/objects/2026-09/contacts/jane.doe%40example.com?idProperty=email"),
            "/crm/objects/2026-09/contacts/{redacted}"
        );
        assert_eq!(
            redact_path("/services/data/v61.0/query?q=SELECT+Id+FROM+Contact+WHERE+Email+%3D+%27jane.doe%40example.com%27"),
            "/services/data/v61.0/query"
        );
        assert_eq!(
            redact_path("/v27.0/23850000000000001/users"),
            "/v27.0/23850000000000001/users"
        );
    }

    #[test]
    fn shell_values_are_single_quoted() {
        assert_eq!(shell_quote("a'b c"), r"'a'\''b c'");
    }
}
