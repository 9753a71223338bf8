//! The record of one channel's run as it happens: each stage's start, duration and outcome,
//! turned into the [`CanaryResult`] the run publishes.

use std::time::Instant;

use hush_contracts::canary::{
    CanaryChannel, CanaryOutcome, CanaryResult, CanaryStage, CanaryStageResult, CanaryStageStatus,
};
use hush_contracts::events::{now_millis, EpochMillis};

/// The stages of one channel's run so far.
#[derive(Debug)]
pub struct Timeline {
    run_id: String,
    channel: CanaryChannel,
    started_at: EpochMillis,
    request_id: Option<String>,
    stages: Vec<CanaryStageResult>,
    current: Option<(CanaryStage, EpochMillis, Instant)>,
}

impl Timeline {
    /// A run of `channel` starting now.
    pub fn start(run_id: &str, channel: CanaryChannel) -> Self {
        Self {
            run_id: run_id.to_owned(),
            channel,
            started_at: now_millis(),
            request_id: None,
            stages: Vec::new(),
            current: None,
        }
    }

    /// Starts timing `stage`.
    pub fn begin(&mut self, stage: CanaryStage) {
        self.current = Some((stage, now_millis(), Instant::now()));
    }

    /// Ends the stage begun last with `status` and `detail`.
    pub fn end(&mut self, status: CanaryStageStatus, detail: impl Into<String>) {
        let (stage, started_at, clock) = self
            .current
            .take()
            .expect("a stage ends only after it began");
        self.stages.push(CanaryStageResult {
            stage,
            status,
            started_at,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail: Some(detail.into()),
        });
    }

    /// Records `stage` as skipped, taking no time.
    pub fn skip(&mut self, stage: CanaryStage, why: impl Into<String>) {
        self.begin(stage);
        self.end(CanaryStageStatus::Skipped, why);
    }

    /// The request the run follows, once intake accepted it.
    pub fn set_request(&mut self, request_id: &str) {
        self.request_id = Some(request_id.to_owned());
    }

    /// Whether a stage has failed.
    pub fn failed(&self) -> bool {
        self.stages
            .iter()
            .any(|s| s.status == CanaryStageStatus::Failed)
    }

    /// The result: every stage not recorded is `NOT_RUN`, the outcome is `FAILED` when a stage
    /// failed, and the first failed stage and its detail are the failure.
    pub fn finish(self) -> CanaryResult {
        let finished_at = now_millis();
        let stages: Vec<CanaryStageResult> = CanaryStage::ALL
            .iter()
            .map(|stage| {
                self.stages
                    .iter()
                    .find(|s| s.stage == *stage)
                    .cloned()
                    .unwrap_or(CanaryStageResult {
                        stage: *stage,
                        status: CanaryStageStatus::NotRun,
                        started_at: finished_at,
                        duration_ms: 0,
                        detail: None,
                    })
            })
            .collect();
        let failed = stages
            .iter()
            .find(|s| s.status == CanaryStageStatus::Failed);
        CanaryResult {
            run_id: self.run_id,
            channel: self.channel,
            request_id: self.request_id,
            started_at: self.started_at,
            finished_at,
            outcome: if failed.is_some() {
                CanaryOutcome::Failed
            } else {
                CanaryOutcome::Passed
            },
            failed_stage: failed.map(|s| s.stage),
            failure_reason: failed.and_then(|s| s.detail.clone()),
            stages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failed_stage_is_the_failure_and_later_ones_did_not_run() {
        let mut timeline = Timeline::start("run", CanaryChannel::WebForm);
        timeline.skip(CanaryStage::Seed, "an opt-out");
        timeline.begin(CanaryStage::Submit);
        timeline.end(CanaryStageStatus::Passed, "accepted");
        timeline.set_request("req-1");
        timeline.begin(CanaryStage::Record);
        std::thread::sleep(std::time::Duration::from_millis(5));
        timeline.end(CanaryStageStatus::Failed, "no record after 1 s");
        assert!(timeline.failed());
        let result = timeline.finish();
        assert_eq!(result.outcome, CanaryOutcome::Failed);
        assert_eq!(result.failed_stage, Some(CanaryStage::Record));
        assert_eq!(
            result.failure_reason.as_deref(),
            Some("no record after 1 s")
        );
        assert_eq!(result.request_id.as_deref(), Some("req-1"));
        let stages: Vec<CanaryStage> = result.stages.iter().map(|s| s.stage).collect();
        assert_eq!(stages, CanaryStage::ALL, "every stage, in order");
        assert!(result.stages[2].duration_ms >= 5);
        assert!(result.stages[3..]
            .iter()
            .all(|s| s.status == CanaryStageStatus::NotRun));
    }

    #[test]
    fn skipped_stages_do_not_fail_a_run() {
        let mut timeline = Timeline::start("run", CanaryChannel::Gpc);
        timeline.skip(CanaryStage::Gate, "no gate stream configured");
        assert!(!timeline.failed());
        let result = timeline.finish();
        assert_eq!(result.outcome, CanaryOutcome::Passed);
        assert_eq!(result.failed_stage, None);
        assert_eq!(result.stages[5].stage, CanaryStage::Gate);
        assert_eq!(result.stages[5].status, CanaryStageStatus::Skipped);
    }
}
