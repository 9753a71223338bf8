//! Pure functions from suppression work to Data Manager request bodies: one `AudienceMember`
//! per person with their hashed emails and phone numbers (Google's normalisation, SHA-256,
//! hex), split to the API's limits. No I/O.

use std::ops::Range;

use hush_connector_kit::google::customer_match::{self, IdentifierFields, Member, RemovalPlan};
use hush_contracts::connector::{SuppressionWork, WorkIdentifier};
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::sha256_hex;
use serde_json::{json, Value};

use crate::config::ProductAccount;

/// Most audience members one `audienceMembers:remove` request may carry (documented limit).
pub const MAX_MEMBERS_PER_REQUEST: usize = 10_000;
/// Most user identifiers one audience member may carry (documented limit).
pub const MAX_IDENTIFIERS_PER_MEMBER: usize = 10;
/// Work items per batch: one request's worth of people with up to ten identifiers each.
pub const MAX_BATCH: usize = MAX_MEMBERS_PER_REQUEST;
/// The `encoding` of every body: hashes are sent as hex.
pub const ENCODING: &str = "HEX";

/// The `UserIdentifier` fields of the Data Manager API.
pub const IDENTIFIER_FIELDS: IdentifierFields = IdentifierFields {
    email: "emailAddress",
    phone: "phoneNumber",
};

/// One `AudienceMember` as JSON: `{"userData":{"userIdentifiers":[{"emailAddress":"…"}]}}`.
pub fn audience_member(member: &Member) -> Value {
    json!({ "userData": { "userIdentifiers": member.user_identifiers(IDENTIFIER_FIELDS) } })
}

/// An email in Google's normal form, from the address as intake normalised it (trimmed,
/// lowercased): every whitespace removed and, for `gmail.com` and `googlemail.com`, the dots
/// of the local part and everything from a `+` on dropped
/// (`cloudy.sanfrancisco+shopping@gmail.com` → `cloudysanfrancisco@gmail.com`). Other domains
/// keep their dots and plus signs. Source: developers.google.com/data-manager, "Format user
/// data".
pub fn google_email(address: &str) -> String {
    let address: String = address
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) if matches!(domain, "gmail.com" | "googlemail.com") => {
            let local = local.split('+').next().unwrap_or_default().replace('.', "");
            format!("{local}@{domain}")
        }
        _ => address,
    }
}

/// The hashes that stand for one email: Google's form when the raw address is known, and the
/// hash intake computed (trimmed, lowercased) when it differs, so that a list uploaded before
/// the Gmail rule was applied still matches. Without the raw address only intake's hash is
/// known, which is Google's form for every address but a Gmail one with dots or a `+`.
fn email_hashes(identifier: &WorkIdentifier) -> Vec<String> {
    let mut hashes = Vec::new();
    if let Some(raw) = &identifier.raw {
        hashes.push(sha256_hex(&google_email(raw.expose())));
    }
    let intake = identifier.sha256.to_ascii_lowercase();
    if !hashes.contains(&intake) {
        hashes.push(intake);
    }
    hashes
}

/// Turns work items (with their batch index) into audience members of at most
/// [`MAX_IDENTIFIERS_PER_MEMBER`] identifiers ([`customer_match::plan_removals`]). Emails go
/// out in Google's form and as intake hashed them; phones are hashed by intake in E.164, which
/// is Google's form.
pub fn plan_removals<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
) -> RemovalPlan {
    let google_form = |identifier: &WorkIdentifier| match identifier.kind {
        IdentifierType::Email => email_hashes(identifier),
        _ => vec![identifier.sha256.to_ascii_lowercase()],
    };
    customer_match::plan_removals(items, google_form, MAX_IDENTIFIERS_PER_MEMBER, "Google")
}

/// The one `Destination` of every request: the audience (`productDestinationId`) of the
/// operating account, reached through the login account when there is one.
pub fn destination(
    operating: &ProductAccount,
    login: Option<&ProductAccount>,
    audience_id: &str,
) -> Value {
    let account =
        |a: &ProductAccount| json!({"accountType": a.account_type, "accountId": a.account_id});
    let mut destination = json!({
        "operatingAccount": account(operating),
        "productDestinationId": audience_id,
    });
    if let Some(login) = login {
        destination["loginAccount"] = account(login);
    }
    destination
}

/// Splits members into `audienceMembers:remove` bodies of at most `max_members` members each,
/// every one for `destination` with `encoding: HEX`. Each body comes with the range of member
/// indexes it carries.
pub fn remove_bodies(
    destination: &Value,
    members: &[Member],
    max_members: usize,
) -> Vec<(Range<usize>, Value)> {
    let size = max_members.max(1);
    (0..members.len())
        .step_by(size)
        .map(|start| {
            let end = (start + size).min(members.len());
            let body = json!({
                "destinations": [destination],
                "audienceMembers": members[start..end].iter().map(audience_member).collect::<Vec<_>>(),
                "encoding": ENCODING,
            });
            (start..end, body)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::RawValue;
    use hush_contracts::events::RequestKind;
    use hush_contracts::identifiers::hash_identifier;

    fn identifier(kind: IdentifierType, raw: &str, keep_raw: bool) -> WorkIdentifier {
        WorkIdentifier {
            kind,
            sha256: hash_identifier(kind, raw).unwrap(),
            raw: keep_raw.then(|| RawValue::new(raw.trim().to_lowercase())),
        }
    }

    fn work(identifiers: Vec<WorkIdentifier>) -> SuppressionWork {
        SuppressionWork {
            request_id: "r".into(),
            subject_key: "s".into(),
            kind: RequestKind::OptOutSaleShare,
            identifiers,
            categories: vec![],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        }
    }

    #[test]
    fn gmail_addresses_lose_dots_and_plus_tags_as_google_documents() {
        assert_eq!(
            google_email("cloudy.sanfrancisco+shopping@gmail.com"),
            "cloudysanfrancisco@gmail.com"
        );
        assert_eq!(
            google_email("Jane.Doe+ads@GoogleMail.com"),
            "janedoe@googlemail.com"
        );
        // Google's own example for any other domain: dots and plus signs stay.
        assert_eq!(
            google_email("user.name+NYC@Example.com"),
            "user.name+nyc@example.com"
        );
        assert_eq!(google_email(" a b@example.com "), "ab@example.com");
    }

    #[test]
    fn members_match_the_documented_rest_shape() {
        let batch = [work(vec![
            identifier(IdentifierType::Email, "jane@example.com", false),
            identifier(IdentifierType::Phone, "+1 800 555 0100", false),
            WorkIdentifier {
                kind: IdentifierType::CookieId,
                sha256: "c".repeat(64),
                raw: None,
            },
        ])];
        let plan = plan_removals(batch.iter().enumerate());
        let operating = ProductAccount {
            account_type: "GOOGLE_ADS".into(),
            account_id: "1234567890".into(),
        };
        let bodies = remove_bodies(
            &destination(&operating, None, "555"),
            &plan.members,
            MAX_MEMBERS_PER_REQUEST,
        );
        assert_eq!(bodies.len(), 1);
        // Google's example: (800)555-0100 is +18005550100 before hashing.
        let phone = sha256_hex("+18005550100");
        assert_eq!(
            bodies[0].1,
            json!({
                "destinations": [{
                    "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                    "productDestinationId": "555"
                }],
                "audienceMembers": [{"userData": {"userIdentifiers": [
                    {"emailAddress": sha256_hex("jane@example.com")},
                    {"phoneNumber": phone}
                ]}}],
                "encoding": "HEX"
            })
        );
    }

    #[test]
    fn a_login_account_is_part_of_the_destination() {
        let account = |id: &str| ProductAccount {
            account_type: "GOOGLE_ADS".into(),
            account_id: id.into(),
        };
        let d = destination(&account("1"), Some(&account("2")), "9");
        assert_eq!(
            d["loginAccount"],
            json!({"accountType": "GOOGLE_ADS", "accountId": "2"})
        );
    }

    #[test]
    fn a_gmail_address_is_sent_in_googles_form_and_as_intake_hashed_it() {
        let gmail = identifier(IdentifierType::Email, "Jane.Doe+ads@gmail.com", true);
        let intake = gmail.sha256.clone();
        let plan = plan_removals([(0, &work(vec![gmail]))]);
        let hashes: Vec<&str> = plan.members[0]
            .identifiers
            .iter()
            .map(|i| i.sha256.as_str())
            .collect();
        assert_eq!(
            hashes,
            vec![sha256_hex("janedoe@gmail.com").as_str(), intake.as_str()]
        );
        // Any other domain: one hash, the same either way.
        let other = identifier(IdentifierType::Email, "jane.doe@example.com", true);
        let plan = plan_removals([(0, &work(vec![other]))]);
        assert_eq!(plan.members[0].identifiers.len(), 1);
    }

    #[test]
    fn unhashed_values_are_refused_and_people_without_contact_identifiers_are_unmatchable() {
        let batch = [
            work(vec![WorkIdentifier {
                kind: IdentifierType::Email,
                sha256: "jane@example.com".into(),
                raw: None,
            }]),
            work(vec![WorkIdentifier {
                kind: IdentifierType::CustomerId,
                sha256: "a".repeat(64),
                raw: None,
            }]),
        ];
        let plan = plan_removals(batch.iter().enumerate());
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, 0);
        assert!(plan.refused[0].1.contains("unhashed"));
        assert!(!plan.refused[0].1.contains("jane"));
        assert_eq!(plan.unmatchable, vec![1]);
        assert!(plan.members.is_empty());
    }

    #[test]
    fn more_than_ten_identifiers_split_into_members_and_bodies_respect_the_member_limit() {
        let many: Vec<WorkIdentifier> = (0..23)
            .map(|n| identifier(IdentifierType::Email, &format!("p{n}@example.com"), false))
            .collect();
        let batch = [
            work(many),
            work(vec![identifier(
                IdentifierType::Email,
                "b@example.com",
                false,
            )]),
        ];
        let plan = plan_removals(batch.iter().enumerate());
        let sizes: Vec<_> = plan
            .members
            .iter()
            .map(|m| (m.item, m.identifiers.len()))
            .collect();
        assert_eq!(sizes, vec![(0, 10), (0, 10), (0, 3), (1, 1)]);
        let bodies = remove_bodies(&json!({}), &plan.members, 3);
        let ranges: Vec<_> = bodies.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, vec![0..3, 3..4]);
        assert_eq!(bodies[0].1["audienceMembers"].as_array().unwrap().len(), 3);
    }
}
