//! Pure functions from suppression work to User Deletion API requests. Google deletes one
//! identifier per request, by its raw value (`id.userId`) and type (`id.type`); the request's
//! hashed identifiers cannot be used, so intake must keep the raw values (encrypted). No I/O.

use hush_contracts::connector::SuppressionWork;
use hush_contracts::events::IdentifierType;
use serde_json::{json, Value};

/// Path of the upsert method under the API root.
pub const UPSERT_PATH: &str = "/analytics/v3/userDeletion/userDeletionRequests:upsert";
/// `kind` of a `UserDeletion.userDeletionRequest` resource.
pub const RESOURCE_KIND: &str = "analytics#userDeletionRequest";
/// Work items one call to the connector carries: the API has no batch method, and each
/// identifier costs one request against the property's 1.5 requests a second, so the
/// suppressor's rate limit counts one person at a time.
pub const MAX_BATCH: usize = 1;

/// The GA `id.type` a Hush identifier type is sent as.
pub fn ga_id_type(kind: IdentifierType) -> Option<&'static str> {
    match kind {
        IdentifierType::CustomerId => Some("USER_ID"),
        IdentifierType::CookieId => Some("CLIENT_ID"),
        IdentifierType::DeviceId => Some("APP_INSTANCE_ID"),
        IdentifierType::Email | IdentifierType::Phone | IdentifierType::Maid => None,
    }
}

/// One identifier to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// GA `id.type`: `USER_ID`, `CLIENT_ID` or `APP_INSTANCE_ID`.
    pub id_type: &'static str,
    /// The raw identifier (`id.userId`); never written to evidence or logs.
    pub user_id: String,
    /// SHA-256 of the identifier, for evidence.
    pub sha256: String,
}

/// What one work item turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPlan {
    /// One upsert per distinct identifier, in the item's order.
    Delete(Vec<Deletion>),
    /// The item carries no identifier of a configured type: no GA data can be addressed.
    Unmatched(String),
    /// An identifier of a configured type lacks its raw value: a configuration error.
    Refused(String),
}

/// The deletions `work` needs, sending identifiers of `types` only.
pub fn plan_item(work: &SuppressionWork, types: &[IdentifierType]) -> ItemPlan {
    let mut deletions: Vec<Deletion> = Vec::new();
    let mut missing_raw = Vec::new();
    for identifier in work.identifiers.iter().filter(|i| types.contains(&i.kind)) {
        let Some(id_type) = ga_id_type(identifier.kind) else {
            continue;
        };
        let raw = identifier.raw.as_ref().map(|r| r.expose().trim());
        match raw {
            Some(raw) if !raw.is_empty() => {
                if !deletions
                    .iter()
                    .any(|d| d.id_type == id_type && d.user_id == raw)
                {
                    deletions.push(Deletion {
                        id_type,
                        user_id: raw.to_owned(),
                        sha256: identifier.sha256.clone(),
                    });
                }
            }
            _ => missing_raw.push(identifier.kind.as_str()),
        }
    }
    if !missing_raw.is_empty() {
        missing_raw.dedup();
        return ItemPlan::Refused(format!(
            "the {} identifier has no raw value: Google Analytics deletes by the identifier \
             itself, so intake must keep it (encrypted) and the suppressor must be able to \
             decrypt it",
            missing_raw.join(", ")
        ));
    }
    if deletions.is_empty() {
        let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        return ItemPlan::Unmatched(format!(
            "no {} identifier: Google Analytics holds no personal data such as emails and knows \
             people only by user id, client id or app instance id, and this request carries \
             none of the configured ones",
            names.join(" or ")
        ));
    }
    ItemPlan::Delete(deletions)
}

/// Body of `userDeletionRequests:upsert` for one identifier of a GA4 property.
pub fn upsert_body(property_id: &str, deletion: &Deletion) -> Value {
    json!({
        "kind": RESOURCE_KIND,
        "id": {"type": deletion.id_type, "userId": deletion.user_id},
        "propertyId": property_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{email, hashed, with_raw, work, WorkExt};
    use hush_contracts::events::RequestKind;
    use hush_contracts::identifiers::sha256_hex;

    const DEFAULT: [IdentifierType; 2] = [IdentifierType::CustomerId, IdentifierType::CookieId];

    #[test]
    fn body_matches_the_documented_resource() {
        let deletion = Deletion {
            id_type: "CLIENT_ID",
            user_id: "1197596843.1673515099".into(),
            sha256: sha256_hex("1197596843.1673515099"),
        };
        assert_eq!(
            upsert_body("123456789", &deletion),
            json!({
                "kind": "analytics#userDeletionRequest",
                "id": {"type": "CLIENT_ID", "userId": "1197596843.1673515099"},
                "propertyId": "123456789"
            })
        );
    }

    #[test]
    fn configured_identifiers_become_one_deletion_each_without_repeats() {
        let item = work(RequestKind::Delete)
            .with(email("a@example.com"))
            .with(with_raw(IdentifierType::CustomerId, "u-1"))
            .with(with_raw(IdentifierType::CookieId, "111.222"))
            .with(with_raw(IdentifierType::CustomerId, "u-1"))
            .with(with_raw(IdentifierType::DeviceId, "firebase-instance"));
        let ItemPlan::Delete(deletions) = plan_item(&item, &DEFAULT) else {
            panic!("expected deletions");
        };
        let sent: Vec<_> = deletions
            .iter()
            .map(|d| (d.id_type, d.user_id.as_str(), d.sha256.clone()))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("USER_ID", "u-1", sha256_hex("u-1")),
                ("CLIENT_ID", "111.222", sha256_hex("111.222")),
            ]
        );
    }

    #[test]
    fn a_device_id_is_sent_as_app_instance_id_only_when_configured() {
        let item = work(RequestKind::Delete).with(with_raw(IdentifierType::DeviceId, "abc"));
        assert!(matches!(plan_item(&item, &DEFAULT), ItemPlan::Unmatched(_)));
        let ItemPlan::Delete(deletions) = plan_item(&item, &[IdentifierType::DeviceId]) else {
            panic!("expected a deletion");
        };
        assert_eq!(deletions[0].id_type, "APP_INSTANCE_ID");
    }

    #[test]
    fn only_an_email_is_unmatched_and_a_hashed_only_customer_id_is_refused() {
        let only_email = work(RequestKind::Delete).with(email("a@example.com"));
        let ItemPlan::Unmatched(reason) = plan_item(&only_email, &DEFAULT) else {
            panic!("expected unmatched");
        };
        assert!(
            reason.contains("no CUSTOMER_ID or COOKIE_ID identifier"),
            "{reason}"
        );

        let hashed_only = work(RequestKind::Delete)
            .with(with_raw(IdentifierType::CookieId, "1.2"))
            .with(hashed(IdentifierType::CustomerId, "u-2"));
        let ItemPlan::Refused(reason) = plan_item(&hashed_only, &DEFAULT) else {
            panic!("expected a refusal");
        };
        assert!(
            reason.contains("CUSTOMER_ID identifier has no raw value"),
            "{reason}"
        );
        assert!(!reason.contains("u-2"));
    }
}
