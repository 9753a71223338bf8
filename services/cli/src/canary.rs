//! `hush canary run`: one canary round through every configured channel, printed stage by
//! stage with its timings; the command fails when a channel failed or its result could not be
//! recorded on the canaries topic.

use clap::{Subcommand, ValueEnum};
use hush_canary::{Canary, Run, Target};
use hush_contracts::canary::{CanaryChannel, CanaryOutcome, CanaryStageStatus};

use crate::requests::Endpoints;
use crate::topics::CliConfig;

/// `hush canary …`.
#[derive(Subcommand)]
pub enum CanaryCommand {
    /// Opt out a synthetic subject through each channel and follow it through intake, the
    /// auditor, every recipient, the gate and the leak watch; then opt it back in. The
    /// `delete` channel creates a fresh record at each recipient that allows it and deletes it.
    Run {
        /// Only this channel (repeat for several); default: `[canary] channels`.
        #[arg(long = "channel", value_enum)]
        channels: Vec<ChannelArg>,
        /// Also run the `DELETE` round (a fresh record created, deleted and read back as gone;
        /// needs `[canary] fresh_email_domain` and `[canary.reopt_in]`).
        #[arg(long)]
        delete: bool,
    },
}

/// A channel on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    /// `POST /v1/requests`.
    WebForm,
    /// `POST /v1/gpc` with `Sec-GPC: 1`.
    Gpc,
    /// `hush.signals.v1`.
    Signals,
    /// An attested `DELETE` of a record created fresh for the run.
    Delete,
}

impl From<ChannelArg> for CanaryChannel {
    fn from(channel: ChannelArg) -> Self {
        match channel {
            ChannelArg::WebForm => CanaryChannel::WebForm,
            ChannelArg::Gpc => CanaryChannel::Gpc,
            ChannelArg::Signals => CanaryChannel::Signals,
            ChannelArg::Delete => CanaryChannel::Delete,
        }
    }
}

/// Runs a canary command.
pub async fn run(
    command: CanaryCommand,
    config: &CliConfig,
    endpoints: &Endpoints,
) -> anyhow::Result<()> {
    let CanaryCommand::Run { channels, delete } = command;
    let canary = Canary::new(
        Target {
            intake_url: endpoints.intake_url.trim_end_matches('/').to_owned(),
            auditor_url: endpoints.auditor_url.trim_end_matches('/').to_owned(),
            api_key: endpoints.api_key.clone(),
        },
        &config.common,
        &config.gate,
        &config.canary,
        &config.recipients,
    )?;
    let channels = channels_to_run(
        channels.into_iter().map(Into::into).collect(),
        &config.canary.channels,
        delete,
    );
    let run = canary.run(&channels).await;
    print!("{}", render(&run));
    if let Some(error) = &run.unpublished {
        anyhow::bail!(
            "the results were not recorded on {}: {error}",
            config.common.topics.canaries
        );
    }
    let failed: Vec<String> = run
        .results
        .iter()
        .filter(|r| r.outcome == CanaryOutcome::Failed)
        .map(|r| {
            format!(
                "{} at {}",
                r.channel.as_str(),
                r.failed_stage.map_or("?", |s| s.as_str())
            )
        })
        .collect();
    if !failed.is_empty() {
        anyhow::bail!("canary failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The channels a run takes: those named (else the configured ones), and `DELETE` last when
/// `delete` asks for it and it is not among them.
fn channels_to_run(
    named: Vec<CanaryChannel>,
    configured: &[CanaryChannel],
    delete: bool,
) -> Vec<CanaryChannel> {
    let mut channels = if named.is_empty() {
        configured.to_vec()
    } else {
        named
    };
    if delete && !channels.contains(&CanaryChannel::Delete) {
        channels.push(CanaryChannel::Delete);
    }
    channels
}

/// The run as text: per channel its outcome and total time, then each stage's status, time
/// and what it saw.
pub fn render(run: &Run) -> String {
    let seconds = |ms: i64| format!("{:.2} s", ms as f64 / 1000.0);
    let mut out = format!("canary run {}\n", run.run_id);
    for result in &run.results {
        let outcome = match (result.outcome, result.failed_stage) {
            (CanaryOutcome::Failed, Some(stage)) => format!("FAILED at {}", stage.as_str()),
            (CanaryOutcome::Failed, None) => "FAILED".into(),
            (CanaryOutcome::Passed, _) => "PASSED".into(),
        };
        out.push_str(&format!(
            "{:<9} {outcome}  request {}  {}\n",
            result.channel.as_str(),
            result.request_id.as_deref().unwrap_or("-"),
            seconds(result.finished_at - result.started_at)
        ));
        for stage in &result.stages {
            let time = match stage.status {
                CanaryStageStatus::NotRun | CanaryStageStatus::Skipped => "-".to_owned(),
                _ => seconds(stage.duration_ms),
            };
            out.push_str(&format!(
                "  {:<10} {:<8} {:>8}  {}\n",
                stage.stage.as_str(),
                stage.status.as_str(),
                time,
                stage.detail.as_deref().unwrap_or_default()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::canary::{CanaryResult, CanaryStage, CanaryStageResult};

    #[test]
    fn the_run_prints_each_channels_outcome_and_each_stages_time() {
        let stage = |stage, status, duration_ms, detail: &str| CanaryStageResult {
            stage,
            status,
            started_at: 0,
            duration_ms,
            detail: Some(detail.into()),
        };
        let run = Run {
            run_id: "run-1".into(),
            unpublished: None,
            results: vec![CanaryResult {
                run_id: "run-1".into(),
                channel: CanaryChannel::WebForm,
                request_id: Some("req-1".into()),
                started_at: 1_000,
                finished_at: 5_250,
                stages: vec![
                    stage(
                        CanaryStage::Submit,
                        CanaryStageStatus::Passed,
                        40,
                        "accepted",
                    ),
                    stage(
                        CanaryStage::Confirm,
                        CanaryStageStatus::Failed,
                        4_100,
                        "recipient hubspot failed permanently",
                    ),
                    stage(CanaryStage::Gate, CanaryStageStatus::NotRun, 0, ""),
                ],
                outcome: CanaryOutcome::Failed,
                failed_stage: Some(CanaryStage::Confirm),
                failure_reason: Some("recipient hubspot failed permanently".into()),
            }],
        };
        let text = render(&run);
        assert!(
            text.contains("WEB_FORM  FAILED at CONFIRM  request req-1  4.25 s"),
            "{text}"
        );
        assert!(
            text.contains("SUBMIT     PASSED     0.04 s  accepted"),
            "{text}"
        );
        assert!(
            text.contains("CONFIRM    FAILED     4.10 s  recipient hubspot failed permanently"),
            "{text}"
        );
        assert!(text.contains("GATE       NOT_RUN         -"), "{text}");
    }

    #[test]
    fn delete_adds_the_delete_round_to_the_named_or_configured_channels_once() {
        let configured = CanaryChannel::OPT_OUT;
        assert_eq!(channels_to_run(vec![], &configured, false), configured);
        assert_eq!(
            channels_to_run(vec![], &configured, true),
            [
                CanaryChannel::WebForm,
                CanaryChannel::Gpc,
                CanaryChannel::Signals,
                CanaryChannel::Delete
            ]
        );
        assert_eq!(
            channels_to_run(vec![CanaryChannel::Gpc], &configured, true),
            [CanaryChannel::Gpc, CanaryChannel::Delete]
        );
        assert_eq!(
            channels_to_run(vec![CanaryChannel::Delete], &configured, true),
            [CanaryChannel::Delete]
        );
    }
}
