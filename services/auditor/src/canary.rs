//! The canaries, as an operator watches them: the auditor reads every `CanaryResult` on
//! `hush.canaries.v1` (from the beginning, then following) and keeps the latest per channel,
//! exposed as metrics — whether it passed, each stage's status and time, and its age — and at
//! the top of the dashboard. Labels are channel, stage and status names only.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use hush_contracts::canary::{
    CanaryChannel, CanaryOutcome, CanaryResult, CanaryStage, CanaryStageStatus,
};
use hush_contracts::events::EpochMillis;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{IncomingMessage, TopicTable};
use prometheus::{register_gauge_vec, register_int_gauge_vec, GaugeVec, IntGaugeVec};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// When the last canary run of a channel finished.
pub static LAST_RUN: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "hush_canary_last_run_timestamp_seconds",
        "When the last canary run through a channel finished (Unix seconds)",
        &["channel"]
    )
    .expect("metric registers once")
});

/// Age of the last canary run of a channel.
pub static LAST_RUN_AGE: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "hush_canary_last_run_age_seconds",
        "Seconds since the last canary run through a channel finished",
        &["channel"]
    )
    .expect("metric registers once")
});

/// Whether the last canary run of a channel passed.
pub static LAST_RUN_PASSED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "hush_canary_last_run_passed",
        "1 when the last canary run through a channel passed every stage, 0 when one failed",
        &["channel"]
    )
    .expect("metric registers once")
});

/// Each stage's status in the last run of a channel: 1 for the status it ended with.
pub static STAGE_STATUS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "hush_canary_stage_status",
        "Status of each stage in the last canary run through a channel: 1 for the status the \
         stage ended with, 0 for the others",
        &["channel", "stage", "status"]
    )
    .expect("metric registers once")
});

/// How long each stage took in the last run of a channel.
pub static STAGE_SECONDS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "hush_canary_stage_duration_seconds",
        "How long each stage took in the last canary run through a channel",
        &["channel", "stage"]
    )
    .expect("metric registers once")
});

const STATUSES: [CanaryStageStatus; 4] = [
    CanaryStageStatus::Passed,
    CanaryStageStatus::Failed,
    CanaryStageStatus::Skipped,
    CanaryStageStatus::NotRun,
];

/// How long to wait before reading the canaries topic again after a failure (e.g. the topic
/// does not exist yet).
const RETRY: Duration = Duration::from_secs(30);

/// The latest canary result of each channel.
#[derive(Debug, Default)]
pub struct CanaryBoard {
    latest: Mutex<BTreeMap<CanaryChannel, CanaryResult>>,
}

impl CanaryBoard {
    /// Keeps `result` when it is the channel's newest (a result read again, or an older one,
    /// changes nothing) and sets the channel's metrics; whether it was kept.
    pub fn record(&self, result: CanaryResult, now: EpochMillis) -> bool {
        let mut latest = self.latest.lock().expect("canary board lock");
        if latest
            .get(&result.channel)
            .is_some_and(|known| known.finished_at >= result.finished_at)
        {
            return false;
        }
        export(&result, now);
        latest.insert(result.channel, result);
        true
    }

    /// The latest result of each channel, in channel order.
    pub fn latest(&self) -> Vec<CanaryResult> {
        self.latest
            .lock()
            .expect("canary board lock")
            .values()
            .cloned()
            .collect()
    }

    /// Sets the age gauges at `now`.
    pub fn refresh_ages(&self, now: EpochMillis) {
        for result in self.latest.lock().expect("canary board lock").values() {
            LAST_RUN_AGE
                .with_label_values(&[result.channel.as_str()])
                .set(age_seconds(result, now));
        }
    }

    async fn apply(&self, codec: &AvroCodec, message: IncomingMessage) {
        let Some(payload) = message.payload.as_deref() else {
            return;
        };
        match codec.decode::<CanaryResult>(payload).await {
            Ok(result) => {
                self.record(result, hush_contracts::events::now_millis());
            }
            Err(error) => tracing::warn!(
                %error,
                partition = message.partition,
                offset = message.offset,
                "canary result not readable; skipped"
            ),
        }
    }
}

fn age_seconds(result: &CanaryResult, now: EpochMillis) -> f64 {
    (now - result.finished_at).max(0) as f64 / 1000.0
}

/// Sets the metrics of `result`'s channel.
fn export(result: &CanaryResult, now: EpochMillis) {
    let channel = result.channel.as_str();
    LAST_RUN
        .with_label_values(&[channel])
        .set(result.finished_at as f64 / 1000.0);
    LAST_RUN_AGE
        .with_label_values(&[channel])
        .set(age_seconds(result, now));
    LAST_RUN_PASSED
        .with_label_values(&[channel])
        .set(i64::from(result.outcome == CanaryOutcome::Passed));
    for stage in CanaryStage::ALL {
        let found = result.stages.iter().find(|s| s.stage == stage);
        let ended = found.map_or(CanaryStageStatus::NotRun, |s| s.status);
        for status in STATUSES {
            STAGE_STATUS
                .with_label_values(&[channel, stage.as_str(), status.as_str()])
                .set(i64::from(status == ended));
        }
        let seconds = found.map_or(0.0, |s| s.duration_ms as f64 / 1000.0);
        STAGE_SECONDS
            .with_label_values(&[channel, stage.as_str()])
            .set(seconds);
    }
}

/// Reads the canaries topic into `board` until `stop`: every result from the beginning, then
/// each new one. While the topic cannot be read (not created yet, broker away) it tries again
/// every 30 seconds; the auditor's readiness does not wait for it.
pub fn follow(
    board: Arc<CanaryBoard>,
    common: &CommonConfig,
    codec: &AvroCodec,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let (kafka, topic, codec) = (
        common.kafka.clone(),
        common.topics.canaries.clone(),
        codec.clone(),
    );
    tokio::spawn(async move {
        loop {
            let opened = {
                let (kafka, topic) = (kafka.clone(), topic.clone());
                tokio::task::spawn_blocking(move || {
                    TopicTable::new(&kafka, &topic, "hush-auditor-canaries")
                })
                .await
            };
            match opened {
                Ok(Ok(table)) => match table.catch_up(|m| board.apply(&codec, m)).await {
                    Ok(read) => {
                        tracing::info!(results = read, "canary results read");
                        table.follow(stop, |m| board.apply(&codec, m)).await;
                        return;
                    }
                    Err(error) => tracing::warn!(%error, "canary results not read; retrying"),
                },
                Ok(Err(error)) => tracing::warn!(%error, "canary results not read; retrying"),
                Err(error) => tracing::warn!(%error, "canary results not read; retrying"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::canary::CanaryStageResult;

    fn result(
        channel: CanaryChannel,
        finished_at: EpochMillis,
        failed: Option<CanaryStage>,
    ) -> CanaryResult {
        CanaryResult {
            run_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            channel,
            request_id: None,
            started_at: finished_at - 5_000,
            finished_at,
            stages: vec![
                CanaryStageResult {
                    stage: CanaryStage::Submit,
                    status: CanaryStageStatus::Passed,
                    started_at: 0,
                    duration_ms: 1_500,
                    detail: None,
                },
                CanaryStageResult {
                    stage: CanaryStage::Record,
                    status: if failed.is_some() {
                        CanaryStageStatus::Failed
                    } else {
                        CanaryStageStatus::Passed
                    },
                    started_at: 0,
                    duration_ms: 250,
                    detail: None,
                },
            ],
            outcome: if failed.is_some() {
                CanaryOutcome::Failed
            } else {
                CanaryOutcome::Passed
            },
            failed_stage: failed,
            failure_reason: None,
        }
    }

    fn status(channel: &str, stage: &str, status: &str) -> i64 {
        STAGE_STATUS
            .with_label_values(&[channel, stage, status])
            .get()
    }

    #[test]
    fn the_newest_result_of_a_channel_sets_its_metrics_and_an_older_one_changes_nothing() {
        let board = CanaryBoard::default();
        let now = 1_800_000_000_000;
        assert!(board.record(result(CanaryChannel::Signals, now - 60_000, None), now));
        assert_eq!(LAST_RUN_PASSED.with_label_values(&["SIGNALS"]).get(), 1);
        assert_eq!(status("SIGNALS", "RECORD", "PASSED"), 1);
        assert_eq!(
            STAGE_SECONDS
                .with_label_values(&["SIGNALS", "SUBMIT"])
                .get(),
            1.5
        );
        assert_eq!(LAST_RUN_AGE.with_label_values(&["SIGNALS"]).get(), 60.0);

        assert!(board.record(
            result(CanaryChannel::Signals, now, Some(CanaryStage::Record)),
            now
        ));
        assert_eq!(LAST_RUN_PASSED.with_label_values(&["SIGNALS"]).get(), 0);
        assert_eq!(status("SIGNALS", "RECORD", "FAILED"), 1);
        assert_eq!(status("SIGNALS", "RECORD", "PASSED"), 0);
        assert_eq!(
            status("SIGNALS", "GATE", "NOT_RUN"),
            1,
            "not reported: not run"
        );

        assert!(!board.record(result(CanaryChannel::Signals, now - 1, None), now));
        assert_eq!(LAST_RUN_PASSED.with_label_values(&["SIGNALS"]).get(), 0);
        assert_eq!(
            LAST_RUN.with_label_values(&["SIGNALS"]).get(),
            now as f64 / 1000.0
        );
        board.refresh_ages(now + 90_000);
        assert_eq!(LAST_RUN_AGE.with_label_values(&["SIGNALS"]).get(), 90.0);
        assert_eq!(board.latest().len(), 1);
    }
}
