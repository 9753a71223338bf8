//! A recipient's rate limit held across the replicas of its suppressor: each replica paces its
//! vendor calls at its share of `rate_limit_per_second`, the share of the recipient's input
//! partitions (the requests topic and the recipient's retry topic) its consumers hold,
//! recomputed after every rebalance. The shares of a consumer group add up to one, so the
//! replicas together stay within the limit however many there are.

use std::sync::Arc;

use futures::future::select_all;
use hush_runtime::kafka::PartitionCounts;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::pace::Pacer;

/// The calls per second one replica may make: `limit` × the partitions it holds / the
/// partitions of its input topics in all, and never less than one partition's share, so that a
/// replica finishing a batch whose partitions were just moved keeps going. A consumer that has
/// not learned its topics' partition count yet (before its first rebalance) counts
/// `configured_partitions` for them.
///
/// One partition's share is the least any replica that consumes at all holds, so the floor
/// adds nothing to the group's total while every replica holds a partition; a replica holding
/// none (more replicas than partitions) only finishes what it was handed before.
pub fn replica_rate(limit: u32, holdings: &[PartitionCounts], configured_partitions: usize) -> f64 {
    let assigned: usize = holdings.iter().map(|h| h.assigned).sum();
    let total: usize = holdings
        .iter()
        .map(|h| {
            if h.total == 0 {
                configured_partitions
            } else {
                h.total
            }
        })
        .sum();
    let total = total.max(1);
    let held = assigned.clamp(1, total);
    f64::from(limit) * held as f64 / total as f64
}

/// Keeps `pacer` at this replica's share of `limit` as `holdings` (one per consumer of the
/// recipient's input topics) change, until `shutdown` or until a consumer is gone.
pub async fn follow(
    pacer: Arc<Pacer>,
    recipient_id: String,
    limit: u32,
    mut holdings: Vec<watch::Receiver<PartitionCounts>>,
    configured_partitions: usize,
    shutdown: CancellationToken,
) {
    loop {
        let current: Vec<PartitionCounts> = holdings
            .iter_mut()
            .map(|h| *h.borrow_and_update())
            .collect();
        let rate = replica_rate(limit, &current, configured_partitions);
        if rate != pacer.rate() {
            tracing::info!(
                connector = %recipient_id,
                assigned = current.iter().map(|h| h.assigned).sum::<usize>(),
                total = current.iter().map(|h| h.total).sum::<usize>(),
                limit,
                calls_per_second = rate,
                "this replica's share of the recipient's rate limit"
            );
        }
        pacer.set_rate(rate);
        metrics::ALLOWED_CALLS_PER_SECOND
            .with_label_values(&[recipient_id.as_str()])
            .set(rate);
        let changed = select_all(holdings.iter_mut().map(|h| Box::pin(h.changed())));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            (result, _, _) = changed => {
                if result.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(assigned: usize, total: usize) -> PartitionCounts {
        PartitionCounts { assigned, total }
    }

    #[test]
    fn a_replica_holding_every_partition_gets_the_whole_limit() {
        assert_eq!(replica_rate(9, &[held(6, 6), held(6, 6)], 6), 9.0);
    }

    #[test]
    fn two_replicas_splitting_the_partitions_each_get_half() {
        let a = replica_rate(9, &[held(4, 6), held(2, 6)], 6);
        let b = replica_rate(9, &[held(2, 6), held(4, 6)], 6);
        assert_eq!((a, b), (4.5, 4.5));
    }

    #[test]
    fn the_shares_of_a_group_add_up_to_the_limit_however_the_partitions_fall() {
        // Seven replicas over 12 request and 12 retry partitions, unevenly.
        let replicas = [
            [held(2, 12), held(1, 12)],
            [held(2, 12), held(2, 12)],
            [held(2, 12), held(2, 12)],
            [held(2, 12), held(2, 12)],
            [held(2, 12), held(1, 12)],
            [held(1, 12), held(2, 12)],
            [held(1, 12), held(2, 12)],
        ];
        let sum: f64 = replicas.iter().map(|h| replica_rate(100, h, 12)).sum();
        assert!((sum - 100.0).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn a_replica_holding_nothing_keeps_one_partitions_share() {
        assert_eq!(replica_rate(12, &[held(0, 6), held(0, 6)], 6), 1.0);
    }

    #[test]
    fn before_its_first_rebalance_a_consumer_counts_the_configured_partitions() {
        // The requests consumer holds 3 of 6; the retry consumer has not been assigned yet and
        // counts the 6 partitions the configuration creates.
        assert_eq!(replica_rate(12, &[held(3, 6), held(0, 0)], 6), 3.0);
        assert_eq!(replica_rate(12, &[held(0, 0), held(0, 0)], 6), 1.0);
    }

    #[test]
    fn a_topic_with_more_partitions_weighs_more() {
        // 4 of 12 request partitions and 1 of 3 retry partitions: 5 of 15.
        assert_eq!(replica_rate(30, &[held(4, 12), held(1, 3)], 6), 10.0);
    }

    #[test]
    fn no_partitions_configured_anywhere_is_not_a_division_by_zero() {
        assert_eq!(replica_rate(5, &[], 0), 5.0);
    }

    #[tokio::test]
    async fn the_pacer_follows_every_rebalance() {
        let (requests, requests_rx) = watch::channel(PartitionCounts::default());
        let (retries, retries_rx) = watch::channel(PartitionCounts::default());
        let pacer = Arc::new(Pacer::new(10.0));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(follow(
            pacer.clone(),
            "crm".into(),
            10,
            vec![requests_rx, retries_rx],
            4,
            shutdown.clone(),
        ));
        let settles_at = |want: f64| {
            let pacer = pacer.clone();
            async move {
                for _ in 0..200 {
                    if pacer.rate() == want {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                panic!("rate {} never became {want}", pacer.rate());
            }
        };
        // Nothing assigned yet: one of the 8 configured partitions.
        settles_at(1.25).await;
        requests.send_replace(held(4, 4));
        retries.send_replace(held(4, 4));
        settles_at(10.0).await;
        // A second replica joined: half of each topic.
        requests.send_replace(held(2, 4));
        retries.send_replace(held(2, 4));
        settles_at(5.0).await;
        shutdown.cancel();
        task.await.unwrap();
    }
}
