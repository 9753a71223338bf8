//! Identity resolution in intake, between validation and publish: the configured resolvers
//! ([`hush_resolution`]) expand the request's identifiers, and what they find is hashed and,
//! for the kinds kept raw, encrypted exactly as the identifiers the consumer gave
//! ([`crate::submission::seal`]). Each resolver's provenance is recorded on the request. The
//! subject key stays the one the consumer's own identifiers give, so a retried submission lands
//! on the same partition whether or not a resolver answered the second time.

use hush_contracts::connector::RawValue;
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{Identifier, IdentifierType, PrivacyRequest};
use hush_contracts::identifiers::normalise;
use hush_resolution::{Resolvers, SubjectIdentifier};

use crate::submission::{seal, Submission};

/// The normalised raw value of each submitted identifier, in order (`None` for one given as a
/// hash, or one validation will refuse). Taken before validation consumes the submission.
pub fn given_values(submission: &Submission) -> Vec<Option<RawValue>> {
    submission
        .identifiers
        .iter()
        .map(|identifier| {
            let value = identifier.value.as_deref()?;
            normalise(identifier.kind, value).ok().map(RawValue::new)
        })
        .collect()
}

/// Runs `resolvers` on `request`, whose identifiers are the validated forms of the
/// submission's (`given` holds their raw values, in the same order), and adds what they find,
/// sealed as intake seals its own (`keep_raw`, `cipher`), and their provenance. Never fails: an
/// unreachable resolver is recorded as skipped.
pub async fn expand(
    resolvers: &Resolvers,
    keep_raw: &[IdentifierType],
    cipher: &FieldCipher,
    request: &mut PrivacyRequest,
    given: Vec<Option<RawValue>>,
) {
    if resolvers.is_empty() {
        return;
    }
    let subject: Vec<SubjectIdentifier> = request
        .identifiers
        .iter()
        .zip(given.into_iter().chain(std::iter::repeat(None)))
        .map(|(identifier, value)| SubjectIdentifier {
            kind: identifier.kind,
            sha256: identifier.sha256.clone(),
            value,
        })
        .collect();
    let resolution = resolvers.resolve(&subject).await;
    for found in resolution.found {
        request.identifiers.push(match found.value {
            Some(value) => seal(found.kind, value.expose(), keep_raw, cipher),
            None => Identifier {
                kind: found.kind,
                sha256: found.sha256,
                encrypted_value: None,
            },
        });
    }
    request.resolution = resolution.steps;
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hush_contracts::events::ResolutionOutcome;
    use hush_contracts::identifiers::sha256_hex;
    use hush_resolution::sim::CustomerServiceSim;
    use hush_resolution::ResolverConfig;

    fn cipher() -> FieldCipher {
        FieldCipher::from_base64_key(&base64::engine::general_purpose::STANDARD.encode([5u8; 32]))
            .unwrap()
    }

    fn request(body: &str, cipher: &FieldCipher) -> (PrivacyRequest, Vec<Option<RawValue>>) {
        let submission = crate::submission::parse(body.as_bytes()).unwrap();
        let given = given_values(&submission);
        let request = crate::submission::into_request(
            submission,
            crate::submission::Receipt {
                request_id: "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into(),
                received_at: 1_790_000_000_000,
                default_jurisdiction: "US-CA",
                keep_raw: &[IdentifierType::Email, IdentifierType::CustomerId],
                cipher,
                source_system: "intake",
                attestation: None,
            },
        )
        .unwrap();
        (request, given)
    }

    async fn customer_service() -> (CustomerServiceSim, Resolvers) {
        std::env::set_var("HUSH_TEST_INTAKE_CRM_TOKEN", "crm-token");
        let sim = CustomerServiceSim::start("crm-token").await.unwrap();
        #[derive(serde::Deserialize)]
        struct File {
            resolvers: Vec<ResolverConfig>,
        }
        let file: File = toml::from_str(&format!(
            r#"
            [[resolvers]]
            id = "crm"
            kind = "http"
            url = "{}/lookup?email_sha256={{email_sha256}}"
            token_env = "HUSH_TEST_INTAKE_CRM_TOKEN"
            "#,
            sim.base_url()
        ))
        .unwrap();
        (sim, Resolvers::build(&file.resolvers).unwrap())
    }

    #[tokio::test]
    async fn found_identifiers_are_sealed_like_given_ones_with_their_provenance() {
        let (sim, resolvers) = customer_service().await;
        sim.add_subject(
            &sha256_hex("jane.doe@example.com"),
            serde_json::json!([
                {"type": "CUSTOMER_ID", "value": " cust-1001 "},
                {"type": "MAID", "sha256": sha256_hex("maid-1")}
            ]),
        );
        let cipher = cipher();
        let (mut request, given) = request(
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"Jane.Doe@example.com"}]}"#,
            &cipher,
        );
        let subject_key = request.subject_key.clone();
        expand(
            &resolvers,
            &[IdentifierType::Email, IdentifierType::CustomerId],
            &cipher,
            &mut request,
            given,
        )
        .await;
        assert_eq!(request.identifiers.len(), 3);
        let customer = &request.identifiers[1];
        assert_eq!(
            (customer.kind, customer.sha256.as_str()),
            (IdentifierType::CustomerId, sha256_hex("cust-1001").as_str())
        );
        let sealed = customer.encrypted_value.as_deref().unwrap();
        assert_eq!(
            cipher.decrypt(sealed, &customer.sha256).unwrap(),
            "cust-1001"
        );
        let maid = &request.identifiers[2];
        assert_eq!(
            (maid.kind, maid.encrypted_value.as_deref()),
            (IdentifierType::Maid, None)
        );
        assert_eq!(request.subject_key, subject_key, "the subject key stays");
        let step = &request.resolution[0];
        assert_eq!(
            (step.resolver.as_str(), step.outcome),
            ("crm", ResolutionOutcome::Resolved)
        );
        assert_eq!(step.identifiers.len(), 2);
    }

    #[tokio::test]
    async fn without_resolvers_the_request_is_left_as_it_is() {
        let cipher = cipher();
        let (mut request, given) = request(
            r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"a@b.co"}]}"#,
            &cipher,
        );
        let before = request.clone();
        expand(&Resolvers::none(), &[], &cipher, &mut request, given).await;
        assert_eq!(request, before);
    }

    #[test]
    fn given_values_are_normalised_and_hashes_have_none() {
        let submission = crate::submission::parse(
            br#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[
                {"type":"EMAIL","value":" Jane.Doe@Example.com"},
                {"type":"PHONE","sha256":"0000000000000000000000000000000000000000000000000000000000000000"},
                {"type":"PHONE","value":"+1 415 555 0100"}]}"#,
        )
        .unwrap();
        let values: Vec<Option<String>> = given_values(&submission)
            .into_iter()
            .map(|v| v.map(|v| v.expose().to_owned()))
            .collect();
        assert_eq!(
            values,
            [
                Some("jane.doe@example.com".to_owned()),
                None,
                Some("+14155550100".to_owned())
            ]
        );
    }
}
