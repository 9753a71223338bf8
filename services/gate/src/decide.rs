//! The gate's decision for one record: which of its identifiers are suppressed for this stream,
//! and what the stream's policy makes of the record. Pure; the caller produces the outcome.

use hush_contracts::gate::{suppression_applies, GatePolicy, GateStream};
use hush_iab::{gpp_string, us_privacy_string, PrivacySignals, Section};
use hush_suppression_index::Suppression;
use serde_json::Value;

use crate::record::{identifiers_in, meta_ldu, strip, with_field, FoundIdentifier, RecordError};
use hush_suppression_state::SuppressionLookup;

/// Header carrying the subject's IAB GPP string on an annotated record.
pub const GPP_HEADER: &str = "hush-gpp";
/// Header carrying the subject's IAB US Privacy string on an annotated record.
pub const US_PRIVACY_HEADER: &str = "hush-us-privacy";

/// An identifier of the record that is suppressed for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressedIdentifier {
    /// The identifier.
    pub identifier: FoundIdentifier,
    /// Its suppression.
    pub suppression: Suppression,
}

/// The suppressed identifiers of `record` for a stream of these categories.
pub fn suppressed_identifiers(
    record: &Value,
    identifiers: &[hush_contracts::gate::IdentifierPath],
    categories: &[hush_contracts::events::Category],
    sensitive: bool,
    lookup: &SuppressionLookup,
) -> Result<Vec<SuppressedIdentifier>, RecordError> {
    Ok(identifiers_in(record, identifiers)?
        .into_iter()
        .filter_map(|identifier| {
            let suppression = lookup.get(&identifier.sha256)?;
            suppression_applies(
                categories,
                sensitive,
                suppression.deleted,
                suppression.sale_share_opted_out,
                suppression.sensitive_limited,
            )
            .then_some(SuppressedIdentifier {
                identifier,
                suppression,
            })
        })
        .collect())
}

/// What becomes of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing about a suppressed subject: forwarded unchanged.
    Forward,
    /// About a suppressed subject: not forwarded.
    Drop,
    /// About a suppressed subject: forwarded as this payload (stripped or LDU).
    Rewrite {
        /// The new payload.
        payload: Value,
        /// The policy that rewrote it.
        policy: GatePolicy,
    },
    /// About a suppressed subject: forwarded with the IAB strings attached.
    Annotate {
        /// The payload, with the GPP string in the configured field when there is one.
        payload: Option<Value>,
        /// Headers to add: name and value.
        headers: Vec<(&'static str, String)>,
    },
}

/// The decision for `record` on `stream`.
pub fn decide(
    record: &Value,
    stream: &GateStream,
    lookup: &SuppressionLookup,
) -> Result<Decision, RecordError> {
    let suppressed = suppressed_identifiers(
        record,
        &stream.identifiers,
        &stream.categories,
        stream.sensitive,
        lookup,
    )?;
    if suppressed.is_empty() {
        return Ok(Decision::Forward);
    }
    Ok(match stream.policy {
        GatePolicy::Drop => Decision::Drop,
        GatePolicy::Strip => Decision::Rewrite {
            payload: strip(record, &stream.identifiers),
            policy: GatePolicy::Strip,
        },
        GatePolicy::MetaLdu => Decision::Rewrite {
            payload: meta_ldu(record, &stream.identifiers),
            policy: GatePolicy::MetaLdu,
        },
        GatePolicy::Annotate => {
            let signals = signals_for(&suppressed);
            let gpp = gpp_string(&signals, &[Section::UsNat, Section::UsCa]);
            Decision::Annotate {
                payload: stream
                    .annotate_field
                    .as_deref()
                    .map(|field| with_field(record, field, Value::String(gpp.clone()))),
                headers: vec![
                    (GPP_HEADER, gpp),
                    (US_PRIVACY_HEADER, us_privacy_string(&signals)),
                ],
            }
        }
    })
}

/// The IAB signals of a subject: opted out of sale, sharing and targeted advertising when any
/// matched identifier is opted out or deleted; sensitive data limited when any is limited.
pub fn signals_for(suppressed: &[SuppressedIdentifier]) -> PrivacySignals {
    let opted_out = suppressed
        .iter()
        .any(|s| s.suppression.sale_share_opted_out || s.suppression.deleted);
    let limited = suppressed
        .iter()
        .any(|s| s.suppression.sensitive_limited || s.suppression.deleted);
    PrivacySignals {
        sale_opted_out: opted_out,
        sharing_opted_out: opted_out,
        targeted_advertising_opted_out: opted_out,
        sensitive_limited: limited,
        notice_given: true,
        ..PrivacySignals::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{Category, IdentifierType, MinorStatus, SuppressionState};
    use hush_contracts::gate::{IdentifierPath, RecordFormat};
    use hush_contracts::identifiers::sha256_hex;
    use serde_json::json;

    fn stream(policy: GatePolicy, categories: &[Category]) -> GateStream {
        GateStream {
            source: "marketing.conversions.v1".into(),
            destination: "marketing.conversions.cleared.v1".into(),
            format: RecordFormat::Json,
            categories: categories.to_vec(),
            sensitive: false,
            identifiers: vec![IdentifierPath {
                path: "user.email".into(),
                kind: IdentifierType::Email,
                hashed: false,
            }],
            policy,
            destination_path: None,
            annotate_field: Some("regs.gpp".into()),
        }
    }

    fn lookup_with(email: &str, opted_out: bool, deleted: bool) -> SuppressionLookup {
        let lookup = SuppressionLookup::default();
        lookup.apply(&SuppressionState {
            identifier_hash: sha256_hex(email),
            identifier_type: IdentifierType::Email,
            subject_key: sha256_hex(email),
            sale_share_opted_out: opted_out,
            sensitive_limited: false,
            deleted,
            effective_at: 1_700_000_000_000,
            resolicit_after: None,
            minor_status: MinorStatus::NotMinor,
            last_request_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            updated_at: 1_700_000_000_000,
            synthetic: false,
        });
        lookup
    }

    fn event(email: &str) -> Value {
        json!({"event_name": "Purchase", "user": {"email": email}})
    }

    #[test]
    fn an_opted_out_subject_is_dropped_and_others_forwarded() {
        let lookup = lookup_with("jane@example.com", true, false);
        let ads = stream(GatePolicy::Drop, &[Category::Advertising]);
        assert_eq!(
            decide(&event("Jane@Example.com"), &ads, &lookup).unwrap(),
            Decision::Drop
        );
        assert_eq!(
            decide(&event("john@example.com"), &ads, &lookup).unwrap(),
            Decision::Forward
        );
    }

    #[test]
    fn an_opt_out_leaves_an_analytics_stream_alone_but_a_deletion_does_not() {
        let analytics = stream(GatePolicy::Drop, &[Category::Analytics]);
        let opted_out = lookup_with("jane@example.com", true, false);
        assert_eq!(
            decide(&event("jane@example.com"), &analytics, &opted_out).unwrap(),
            Decision::Forward
        );
        let deleted = lookup_with("jane@example.com", false, true);
        assert_eq!(
            decide(&event("jane@example.com"), &analytics, &deleted).unwrap(),
            Decision::Drop
        );
    }

    #[test]
    fn strip_forwards_the_record_without_identifiers() {
        let lookup = lookup_with("jane@example.com", true, false);
        let decision = decide(
            &event("jane@example.com"),
            &stream(GatePolicy::Strip, &[Category::All]),
            &lookup,
        )
        .unwrap();
        assert_eq!(
            decision,
            Decision::Rewrite {
                payload: json!({"event_name": "Purchase", "user": {}}),
                policy: GatePolicy::Strip
            }
        );
    }

    #[test]
    fn annotate_attaches_the_opted_out_strings() {
        let lookup = lookup_with("jane@example.com", true, false);
        let Decision::Annotate { payload, headers } = decide(
            &event("jane@example.com"),
            &stream(GatePolicy::Annotate, &[Category::Advertising]),
            &lookup,
        )
        .unwrap() else {
            panic!("expected an annotation");
        };
        let gpp = &headers.iter().find(|(n, _)| *n == GPP_HEADER).unwrap().1;
        assert!(gpp.starts_with("DBA"), "{gpp}");
        assert_eq!(payload.unwrap()["regs"]["gpp"], json!(gpp));
        let usp = &headers
            .iter()
            .find(|(n, _)| *n == US_PRIVACY_HEADER)
            .unwrap()
            .1;
        assert_eq!(usp, "1YYN");
    }
}
