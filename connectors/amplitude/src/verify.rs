//! Read-back: the status of the deletion jobs a request was scheduled into, as Amplitude lists
//! them for the days after the request. `done` everywhere is `VERIFIED`; a job no longer listed
//! (its requests were revoked while it was staging) is `FAILED`; `staging` and `submitted` are
//! still `PENDING`.

use std::time::Duration;

use chrono::{Days, NaiveDate};
use hush_connector_kit::poll::{self, PollOutcome, PolledStatus};
use hush_contracts::connector::ConnectorError;
use hush_contracts::events::VerificationStatus;

use crate::client::AmplitudeClient;

/// Days after the request that the job listing covers: Amplitude schedules a job 10 to 13 days
/// after its first request and asks to list from the request day to 30 days later.
const LISTING_DAYS: u64 = 30;
/// Status recorded for a job Amplitude no longer lists.
pub const MISSING: &str = "missing";

/// The statuses of a request's jobs, by job key, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatuses(pub Vec<(String, String)>);

impl JobStatuses {
    /// The verification these statuses stand for.
    pub fn verification(&self) -> VerificationStatus {
        if self.0.iter().any(|(_, status)| status == MISSING) {
            VerificationStatus::Failed
        } else if self.0.iter().all(|(_, s)| s.eq_ignore_ascii_case("done")) {
            VerificationStatus::Verified
        } else {
            VerificationStatus::Pending
        }
    }

    /// `key=status` pairs, comma-separated, for evidence.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(key, status)| format!("{key}={status}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl PolledStatus for JobStatuses {
    fn is_final(&self) -> bool {
        self.verification() != VerificationStatus::Pending
    }

    fn name(&self) -> &str {
        self.0
            .iter()
            .map(|(_, status)| status.as_str())
            .find(|s| !s.eq_ignore_ascii_case("done"))
            .unwrap_or("done")
    }
}

/// Reads the jobs named by `keys` (`day` or `app:day`) from the listing that starts on
/// `requested_on_day` (`YYYY-MM-DD`).
pub async fn read_jobs(
    client: &AmplitudeClient,
    keys: &[String],
    requested_on_day: &str,
) -> Result<JobStatuses, ConnectorError> {
    let start = NaiveDate::parse_from_str(requested_on_day, "%Y-%m-%d").map_err(|_| {
        ConnectorError::Permanent(format!(
            "the evidence's requested_on_day `{requested_on_day}` is not a YYYY-MM-DD day"
        ))
    })?;
    let end = start + Days::new(LISTING_DAYS);
    let listed = client.jobs(&start.to_string(), &end.to_string()).await?;
    Ok(JobStatuses(
        keys.iter()
            .map(|key| {
                let status = listed
                    .iter()
                    .find(|job| &job.key() == key)
                    .map_or_else(|| MISSING.to_owned(), |job| job.status.to_lowercase());
                (key.clone(), status)
            })
            .collect(),
    ))
}

/// Reads the jobs every `interval` until all are final or `max_wait` has passed.
pub async fn wait_for_jobs(
    client: &AmplitudeClient,
    keys: &[String],
    requested_on_day: &str,
    interval: Duration,
    max_wait: Duration,
) -> PollOutcome<JobStatuses> {
    poll::wait_until_final(
        || read_jobs(client, keys, requested_on_day),
        interval,
        max_wait,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(pairs: &[(&str, &str)]) -> JobStatuses {
        JobStatuses(
            pairs
                .iter()
                .map(|(k, s)| (k.to_string(), s.to_string()))
                .collect(),
        )
    }

    #[test]
    fn statuses_map_to_verification() {
        assert_eq!(
            statuses(&[("a", "done"), ("b", "done")]).verification(),
            VerificationStatus::Verified
        );
        assert_eq!(
            statuses(&[("a", "done"), ("b", "submitted")]).verification(),
            VerificationStatus::Pending
        );
        assert_eq!(
            statuses(&[("a", "staging"), ("b", MISSING)]).verification(),
            VerificationStatus::Failed
        );
        assert_eq!(
            statuses(&[("a", "done"), ("b", "staging")]).name(),
            "staging"
        );
        assert_eq!(
            statuses(&[("1:2026-12-14", "done")]).describe(),
            "1:2026-12-14=done"
        );
    }
}
