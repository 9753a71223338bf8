//! Avro encoding in the Confluent wire format through the schema registry
//! (`TopicNameStrategy`: subject `<topic>-value`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::avro_common::DecodeResult;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use hush_contracts::events::AvroEvent;

use crate::config::{ConfigError, RegistryAuth, RegistryConfig};

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The registry could not be reached or answered with a server error; try again later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry refused Hush's credentials (HTTP 401 or 403): the `[schema_registry]`
    /// authentication settings or the registry's permissions need fixing. Retryable, so that no
    /// record is dead-lettered or skipped for it.
    #[error(
        "schema registry refused Hush's credentials (HTTP {status}): check [schema_registry] \
         username/password_env or bearer_token_env and the registry's permissions"
    )]
    RegistryRefusedCredentials {
        /// HTTP status the registry answered.
        status: u16,
    },
    /// The registry refused the schema (e.g. an incompatible change) or the event does not fit it.
    #[error("schema registry refused schema for subject {subject}: {reason}")]
    SchemaRefused {
        /// Subject, e.g. `hush.requests.v1-value`.
        subject: String,
        /// Registry's reason.
        reason: String,
    },
    /// The bytes are not a valid Confluent-framed Avro record of the expected type.
    #[error("malformed {expected} payload: {reason}")]
    Malformed {
        /// Expected record name.
        expected: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The event does not fit its own schema (a bug).
    #[error("event does not fit schema {name}: {reason}")]
    Invalid {
        /// Record name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl CodecError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CodecError::RegistryUnavailable(_) | CodecError::RegistryRefusedCredentials { .. }
        )
    }
}

/// Encodes and decodes [`AvroEvent`]s through the schema registry; cheap to clone.
#[derive(Clone)]
pub struct AvroCodec {
    encoder: Arc<AvroEncoder>,
    decoder: Arc<AvroDecoder>,
    reader_schemas: Arc<Mutex<HashMap<&'static str, Arc<Schema>>>>,
}

impl AvroCodec {
    /// A codec for the registry at `url` (e.g. `http://127.0.0.1:8081/apis/ccompat/v7`),
    /// without authentication.
    pub fn new(url: &str) -> Self {
        Self::with_settings(SrSettings::new(url.trim_end_matches('/').to_owned()))
    }

    /// A codec for the registry `config` describes, authenticating as it says (basic auth or a
    /// bearer token, the secret read from its environment variable now). Invalid or
    /// incomplete authentication settings are refused with an error naming them.
    pub fn from_config(config: &RegistryConfig) -> Result<Self, ConfigError> {
        let auth = config.auth()?;
        let url = config.url.trim_end_matches('/').to_owned();
        if auth != RegistryAuth::None && url.starts_with("http://") {
            tracing::warn!(
                registry = %url,
                "schema registry credentials are sent over plain HTTP; use an https:// URL"
            );
        }
        let mut builder = SrSettings::new_builder(url);
        match &auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { username, password } => {
                builder.set_basic_authorization(username, Some(password));
            }
            RegistryAuth::Bearer(token) => {
                builder.set_token_authorization(token);
            }
        }
        let settings = builder
            .build()
            .map_err(|e| ConfigError::Invalid(format!("schema registry client: {e}")))?;
        Ok(Self::with_settings(settings))
    }

    fn with_settings(settings: SrSettings) -> Self {
        Self {
            encoder: Arc::new(AvroEncoder::new(settings.clone())),
            decoder: Arc::new(AvroDecoder::new(settings)),
            reader_schemas: Arc::default(),
        }
    }

    /// Encodes `event` for `topic`, registering its schema under `<topic>-value` if needed.
    pub async fn encode<T: AvroEvent>(
        &self,
        topic: &str,
        event: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_owned(),
            false,
            SuppliedSchema::new(
                Some(T::FULL_NAME.to_owned()),
                SchemaType::Avro,
                T::SCHEMA.to_owned(),
            ),
        );
        self.encoder
            .encode_struct(event, &strategy)
            .await
            .map_err(|e| {
                if let Some(status) = refused_credentials(&e) {
                    // The library caches a refusal as final; a later attempt must ask again.
                    self.encoder.remove_errors_from_cache();
                    return CodecError::RegistryRefusedCredentials { status };
                }
                classify_encode_error(format!("{topic}-value"), e)
            })
    }

    /// Decodes Confluent-framed bytes written with any registered version of `T`'s schema,
    /// resolving them to the current version (defaults fill added fields).
    pub async fn decode<T: AvroEvent>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let malformed = |reason: String| CodecError::Malformed {
            expected: T::FULL_NAME,
            reason,
        };
        let decoded = self.decode_framed(bytes, T::FULL_NAME).await?;
        if let Some(name) = decoded.name.as_ref() {
            if name.fullname(None) != T::FULL_NAME {
                return Err(malformed(format!(
                    "record is {}, not {}",
                    name.fullname(None),
                    T::FULL_NAME
                )));
            }
        }
        let reader = self.reader_schema::<T>()?;
        let value = decoded
            .value
            .resolve(&reader)
            .map_err(|e| malformed(e.to_string()))?;
        apache_avro::from_value(&value).map_err(|e| malformed(e.to_string()))
    }

    /// Like [`AvroCodec::decode`], but waits out an unreachable registry (retrying with a delay
    /// doubling from 1 s to 30 s, and saying so in the log) instead of answering: for readers of
    /// state topics, which must never skip a record because the registry was down. Only a
    /// record that can never decode is answered with an error.
    pub async fn decode_patiently<T: AvroEvent>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let mut wait = std::time::Duration::from_secs(1);
        loop {
            match self.decode::<T>(bytes).await {
                Err(error) if error.is_retryable() => {
                    tracing::warn!(%error, record = T::FULL_NAME, retry_in = ?wait, "waiting for the schema registry");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(30));
                }
                decoded => return decoded,
            }
        }
    }

    /// Decodes Confluent-framed bytes of any registered schema into JSON (records become
    /// objects, unions their chosen branch): for records whose type Hush does not own, such as
    /// a business's outbound events.
    pub async fn decode_json(&self, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        const EXPECTED: &str = "a Confluent-framed Avro record";
        let decoded = self.decode_framed(bytes, EXPECTED).await?;
        apache_avro::from_value(&decoded.value).map_err(|e| CodecError::Malformed {
            expected: EXPECTED,
            reason: e.to_string(),
        })
    }

    /// Checks the Confluent frame (magic byte 0 + 4-byte schema id) and decodes the datum with
    /// the writer's schema from the registry; an unreachable registry is retryable, anything else
    /// is malformed `expected`.
    async fn decode_framed(
        &self,
        bytes: &[u8],
        expected: &'static str,
    ) -> Result<DecodeResult, CodecError> {
        let malformed = |reason: String| CodecError::Malformed { expected, reason };
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(malformed(
                "not in the Confluent wire format (magic byte 0 + 4-byte schema id)".into(),
            ));
        }
        self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if let Some(status) = refused_credentials(&e) {
                // The library caches a refusal as final; a later attempt must ask again.
                self.decoder.remove_errors_from_cache();
                CodecError::RegistryRefusedCredentials { status }
            } else if e.retriable {
                CodecError::RegistryUnavailable(e.to_string())
            } else {
                malformed(e.to_string())
            }
        })
    }

    fn reader_schema<T: AvroEvent>(&self) -> Result<Arc<Schema>, CodecError> {
        let mut schemas = self.reader_schemas.lock().expect("schema cache poisoned");
        if let Some(schema) = schemas.get(T::FULL_NAME) {
            return Ok(schema.clone());
        }
        let schema = Arc::new(
            Schema::parse_str(T::SCHEMA).map_err(|e| CodecError::Invalid {
                name: T::FULL_NAME,
                reason: e.to_string(),
            })?,
        );
        schemas.insert(T::FULL_NAME, schema.clone());
        Ok(schema)
    }
}

/// The HTTP status when the registry refused the credentials (401 or 403); the library reports
/// it only in its message ("… failed with status 401 Unauthorized").
fn refused_credentials(error: &SRCError) -> Option<u16> {
    let text = error.to_string();
    [401, 403]
        .into_iter()
        .find(|status| text.contains(&format!("failed with status {status} ")))
}

fn classify_encode_error(subject: String, error: SRCError) -> CodecError {
    if error.retriable {
        CodecError::RegistryUnavailable(error.to_string())
    } else {
        CodecError::SchemaRefused {
            subject,
            reason: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use crate::config::SecretRef;

    use axum::http::StatusCode;
    use axum::routing::get;
    use hush_contracts::events::WatchProgress;

    /// A registry that answers 503 to the first `outages` schema look-ups, then the schema.
    async fn flaky_registry(outages: usize) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/schemas/ids/{id}",
            get(move || {
                let counter = counter.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < outages {
                        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
                    }
                    let body = serde_json::json!({ "schema": WatchProgress::SCHEMA });
                    (StatusCode::OK, body.to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, calls)
    }

    /// A registry that serves the schema only to requests carrying `Authorization: <expected>`
    /// while `accepting` is true, and answers 401 otherwise.
    async fn guarded_registry(expected: &'static str, accepting: Arc<AtomicBool>) -> String {
        let app = axum::Router::new().route(
            "/schemas/ids/{id}",
            get(move |headers: axum::http::HeaderMap| {
                let accepting = accepting.clone();
                async move {
                    let presented = headers
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    if !accepting.load(Ordering::SeqCst) || presented != Some(expected) {
                        return (StatusCode::UNAUTHORIZED, String::new());
                    }
                    let body = serde_json::json!({ "schema": WatchProgress::SCHEMA });
                    (StatusCode::OK, body.to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn progress() -> WatchProgress {
        WatchProgress {
            topic: "egress".into(),
            records_examined: 3,
            covered_until: 4,
            offsets: HashMap::new(),
            leaks_found: 0,
            updated_at: 5,
        }
    }

    #[tokio::test]
    async fn basic_auth_from_the_configuration_reaches_the_registry() {
        // base64("hush:s3cret")
        let url = guarded_registry("Basic aHVzaDpzM2NyZXQ=", Arc::new(AtomicBool::new(true))).await;
        std::env::set_var("HUSH_TEST_CODEC_REGISTRY_PASSWORD", "s3cret");
        let config = RegistryConfig {
            url: url.clone(),
            username: Some("hush".into()),
            password_env: Some(SecretRef("HUSH_TEST_CODEC_REGISTRY_PASSWORD".into())),
            ..RegistryConfig::default()
        };
        let codec = AvroCodec::from_config(&config).unwrap();
        let decoded: WatchProgress = codec.decode(&framed(&progress())).await.unwrap();
        assert_eq!(decoded, progress());
        let anonymous = AvroCodec::new(&url)
            .decode::<WatchProgress>(&framed(&progress()))
            .await;
        assert!(anonymous.is_err(), "the registry does check the header");
    }

    #[tokio::test]
    async fn a_bearer_token_from_the_configuration_reaches_the_registry() {
        let url = guarded_registry("Bearer tok-123", Arc::new(AtomicBool::new(true))).await;
        std::env::set_var("HUSH_TEST_CODEC_REGISTRY_TOKEN", "tok-123");
        let config = RegistryConfig {
            url,
            bearer_token_env: Some(SecretRef("HUSH_TEST_CODEC_REGISTRY_TOKEN".into())),
            ..RegistryConfig::default()
        };
        let codec = AvroCodec::from_config(&config).unwrap();
        let decoded: WatchProgress = codec.decode(&framed(&progress())).await.unwrap();
        assert_eq!(decoded, progress());
    }

    #[tokio::test]
    async fn refused_credentials_are_retryable_and_asked_again_not_cached() {
        let accepting = Arc::new(AtomicBool::new(false));
        let url = guarded_registry("Bearer tok-456", accepting.clone()).await;
        std::env::set_var("HUSH_TEST_CODEC_REGISTRY_TOKEN_2", "tok-456");
        let config = RegistryConfig {
            url,
            bearer_token_env: Some(SecretRef("HUSH_TEST_CODEC_REGISTRY_TOKEN_2".into())),
            ..RegistryConfig::default()
        };
        let codec = AvroCodec::from_config(&config).unwrap();
        let error = codec
            .decode::<WatchProgress>(&framed(&progress()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                CodecError::RegistryRefusedCredentials { status: 401 }
            ),
            "{error}"
        );
        assert!(
            error.is_retryable(),
            "a refusal must not dead-letter a record"
        );
        assert!(!error.to_string().contains("tok-456"), "{error}");
        accepting.store(true, Ordering::SeqCst);
        let decoded: WatchProgress = codec.decode(&framed(&progress())).await.unwrap();
        assert_eq!(decoded, progress(), "the refusal was not cached");
    }

    /// The Confluent frame (magic byte, schema id 7) around one datum. `to_avro_datum` is
    /// deprecated in apache-avro 0.22 but is the plain way to write a bare datum in a test.
    #[allow(deprecated)]
    fn framed(progress: &WatchProgress) -> Vec<u8> {
        let schema = Schema::parse_str(WatchProgress::SCHEMA).unwrap();
        let value = apache_avro::to_value(progress)
            .unwrap()
            .resolve(&schema)
            .unwrap();
        let mut bytes = vec![0, 0, 0, 0, 7];
        bytes.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
        bytes
    }

    #[tokio::test]
    async fn a_patient_decode_waits_out_a_registry_outage_instead_of_skipping() {
        let (url, calls) = flaky_registry(2).await;
        let progress = WatchProgress {
            topic: "egress".into(),
            records_examined: 3,
            covered_until: 4,
            offsets: HashMap::new(),
            leaks_found: 0,
            updated_at: 5,
        };
        let codec = AvroCodec::new(&url);
        let decoded: WatchProgress = codec.decode_patiently(&framed(&progress)).await.unwrap();
        assert_eq!(decoded, progress);
        assert!(
            calls.load(Ordering::SeqCst) >= 3,
            "retried through the outage"
        );
    }

    #[tokio::test]
    async fn a_plain_decode_reports_the_outage_as_retryable() {
        let (url, _) = flaky_registry(usize::MAX).await;
        let codec = AvroCodec::new(&url);
        let error = codec
            .decode::<WatchProgress>(&[0, 0, 0, 0, 9, 2])
            .await
            .unwrap_err();
        assert!(error.is_retryable(), "{error}");
    }
}
