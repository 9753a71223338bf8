//! Which requests this connector has already confirmed, rebuilt from the confirmations topic,
//! so a re-delivered request is never sent to the recipient again once it was confirmed.

use std::collections::HashSet;
use std::sync::RwLock;

/// Request ids with a confirmation from one connector.
#[derive(Default)]
pub struct DoneSet {
    ids: RwLock<HashSet<String>>,
}

impl DoneSet {
    /// Whether `request_id` was confirmed.
    pub fn contains(&self, request_id: &str) -> bool {
        self.ids.read().expect("done lock").contains(request_id)
    }

    /// Records a confirmation.
    pub fn insert(&self, request_id: String) {
        self.ids.write().expect("done lock").insert(request_id);
    }

    /// Number of confirmed requests.
    pub fn len(&self) -> usize {
        self.ids.read().expect("done lock").len()
    }

    /// Whether nothing was confirmed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
