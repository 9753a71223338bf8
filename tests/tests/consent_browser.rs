//! The browser side of an opt-out, in a real browser: intake's router, rebuilt from a unique
//! suppressions topic on the real broker and registry, serves `/v1/consent` and
//! `/v1/consent.js` on a loopback port next to a fixture shop page (same origin) that installs
//! the snippet and holds back a stand-in advertising tag and an analytics tag. Headless Chromium
//! (Debian's `chromium`, installed by `deploy/local/prerequisites`) loads the page as an
//! opted-out visitor, as a Global Privacy Control browser and as a visitor who did not opt out;
//! the tags must fire only for the last, with Consent Mode granted only then, and `__gpp`
//! must answer with the visitor's strings each time.
//!
//! The GPC browser is Chromium with `--enable-features=GlobalPrivacyControlForce`: with it
//! Debian's Chromium (156) exposes `navigator.globalPrivacyControl === true` and sends
//! `Sec-GPC: 1` (the test checks the header reached the page's server); `GlobalPrivacyControl`
//! alone leaves the property undefined.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use hush_contracts::events::{IdentifierType, MinorStatus, SuppressionState};
use hush_contracts::identifiers::hash_identifier;
use hush_runtime::config::{CommonConfig, RegistryConfig, TopicsConfig};
use hush_tests::pipeline::set_test_secrets;
use hush_tests::Stack;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The visitor whose cookie id opted out before intake started (found by the rebuild).
const OPTED_OUT: &str = "vid-opted-out-5b1e";
/// A visitor with no opt-out.
const NOT_OPTED_OUT: &str = "vid-plain-77c2";
/// A visitor who opts out while intake runs (found by following the topic).
const OPTS_OUT_LATER: &str = "vid-later-0d9a";

/// The fixture shop page: the snippet first in `<head>`, a stand-in advertising tag loaded from
/// `/tag.js`, an inline analytics tag, and elements the page fills with what it saw.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Fixture shop</title>
<script src="/v1/consent.js"></script>
<script>window.atStart = JSON.stringify(window.dataLayer);</script>
</head><body>
<h1>Fixture shop</h1>
<script type="text/plain" data-hush-category="advertising" data-src="/tag.js"></script>
<script type="text/plain" data-hush-category="analytics">document.body.setAttribute('data-analytics-fired', 'yes');</script>
<pre id="at-start"></pre>
<pre id="decision"></pre>
<pre id="datalayer"></pre>
<pre id="gpp"></pre>
<script>
document.getElementById('at-start').textContent = window.atStart;
window.addEventListener('hush:consent', function (event) {
  document.getElementById('decision').textContent = JSON.stringify(event.detail);
  document.getElementById('datalayer').textContent = JSON.stringify(window.dataLayer);
  __gpp('ping', function (ping) {
    __gpp('getField', function (saleOptOut) {
      __gpp('hasSection', function (hasUsca) {
        document.getElementById('gpp').textContent = JSON.stringify(
          { ping: ping, usca_sale_opt_out: saleOptOut, has_usca: hasUsca });
      }, 'usca');
    }, 'usca.SaleOptOut');
  });
});
</script>
</body></html>"#;

/// What the stand-in advertising tag does when it runs: leave a mark in the page.
const TAG: &str =
    "document.body.insertAdjacentHTML('beforeend', '<p id=\"ad-tag-fired\">ad tag fired</p>');";

/// What the fixture server saw.
#[derive(Default)]
struct Seen {
    /// Requests for the stand-in tag.
    tag_loads: AtomicUsize,
    /// Whether the last page request carried `Sec-GPC: 1`.
    page_gpc: AtomicBool,
}

/// The test-only routes, on the same origin as intake: the page, the tag, and `/as/{id}`,
/// which sets the visitor cookie (as the site would) and sends the browser to the page.
fn fixture(seen: Arc<Seen>) -> Router {
    Router::new()
        .route(
            "/page",
            get(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    let gpc = headers.get("sec-gpc").is_some_and(|v| v == "1");
                    seen.page_gpc.store(gpc, Ordering::SeqCst);
                    Html(PAGE)
                },
            ),
        )
        .route(
            "/tag.js",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.tag_loads.fetch_add(1, Ordering::SeqCst);
                ([(header::CONTENT_TYPE, "text/javascript")], TAG)
            }),
        )
        .route(
            "/as/{id}",
            get(|UrlPath(id): UrlPath<String>| async move {
                (
                    axum::http::StatusCode::FOUND,
                    [
                        (
                            header::SET_COOKIE,
                            format!("hush_vid={id}; Path=/; SameSite=Lax"),
                        ),
                        (header::LOCATION, "/page".to_owned()),
                    ],
                )
                    .into_response()
            }),
        )
        .with_state(seen)
}

fn state(cookie_id: &str, opted_out: bool) -> SuppressionState {
    let hash = hash_identifier(IdentifierType::CookieId, cookie_id).unwrap();
    SuppressionState {
        identifier_hash: hash.clone(),
        identifier_type: IdentifierType::CookieId,
        subject_key: hash,
        sale_share_opted_out: opted_out,
        sensitive_limited: false,
        deleted: false,
        effective_at: hush_contracts::events::now_millis(),
        resolicit_after: None,
        minor_status: MinorStatus::NotMinor,
        last_request_id: uuid::Uuid::new_v4().to_string(),
        updated_at: hush_contracts::events::now_millis(),
        synthetic: false,
    }
}

fn profile_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("consent_browser")
        .join(uuid::Uuid::new_v4().simple().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The DOM of `url` after headless Chromium ran its scripts and fetches (virtual time lets
/// the page finish them before the dump), with `extra` arguments and a fresh profile.
async fn dump_dom(url: &str, extra: &[&str]) -> String {
    let profile = profile_dir();
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
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium finishes within 2 minutes")
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The JSON text the page wrote into `<pre id="{id}">`.
fn written(dom: &str, id: &str) -> Value {
    let start = format!("<pre id=\"{id}\">");
    let from = dom
        .find(&start)
        .unwrap_or_else(|| panic!("{start} in {dom}"))
        + start.len();
    let len = dom[from..].find("</pre>").expect("pre closes");
    let text = dom[from..from + len]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{id}: {e}: {text:?} in {dom}"))
}

/// `consent` commands in the page's dataLayer, as (action, parameters).
fn consent_commands(data_layer: &Value) -> Vec<(String, Value)> {
    data_layer
        .as_array()
        .expect("dataLayer is an array")
        .iter()
        .filter(|entry| entry["0"] == "consent")
        .map(|entry| (entry["1"].as_str().unwrap().to_owned(), entry["2"].clone()))
        .collect()
}

/// Whether the stand-in advertising tag and the inline analytics tag ran in the page.
fn fired(dom: &str) -> (bool, bool) {
    (
        dom.contains("<p id=\"ad-tag-fired\">ad tag fired</p>"),
        dom.contains("<body data-analytics-fired=\"yes\">"),
    )
}

const TYPES: [&str; 4] = [
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
];

/// Checks what every visit shares: Consent Mode defaults denied before anything else ran,
/// and `__gpp` ready with the GPP string intake answers for the same visitor.
fn assert_defaults_and_gpp(what: &str, dom: &str, expected: &Value) {
    let at_start = consent_commands(&written(dom, "at-start"));
    assert_eq!(
        at_start.len(),
        1,
        "{what}: only the default at start: {at_start:?}"
    );
    let (action, defaults) = &at_start[0];
    assert_eq!(action, "default", "{what}");
    for t in TYPES {
        assert_eq!(defaults[t], "denied", "{what}: {t} by default: {defaults}");
    }
    assert!(
        defaults["wait_for_update"].as_u64().is_some(),
        "{what}: {defaults}"
    );
    let gpp = written(dom, "gpp");
    let ping = &gpp["ping"];
    assert_eq!(ping["gppVersion"], "1.1", "{what}: {gpp}");
    assert_eq!(ping["signalStatus"], "ready", "{what}: {gpp}");
    assert_eq!(ping["cmpStatus"], "loaded", "{what}: {gpp}");
    assert_eq!(ping["gppString"], expected["gpp"], "{what}: {gpp}");
    assert_eq!(
        ping["applicableSections"], expected["gpp_sid"],
        "{what}: {gpp}"
    );
    assert_eq!(gpp["has_usca"], true, "{what}: {gpp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_fires_the_tags_only_for_a_visitor_who_did_not_opt_out() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run deploy/local/prerequisites, which installs Debian's \
         chromium package for this test"
    );
    set_test_secrets();
    let stack = Stack::from_env();
    let topics: TopicsConfig = stack.unique_topics("consent-browser");
    stack.create_topics(&topics).await;
    let producer = stack.producer();
    for (id, opted_out) in [(OPTED_OUT, true), (NOT_OPTED_OUT, false)] {
        let state = state(id, opted_out);
        producer
            .send(&topics.suppressions, &state.identifier_hash, &state)
            .await
            .expect("state published");
    }

    let common = CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics: topics.clone(),
    };
    let config = hush_intake::service::Config {
        common: common.clone(),
        auth: hush_tests::auth::test_auth().config(),
        ..Default::default()
    };
    let intake = hush_intake::service::build(&config, CancellationToken::new())
        .await
        .expect("intake builds");
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = hush_intake::api::router(intake.clone()).merge(fixture(seen.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let ask = |cookie: &'static str| {
        let request = http
            .get(format!("{base}/v1/consent"))
            .header(header::COOKIE, format!("hush_vid={cookie}"));
        async move {
            let response = request.send().await.expect("intake reachable");
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };

    // Not rebuilt yet: no answer that could wrongly let a tag fire.
    let (status, answer) = ask(OPTED_OUT).await;
    assert_eq!(status, 503, "before the rebuild: {answer}");

    let stop = CancellationToken::new();
    tokio::spawn(hush_intake::service::follow_suppressions(
        common,
        intake.consent.clone(),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !intake.consent.rebuilt.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rebuilt within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, opted_out_answer) = ask(OPTED_OUT).await;
    assert_eq!(opted_out_answer["opted_out"], true, "{opted_out_answer}");
    let (_, plain_answer) = ask(NOT_OPTED_OUT).await;
    assert_eq!(plain_answer["opted_out"], false, "{plain_answer}");

    // 1. The opted-out visitor: nothing fires, consent stays denied.
    let dom = dump_dom(&format!("{base}/as/{OPTED_OUT}"), &[]).await;
    let decision = written(&dom, "decision");
    assert_eq!(decision["consent"], "denied", "{decision}");
    assert_eq!(decision["reason"], "opted_out", "{decision}");
    assert_eq!(decision["us_privacy"], "1YYN", "{decision}");
    assert_eq!(fired(&dom), (false, false), "opted-out visitor: {dom}");
    assert!(dom.contains("data-hush-consent=\"denied\""), "{dom}");
    let commands = consent_commands(&written(&dom, "datalayer"));
    assert!(
        commands.iter().all(|(action, _)| action != "update"),
        "no consent update for an opted-out visitor: {commands:?}"
    );
    assert_defaults_and_gpp("opted out", &dom, &opted_out_answer);
    assert_eq!(written(&dom, "gpp")["usca_sale_opt_out"], 1, "opted out");
    assert!(
        !seen.page_gpc.load(Ordering::SeqCst),
        "no GPC from a plain browser"
    );
    assert_eq!(
        seen.tag_loads.load(Ordering::SeqCst),
        0,
        "the tag was never fetched"
    );

    // 2. A GPC browser, whose visitor id never opted out: GPC alone keeps every tag off.
    let dom = dump_dom(
        &format!("{base}/as/{NOT_OPTED_OUT}"),
        &["--enable-features=GlobalPrivacyControlForce"],
    )
    .await;
    assert!(
        seen.page_gpc.load(Ordering::SeqCst),
        "this Chromium sends Sec-GPC: 1 with --enable-features=GlobalPrivacyControlForce"
    );
    let decision = written(&dom, "decision");
    assert_eq!(decision["consent"], "denied", "{decision}");
    assert_eq!(decision["reason"], "gpc", "{decision}");
    assert_eq!(decision["gpc"], true, "{decision}");
    assert_eq!(fired(&dom), (false, false), "GPC browser: {dom}");
    let commands = consent_commands(&written(&dom, "datalayer"));
    assert!(
        commands.iter().all(|(action, _)| action != "update"),
        "no consent update for a GPC browser: {commands:?}"
    );
    let gpc_answer = http
        .get(format!("{base}/v1/consent"))
        .header(header::COOKIE, format!("hush_vid={NOT_OPTED_OUT}"))
        .header("Sec-GPC", "1")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_defaults_and_gpp("GPC", &dom, &gpc_answer);
    assert_eq!(written(&dom, "gpp")["usca_sale_opt_out"], 1, "GPC opts out");
    assert_eq!(
        seen.tag_loads.load(Ordering::SeqCst),
        0,
        "the tag was never fetched"
    );

    // 3. The same visitor without GPC: consent granted, both tags fire.
    let dom = dump_dom(&format!("{base}/as/{NOT_OPTED_OUT}"), &[]).await;
    let decision = written(&dom, "decision");
    assert_eq!(decision["consent"], "granted", "{decision}");
    assert_eq!(decision["reason"], "not_opted_out", "{decision}");
    assert_eq!(
        fired(&dom),
        (true, true),
        "visitor who did not opt out: {dom}"
    );
    let commands = consent_commands(&written(&dom, "datalayer"));
    let updates: Vec<&Value> = commands
        .iter()
        .filter(|(action, _)| action == "update")
        .map(|(_, parameters)| parameters)
        .collect();
    assert_eq!(updates.len(), 1, "one consent update: {commands:?}");
    for t in TYPES {
        assert_eq!(updates[0][t], "granted", "{t}: {}", updates[0]);
    }
    assert_defaults_and_gpp("not opted out", &dom, &plain_answer);
    assert_eq!(
        written(&dom, "gpp")["usca_sale_opt_out"],
        2,
        "did not opt out"
    );
    assert_eq!(
        seen.tag_loads.load(Ordering::SeqCst),
        1,
        "the tag was fetched once"
    );

    // An opt-out written while intake runs is answered too (intake follows the topic).
    let later = state(OPTS_OUT_LATER, true);
    producer
        .send(&topics.suppressions, &later.identifier_hash, &later)
        .await
        .expect("state published");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, answer) = ask(OPTS_OUT_LATER).await;
        assert_eq!(status, 200, "{answer}");
        if answer["opted_out"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a later opt-out reaches intake within 30 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    server.abort();
}
