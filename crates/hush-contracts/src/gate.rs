//! The `[gate]` section of the configuration file: which outbound streams the gate enforces
//! suppression on, which observed egress topics the leak watch reads, and how an identifier is
//! found in their records. The gate enforces it; the auditor reads it to know which streams a
//! request must be proven clean on.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::events::{Category, IdentifierType};

/// `[gate]`: enforced streams and watched egress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateSection {
    /// Address of `/healthz`, `/readyz`, `/metrics`.
    pub listen: String,
    /// Consumer group prefix: `<group_id>.<source>` per stream, `<group_id>.watch` for the watch.
    pub group_id: String,
    /// Identifies this replica's transactional producers across restarts (default: the host
    /// name). A restarted replica with the same id fences its predecessor and aborts its open
    /// transaction at once; with a new id, that transaction is aborted by the broker after
    /// `transaction_timeout_ms`.
    pub instance_id: Option<String>,
    /// Longest a transaction may stay open before the broker aborts it.
    pub transaction_timeout_ms: u64,
    /// Most records decided in one transaction.
    pub max_batch: usize,
    /// Outbound streams the gate enforces.
    pub streams: Vec<GateStream>,
    /// Observed egress topics the leak watch reads (the gate's own destinations are always
    /// watched too, with no grace).
    pub watch: Vec<WatchedEgress>,
}

impl Default for GateSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8074".into(),
            group_id: "hush-gate".into(),
            instance_id: None,
            transaction_timeout_ms: 10_000,
            max_batch: 500,
            streams: Vec::new(),
            watch: Vec::new(),
        }
    }
}

/// One enforced stream: records on `source` are decided and the cleared ones written to
/// `destination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateStream {
    /// The business's outbound topic.
    pub source: String,
    /// Where cleared records go; its consumers must read with `isolation.level=read_committed`.
    pub destination: String,
    /// Encoding of the records.
    #[serde(default)]
    pub format: RecordFormat,
    /// Data-use categories of the stream: which opt-outs apply to it.
    pub categories: Vec<Category>,
    /// Whether the stream carries sensitive personal information (a limit request applies).
    #[serde(default)]
    pub sensitive: bool,
    /// Where identifiers are in a record.
    pub identifiers: Vec<IdentifierPath>,
    /// What happens to a record about a suppressed subject.
    pub policy: GatePolicy,
    /// Dotted path of the field naming the recipient the record is headed to, for the evidence.
    #[serde(default)]
    pub destination_path: Option<String>,
    /// With the `annotate` policy: dotted path of a field to receive the GPP string (besides
    /// the `hush-gpp` and `hush-us-privacy` headers).
    #[serde(default)]
    pub annotate_field: Option<String>,
}

/// An observed egress topic: events that already left (a server-side tagging log, a vendor
/// upload log, an export manifest). The leak watch reads it; nothing is enforced on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedEgress {
    /// The topic.
    pub topic: String,
    /// Encoding of the records.
    #[serde(default)]
    pub format: RecordFormat,
    /// Data-use categories of what flows there.
    pub categories: Vec<Category>,
    /// Whether it carries sensitive personal information.
    #[serde(default)]
    pub sensitive: bool,
    /// Where identifiers are in a record.
    pub identifiers: Vec<IdentifierPath>,
    /// How long after a suppression took effect an event is still not a leak (propagation to
    /// the system that writes this topic), in milliseconds.
    #[serde(default)]
    pub grace_ms: i64,
    /// Dotted path of the field naming the recipient, for the evidence.
    #[serde(default)]
    pub destination_path: Option<String>,
}

/// Encoding of an outbound record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// A JSON object.
    #[default]
    Json,
    /// Avro in the Confluent wire format, its schema in the registry.
    Avro,
}

/// What the gate does with a record about a suppressed subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatePolicy {
    /// Not forwarded.
    Drop,
    /// Forwarded with every configured identifier removed.
    Strip,
    /// Forwarded as a Meta Limited Data Use event: `data_processing_options: ["LDU"]`, country 1,
    /// state 1000; raw identifiers removed, hashed ones kept as Meta allows.
    MetaLdu,
    /// Forwarded with the subject's IAB GPP and US Privacy strings attached.
    Annotate,
}

impl GatePolicy {
    /// The policy's configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            GatePolicy::Drop => "drop",
            GatePolicy::Strip => "strip",
            GatePolicy::MetaLdu => "meta_ldu",
            GatePolicy::Annotate => "annotate",
        }
    }
}

/// Where one identifier is in a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierPath {
    /// Dotted path (`user.email`); a path through an array matches each element
    /// (`user_data.em` where `em` is a list of hashes).
    pub path: String,
    /// Kind of identifier.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// Whether the field already holds the SHA-256 hex of the normalised value.
    #[serde(default)]
    pub hashed: bool,
}

/// Whether a subject's suppression applies to a stream of these categories: a deletion to every
/// stream; an opt-out of sale or sharing to streams that advertise, feed marketing partners or
/// enrichment (or are marked `ALL`); a limit on sensitive data to streams marked sensitive.
pub fn suppression_applies(
    categories: &[Category],
    sensitive: bool,
    deleted: bool,
    sale_share_opted_out: bool,
    sensitive_limited: bool,
) -> bool {
    let sells_or_shares = categories.iter().any(|c| {
        matches!(
            c,
            Category::Advertising
                | Category::MarketingPartners
                | Category::Enrichment
                | Category::All
        )
    });
    deleted || (sale_share_opted_out && sells_or_shares) || (sensitive_limited && sensitive)
}

impl GateSection {
    /// Every topic the leak watch reads: each stream's destination and each watched egress.
    pub fn watched_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .streams
            .iter()
            .map(|s| s.destination.clone())
            .chain(self.watch.iter().map(|w| w.topic.clone()))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Checks the section, naming the field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.max_batch == 0 {
            return invalid("gate.max_batch must be at least 1".into());
        }
        for (index, stream) in self.streams.iter().enumerate() {
            let at = format!("gate.streams[{index}]");
            if stream.source.trim().is_empty() || stream.destination.trim().is_empty() {
                return invalid(format!("{at}: source and destination are required"));
            }
            if stream.source == stream.destination {
                return invalid(format!(
                    "{at}: destination must differ from source `{}`",
                    stream.source
                ));
            }
            if stream.identifiers.is_empty() {
                return invalid(format!(
                    "{at}.identifiers: name at least one identifier path"
                ));
            }
            if stream.categories.is_empty() {
                return invalid(format!("{at}.categories: name at least one category"));
            }
            if stream.format == RecordFormat::Avro
                && matches!(stream.policy, GatePolicy::Strip | GatePolicy::MetaLdu)
            {
                return invalid(format!(
                    "{at}.policy: `{}` rewrites the record and is supported for `json` streams \
                     only; use `drop` or `annotate` for `avro`",
                    stream.policy.as_str()
                ));
            }
            validate_paths(&at, &stream.identifiers)?;
        }
        for (index, watch) in self.watch.iter().enumerate() {
            let at = format!("gate.watch[{index}]");
            if watch.topic.trim().is_empty() {
                return invalid(format!("{at}.topic is required"));
            }
            if watch.identifiers.is_empty() {
                return invalid(format!(
                    "{at}.identifiers: name at least one identifier path"
                ));
            }
            if watch.grace_ms < 0 {
                return invalid(format!("{at}.grace_ms must not be negative"));
            }
            validate_paths(&at, &watch.identifiers)?;
        }
        Ok(())
    }
}

fn validate_paths(at: &str, paths: &[IdentifierPath]) -> Result<(), ConfigError> {
    for (index, identifier) in paths.iter().enumerate() {
        if identifier.path.split('.').any(|segment| segment.is_empty()) {
            return Err(ConfigError::Invalid(format!(
                "{at}.identifiers[{index}].path `{}` is not a dotted path",
                identifier.path
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> GateSection {
        toml::from_str(text).unwrap()
    }

    const STREAM: &str = r#"
        [[streams]]
        source = "marketing.conversions.v1"
        destination = "marketing.conversions.cleared.v1"
        format = "json"
        categories = ["ADVERTISING"]
        identifiers = [ { path = "user.email", type = "EMAIL", hashed = false },
                        { path = "user_data.em", type = "EMAIL", hashed = true },
                        { path = "device.maid", type = "MAID" } ]
        policy = "drop"
    "#;

    #[test]
    fn the_documented_stream_parses_and_validates() {
        let gate = section(STREAM);
        gate.validate().unwrap();
        let stream = &gate.streams[0];
        assert_eq!(stream.policy, GatePolicy::Drop);
        assert_eq!(stream.identifiers[1].kind, IdentifierType::Email);
        assert!(stream.identifiers[1].hashed);
        assert!(!stream.identifiers[2].hashed);
        assert_eq!(
            gate.watched_topics(),
            vec!["marketing.conversions.cleared.v1".to_owned()]
        );
    }

    #[test]
    fn a_rewriting_policy_on_avro_is_refused_naming_the_field() {
        let gate = section(
            &STREAM
                .replace("\"json\"", "\"avro\"")
                .replace("\"drop\"", "\"strip\""),
        );
        let error = gate.validate().unwrap_err().to_string();
        assert!(error.contains("gate.streams[0].policy"), "{error}");
    }

    #[test]
    fn an_empty_path_segment_is_refused() {
        let gate = section(&STREAM.replace("user.email", "user..email"));
        let error = gate.validate().unwrap_err().to_string();
        assert!(
            error.contains("gate.streams[0].identifiers[0].path"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_policy_is_a_parse_error() {
        let error = toml::from_str::<GateSection>(&STREAM.replace("\"drop\"", "\"block\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("block"), "{error}");
    }

    #[test]
    fn which_suppressions_apply_to_which_streams() {
        let ads = [Category::Advertising];
        let analytics = [Category::Analytics];
        assert!(suppression_applies(&ads, false, false, true, false));
        assert!(!suppression_applies(&analytics, false, false, true, false));
        assert!(suppression_applies(&analytics, false, true, false, false));
        assert!(!suppression_applies(&ads, false, false, false, true));
        assert!(suppression_applies(&analytics, true, false, false, true));
    }
}
