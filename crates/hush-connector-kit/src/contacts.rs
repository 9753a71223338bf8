//! The hashed emails and phone numbers of a work item, for vendors that match people on
//! contact details (Google's Customer Match, through the Google Ads API or the Data Manager
//! API): one place decides which identifiers go out and refuses an unhashed one. For vendors
//! that look people up by the raw value instead (Braze, Klaviyo, Mailchimp), [`raw_lookups`]
//! says what to look up and whether intake kept only digests.

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

/// What a batch of work items comes to for a vendor that matches people on contact details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPlan {
    /// Each item's digests in groups of at most the vendor's limit per person, with the
    /// item's index in the batch, in batch order.
    pub groups: Vec<(usize, Vec<(IdentifierType, String)>)>,
    /// Items refused before sending, with the reason.
    pub refused: Vec<(usize, String)>,
    /// Items with no email or phone: nothing the vendor matches on.
    pub unmatchable: Vec<usize>,
}

/// Plans `items` (with their batch index) for `vendor`: each item's [`contact_digests`] (made by
/// `digests`) in groups of at most `per_group`. An item without an email or phone is
/// unmatchable; one whose identifier is not a SHA-256 hex digest is refused, saying Hush never
/// sends an unhashed value to `vendor`.
pub fn plan_contacts<'a>(
    items: impl IntoIterator<Item = (usize, &'a SuppressionWork)>,
    digests: impl Fn(&WorkIdentifier) -> Vec<String>,
    per_group: usize,
    vendor: &str,
) -> ContactPlan {
    let mut plan = ContactPlan::default();
    for (index, work) in items {
        match contact_digests(work, &digests) {
            Err(kind) => plan.refused.push((
                index,
                format!(
                    "{kind:?} identifier is not a SHA-256 hex digest; Hush never sends an \
                     unhashed value to {vendor}"
                ),
            )),
            Ok(found) if found.is_empty() => plan.unmatchable.push(index),
            Ok(found) => plan.groups.extend(
                found
                    .chunks(per_group.max(1))
                    .map(|group| (index, group.to_vec())),
            ),
        }
    }
    plan
}

/// A work item names identifiers of the kinds a vendor looks people up by, but none with a raw
/// value (intake kept only the digest), so the vendor cannot be asked about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlyHashed;

/// What to look `work`'s person up by at a vendor that needs raw values: each identifier of
/// `kinds` that carries a non-blank raw value, trimmed and turned by `lookup` into the vendor's
/// form, in order and without repeats. `Ok(empty)` when `work` names no such identifier;
/// [`OnlyHashed`] when it names some but none with a raw value.
pub fn raw_lookups<L: PartialEq>(
    work: &SuppressionWork,
    kinds: &[IdentifierType],
    lookup: impl Fn(IdentifierType, &str) -> L,
) -> Result<Vec<L>, OnlyHashed> {
    let mut lookups = Vec::new();
    let mut hashed_only = false;
    for identifier in work.identifiers.iter().filter(|i| kinds.contains(&i.kind)) {
        let raw = identifier
            .raw
            .as_ref()
            .map(|raw| raw.expose().trim())
            .filter(|raw| !raw.is_empty());
        let Some(raw) = raw else {
            hashed_only = true;
            continue;
        };
        let found = lookup(identifier.kind, raw);
        if !lookups.contains(&found) {
            lookups.push(found);
        }
    }
    if lookups.is_empty() && hashed_only {
        return Err(OnlyHashed);
    }
    Ok(lookups)
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
    fn raw_lookups_are_trimmed_once_each_and_only_digests_are_told_apart_from_nothing() {
        let lower = |_: IdentifierType, raw: &str| raw.to_lowercase();
        let item = testing::work(RequestKind::OptOutSaleShare)
            .with(testing::with_raw(IdentifierType::Email, " A@Example.com "))
            .with(testing::with_raw(IdentifierType::Phone, "+14155550100"))
            .with(testing::with_raw(IdentifierType::Email, "a@example.com"))
            .with(testing::email("b@example.com"));
        assert_eq!(
            raw_lookups(&item, &[IdentifierType::Email], lower),
            Ok(vec!["a@example.com".to_owned()])
        );
        let hashed = testing::work(RequestKind::OptOutSaleShare)
            .with(testing::email("b@example.com"))
            .with(testing::with_raw(IdentifierType::Phone, "+14155550100"));
        assert_eq!(
            raw_lookups(&hashed, &[IdentifierType::Email], lower),
            Err(OnlyHashed)
        );
        assert_eq!(
            raw_lookups(&hashed, &[IdentifierType::CustomerId], lower),
            Ok(vec![])
        );
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

    #[test]
    fn a_plan_groups_each_persons_digests_and_sets_aside_the_unhashed_and_the_unmatchable() {
        let digest = |n: u8| sha256_hex(&n.to_string());
        let three = work((0..3).map(|n| (IdentifierType::Email, digest(n))).collect());
        let unhashed = work(vec![(IdentifierType::Phone, "+14155550100".into())]);
        let cookie_only = work(vec![(IdentifierType::CookieId, digest(9))]);
        let batch = [three, unhashed, cookie_only];
        let plan = plan_contacts(
            batch.iter().enumerate(),
            |i| vec![i.sha256.clone()],
            2,
            "Example",
        );
        let groups: Vec<(usize, usize)> = plan.groups.iter().map(|(i, g)| (*i, g.len())).collect();
        assert_eq!(groups, [(0, 2), (0, 1)]);
        assert_eq!(plan.groups[1].1, [(IdentifierType::Email, digest(2))]);
        assert_eq!(
            plan.refused,
            [(
                1,
                "Phone identifier is not a SHA-256 hex digest; Hush never sends an unhashed \
                 value to Example"
                    .to_owned()
            )]
        );
        assert_eq!(plan.unmatchable, [2]);
    }
}
