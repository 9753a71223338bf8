//! The `hush` binary against a running pipeline (real broker and registry): submit and wait,
//! status, the evidence bundle with its digest, the report, and a clear error for an unknown id.

use hush_tests::pipeline::{Options, Pipeline};
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn hush(pipeline: &Pipeline, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(args)
        .args([
            "--intake-url",
            &pipeline.intake_url,
            "--auditor-url",
            &pipeline.auditor_url,
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("hush runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_status_evidence_and_report_from_the_command_line() {
    let pipeline = Pipeline::start("cli", Options::default()).await;
    pipeline.hubspot.add_contact("cli.user@example.com");

    let (ok, out, err) = hush(
        &pipeline,
        &["submit", "--email", "cli.user@example.com", "--wait"],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let receipt: Value =
        serde_json::from_str(&out[..out.find("\nrequest ").expect("status after the receipt")])
            .expect("the receipt is JSON");
    let id = receipt["request_id"].as_str().unwrap().to_owned();
    assert!(
        out.contains("partner-webhook") && out.contains("NOTIFIED"),
        "{out}"
    );
    assert!(out.contains("hubspot") && out.contains("FLAGGED"), "{out}");

    let (ok, out, _) = hush(&pipeline, &["status", &id]).await;
    assert!(
        ok && out.contains(&id) && out.contains("deadline rule: 11 CCR 7026(f)"),
        "{out}"
    );

    let (ok, out, _) = hush(&pipeline, &["evidence", &id]).await;
    assert!(ok);
    let bundle: Value = serde_json::from_str(&out).expect("evidence is JSON");
    assert_eq!(bundle["bundle"], "hush.evidence.v1");
    assert_eq!(bundle["record"]["request_id"], id.as_str());
    let digest = hex::encode(Sha256::digest(
        serde_json::to_vec(&bundle["record"]).unwrap(),
    ));
    assert_eq!(
        bundle["record_sha256"],
        digest.as_str(),
        "the digest covers the record"
    );

    let (ok, out, _) = hush(&pipeline, &["report", "--csv"]).await;
    assert!(ok);
    assert!(
        out.starts_with("kind,received,complied_whole,complied_part,denied,median_days,mean_days"),
        "{out}"
    );
    assert!(out.contains("OPT_OUT_SALE_SHARE,1,1,0,0,"), "{out}");

    let unknown = uuid::Uuid::new_v4().to_string();
    let (ok, _, err) = hush(&pipeline, &["status", &unknown]).await;
    assert!(!ok, "an unknown request is an error");
    assert!(err.contains("HTTP 404"), "{err}");
}
