//! The hashed emails and phone numbers of a work item, for vendors that match people on
//! contact details (Google's Customer Match, through the Google Ads API or the Data Manager
//! API): one place decides which identifiers go out and refuses an unhashed one.

use hush_contracts::connector::{SuppressionWork, WorkIdentifier};
use hush_contracts::events::IdentifierType;

/// The email and phone identifiers of `work`, in order and without repeats, each turned by
/// `digests` into the digests the vendor receives. `Err` names the kind of the first identifier
/// whose value is not 64 hexadecimal characters: an unhashed value never leaves Hush. Letter
/// case is left to the vendor, which answers a digest not in its form with its own error.
pub fn contact_digests(
    work: &SuppressionWork,
    digests: impl Fn(&WorkIdentifier) -> Vec<String>,
) -> Result<Vec<(IdentifierType, String)>, IdentifierType> {
    let mut found: Vec<(IdentifierType, String)> = Vec::new();
    for identifier in work
        .identifiers
        .iter()
        .filter(|i| matches!(i.kind, IdentifierType::Email | IdentifierType::Phone))
    {
        if !is_hex_digest(&identifier.sha256) {
            return Err(identifier.kind);
        }
        for digest in digests(identifier) {
            let entry = (identifier.kind, digest);
            if !found.contains(&entry) {
                found.push(entry);
            }
        }
    }
    Ok(found)
}

/// 64 hexadecimal characters, in either case.
fn is_hex_digest(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, WorkExt};
    use hush_contracts::events::RequestKind;
    use hush_contracts::identifiers::sha256_hex;

    /// An opt-out whose identifiers carry the given digests as they are, never a raw value.
    fn work(identifiers: Vec<(IdentifierType, String)>) -> SuppressionWork {
        identifiers.into_iter().fold(
            testing::work(RequestKind::OptOutSaleShare),
            |work, (kind, sha256)| {
                work.with(WorkIdentifier {
                    kind,
                    sha256,
                    raw: None,
                })
            },
        )
    }

    #[test]
    fn emails_and_phones_go_out_once_each_and_other_kinds_not_at_all() {
        let email = sha256_hex("a@example.com");
        let phone = sha256_hex("+14155550100").to_uppercase();
        let item = work(vec![
            (IdentifierType::Email, email.clone()),
            (IdentifierType::CookieId, "not-a-digest".into()),
            (IdentifierType::Phone, phone.clone()),
            (IdentifierType::Email, email.clone()),
        ]);
        let digests = contact_digests(&item, |i| vec![i.sha256.clone()]).unwrap();
        assert_eq!(
            digests,
            vec![
                (IdentifierType::Email, email),
                (IdentifierType::Phone, phone)
            ]
        );
    }

    #[test]
    fn an_unhashed_contact_identifier_refuses_the_item() {
        let item = work(vec![
            (IdentifierType::Email, sha256_hex("a@example.com")),
            (IdentifierType::Phone, "+14155550100".into()),
        ]);
        assert_eq!(
            contact_digests(&item, |i| vec![i.sha256.clone()]),
            Err(IdentifierType::Phone)
        );
    }

    #[test]
    fn each_identifier_may_become_several_digests() {
        let item = work(vec![(IdentifierType::Email, sha256_hex("a@example.com"))]);
        let digests = contact_digests(&item, |_| vec!["x".into(), "y".into(), "x".into()]);
        assert_eq!(digests.unwrap().len(), 2);
    }
}
