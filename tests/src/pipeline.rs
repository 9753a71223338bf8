//! The whole pipeline in one process, on the real broker and registry: intake, the state
//! service, one suppressor per recipient and the auditor, with the webhook and HubSpot
//! simulators as the downstream recipients. Each pipeline uses its own topics and groups.

use std::collections::HashMap;
use std::sync::Once;
use std::time::Duration;

use hush_connector_hubspot::sim::HubSpotSimulator;
use hush_connector_webhook::sim::WebhookSimulator;
use hush_contracts::events::Confirmation;
use hush_contracts::recipients::RecipientConfig;
use hush_resolution::ResolverConfig;
use hush_runtime::config::{CommonConfig, TopicsConfig};
use hush_runtime::ops::Readiness;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{operator_client, test_auth, DENYLIST_KEY_VAR};
use crate::Stack;

/// Signing secret of the test webhook recipient (set in the environment once).
pub const WEBHOOK_SECRET: &str = "it-webhook-signing-secret-0123456789";
/// Token of the test HubSpot simulator.
pub const HUBSPOT_TOKEN: &str = "it-hubspot-private-app-token";
/// Environment variable names the test recipients' credentials are read from.
pub const WEBHOOK_SECRET_VAR: &str = "HUSH_IT_WEBHOOK_SECRET";
/// See [`WEBHOOK_SECRET_VAR`].
pub const HUBSPOT_TOKEN_VAR: &str = "HUSH_IT_HUBSPOT_TOKEN";

/// What the services log into a test's captured output when `RUST_LOG` is not set: warnings,
/// and each service's decisions per request (no personal data is logged at these levels).
const DEFAULT_TEST_LOG_FILTER: &str =
    "warn,hush_intake=info,hush_suppressor=info,hush_auditor=info,hush_runtime::kafka=info";

/// Sets the test credentials and encryption key in the environment, once per process.
pub fn set_test_secrets() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use base64::Engine;
        // The services' own log lines go to the test's captured output, which libtest prints
        // only for a failed test: a failure in CI then says what each service was doing.
        // RUST_LOG overrides the default filter.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_TEST_LOG_FILTER));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        std::env::set_var(WEBHOOK_SECRET_VAR, WEBHOOK_SECRET);
        std::env::set_var(HUBSPOT_TOKEN_VAR, HUBSPOT_TOKEN);
        std::env::set_var(
            hush_contracts::crypto::DEFAULT_KEY_VAR,
            base64::engine::general_purpose::STANDARD.encode([42u8; 32]),
        );
    });
}

/// Knobs of a test pipeline.
#[derive(Clone)]
pub struct Options {
    /// Attempts before FAILED_PERMANENT.
    pub max_attempts: u32,
    /// Vendor calls made in place before the retry topic.
    pub in_place_attempts: u32,
    /// Vendor call timeout.
    pub timeout_ms: u64,
    /// Recipients' batch size.
    pub batch_size: usize,
    /// More recipients, each served by its own suppressor.
    pub extra_recipients: Vec<RecipientConfig>,
    /// Configure the pipeline's own webhook and HubSpot recipients (the default); with `false`
    /// their simulators still run but only `extra_recipients` are configured.
    pub builtin_recipients: bool,
    /// Also run the enrichment deny-list service with a `clearbit` recipient enforced by it.
    pub with_denylist: bool,
    /// Use these (existing) topics instead of new ones.
    pub topics: Option<TopicsConfig>,
    /// Wait until every service is ready before returning (the default).
    pub wait_ready: bool,
    /// Intake's `publish_timeout_ms` (its producer's message timeout), when not the default.
    pub intake_publish_timeout_ms: Option<u64>,
    /// Intake's identity resolvers (`[[resolvers]]`).
    pub resolvers: Vec<ResolverConfig>,
    /// Changes the suppressors' `[suppressor]` section after the pipeline's own test settings.
    pub tune_suppressor: Option<fn(&mut hush_suppressor::config::SuppressorSection)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            in_place_attempts: 2,
            timeout_ms: 2_000,
            batch_size: 10,
            extra_recipients: Vec::new(),
            builtin_recipients: true,
            with_denylist: false,
            topics: None,
            wait_ready: true,
            intake_publish_timeout_ms: None,
            resolvers: Vec::new(),
            tune_suppressor: None,
        }
    }
}

/// A running pipeline.
pub struct Pipeline {
    /// The stack.
    pub stack: Stack,
    /// Topics of this pipeline.
    pub topics: TopicsConfig,
    /// Intake base URL.
    pub intake_url: String,
    /// Auditor base URL.
    pub auditor_url: String,
    /// Webhook recipient simulator.
    pub webhook: WebhookSimulator,
    /// HubSpot simulator.
    pub hubspot: HubSpotSimulator,
    /// Recipients as configured.
    pub recipients: Vec<RecipientConfig>,
    suppressor_config: hush_suppressor::config::Config,
    suppressors: HashMap<String, (CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    readiness: Vec<(String, Readiness)>,
    wait_ready: bool,
    shutdown: CancellationToken,
    http: reqwest::Client,
}

/// A free loopback address (bound then released).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("addr").to_string()
}

impl Pipeline {
    /// Starts every service of the pipeline and waits until each is ready.
    pub async fn start(name: &str, options: Options) -> Pipeline {
        Self::start_on(Stack::from_env(), name, options).await
    }

    /// Only an intake on `topics` (for requests published before any other service runs).
    pub async fn intake_only(stack: &Stack, topics: &TopicsConfig) -> IntakeOnly {
        set_test_secrets();
        let common = CommonConfig {
            kafka: stack.kafka.clone(),
            schema_registry: hush_runtime::config::RegistryConfig {
                url: stack.registry_url.clone(),
                ..Default::default()
            },
            topics: topics.clone(),
        };
        let config = hush_intake::service::Config {
            common,
            auth: test_auth().config(),
            ..Default::default()
        };
        let shutdown = CancellationToken::new();
        let intake = hush_intake::service::build(&config, shutdown.clone())
            .await
            .expect("intake");
        let addr = free_addr();
        tokio::spawn(hush_runtime::ops::serve(
            addr.clone(),
            hush_intake::api::router(intake),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        IntakeOnly {
            url: format!("http://{addr}"),
            shutdown,
        }
    }

    /// Like [`Pipeline::start`], on `stack`.
    pub async fn start_on(stack: Stack, name: &str, options: Options) -> Pipeline {
        set_test_secrets();
        let topics = options
            .topics
            .clone()
            .unwrap_or_else(|| stack.unique_topics(name));
        stack.create_topics(&topics).await;
        let webhook = WebhookSimulator::start(WEBHOOK_SECRET, "/privacy/notices")
            .await
            .expect("webhook simulator");
        let hubspot = HubSpotSimulator::start(HUBSPOT_TOKEN)
            .await
            .expect("hubspot simulator");
        let auditor_addr = free_addr();
        let mut recipients: Vec<RecipientConfig> = toml::from_str::<toml::Table>(&format!(
            r#"
            [[recipients]]
            id = "partner-webhook"
            kind = "webhook"
            role = "THIRD_PARTY"
            base_url = "{webhook}"
            credentials = {{ signing_secret = "{WEBHOOK_SECRET_VAR}" }}
            max_attempts = {max}
            timeout_ms = {timeout}
            batch_size = {batch}
            rate_limit_per_second = 1000
            [recipients.settings]
            path = "/privacy/notices"
            callback_url = "http://{auditor_addr}/v1/callbacks/partner-webhook"

            [[recipients]]
            id = "hubspot"
            kind = "hubspot"
            role = "SERVICE_PROVIDER"
            base_url = "{hubspot}"
            credentials = {{ token = "{HUBSPOT_TOKEN_VAR}" }}
            max_attempts = {max}
            timeout_ms = {timeout}
            batch_size = {batch}
            rate_limit_per_second = 9  # HubSpot allows 100 requests per 10 s
            "#,
            webhook = webhook.base_url(),
            hubspot = hubspot.base_url(),
            max = options.max_attempts,
            timeout = options.timeout_ms,
            batch = options.batch_size,
        ))
        .expect("recipients toml")["recipients"]
            .clone()
            .try_into()
            .expect("recipients");

        let common = CommonConfig {
            kafka: stack.kafka.clone(),
            schema_registry: hush_runtime::config::RegistryConfig {
                url: stack.registry_url.clone(),
                ..Default::default()
            },
            topics: topics.clone(),
        };
        let group = |service: &str| format!("it-{service}-{}", uuid::Uuid::new_v4().simple());
        let shutdown = CancellationToken::new();
        if !options.builtin_recipients {
            recipients.clear();
        }
        recipients.extend(options.extra_recipients.iter().cloned());
        if options.with_denylist {
            let deny_list = hush_denylist::DenyList::follow_topic(&common, shutdown.clone())
                .await
                .expect("deny-list rebuilt");
            let addr = free_addr();
            let auth = hush_auth::Authenticator::new(&test_auth().config(), shutdown.clone())
                .await
                .expect("deny-list auth");
            let settings = hush_denylist::api::ApiSettings {
                max_body_bytes: 1 << 20,
                vendors: ["clearbit".to_owned()].into(),
            };
            tokio::spawn(hush_runtime::ops::serve(
                addr.clone(),
                hush_denylist::api::router(deny_list, settings, std::sync::Arc::new(auth)),
                shutdown.clone(),
            ));
            recipients.push(
                toml::from_str(&format!(
                    r#"
                    id = "clearbit"
                    kind = "clearbit"
                    role = "THIRD_PARTY"
                    base_url = "http://{addr}"
                    categories = ["ENRICHMENT"]
                    timeout_ms = {timeout}
                    credentials = {{ api_key = "{DENYLIST_KEY_VAR}" }}
                    [settings]
                    poll_interval_ms = 100
                    max_wait_ms = 10000
                    "#,
                    timeout = options.timeout_ms
                ))
                .expect("enrichment recipient"),
            );
        }

        // intake
        let mut intake_config = hush_intake::service::Config {
            common: common.clone(),
            auth: test_auth().config(),
            resolvers: options.resolvers.clone(),
            ..Default::default()
        };
        if let Some(timeout) = options.intake_publish_timeout_ms {
            intake_config.intake.publish_timeout_ms = timeout;
        }
        let intake = hush_intake::service::build(&intake_config, shutdown.clone())
            .await
            .expect("intake");
        let intake_addr = free_addr();
        tokio::spawn(hush_runtime::ops::serve(
            intake_addr.clone(),
            hush_intake::api::router(intake),
            shutdown.clone(),
        ));

        // state
        let state_section = hush_state::service::StateSection {
            listen: free_addr(),
            group_id: group("state"),
        };
        let state_ready = Readiness::default();
        hush_state::service::run(
            &common,
            &state_section,
            state_ready.clone(),
            shutdown.clone(),
        )
        .await
        .expect("state service");

        // auditor
        let mut auditor_config = hush_auditor::service::Config {
            common: common.clone(),
            recipients: recipients.clone(),
            auth: test_auth().config(),
            ..Default::default()
        };
        auditor_config.auditor.listen = auditor_addr.clone();
        auditor_config.auditor.group_id = group("auditor");
        let auditor_ready = Readiness::default();
        tokio::spawn(hush_auditor::service::run(
            auditor_config,
            auditor_ready.clone(),
            shutdown.clone(),
        ));

        // suppressors
        let mut suppressor_config = hush_suppressor::config::Config {
            common,
            recipients: recipients.clone(),
            ..Default::default()
        };
        suppressor_config.suppressor.group_prefix = group("suppressor");
        suppressor_config.suppressor.in_place_attempts = options.in_place_attempts;
        suppressor_config.suppressor.retry_initial_delay_ms = 200;
        suppressor_config.suppressor.retry_max_delay_ms = 1_000;
        suppressor_config.suppressor.max_in_place_wait_ms = 5_000;
        suppressor_config.suppressor.linger_ms = 20;
        if let Some(tune) = options.tune_suppressor {
            tune(&mut suppressor_config.suppressor);
        }

        let mut pipeline = Pipeline {
            stack,
            topics,
            intake_url: format!("http://{intake_addr}"),
            auditor_url: format!("http://{auditor_addr}"),
            webhook,
            hubspot,
            recipients,
            suppressor_config,
            suppressors: HashMap::new(),
            readiness: vec![
                ("state".to_owned(), state_ready),
                ("auditor".to_owned(), auditor_ready.clone()),
            ],
            wait_ready: options.wait_ready,
            shutdown,
            http: operator_client(),
        };
        let ids: Vec<String> = pipeline.recipients.iter().map(|r| r.id.clone()).collect();
        for id in ids {
            pipeline.start_suppressor(&id).await;
        }
        if pipeline.wait_ready {
            pipeline.wait_ready(&auditor_ready, "auditor").await;
        }
        pipeline
    }

    /// Each service's unmet readiness conditions (services that are ready are left out).
    pub fn unmet(&self) -> Vec<(String, Vec<&'static str>)> {
        self.readiness
            .iter()
            .map(|(name, readiness)| (name.clone(), readiness.unmet()))
            .filter(|(_, unmet)| !unmet.is_empty())
            .collect()
    }

    async fn wait_ready(&self, readiness: &Readiness, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let unmet = readiness.unmet();
            if unmet.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} not ready: {unmet:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts (or restarts) the suppressor of recipient `id` and waits until it is ready.
    pub async fn start_suppressor(&mut self, id: &str) {
        let token = self.shutdown.child_token();
        let readiness = Readiness::default();
        let config = self.suppressor_config.clone();
        let (id_owned, ready, stop) = (id.to_owned(), readiness.clone(), token.clone());
        let task = tokio::spawn(async move {
            hush_suppressor::service::run(&config, &id_owned, ready, stop).await
        });
        if self.wait_ready {
            self.wait_ready(&readiness, id).await;
        }
        self.readiness.retain(|(name, _)| name != id);
        self.readiness.push((id.to_owned(), readiness));
        self.suppressors.insert(id.to_owned(), (token, task));
    }

    /// Stops the suppressor of `id` cleanly: its consumers commit, leave their group and are
    /// gone when this returns (a restart then reads the environment afresh).
    pub async fn stop_suppressor(&mut self, id: &str) {
        if let Some((token, task)) = self.suppressors.remove(id) {
            token.cancel();
            let _ = task.await;
        }
    }

    /// Kills the suppressor of `id` abruptly (its task is aborted: no clean shutdown).
    pub async fn kill_suppressor(&mut self, id: &str) {
        if let Some((_, task)) = self.suppressors.remove(id) {
            task.abort();
            let _ = task.await;
        }
    }

    /// Posts a JSON body to intake's `/v1/requests`.
    pub async fn submit(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/requests", self.intake_url))
            .json(&body)
            .send()
            .await
            .expect("intake reachable");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The auditor's record of `id`, once `done` holds for it.
    pub async fn wait_record(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            if let Ok(response) = self
                .http
                .get(format!("{}/v1/requests/{id}", self.auditor_url))
                .send()
                .await
            {
                if response.status().is_success() {
                    last = response.json().await.unwrap_or(Value::Null);
                    if done(&last) {
                        return last;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("record {id} did not reach the expected state within {timeout:?}; last: {last:#}");
    }

    /// The auditor's record once every required connector confirmed.
    pub async fn wait_complete(&self, id: &str) -> Value {
        self.wait_record(id, Duration::from_secs(60), |r| {
            r["missing_connectors"]
                .as_array()
                .is_some_and(Vec::is_empty)
                && r["connectors"].as_array().is_some_and(|c| !c.is_empty())
        })
        .await
    }

    /// Every confirmation on this pipeline's topic (reads until `expected` or a timeout).
    pub async fn confirmations(&self, expected: usize) -> Vec<Confirmation> {
        let records = self.stack.read_all(
            &self.topics.confirmations,
            expected,
            Duration::from_secs(10),
        );
        let codec = self.stack.codec();
        let mut out = Vec::new();
        for record in records {
            out.push(
                codec
                    .decode::<Confirmation>(record.payload.as_deref().unwrap_or_default())
                    .await
                    .expect("confirmation decodes"),
            );
        }
        out
    }

    /// Stops every service.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

/// An intake alone, stopped when dropped.
pub struct IntakeOnly {
    /// Base URL.
    pub url: String,
    shutdown: CancellationToken,
}

impl IntakeOnly {
    /// Posts a JSON body to `/v1/requests`.
    pub async fn submit(&self, body: Value) -> (u16, Value) {
        let response = operator_client()
            .post(format!("{}/v1/requests", self.url))
            .json(&body)
            .send()
            .await
            .expect("intake reachable");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for IntakeOnly {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
