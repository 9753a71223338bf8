//! The auditor's dashboard (`GET /`): a self-contained HTML page with counts by status and the
//! most recent requests, every value escaped, no external assets.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono_tz::Tz;
use hush_contracts::events::{now_millis, AuditRecord, EpochMillis, VerificationStatus};

use crate::fold::instant;
use crate::metrics::{tally, Tally};
use crate::service::Auditor;
use crate::status::{status_at, status_symbol, ALL_STATUSES};

/// Requests listed on the dashboard.
const RECENT: usize = 50;

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

/// The `n` records received last, newest first.
pub(crate) fn most_recent(mut records: Vec<&AuditRecord>, n: usize) -> Vec<AuditRecord> {
    let newest_first = |a: &&AuditRecord, b: &&AuditRecord| {
        b.received_at
            .cmp(&a.received_at)
            .then_with(|| a.request_id.cmp(&b.request_id))
    };
    if records.len() > n && n > 0 {
        records.select_nth_unstable_by(n - 1, newest_first);
    }
    records.truncate(n);
    records.sort_unstable_by(newest_first);
    records.into_iter().cloned().collect()
}

fn connectors_cell(record: &AuditRecord) -> String {
    let mut lines = Vec::new();
    for id in &record.required_connectors {
        match record.connectors.iter().find(|o| &o.connector_id == id) {
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

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;\
text-align:left;vertical-align:top}th{background:#f3f3f3}.counts td{text-align:right}\
.s-verified{color:#176317}.s-confirmed,.s-unverified{color:#6b5d00}.s-at_risk{color:#a35200}\
.s-overdue,.s-leaking{color:#b00020;font-weight:bold}.s-denied{color:#555}.extra{color:#777}\
.note{color:#555}.warn{background:#fff3cd;padding:6px}small{color:#555}";

struct Dashboard<'a> {
    tally: &'a Tally,
    recent: &'a [AuditRecord],
    total: usize,
    tz: Tz,
    rebuilt: bool,
    now: EpochMillis,
    at_risk_days: u32,
}

fn render(d: &Dashboard<'_>) -> String {
    let mut html = String::with_capacity(8 * 1024 + d.recent.len() * 512);
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta http-equiv=\"refresh\" content=\"30\"><title>Hush auditor</title>");
    html.push_str(&format!(
        "<style>{STYLE}</style></head><body><h1>Hush auditor</h1>"
    ));
    if !d.rebuilt {
        html.push_str("<p class=\"warn\">The audit records are still being rebuilt.</p>");
    }
    html.push_str(&format!(
        "<p class=\"note\">{} requests on record. Times in {}. \
         <a href=\"/v1/report\">Metrics report (11 CCR 7102, JSON)</a> · \
         <a href=\"/v1/report?format=csv\">CSV</a></p>",
        d.total,
        escape(d.tz.name())
    ));
    html.push_str("<table class=\"counts\"><tr>");
    for status in ALL_STATUSES {
        html.push_str(&format!("<th>{}</th>", status_symbol(status)));
    }
    html.push_str("</tr><tr>");
    for status in ALL_STATUSES {
        html.push_str(&format!("<td>{}</td>", d.tally.count(status)));
    }
    html.push_str("</tr></table>");
    html.push_str(&format!(
        "<h2>Most recent requests ({})</h2><table><thead><tr><th>Request</th><th>Kind</th>\
         <th>Channel</th><th>Jurisdiction</th><th>Received</th><th>Deadline</th>\
         <th>Status</th><th>Connectors</th></tr></thead><tbody>",
        d.recent.len()
    ));
    for record in d.recent {
        let status = status_symbol(status_at(record, d.now, d.at_risk_days));
        let id = escape(&record.request_id);
        let denial = record
            .denial_reason
            .as_deref()
            .map(|r| format!("<br><small>{}</small>", escape(r)))
            .unwrap_or_default();
        let extended = if record.extended { " (extended)" } else { "" };
        html.push_str(&format!(
            "<tr><td><a href=\"/v1/requests/{id}\"><code>{id}</code></a></td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}{extended}</td>\
             <td><span class=\"s-{}\">{status}</span>{denial}</td><td>{}</td></tr>",
            record.kind.as_str(),
            record.channel.as_str(),
            escape(&record.jurisdiction),
            local_time(record.received_at, d.tz),
            local_time(record.deadline, d.tz),
            status.to_ascii_lowercase(),
            connectors_cell(record),
        ));
    }
    html.push_str("</tbody></table></body></html>");
    html
}

pub(crate) async fn dashboard(State(auditor): State<Arc<Auditor>>) -> Response {
    let now = now_millis();
    let at_risk_days = auditor.policy().at_risk_days();
    let (tally, recent, total) = auditor.store().read(|records| {
        let all: Vec<&AuditRecord> = records.collect();
        let total = all.len();
        let tally = tally(all.iter().copied(), now, at_risk_days);
        (tally, most_recent(all, RECENT), total)
    });
    let html = render(&Dashboard {
        tally: &tally,
        recent: &recent,
        total,
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
