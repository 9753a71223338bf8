//! Read-back. Meta offers none for customer-list audiences: the Graph API reports an
//! audience's approximate size, never whether a given person is a member, and removal is
//! applied asynchronously (usually within 24 hours). A completed removal is therefore recorded
//! as [`VERIFICATION`], with [`REMOVAL_TIMING`] in its evidence.

use hush_contracts::events::VerificationStatus;

/// Verification status of every Meta removal.
pub const VERIFICATION: VerificationStatus = VerificationStatus::Unverifiable;

/// When Meta applies a removal it has accepted, as recorded in evidence.
pub const REMOVAL_TIMING: &str = "asynchronous (up to 24 h)";
