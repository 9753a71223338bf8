//! Which replica owns a request: the one assigned the partition of the confirmations topic (and
//! of the commands topic, which has as many) that the request's subject key lands on.
//!
//! The audit topic is keyed by request id and the confirmations by subject key, so a request's
//! audit partition says nothing about its owner: the owner's partition is computed from the
//! subject key with the partitioner every Hush producer uses (`murmur2_random`: Kafka's
//! murmur2 of the key, its sign bit cleared, modulo the partition count).

use std::collections::HashSet;

/// The murmur2 hash of a record key as Kafka's default partitioner computes it (the `murmur2`
/// crate's endianness-independent MurmurHash2 with Kafka's seed), sign bit cleared:
/// `owner_partition` is this modulo the partition count.
pub fn key_hash(key: &[u8]) -> u32 {
    murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff
}

/// Which requests this replica holds in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// Every request (an auditor that is the only writer of its records: tests, an embedded
    /// auditor).
    Everything,
    /// The requests whose subject key lands on one of `owned` of the `partitions` partitions of
    /// the confirmations topic.
    Partitions {
        /// Partition count of the confirmations (and commands) topic.
        partitions: u32,
        /// Partitions this replica's owner consumer holds.
        owned: HashSet<i32>,
    },
}

impl Holding {
    /// Whether a request whose subject key hashes to `hash` (see [`key_hash`]) is held in full.
    pub fn holds(&self, hash: u32) -> bool {
        match self {
            Holding::Everything => true,
            Holding::Partitions { partitions, owned } => {
                *partitions > 0 && owned.contains(&((hash % partitions) as i32))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_kafkas_murmur2_with_the_sign_bit_cleared() {
        // Kafka's own test vectors (org.apache.kafka.common.utils.UtilsTest#testMurmur2).
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, murmur2) in cases {
            assert_eq!(key_hash(key), (murmur2 as u32) & 0x7fff_ffff, "{key:?}");
        }
    }

    #[test]
    fn a_partitioned_holding_holds_only_its_partitions() {
        let holding = Holding::Partitions {
            partitions: 4,
            owned: HashSet::from([1, 3]),
        };
        assert!(holding.holds(5) && holding.holds(3));
        assert!(!holding.holds(4) && !holding.holds(6));
        assert!(Holding::Everything.holds(4));
        let unknown = Holding::Partitions {
            partitions: 0,
            owned: HashSet::from([0]),
        };
        assert!(!unknown.holds(0), "no partition count, nothing held");
    }
}
