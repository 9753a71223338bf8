//! Read-back. The Trade Desk offers none: its deletion/opt-out call answers only which ids it
//! refused, and no TTD API reports whether it still holds or uses a given id. An accepted
//! request is therefore recorded as [`VERIFICATION`].

use hush_contracts::events::VerificationStatus;

/// Verification status of every accepted opt-out or deletion.
pub const VERIFICATION: VerificationStatus = VerificationStatus::Unverifiable;

/// Why [`VERIFICATION`] is all an accepted request can get, kept as the evidence's
/// `verification_note`.
pub const REASON: &str =
    "The Trade Desk answers only which ids it refused and offers no read-back of the ids it holds";
