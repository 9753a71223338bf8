//! Cross-check against the IAB Tech Lab's own reference library, `@iabgpp/cmpapi` (the
//! JavaScript GPP encoder/decoder), pinned in `tests/reference/package.json`.
//!
//! Every string hush-iab writes for a set of signal combinations is decoded by
//! `tests/reference/decode.mjs`; each field Hush sets must decode to the value the crate
//! README's mapping table gives, the header must list the right section ids, and the library,
//! encoding the decoded values again from scratch, must produce exactly the same string.
//!
//! Requires Node.js: without `node` these tests fail (they do not skip). The package is
//! installed with `npm ci` into `tests/reference/node_modules` the first time, with the npm
//! cache in `$HOME/.cache/hush/npm`.

use hush_iab::{
    gpp_string, us_privacy_string, KnownChild, Mspa, OptOut, PrivacySignals, Section, UsNat,
    US_PRIVACY_NOT_APPLICABLE,
};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

const PACKAGE: &str = "@iabgpp/cmpapi";

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The package version package.json pins.
fn pinned_version(dir: &Path) -> String {
    read_json(&dir.join("package.json"))["dependencies"][PACKAGE]
        .as_str()
        .expect("package.json pins @iabgpp/cmpapi")
        .to_owned()
}

/// The package version in node_modules, if it is installed.
fn installed_version(dir: &Path) -> Option<String> {
    let manifest = dir.join("node_modules").join(PACKAGE).join("package.json");
    manifest
        .exists()
        .then(|| read_json(&manifest)["version"].as_str().map(str::to_owned))
        .flatten()
}

static INSTALL: Mutex<()> = Mutex::new(());

/// Fails unless `node` runs, then installs the pinned package with `npm ci` if it is missing
/// or another version is installed.
fn ensure_reference_decoder(dir: &Path) {
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`node --version` failed ({}): the IAB reference decoder cross-check needs Node.js \
             (18 or later) on PATH.\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run `node` ({e}): the IAB reference decoder cross-check needs Node.js \
             (18 or later) on PATH. Install it (e.g. `apt-get install nodejs npm`); this test \
             does not skip without it."
        ),
    }
    let pinned = pinned_version(dir);
    if installed_version(dir).as_deref() == Some(pinned.as_str()) {
        return;
    }
    let cache = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/hush/npm");
    let out = Command::new("npm")
        .arg("ci")
        .arg("--prefix")
        .arg(dir)
        .arg("--cache")
        .arg(&cache)
        .args(["--no-audit", "--no-fund"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `npm` ({e}): it is needed once to install {PACKAGE}@{pinned}")
        });
    assert!(
        out.status.success(),
        "`npm ci --prefix {}` failed ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        installed_version(dir).as_deref(),
        Some(pinned.as_str()),
        "npm ci did not install {PACKAGE}@{pinned}"
    );
}

/// Decodes each input with the reference library; one JSON object per input.
fn reference_decode(inputs: &[String]) -> Vec<Value> {
    let dir = reference_dir();
    ensure_reference_decoder(&dir);
    let mut child = Command::new("node")
        .arg("decode.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(inputs.join("\n").as_bytes())
        .expect("the decoder reads its input");
    let out = child.wait_with_output().expect("node runs");
    let stdout = String::from_utf8(out.stdout).expect("the decoder prints UTF-8");
    let results: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("the decoder prints JSON lines"))
        .collect();
    for result in &results {
        assert!(
            result.get("error").is_none(),
            "the reference library could not decode {}: {}",
            result["input"],
            result["error"]
        );
    }
    assert!(
        out.status.success(),
        "decode.mjs failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(results.len(), inputs.len(), "one result per input");
    results
}

/// The signal combinations checked: opted out of everything, of nothing, of one right
/// without a notice, and with a known child and each MSPA standing; GPC set, unset, unknown.
fn cases() -> Vec<(&'static str, PrivacySignals)> {
    vec![
        (
            "opted out of everything, with notice and GPC",
            PrivacySignals {
                sale_opted_out: true,
                sharing_opted_out: true,
                targeted_advertising_opted_out: true,
                sensitive_limited: true,
                gpc: Some(true),
                notice_given: true,
                ..PrivacySignals::default()
            },
        ),
        (
            "opted out of nothing, with notice, GPC checked and unset",
            PrivacySignals {
                gpc: Some(false),
                notice_given: true,
                ..PrivacySignals::default()
            },
        ),
        (
            "sale only, without notice, GPC unknown",
            PrivacySignals {
                sale_opted_out: true,
                ..PrivacySignals::default()
            },
        ),
        (
            "sharing and targeted advertising, consenting child, opt-out option mode, LSPA",
            PrivacySignals {
                sharing_opted_out: true,
                targeted_advertising_opted_out: true,
                gpc: Some(true),
                notice_given: true,
                lspa_covered: true,
                mspa: Mspa::OptOutOptionMode,
                known_child: KnownChild::UnderSixteenWithConsent,
                ..PrivacySignals::default()
            },
        ),
        (
            "limited sensitive data, child without consent, service provider mode",
            PrivacySignals {
                sensitive_limited: true,
                mspa: Mspa::ServiceProviderMode,
                known_child: KnownChild::UnderSixteenWithoutConsent,
                ..PrivacySignals::default()
            },
        ),
        (
            "consenting child who opted out of sale, with notice",
            PrivacySignals {
                sale_opted_out: true,
                notice_given: true,
                gpc: Some(false),
                known_child: KnownChild::UnderSixteenWithConsent,
                ..PrivacySignals::default()
            },
        ),
    ]
}

// The expected values below restate the README's mapping table independently of the
// crate's code, with the integers of the IAB specifications.

fn notice(s: &PrivacySignals) -> u8 {
    if s.notice_given {
        1
    } else {
        2
    }
}

fn opt_out(opted_out: bool, s: &PrivacySignals) -> u8 {
    match (opted_out, s.notice_given) {
        (true, _) => 1,
        (false, true) => 2,
        (false, false) => 0,
    }
}

fn child(s: &PrivacySignals, opted_out: bool) -> u8 {
    match (s.known_child, opted_out) {
        (KnownChild::NotKnown, _) => 0,
        (KnownChild::UnderSixteenWithoutConsent, _) => 1,
        (KnownChild::UnderSixteenWithConsent, true) => 1,
        (KnownChild::UnderSixteenWithConsent, false) => 2,
    }
}

fn mspa(s: &PrivacySignals) -> (u8, u8, u8) {
    match s.mspa {
        Mspa::NotCovered => (2, 0, 0),
        Mspa::OptOutOptionMode => (1, 1, 2),
        Mspa::ServiceProviderMode => (1, 2, 1),
    }
}

fn gpc_fields(s: &PrivacySignals, fields: &mut Map<String, Value>) {
    fields.insert("GpcSegmentIncluded".into(), json!(s.gpc.is_some()));
    if let Some(gpc) = s.gpc {
        fields.insert("GpcSegmentType".into(), json!(1));
        fields.insert("Gpc".into(), json!(gpc));
    }
}

fn expected_usnat(s: &PrivacySignals) -> Value {
    let (covered, opt_out_option, service_provider) = mspa(s);
    let any_opt_out = s.sale_opted_out || s.sharing_opted_out || s.targeted_advertising_opted_out;
    let mut fields = json!({
        "Version": 2,
        "SharingNotice": notice(s),
        "SaleOptOutNotice": notice(s),
        "SharingOptOutNotice": notice(s),
        "TargetedAdvertisingOptOutNotice": notice(s),
        "SensitiveDataProcessingOptOutNotice": notice(s),
        "SensitiveDataLimitUseNotice": notice(s),
        "SaleOptOut": opt_out(s.sale_opted_out, s),
        "SharingOptOut": opt_out(s.sharing_opted_out, s),
        "TargetedAdvertisingOptOut": opt_out(s.targeted_advertising_opted_out, s),
        "SensitiveDataProcessing": vec![1; 16],
        "KnownChildSensitiveDataConsents": [child(s, any_opt_out), child(s, any_opt_out), 0],
        "PersonalDataConsents": 1,
        "MspaCoveredTransaction": covered,
        "MspaOptOutOptionMode": opt_out_option,
        "MspaServiceProviderMode": service_provider,
    });
    gpc_fields(s, fields.as_object_mut().expect("an object"));
    fields
}

fn expected_usca(s: &PrivacySignals) -> Value {
    let (covered, opt_out_option, service_provider) = mspa(s);
    let mut fields = json!({
        "Version": 1,
        "SaleOptOutNotice": notice(s),
        "SharingOptOutNotice": notice(s),
        "SensitiveDataLimitUseNotice": notice(s),
        "SaleOptOut": opt_out(s.sale_opted_out, s),
        "SharingOptOut": opt_out(s.sharing_opted_out, s),
        "SensitiveDataProcessing": vec![opt_out(s.sensitive_limited, s); 9],
        "KnownChildSensitiveDataConsents": [
            child(s, s.sale_opted_out),
            child(s, s.sharing_opted_out),
        ],
        "PersonalDataConsents": 1,
        "MspaCoveredTransaction": covered,
        "MspaOptOutOptionMode": opt_out_option,
        "MspaServiceProviderMode": service_provider,
    });
    gpc_fields(s, fields.as_object_mut().expect("an object"));
    fields
}

fn expected_section(section: Section, s: &PrivacySignals) -> Value {
    match section {
        Section::UsNat => expected_usnat(s),
        Section::UsCa => expected_usca(s),
    }
}

/// Every expected field whose decoded value differs, as "Field: decoded ..., expected ...".
fn mismatches(decoded: &Value, expected: &Value) -> Vec<String> {
    expected
        .as_object()
        .expect("expected fields are an object")
        .iter()
        .filter(|(field, want)| decoded.get(field.as_str()) != Some(want))
        .map(|(field, want)| format!("{field}: decoded {}, expected {want}", decoded[field]))
        .collect()
}

/// Encodes every case with `sections`, decodes with the reference library, and checks the
/// header, every field, and that the library re-encodes the very same string.
fn check_sections(sections: &[Section]) {
    let cases = cases();
    let strings: Vec<String> = cases.iter().map(|(_, s)| gpp_string(s, sections)).collect();
    let decoded = reference_decode(&strings);
    let ids: Vec<u8> = sections.iter().map(|section| section.id()).collect();
    for (((name, signals), string), result) in cases.iter().zip(&strings).zip(&decoded) {
        assert_eq!(result["kind"], "gpp", "{name}: {string}");
        assert_eq!(
            result["headerSectionIds"],
            json!(ids),
            "{name}: header of {string}"
        );
        let found = result["sections"].as_object().expect("sections");
        assert_eq!(found.len(), sections.len(), "{name}: sections of {string}");
        for &section in sections {
            let fields = &result["sections"][section.api_prefix()];
            let wrong = mismatches(fields, &expected_section(section, signals));
            assert!(
                wrong.is_empty(),
                "{name}: {} of {string} decodes wrong:\n  {}",
                section.api_prefix(),
                wrong.join("\n  ")
            );
            assert_eq!(
                fields.get("GpcSegmentIncluded"),
                Some(&json!(signals.gpc.is_some())),
                "{name}: GPC sub-section of {string}"
            );
        }
        assert_eq!(
            result["reencoded"], *string,
            "{name}: the reference encoder writes the same values differently"
        );
    }
}

#[test]
fn usnat_decodes_as_encoded() {
    check_sections(&[Section::UsNat]);
}

#[test]
fn usca_decodes_as_encoded() {
    check_sections(&[Section::UsCa]);
}

#[test]
fn usnat_and_usca_together_decode_as_encoded() {
    check_sections(&[Section::UsNat, Section::UsCa]);
}

#[test]
fn us_privacy_strings_decode_as_encoded() {
    let cases = cases();
    let mut strings: Vec<String> = cases.iter().map(|(_, s)| us_privacy_string(s)).collect();
    strings.push(US_PRIVACY_NOT_APPLICABLE.to_owned());
    let decoded = reference_decode(&strings);
    let yn = |yes: bool| if yes { "Y" } else { "N" };
    for ((name, s), result) in cases.iter().zip(&decoded) {
        let expected = json!({
            "Version": 1,
            "Notice": yn(s.notice_given),
            "OptOutSale": yn(s.sale_opted_out || s.sharing_opted_out),
            "LspaCovered": yn(s.lspa_covered),
        });
        let wrong = mismatches(&result["fields"], &expected);
        assert!(wrong.is_empty(), "{name}: {}", wrong.join("; "));
        assert_eq!(result["reencoded"], result["input"], "{name}");
    }
    let not_applicable = decoded.last().expect("the last input");
    assert_eq!(
        not_applicable["fields"],
        json!({"Version": 1, "Notice": "-", "OptOutSale": "-", "LspaCovered": "-"})
    );
}

/// The comparison is not vacuous: a section with one wrong field, encoded and decoded by the
/// reference library, is caught, and by name.
#[test]
fn a_wrong_field_is_caught() {
    let (_, opted_out) = cases().remove(0);
    let mut wrong = UsNat::from_signals(&opted_out);
    wrong.sale_opt_out = OptOut::DidNotOptOut;
    let string = format!("DBABLA~{}", wrong.encode());
    let decoded = reference_decode(&[string]);
    let found = mismatches(
        &decoded[0]["sections"]["usnat"],
        &expected_usnat(&opted_out),
    );
    assert_eq!(found, ["SaleOptOut: decoded 2, expected 1"]);
}
