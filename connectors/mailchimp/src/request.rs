//! Pure functions from suppression work to Mailchimp Marketing API calls: who the subject is
//! (raw, lowercase emails), the subscriber hash that names a member in every path, and the
//! bodies of the status update and the tag call. No I/O.

use hush_connector_kit::contacts::{raw_lookups, OnlyHashed};
use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use md5::{Digest, Md5};
use serde_json::{json, Value};

/// The member status an opt-out sets.
pub const UNSUBSCRIBED: &str = "unsubscribed";

/// The subject's email addresses, trimmed, lowercase and without repeats: `Ok(empty)` when the
/// request names none, an error when it names them only hashed (Mailchimp's subscriber hash
/// is an MD5 of the address, which a SHA-256 cannot give).
pub fn emails_of(work: &SuppressionWork) -> Result<Vec<String>, String> {
    raw_lookups(work, &[IdentifierType::Email], |_, raw| raw.to_lowercase()).map_err(|OnlyHashed| {
        format!(
            "request {}: its EMAIL identifiers have no raw value; Mailchimp names a member \
                 by the MD5 of the lowercase address, so intake must keep it (encrypted) for \
                 this recipient",
            work.request_id
        )
    })
}

/// Mailchimp's `subscriber_hash`: the lowercase hex MD5 of the lowercase address.
pub fn subscriber_hash(email: &str) -> String {
    hex::encode(Md5::digest(email.to_lowercase().as_bytes()))
}

/// Path of a member of `list_id`, under the API root.
pub fn member_path(list_id: &str, email: &str) -> String {
    format!("/3.0/lists/{list_id}/members/{}", subscriber_hash(email))
}

/// Body of `PATCH /3.0/lists/{list_id}/members/{subscriber_hash}` setting `status`.
pub fn status_body(status: &str) -> Value {
    json!({ "status": status })
}

/// Body of `POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags` adding `tag`.
pub fn tag_body(tag: &str) -> Value {
    json!({ "tags": [{ "name": tag, "status": "active" }] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{email, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;

    #[test]
    fn the_subscriber_hash_is_mailchimps_documented_example() {
        // Mailchimp's guide: Urist.McVankab@freddiesjokes.com → 62eeb292278cc15f5817cb78f7790b08.
        assert_eq!(
            subscriber_hash("Urist.McVankab@freddiesjokes.com"),
            "62eeb292278cc15f5817cb78f7790b08"
        );
        assert_eq!(
            member_path("9e67587f52", "urist.mcvankab@freddiesjokes.com"),
            "/3.0/lists/9e67587f52/members/62eeb292278cc15f5817cb78f7790b08"
        );
    }

    #[test]
    fn emails_are_raw_lowercase_and_unique() {
        let request = work(RequestKind::OptOutSaleShare)
            .with(with_raw(IdentifierType::Email, " Jane@Example.com"))
            .with(with_raw(IdentifierType::Email, "jane@example.com"))
            .with(with_raw(IdentifierType::Phone, "+15005550006"));
        assert_eq!(emails_of(&request).unwrap(), vec!["jane@example.com"]);
        assert_eq!(emails_of(&work(RequestKind::Delete)), Ok(vec![]));
        let hashed = work(RequestKind::Delete).with(email("a@example.com"));
        assert!(emails_of(&hashed).unwrap_err().contains("no raw value"));
    }

    #[test]
    fn bodies_follow_the_documented_shapes() {
        assert_eq!(status_body(UNSUBSCRIBED), json!({"status": "unsubscribed"}));
        assert_eq!(
            tag_body("hush_do_not_sell"),
            json!({"tags": [{"name": "hush_do_not_sell", "status": "active"}]})
        );
    }
}
