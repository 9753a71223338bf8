//! Avro encoding in the Confluent wire format through the schema registry
//! (`TopicNameStrategy`: subject `<topic>-value`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use hush_contracts::events::AvroEvent;

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The registry could not be reached or answered with a server error; try again later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
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
        matches!(self, CodecError::RegistryUnavailable(_))
    }
}

/// Encodes and decodes [`AvroEvent`]s through the schema registry; cheap to clone.
#[derive(Clone)]
pub struct AvroCodec {
    encoder: EasyAvroEncoder,
    decoder: EasyAvroDecoder,
    reader_schemas: Arc<Mutex<HashMap<&'static str, Arc<Schema>>>>,
}

impl AvroCodec {
    /// A codec for the registry at `url` (e.g. `http://127.0.0.1:8081/apis/ccompat/v7`).
    pub fn new(url: &str) -> Self {
        let url = url.trim_end_matches('/').to_owned();
        Self {
            encoder: EasyAvroEncoder::new(SrSettings::new(url.clone())),
            decoder: EasyAvroDecoder::new(SrSettings::new(url)),
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
            .map_err(|e| classify_encode_error(format!("{topic}-value"), e))
    }

    /// Decodes Confluent-framed bytes written with any registered version of `T`'s schema,
    /// resolving them to the current version (defaults fill added fields).
    pub async fn decode<T: AvroEvent>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let malformed = |reason: String| CodecError::Malformed {
            expected: T::FULL_NAME,
            reason,
        };
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(malformed(
                "not in the Confluent wire format (magic byte 0 + 4-byte schema id)".into(),
            ));
        }
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if e.retriable {
                CodecError::RegistryUnavailable(e.to_string())
            } else {
                malformed(e.to_string())
            }
        })?;
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

    /// Decodes Confluent-framed bytes of any registered schema into JSON (records become
    /// objects, unions their chosen branch): for records whose type Hush does not own, such as
    /// a business's outbound events.
    pub async fn decode_json(&self, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        let malformed = |reason: String| CodecError::Malformed {
            expected: "a Confluent-framed Avro record",
            reason,
        };
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(malformed(
                "not in the Confluent wire format (magic byte 0 + 4-byte schema id)".into(),
            ));
        }
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if e.retriable {
                CodecError::RegistryUnavailable(e.to_string())
            } else {
                malformed(e.to_string())
            }
        })?;
        apache_avro::from_value(&decoded.value).map_err(|e| malformed(e.to_string()))
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
