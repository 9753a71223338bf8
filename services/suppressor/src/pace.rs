//! Paces vendor calls: at most `rate` calls per second, with a burst of at most one second's
//! worth, at a rate that may change while calls wait (a replica's share of its recipient's limit
//! moves with every rebalance; see [`crate::share`]).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Slowest pace a [`Pacer`] keeps: one call per 1,000 seconds.
const SLOWEST_RATE: f64 = 0.001;

/// A rate limiter for one process's vendor calls whose rate can be changed at any time. Calls
/// are given slots in the order they ask (generic cell rate algorithm): a slot already handed
/// out keeps its time, the next ones follow the new rate, and a rate change never refills the
/// burst.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Calls per second.
    rate: f64,
    /// When the next call would be due if no burst were allowed (the theoretical arrival time).
    next: Instant,
}

impl State {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }

    /// How far ahead of its theoretical time a call may go: one second's worth of calls (at
    /// least one) may be made back to back.
    fn tolerance(&self) -> Duration {
        let burst = self.rate.floor().max(1.0);
        self.interval().mul_f64(burst - 1.0)
    }
}

fn usable(rate: f64) -> f64 {
    if rate.is_finite() {
        rate.max(SLOWEST_RATE)
    } else {
        SLOWEST_RATE
    }
}

impl Pacer {
    /// A pacer allowing `calls_per_second`; a rate below one call per 1,000 s, or one that is
    /// not a finite number, is taken as one call per 1,000 s.
    pub fn new(calls_per_second: f64) -> Self {
        Self {
            state: Mutex::new(State {
                rate: usable(calls_per_second),
                next: Instant::now(),
            }),
        }
    }

    /// Calls per second allowed now.
    pub fn rate(&self) -> f64 {
        self.state.lock().expect("pacer state").rate
    }

    /// Changes the rate for every call that has not yet been given its slot.
    pub fn set_rate(&self, calls_per_second: f64) {
        self.state.lock().expect("pacer state").rate = usable(calls_per_second);
    }

    /// Waits until this call's slot. A call whose wait is abandoned (its future dropped) still
    /// used its slot.
    pub async fn ready(&self) {
        let slot = {
            let mut state = self.state.lock().expect("pacer state");
            let now = Instant::now();
            let earliest = state
                .next
                .checked_sub(state.tolerance())
                .unwrap_or(state.next);
            let slot = earliest.max(now);
            state.next = state.next.max(now) + state.interval();
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When each of `n` calls got its slot, in seconds since the first asked.
    async fn slots(pacer: &Pacer, n: usize) -> Vec<f64> {
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..n {
            pacer.ready().await;
            at.push(start.elapsed().as_secs_f64());
        }
        at
    }

    /// Asserts each slot is within 3 ms of the one expected (tokio's timer rounds a sleep up
    /// to the millisecond).
    fn assert_slots(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 0.003, "{actual:?} vs {expected:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_seconds_worth_goes_at_once_then_calls_follow_the_rate() {
        let pacer = Pacer::new(4.0);
        assert_slots(
            &slots(&pacer, 7).await,
            &[0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.75],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fractional_rate_allows_its_whole_calls_as_burst() {
        // 4.5 calls per second: a burst of 4, then one call every 222 ms.
        let pacer = Pacer::new(4.5);
        assert_slots(&slots(&pacer, 6).await, &[0.0, 0.0, 0.0, 0.0, 0.222, 0.444]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_below_one_call_per_second_has_no_burst() {
        let pacer = Pacer::new(0.5);
        assert_slots(&slots(&pacer, 3).await, &[0.0, 2.0, 4.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_rate_applies_to_the_next_call_without_a_fresh_burst() {
        let pacer = Pacer::new(10.0);
        slots(&pacer, 10).await;
        pacer.set_rate(2.0);
        let start = Instant::now();
        pacer.ready().await;
        pacer.ready().await;
        // The burst was spent at the old rate, and slowing down gives none back: at 2 calls per
        // second (a burst of 2) the next two calls go at 0.5 s and 1 s, not at once.
        assert_slots(&[start.elapsed().as_secs_f64()], &[1.0]);
        assert_eq!(pacer.rate(), 2.0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_over_any_window_stay_within_rate_times_window_plus_burst() {
        let pacer = Pacer::new(4.5);
        let at = slots(&pacer, 200).await;
        // Any 10 s window: 4.5 × 10 + 4 calls at most.
        let most = at
            .iter()
            .map(|start| {
                at.iter()
                    .filter(|t| **t >= *start && **t < start + 10.0)
                    .count()
            })
            .max()
            .unwrap();
        assert!(most <= 49, "{most} calls within 10 s");
        assert!(most >= 45, "{most} calls within 10 s");
    }

    #[test]
    fn a_rate_that_is_not_a_positive_finite_number_is_taken_as_the_slowest() {
        assert_eq!(Pacer::new(0.0).rate(), SLOWEST_RATE);
        assert_eq!(Pacer::new(f64::NAN).rate(), SLOWEST_RATE);
        assert_eq!(Pacer::new(f64::INFINITY).rate(), SLOWEST_RATE);
    }
}
