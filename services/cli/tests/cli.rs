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
        .env("HUSH_API_KEY", &hush_tests::auth::test_auth().operator.key)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_api_key_the_cli_says_authentication_is_required() {
    let pipeline = Pipeline::start("cli-noauth", Options::default()).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(["report", "--auditor-url", &pipeline.auditor_url])
        .env_remove("HUSH_API_KEY")
        .output()
        .await
        .expect("hush runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("401") && err.contains("Authorization"),
        "{err}"
    );
}

#[tokio::test]
async fn keys_and_attest_make_credentials_intake_accepts() {
    let dir = std::env::temp_dir().join(format!("hush-cli-keys-{}", uuid::Uuid::new_v4()));
    let run = |args: Vec<String>| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hush"))
            .args(&args)
            .output()
            .expect("hush runs");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let key = run(vec![
        "keys".into(),
        "api-key".into(),
        "--client".into(),
        "portal".into(),
        "--scope".into(),
        "requests:delete".into(),
    ]);
    let secret = key.lines().next().unwrap().trim_start_matches("key: ");
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    assert!(key.contains(&format!("sha256 = \"{hash}\"")), "{key}");
    assert!(key.contains("scopes = [\"requests:delete\"]"), "{key}");
    run(vec![
        "keys".into(),
        "identity".into(),
        "--out".into(),
        dir.display().to_string(),
    ]);
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let token = run(vec![
        "attest".into(),
        "--key".into(),
        dir.join("identity.pem").display().to_string(),
        "--issuer".into(),
        "https://id.example".into(),
        "--email".into(),
        "Jane@Example.com".into(),
    ]);
    let config: hush_auth::config::AttestationConfig = toml::from_str(&format!(
        "issuer = \"https://id.example\"\njwks_file = \"{}\"",
        dir.join("jwks.json").display()
    ))
    .unwrap();
    let verifier = hush_auth::attestation::AttestationVerifier::new(&config, Default::default())
        .await
        .unwrap();
    let jane = hex::encode(Sha256::digest(b"jane@example.com"));
    let attested = verifier
        .verify(
            token.trim(),
            &[jane.as_str()],
            chrono::Utc::now().timestamp_millis(),
        )
        .expect("intake would accept it");
    assert_eq!(attested.method, "EMAIL_LINK");
}
