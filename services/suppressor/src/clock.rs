//! Time as the suppressor sees it: the current instant and a way to wait. Behind a trait so the
//! retry paths can be tested with a clock that advances only when told to.

use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::events::{now_millis, EpochMillis};

/// The current time and waiting.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now, in epoch milliseconds.
    fn now_millis(&self) -> EpochMillis;

    /// Returns after `duration` has passed on this clock.
    async fn sleep(&self, duration: Duration);

    /// Returns once this clock reads `at` or later.
    async fn sleep_until(&self, at: EpochMillis) {
        let wait = at - self.now_millis();
        if wait > 0 {
            self.sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}

/// The wall clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now_millis(&self) -> EpochMillis {
        now_millis()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
