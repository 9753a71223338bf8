//! The auditor's dashboard (`GET /`): a self-contained HTML page for a compliance lead, with no
//! script and no external asset. Top to bottom:
//!
//! 0. the canaries: each channel's latest canary run, whether it passed, the stage that failed
//!    and why, and how long ago it ran (a run older than an hour is flagged stale);
//! 1. leaks: every request whose gate saw data after its suppression took effect, `LEAKING`
//!    ones first, with where each leaked event sits (topic, partition, offset);
//! 2. counts by status, `LEAKING`, `ACTION_REQUIRED`, `OVERDUE`,
//!    `AT_RISK`, `PROVEN` and `VERIFIED` first;
//! 3. failed recipients: required recipients that gave up (`FAILED_PERMANENT`), with their error;
//! 4. charts, drawn here as SVG (see the `charts` module): the deadline headroom of the requests
//!    still waiting on recipients, the leak watch's records examined and leaks found per watched
//!    topic, and each recipient's outcomes and latency over the requests received in the last
//!    30 days;
//! 5. the most recent requests.
//!
//! Only request ids, connector ids, topic names and schema symbols are shown, never a subject's
//! identifiers; every string is escaped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono_tz::Tz;
use hush_contracts::canary::{CanaryOutcome, CanaryResult};
use hush_contracts::events::{
    now_millis, AuditRecord, AuditStatus, ConfirmationAction, EpochMillis, VerificationStatus,
    WatchProgress,
};

use crate::charts::{
    bar_chart, column_chart, count, duration, escape, Bar, BarChart, Column, ColumnChart, Series,
};
use crate::fold::instant;
use crate::metrics::{tally, Tally};
use crate::service::Auditor;
use crate::status::status_symbol;
use crate::store::summary::{failure_error, RecipientState};
use crate::store::RecordSummary;
use hush_runtime::api_error::ApiError;

/// Requests listed in the most recent table.
const RECENT: usize = 50;
/// Leaking requests, and failed recipients, listed at most.
const LISTED: usize = 50;
/// Leaks listed per request (the API answers them all).
const EVIDENCE_LISTED: usize = 5;
/// Days over which recipient outcomes and latency are charted.
const RECENT_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// Label of the computed count of requests with a failed required recipient.
const ACTION_REQUIRED: &str = "ACTION_REQUIRED";

/// Upper bounds (days left, inclusive) and labels of the headroom columns after "overdue"; a last
/// column takes the rest.
const HEADROOM_BINS: [(i64, &str); 6] = [
    (1, "≤1 d"),
    (3, "1–3 d"),
    (7, "3–7 d"),
    (14, "7–14 d"),
    (30, "14–30 d"),
    (45, "30–45 d"),
];
/// Columns of the headroom chart: "overdue", the bins, and "more than the last bin".
const HEADROOM_COLUMNS: usize = HEADROOM_BINS.len() + 2;

/// Statuses of the requests still waiting on recipients, in the headroom chart's stacking order.
const WAITING: [AuditStatus; 3] = [AuditStatus::Overdue, AuditStatus::AtRisk, AuditStatus::Open];
const WAITING_SERIES: [Series; 3] = [
    Series {
        name: "OVERDUE",
        color: "#c62828",
    },
    Series {
        name: "AT_RISK",
        color: "#e69b00",
    },
    Series {
        name: "OPEN",
        color: "#4f7fd1",
    },
];
const OUTCOME_SERIES: [Series; 4] = [
    Series {
        name: "verified",
        color: "#1a7f37",
    },
    Series {
        name: "complied, not read back",
        color: "#8fd19e",
    },
    Series {
        name: "FAILED_PERMANENT",
        color: "#c62828",
    },
    Series {
        name: "waiting",
        color: "#b0b7c3",
    },
];
const LATENCY_SERIES: [Series; 1] = [Series {
    name: "median",
    color: "#4f7fd1",
}];
const EXAMINED_SERIES: [Series; 1] = [Series {
    name: "records examined",
    color: "#4f7fd1",
}];

fn local_time(ms: EpochMillis, tz: Tz) -> String {
    instant(ms)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn verification_symbol(verification: VerificationStatus) -> &'static str {
    match verification {
        VerificationStatus::Verified => "VERIFIED",
        VerificationStatus::Unverifiable => "UNVERIFIABLE",
        VerificationStatus::Pending => "PENDING",
        VerificationStatus::Failed => "FAILED",
    }
}

/// The keys of the `n` requests received last, newest first.
pub(crate) fn most_recent(mut records: Vec<(&str, &RecordSummary)>, n: usize) -> Vec<String> {
    let newest_first = |a: &(&str, &RecordSummary), b: &(&str, &RecordSummary)| {
        b.1.received_at
            .cmp(&a.1.received_at)
            .then_with(|| a.0.cmp(b.0))
    };
    if records.len() > n && n > 0 {
        records.select_nth_unstable_by(n - 1, newest_first);
    }
    records.truncate(n);
    records.sort_unstable_by(newest_first);
    records.into_iter().map(|(key, _)| key.to_owned()).collect()
}

/// The column of the headroom chart for `headroom_ms` left before a deadline.
fn headroom_column(headroom_ms: i64) -> usize {
    if headroom_ms < 0 {
        return 0;
    }
    HEADROOM_BINS
        .iter()
        .position(|(days, _)| headroom_ms <= days * DAY_MS)
        .map_or(HEADROOM_COLUMNS - 1, |i| i + 1)
}

/// One recipient's outcomes over the charted period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RecipientStats {
    /// Complied, and read back as expected.
    verified: u64,
    /// Complied, read-back unavailable, pending or failed.
    complied: u64,
    /// Gave up (`FAILED_PERMANENT`).
    failed: u64,
    /// No outcome yet.
    waiting: u64,
    /// Receipt to outcome, of the complied outcomes, in milliseconds.
    latencies_ms: Vec<i64>,
}

/// A required recipient that failed permanently.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    request_id: String,
    status: AuditStatus,
    connector_id: String,
    attempts: i32,
    completed_at: EpochMillis,
    error: Option<String>,
}

/// Everything the page shows about the records: counted from the summaries in one read of the
/// store, then the listed requests' full records (see [`Listed`]).
struct Overview {
    total: usize,
    tally: Tally,
    action_required: u64,
    /// Requests waiting on recipients per headroom column, per [`WAITING`] status.
    headroom: [[u64; WAITING.len()]; HEADROOM_COLUMNS],
    /// Per recipient, over the requests received in the last [`RECENT_DAYS`] days (denied ones
    /// aside: their recipients need not answer).
    recipients: BTreeMap<String, RecipientStats>,
    /// Requests with leaks and their status now, `LEAKING` ones first, then by latest
    /// detection.
    leaking: Vec<(AuditStatus, AuditRecord)>,
    leaking_total: usize,
    /// Failed required recipients of requests that are not denied, latest first.
    failures: Vec<Failure>,
    failures_total: usize,
    recent: Vec<AuditRecord>,
}

/// The requests the page lists in full, by key: the first leaking ones with their status, and
/// the most recent ones.
struct Listed {
    leaking: Vec<(AuditStatus, String)>,
    recent: Vec<String>,
}

impl Listed {
    /// Every key listed.
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.leaking
            .iter()
            .map(|(_, key)| key.as_str())
            .chain(self.recent.iter().map(String::as_str))
    }
}

/// The overview of consumers' requests (a canary's synthetic ones are left out), counted from
/// their summaries; its lists are filled by [`Overview::list`].
fn overview(
    records: Vec<(&str, &RecordSummary)>,
    now: EpochMillis,
    at_risk_days: u32,
) -> (Overview, Listed) {
    let records: Vec<(&str, &RecordSummary)> =
        records.into_iter().filter(|(_, r)| !r.synthetic).collect();
    let tally = tally(records.iter().map(|(_, r)| *r), now, at_risk_days);
    let mut headroom = [[0; WAITING.len()]; HEADROOM_COLUMNS];
    let mut recipients: BTreeMap<String, RecipientStats> = BTreeMap::new();
    let mut leaking = Vec::new();
    let mut failures = Vec::new();
    let mut action_required = 0;
    let since = now.saturating_sub(RECENT_DAYS * DAY_MS);
    for &(key, record) in &records {
        let status = record.status_at(now, at_risk_days);
        if let Some(series) = WAITING.iter().position(|s| *s == status) {
            headroom[headroom_column(record.deadline.saturating_sub(now))][series] += 1;
        }
        if record.leaks > 0 {
            leaking.push((status, key, record));
        }
        if status == AuditStatus::ActionRequired {
            action_required += 1;
        }
        for failed in record.failures.iter().flatten() {
            failures.push(Failure {
                request_id: key.to_owned(),
                status,
                connector_id: failed.connector_id.to_string(),
                attempts: failed.attempts,
                completed_at: failed.completed_at,
                error: failed.error.as_deref().map(str::to_string),
            });
        }
        if record.received_at < since || record.denied {
            continue;
        }
        for recipient in record.recipients.iter() {
            let stats = recipients
                .entry(recipient.connector_id.to_string())
                .or_default();
            match recipient.state {
                RecipientState::Waiting => stats.waiting += 1,
                RecipientState::Failed => stats.failed += 1,
                complied => {
                    if complied == RecipientState::Verified {
                        stats.verified += 1;
                    } else {
                        stats.complied += 1;
                    }
                    stats.latencies_ms.push(
                        recipient
                            .completed_at
                            .saturating_sub(record.received_at)
                            .max(0),
                    );
                }
            }
        }
    }
    leaking.sort_by(|(sa, ka, a), (sb, kb, b)| {
        (*sb == AuditStatus::Leaking)
            .cmp(&(*sa == AuditStatus::Leaking))
            .then_with(|| b.last_leak_at.cmp(&a.last_leak_at))
            .then_with(|| ka.cmp(kb))
    });
    let leaking_total = leaking.len();
    failures.sort_by(|a, b| {
        b.completed_at
            .cmp(&a.completed_at)
            .then_with(|| a.request_id.cmp(&b.request_id))
            .then_with(|| a.connector_id.cmp(&b.connector_id))
    });
    let failures_total = failures.len();
    failures.truncate(LISTED);
    let listed = Listed {
        leaking: leaking
            .into_iter()
            .take(LISTED)
            .map(|(status, key, _)| (status, key.to_owned()))
            .collect(),
        recent: most_recent(records.clone(), RECENT),
    };
    (
        Overview {
            total: records.len(),
            tally,
            action_required,
            headroom,
            recipients,
            leaking: Vec::new(),
            leaking_total,
            failures,
            failures_total,
            recent: Vec::new(),
        },
        listed,
    )
}

impl Overview {
    /// Fills the lists with the full records of `listed`, as `records` gives them by key (a key
    /// it has no record for is left out: the request was removed meanwhile).
    fn list(mut self, listed: Listed, records: &HashMap<String, AuditRecord>) -> Self {
        self.leaking = listed
            .leaking
            .into_iter()
            .filter_map(|(status, key)| records.get(&key).map(|r| (status, r.clone())))
            .collect();
        self.recent = listed
            .recent
            .iter()
            .filter_map(|key| records.get(key).cloned())
            .collect();
        self
    }
}

/// The `p`-th percentile (nearest rank) of `sorted`, which is not empty.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn status_badge(status: AuditStatus) -> String {
    let symbol = status_symbol(status);
    format!(
        "<span class=\"badge s-{}\">{symbol}</span>",
        symbol.to_ascii_lowercase()
    )
}

fn request_link(request_id: &str) -> String {
    let id = escape(request_id);
    format!("<a href=\"/v1/requests/{id}\"><code>{id}</code></a>")
}

fn connectors_cell(record: &AuditRecord) -> String {
    let mut lines = Vec::new();
    for id in &record.required_connectors {
        match record.connectors.iter().find(|o| &o.connector_id == id) {
            Some(o) if o.action == ConfirmationAction::FailedPermanent => {
                let error = failure_error(o)
                    .map(|e| format!("<br><small class=\"error\">{}</small>", escape(e)))
                    .unwrap_or_default();
                lines.push(format!(
                    "<span class=\"failed\">{}: {}</span>{error}",
                    escape(id),
                    o.action.as_str(),
                ));
            }
            Some(o) => lines.push(format!(
                "{}: {} · {}",
                escape(id),
                o.action.as_str(),
                verification_symbol(o.verification)
            )),
            None => lines.push(format!("{}: <em>waiting</em>", escape(id))),
        }
    }
    for o in record
        .connectors
        .iter()
        .filter(|o| !record.required_connectors.contains(&o.connector_id))
    {
        lines.push(format!(
            "<span class=\"extra\">{}: {} (not required)</span>",
            escape(&o.connector_id),
            o.action.as_str()
        ));
    }
    if lines.is_empty() {
        "<em>none required</em>".to_string()
    } else {
        lines.join("<br>")
    }
}

const STYLE: &str = "*{box-sizing:border-box}\
body{font:14px/1.45 system-ui,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1f2328;\
background:#f3f4f6}main{max-width:1240px;margin:0 auto;padding:18px 24px 40px}\
h1{font-size:22px;margin:0 0 2px}h2{font-size:16px;margin:0 0 6px}\
.note{color:#57606a;margin:0 0 14px}.sub{color:#57606a;margin:0 0 8px;font-size:13px}\
section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:14px 16px;\
margin:0 0 16px}section.alarm{border:2px solid #b00020;background:#fff6f6}\
section.alarm h2{color:#b00020}section.clear{border-left:6px solid #1a7f37}\
section.clear p{margin:0}.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px;\
margin:0 0 16px}.grid section{margin:0}svg.chart{display:block;max-width:600px}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e5e8eb;\
padding:5px 8px;text-align:left;vertical-align:top}th{font-size:12px;color:#57606a;\
font-weight:600}tbody tr:hover{background:#f6f8fa}code{font:12px ui-monospace,'DejaVu Sans Mono',\
monospace;white-space:nowrap}a{color:#0550ae;text-decoration:none}#recent td,#leaks td,#failed td{font-size:13px}td.t,#recent td:last-child{white-space:nowrap}#recent .error{white-space:normal}\
.counts table{table-layout:fixed}.counts th,.counts td{border:0;text-align:center;padding:2px 4px}\
.counts th{font-size:11px;letter-spacing:.03em}.counts td{font-size:30px;font-weight:700}\
.counts .minor{color:#8c959f}.counts td.minor{font-size:18px;vertical-align:middle}\
.counts .first-minor{border-left:1px solid #d8dee4}.counts td.bad{color:#b00020}\
.counts td.good{color:#1a7f37}.counts td.zero{color:#8c959f}\
.badge{display:inline-block;padding:0 7px;border-radius:10px;font-size:11px;font-weight:600;\
background:#eaeef2;color:#57606a}.s-leaking,.s-overdue{background:#b00020;color:#fff}\
.s-at_risk{background:#ffe8cc;color:#8a4600}.s-open{background:#ddf4ff;color:#0550ae}\
.s-proven{background:#1a7f37;color:#fff}.s-verified{background:#dafbe1;color:#116329}\
.s-confirmed,.s-unverified{background:#fff8c5;color:#6b5d00}\
.failed{color:#b00020;font-weight:600}.error{color:#b00020}.extra{color:#777}\
.warn{background:#fff3cd;padding:6px 10px;border-radius:6px}small{color:#57606a}";

/// Everything `render` shows.
struct Page<'a> {
    overview: &'a Overview,
    /// The latest canary result of each channel.
    canaries: &'a [CanaryResult],
    /// The leak watch's progress per watched topic.
    streams: &'a [WatchProgress],
    /// Topics that must be watched for a request to become `PROVEN`.
    watched: &'a [String],
    tz: Tz,
    rebuilt: bool,
    now: EpochMillis,
    at_risk_days: u32,
}

/// A canary run older than this is stale: the schedule stopped or runs hang.
const CANARY_STALE_MS: i64 = 3_600_000;

fn render_canaries(html: &mut String, page: &Page<'_>) {
    if page.canaries.is_empty() {
        html.push_str(
            "<section id=\"canaries\"><h2>Canaries</h2><p class=\"warn\">No canary result on \
             record: schedule <code>hush canary run</code> (deploy/k8s/canary.yaml) so a silently \
             failing channel is caught in minutes.</p></section>",
        );
        return;
    }
    let stale = |r: &CanaryResult| page.now.saturating_sub(r.finished_at) > CANARY_STALE_MS;
    let alarm = page
        .canaries
        .iter()
        .any(|r| r.outcome == CanaryOutcome::Failed || stale(r));
    let _ = write!(
        html,
        "<section id=\"canaries\" class=\"{}\"><h2>Canaries</h2><table><thead><tr>\
         <th>Channel</th><th>Outcome</th><th>Failed stage</th><th>Why</th><th>Ran</th>\
         <th>Took</th></tr></thead><tbody>",
        if alarm { "alarm" } else { "clear" }
    );
    for result in page.canaries {
        let outcome = match result.outcome {
            CanaryOutcome::Passed => "<span class=\"badge s-proven\">PASSED</span>",
            CanaryOutcome::Failed => "<span class=\"badge s-leaking\">FAILED</span>",
        };
        let age = duration(page.now.saturating_sub(result.finished_at));
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{outcome}</td><td>{}</td><td>{}</td><td>{} ({age} ago{})</td>\
             <td>{}</td></tr>",
            result.channel.as_str(),
            result.failed_stage.map_or("", |s| s.as_str()),
            escape(result.failure_reason.as_deref().unwrap_or_default()),
            local_time(result.finished_at, page.tz),
            if stale(result) { ", stale" } else { "" },
            duration(result.finished_at.saturating_sub(result.started_at)),
        );
    }
    html.push_str(
        "</tbody></table><p class=\"sub\">A canary opts out a synthetic subject and follows it \
         through intake, every recipient, the gate and the leak watch; its requests are not \
         counted below nor in the 7102 report.</p></section>",
    );
}

fn render_leaks(html: &mut String, page: &Page<'_>) {
    let o = page.overview;
    if o.leaking.is_empty() {
        html.push_str(
            "<section id=\"leaks\" class=\"clear\"><h2>Leaks</h2><p>None on record: the leak \
             watch has seen no outbound event about a subject after its suppression took \
             effect.</p></section>",
        );
        return;
    }
    let _ = write!(
        html,
        "<section id=\"leaks\" class=\"alarm\"><h2>Leaks: {} request{} saw data flow after the \
         suppression took effect</h2><p class=\"sub\">Each leaked event can be re-read at its \
         topic, partition and offset.{}</p><table><thead><tr><th>Request</th><th>Status</th>\
         <th>Stream</th><th>Partition · offset</th><th>Identifier</th><th>Event sent</th>\
         <th>After suppression</th><th>Gate</th><th>Detected</th></tr></thead><tbody>",
        o.leaking_total,
        if o.leaking_total == 1 { "" } else { "s" },
        if o.leaking_total > o.leaking.len() {
            format!(" The {} with the latest leaks are listed.", o.leaking.len())
        } else {
            String::new()
        },
    );
    for (status, record) in &o.leaking {
        let listed = record.leak_evidence.len().min(EVIDENCE_LISTED);
        let unlisted = usize::try_from(record.leaks)
            .unwrap_or(0)
            .saturating_sub(listed);
        let rows = listed.max(1) + usize::from(unlisted > 0 && listed > 0);
        let _ = write!(
            html,
            "<tr class=\"leak\"><td rowspan=\"{rows}\">{}<br><small>{} leak{}</small></td>\
             <td rowspan=\"{rows}\">{}</td>",
            request_link(&record.request_id),
            record.leaks,
            if record.leaks == 1 { "" } else { "s" },
            status_badge(*status),
        );
        if listed == 0 {
            html.push_str("<td colspan=\"7\"><em>no evidence kept</em></td></tr>");
            continue;
        }
        let mut evidence: Vec<_> = record.leak_evidence.iter().collect();
        evidence.sort_by_key(|leak| std::cmp::Reverse(leak.detected_at));
        for (i, leak) in evidence.into_iter().take(listed).enumerate() {
            if i > 0 {
                html.push_str("<tr class=\"leak\">");
            }
            let _ = write!(
                html,
                "<td><code>{}</code></td><td class=\"t\">{} · {}</td><td>{}</td>\
                 <td class=\"t\">{}</td><td class=\"failed t\">+{}</td><td>{}</td>\
                 <td class=\"t\">{}</td></tr>",
                escape(&leak.source_topic),
                leak.source_partition,
                leak.source_offset,
                escape(&leak.identifier_type),
                local_time(leak.event_time, page.tz),
                duration(leak.ms_after_suppression),
                escape(&leak.action_taken),
                local_time(leak.detected_at, page.tz),
            );
        }
        if unlisted > 0 {
            let _ = write!(
                html,
                "<tr class=\"leak\"><td colspan=\"7\"><small>and {unlisted} more</small></td></tr>"
            );
        }
    }
    html.push_str("</tbody></table></section>");
}

fn render_counts(html: &mut String, o: &Overview) {
    // (label, count, class when not zero, whether it is a headline)
    let cells: [(&str, u64, &str, bool); 10] = [
        ("LEAKING", o.tally.count(AuditStatus::Leaking), "bad", true),
        (ACTION_REQUIRED, o.action_required, "bad", true),
        ("OVERDUE", o.tally.count(AuditStatus::Overdue), "bad", true),
        ("AT_RISK", o.tally.count(AuditStatus::AtRisk), "bad", true),
        ("PROVEN", o.tally.count(AuditStatus::Proven), "good", true),
        (
            "VERIFIED",
            o.tally.count(AuditStatus::Verified),
            "good",
            true,
        ),
        ("OPEN", o.tally.count(AuditStatus::Open), "", false),
        (
            "CONFIRMED",
            o.tally.count(AuditStatus::Confirmed),
            "",
            false,
        ),
        (
            "UNVERIFIED",
            o.tally.count(AuditStatus::Unverified),
            "",
            false,
        ),
        ("DENIED", o.tally.count(AuditStatus::Denied), "", false),
    ];
    let class = |i: usize, headline: bool| match (headline, i) {
        (true, _) => "",
        (false, 6) => " class=\"minor first-minor\"",
        (false, _) => " class=\"minor\"",
    };
    html.push_str("<section id=\"counts\" class=\"counts\"><table><tr>");
    for (i, (label, _, _, headline)) in cells.iter().enumerate() {
        let _ = write!(html, "<th{}>{label}</th>", class(i, *headline));
    }
    html.push_str("</tr><tr>");
    for (i, (_, n, tone, headline)) in cells.iter().enumerate() {
        let attr = match (headline, *n) {
            (false, _) => class(i, false).to_string(),
            (true, 0) => " class=\"zero\"".to_string(),
            (true, _) => format!(" class=\"{tone}\""),
        };
        let _ = write!(html, "<td{attr}>{n}</td>");
    }
    html.push_str(
        "</tr></table><p class=\"sub\">Statuses are computed now. ACTION_REQUIRED: a required \
         recipient failed permanently; retry it or record an out-of-band resolution.</p></section>",
    );
}

fn render_failures(html: &mut String, page: &Page<'_>) {
    let o = page.overview;
    if o.failures.is_empty() {
        return;
    }
    let _ = write!(
        html,
        "<section id=\"failed\" class=\"alarm\"><h2>Failed recipients: {} gave up \
         (FAILED_PERMANENT)</h2><p class=\"sub\">The request stays on the deadline clock until a \
         later confirmation from the recipient replaces the failure.{}</p><table><thead><tr>\
         <th>Request</th><th>Status</th><th>Recipient</th><th>Attempts</th><th>Gave up</th>\
         <th>Error</th></tr></thead><tbody>",
        o.failures_total,
        if o.failures_total > o.failures.len() {
            format!(" The latest {} are listed.", o.failures.len())
        } else {
            String::new()
        },
    );
    for f in &o.failures {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"failed\"><code>{}</code></td><td>{}</td>\
             <td class=\"t\">{}</td><td class=\"error\">{}</td></tr>",
            request_link(&f.request_id),
            status_badge(f.status),
            escape(&f.connector_id),
            f.attempts,
            local_time(f.completed_at, page.tz),
            f.error
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "<em>no error given</em>".to_string()),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn headroom_chart(o: &Overview) -> String {
    let mut labels = vec!["overdue".to_string()];
    labels.extend(HEADROOM_BINS.iter().map(|(_, label)| label.to_string()));
    labels.push(format!(">{} d", HEADROOM_BINS[HEADROOM_BINS.len() - 1].0));
    column_chart(&ColumnChart {
        id: "chart-headroom",
        title: "Requests waiting on recipients, by time left before the deadline",
        series: &WAITING_SERIES,
        columns: labels
            .into_iter()
            .zip(o.headroom)
            .map(|(label, counts)| Column {
                label,
                values: counts.iter().map(|n| *n as f64).collect(),
            })
            .collect(),
    })
}

fn outcomes_chart(o: &Overview) -> String {
    bar_chart(&BarChart {
        id: "chart-outcomes",
        title: "Outcomes per recipient, requests received in the last 30 days",
        series: &OUTCOME_SERIES,
        bars: o
            .recipients
            .iter()
            .map(|(id, s)| {
                let total = s.verified + s.complied + s.failed + s.waiting;
                let requests = format!("{total} request{}", if total == 1 { "" } else { "s" });
                Bar {
                    label: id.clone(),
                    values: [s.verified, s.complied, s.failed, s.waiting]
                        .map(|n| n as f64)
                        .to_vec(),
                    marker: None,
                    note: if s.failed > 0 {
                        format!("{requests} · {} failed", s.failed)
                    } else {
                        requests
                    },
                    alert: s.failed > 0,
                }
            })
            .collect(),
        empty: "No request received in the last 30 days needs a recipient.",
    })
}

fn latency_chart(o: &Overview) -> String {
    bar_chart(&BarChart {
        id: "chart-latency",
        title: "Time from receipt to each recipient's outcome, last 30 days",
        series: &LATENCY_SERIES,
        bars: o
            .recipients
            .iter()
            .map(|(id, s)| {
                let mut sorted = s.latencies_ms.clone();
                sorted.sort_unstable();
                if sorted.is_empty() {
                    return Bar {
                        label: id.clone(),
                        values: vec![0.0],
                        note: "no outcome yet".to_string(),
                        ..Bar::default()
                    };
                }
                let (median, p95) = (percentile(&sorted, 0.5), percentile(&sorted, 0.95));
                Bar {
                    label: id.clone(),
                    values: vec![median as f64],
                    marker: Some(p95 as f64),
                    note: format!("{} · p95 {}", duration(median), duration(p95)),
                    alert: false,
                }
            })
            .collect(),
        empty: "No request received in the last 30 days needs a recipient.",
    })
}

fn streams_chart(streams: &[WatchProgress], watched: &[String]) -> String {
    let mut bars: Vec<Bar> = streams
        .iter()
        .map(|s| Bar {
            label: s.topic.clone(),
            values: vec![s.records_examined as f64],
            marker: None,
            note: format!(
                "{} examined · {} leak{}",
                count(s.records_examined),
                count(s.leaks_found),
                if s.leaks_found == 1 { "" } else { "s" }
            ),
            alert: s.leaks_found > 0,
        })
        .collect();
    bars.extend(
        watched
            .iter()
            .filter(|topic| !streams.iter().any(|s| &s.topic == *topic))
            .map(|topic| Bar {
                label: topic.clone(),
                values: vec![0.0],
                marker: None,
                note: "no progress reported".to_string(),
                alert: true,
            }),
    );
    bar_chart(&BarChart {
        id: "chart-streams",
        title: "Leak watch: records examined and leaks found per watched topic",
        series: &EXAMINED_SERIES,
        bars,
        empty: "The leak watch has reported no progress yet.",
    })
}

fn render_charts(html: &mut String, page: &Page<'_>) {
    let o = page.overview;
    let waiting: u64 = o.headroom.iter().flatten().sum();
    let tightest = match o.tally.min_headroom_ms {
        Some(ms) if ms < 0 => format!("; the most overdue by {}", duration(-ms)),
        Some(ms) => format!("; the tightest has {} left", duration(ms)),
        None => String::new(),
    };
    let covered = page
        .streams
        .iter()
        .map(|s| s.covered_until)
        .min()
        .map(|t| {
            format!(
                " Every watched record written before {} was examined.",
                local_time(t, page.tz)
            )
        })
        .unwrap_or_default();
    let _ = write!(
        html,
        "<div class=\"grid\"><section id=\"headroom\"><h2>Deadline headroom</h2>\
         <p class=\"sub\">{waiting} request{} waiting on recipients{tightest}.</p>{}</section>\
         <section id=\"streams\"><h2>Gate: watched streams</h2><p class=\"sub\">Records the \
         leak watch examined and leaks it found, per topic.{covered}</p>{}</section>\
         <section id=\"outcomes\"><h2>Recipient outcomes, last 30 days</h2><p class=\"sub\">\
         Required recipients of the requests received in the last 30 days.</p>{}</section>\
         <section id=\"latency\"><h2>Recipient latency, last 30 days</h2><p class=\"sub\">\
         Receipt to outcome: median bar, 95th percentile tick.</p>{}</section></div>",
        if waiting == 1 { "" } else { "s" },
        headroom_chart(o),
        streams_chart(page.streams, page.watched),
        outcomes_chart(o),
        latency_chart(o),
    );
}

fn render_recent(html: &mut String, page: &Page<'_>) {
    let recent = &page.overview.recent;
    let _ = write!(
        html,
        "<section id=\"recent\"><h2>Most recent requests ({})</h2><table><thead><tr>\
         <th>Request</th><th>Kind · channel · jurisdiction</th><th>Received</th>\
         <th>Deadline</th><th>Status</th><th>Recipients</th></tr></thead><tbody>",
        recent.len()
    );
    for record in recent {
        let denial = record
            .denial_reason
            .as_deref()
            .map(|r| format!("<br><small>{}</small>", escape(r)))
            .unwrap_or_default();
        let extended = if record.extended { " (extended)" } else { "" };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}<br><small>{} · {}</small>{}</td><td class=\"t\">{}</td>\
             <td class=\"t\">{}{extended}</td>\
             <td>{}{denial}</td><td>{}</td></tr>",
            request_link(&record.request_id),
            record.kind.as_str(),
            record.channel.as_str(),
            escape(&record.jurisdiction),
            resolution_note(record),
            local_time(record.received_at, page.tz),
            local_time(record.deadline, page.tz),
            status_badge(crate::status::status_at(
                record,
                page.now,
                page.at_risk_days
            )),
            connectors_cell(record),
        );
    }
    html.push_str("</tbody></table></section>");
}

/// The request's identity resolution steps, each as resolver, outcome and the types of the
/// identifiers it added (never values or hashes); empty when no resolver is configured.
fn resolution_note(record: &AuditRecord) -> String {
    let mut note = String::new();
    for step in &record.resolution {
        let types: Vec<&str> = step.identifiers.iter().map(|i| i.kind.as_str()).collect();
        let added = if types.is_empty() {
            String::new()
        } else {
            format!(" ({})", types.join(", "))
        };
        let _ = write!(
            note,
            "<br><small class=\"resolution\">resolution: {} {}{added}</small>",
            escape(&step.resolver),
            step.outcome.as_str(),
        );
    }
    note
}

fn render(page: &Page<'_>) -> String {
    let mut html = String::with_capacity(32 * 1024 + page.overview.recent.len() * 600);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>Hush auditor</title>\
         <style>{STYLE}</style></head><body><main><h1>Hush auditor</h1>\
         <p class=\"note\">{} requests on record. Times in {}; as of {}. \
         <a href=\"/v1/report\">Metrics report (11 CCR 7102, JSON)</a> · \
         <a href=\"/v1/report?format=csv\">CSV</a></p>",
        page.overview.total,
        escape(page.tz.name()),
        local_time(page.now, page.tz),
    );
    if !page.rebuilt {
        html.push_str("<p class=\"warn\">The audit records are still being rebuilt.</p>");
    }
    render_canaries(&mut html, page);
    render_leaks(&mut html, page);
    render_counts(&mut html, page.overview);
    render_failures(&mut html, page);
    render_charts(&mut html, page);
    render_recent(&mut html, page);
    html.push_str("</main></body></html>");
    html
}

/// `GET /`: the page, computed from one read of the store and the leak watch's coverage.
pub(crate) async fn dashboard(State(auditor): State<Arc<Auditor>>) -> Response {
    let now = now_millis();
    let at_risk_days = auditor.policy().at_risk_days();
    let (counted, listed) = auditor
        .store()
        .read(|records| overview(records.collect(), now, at_risk_days));
    let mut records = HashMap::new();
    for key in listed.keys() {
        if records.contains_key(key) {
            continue;
        }
        match auditor.store().record(key).await {
            Ok(Some(record)) => {
                records.insert(key.to_owned(), record);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "dashboard: a listed record could not be read back");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "records_unavailable",
                    format!("a listed request's record is held by another replica and {error}; retry shortly"),
                )
                .into_response();
            }
        }
    }
    let overview = counted.list(listed, &records);
    let streams = auditor.coverage().all();
    let canaries = auditor.canaries().latest();
    let html = render(&Page {
        overview: &overview,
        canaries: &canaries,
        streams: &streams,
        watched: &auditor.proof_settings().watched_topics,
        tz: auditor.time_zone(),
        rebuilt: auditor.store().is_rebuilt(),
        now,
        at_risk_days,
    });
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        )],
        Html(html),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::apply_confirmation;
    use crate::status::tests::{confirmation, record as status_record, RECEIVED};
    use hush_contracts::events::LeakEvidence;
    use ConfirmationAction::*;
    use VerificationStatus::*;

    const NOW: EpochMillis = RECEIVED + 2 * DAY_MS;

    /// The overview of `records` as the page builds it: counted from their summaries, listed
    /// from their full records.
    fn overview(records: Vec<&AuditRecord>, now: EpochMillis, at_risk_days: u32) -> Overview {
        let summaries: Vec<(String, RecordSummary)> = records
            .iter()
            .map(|r| (r.request_id.clone(), RecordSummary::of(r)))
            .collect();
        let (counted, listed) = super::overview(
            summaries.iter().map(|(k, s)| (k.as_str(), s)).collect(),
            now,
            at_risk_days,
        );
        let full: HashMap<String, AuditRecord> = records
            .into_iter()
            .map(|r| (r.request_id.clone(), r.clone()))
            .collect();
        counted.list(listed, &full)
    }

    fn needs_action(record: &AuditRecord) -> bool {
        RecordSummary::of(record).needs_action()
    }

    fn record(id: &str, required: &[&str]) -> AuditRecord {
        let mut record = status_record(required);
        record.request_id = id.into();
        record
    }

    fn answer(
        record: &mut AuditRecord,
        connector: &str,
        action: ConfirmationAction,
        verification: VerificationStatus,
        after_ms: i64,
    ) {
        let mut c = confirmation(
            connector,
            action,
            verification,
            record.received_at + after_ms,
        );
        c.request_id = record.request_id.clone();
        if action == FailedPermanent {
            c.evidence
                .insert("error".into(), "<b>HTTP 410</b> & gone".into());
        }
        assert!(apply_confirmation(record, &c));
    }

    fn leak(record: &mut AuditRecord, topic: &str, detected_at: EpochMillis) {
        record.leaks += 1;
        record.leak_evidence.push(LeakEvidence {
            leak_id: format!("leak-{detected_at}"),
            source_topic: topic.into(),
            source_partition: 2,
            source_offset: 7_001,
            identifier_type: "EMAIL".into(),
            identifier_hash: "e".repeat(64),
            event_time: detected_at - 1_000,
            ms_after_suppression: 90_000,
            action_taken: "PASSED".into(),
            detected_at,
        });
    }

    fn html(records: &[AuditRecord], streams: &[WatchProgress], watched: &[String]) -> String {
        html_with_canaries(records, streams, watched, &[])
    }

    fn html_with_canaries(
        records: &[AuditRecord],
        streams: &[WatchProgress],
        watched: &[String],
        canaries: &[CanaryResult],
    ) -> String {
        let overview = overview(records.iter().collect(), NOW, 3);
        render(&Page {
            overview: &overview,
            canaries,
            streams,
            watched,
            tz: Tz::UTC,
            rebuilt: true,
            now: NOW,
            at_risk_days: 3,
        })
    }

    fn section<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("section {id}"));
        let end = start + html[start..].find("</section>").unwrap();
        &html[start..end]
    }

    const LEAKING_ID: &str = "11111111-1111-4111-8111-111111111111";
    const DENIED_ID: &str = "22222222-2222-4222-8222-222222222222";
    const CLEAN_ID: &str = "33333333-3333-4333-8333-333333333333";

    #[test]
    fn a_leaking_request_is_listed_before_others_and_leaks_come_first() {
        let mut leaking = record(LEAKING_ID, &["crm"]);
        answer(&mut leaking, "crm", Flagged, Verified, 10);
        leak(&mut leaking, "egress.ads", RECEIVED + DAY_MS);
        // Denied, with a later leak: listed, but after the LEAKING one.
        let mut denied = record(DENIED_ID, &["crm"]);
        denied.denial_reason = Some("identity not verified".into());
        leak(&mut denied, "egress.ads", RECEIVED + DAY_MS + 5);
        let clean = record(CLEAN_ID, &["crm"]);
        let records = [denied, clean, leaking];

        let o = overview(records.iter().collect(), NOW, 3);
        let listed: Vec<_> = o
            .leaking
            .iter()
            .map(|(s, r)| (*s, r.request_id.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (AuditStatus::Leaking, LEAKING_ID),
                (AuditStatus::Denied, DENIED_ID)
            ]
        );
        assert_eq!(o.tally.count(AuditStatus::Leaking), 1);

        let page = html(&records, &[], &[]);
        let leaks = section(&page, "leaks");
        assert!(leaks.contains("class=\"alarm\""));
        assert!(leaks.find(LEAKING_ID).unwrap() < leaks.find(DENIED_ID).unwrap());
        assert!(leaks.contains("<code>egress.ads</code>") && leaks.contains("2 · 7001"));
        assert!(!leaks.contains(CLEAN_ID));
        assert!(page.find("id=\"leaks\"") < page.find("id=\"counts\""));
        assert!(!page.contains(&"e".repeat(64)), "no identifier hash");
        assert!(!page.contains(&"ab".repeat(32)), "no subject key");
    }

    #[test]
    fn a_canarys_leaking_request_is_not_among_the_consumers_requests() {
        let mut canary = record(LEAKING_ID, &["crm"]);
        answer(&mut canary, "crm", Flagged, Verified, 10);
        leak(&mut canary, "egress.ads", RECEIVED + DAY_MS);
        canary.synthetic = true;
        let overview = overview(vec![&canary], NOW, 3);
        assert_eq!(overview.total, 0);
        assert_eq!(overview.leaking_total, 0);
        assert!(overview.recent.is_empty());
    }

    fn canary(
        channel: hush_contracts::canary::CanaryChannel,
        finished_at: EpochMillis,
        failure: Option<(hush_contracts::canary::CanaryStage, &str)>,
    ) -> CanaryResult {
        CanaryResult {
            run_id: "run".into(),
            channel,
            request_id: None,
            started_at: finished_at - 4_000,
            finished_at,
            stages: Vec::new(),
            outcome: if failure.is_some() {
                CanaryOutcome::Failed
            } else {
                CanaryOutcome::Passed
            },
            failed_stage: failure.map(|(stage, _)| stage),
            failure_reason: failure.map(|(_, why)| why.to_owned()),
        }
    }

    #[test]
    fn the_canaries_come_first_a_failed_or_stale_one_raising_the_alarm() {
        use hush_contracts::canary::{CanaryChannel, CanaryStage};
        let none = html_with_canaries(&[], &[], &[], &[]);
        assert!(section(&none, "canaries").contains("No canary result on record"));
        let healthy = [canary(CanaryChannel::WebForm, NOW - 60_000, None)];
        let page = html_with_canaries(&[], &[], &[], &healthy);
        assert!(page.find("id=\"canaries\"") < page.find("id=\"leaks\""));
        assert!(section(&page, "canaries").starts_with("<section id=\"canaries\" class=\"clear\""));
        let failed = [
            canary(CanaryChannel::WebForm, NOW - 60_000, None),
            canary(
                CanaryChannel::Gpc,
                NOW - 60_000,
                Some((CanaryStage::ReadBack, "read-back found <b>nothing</b>")),
            ),
        ];
        let page = html_with_canaries(&[], &[], &[], &failed);
        let canaries = section(&page, "canaries");
        assert!(canaries.contains("class=\"alarm\""), "{canaries}");
        assert!(canaries.contains("READ_BACK"), "{canaries}");
        assert!(
            canaries.contains("&lt;b&gt;nothing&lt;/b&gt;"),
            "escaped: {canaries}"
        );
        let stale = [canary(CanaryChannel::Signals, NOW - 2 * 3_600_000, None)];
        let page = html_with_canaries(&[], &[], &[], &stale);
        let canaries = section(&page, "canaries");
        assert!(
            canaries.contains("class=\"alarm\"") && canaries.contains("stale"),
            "{canaries}"
        );
    }

    #[test]
    fn no_leak_says_so() {
        let page = html(&[record(CLEAN_ID, &["crm"])], &[], &[]);
        let leaks = section(&page, "leaks");
        assert!(leaks.contains("class=\"clear\"") && leaks.contains("None on record"));
        assert!(!page.contains("id=\"failed\""));
    }

    #[test]
    fn action_required_counts_requests_with_a_failed_required_recipient() {
        let mut failed = record(LEAKING_ID, &["crm", "ads"]);
        answer(&mut failed, "crm", Flagged, Verified, 10);
        answer(&mut failed, "ads", FailedPermanent, Unverifiable, 20);
        // A failure of a recipient that is not required changes nothing.
        let mut unrequired = record(CLEAN_ID, &["crm"]);
        answer(&mut unrequired, "ads", FailedPermanent, Unverifiable, 20);
        // A denied request needs no action.
        let mut denied = record(DENIED_ID, &["ads"]);
        answer(&mut denied, "ads", FailedPermanent, Unverifiable, 20);
        denied.denial_reason = Some("fraud".into());
        let records = [failed, unrequired, denied];

        assert!(needs_action(&records[0]));
        assert!(!needs_action(&records[1]) && !needs_action(&records[2]));
        let o = overview(records.iter().collect(), NOW, 3);
        assert_eq!(o.action_required, 1);
        assert_eq!(o.failures.len(), 1);
        assert_eq!(o.failures[0].connector_id, "ads");
        assert_eq!(o.failures[0].status, AuditStatus::ActionRequired);

        let page = html(&records, &[], &[]);
        assert!(page.contains("<th>ACTION_REQUIRED</th>"));
        let failed = section(&page, "failed");
        assert!(failed.contains(LEAKING_ID) && !failed.contains(DENIED_ID));
        assert!(
            failed.contains("&lt;b&gt;HTTP 410&lt;/b&gt; &amp; gone"),
            "{failed}"
        );
        assert!(!page.contains("<b>"), "the error is escaped");
        // The recent table highlights the failure too.
        assert!(section(&page, "recent").contains("<span class=\"failed\">ads: FAILED_PERMANENT"));
    }

    #[test]
    fn a_given_up_read_back_is_listed_with_its_reason() {
        let mut record = record(LEAKING_ID, &["crm"]);
        answer(&mut record, "crm", Flagged, Pending, 10);
        let mut given_up = confirmation("crm", Flagged, Pending, record.received_at + 10);
        given_up.request_id = record.request_id.clone();
        given_up.evidence.insert(
            hush_contracts::events::READ_BACK_GAVE_UP_EVIDENCE_KEY.into(),
            "read-back still PENDING after 8 read-backs".into(),
        );
        assert!(apply_confirmation(&mut record, &given_up));
        let records = [record];
        assert!(needs_action(&records[0]));
        let o = overview(records.iter().collect(), NOW, 3);
        assert_eq!(o.action_required, 1);
        assert_eq!(o.failures[0].status, AuditStatus::ActionRequired);
        assert_eq!(
            o.failures[0].error.as_deref(),
            Some("read-back still PENDING after 8 read-backs")
        );
        let page = html(&records, &[], &[]);
        assert!(section(&page, "failed").contains("after 8 read-backs"));
    }

    #[test]
    fn the_recent_table_shows_resolution_steps_by_type_never_by_value() {
        use hush_contracts::events::{
            IdentifierType, ResolutionOutcome, ResolutionStep, ResolvedIdentifier,
        };
        let mut record = record(CLEAN_ID, &["crm"]);
        let hash = "c".repeat(64);
        record.resolution = vec![ResolutionStep {
            resolver: "customer-db".into(),
            outcome: ResolutionOutcome::Resolved,
            identifiers: vec![ResolvedIdentifier {
                kind: IdentifierType::CustomerId,
                sha256: hash.clone(),
            }],
            resolved_at: RECEIVED,
            attempts: 1,
            reason: None,
        }];
        let page = html(&[record], &[], &[]);
        let recent = section(&page, "recent");
        assert!(
            recent.contains("resolution: customer-db RESOLVED (CUSTOMER_ID)"),
            "{recent}"
        );
        assert!(!page.contains(&hash));
    }

    #[test]
    fn headroom_columns_split_at_the_day_bounds() {
        assert_eq!(headroom_column(-1), 0);
        assert_eq!(headroom_column(0), 1);
        assert_eq!(headroom_column(DAY_MS), 1);
        assert_eq!(headroom_column(DAY_MS + 1), 2);
        assert_eq!(headroom_column(7 * DAY_MS), 3);
        assert_eq!(headroom_column(45 * DAY_MS), HEADROOM_COLUMNS - 2);
        assert_eq!(headroom_column(45 * DAY_MS + 1), HEADROOM_COLUMNS - 1);
    }

    #[test]
    fn the_headroom_chart_counts_waiting_requests_by_status() {
        let deadlines = [
            NOW - 1,
            NOW + DAY_MS / 2,
            NOW + 2 * DAY_MS,
            NOW + 10 * DAY_MS,
        ];
        let mut records: Vec<AuditRecord> = deadlines
            .iter()
            .enumerate()
            .map(|(i, deadline)| {
                let mut r = record(&format!("00000000-0000-4000-8000-00000000000{i}"), &["crm"]);
                r.deadline = *deadline;
                r
            })
            .collect();
        // Complete: not waiting, whatever its deadline.
        let mut done = record(CLEAN_ID, &["crm"]);
        answer(&mut done, "crm", Flagged, Verified, 10);
        done.deadline = NOW - 1;
        records.push(done);

        let o = overview(records.iter().collect(), NOW, 3);
        // [OVERDUE, AT_RISK, OPEN] per column.
        assert_eq!(o.headroom[0], [1, 0, 0]);
        assert_eq!(o.headroom[1], [0, 1, 0]);
        assert_eq!(o.headroom[2], [0, 1, 0]);
        assert_eq!(o.headroom[4], [0, 0, 1]);
        assert_eq!(o.headroom.iter().flatten().sum::<u64>(), 4);
        let page = html(&records, &[], &[]);
        assert!(page.contains("4 requests waiting on recipients; the most overdue by 1 ms"));
        assert!(page.contains("<svg id=\"chart-headroom\""));
    }

    #[test]
    fn recipient_outcomes_and_latency_cover_the_last_30_days() {
        let mut recent = record(LEAKING_ID, &["crm", "ads", "meta"]);
        answer(&mut recent, "crm", Flagged, Verified, 2 * 3_600_000);
        answer(&mut recent, "ads", Suppressed, Unverifiable, 4 * 3_600_000);
        answer(&mut recent, "meta", FailedPermanent, Unverifiable, 20);
        let mut waiting = record(CLEAN_ID, &["crm"]);
        waiting.received_at = NOW - DAY_MS;
        let mut old = record(DENIED_ID, &["crm"]);
        old.received_at = NOW - 31 * DAY_MS;
        let records = [recent, waiting, old];

        let o = overview(records.iter().collect(), NOW, 3);
        let stats = |id: &str| o.recipients[id].clone();
        assert_eq!(
            stats("crm"),
            RecipientStats {
                verified: 1,
                waiting: 1,
                latencies_ms: vec![2 * 3_600_000],
                ..RecipientStats::default()
            },
            "the 31-day-old request is left out"
        );
        assert_eq!(stats("ads").complied, 1);
        assert_eq!(
            stats("meta"),
            RecipientStats {
                failed: 1,
                ..RecipientStats::default()
            },
            "a failure has no latency"
        );
        let page = html(&records, &[], &[]);
        let outcomes = section(&page, "outcomes");
        assert!(
            outcomes.contains(">1 request · 1 failed</text>"),
            "{outcomes}"
        );
        let latency = section(&page, "latency");
        assert!(latency.contains(">2.0 h · p95 2.0 h</text>"), "{latency}");
        assert!(
            latency.contains(">no outcome yet</text>"),
            "meta never complied"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&values, 0.5), 5);
        assert_eq!(percentile(&values, 0.95), 10);
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[1, 2], 0.0), 1);
    }

    #[test]
    fn every_watched_topic_is_charted_with_its_leaks() {
        let progress = WatchProgress {
            topic: "egress.<ads>".into(),
            records_examined: 1_234_567,
            covered_until: NOW - 60_000,
            offsets: HashMap::new(),
            leaks_found: 3,
            updated_at: NOW,
        };
        let watched = vec!["egress.<ads>".to_string(), "egress.crm".to_string()];
        let page = html(&[], &[progress], &watched);
        let streams = section(&page, "streams");
        assert!(streams.contains("<svg id=\"chart-streams\""));
        assert!(streams.contains("1,234,567 examined · 3 leaks"));
        assert!(streams.contains("egress.&lt;ads&gt;") && !streams.contains("<ads>"));
        assert!(streams.contains(">egress.crm</text>") && streams.contains("no progress reported"));
        assert_eq!(
            streams.matches("<g class=\"bar\">").count(),
            2,
            "no topic twice"
        );
    }
}
