//! The "comply and forward" notice: one [`SuppressionWork`] becomes one JSON body that tells the
//! recipient what to do and under which rule. Identifiers travel hashed only.

use chrono::{DateTime, SecondsFormat, Utc};
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::{Category, EpochMillis, IdentifierType, RequestKind};
use hush_contracts::identifiers::sha256_hex;
use serde::{Deserialize, Serialize};

/// The JSON body of a notice, exactly as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// Stable id of this notice: the same for every retry of one request to one recipient.
    pub notice_id: String,
    /// The privacy request id; also the `Idempotency-Key` header.
    pub request_id: String,
    /// The recipient's id in the Hush configuration, to echo in its callback.
    pub connector_id: String,
    /// Right exercised, e.g. `OPT_OUT_SALE_SHARE`.
    pub kind: RequestKind,
    /// ISO 3166-2 jurisdiction of the consumer, e.g. `US-CA`.
    pub jurisdiction: String,
    /// When the business received the request, RFC 3339 UTC.
    pub received_at: String,
    /// The consumer's identifiers, SHA-256 of the normalised value only.
    pub identifiers: Vec<NoticeIdentifier>,
    /// Data categories the request covers.
    pub categories: Vec<Category>,
    /// What the recipient must do, in words, with the rule that requires it.
    pub instruction: String,
    /// Where to post the signed callback, when the business collects one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// One hashed identifier in a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeIdentifier {
    /// Kind of identifier, e.g. `EMAIL`.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// Lowercase hex SHA-256 of the normalised value.
    pub sha256: String,
}

/// What a recipient must do for each kind of request, citing the rule.
pub fn instruction(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::OptOutSaleShare => {
            "The consumer identified by these hashed identifiers has opted out of the sale and sharing \
             of their personal information. Stop selling and sharing it, and forward this request to \
             every person to whom you sold or shared it, directing them to comply \
             (Cal. Code Regs. tit. 11, § 7026(f))."
        }
        RequestKind::LimitSensitive => {
            "The consumer identified by these hashed identifiers has limited the use and disclosure of \
             their sensitive personal information. Use and disclose it only for the purposes permitted \
             by Cal. Code Regs. tit. 11, § 7027(m), and forward this request to every person to whom \
             you disclosed it (Cal. Civ. Code § 1798.121; Cal. Code Regs. tit. 11, § 7027(g))."
        }
        RequestKind::Delete => {
            "The consumer identified by these hashed identifiers has made a verified request to delete \
             their personal information. Delete it, and notify your own service providers, contractors \
             and the third parties to whom you sold or shared it to delete it (Cal. Civ. Code \
             § 1798.105(c)). If you retain any of it under an exception in § 1798.105(d), say which \
             in your callback."
        }
        RequestKind::OptInSaleShare => {
            "The consumer identified by these hashed identifiers has, on their own initiative, opted \
             back in to the sale and sharing of their personal information (Cal. Civ. Code \
             §§ 1798.120(d), 1798.135(c)(4)). The earlier opt-out no longer restricts you."
        }
    }
}

/// A stable notice id for one request to one recipient: `ntc_` and 32 hex digits of
/// SHA-256(`"{connector_id}\n{request_id}"`).
pub fn notice_id(connector_id: &str, request_id: &str) -> String {
    let digest = sha256_hex(&format!("{connector_id}\n{request_id}"));
    format!("ntc_{}", &digest[..32])
}

/// Epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(millis: EpochMillis) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Builds the notice for one work item. Raw identifier values, if the work carries any, are not
/// read: only hashes go out.
pub fn notice_for(
    work: &SuppressionWork,
    connector_id: &str,
    callback_url: Option<&str>,
) -> Notice {
    Notice {
        notice_id: notice_id(connector_id, &work.request_id),
        request_id: work.request_id.clone(),
        connector_id: connector_id.to_owned(),
        kind: work.kind,
        jurisdiction: work.jurisdiction.clone(),
        received_at: rfc3339(work.received_at),
        identifiers: work
            .identifiers
            .iter()
            .map(|identifier| NoticeIdentifier {
                kind: identifier.kind,
                sha256: identifier.sha256.clone(),
            })
            .collect(),
        categories: work.categories.clone(),
        instruction: instruction(work.kind).to_owned(),
        callback_url: callback_url.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::{RawValue, WorkIdentifier};
    use serde_json::json;

    fn work(kind: RequestKind) -> SuppressionWork {
        SuppressionWork {
            request_id: "3f1c2a5e-0000-4000-8000-000000000001".into(),
            subject_key: "subject".into(),
            kind,
            identifiers: vec![WorkIdentifier {
                kind: IdentifierType::Email,
                sha256: sha256_hex("jane.doe@example.com"),
                raw: Some(RawValue::new("jane.doe@example.com")),
            }],
            categories: vec![Category::Advertising],
            jurisdiction: "US-CA".into(),
            received_at: 1_735_689_600_000,
        }
    }

    #[test]
    fn notice_has_the_documented_shape_with_hashes_only() {
        let notice = notice_for(
            &work(RequestKind::OptOutSaleShare),
            "partner",
            Some("https://privacy.example.com/cb"),
        );
        let body = serde_json::to_value(&notice).unwrap();
        assert_eq!(
            body,
            json!({
                "notice_id": notice_id("partner", "3f1c2a5e-0000-4000-8000-000000000001"),
                "request_id": "3f1c2a5e-0000-4000-8000-000000000001",
                "connector_id": "partner",
                "kind": "OPT_OUT_SALE_SHARE",
                "jurisdiction": "US-CA",
                "received_at": "2025-01-01T00:00:00.000Z",
                "identifiers": [{"type": "EMAIL", "sha256": sha256_hex("jane.doe@example.com")}],
                "categories": ["ADVERTISING"],
                "instruction": instruction(RequestKind::OptOutSaleShare),
                "callback_url": "https://privacy.example.com/cb",
            })
        );
        assert!(!body.to_string().contains("jane.doe"));
    }

    #[test]
    fn callback_url_is_left_out_when_not_configured() {
        let body = serde_json::to_value(notice_for(&work(RequestKind::Delete), "p", None)).unwrap();
        assert!(body.get("callback_url").is_none());
    }

    #[test]
    fn notice_id_is_stable_per_request_and_recipient() {
        // printf 'hush-connector-webhook\nr-1' | sha256sum
        assert_eq!(
            notice_id("hush-connector-webhook", "r-1"),
            "ntc_2a89cc2c8c9fbb094903998e62ddda25"
        );
        assert_ne!(notice_id("a", "r-1"), notice_id("b", "r-1"));
    }

    #[test]
    fn instructions_cite_the_rule_for_each_kind() {
        assert!(instruction(RequestKind::OptOutSaleShare).contains("§ 7026(f)"));
        assert!(instruction(RequestKind::OptOutSaleShare).contains("forward"));
        assert!(instruction(RequestKind::Delete).contains("§ 1798.105(c)"));
        assert!(instruction(RequestKind::Delete).contains("service providers, contractors"));
        assert!(instruction(RequestKind::LimitSensitive).contains("§ 7027"));
    }
}
