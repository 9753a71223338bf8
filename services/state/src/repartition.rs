//! The repartition record: one identifier of one request, keyed by the identifier hash so that
//! it lands on the partition of `hush.suppressions.v1` that holds that identifier's state.

use hush_contracts::events::{
    AgeBand, AvroEvent, EpochMillis, Identifier, IdentifierType, PrivacyRequest, RequestKind,
};
use serde::{Deserialize, Serialize};

use crate::table::{IdentifierKey, Position};

/// One identifier of one privacy request (value of `hush.state-repartition.v1`, keyed by
/// `identifier_hash`): the request's fields [`crate::fold::fold`] reads, that identifier, and
/// where the request was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierRequest {
    /// Id of the request.
    pub request_id: String,
    /// Subject key of the request.
    pub subject_key: String,
    /// Right exercised.
    pub kind: RequestKind,
    /// Receipt time.
    pub received_at: EpochMillis,
    /// Kind of identifier.
    pub identifier_type: IdentifierType,
    /// Lowercase hex SHA-256 of the identifier; the record key.
    pub identifier_hash: String,
    /// Age band of the request, when known.
    pub age_band: Option<AgeBand>,
    /// System that captured the request.
    pub source_system: String,
    /// True when the consumer started the request.
    pub consumer_initiated: bool,
    /// Partition of the requests topic the request was read from.
    pub source_partition: i32,
    /// Offset of the request in that partition.
    pub source_offset: i64,
    /// Position of the identifier in the request's identifiers.
    pub source_index: i32,
}

impl AvroEvent for IdentifierRequest {
    const FULL_NAME: &'static str = "dev.hush.v1.IdentifierRequest";
    const SCHEMA: &'static str = include_str!("../../../schemas/identifier_request.avsc");
}

/// Why a request cannot be split into identifier records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// An identifier's hash is not 64 lowercase hex digits (its value is not shown: it may be
    /// a raw identifier sent by mistake).
    #[error("request {request_id}: identifier {index} ({kind}) is not a lowercase hex SHA-256 ({length} characters)")]
    NotAHash {
        /// Id of the request.
        request_id: String,
        /// Position of the identifier in the request (0-based).
        index: usize,
        /// Kind of identifier.
        kind: &'static str,
        /// Length of the value given.
        length: usize,
    },
    /// The request names no identifier.
    #[error("request {0} has no identifier to fold")]
    NoIdentifier(String),
}

impl IdentifierRequest {
    /// One record per identifier of `request`, read at `partition`/`offset` of the requests
    /// topic. A hash that is not a SHA-256 in hex refuses the whole request, so no identifier of
    /// it is folded while another is not.
    pub fn split(
        request: &PrivacyRequest,
        partition: i32,
        offset: i64,
    ) -> Result<Vec<Self>, SplitError> {
        if request.identifiers.is_empty() {
            return Err(SplitError::NoIdentifier(request.request_id.clone()));
        }
        request
            .identifiers
            .iter()
            .enumerate()
            .map(|(index, identifier)| {
                if IdentifierKey::from_hex(&identifier.sha256).is_none() {
                    return Err(SplitError::NotAHash {
                        request_id: request.request_id.clone(),
                        index,
                        kind: identifier.kind.as_str(),
                        length: identifier.sha256.len(),
                    });
                }
                Ok(Self {
                    request_id: request.request_id.clone(),
                    subject_key: request.subject_key.clone(),
                    kind: request.kind,
                    received_at: request.received_at,
                    identifier_type: identifier.kind,
                    identifier_hash: identifier.sha256.clone(),
                    age_band: request.age_band,
                    source_system: request.source_system.clone(),
                    consumer_initiated: request.consumer_initiated,
                    source_partition: partition,
                    source_offset: offset,
                    source_index: i32::try_from(index).unwrap_or(i32::MAX),
                })
            })
            .collect()
    }

    /// Where this record came from in its requests partition (request offset, identifier
    /// index): records of one requests partition are split in this order.
    pub fn position(&self) -> Position {
        (self.source_offset, self.source_index)
    }

    /// The identifier this record is about.
    pub fn identifier(&self) -> Identifier {
        Identifier {
            kind: self.identifier_type,
            sha256: self.identifier_hash.clone(),
            encrypted_value: None,
        }
    }

    /// The request as the fold reads it: the fields it does not read (channel, jurisdiction,
    /// categories, verification, resolution) are left at neutral values.
    pub fn request(&self) -> PrivacyRequest {
        PrivacyRequest {
            request_id: self.request_id.clone(),
            subject_key: self.subject_key.clone(),
            kind: self.kind,
            channel: hush_contracts::events::Channel::Upstream,
            jurisdiction: String::new(),
            received_at: self.received_at,
            identifiers: vec![self.identifier()],
            categories: Vec::new(),
            verification: None,
            age_band: self.age_band,
            source_system: self.source_system.clone(),
            consumer_initiated: self.consumer_initiated,
            idempotency_key: None,
            resolution: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::{from_value, to_value, Reader, Schema, Writer};
    use hush_contracts::events::{Category, Channel};

    fn request(hashes: &[&str]) -> PrivacyRequest {
        PrivacyRequest {
            request_id: "0b7c2c5e-4f7a-4c59-9a38-0d7f4b9c1e11".into(),
            subject_key: "s".into(),
            kind: RequestKind::Delete,
            channel: Channel::WebForm,
            jurisdiction: "US-CA".into(),
            received_at: 42,
            identifiers: hashes
                .iter()
                .map(|h| Identifier {
                    kind: IdentifierType::Phone,
                    sha256: (*h).to_owned(),
                    encrypted_value: Some("secret".into()),
                })
                .collect(),
            categories: vec![Category::All],
            verification: None,
            age_band: Some(AgeBand::Age13To15),
            source_system: "intake".into(),
            consumer_initiated: true,
            idempotency_key: None,
            resolution: Vec::new(),
        }
    }

    #[test]
    fn a_request_splits_into_one_record_per_identifier_without_encrypted_values() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let records = IdentifierRequest::split(&request(&[&a, &b]), 2, 7).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].identifier_hash, b);
        assert_eq!(
            (records[0].source_partition, records[0].source_offset),
            (2, 7)
        );
        assert_eq!((records[0].source_index, records[1].source_index), (0, 1));
        let folded = records[0].request();
        assert_eq!(folded.identifiers, vec![records[0].identifier()]);
        assert_eq!(folded.identifiers[0].encrypted_value, None);
        assert_eq!(
            (folded.kind, folded.received_at, folded.age_band),
            (RequestKind::Delete, 42, Some(AgeBand::Age13To15))
        );
        assert!(folded.consumer_initiated);
    }

    #[test]
    fn a_request_with_a_raw_identifier_is_refused_without_showing_it() {
        let error =
            IdentifierRequest::split(&request(&[&"a".repeat(64), "someone@example.com"]), 0, 0)
                .unwrap_err()
                .to_string();
        assert!(error.contains("identifier 1 (PHONE)"), "{error}");
        assert!(!error.contains("someone"), "{error}");
        assert!(IdentifierRequest::split(&request(&[]), 0, 0).is_err());
    }

    #[test]
    fn the_record_round_trips_through_its_schema() {
        let record = IdentifierRequest::split(&request(&[&"c".repeat(64)]), 1, 9)
            .unwrap()
            .remove(0);
        let schema = Schema::parse_str(IdentifierRequest::SCHEMA).expect("schema parses");
        let value = to_value(&record).unwrap().resolve(&schema).unwrap();
        let mut writer = Writer::new(&schema, Vec::new()).unwrap();
        writer.append_value(value).unwrap();
        let bytes = writer.into_inner().unwrap();
        let decoded = Reader::new(bytes.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(from_value::<IdentifierRequest>(&decoded).unwrap(), record);
    }
}
