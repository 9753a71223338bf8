//! Pure functions: suppression work → the bodies of The Trade Desk's
//! `POST /data/deletion-optout/advertiser`. No I/O.
//!
//! Each identifier the configured `id_map` names becomes one entry of `Items`, keyed by its TTD
//! id type (`{"DAID": "…"}`), sent raw: TTD matches these ids as it stores them, never by a
//! hash. Emails and phones are never sent: TTD takes them only as a UID2 or EUID, which the UID2
//! service derives from the email or phone and which Hush does not mint; a UID2 reaches TTD only
//! when identity resolution already put one on the request under a kind `id_map` maps to `UID2`.

use std::collections::BTreeMap;

use hush_connector_kit::outcome::BatchPlan;
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::{IdentifierType, RequestKind};
use serde::Serialize;

/// Most `Items` sent in one call: what TTD's partners batch to its Data API (10,000 items,
/// under 2 MB; TTD's own page could not be read from here, see the crate README). A 413 is
/// reported as a permanent failure asking for a smaller `batch_size`.
pub const MAX_ITEMS_PER_CALL: usize = 10_000;

/// An id type TTD's deletion/opt-out call accepts (the `PartnerDsrDataItem` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TtdIdType {
    /// The Trade Desk's own cookie id (a GUID).
    Tdid,
    /// A raw device advertising id (IDFA, AAID; a GUID).
    Daid,
    /// A raw Unified ID 2.0 (from the UID2 service).
    Uid2,
    /// A UID2 advertising token.
    Uid2Token,
    /// A raw European Unified ID.
    Euid,
    /// An EUID advertising token.
    EuidToken,
    /// LiveRamp's RampID.
    RampId,
    /// Epsilon's CoreID.
    CoreId,
    /// ID5's id.
    Id5,
    /// netID.
    NetId,
    /// First-id.
    FirstId,
    /// Utiq's id.
    UtiqId,
    /// Merkury's id.
    MerkuryId,
    /// IQVIA's PPID.
    IqviaPpid,
}

impl TtdIdType {
    /// Every type, in TTD's field order.
    pub const ALL: [TtdIdType; 14] = [
        TtdIdType::Tdid,
        TtdIdType::Daid,
        TtdIdType::Uid2,
        TtdIdType::Uid2Token,
        TtdIdType::RampId,
        TtdIdType::CoreId,
        TtdIdType::Euid,
        TtdIdType::EuidToken,
        TtdIdType::Id5,
        TtdIdType::NetId,
        TtdIdType::FirstId,
        TtdIdType::UtiqId,
        TtdIdType::MerkuryId,
        TtdIdType::IqviaPpid,
    ];

    /// The field name in an item, e.g. `DAID`.
    pub fn as_str(self) -> &'static str {
        match self {
            TtdIdType::Tdid => "TDID",
            TtdIdType::Daid => "DAID",
            TtdIdType::Uid2 => "UID2",
            TtdIdType::Uid2Token => "UID2Token",
            TtdIdType::Euid => "EUID",
            TtdIdType::EuidToken => "EUIDToken",
            TtdIdType::RampId => "RampID",
            TtdIdType::CoreId => "CoreID",
            TtdIdType::Id5 => "ID5",
            TtdIdType::NetId => "NetID",
            TtdIdType::FirstId => "FirstID",
            TtdIdType::UtiqId => "UtiqID",
            TtdIdType::MerkuryId => "MerkuryID",
            TtdIdType::IqviaPpid => "IqviaPPID",
        }
    }

    /// The type named `name` (as TTD spells the field).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether `value` has the form TTD expects of this type: a GUID for TDID and DAID, the
    /// 44-character base64 of a raw UID2/EUID, and otherwise any value without spaces.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            TtdIdType::Tdid | TtdIdType::Daid => is_guid(value),
            TtdIdType::Uid2 | TtdIdType::Euid => {
                value.len() == 44
                    && value.ends_with('=')
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            }
            _ => !value.is_empty() && value.len() <= 1_000 && !value.contains(char::is_whitespace),
        }
    }
}

fn is_guid(value: &str) -> bool {
    value.len() == 36
        && value.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// TTD's `RequestType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RequestType {
    /// Stop using the ids (an opt-out of sale/sharing or a limit on sensitive data).
    OptOut,
    /// Delete what TTD holds about the ids.
    Deletion,
}

impl RequestType {
    /// The request type of a request of `kind`; `None` for an opt-in, which TTD cannot apply.
    pub fn of(kind: RequestKind) -> Option<Self> {
        match kind {
            RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => Some(RequestType::OptOut),
            RequestKind::Delete => Some(RequestType::Deletion),
            RequestKind::OptInSaleShare => None,
        }
    }
}

/// Body of one call (`AdvertiserDsrRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DsrBody {
    /// The advertiser.
    pub advertiser_id: String,
    /// The data provider, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_provider_id: Option<String>,
    /// One entry per id: `{"<type>": "<value>"}`.
    pub items: Vec<BTreeMap<&'static str, String>>,
    /// Hush's trace id of the call, `hush-<first request id>`.
    pub data_load_trace_id: String,
    /// Opt-out or deletion.
    pub request_type: RequestType,
}

/// One call with, for each entry of `Items`, the index of the work item it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrCall {
    /// The body.
    pub body: DsrBody,
    /// Work item of each entry, in `Items` order.
    pub owners: Vec<usize>,
}

/// What the connector does for one work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPlan {
    /// Its ids are in the calls.
    Send {
        /// Opt-out or deletion.
        request_type: RequestType,
        /// Ids sent, by TTD type, e.g. `DAID`.
        id_types: Vec<&'static str>,
        /// Identifiers left out and why (counts and kinds only), empty when none.
        skipped: String,
    },
    /// None of its identifiers is one TTD accepts; the reason says why.
    NoUsableId(String),
    /// An opt-in: TTD has no call to reverse an opt-out.
    OptIn,
}

/// The calls for a batch and what happens to each item.
pub type DsrPlan = BatchPlan<ItemPlan, DsrCall>;

/// Why identifiers of a request were left out, counted by cause.
#[derive(Default)]
struct Skipped {
    email_or_phone: usize,
    unmapped: BTreeMap<&'static str, usize>,
    without_raw: BTreeMap<&'static str, usize>,
    malformed: BTreeMap<(&'static str, &'static str), usize>,
}

impl Skipped {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.email_or_phone > 0 {
            parts.push(format!(
                "{} email/phone: TTD takes them only as a UID2, which the UID2 service derives \
                 and Hush does not (an identity resolver can add the UID2; map its kind to UID2 \
                 in settings.id_map)",
                self.email_or_phone
            ));
        }
        for (kind, n) in &self.unmapped {
            parts.push(format!("{n} {kind} not mapped in settings.id_map"));
        }
        for (kind, n) in &self.without_raw {
            parts.push(format!(
                "{n} {kind} without its raw value (TTD does not match hashes; keep {kind} raw at \
                 intake)"
            ));
        }
        for ((kind, ttd), n) in &self.malformed {
            parts.push(format!("{n} {kind} not in the form of a TTD {ttd}"));
        }
        parts.join("; ")
    }
}

/// One id to send: its TTD type and raw value.
type Entry = (TtdIdType, String);

/// The item's entries, or why it has none.
fn entries_for(
    work: &SuppressionWork,
    id_map: &BTreeMap<&'static str, TtdIdType>,
) -> (Vec<Entry>, Skipped) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut skipped = Skipped::default();
    for identifier in &work.identifiers {
        let kind = identifier.kind.as_str();
        if matches!(
            identifier.kind,
            IdentifierType::Email | IdentifierType::Phone
        ) {
            skipped.email_or_phone += 1;
            continue;
        }
        let Some(ttd) = id_map.get(kind) else {
            *skipped.unmapped.entry(kind).or_default() += 1;
            continue;
        };
        let Some(raw) = &identifier.raw else {
            *skipped.without_raw.entry(kind).or_default() += 1;
            continue;
        };
        if !ttd.accepts(raw.expose()) {
            *skipped.malformed.entry((kind, ttd.as_str())).or_default() += 1;
            continue;
        }
        let entry = (*ttd, raw.expose().to_owned());
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    (entries, skipped)
}

/// Plans the opt-out or deletion of every person in `batch` for `advertiser_id`: one call per
/// request type, at most [`MAX_ITEMS_PER_CALL`] ids a call (a person's ids may span two calls).
pub fn plan(
    batch: &[SuppressionWork],
    advertiser_id: &str,
    data_provider_id: Option<&str>,
    id_map: &BTreeMap<&'static str, TtdIdType>,
) -> DsrPlan {
    let mut items = Vec::with_capacity(batch.len());
    let mut by_type: BTreeMap<RequestType, Vec<(usize, Entry)>> = BTreeMap::new();
    for (index, work) in batch.iter().enumerate() {
        let Some(request_type) = RequestType::of(work.kind) else {
            items.push(ItemPlan::OptIn);
            continue;
        };
        let (entries, skipped) = entries_for(work, id_map);
        if entries.is_empty() {
            let why = skipped.describe();
            items.push(ItemPlan::NoUsableId(if why.is_empty() {
                "no identifier The Trade Desk accepts: the request carries none".to_owned()
            } else {
                format!("no identifier The Trade Desk accepts: {why}")
            }));
            continue;
        }
        let mut id_types: Vec<&'static str> = entries.iter().map(|(t, _)| t.as_str()).collect();
        id_types.dedup();
        items.push(ItemPlan::Send {
            request_type,
            id_types,
            skipped: skipped.describe(),
        });
        by_type
            .entry(request_type)
            .or_default()
            .extend(entries.into_iter().map(|entry| (index, entry)));
    }
    let mut calls = Vec::new();
    for (request_type, entries) in by_type {
        for chunk in entries.chunks(MAX_ITEMS_PER_CALL) {
            let first = &batch[chunk[0].0].request_id;
            calls.push(DsrCall {
                body: DsrBody {
                    advertiser_id: advertiser_id.to_owned(),
                    data_provider_id: data_provider_id.map(str::to_owned),
                    items: chunk
                        .iter()
                        .map(|(_, (t, v))| BTreeMap::from([(t.as_str(), v.clone())]))
                        .collect(),
                    data_load_trace_id: format!("hush-{first}"),
                    request_type,
                },
                owners: chunk.iter().map(|(owner, _)| *owner).collect(),
            });
        }
    }
    DsrPlan { items, calls }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{email, hashed, with_raw, work, WorkExt};
    use serde_json::json;

    const DAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
    const UID2: &str = "CCIHCkZzAvP5sKS1Gxu3Y7zgP3JbSfNnwMQ5wlWrQ8M=";

    fn daid_only() -> BTreeMap<&'static str, TtdIdType> {
        BTreeMap::from([("MAID", TtdIdType::Daid)])
    }

    #[test]
    fn ids_become_items_keyed_by_their_ttd_type() {
        let id_map = BTreeMap::from([("MAID", TtdIdType::Daid), ("DEVICE_ID", TtdIdType::Uid2)]);
        let opt_out = work(RequestKind::OptOutSaleShare)
            .id("r-1")
            .with(with_raw(IdentifierType::Maid, DAID))
            .with(with_raw(IdentifierType::DeviceId, UID2))
            .with(email("a@example.com"));
        let plan = plan(&[opt_out], "qxwcdxw", None, &id_map);
        assert_eq!(
            serde_json::to_value(&plan.calls[0].body).unwrap(),
            json!({
                "AdvertiserId": "qxwcdxw",
                "Items": [{"DAID": DAID}, {"UID2": UID2}],
                "DataLoadTraceId": "hush-r-1",
                "RequestType": "OptOut",
            })
        );
        assert_eq!(plan.calls[0].owners, vec![0, 0]);
        assert!(
            matches!(&plan.items[0], ItemPlan::Send { id_types, skipped, .. } if id_types == &["DAID", "UID2"] && skipped.contains("1 email/phone"))
        );
    }

    #[test]
    fn opt_outs_and_deletions_go_in_calls_of_their_own() {
        let batch = [
            work(RequestKind::Delete).with(with_raw(IdentifierType::Maid, DAID)),
            work(RequestKind::LimitSensitive).with(with_raw(IdentifierType::Maid, DAID)),
            work(RequestKind::OptInSaleShare).with(with_raw(IdentifierType::Maid, DAID)),
        ];
        let plan = plan(&batch, "adv", Some("prov"), &daid_only());
        let types: Vec<RequestType> = plan.calls.iter().map(|c| c.body.request_type).collect();
        assert_eq!(types, [RequestType::OptOut, RequestType::Deletion]);
        assert_eq!(plan.calls[0].owners, vec![1]);
        assert_eq!(plan.calls[1].owners, vec![0]);
        assert_eq!(plan.calls[0].body.data_provider_id.as_deref(), Some("prov"));
        assert_eq!(plan.items[2], ItemPlan::OptIn);
    }

    #[test]
    fn a_person_without_a_usable_id_is_told_why() {
        let batch = [
            work(RequestKind::OptOutSaleShare)
                .with(email("a@example.com"))
                .with(hashed(IdentifierType::Maid, DAID))
                .with(with_raw(IdentifierType::CookieId, "ck-1")),
            work(RequestKind::OptOutSaleShare).with(with_raw(IdentifierType::Maid, "not-a-guid")),
            work(RequestKind::OptOutSaleShare),
        ];
        let plan = plan(&batch, "adv", None, &daid_only());
        assert!(plan.calls.is_empty());
        let ItemPlan::NoUsableId(why) = &plan.items[0] else {
            panic!("{:?}", plan.items[0])
        };
        assert!(why.contains("UID2 service"), "{why}");
        assert!(why.contains("1 MAID without its raw value"), "{why}");
        assert!(why.contains("1 COOKIE_ID not mapped"), "{why}");
        assert!(
            matches!(&plan.items[1], ItemPlan::NoUsableId(w) if w.contains("not in the form of a TTD DAID"))
        );
        assert!(matches!(&plan.items[2], ItemPlan::NoUsableId(w) if w.contains("carries none")));
    }

    #[test]
    fn more_ids_than_the_limit_take_several_calls() {
        let batch: Vec<_> = (0..MAX_ITEMS_PER_CALL + 1)
            .map(|i| {
                let daid = format!("38400000-8cf0-11bd-b23e-{i:012}");
                work(RequestKind::Delete).with(with_raw(IdentifierType::Maid, &daid))
            })
            .collect();
        let plan = plan(&batch, "adv", None, &daid_only());
        assert_eq!(plan.calls.len(), 2);
        assert_eq!(plan.calls[0].body.items.len(), MAX_ITEMS_PER_CALL);
        assert_eq!(plan.calls[1].owners, vec![MAX_ITEMS_PER_CALL]);
    }

    #[test]
    fn id_forms_are_checked_per_type() {
        assert!(TtdIdType::Tdid.accepts(DAID));
        assert!(!TtdIdType::Daid.accepts("38400000"));
        assert!(TtdIdType::Uid2.accepts(UID2));
        assert!(!TtdIdType::Uid2.accepts("jane@example.com"));
        assert!(TtdIdType::RampId.accepts("XY1005wXyWPB1SgpMUKIpzA0I3UaLEz"));
        assert!(!TtdIdType::RampId.accepts("two words"));
        assert_eq!(TtdIdType::parse("IqviaPPID"), Some(TtdIdType::IqviaPpid));
    }
}
