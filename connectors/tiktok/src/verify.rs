//! Read-back. TikTok offers none per person: an audience reports only its size (updated within
//! a day or two), never whether a given identifier is in it. A completed removal is therefore
//! recorded as [`VERIFICATION`].

use hush_contracts::events::VerificationStatus;

/// Verification status of every TikTok removal.
pub const VERIFICATION: VerificationStatus = VerificationStatus::Unverifiable;
