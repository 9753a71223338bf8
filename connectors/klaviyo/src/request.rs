//! Pure functions from suppression work to Klaviyo JSON:API bodies: who the subject is
//! (raw emails, E.164 phone numbers), the suppression job body cut to Klaviyo's 100 emails a
//! job, and one Data Privacy deletion job per identifier. No I/O.

use hush_connector_kit::contacts::{raw_lookups, OnlyHashed};
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use serde_json::{json, Value};

/// Most emails one bulk suppression job may carry (documented "Email address per request
/// limit: 100").
pub const MAX_SUPPRESSION_EMAILS: usize = 100;

/// One way of naming a profile to Klaviyo's Data Privacy API and profile filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProfileKey {
    /// `email`, lowercase.
    Email(String),
    /// `phone_number`, E.164 as intake normalised it.
    Phone(String),
}

impl ProfileKey {
    /// The profile attribute this key names.
    pub fn attribute(&self) -> &'static str {
        match self {
            ProfileKey::Email(_) => "email",
            ProfileKey::Phone(_) => "phone_number",
        }
    }

    /// The raw value.
    pub fn value(&self) -> &str {
        match self {
            ProfileKey::Email(value) | ProfileKey::Phone(value) => value,
        }
    }
}

/// The subject's keys of the given identifier kinds: `Ok(empty)` when the request names none
/// of them, an error when it names them but only hashed (Klaviyo finds profiles by the raw
/// value, so intake must keep it encrypted for this recipient).
pub fn keys_of(
    work: &SuppressionWork,
    kinds: &[IdentifierType],
) -> Result<Vec<ProfileKey>, String> {
    raw_lookups(work, kinds, |kind, raw| match kind {
        IdentifierType::Email => ProfileKey::Email(raw.to_lowercase()),
        _ => ProfileKey::Phone(raw.to_owned()),
    })
    .map_err(|OnlyHashed| {
        format!(
            "request {}: its identifiers Klaviyo can match have no raw value; Klaviyo finds \
             profiles by email address or phone number, so intake must keep them (encrypted) \
             for this recipient",
            work.request_id
        )
    })
}

/// Body of `POST /api/profile-suppression-bulk-create-jobs` for these emails.
pub fn suppression_job_body(emails: &[&str]) -> Value {
    let profiles: Vec<Value> = emails
        .iter()
        .map(|email| json!({"type": "profile", "attributes": {"email": email}}))
        .collect();
    json!({"data": {
        "type": "profile-suppression-bulk-create-job",
        "attributes": {"profiles": {"data": profiles}}
    }})
}

/// Body of `POST /api/data-privacy-deletion-jobs` for one identifier (Klaviyo refuses more).
pub fn deletion_job_body(key: &ProfileKey) -> Value {
    json!({"data": {
        "type": "data-privacy-deletion-job",
        "attributes": {"profile": {"data": {
            "type": "profile",
            "attributes": {key.attribute(): key.value()}
        }}}
    }})
}

/// The `filter` query of `GET /api/profiles` finding the profiles `key` names.
pub fn profile_filter(key: &ProfileKey) -> String {
    let escaped = key.value().replace('\\', "\\\\").replace('"', "\\\"");
    format!("equals({},\"{escaped}\")", key.attribute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{email, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;

    const BOTH: [IdentifierType; 2] = [IdentifierType::Email, IdentifierType::Phone];

    #[test]
    fn keys_are_raw_lowercase_emails_and_phones_without_repeats() {
        let request = work(RequestKind::Delete)
            .with(with_raw(
                IdentifierType::Email,
                "Sarah.Mason@Klaviyo-Demo.com",
            ))
            .with(with_raw(
                IdentifierType::Email,
                "sarah.mason@klaviyo-demo.com",
            ))
            .with(with_raw(IdentifierType::Phone, "+15005550006"))
            .with(with_raw(IdentifierType::CustomerId, "u-1"));
        assert_eq!(
            keys_of(&request, &BOTH).unwrap(),
            vec![
                ProfileKey::Email("sarah.mason@klaviyo-demo.com".into()),
                ProfileKey::Phone("+15005550006".into())
            ]
        );
        assert_eq!(keys_of(&work(RequestKind::Delete), &BOTH), Ok(vec![]));
        let hashed = work(RequestKind::Delete).with(email("a@example.com"));
        assert!(keys_of(&hashed, &BOTH)
            .unwrap_err()
            .contains("no raw value"));
    }

    #[test]
    fn bodies_follow_the_documented_json_api_shapes() {
        assert_eq!(
            suppression_job_body(&["matt-kemp@klaviyo-demo.com"]),
            json!({"data": {"type": "profile-suppression-bulk-create-job", "attributes": {"profiles": {"data": [
                {"type": "profile", "attributes": {"email": "matt-kemp@klaviyo-demo.com"}}
            ]}}}})
        );
        assert_eq!(
            deletion_job_body(&ProfileKey::Phone("+15005550006".into())),
            json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
                "type": "profile", "attributes": {"phone_number": "+15005550006"}
            }}}}})
        );
        assert_eq!(
            profile_filter(&ProfileKey::Email("a\"b@example.com".into())),
            "equals(email,\"a\\\"b@example.com\")"
        );
    }
}
