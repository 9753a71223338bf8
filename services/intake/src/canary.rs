//! Canary requests: a submission that names only synthetic identities (the `[canary]` block's
//! configured identities, or a device or cookie id with its fresh-id prefix) is about no real
//! person. Intake records it with `source_system` [`CANARY_SOURCE_SYSTEM`], which the auditor
//! turns into a `synthetic` record left out of the 11 CCR 7102 report and of its counts.

use hush_contracts::canary::{SyntheticIdentities, CANARY_SOURCE_SYSTEM};
use hush_contracts::events::PrivacyRequest;

use crate::submission::Submission;

/// Whether every identifier of `submission` is synthetic (and there is at least one).
pub fn is_synthetic(submission: &Submission, synthetic: &SyntheticIdentities) -> bool {
    !submission.identifiers.is_empty()
        && submission.identifiers.iter().all(|identifier| {
            synthetic.is_synthetic(
                identifier.kind,
                identifier.value.as_deref(),
                identifier.sha256.as_deref(),
            )
        })
}

/// Marks `request` as captured by the canary.
pub fn mark(request: &mut PrivacyRequest) {
    request.source_system = CANARY_SOURCE_SYSTEM.to_owned();
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::canary::CanarySection;

    fn synthetic() -> SyntheticIdentities {
        let section: CanarySection = toml::from_str(
            r#"
            [[subjects]]
            recipient = "hubspot"
            identifiers = [{ type = "EMAIL", value = "canary@hush-canary.example" }]
            "#,
        )
        .unwrap();
        SyntheticIdentities::new(&section).unwrap()
    }

    fn submission(identifiers: &str) -> Submission {
        crate::submission::parse(
            format!(r#"{{"kind":"OPT_OUT_SALE_SHARE","identifiers":{identifiers}}}"#).as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn only_a_submission_naming_synthetic_identities_alone_is_the_canarys() {
        let synthetic = synthetic();
        let canary = r#"{"type":"EMAIL","value":"Canary@hush-canary.example"}"#;
        let fresh = r#"{"type":"COOKIE_ID","value":"hush-canary-7f3a"}"#;
        let real = r#"{"type":"EMAIL","value":"jane@example.com"}"#;
        assert!(is_synthetic(
            &submission(&format!("[{canary},{fresh}]")),
            &synthetic
        ));
        assert!(
            !is_synthetic(&submission(&format!("[{canary},{real}]")), &synthetic),
            "one real identifier makes the request a consumer's"
        );
        assert!(!is_synthetic(&submission("[]"), &synthetic));
    }

    #[test]
    fn nothing_is_synthetic_without_a_canary_configured_but_fresh_ids() {
        let synthetic = SyntheticIdentities::new(&CanarySection::default()).unwrap();
        assert!(!is_synthetic(
            &submission(r#"[{"type":"EMAIL","value":"canary@hush-canary.example"}]"#),
            &synthetic
        ));
    }
}
