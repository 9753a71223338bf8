//! The configuration files the repository ships load into every service's configuration, so
//! the documented examples match what the binaries accept.

use std::path::{Path, PathBuf};

fn shipped(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn loads_everywhere(path: &Path) {
    use hush_runtime::config::load;
    let intake: hush_intake::service::Config = load(Some(path)).expect("intake config");
    let state: hush_state::service::Config = load(Some(path)).expect("state config");
    let auditor: hush_auditor::service::Config = load(Some(path)).expect("auditor config");
    let suppressor: hush_suppressor::config::Config = load(Some(path)).expect("suppressor config");
    let denylist: hush_denylist::Config = load(Some(path)).expect("deny-list config");
    let _: hush_runtime::config::CommonConfig = load(Some(path)).expect("cli config");
    let gate: hush_gate::service::Config = load(Some(path)).expect("gate config");
    gate.validate().expect("gate section valid");
    auditor.validate().expect("auditor config valid");
    assert_eq!(
        auditor.gate, gate.gate,
        "the auditor proves on the streams the gate watches"
    );
    hush_contracts::recipients::validate(&suppressor.recipients).expect("recipients valid");
    assert_eq!(
        auditor.recipients, suppressor.recipients,
        "one recipients list for all"
    );
    for recipient in &suppressor.recipients {
        if let Err(error) = hush_connectors::factory_for(recipient) {
            panic!("{error}");
        }
    }
    assert!(!intake.intake.listen.is_empty() && !state.state.listen.is_empty());
    assert!(!denylist.denylist.listen.is_empty());
    // A configured canary: its subjects are at configured recipients, its stream and topic are
    // the gate's, and its re-opt-in key parses (a generated one stands in for the secret).
    if intake.canary == hush_contracts::canary::CanarySection::default() {
        return;
    }
    if let Some(reopt_in) = &intake.canary.reopt_in {
        let key = hush_auth::keys::SigningKey::generate(&reopt_in.kid);
        std::env::set_var(&reopt_in.key_env.0, key.to_pem());
    }
    if let Err(error) = hush_canary::Canary::new(
        hush_canary::Target {
            intake_url: "http://intake".into(),
            auditor_url: "http://auditor".into(),
            api_key: None,
        },
        &intake.common,
        &gate.gate,
        &intake.canary,
        &suppressor.recipients,
    ) {
        panic!("{error}");
    }
}

#[test]
fn the_kubernetes_configuration_loads_into_every_service() {
    let path = shipped("deploy/k8s/hush.toml");
    loads_everywhere(&path);
    let config: hush_suppressor::config::Config = hush_runtime::config::load(Some(&path)).unwrap();
    // Every recipient has a suppressor Deployment.
    for recipient in &config.recipients {
        let manifest = shipped(&format!("deploy/k8s/suppressor-{}.yaml", recipient.id));
        let manifest = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|_| panic!("no {} for recipient {}", manifest.display(), recipient.id));
        assert!(manifest.contains(&format!("\"--connector\", \"{}\"", recipient.id)));
    }
}

#[test]
fn the_demo_base_configuration_loads_into_every_service() {
    loads_everywhere(&shipped("deploy/local/demo.toml"));
}
