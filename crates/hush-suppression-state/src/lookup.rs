//! The suppression state as a service needs it: per identifier hash, whether the person is
//! deleted, opted out of sale/share or limited, since when, and by which request. Rebuilt from
//! the compacted `hush.suppressions.v1` into a compact index (about 42 bytes an identifier).

use std::collections::HashSet;
use std::sync::RwLock;

use hush_contracts::events::SuppressionState;
use hush_suppression_index::{IdentifierKey, Suppression, SuppressionIndex};

/// The suppression index, shared by every task of a service that reads it (the gate's
/// enforcing streams and leak watch, intake's consent answers).
#[derive(Default)]
pub struct SuppressionLookup {
    index: RwLock<SuppressionIndex>,
    /// Identifiers whose latest state the canary's request produced (`synthetic`): enforced
    /// like the others, left out of [`SuppressionLookup::counted_len`].
    canary: RwLock<HashSet<IdentifierKey>>,
}

impl SuppressionLookup {
    /// Applies one state record (a later state of the same identifier replaces the earlier;
    /// a state with no suppression left, such as a consumer-initiated opt-in, lifts it).
    pub fn apply(&self, state: &SuppressionState) {
        let Ok(key) = IdentifierKey::from_sha256_hex(&state.identifier_hash) else {
            tracing::warn!("suppression state with a malformed identifier hash skipped");
            return;
        };
        let suppression = Suppression {
            deleted: state.deleted,
            sale_share_opted_out: state.sale_share_opted_out,
            sensitive_limited: state.sensitive_limited,
            effective_at_ms: state.effective_at,
            request_id: uuid::Uuid::parse_str(&state.last_request_id)
                .map(|id| *id.as_bytes())
                .unwrap_or_default(),
        };
        let held = {
            let mut index = self.index.write().expect("index lock");
            index.upsert(key, suppression);
            index.get(&key).is_some()
        };
        let mut canary = self.canary.write().expect("canary lock");
        if state.synthetic && held {
            canary.insert(key);
        } else {
            canary.remove(&key);
        }
    }

    /// Forgets an identifier (a tombstone on the compacted topic).
    pub fn remove(&self, identifier_hash: &str) {
        if let Ok(key) = IdentifierKey::from_sha256_hex(identifier_hash) {
            self.index.write().expect("index lock").remove(&key);
            self.canary.write().expect("canary lock").remove(&key);
        }
    }

    /// The suppression of an identifier, if any.
    pub fn get(&self, identifier_hash: &str) -> Option<Suppression> {
        let key = IdentifierKey::from_sha256_hex(identifier_hash).ok()?;
        self.index.read().expect("index lock").get(&key)
    }

    /// Identifiers held.
    pub fn len(&self) -> usize {
        self.index.read().expect("index lock").len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Identifiers held, the canary's left out: what a service reports as suppressed people.
    pub fn counted_len(&self) -> usize {
        let canary = self.canary.read().expect("canary lock").len();
        self.len().saturating_sub(canary)
    }

    /// Heap held by the index, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.index.read().expect("index lock").heap_bytes()
    }
}

/// The request id of a suppression as a UUID string.
pub fn request_id_of(suppression: &Suppression) -> String {
    uuid::Uuid::from_bytes(suppression.request_id).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{IdentifierType, MinorStatus};
    use hush_contracts::identifiers::sha256_hex;

    pub(crate) fn state(email: &str, opted_out: bool, deleted: bool) -> SuppressionState {
        SuppressionState {
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
        }
    }

    #[test]
    fn a_state_is_found_by_its_hash_with_its_request() {
        let lookup = SuppressionLookup::default();
        lookup.apply(&state("jane@example.com", true, false));
        let found = lookup.get(&sha256_hex("jane@example.com")).unwrap();
        assert!(found.sale_share_opted_out && !found.deleted);
        assert_eq!(
            request_id_of(&found),
            "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10"
        );
        assert_eq!(lookup.get(&sha256_hex("john@example.com")), None);
    }

    #[test]
    fn the_canarys_identifiers_are_enforced_but_not_counted() {
        let lookup = SuppressionLookup::default();
        lookup.apply(&state("jane@example.com", true, false));
        let canary = |opted_out| SuppressionState {
            synthetic: true,
            ..state("hush-canary-r1@hush-canary.example", opted_out, false)
        };
        lookup.apply(&canary(true));
        assert!(lookup
            .get(&sha256_hex("hush-canary-r1@hush-canary.example"))
            .is_some_and(|s| s.sale_share_opted_out));
        assert_eq!((lookup.len(), lookup.counted_len()), (2, 1));
        // Lifted (the canary's re-opt-in), then suppressed again by a real request.
        lookup.apply(&canary(false));
        assert_eq!((lookup.len(), lookup.counted_len()), (1, 1));
        lookup.apply(&state("hush-canary-r1@hush-canary.example", true, false));
        assert_eq!((lookup.len(), lookup.counted_len()), (2, 2));
        lookup.apply(&canary(true));
        lookup.remove(&sha256_hex("hush-canary-r1@hush-canary.example"));
        assert_eq!((lookup.len(), lookup.counted_len()), (1, 1));
    }

    #[test]
    fn a_lifted_state_and_a_tombstone_remove_the_identifier() {
        let lookup = SuppressionLookup::default();
        lookup.apply(&state("jane@example.com", true, false));
        lookup.apply(&state("jane@example.com", false, false));
        assert_eq!(lookup.get(&sha256_hex("jane@example.com")), None);
        lookup.apply(&state("john@example.com", false, true));
        lookup.remove(&sha256_hex("john@example.com"));
        assert!(lookup.is_empty());
    }
}
