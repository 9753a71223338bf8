//! The consumer-request metrics of 11 CCR 7102(a): per request kind, the requests received, complied
//! with in whole or in part, denied, and the median and mean days to respond.
//!
//! Counting rules:
//!
//! - A record belongs to the report when its `received_at` is in `[from, to]` (both inclusive);
//!   it is counted however late its confirmations arrive. A canary's record (`synthetic`: every
//!   identifier a configured synthetic identity) is no consumer's request and never counted.
//! - `denied`: the record carries a denial reason. A denied request counts nowhere else.
//! - `complied_whole`: every required connector has an outcome and none is `FAILED_PERMANENT`.
//! - `complied_part`: every required connector has an outcome, at least one complied and at
//!   least one is `FAILED_PERMANENT`.
//! - Requests still waiting for a confirmation, and requests every recipient of which failed
//!   permanently, are received but neither complied nor denied.
//! - `median_days` / `mean_days`: days (fractional, 24 h each) from `received_at` to the
//!   completion time (the last required outcome), over the requests complied with in whole or in
//!   part, rounded to one decimal; `None` (`null`, empty in CSV) when there is none.
//! - `resolved_out_of_band`: of the requests complied with (in whole or in part), those where a
//!   required recipient's outcome was recorded by an operator out of band rather than confirmed
//!   by the recipient through Hush; they are counted as complied, and this column says how many.

use chrono::{DateTime, Utc};
use hush_contracts::events::{EpochMillis, RequestKind};
use serde::Serialize;

use crate::status::Compliance;
use crate::store::RecordSummary;

const DAY_MS: f64 = 86_400_000.0;

/// Metrics of one request kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindMetrics {
    /// Request kind.
    pub kind: RequestKind,
    /// Requests received in the period.
    pub received: u64,
    /// Requests complied with in whole.
    pub complied_whole: u64,
    /// Requests complied with in part.
    pub complied_part: u64,
    /// Requests denied.
    pub denied: u64,
    /// Median days to respond, one decimal.
    pub median_days: Option<f64>,
    /// Mean days to respond, one decimal.
    pub mean_days: Option<f64>,
    /// Complied requests with a recipient resolved out of band.
    pub resolved_out_of_band: u64,
}

/// The metrics report over a period, one row per request kind (every kind, in schema order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// First receipt instant included.
    pub from: DateTime<Utc>,
    /// Last receipt instant included.
    pub to: DateTime<Utc>,
    /// One row per request kind.
    pub kinds: Vec<KindMetrics>,
}

/// Builds the report over the records received in `[from, to]` (see the module documentation),
/// from their summaries.
pub fn build_report<'a>(
    records: impl IntoIterator<Item = &'a RecordSummary>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Report {
    let window = from.timestamp_millis()..=to.timestamp_millis();
    let in_window: Vec<&RecordSummary> = records
        .into_iter()
        .filter(|r| window.contains(&r.received_at) && !r.synthetic)
        .collect();
    let kinds = RequestKind::ALL
        .into_iter()
        .map(|kind| {
            let of_kind: Vec<&RecordSummary> = in_window
                .iter()
                .copied()
                .filter(|r| r.kind == kind)
                .collect();
            metrics(kind, &of_kind)
        })
        .collect();
    Report { from, to, kinds }
}

fn metrics(kind: RequestKind, records: &[&RecordSummary]) -> KindMetrics {
    let mut row = KindMetrics {
        kind,
        received: records.len() as u64,
        complied_whole: 0,
        complied_part: 0,
        denied: 0,
        median_days: None,
        mean_days: None,
        resolved_out_of_band: 0,
    };
    let mut days = Vec::new();
    for record in records {
        if record.denied {
            row.denied += 1;
            continue;
        }
        match record.compliance {
            Some(Compliance::Whole) => row.complied_whole += 1,
            Some(Compliance::Part) => row.complied_part += 1,
            Some(Compliance::None) | None => continue,
        }
        if record.resolved_out_of_band {
            row.resolved_out_of_band += 1;
        }
        if let Some(done) = record.completion_time {
            days.push(days_between(record.received_at, done));
        }
    }
    if !days.is_empty() {
        days.sort_by(f64::total_cmp);
        let middle = days.len() / 2;
        let median = if days.len() % 2 == 0 {
            (days[middle - 1] + days[middle]) / 2.0
        } else {
            days[middle]
        };
        let mean = days.iter().sum::<f64>() / days.len() as f64;
        row.median_days = Some(one_decimal(median));
        row.mean_days = Some(one_decimal(mean));
    }
    row
}

fn days_between(start: EpochMillis, end: EpochMillis) -> f64 {
    (end - start) as f64 / DAY_MS
}

fn one_decimal(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

impl Report {
    /// The report as pretty-printed JSON (kinds as schema symbols, instants in RFC 3339, missing
    /// medians and means as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a report holds only strings, integers and finite floats")
    }

    /// The report as CSV with the header
    /// `kind,received,complied_whole,complied_part,denied,median_days,mean_days,resolved_out_of_band`;
    /// days have one
    /// decimal, a missing median or mean is an empty field.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header = [
            "kind",
            "received",
            "complied_whole",
            "complied_part",
            "denied",
            "median_days",
            "mean_days",
            "resolved_out_of_band",
        ];
        let days = |value: Option<f64>| value.map(|v| format!("{v:.1}")).unwrap_or_default();
        let rows = self.kinds.iter().map(|row| {
            [
                row.kind.as_str().to_string(),
                row.received.to_string(),
                row.complied_whole.to_string(),
                row.complied_part.to_string(),
                row.denied.to_string(),
                days(row.median_days),
                days(row.mean_days),
                row.resolved_out_of_band.to_string(),
            ]
        });
        writer
            .write_record(header)
            .expect("writing to memory cannot fail");
        for row in rows {
            writer
                .write_record(&row)
                .expect("writing to memory cannot fail");
        }
        let bytes = writer.into_inner().expect("flushing to memory cannot fail");
        String::from_utf8(bytes).expect("every field is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::apply_confirmation;
    use crate::status::tests::{confirmation, record, RECEIVED};
    use hush_contracts::events::AuditRecord;
    use hush_contracts::events::ConfirmationAction::{FailedPermanent, Flagged, Suppressed};
    use hush_contracts::events::VerificationStatus::Verified;

    /// The report over `records`, through their summaries as the store gives them.
    fn build_report(records: &[AuditRecord], from: DateTime<Utc>, to: DateTime<Utc>) -> Report {
        let summaries: Vec<RecordSummary> = records.iter().map(RecordSummary::of).collect();
        super::build_report(&summaries, from, to)
    }

    const HOUR: EpochMillis = 3_600_000;
    const DAY: EpochMillis = 24 * HOUR;

    /// A record of `kind` received `offset` ms after RECEIVED whose connectors answered with
    /// the given (action, ms after receipt) pairs; `required` lists every connector awaited.
    fn answered(
        kind: RequestKind,
        offset: EpochMillis,
        required: &[&str],
        answers: &[(
            &str,
            hush_contracts::events::ConfirmationAction,
            EpochMillis,
        )],
    ) -> AuditRecord {
        let mut r = record(required);
        r.kind = kind;
        r.received_at = RECEIVED + offset;
        for (connector, action, after) in answers {
            let c = confirmation(connector, *action, Verified, r.received_at + after);
            apply_confirmation(&mut r, &c);
        }
        r
    }

    fn sample() -> Vec<AuditRecord> {
        use RequestKind::*;
        let mut denied = record(&["crm"]);
        denied.denial_reason = Some("fraudulent request".into());
        let mut denied_delete = answered(Delete, 0, &["crm"], &[("crm", Flagged, DAY)]);
        denied_delete.received_at = RECEIVED - 1; // before the window: not counted at all
        denied_delete.denial_reason = Some("identity not verified".into());
        vec![
            // Opt-out: whole in 2.0 and 3.5 days, part in 10.0 days, one denied, one waiting,
            // one failed everywhere, one received before the window.
            answered(OptOutSaleShare, 0, &["crm"], &[("crm", Flagged, 2 * DAY)]),
            answered(
                OptOutSaleShare,
                HOUR,
                &["crm", "meta"],
                &[
                    ("crm", Flagged, DAY),
                    ("meta", Suppressed, 3 * DAY + 12 * HOUR),
                ],
            ),
            answered(
                OptOutSaleShare,
                2 * HOUR,
                &["crm", "meta"],
                &[
                    ("crm", Flagged, 4 * DAY),
                    ("meta", FailedPermanent, 10 * DAY),
                ],
            ),
            denied,
            answered(
                OptOutSaleShare,
                0,
                &["crm", "meta"],
                &[("crm", Flagged, DAY)],
            ),
            answered(
                OptOutSaleShare,
                0,
                &["meta"],
                &[("meta", FailedPermanent, DAY)],
            ),
            answered(OptOutSaleShare, -1, &["crm"], &[("crm", Flagged, DAY)]),
            // Delete: whole in 12.25, 20.5, 30 and 45 days.
            answered(
                Delete,
                0,
                &["crm"],
                &[("crm", Flagged, 12 * DAY + 6 * HOUR)],
            ),
            answered(
                Delete,
                0,
                &["crm"],
                &[("crm", Flagged, 20 * DAY + 12 * HOUR)],
            ),
            answered(Delete, 0, &["crm"], &[("crm", Flagged, 30 * DAY)]),
            answered(Delete, 0, &["crm"], &[("crm", Flagged, 45 * DAY)]),
            denied_delete,
            // Opt-in: received, not yet confirmed.
            answered(OptInSaleShare, 0, &["crm"], &[]),
        ]
    }

    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        let from = DateTime::from_timestamp_millis(RECEIVED).unwrap();
        let to = DateTime::from_timestamp_millis(RECEIVED + 2 * HOUR).unwrap();
        (from, to)
    }

    #[test]
    fn a_canarys_synthetic_request_is_never_counted() {
        let (from, to) = window();
        let mut records = sample();
        let real = build_report(&records, from, to);
        let mut canary = answered(
            RequestKind::OptOutSaleShare,
            0,
            &["crm"],
            &[("crm", Flagged, HOUR)],
        );
        canary.synthetic = true;
        records.push(canary);
        assert_eq!(build_report(&records, from, to), real);
    }

    #[test]
    fn counts_and_days_match_the_hand_computed_values() {
        let (from, to) = window();
        let report = build_report(&sample(), from, to);
        let kinds: Vec<RequestKind> = report.kinds.iter().map(|k| k.kind).collect();
        assert_eq!(kinds, RequestKind::ALL);
        // Opt-out: days 2.0, 3.5, 10.0 → median 3.5, mean 15.5 / 3 = 5.166… → 5.2.
        assert_eq!(
            report.kinds[0],
            KindMetrics {
                kind: RequestKind::OptOutSaleShare,
                received: 6,
                complied_whole: 2,
                complied_part: 1,
                denied: 1,
                median_days: Some(3.5),
                mean_days: Some(5.2),
                resolved_out_of_band: 0,
            }
        );
        // Delete: days 12.25, 20.5, 30, 45 → median (20.5 + 30) / 2 = 25.25 → 25.3,
        // mean 107.75 / 4 = 26.9375 → 26.9.
        assert_eq!(
            report.kinds[2],
            KindMetrics {
                kind: RequestKind::Delete,
                received: 4,
                complied_whole: 4,
                complied_part: 0,
                denied: 0,
                median_days: Some(25.3),
                mean_days: Some(26.9),
                resolved_out_of_band: 0,
            }
        );
        assert_eq!(report.kinds[1].received, 0);
        assert_eq!(report.kinds[1].median_days, None);
        assert_eq!(report.kinds[3].received, 1);
        assert_eq!(report.kinds[3].complied_whole, 0);
        assert_eq!(report.kinds[3].mean_days, None);
    }

    #[test]
    fn the_csv_has_the_documented_header_and_one_row_per_kind() {
        let (from, to) = window();
        let csv = build_report(&sample(), from, to).to_csv();
        assert_eq!(
            csv,
            "kind,received,complied_whole,complied_part,denied,median_days,mean_days,resolved_out_of_band\n\
             OPT_OUT_SALE_SHARE,6,2,1,1,3.5,5.2,0\n\
             LIMIT_SENSITIVE,0,0,0,0,,,0\n\
             DELETE,4,4,0,0,25.3,26.9,0\n\
             OPT_IN_SALE_SHARE,1,0,0,0,,,0\n"
        );
    }

    #[test]
    fn whole_days_keep_their_decimal_in_csv() {
        let (from, to) = window();
        let records = [answered(
            RequestKind::LimitSensitive,
            0,
            &["crm"],
            &[("crm", Flagged, 4 * DAY)],
        )];
        let csv = build_report(&records, from, to).to_csv();
        assert!(
            csv.contains("\nLIMIT_SENSITIVE,1,1,0,0,4.0,4.0,0\n"),
            "{csv}"
        );
    }

    #[test]
    fn the_json_uses_schema_symbols_and_null_for_no_median() {
        let (from, to) = window();
        let json: serde_json::Value =
            serde_json::from_str(&build_report(&sample(), from, to).to_json()).unwrap();
        assert_eq!(json["from"], "2026-11-18T11:06:40Z");
        assert_eq!(json["kinds"][0]["kind"], "OPT_OUT_SALE_SHARE");
        assert_eq!(json["kinds"][0]["received"], 6);
        assert_eq!(json["kinds"][0]["mean_days"], 5.2);
        assert_eq!(json["kinds"][1]["median_days"], serde_json::Value::Null);
    }

    #[test]
    fn an_empty_period_reports_zeroes() {
        let (from, to) = window();
        let report = build_report(&[], from, to);
        assert_eq!(report.kinds.len(), 4);
        assert!(report
            .kinds
            .iter()
            .all(|k| k.received == 0 && k.median_days.is_none()));
    }
}
