//! The `segment_profiles` resolver: Segment's Profile API. The subject's profile is found by
//! one of its external ids (`GET /v1/spaces/{space_id}/collections/users/profiles/
//! {type}:{value}/external_ids`, the value percent-encoded as Segment asks, so a phone's `+`
//! travels as `%2B`), authenticated with the space's access token as the Basic-auth user name
//! and an empty password; its external ids of the configured types are added (100 a page,
//! following `cursor.next`). A `404` with the error code `not_found` is a subject Segment does
//! not know; `401`/`403` and other `4xx` are refusals; `429` and `5xx` are worth another
//! attempt (Segment asks for exponential backoff).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hush_connector_kit::http::{client, parse_retry_after, send, VendorAnswer};
use hush_connector_kit::secret::Secret;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{ConnectorError, RawValue};
use hush_contracts::events::IdentifierType;
use serde::Deserialize;

use crate::config::SegmentProfilesSettings;
use crate::{values_of, Answer, Candidate, Lookup, LookupError, SubjectIdentifier};

/// External ids asked for per page (the Profile API's largest `limit`).
const PAGE_SIZE: u32 = 100;
/// Most values tried to find the profile, over every `lookup_by` type.
const MAX_LOOKUPS: usize = 4;

/// A `segment_profiles` resolver.
pub(crate) struct SegmentProfilesLookup {
    http: reqwest::Client,
    profiles_url: String,
    token: Secret,
    lookup_by: Vec<(String, IdentifierType)>,
    external_ids: BTreeMap<String, IdentifierType>,
    include: String,
    max_pages: u32,
}

impl SegmentProfilesLookup {
    /// Checks the settings and reads the access token.
    pub(crate) fn new(
        id: &str,
        settings: &SegmentProfilesSettings,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let invalid = |field: &str, must: String| {
            ConfigError::Invalid(format!("resolver `{id}`: {field} {must}"))
        };
        let base_url = settings.base_url.trim().trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(invalid(
                "base_url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        let space_id = settings.space_id.trim();
        if space_id.is_empty()
            || !space_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "space_id",
                "must be the Unify space id (letters, digits, `_`, `-`)".into(),
            ));
        }
        if settings.external_ids.is_empty() {
            return Err(invalid(
                "external_ids",
                "must map at least one Segment external id type to an identifier type".into(),
            ));
        }
        if let Some(bad) = settings
            .external_ids
            .keys()
            .find(|t| !is_external_id_type(t))
        {
            return Err(invalid(
                "external_ids",
                format!("key `{bad}` is not a Segment external id type (e.g. user_id, ios.idfa)"),
            ));
        }
        if settings.lookup_by.is_empty() {
            return Err(invalid(
                "lookup_by",
                "must name at least one external id type, e.g. [\"email\"]".into(),
            ));
        }
        let mut lookup_by = Vec::new();
        for kind in &settings.lookup_by {
            let Some(identifier) = settings.external_ids.get(kind) else {
                return Err(invalid(
                    "lookup_by",
                    format!(
                        "names `{kind}`, which external_ids does not map to an identifier type"
                    ),
                ));
            };
            lookup_by.push((kind.clone(), *identifier));
        }
        if !(1..=20).contains(&settings.max_pages) {
            return Err(invalid("max_pages", "must be between 1 and 20".into()));
        }
        let token = settings
            .token_env
            .resolve(&format!("resolvers.{id}.token_env"))?;
        Ok(Self {
            http: client(&format!("resolver-{id}"), timeout)?,
            profiles_url: format!("{base_url}/v1/spaces/{space_id}/collections/users/profiles"),
            token: Secret::new(token),
            lookup_by,
            include: settings
                .external_ids
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
            external_ids: settings.external_ids.clone(),
            max_pages: settings.max_pages,
        })
    }

    /// The external ids of the profile found by `kind:value` (`None` when Segment has none),
    /// and notes on what was left out.
    async fn external_ids_of(
        &self,
        kind: &str,
        value: &str,
    ) -> Result<Option<(Vec<Candidate>, Vec<String>)>, LookupError> {
        let url = format!(
            "{}/{kind}:{}/external_ids",
            self.profiles_url,
            percent_encode(value)
        );
        let mut candidates = Vec::new();
        let mut other_encodings = 0;
        let mut next: Option<String> = None;
        for page in 1..=self.max_pages {
            let mut query = vec![
                ("limit", PAGE_SIZE.to_string()),
                ("include", self.include.clone()),
            ];
            if let Some(cursor) = next.take() {
                query.push(("next", cursor));
            }
            let request = self
                .http
                .get(&url)
                .query(&query)
                .basic_auth(self.token.expose(), Some(""));
            let answer = send(request).await.map_err(from_transport)?;
            let Some(list) = classify(&answer)? else {
                return Ok(None);
            };
            for external in list.data {
                let Some(identifier) = self.external_ids.get(&external.kind) else {
                    continue;
                };
                if external.encoding.as_deref().is_some_and(|e| e != "none") {
                    other_encodings += 1;
                    continue;
                }
                candidates.push(Candidate::Raw(*identifier, RawValue::new(external.id)));
            }
            match list.cursor {
                Some(cursor) if cursor.has_more && !cursor.next.is_empty() => {
                    if page == self.max_pages {
                        let mut notes = notes_for(other_encodings);
                        notes.push(format!(
                            "the profile has more external ids than the {} page(s) read \
                             (max_pages)",
                            self.max_pages
                        ));
                        return Ok(Some((candidates, notes)));
                    }
                    next = Some(cursor.next);
                }
                _ => break,
            }
        }
        Ok(Some((candidates, notes_for(other_encodings))))
    }
}

fn notes_for(other_encodings: usize) -> Vec<String> {
    if other_encodings == 0 {
        Vec::new()
    } else {
        vec![format!(
            "{other_encodings} external id(s) left out: encoded, not plain values"
        )]
    }
}

#[async_trait]
impl Lookup for SegmentProfilesLookup {
    async fn lookup(&self, known: &[SubjectIdentifier]) -> Result<Answer, LookupError> {
        let tries: Vec<(&str, &str)> = self
            .lookup_by
            .iter()
            .flat_map(|(kind, identifier)| {
                values_of(known, *identifier, true)
                    .into_iter()
                    .map(move |value| (kind.as_str(), value))
            })
            .take(MAX_LOOKUPS)
            .collect();
        if tries.is_empty() {
            return Ok(Answer::NotApplicable(format!(
                "looks profiles up by {}, of which the request carries no raw value",
                self.lookup_by
                    .iter()
                    .map(|(kind, identifier)| format!("{kind} ({})", identifier.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for (kind, value) in tries {
            if let Some((candidates, notes)) = self.external_ids_of(kind, value).await? {
                return Ok(Answer::Found { candidates, notes });
            }
        }
        Ok(Answer::Unknown)
    }
}

/// `GET …/external_ids` answer.
#[derive(Deserialize)]
struct ExternalIds {
    data: Vec<ExternalId>,
    #[serde(default)]
    cursor: Option<Cursor>,
}

#[derive(Deserialize)]
struct ExternalId {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct Cursor {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next: String,
}

/// The Profile API's error body: `{"error": {"code", "message"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
}

/// The error code of an answer, when it is a plain word (the message may quote the request,
/// so it is never kept).
fn error_code(body: &str) -> Option<String> {
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|body| body.error.code)
        .filter(|code| {
            !code.is_empty()
                && code.len() <= 64
                && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The external ids in one answer (`None` for a profile Segment does not have).
fn classify(answer: &VendorAnswer) -> Result<Option<ExternalIds>, LookupError> {
    let code = error_code(&answer.body);
    let described = |status: u16| match &code {
        Some(code) => format!("HTTP {status} {code}"),
        None => format!("HTTP {status}"),
    };
    match answer.status {
        200 => serde_json::from_str(&answer.body).map(Some).map_err(|e| {
            LookupError::Refused(format!(
                "the answer is not a list of external ids (line {}, column {})",
                e.line(),
                e.column()
            ))
        }),
        404 if code.as_deref() == Some("not_found") => Ok(None),
        401 | 403 => Err(LookupError::Refused(format!(
            "{}: Segment refused the access token",
            described(answer.status)
        ))),
        429 => Err(LookupError::Unavailable {
            detail: described(429),
            retry_after: answer.retry_after.as_deref().and_then(parse_retry_after),
        }),
        408 | 500..=599 => Err(LookupError::unavailable(described(answer.status))),
        status => Err(LookupError::Refused(described(status))),
    }
}

/// Percent-encodes every byte but the unreserved characters (`A-Z a-z 0-9 - . _ ~`), as the
/// Profile API asks for a value with other characters (a phone's `+`, an email's `@`).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether `kind` can be a Segment external id type in a URL path (`user_id`, `ios.idfa`).
fn is_external_id_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
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
    use crate::sim::{SegmentProfilesSim, SegmentProfilesSimConfig};
    use hush_contracts::config::SecretRef;
    use hush_contracts::identifiers::sha256_hex;
    use hush_sim_kit::Fault;

    const TOKEN_VAR: &str = "HUSH_TEST_RESOLUTION_SEGMENT_TOKEN";

    fn settings(base_url: &str, space_id: &str) -> SegmentProfilesSettings {
        SegmentProfilesSettings {
            base_url: base_url.to_owned(),
            space_id: space_id.to_owned(),
            token_env: SecretRef(TOKEN_VAR.into()),
            lookup_by: vec!["email".into(), "phone".into()],
            external_ids: BTreeMap::from([
                ("user_id".to_owned(), IdentifierType::CustomerId),
                ("email".to_owned(), IdentifierType::Email),
                ("phone".to_owned(), IdentifierType::Phone),
                ("anonymous_id".to_owned(), IdentifierType::CookieId),
            ]),
            max_pages: 3,
        }
    }

    async fn segment() -> (SegmentProfilesSim, SegmentProfilesLookup) {
        let config = SegmentProfilesSimConfig::default();
        std::env::set_var(TOKEN_VAR, &config.token);
        let space = config.space_id.clone();
        let sim = SegmentProfilesSim::start(config).await.unwrap();
        let lookup = SegmentProfilesLookup::new(
            "segment",
            &settings(&sim.base_url(), &space),
            Duration::from_secs(2),
        )
        .unwrap();
        (sim, lookup)
    }

    fn raw(kind: IdentifierType, value: &str) -> SubjectIdentifier {
        SubjectIdentifier {
            kind,
            sha256: sha256_hex(value),
            value: Some(RawValue::new(value)),
        }
    }

    #[tokio::test]
    async fn the_profile_found_by_email_gives_its_mapped_external_ids() {
        let (sim, lookup) = segment().await;
        sim.add_profile(&[
            ("email", "jane@example.com"),
            ("user_id", "cust-1001"),
            ("anonymous_id", "anon-1"),
            ("cross_domain_id", "x-1"),
        ]);
        let answer = lookup
            .lookup(&[raw(IdentifierType::Email, "jane@example.com")])
            .await
            .unwrap();
        let Answer::Found { candidates, notes } = answer else {
            panic!("{answer:?}")
        };
        assert!(notes.is_empty(), "{notes:?}");
        assert!(candidates.contains(&Candidate::Raw(
            IdentifierType::CustomerId,
            RawValue::new("cust-1001")
        )));
        assert!(candidates.contains(&Candidate::Raw(
            IdentifierType::CookieId,
            RawValue::new("anon-1")
        )));
        assert_eq!(
            candidates.len(),
            3,
            "cross_domain_id is not mapped: {candidates:?}"
        );
        let call = &sim.control().calls()[0];
        assert!(
            call.path.starts_with(&format!(
                "/v1/spaces/{}/collections/users/profiles/email:jane%40example.com/external_ids?",
                SegmentProfilesSimConfig::default().space_id
            )),
            "{}",
            call.path
        );
        assert!(call.path.contains("limit=100"), "{}", call.path);
    }

    #[tokio::test]
    async fn a_phone_is_looked_up_with_its_plus_encoded() {
        let (sim, lookup) = segment().await;
        sim.add_profile(&[("phone", "+14155550100"), ("user_id", "cust-7")]);
        let answer = lookup
            .lookup(&[raw(IdentifierType::Phone, "+14155550100")])
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Found { .. }), "{answer:?}");
        assert!(sim.control().calls()[0]
            .path
            .contains("/phone:%2B14155550100/"));
    }

    #[tokio::test]
    async fn many_external_ids_are_read_page_by_page_up_to_max_pages() {
        let (sim, lookup) = segment().await;
        let mut ids: Vec<(String, String)> = vec![("email".into(), "jane@example.com".into())];
        ids.extend((0..350).map(|n| ("anonymous_id".to_owned(), format!("anon-{n}"))));
        let ids: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        sim.add_profile(&ids);
        let Answer::Found { candidates, notes } = lookup
            .lookup(&[raw(IdentifierType::Email, "jane@example.com")])
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(sim.control().calls().len(), 3);
        assert_eq!(candidates.len(), 300);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("max_pages"), "{notes:?}");
    }

    #[tokio::test]
    async fn a_subject_segment_does_not_know_is_unknown() {
        let (sim, lookup) = segment().await;
        let answer = lookup
            .lookup(&[
                raw(IdentifierType::Email, "nobody@example.com"),
                raw(IdentifierType::Phone, "+14155550199"),
            ])
            .await;
        assert_eq!(answer, Ok(Answer::Unknown));
        assert_eq!(sim.control().calls().len(), 2, "email, then phone");
    }

    #[tokio::test]
    async fn hashes_alone_are_not_applicable() {
        let (sim, lookup) = segment().await;
        let hashed = SubjectIdentifier {
            kind: IdentifierType::Email,
            sha256: sha256_hex("jane@example.com"),
            value: None,
        };
        assert!(matches!(
            lookup.lookup(&[hashed]).await,
            Ok(Answer::NotApplicable(reason)) if reason.contains("email (EMAIL)")
        ));
        assert!(sim.control().calls().is_empty());
    }

    #[tokio::test]
    async fn a_wrong_token_or_space_is_refused_and_an_outage_is_unavailable() {
        let (sim, _) = segment().await;
        std::env::set_var("HUSH_TEST_RESOLUTION_SEGMENT_WRONG", "not-the-token");
        let mut wrong = settings(&sim.base_url(), "spa_other");
        wrong.token_env = SecretRef("HUSH_TEST_RESOLUTION_SEGMENT_WRONG".into());
        let lookup = SegmentProfilesLookup::new("segment", &wrong, Duration::from_secs(2)).unwrap();
        let refused = lookup
            .lookup(&[raw(IdentifierType::Email, "jane@example.com")])
            .await;
        assert_eq!(
            refused,
            Err(LookupError::Refused(
                "HTTP 401 authentication_error: Segment refused the access token".into()
            ))
        );
        let (sim, lookup) = segment().await;
        sim.control().inject(Fault::server_error());
        assert!(matches!(
            lookup.lookup(&[raw(IdentifierType::Email, "jane@example.com")]).await,
            Err(LookupError::Unavailable { detail, .. }) if detail == "HTTP 500"
        ));
        sim.control().inject(Fault::too_many_requests(2));
        assert!(matches!(
            lookup.lookup(&[raw(IdentifierType::Email, "jane@example.com")]).await,
            Err(LookupError::Unavailable { retry_after: Some(after), .. })
                if after == Duration::from_secs(2)
        ));
    }

    #[test]
    fn values_are_percent_encoded_beyond_the_unreserved_characters() {
        assert_eq!(
            percent_encode("jane+news@example.com"),
            "jane%2Bnews%40example.com"
        );
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(percent_encode("cust-1001_x.y~z"), "cust-1001_x.y~z");
    }

    #[test]
    fn settings_are_checked_at_start_up() {
        std::env::set_var(TOKEN_VAR, "t");
        let error = |change: &dyn Fn(&mut SegmentProfilesSettings)| {
            let mut settings = settings("https://profiles.segment.com", "spa_1");
            change(&mut settings);
            SegmentProfilesLookup::new("segment", &settings, Duration::from_secs(1))
                .err()
                .unwrap()
                .to_string()
        };
        assert!(error(&|s| s.lookup_by = vec!["ios.idfa".into()])
            .contains("lookup_by names `ios.idfa`"));
        assert!(error(&|s| s.space_id = "spa/1".into()).contains("space_id"));
        assert!(error(&|s| s.max_pages = 0).contains("max_pages"));
        assert!(error(&|s| {
            s.external_ids
                .insert("user id".into(), IdentifierType::CustomerId);
        })
        .contains("key `user id`"));
        assert!(
            error(&|s| s.token_env = SecretRef("HUSH_TEST_RESOLUTION_UNSET".into()))
                .contains("HUSH_TEST_RESOLUTION_UNSET")
        );
    }
}
