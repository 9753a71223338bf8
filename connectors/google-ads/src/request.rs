//! Pure functions from suppression work to Google Ads request bodies: one `remove` operation
//! per person with their hashed emails and phone numbers, split to the API's limits. No I/O.

use std::ops::Range;

use hush_connector_kit::google::customer_match::{self, IdentifierFields, Member, RemovalPlan};
use hush_contracts::connector::SuppressionWork;
use serde_json::{json, Value};

/// Most user identifiers one `addOperations` request may carry (documented limit).
pub const MAX_IDENTIFIERS_PER_REQUEST: usize = 100_000;
/// Most user identifiers one operation (one `UserData`) may carry (documented limit).
pub const MAX_IDENTIFIERS_PER_OPERATION: usize = 20;
/// Work items per batch: with at most 20 identifiers each, a batch never exceeds the
/// 100,000-identifier request limit in the common case.
pub const MAX_BATCH: usize = MAX_IDENTIFIERS_PER_REQUEST / MAX_IDENTIFIERS_PER_OPERATION;

/// The `UserIdentifier` fields of the Google Ads API.
pub const IDENTIFIER_FIELDS: IdentifierFields = IdentifierFields {
    email: "hashedEmail",
    phone: "hashedPhoneNumber",
};

/// One `remove` operation as JSON: `{"remove":{"userIdentifiers":[{"hashedEmail":"…"}]}}`.
pub fn remove_operation(member: &Member) -> Value {
    json!({ "remove": { "userIdentifiers": member.user_identifiers(IDENTIFIER_FIELDS) } })
}

/// Turns work items (with their batch index) into `remove` operations of at most
/// [`MAX_IDENTIFIERS_PER_OPERATION`] identifiers, sent as intake hashed them
/// ([`customer_match::plan_removals`]).
pub fn plan_removals<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
) -> RemovalPlan {
    customer_match::plan_removals(
        items,
        |i| vec![i.sha256.clone()],
        MAX_IDENTIFIERS_PER_OPERATION,
        "Google Ads",
    )
}

/// `customers/{customer_id}/userLists/{user_list_id}`.
pub fn user_list_resource(customer_id: &str, user_list_id: &str) -> String {
    format!("customers/{customer_id}/userLists/{user_list_id}")
}

/// Body of `offlineUserDataJobs:create` for a Customer Match job on the user list.
pub fn create_job_body(customer_id: &str, user_list_id: &str) -> Value {
    json!({
        "job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {
                "userList": user_list_resource(customer_id, user_list_id)
            }
        }
    })
}

/// Splits operations into `addOperations` requests of at most `max_identifiers` identifiers
/// each, with partial failure enabled. Each request comes with the range of operation indexes
/// it carries, so that a failure's operation index maps back to the operation.
pub fn add_operations_bodies(
    operations: &[Member],
    max_identifiers: usize,
) -> Vec<(Range<usize>, Value)> {
    let mut bodies = Vec::new();
    let mut start = 0;
    while start < operations.len() {
        let mut end = start;
        let mut count = 0;
        while end < operations.len()
            && (end == start || count + operations[end].identifiers.len() <= max_identifiers)
        {
            count += operations[end].identifiers.len();
            end += 1;
        }
        let body = json!({
            "enablePartialFailure": true,
            "operations": operations[start..end].iter().map(remove_operation).collect::<Vec<_>>(),
        });
        bodies.push((start..end, body));
        start = end;
    }
    bodies
}

/// Body of `googleAds:search` that reads one job's status (a job's results are readable only
/// through GoogleAdsService search).
pub fn job_status_query(job_resource_name: &str) -> Value {
    json!({
        "query": format!(
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, \
             offline_user_data_job.failure_reason FROM offline_user_data_job \
             WHERE offline_user_data_job.resource_name = '{job_resource_name}'"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::WorkIdentifier;
    use hush_contracts::events::{IdentifierType, RequestKind};
    use hush_contracts::identifiers::hash_identifier;

    fn work(identifiers: Vec<(IdentifierType, String)>) -> SuppressionWork {
        SuppressionWork {
            request_id: "r".into(),
            subject_key: "s".into(),
            kind: RequestKind::OptOutSaleShare,
            identifiers: identifiers
                .into_iter()
                .map(|(kind, sha256)| WorkIdentifier {
                    kind,
                    sha256,
                    raw: None,
                })
                .collect(),
            categories: vec![],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        }
    }

    #[test]
    fn remove_operation_matches_the_documented_rest_shape() {
        let email = hash_identifier(IdentifierType::Email, "Jane@Example.com").unwrap();
        let phone = hash_identifier(IdentifierType::Phone, "+1 415 555 0100").unwrap();
        let batch = [work(vec![
            (IdentifierType::Email, email.clone()),
            (IdentifierType::Phone, phone.clone()),
            (IdentifierType::CookieId, "c".repeat(64)),
        ])];
        let plan = plan_removals(batch.iter().enumerate());
        assert!(plan.refused.is_empty());
        let bodies = add_operations_bodies(&plan.members, MAX_IDENTIFIERS_PER_REQUEST);
        assert_eq!(bodies.len(), 1);
        assert_eq!(
            bodies[0].1,
            json!({
                "enablePartialFailure": true,
                "operations": [{"remove": {"userIdentifiers": [
                    {"hashedEmail": email},
                    {"hashedPhoneNumber": phone}
                ]}}]
            })
        );
        // The phone hash is the hash of the E.164 form Google requires.
        assert_eq!(
            phone,
            hush_contracts::identifiers::sha256_hex("+14155550100")
        );
    }

    #[test]
    fn create_body_names_the_user_list() {
        assert_eq!(
            create_job_body("1234567890", "42"),
            json!({"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                "customerMatchUserListMetadata": {"userList": "customers/1234567890/userLists/42"}}})
        );
    }

    #[test]
    fn unhashed_values_and_people_without_contact_identifiers_are_refused() {
        let batch = [
            work(vec![(IdentifierType::Email, "jane@example.com".into())]),
            work(vec![(IdentifierType::CustomerId, "a".repeat(64))]),
            work(vec![(IdentifierType::Email, "A".repeat(64))]),
        ];
        let plan = plan_removals(batch.iter().enumerate());
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, 0);
        assert!(plan.refused[0].1.contains("unhashed"));
        assert!(!plan.refused[0].1.contains("jane"));
        assert_eq!(
            plan.unmatchable,
            vec![1],
            "no email or phone: nothing to match on"
        );
        // An uppercase digest is not raw data: Google decides about it.
        assert_eq!(plan.members.len(), 1);
        assert_eq!(plan.members[0].item, 2);
    }

    #[test]
    fn more_than_twenty_identifiers_split_into_operations_and_requests_respect_the_limit() {
        let many: Vec<_> = (0..45)
            .map(|n| {
                (
                    IdentifierType::Email,
                    hush_contracts::identifiers::sha256_hex(&n.to_string()),
                )
            })
            .collect();
        let batch = [
            work(many),
            work(vec![(IdentifierType::Email, "b".repeat(64))]),
        ];
        let plan = plan_removals(batch.iter().enumerate());
        let sizes: Vec<_> = plan
            .members
            .iter()
            .map(|o| (o.item, o.identifiers.len()))
            .collect();
        assert_eq!(sizes, vec![(0, 20), (0, 20), (0, 5), (1, 1)]);
        let bodies = add_operations_bodies(&plan.members, 40);
        let ranges: Vec<_> = bodies.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, vec![0..2, 2..4]);
        assert_eq!(bodies[1].1["operations"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn status_query_selects_the_job() {
        let q = job_status_query("customers/1/offlineUserDataJobs/9");
        let text = q["query"].as_str().unwrap();
        assert!(text.contains("offline_user_data_job.status"));
        assert!(text.ends_with("= 'customers/1/offlineUserDataJobs/9'"));
    }
}
