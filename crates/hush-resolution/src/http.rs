//! The `http` resolver: the business's own customer service, asked `GET <url>` with one
//! identifier's SHA-256 filled into the URL template (only hashes travel in URLs). The service
//! answers `200 {"identifiers": [{"type": "CUSTOMER_ID", "value": "…"}, {"type": "MAID",
//! "sha256": "…"}]}` for a subject it knows and `404` for one it does not; `401`/`403` and
//! other `4xx` are refusals, `408`, `429` (with its `Retry-After`) and `5xx` are worth another
//! attempt.

use std::time::Duration;

use async_trait::async_trait;
use hush_connector_kit::http::{client, parse_retry_after, send, VendorAnswer};
use hush_connector_kit::secret::Secret;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{ConnectorError, RawValue};
use hush_contracts::events::IdentifierType;
use serde::Deserialize;

use crate::config::HttpSettings;
use crate::{
    type_name, values_of, Answer, Candidate, Lookup, LookupError, SubjectIdentifier,
    IDENTIFIER_TYPES,
};

/// Most values of the looked-up type asked about for one request (one call each).
const MAX_LOOKUPS: usize = 4;

/// An `http` resolver.
pub(crate) struct HttpLookup {
    http: reqwest::Client,
    url: String,
    placeholder: String,
    kind: IdentifierType,
    token: Option<Secret>,
}

impl HttpLookup {
    /// Checks the URL template (http or https, exactly one `{<type>_sha256}` placeholder) and
    /// reads the token.
    pub(crate) fn new(
        id: &str,
        settings: &HttpSettings,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let invalid = |must: String| ConfigError::Invalid(format!("resolver `{id}`: url {must}"));
        let url = settings.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("must be an http:// or https:// URL".into()));
        }
        let placeholders: Vec<&str> = url
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        let [name] = placeholders.as_slice() else {
            return Err(invalid(format!(
                "must hold exactly one placeholder such as {{email_sha256}} (found {})",
                placeholders.len()
            )));
        };
        let kind = IDENTIFIER_TYPES
            .into_iter()
            .find(|kind| format!("{}_sha256", type_name(*kind)) == *name)
            .ok_or_else(|| {
                invalid(format!(
                    "placeholder {{{name}}} is not one of {}: only identifier hashes go into URLs",
                    IDENTIFIER_TYPES
                        .iter()
                        .map(|k| format!("{{{}_sha256}}", type_name(*k)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        reqwest::Url::parse(&url.replace(&format!("{{{name}}}"), &"0".repeat(64)))
            .map_err(|e| invalid(format!("is not a valid URL: {e}")))?;
        let token = settings
            .token_env
            .as_ref()
            .map(|var| var.resolve(&format!("resolvers.{id}.token_env")))
            .transpose()?
            .map(Secret::new);
        Ok(Self {
            http: client(&format!("resolver-{id}"), timeout)?,
            url: url.to_owned(),
            placeholder: format!("{{{name}}}"),
            kind,
            token,
        })
    }

    async fn ask(&self, sha256: &str) -> Result<Option<Vec<Candidate>>, LookupError> {
        let mut request = self
            .http
            .get(self.url.replace(&self.placeholder, sha256))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let answer = send(request).await.map_err(from_transport)?;
        classify(&answer)
    }
}

#[async_trait]
impl Lookup for HttpLookup {
    async fn lookup(&self, known: &[SubjectIdentifier]) -> Result<Answer, LookupError> {
        let hashes = values_of(known, self.kind, false);
        if hashes.is_empty() {
            return Ok(Answer::NotApplicable(format!(
                "looks up by {}, which the request does not carry",
                self.kind.as_str()
            )));
        }
        let mut notes = Vec::new();
        if hashes.len() > MAX_LOOKUPS {
            notes.push(format!(
                "asked about the first {MAX_LOOKUPS} of {} {} values",
                hashes.len(),
                self.kind.as_str()
            ));
        }
        let mut candidates = Vec::new();
        let mut known_subject = false;
        for sha256 in hashes.into_iter().take(MAX_LOOKUPS) {
            if let Some(found) = self.ask(sha256).await? {
                known_subject = true;
                candidates.extend(found);
            }
        }
        Ok(if known_subject {
            Answer::Found { candidates, notes }
        } else {
            Answer::Unknown
        })
    }
}

/// The documented answer of a customer service.
#[derive(Deserialize)]
struct LookupAnswer {
    identifiers: Vec<AnsweredIdentifier>,
}

#[derive(Deserialize)]
struct AnsweredIdentifier {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
}

/// The identifiers in a service's answer (`None` for a subject it does not know).
fn classify(answer: &VendorAnswer) -> Result<Option<Vec<Candidate>>, LookupError> {
    match answer.status {
        200 => {}
        404 => return Ok(None),
        408 | 500..=599 => return Err(LookupError::unavailable(format!("HTTP {}", answer.status))),
        429 => {
            return Err(LookupError::Unavailable {
                detail: "HTTP 429".into(),
                retry_after: answer.retry_after.as_deref().and_then(parse_retry_after),
            })
        }
        status => return Err(LookupError::Refused(format!("HTTP {status}"))),
    }
    // serde_json's messages may quote the offending value: only its position is kept.
    let parsed: LookupAnswer = serde_json::from_str(&answer.body).map_err(|e| {
        LookupError::Refused(format!(
            "the answer is not {{\"identifiers\": [{{\"type\", \"value\" or \"sha256\"}}]}} \
             (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let mut candidates = Vec::new();
    for (index, identifier) in parsed.identifiers.into_iter().enumerate() {
        let kind = IDENTIFIER_TYPES
            .into_iter()
            .find(|kind| kind.as_str() == identifier.kind)
            .ok_or_else(|| {
                LookupError::Refused(format!(
                    "identifiers[{index}].type is not an identifier type Hush knows"
                ))
            })?;
        candidates.push(match (identifier.value, identifier.sha256) {
            (Some(value), None) => Candidate::Raw(kind, RawValue::new(value)),
            (None, Some(sha256)) => Candidate::Sha256(kind, sha256),
            _ => {
                return Err(LookupError::Refused(format!(
                    "identifiers[{index}] must hold exactly one of value and sha256"
                )))
            }
        });
    }
    Ok(Some(candidates))
}

/// A transport failure (the text never holds the URL) is worth another attempt.
fn from_transport(error: ConnectorError) -> LookupError {
    LookupError::unavailable(match error {
        ConnectorError::Transient(detail) | ConnectorError::Permanent(detail) => detail,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::CustomerServiceSim;
    use hush_contracts::identifiers::sha256_hex;
    use hush_sim_kit::Fault;

    fn settings(url: &str, token_env: Option<&str>) -> HttpSettings {
        HttpSettings {
            url: url.to_owned(),
            token_env: token_env.map(|v| hush_contracts::config::SecretRef(v.to_owned())),
        }
    }

    fn email(value: &str) -> SubjectIdentifier {
        SubjectIdentifier {
            kind: IdentifierType::Email,
            sha256: sha256_hex(value),
            value: Some(RawValue::new(value)),
        }
    }

    const TOKEN_VAR: &str = "HUSH_TEST_RESOLUTION_HTTP_TOKEN";

    async fn service() -> (CustomerServiceSim, HttpLookup) {
        std::env::set_var(TOKEN_VAR, "crm-token");
        let sim = CustomerServiceSim::start("crm-token").await.unwrap();
        let lookup = HttpLookup::new(
            "crm",
            &settings(
                &format!("{}/lookup?email_sha256={{email_sha256}}", sim.base_url()),
                Some(TOKEN_VAR),
            ),
            Duration::from_secs(2),
        )
        .unwrap();
        (sim, lookup)
    }

    #[tokio::test]
    async fn a_known_subject_is_asked_by_hash_and_answers_its_identifiers() {
        let (sim, lookup) = service().await;
        sim.add_subject(
            &sha256_hex("jane@example.com"),
            serde_json::json!([{"type": "CUSTOMER_ID", "value": "cust-1001"}]),
        );
        let answer = lookup.lookup(&[email("jane@example.com")]).await.unwrap();
        let Answer::Found { candidates, .. } = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(
            candidates,
            [Candidate::Raw(
                IdentifierType::CustomerId,
                RawValue::new("cust-1001")
            )]
        );
        let calls = sim.control().calls();
        assert_eq!(
            calls[0].path,
            format!("/lookup?email_sha256={}", sha256_hex("jane@example.com"))
        );
        assert!(!calls[0].path.contains("jane"), "only the hash is sent");
        assert_eq!(calls[0].header("authorization"), Some("Bearer crm-token"));
    }

    #[tokio::test]
    async fn an_unknown_subject_is_a_404() {
        let (_sim, lookup) = service().await;
        assert_eq!(
            lookup.lookup(&[email("nobody@example.com")]).await,
            Ok(Answer::Unknown)
        );
    }

    #[tokio::test]
    async fn a_request_without_the_looked_up_type_is_not_applicable_and_calls_nothing() {
        let (sim, lookup) = service().await;
        let cookie = SubjectIdentifier {
            kind: IdentifierType::CookieId,
            sha256: sha256_hex("c-1"),
            value: Some(RawValue::new("c-1")),
        };
        assert!(matches!(
            lookup.lookup(&[cookie]).await,
            Ok(Answer::NotApplicable(reason)) if reason.contains("EMAIL")
        ));
        assert!(sim.control().calls().is_empty());
    }

    #[tokio::test]
    async fn server_errors_and_rate_limits_are_worth_another_attempt() {
        let (sim, lookup) = service().await;
        sim.control().inject(Fault::server_error());
        assert_eq!(
            lookup.lookup(&[email("jane@example.com")]).await,
            Err(LookupError::unavailable("HTTP 500"))
        );
        sim.control().inject(Fault::too_many_requests(3));
        assert_eq!(
            lookup.lookup(&[email("jane@example.com")]).await,
            Err(LookupError::Unavailable {
                detail: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(3)),
            })
        );
    }

    #[tokio::test]
    async fn a_wrong_token_is_a_refusal() {
        let sim = CustomerServiceSim::start("the-right-token").await.unwrap();
        let lookup = HttpLookup::new(
            "crm",
            &settings(
                &format!("{}/lookup?h={{email_sha256}}", sim.base_url()),
                None,
            ),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(
            lookup.lookup(&[email("jane@example.com")]).await,
            Err(LookupError::Refused("HTTP 401".into()))
        );
    }

    #[tokio::test]
    async fn an_unreachable_service_is_unavailable_without_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let lookup = HttpLookup::new(
            "crm",
            &settings(&format!("http://{addr}/lookup?h={{email_sha256}}"), None),
            Duration::from_secs(2),
        )
        .unwrap();
        let Err(LookupError::Unavailable { detail, .. }) =
            lookup.lookup(&[email("jane@example.com")]).await
        else {
            panic!("expected unavailable")
        };
        assert!(
            !detail.contains(&sha256_hex("jane@example.com")),
            "{detail}"
        );
        assert!(!detail.contains("/lookup"), "{detail}");
    }

    fn answer(status: u16, body: &str) -> VendorAnswer {
        VendorAnswer {
            status,
            retry_after: None,
            rate_limit_reset: None,
            body: body.to_owned(),
        }
    }

    #[test]
    fn an_answer_hush_cannot_read_is_refused_without_quoting_it() {
        let error = classify(&answer(200, r#"{"ids": ["jane@example.com"]}"#)).unwrap_err();
        let LookupError::Refused(text) = error else {
            panic!()
        };
        assert!(text.contains("line 1"), "{text}");
        assert!(!text.contains("jane"), "{text}");
        let unknown_type = classify(&answer(
            200,
            r#"{"identifiers": [{"type": "SSN", "value": "078-05-1120"}]}"#,
        ))
        .unwrap_err();
        assert_eq!(
            unknown_type,
            LookupError::Refused("identifiers[0].type is not an identifier type Hush knows".into())
        );
        let both = classify(&answer(
            200,
            r#"{"identifiers": [{"type": "EMAIL", "value": "a@b.co", "sha256": "ab"}]}"#,
        ))
        .unwrap_err();
        assert!(matches!(both, LookupError::Refused(t) if t.contains("exactly one")));
    }

    #[test]
    fn the_url_template_is_checked_at_start_up() {
        let error = |url: &str| {
            HttpLookup::new("crm", &settings(url, None), Duration::from_secs(1))
                .err()
                .unwrap()
                .to_string()
        };
        assert!(error("ftp://x/{email_sha256}").contains("http:// or https://"));
        assert!(error("https://x/lookup").contains("exactly one placeholder"));
        assert!(error("https://x/{email}").contains("only identifier hashes"));
        assert!(error("https://x/{email_sha256}/{phone_sha256}").contains("found 2"));
        let missing = HttpLookup::new(
            "crm",
            &settings(
                "https://x/{email_sha256}",
                Some("HUSH_TEST_RESOLUTION_SURELY_UNSET"),
            ),
            Duration::from_secs(1),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            missing.contains("HUSH_TEST_RESOLUTION_SURELY_UNSET"),
            "{missing}"
        );
    }
}
