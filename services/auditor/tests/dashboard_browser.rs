//! The dashboard as a browser shows it: the auditor's router serves seeded records on a loopback
//! port, headless Chromium (Debian's `chromium`, installed by `deploy/local/prerequisites`)
//! takes a screenshot and dumps the DOM, and the test checks that the page rendered, the charts
//! are there and the seeded LEAKING request is listed among the leaks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hush_auditor::api::router;
use hush_auditor::service::{Auditor, ProofSettings};
use hush_auditor::store::{AuditStore, AuditWriter, Position, WriteError};
use hush_contracts::deadline::DeadlineConfig;
use hush_contracts::events::{
    now_millis, AuditRecord, AuditStatus, Channel, ConfirmationAction, ConnectorOutcome,
    EpochMillis, LeakEvidence, LeakFreeWindow, RecipientRole, RequestKind, VerificationStatus,
    WatchProgress, WatchedStreamCoverage,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

const LEAKING_ID: &str = "7d0f5a8e-2b1c-4e6f-9a3d-0c4b8e2f1a01";
const PROVEN_ID: &str = "1c9e4b7a-5d2f-4a8b-8e6c-3f0a9d1b2c02";
const FAILED_ID: &str = "9a4c2e6b-8f1d-4b3a-a7e5-6d0c1b9f3e03";
const FAILED_ERROR: &str = "HTTP 410 from audience API: list 88213 was deleted";

/// Records what the auditor writes; showing the dashboard must write nothing.
#[derive(Default)]
struct RecordingWriter {
    written: Mutex<Vec<AuditRecord>>,
}

#[async_trait]
impl AuditWriter for RecordingWriter {
    async fn write(&self, record: &AuditRecord) -> Result<Position, WriteError> {
        let mut written = self.written.lock().unwrap();
        written.push(record.clone());
        Ok(Position {
            partition: 0,
            offset: written.len() as i64,
        })
    }
}

fn record(id: &str, kind: RequestKind, received_at: EpochMillis, days: i64) -> AuditRecord {
    AuditRecord {
        request_id: id.into(),
        subject_key: "ab".repeat(32),
        kind,
        channel: Channel::Gpc,
        jurisdiction: "US-CA".into(),
        received_at,
        deadline: received_at + days * DAY,
        extended: false,
        status: AuditStatus::Open,
        completed_at: None,
        denial_reason: None,
        required_connectors: vec!["meta-capi".into(), "google-ads".into(), "hubspot".into()],
        connectors: Vec::new(),
        leaks: 0,
        leak_evidence: Vec::new(),
        proof: None,
        changes: Vec::new(),
        synthetic: false,
        resolution: Vec::new(),
        updated_at: received_at,
    }
}

fn answer(
    record: &mut AuditRecord,
    connector: &str,
    action: ConfirmationAction,
    verification: VerificationStatus,
    after_ms: i64,
) {
    let completed_at = record.received_at + after_ms;
    let mut evidence = HashMap::from([("http_status".to_string(), "200".to_string())]);
    if action == ConfirmationAction::FailedPermanent {
        evidence.insert("error".into(), FAILED_ERROR.into());
    }
    record.connectors.push(ConnectorOutcome {
        connector_id: connector.into(),
        role: RecipientRole::ThirdParty,
        action,
        verification,
        attempts: if action == ConfirmationAction::FailedPermanent {
            8
        } else {
            1
        },
        completed_at,
        evidence,
    });
    if record.connectors.len() == record.required_connectors.len() {
        record.completed_at = record.connectors.iter().map(|o| o.completed_at).max();
    }
}

fn answer_all(record: &mut AuditRecord, after_ms: [i64; 3]) {
    use ConfirmationAction::*;
    use VerificationStatus::*;
    answer(record, "meta-capi", Suppressed, Verified, after_ms[0]);
    answer(record, "google-ads", Suppressed, Unverifiable, after_ms[1]);
    answer(record, "hubspot", Flagged, Verified, after_ms[2]);
}

/// A LEAKING request, a PROVEN one, one with a failed recipient, and a spread of open,
/// at-risk, overdue, verified and denied ones.
fn seeded(now: EpochMillis) -> Vec<AuditRecord> {
    use ConfirmationAction::*;
    use VerificationStatus::*;
    let mut records = Vec::new();

    let mut leaking = record(LEAKING_ID, RequestKind::OptOutSaleShare, now - 6 * DAY, 21);
    answer_all(&mut leaking, [2 * HOUR, 5 * HOUR, 30 * 60_000]);
    let suppressed = leaking.received_at + 2 * HOUR;
    leaking.leaks = 2;
    leaking.leak_evidence = (0..2)
        .map(|i| LeakEvidence {
            leak_id: format!("leak-{i}"),
            source_topic: "egress.meta-capi".into(),
            source_partition: 3,
            source_offset: 918_227 + i,
            identifier_type: "EMAIL".into(),
            identifier_hash: "e".repeat(64),
            event_time: suppressed + (i + 1) * 40 * 60_000,
            ms_after_suppression: (i + 1) * 40 * 60_000,
            action_taken: "PASSED".into(),
            detected_at: suppressed + (i + 1) * 41 * 60_000,
        })
        .collect();
    records.push(leaking);

    let mut proven = record(PROVEN_ID, RequestKind::OptOutSaleShare, now - 12 * DAY, 21);
    answer_all(&mut proven, [HOUR, 3 * HOUR, 20 * 60_000]);
    let window_start = proven.completed_at.unwrap();
    proven.proof = Some(LeakFreeWindow {
        window_start,
        window_end: window_start + 7 * DAY,
        streams: vec![WatchedStreamCoverage {
            topic: "egress.meta-capi".into(),
            records_examined: 1_000_000,
            covered_until: window_start + 7 * DAY,
            offsets: HashMap::new(),
        }],
    });
    records.push(proven);

    let mut failed = record(FAILED_ID, RequestKind::Delete, now - 20 * DAY, 45);
    answer(&mut failed, "meta-capi", Deleted, Verified, 3 * HOUR);
    answer(
        &mut failed,
        "google-ads",
        FailedPermanent,
        Unverifiable,
        2 * DAY,
    );
    answer(&mut failed, "hubspot", Deleted, Verified, 9 * HOUR);
    records.push(failed);

    // Verified, waiting (open, at risk, overdue) and denied requests.
    let ids = (0..10).map(|i| format!("00000000-0000-4000-8000-0000000000{i:02}"));
    for (i, id) in ids.enumerate() {
        let i = i as i64;
        let mut r = record(
            &id,
            RequestKind::OptOutSaleShare,
            now - (i + 1) * 2 * DAY,
            21,
        );
        match i {
            0..=3 => answer_all(&mut r, [(i + 1) * HOUR, (i + 2) * 4 * HOUR, 45 * 60_000]),
            4 | 5 => answer(&mut r, "meta-capi", Suppressed, Verified, HOUR),
            6 => r.denial_reason = Some("identity could not be verified".into()),
            _ => {}
        }
        match i {
            8 => r.deadline = now + DAY,
            9 => r.deadline = now - 2 * DAY,
            _ => {}
        }
        records.push(r);
    }
    records
}

fn fresh_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard_browser")
        .join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `url` with `extra` arguments and a fresh profile.
async fn chromium(url: &str, extra: &str) -> Output {
    let profile = fresh_dir("profile");
    let run = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--window-size=1280,2000",
            extra,
            url,
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("chromium finishes within 3 minutes")
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium {extra} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The element that starts with `start` up to its first `</section>`.
fn section<'a>(dom: &'a str, start: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("{start} in the page"));
    let len = dom[from..].find("</section>").expect("section closes");
    &dom[from..from + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_charts_and_the_leaking_request_first() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run deploy/local/prerequisites, which installs Debian's \
         chromium package for this test"
    );
    let now = now_millis();
    let store = Arc::new(AuditStore::default());
    for (offset, record) in seeded(now).into_iter().enumerate() {
        store.put(
            record,
            Position {
                partition: 0,
                offset: offset as i64,
            },
        );
    }
    store.mark_rebuilt();
    let writer = Arc::new(RecordingWriter::default());
    let auditor = Arc::new(Auditor::new(
        store,
        writer.clone(),
        DeadlineConfig::default(),
        vec![],
        ProofSettings::default(),
    ));
    for (topic, examined, leaks) in [
        ("egress.meta-capi", 1_284_311, 2),
        ("egress.google-ads", 402_977, 0),
        ("egress.hubspot", 88_120, 0),
    ] {
        auditor.coverage().put(WatchProgress {
            topic: topic.into(),
            records_examined: examined,
            covered_until: now - 90_000,
            offsets: HashMap::new(),
            leaks_found: leaks,
            updated_at: now,
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The dashboard needs `auditor:read`: the browser logs in with Basic, the API key as
    // password, as a compliance lead's browser does at its login prompt.
    let viewer = hush_auth::keys::new_api_key();
    let auth = hush_auth::Authenticator::new(
        &hush_auth::AuthConfig {
            api_keys: vec![hush_auth::config::ApiKeyConfig {
                client: "dashboard-viewer".into(),
                sha256: viewer.sha256.clone(),
                scopes: vec![hush_auth::Scope::AuditorRead],
            }],
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    let address = listener.local_addr().unwrap();
    let url = format!("http://viewer:{}@{address}/", viewer.key);
    let anonymous_url = format!("http://{address}/");
    let server = tokio::spawn(async move {
        axum::serve(listener, router(auditor, Arc::new(auth)))
            .await
            .unwrap();
    });
    let refused = String::from_utf8(chromium(&anonymous_url, "--dump-dom").await.stdout).unwrap();
    assert!(
        !refused.contains("<h1>Hush auditor</h1>"),
        "without credentials the dashboard is refused: {refused}"
    );

    let shots = fresh_dir("screenshot");
    let png = shots.join("dashboard.png");
    chromium(&url, &format!("--screenshot={}", png.display())).await;
    let dom = String::from_utf8(chromium(&url, "--dump-dom").await.stdout).unwrap();
    server.abort();
    println!("screenshot: {}", png.display());

    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    let dimension = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((dimension(16), dimension(20)), (1280, 2000), "IHDR size");
    assert!(
        bytes.len() > 50_000,
        "a rendered page, not a blank one: {} bytes",
        bytes.len()
    );

    assert!(dom.contains("<h1>Hush auditor</h1>"), "{dom}");
    for chart in [
        "chart-headroom",
        "chart-streams",
        "chart-outcomes",
        "chart-latency",
    ] {
        assert!(
            dom.contains(&format!("<svg id=\"{chart}\" class=\"chart\"")),
            "{chart} in {dom}"
        );
    }
    assert!(!dom.contains("<script"), "the page runs no script");
    let leaks = section(&dom, "<section id=\"leaks\"");
    assert!(leaks.contains(LEAKING_ID), "{leaks}");
    assert!(leaks.contains("LEAKING") && leaks.contains("egress.meta-capi"));
    assert!(!leaks.contains(PROVEN_ID) && !leaks.contains(FAILED_ID));
    assert!(
        dom.find("<section id=\"leaks\"") < dom.find("<section id=\"counts\""),
        "leaks come first"
    );
    let failed = section(&dom, "<section id=\"failed\"");
    assert!(failed.contains(FAILED_ID) && failed.contains("google-ads"));
    assert!(failed.contains(FAILED_ERROR), "{failed}");
    let streams = section(&dom, "<section id=\"streams\"");
    assert!(
        streams.contains("1,284,311 examined · 2 leaks"),
        "{streams}"
    );
    assert!(
        !dom.contains(&"e".repeat(64)),
        "no identifier hash on the page"
    );
    assert!(
        !dom.contains(&"ab".repeat(32)),
        "no subject key on the page"
    );
    assert!(writer.written.lock().unwrap().is_empty());
}
