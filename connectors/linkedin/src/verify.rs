//! Read-back. LinkedIn offers none for DMP segment members: a segment reports only aggregate
//! counts (`matchedCount`, `audienceSize`, refreshed over a rolling window), never whether a
//! given person is in it. A completed removal is therefore recorded as [`VERIFICATION`].

use hush_contracts::events::VerificationStatus;

/// Verification status of every LinkedIn removal.
pub const VERIFICATION: VerificationStatus = VerificationStatus::Unverifiable;
