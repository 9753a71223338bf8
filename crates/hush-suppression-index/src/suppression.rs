//! What the index records about a suppressed person.

/// Whether, since when and by which request a person is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Suppression {
    /// The person asked for their data to be deleted.
    pub deleted: bool,
    /// The person opted out of the sale or sharing of their data.
    pub sale_share_opted_out: bool,
    /// The person limited the use of their sensitive data.
    pub sensitive_limited: bool,
    /// When the suppression took effect, in milliseconds since the Unix epoch. Stored and
    /// returned as given: any `i64` round-trips.
    pub effective_at_ms: i64,
    /// The bytes of the UUID of the request that set this suppression.
    pub request_id: [u8; 16],
}

const DELETED: u8 = 1;
const SALE_SHARE_OPTED_OUT: u8 = 1 << 1;
const SENSITIVE_LIMITED: u8 = 1 << 2;

impl Suppression {
    /// True if any of the three flags is set. A `Suppression` for which this is false is not
    /// stored: [`SuppressionIndex::upsert`](crate::SuppressionIndex::upsert) treats it as the
    /// removal of the key.
    pub fn is_suppressed(&self) -> bool {
        self.deleted || self.sale_share_opted_out || self.sensitive_limited
    }

    /// The three flags in one byte; 0 exactly when [`is_suppressed`](Self::is_suppressed) is
    /// false.
    pub(crate) fn flag_bits(&self) -> u8 {
        let mut bits = 0;
        if self.deleted {
            bits |= DELETED;
        }
        if self.sale_share_opted_out {
            bits |= SALE_SHARE_OPTED_OUT;
        }
        if self.sensitive_limited {
            bits |= SENSITIVE_LIMITED;
        }
        bits
    }

    /// The inverse of [`flag_bits`](Self::flag_bits), with the other two fields.
    pub(crate) fn from_parts(flag_bits: u8, effective_at_ms: i64, request_id: [u8; 16]) -> Self {
        Self {
            deleted: flag_bits & DELETED != 0,
            sale_share_opted_out: flag_bits & SALE_SHARE_OPTED_OUT != 0,
            sensitive_limited: flag_bits & SENSITIVE_LIMITED != 0,
            effective_at_ms,
            request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_and_zero_means_not_suppressed() {
        for bits in 0..8u8 {
            let s = Suppression::from_parts(bits, -5, [bits; 16]);
            assert_eq!(s.flag_bits(), bits);
            assert_eq!(s.is_suppressed(), bits != 0);
            assert_eq!(s.effective_at_ms, -5);
            assert_eq!(s.request_id, [bits; 16]);
        }
    }
}
