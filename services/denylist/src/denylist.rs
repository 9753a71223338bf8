//! The deny-list itself: the suppression state of every known identifier hash, and the decision
//! whether a person may be sent to, or enriched by, an enrichment vendor.
//!
//! A person is denied when any of their identifiers is denied. An identifier is denied when its
//! state says it was deleted, opted out of sale/sharing (minors without an opt-in included:
//! `hush-state` records them as opted out), or limited the use of sensitive personal
//! information.
//!
//! Why a limit on sensitive PI denies enrichment: an enrichment vendor answers with whatever it
//! holds about the person (location, demographics, inferences), and Hush cannot vet that answer
//! attribute by attribute; the deny-list is per person, so honouring the limit means not
//! enriching the person at all. It over-blocks rather than under-blocks, which is the side a
//! regulator tests.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use hush_contracts::events::{IdentifierType, SuppressionState};
use hush_contracts::identifiers::{hash_identifier, is_sha256_hex};
use hush_suppression_index::{IdentifierKey, Suppression, SuppressionIndex};
use serde::Serialize;

use crate::metrics;

/// Why an identifier is denied. When several apply, the strongest is reported:
/// `DELETED`, then `SALE_SHARE_OPT_OUT`, then `SENSITIVE_LIMITED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The person asked for deletion; the suppression outlives the deletion and no opt-in lifts
    /// it (Civ. Code 1798.105(c)(2)).
    Deleted,
    /// The person opted out of sale and sharing (or is a minor without an opt-in).
    SaleShareOptOut,
    /// The person limited the use of their sensitive personal information.
    SensitiveLimited,
}

impl Reason {
    /// The wire symbol, e.g. `SALE_SHARE_OPT_OUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deleted => "DELETED",
            Reason::SaleShareOptOut => "SALE_SHARE_OPT_OUT",
            Reason::SensitiveLimited => "SENSITIVE_LIMITED",
        }
    }

    /// The reason a state denies for, or `None` when it allows.
    pub fn of(state: &SuppressionState) -> Option<Reason> {
        Self::from_flags(
            state.deleted,
            state.sale_share_opted_out,
            state.sensitive_limited,
        )
    }

    /// The reason a held entry denies for, or `None` when it allows.
    fn of_entry(entry: &Suppression) -> Option<Reason> {
        Self::from_flags(
            entry.deleted,
            entry.sale_share_opted_out,
            entry.sensitive_limited,
        )
    }

    fn from_flags(deleted: bool, opted_out: bool, limited: bool) -> Option<Reason> {
        if deleted {
            Some(Reason::Deleted)
        } else if opted_out {
            Some(Reason::SaleShareOptOut)
        } else if limited {
            Some(Reason::SensitiveLimited)
        } else {
            None
        }
    }
}

/// An identifier value to look up: the raw value (normalised and hashed by
/// [`hush_contracts::identifiers`]) or its SHA-256. The raw value is never kept, logged or answered.
#[derive(Clone, PartialEq, Eq)]
pub enum IdentifierValue {
    /// The raw value, e.g. `Jane@Example.com`.
    Raw(String),
    /// Lowercase hex SHA-256 of the normalised value.
    Sha256(String),
}

impl fmt::Debug for IdentifierValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentifierValue::Raw(_) => f.write_str("Raw(<redacted>)"),
            IdentifierValue::Sha256(hash) => f.debug_tuple("Sha256").field(hash).finish(),
        }
    }
}

/// One identifier of a lookup.
pub type Lookup = (IdentifierType, IdentifierValue);

/// A denied identifier, as answered to the caller (hash only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeniedIdentifier {
    /// Kind of identifier, as the caller gave it.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// SHA-256 of the normalised value.
    pub sha256: String,
    /// Why it is denied.
    pub reason: Reason,
}

/// Whether a person may be sent to an enrichment vendor: allowed only when none of the
/// identifiers given is denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `true` when no identifier is denied.
    pub allowed: bool,
    /// The denied identifiers (each hash once), in the order given.
    pub denied: Vec<DeniedIdentifier>,
    /// The lookup is about the canary: an identifier has a state the canary's request
    /// produced, and none has a real person's. Not answered; it keeps the lookup out of the
    /// vendor statistics.
    #[serde(skip)]
    pub synthetic: bool,
}

impl Decision {
    /// The strongest reason among the denied identifiers.
    pub fn reason(&self) -> Option<Reason> {
        self.denied.iter().map(|d| d.reason).min()
    }
}

/// An enrichment result to screen: the caller's own id and the identifiers of the person it is
/// about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichmentRecord {
    /// The caller's id of the record; answered back, never interpreted.
    pub id: String,
    /// Identifiers of the person the record is about.
    pub identifiers: Vec<Lookup>,
}

/// A record that must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedRecord {
    /// The caller's id of the record.
    pub id: String,
    /// The strongest reason among its denied identifiers.
    pub reason: Reason,
}

/// The outcome of screening enrichment results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Filtered {
    /// Ids of the records that may be kept, in the order given.
    pub kept: Vec<String>,
    /// Records about suppressed people, in the order given.
    pub dropped: Vec<DroppedRecord>,
}

/// Lookups screened for one vendor since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct VendorStats {
    /// Lookups (and enrichment records) screened.
    pub lookups: u64,
    /// Of those, how many were denied.
    pub blocked_lookups: u64,
}

/// A snapshot of the deny-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Whether the deny-list has been rebuilt from its topic.
    pub rebuilt: bool,
    /// Identifiers currently denied (the deny-list size), the canary's left out.
    pub denied_identifiers: usize,
    /// Identifiers with any state, denied or not (e.g. opted back in), the canary's left out.
    pub known_identifiers: usize,
    /// The canary's identifiers currently denied: enforced like any other, counted apart.
    pub canary_identifiers: usize,
    /// Screened lookups per vendor since the process started, lookups about the canary left
    /// out.
    pub vendors: BTreeMap<String, VendorStats>,
}

/// Why a lookup could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The deny-list has not finished reading its topic, so "allowed" could be wrong.
    #[error("the deny-list is still being rebuilt from its topic; retry shortly")]
    NotRebuilt,
    /// The vendor name is not a short lowercase name.
    #[error("vendor must be 1 to 64 lowercase letters, digits, - or _, starting with a letter or digit (e.g. clearbit)")]
    InvalidVendor,
    /// An identifier or record is missing or malformed; `field` is its path, e.g.
    /// `identifiers[0].value`.
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the field at fault.
        field: String,
        /// What is wrong (never the raw value).
        message: String,
    },
}

/// Every identifier with a state, in the compact index of `hush-suppression-index` (about 42
/// bytes an identifier, key and all): per 128-bit hash prefix its three flags and, in the
/// entry's `effective_at_ms`, the `updated_at` of its latest state (what the newer-state rule
/// compares). An identifier whose state suppresses nothing is kept flagless, so a stale older
/// state cannot deny it again. The request id is not needed here and is left zero.
#[derive(Default)]
struct Table {
    entries: SuppressionIndex,
    /// Identifiers whose latest state the canary's request produced (`synthetic`): enforced
    /// like the others, counted apart.
    canary: HashSet<IdentifierKey>,
    /// Denied identifiers of real people.
    denied: usize,
    /// Denied identifiers of the canary.
    canary_denied: usize,
}

impl Table {
    fn get(&self, identifier_hash: &str) -> Option<Suppression> {
        let key = IdentifierKey::from_sha256_hex(identifier_hash).ok()?;
        self.entries.get(&key)
    }

    /// Whether the identifier with this hash is the canary's (`None`: no state).
    fn is_canary(&self, identifier_hash: &str) -> Option<bool> {
        let key = IdentifierKey::from_sha256_hex(identifier_hash).ok()?;
        self.entries.get(&key).map(|_| self.canary.contains(&key))
    }

    /// The counter a denied identifier counts in.
    fn denied_count(&mut self, canary: bool) -> &mut usize {
        if canary {
            &mut self.canary_denied
        } else {
            &mut self.denied
        }
    }
}

/// The in-memory deny-list: identifier hash → suppression flags, kept current from
/// `hush.suppressions.v1`, in at most 48 bytes an identifier. Cheap to share behind an
/// [`Arc`]; every method takes `&self`.
///
/// It refuses to decide ([`CheckError::NotRebuilt`]) until it has been rebuilt, so it never
/// answers "allowed" from a partial view.
#[derive(Default)]
pub struct DenyList {
    table: RwLock<Table>,
    rebuilt: Arc<AtomicBool>,
    vendors: Mutex<BTreeMap<String, VendorStats>>,
}

impl DenyList {
    /// An empty deny-list, not yet rebuilt.
    pub fn new() -> Self {
        Self::default()
    }

    /// A deny-list holding `states`, marked rebuilt (a snapshot, e.g. for tests or a job that
    /// loaded the states itself).
    pub fn from_states(states: impl IntoIterator<Item = SuppressionState>) -> Self {
        let deny_list = Self::new();
        for state in states {
            deny_list.apply(state);
        }
        deny_list.mark_rebuilt();
        deny_list
    }

    /// Records a state, keeping the newer one (by `updated_at`) when two race, as `hush-state`
    /// does. A state whose identifier hash is not a SHA-256 in hex cannot match any lookup; it
    /// is skipped with a warning (the hash is not logged: it might be a raw value).
    pub fn apply(&self, state: SuppressionState) {
        let key = match IdentifierKey::from_sha256_hex(&state.identifier_hash) {
            Ok(key) => key,
            Err(error) => {
                metrics::MALFORMED_STATES.inc();
                tracing::warn!(
                    reason = %KeyErrorShape(&error),
                    "skipping a suppression state whose identifier hash is not a hex SHA-256"
                );
                return;
            }
        };
        let mut table = self.table.write().expect("deny-list lock");
        let previous = table.entries.get(&key);
        if previous.is_some_and(|p| p.effective_at_ms > state.updated_at) {
            return;
        }
        let was_denied = previous
            .as_ref()
            .and_then(Reason::of_entry)
            .map(|_| table.canary.contains(&key));
        let is_denied = Reason::of(&state).map(|_| state.synthetic);
        if state.synthetic {
            table.canary.insert(key);
        } else {
            table.canary.remove(&key);
        }
        table.entries.record(
            key,
            Suppression {
                deleted: state.deleted,
                sale_share_opted_out: state.sale_share_opted_out,
                sensitive_limited: state.sensitive_limited,
                effective_at_ms: state.updated_at,
                request_id: [0; 16],
            },
        );
        if let Some(canary) = was_denied {
            *table.denied_count(canary) -= 1;
        }
        if let Some(canary) = is_denied {
            *table.denied_count(canary) += 1;
        }
        metrics::SIZE.set(i64::try_from(table.denied).unwrap_or(i64::MAX));
    }

    /// Marks the deny-list as rebuilt: from now on it decides.
    pub fn mark_rebuilt(&self) {
        metrics::SIZE.set(i64::try_from(self.len()).unwrap_or(i64::MAX));
        self.rebuilt.store(true, Ordering::SeqCst);
    }

    /// Whether the deny-list has been rebuilt from its topic.
    pub fn is_rebuilt(&self) -> bool {
        self.rebuilt.load(Ordering::SeqCst)
    }

    /// The flag behind [`DenyList::is_rebuilt`], for a readiness condition.
    pub fn rebuilt_flag(&self) -> Arc<AtomicBool> {
        self.rebuilt.clone()
    }

    /// Number of identifiers currently denied, the canary's left out.
    pub fn len(&self) -> usize {
        self.table.read().expect("deny-list lock").denied
    }

    /// Whether no identifier is denied.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why the identifier with this hash is denied, or `None` when it is allowed (or unknown).
    /// This is the raw table lookup: it does not wait for the rebuild; use [`DenyList::check`]
    /// to decide about a person.
    pub fn is_denied(&self, identifier_hash: &str) -> Option<Reason> {
        self.table
            .read()
            .expect("deny-list lock")
            .get(identifier_hash)
            .as_ref()
            .and_then(Reason::of_entry)
    }

    /// Heap held by the table of identifiers, in bytes (see
    /// [`SuppressionIndex::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        self.table
            .read()
            .expect("deny-list lock")
            .entries
            .heap_bytes()
    }

    /// Decides whether the person with these identifiers is denied, without counting a vendor
    /// lookup (for verification that a suppression is in force). Raw values are normalised and
    /// hashed; hashes must be lowercase hex SHA-256. At least one identifier is required.
    pub fn check(&self, identifiers: &[Lookup]) -> Result<Decision, CheckError> {
        self.decide(identifiers, "identifiers")
    }

    /// [`DenyList::check`] before a lookup at `vendor`: the decision is counted in the vendor's
    /// statistics and in `hush_denylist_checks_total`. Call it before every enrichment call and
    /// skip the call when the answer is not allowed.
    pub fn screen(&self, vendor: &str, identifiers: &[Lookup]) -> Result<Decision, CheckError> {
        validate_vendor(vendor)?;
        let decision = self.decide(identifiers, "identifiers")?;
        self.count(vendor, [&decision]);
        Ok(decision)
    }

    /// Screens enrichment results from `vendor`: records about a denied person are dropped.
    /// Each record counts as one lookup of the vendor. Record ids must be unique and each
    /// record needs at least one identifier; nothing is counted when any record is invalid.
    pub fn filter(
        &self,
        vendor: &str,
        records: &[EnrichmentRecord],
    ) -> Result<Filtered, CheckError> {
        validate_vendor(vendor)?;
        let mut ids = BTreeSet::new();
        let mut decisions = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            if record.id.is_empty() || !ids.insert(record.id.as_str()) {
                return Err(CheckError::Invalid {
                    field: format!("records[{index}].id"),
                    message: "every record needs a non-empty id, unique within the call".into(),
                });
            }
            decisions.push(self.decide(
                &record.identifiers,
                &format!("records[{index}].identifiers"),
            )?);
        }
        self.count(vendor, &decisions);
        let mut filtered = Filtered::default();
        for (record, decision) in records.iter().zip(decisions) {
            match decision.reason() {
                None => filtered.kept.push(record.id.clone()),
                Some(reason) => filtered.dropped.push(DroppedRecord {
                    id: record.id.clone(),
                    reason,
                }),
            }
        }
        Ok(filtered)
    }

    /// A snapshot of the size and the per-vendor statistics.
    pub fn stats(&self) -> Stats {
        let (denied_identifiers, known_identifiers, canary_identifiers) = {
            let table = self.table.read().expect("deny-list lock");
            let known = table.entries.len() - table.canary.len();
            (table.denied, known, table.canary_denied)
        };
        Stats {
            rebuilt: self.is_rebuilt(),
            denied_identifiers,
            known_identifiers,
            canary_identifiers,
            vendors: self.vendors.lock().expect("vendor stats lock").clone(),
        }
    }

    fn decide(&self, identifiers: &[Lookup], field: &str) -> Result<Decision, CheckError> {
        if identifiers.is_empty() {
            return Err(CheckError::Invalid {
                field: field.to_owned(),
                message: "give at least one identifier".into(),
            });
        }
        let hashes = identifiers
            .iter()
            .enumerate()
            .map(|(index, (kind, value))| {
                hash_of(*kind, value, &format!("{field}[{index}]")).map(|hash| (*kind, hash))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !self.is_rebuilt() {
            return Err(CheckError::NotRebuilt);
        }
        let table = self.table.read().expect("deny-list lock");
        let known: Vec<bool> = hashes
            .iter()
            .filter_map(|(_, hash)| table.is_canary(hash))
            .collect();
        let synthetic = !known.is_empty() && known.iter().all(|canary| *canary);
        let mut seen = BTreeSet::new();
        let denied: Vec<DeniedIdentifier> = hashes
            .into_iter()
            .filter_map(|(kind, sha256)| {
                let reason = Reason::of_entry(&table.get(&sha256)?)?;
                seen.insert(sha256.clone()).then_some(DeniedIdentifier {
                    kind,
                    reason,
                    sha256,
                })
            })
            .collect();
        Ok(Decision {
            allowed: denied.is_empty(),
            denied,
            synthetic,
        })
    }

    /// Counts the decisions of lookups at `vendor`, those about the canary left out.
    fn count<'a>(&self, vendor: &str, decisions: impl IntoIterator<Item = &'a Decision>) {
        let mut vendors = self.vendors.lock().expect("vendor stats lock");
        let stats = vendors.entry(vendor.to_owned()).or_default();
        for decision in decisions.into_iter().filter(|d| !d.synthetic) {
            stats.lookups += 1;
            let decision = if decision.allowed {
                "allowed"
            } else {
                stats.blocked_lookups += 1;
                "denied"
            };
            metrics::CHECKS.with_label_values(&[vendor, decision]).inc();
        }
    }
}

/// A [`KeyError`](hush_suppression_index::KeyError) without the offending character, which
/// could be part of a raw identifier.
struct KeyErrorShape<'e>(&'e hush_suppression_index::KeyError);

impl fmt::Display for KeyErrorShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            hush_suppression_index::KeyError::InvalidCharacter { index, .. } => {
                write!(f, "a character that is not a hex digit at position {index}")
            }
            hush_suppression_index::KeyError::WrongLength { len } => {
                write!(f, "{len} hex characters instead of 64")
            }
        }
    }
}

fn hash_of(
    kind: IdentifierType,
    value: &IdentifierValue,
    field: &str,
) -> Result<String, CheckError> {
    match value {
        IdentifierValue::Raw(raw) => {
            hash_identifier(kind, raw).map_err(|error| CheckError::Invalid {
                field: format!("{field}.value"),
                message: error.to_string(),
            })
        }
        IdentifierValue::Sha256(hash) if is_sha256_hex(hash) => Ok(hash.clone()),
        IdentifierValue::Sha256(_) => Err(CheckError::Invalid {
            field: format!("{field}.sha256"),
            message: "must be the SHA-256 of the normalised value as 64 lowercase hex characters"
                .into(),
        }),
    }
}

/// Checks a vendor name: 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit. Vendor
/// names label metrics, so free text is refused.
pub fn validate_vendor(vendor: &str) -> Result<(), CheckError> {
    let valid = vendor.len() <= 64
        && vendor
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && vendor
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(CheckError::InvalidVendor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hush_contracts::events::MinorStatus;
    use hush_contracts::identifiers::sha256_hex;

    /// A state for `email` (hashed) with the given flags.
    pub(crate) fn state(
        email: &str,
        opted_out: bool,
        limited: bool,
        deleted: bool,
    ) -> SuppressionState {
        SuppressionState {
            identifier_hash: sha256_hex(email),
            identifier_type: IdentifierType::Email,
            subject_key: sha256_hex(email),
            sale_share_opted_out: opted_out,
            sensitive_limited: limited,
            deleted,
            effective_at: 1_767_225_600_000,
            resolicit_after: None,
            minor_status: MinorStatus::Unknown,
            last_request_id: format!("req-{email}"),
            updated_at: 10,
            synthetic: false,
        }
    }

    fn raw(email: &str) -> Lookup {
        (IdentifierType::Email, IdentifierValue::Raw(email.into()))
    }

    fn hashed(email: &str) -> Lookup {
        (
            IdentifierType::Email,
            IdentifierValue::Sha256(sha256_hex(email)),
        )
    }

    fn deny_list() -> DenyList {
        DenyList::from_states([
            state("out@example.com", true, false, false),
            state("gone@example.com", true, true, true),
            state("limited@example.com", false, true, false),
            state("back@example.com", false, false, false),
        ])
    }

    #[test]
    fn the_canarys_identifiers_are_denied_but_counted_apart_and_its_lookups_not_counted() {
        let canary = SuppressionState {
            synthetic: true,
            ..state("hush-canary-r1@hush-canary.example", true, true, true)
        };
        let deny_list = DenyList::from_states([state("out@example.com", true, false, false)]);
        let real = deny_list.stats();
        deny_list.apply(canary.clone());
        let stats = deny_list.stats();
        assert_eq!(stats.denied_identifiers, real.denied_identifiers);
        assert_eq!(stats.known_identifiers, real.known_identifiers);
        assert_eq!(stats.canary_identifiers, 1);
        assert_eq!(deny_list.len(), 1, "the real person alone");

        // Enforced like anyone else's, but the lookup is not counted.
        let decision = deny_list
            .screen("clearbit", &[raw("hush-canary-r1@hush-canary.example")])
            .unwrap();
        assert!(!decision.allowed);
        assert!(deny_list.stats().vendors["clearbit"].lookups == 0);
        deny_list
            .screen("clearbit", &[raw("out@example.com")])
            .unwrap();
        let filtered = deny_list
            .filter(
                "clearbit",
                &[EnrichmentRecord {
                    id: "1".into(),
                    identifiers: vec![raw("hush-canary-r1@hush-canary.example")],
                }],
            )
            .unwrap();
        assert_eq!(filtered.dropped.len(), 1);
        assert_eq!(
            deny_list.stats().vendors["clearbit"],
            VendorStats {
                lookups: 1,
                blocked_lookups: 1
            },
            "only the real person's lookup"
        );

        // A later real state of the same identifier counts again (and the canary's no more).
        deny_list.apply(SuppressionState {
            synthetic: false,
            updated_at: 20,
            ..canary
        });
        let stats = deny_list.stats();
        assert_eq!(stats.canary_identifiers, 0);
        assert_eq!(stats.denied_identifiers, 2);
        assert_eq!(stats.known_identifiers, 2);
    }

    #[test]
    fn an_opted_out_person_is_denied_by_raw_value_after_normalisation() {
        let decision = deny_list().check(&[raw("  OUT@Example.com ")]).unwrap();
        assert!(!decision.allowed);
        assert_eq!(decision.denied.len(), 1);
        assert_eq!(decision.denied[0].sha256, sha256_hex("out@example.com"));
        assert_eq!(decision.denied[0].reason, Reason::SaleShareOptOut);
    }

    #[test]
    fn an_already_hashed_identifier_is_looked_up_as_is() {
        let decision = deny_list().check(&[hashed("gone@example.com")]).unwrap();
        assert_eq!(decision.reason(), Some(Reason::Deleted));
    }

    #[test]
    fn deletion_is_reported_before_opt_out_and_limit() {
        assert_eq!(
            Reason::of(&state("x@example.com", true, true, true)),
            Some(Reason::Deleted)
        );
        assert_eq!(
            Reason::of(&state("x@example.com", true, true, false)),
            Some(Reason::SaleShareOptOut)
        );
    }

    #[test]
    fn a_limit_on_sensitive_pi_denies_enrichment() {
        assert_eq!(
            deny_list().is_denied(&sha256_hex("limited@example.com")),
            Some(Reason::SensitiveLimited)
        );
    }

    #[test]
    fn an_opted_back_in_or_unknown_person_is_allowed() {
        let list = deny_list();
        assert!(
            list.check(&[raw("back@example.com"), raw("new@example.com")])
                .unwrap()
                .allowed
        );
        assert_eq!(list.is_denied(&sha256_hex("back@example.com")), None);
    }

    #[test]
    fn one_denied_identifier_denies_the_person_and_is_listed_once() {
        let decision = deny_list()
            .check(&[
                raw("new@example.com"),
                raw("out@example.com"),
                hashed("out@example.com"),
            ])
            .unwrap();
        assert!(!decision.allowed);
        assert_eq!(decision.denied.len(), 1);
    }

    #[test]
    fn nothing_is_decided_before_the_rebuild() {
        let list = DenyList::new();
        list.apply(state("out@example.com", true, false, false));
        assert_eq!(
            list.check(&[raw("out@example.com")]),
            Err(CheckError::NotRebuilt)
        );
        list.mark_rebuilt();
        assert!(!list.check(&[raw("out@example.com")]).unwrap().allowed);
    }

    #[test]
    fn an_older_state_does_not_replace_a_newer_one_and_the_size_follows() {
        let list = deny_list();
        assert_eq!(list.len(), 3);
        let mut opted_in = state("out@example.com", false, false, false);
        opted_in.updated_at = 20;
        list.apply(opted_in);
        assert_eq!(list.len(), 2);
        list.apply(state("out@example.com", true, false, false)); // updated_at 10: stale
        assert_eq!(list.is_denied(&sha256_hex("out@example.com")), None);
        assert_eq!(list.stats().known_identifiers, 4);
    }

    #[test]
    fn malformed_identifiers_are_refused_naming_the_field() {
        let list = deny_list();
        let error = list
            .check(&[raw("a@example.com"), raw("not-an-email")])
            .unwrap_err();
        assert!(
            matches!(&error, CheckError::Invalid { field, .. } if field == "identifiers[1].value"),
            "{error}"
        );
        assert!(!error.to_string().contains("not-an-email"));
        let upper = sha256_hex("a@example.com").to_uppercase();
        let error = list
            .check(&[(IdentifierType::Email, IdentifierValue::Sha256(upper))])
            .unwrap_err();
        assert!(
            matches!(&error, CheckError::Invalid { field, .. } if field == "identifiers[0].sha256")
        );
        assert!(matches!(
            list.check(&[]),
            Err(CheckError::Invalid { field, .. }) if field == "identifiers"
        ));
    }

    #[test]
    fn screening_counts_lookups_per_vendor_but_a_check_does_not() {
        let list = deny_list();
        list.screen("clearbit", &[raw("out@example.com")]).unwrap();
        list.screen("clearbit", &[raw("new@example.com")]).unwrap();
        list.check(&[raw("out@example.com")]).unwrap();
        let stats = list.stats();
        assert_eq!(
            stats.vendors["clearbit"],
            VendorStats {
                lookups: 2,
                blocked_lookups: 1
            }
        );
        assert_eq!(stats.vendors.len(), 1);
        assert_eq!(stats.denied_identifiers, 3);
    }

    #[test]
    fn vendor_names_that_cannot_label_a_metric_are_refused() {
        let list = deny_list();
        for vendor in ["", "Clearbit", "zoom info", "-x", &"a".repeat(65)] {
            assert_eq!(
                list.screen(vendor, &[raw("a@example.com")]),
                Err(CheckError::InvalidVendor),
                "{vendor:?}"
            );
        }
        assert!(validate_vendor("zoominfo").is_ok());
    }

    #[test]
    fn filtering_drops_results_about_suppressed_people_in_order() {
        let record = |id: &str, email: &str| EnrichmentRecord {
            id: id.into(),
            identifiers: vec![raw(email)],
        };
        let filtered = deny_list()
            .filter(
                "zoominfo",
                &[
                    record("r1", "new@example.com"),
                    record("r2", "gone@example.com"),
                    record("r3", "back@example.com"),
                ],
            )
            .unwrap();
        assert_eq!(filtered.kept, vec!["r1", "r3"]);
        assert_eq!(
            filtered.dropped,
            vec![DroppedRecord {
                id: "r2".into(),
                reason: Reason::Deleted
            }]
        );
    }

    #[test]
    fn filtering_refuses_duplicate_ids_and_counts_nothing() {
        let list = deny_list();
        let record = EnrichmentRecord {
            id: "same".into(),
            identifiers: vec![raw("out@example.com")],
        };
        let error = list
            .filter("clearbit", &[record.clone(), record])
            .unwrap_err();
        assert!(matches!(error, CheckError::Invalid { field, .. } if field == "records[1].id"));
        assert!(list.stats().vendors.is_empty());
    }

    #[test]
    fn a_state_whose_hash_is_not_a_sha256_is_skipped_and_counted() {
        let list = deny_list();
        let before = metrics::MALFORMED_STATES.get();
        let mut bad = state("x@example.com", true, false, false);
        bad.identifier_hash = "jane@example.com".into();
        list.apply(bad);
        assert_eq!(list.stats().known_identifiers, 4);
        assert!(metrics::MALFORMED_STATES.get() > before);
    }

    #[test]
    fn the_table_holds_at_most_48_bytes_per_identifier() {
        let list = DenyList::new();
        let n = 200_000u32;
        for i in 0..n {
            let mut entry = state("x@example.com", i % 2 == 0, i % 3 == 0, i % 5 == 0);
            entry.identifier_hash = sha256_hex(&i.to_string());
            list.apply(entry);
        }
        assert_eq!(list.stats().known_identifiers, n as usize);
        let per_identifier = list.heap_bytes() as f64 / f64::from(n);
        assert!(
            per_identifier <= 48.0,
            "{per_identifier:.1} bytes per identifier"
        );
    }

    #[test]
    fn raw_values_are_redacted_in_debug_output() {
        let shown = format!("{:?}", raw("jane@example.com"));
        assert!(!shown.contains("jane"), "{shown}");
    }
}
