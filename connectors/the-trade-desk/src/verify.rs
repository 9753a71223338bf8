//! Read-back. The Trade Desk offers none: its deletion/opt-out call answers only which ids it
//! refused, and no TTD API reports whether it still holds or uses a given id. An accepted
//! request is therefore recorded as [`VERIFICATION`].

use hush_contracts::events::VerificationStatus;

/// Verification status of every accepted opt-out or deletion.
pub const VERIFICATION: VerificationStatus = VerificationStatus::Unverifiable;
