//! Intake's configuration and start-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::Producer;

use hush_auth::attestation::AttestationVerifier;
use hush_auth::{guard, AuthConfig, Authenticator, HttpConfig};
use hush_contracts::crypto::{FieldCipher, DEFAULT_KEY_VAR};
use hush_contracts::deadline::{DeadlineConfig, DeadlinePolicy};
use hush_contracts::events::IdentifierType;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, SecretRef};
use hush_runtime::kafka::{ConsumerSettings, DeadLetterQueue, EventConsumer, EventProducer};
use hush_runtime::ops::{self, Readiness};
use hush_suppression_state::follow::{self, Follower};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::{self, Guards, Intake};
use crate::consent::Consent;
use crate::signals::SignalHandler;

/// Configuration of intake: the common sections, `[intake]`, `[deadlines]`, `[auth]` and
/// `[http]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// This service's section.
    #[serde(default)]
    pub intake: IntakeSection,
    /// Deadline rules (shared with the auditor).
    #[serde(default)]
    pub deadlines: DeadlineConfig,
    /// Who may submit what, and the identity system whose attestations verify deletions.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Time and rate limits of the HTTP server.
    #[serde(default)]
    pub http: HttpConfig,
}

/// `[intake]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSection {
    /// Address of the API and of `/healthz`, `/readyz`, `/metrics`.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Environment variable holding the base64 AES-256 key for raw values.
    pub encryption_key_env: SecretRef,
    /// Identifier kinds whose raw value is kept (encrypted) for connectors that need it.
    pub keep_raw: Vec<IdentifierType>,
    /// Jurisdiction of a request that names none.
    pub default_jurisdiction: String,
    /// `source_system` recorded on requests.
    pub source_system: String,
    /// How long a publish may wait for the broker before intake answers 503, in milliseconds.
    pub publish_timeout_ms: u64,
    /// `lastUpdate` of `/.well-known/gpc.json` (the date GPC support last changed).
    pub gpc_last_update: String,
    /// Name of the site's first-party cookie holding the visitor id that `GET /v1/consent`
    /// looks up (hashed as a `COOKIE_ID`, as a request naming that id is).
    pub consent_cookie: String,
    /// Consumer group of the replicas reading `hush.signals.v1`.
    pub signals_group_id: String,
    /// Upstream sources whose `received_at` starts the legal clock (otherwise it starts when
    /// intake reads the signal).
    pub trusted_signal_sources: Vec<String>,
}

impl Default for IntakeSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8070".into(),
            max_body_bytes: 64 * 1024,
            encryption_key_env: SecretRef(DEFAULT_KEY_VAR.into()),
            // Raw values the catalogue's connectors send: emails (CRMs), phones (Meta re-hashes
            // them without `+`), customer ids (Segment) and MAIDs (Meta and LinkedIn take them
            // unhashed).
            keep_raw: vec![
                IdentifierType::Email,
                IdentifierType::Phone,
                IdentifierType::CustomerId,
                IdentifierType::Maid,
            ],
            default_jurisdiction: "US-CA".into(),
            source_system: "hush-intake".into(),
            publish_timeout_ms: 5_000,
            gpc_last_update: "2026-11-26".into(),
            consent_cookie: "hush_vid".into(),
            signals_group_id: "hush-intake-signals".into(),
            trusted_signal_sources: Vec::new(),
        }
    }
}

/// Builds intake; fails when the encryption key is missing or invalid, `[auth]` is invalid or
/// a configured key set cannot be loaded. Key sets fetched by URL are refreshed until
/// `shutdown`.
pub async fn build(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Arc<Intake>> {
    config.auth.validate()?;
    config.http.validate()?;
    let auth = Arc::new(Authenticator::new(&config.auth, shutdown.clone()).await?);
    let attestation = match &config.auth.attestation {
        Some(attestation) => Some(AttestationVerifier::new(attestation, shutdown).await?),
        None => {
            tracing::warn!(
                "no [auth.attestation] identity system configured: deletions and \
                 consumer-initiated opt-ins are refused (422 verification_required)"
            );
            None
        }
    };
    let cipher = FieldCipher::from_env(&config.intake.encryption_key_env)?;
    let mut kafka = config.common.kafka.clone();
    kafka.message_timeout_ms = config.intake.publish_timeout_ms;
    let codec = AvroCodec::from_config(&config.common.schema_registry)?;
    let producer = EventProducer::new(&kafka, codec, "hush-intake")?;
    Ok(Intake::new(
        config.intake.clone(),
        config.common.topics.requests.clone(),
        producer,
        cipher,
        DeadlinePolicy::new(config.deadlines.clone()),
        Consent::new(config.intake.consent_cookie.clone()),
        Guards { auth, attestation },
    ))
}

/// Rebuilds `consent`'s suppression state from the suppressions topic, then follows it until
/// `stop`; a failed rebuild (the topic missing, the broker away) is retried every 5 seconds,
/// and until one succeeds `GET /v1/consent` answers 503 to all but GPC browsers.
pub async fn follow_suppressions(
    common: CommonConfig,
    consent: Arc<Consent>,
    stop: CancellationToken,
) {
    let codec = match AvroCodec::from_config(&common.schema_registry) {
        Ok(codec) => codec,
        Err(error) => {
            // `build` refuses the same settings first; this stays not ready rather than guess.
            tracing::error!(%error, "suppression state not followed: schema registry settings");
            return;
        }
    };
    let follower = Follower {
        client_id: "hush-intake",
        identifiers: crate::metrics::SUPPRESSED_IDENTIFIERS.clone(),
    };
    loop {
        let (_rebuilt, task) = follow::start(
            &common,
            &codec,
            follower.clone(),
            consent.lookup.clone(),
            consent.rebuilt.clone(),
            stop.clone(),
        );
        match task.await {
            Ok(()) => return,
            Err(error) => tracing::error!(%error, "suppression state not rebuilt; retrying in 5 s"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Serves intake until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let intake = build(&config, shutdown.clone()).await?;
    let readiness = Readiness::default();
    let broker_reachable = Arc::new(AtomicBool::new(false));
    readiness.require("broker reachable", broker_reachable.clone());
    readiness.require("suppression state rebuilt", intake.consent.rebuilt.clone());
    readiness.started();
    tokio::spawn(follow_suppressions(
        config.common.clone(),
        intake.consent.clone(),
        shutdown.clone(),
    ));
    let signals = EventConsumer::new(
        &config.common.kafka,
        ConsumerSettings {
            group_id: config.intake.signals_group_id.clone(),
            topics: vec![config.common.topics.signals.clone()],
            client_id: "hush-intake-signals".into(),
        },
        DeadLetterQueue::new(
            intake.producer.clone(),
            config.common.topics.dlq.clone(),
            "hush-intake",
        ),
    )?;
    readiness.require("signals consumer assigned", signals.assigned_flag());
    tokio::spawn(signals.run(
        shutdown.clone(),
        SignalHandler {
            intake: intake.clone(),
            codec: intake.producer.codec().clone(),
            trusted_sources: config.intake.trusted_signal_sources.clone(),
        },
    ));
    tokio::spawn(watch_broker(
        config.common.clone(),
        broker_reachable,
        shutdown.clone(),
    ));
    let router = guard::harden(api::router(intake), &config.http).merge(ops::router(readiness));
    ops::serve(config.intake.listen.clone(), router, shutdown).await
}

/// Keeps `reachable` true while the broker answers metadata requests.
async fn watch_broker(
    config: CommonConfig,
    reachable: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let Ok(client) = hush_runtime::kafka::client_config(&config.kafka).and_then(|c| {
        c.create::<rdkafka::producer::BaseProducer>()
            .map_err(|e| hush_runtime::config::ConfigError::Invalid(e.to_string()))
    }) else {
        return;
    };
    let client = Arc::new(client);
    loop {
        let probe = client.clone();
        let ok = tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(None, Duration::from_secs(3))
                .is_ok()
        })
        .await
        .unwrap_or(false);
        reachable.store(ok, Ordering::SeqCst);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_intake_keeps_the_raw_values_the_catalogues_connectors_send() {
        let keep_raw = IntakeSection::default().keep_raw;
        for kind in [
            IdentifierType::Email,
            IdentifierType::Phone,
            IdentifierType::CustomerId,
            IdentifierType::Maid,
        ] {
            assert!(keep_raw.contains(&kind), "{kind:?} is not kept raw");
        }
    }
}
