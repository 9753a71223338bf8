//! Read-back. TikTok offers none per person: an audience reports only its size (updated within
//! a day or two), never whether a given identifier is in it. A completed removal is therefore
//! recorded as [`VERIFICATION`].

use hush_contracts::events::VerificationStatus;

/// Verification status of every TikTok removal.
pub const VERIFICATION: VerificationStatus = VerificationStatus::Unverifiable;

/// Why [`VERIFICATION`] is all a removal can get, kept as the evidence's `verification_note`.
pub const REASON: &str =
    "TikTok reports an audience's size only, never whether a given person is in it";
