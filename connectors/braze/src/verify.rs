//! Read-back through `/users/export/ids`: the subject's profiles are exported again (by
//! external id, and by email, which finds every profile holding the address) and checked
//! against what the request demands. Braze processes `/users/track` and `/users/delete`
//! asynchronously and reports no job, so a change not shown yet is `PENDING`, never `FAILED`:
//! the read-back cannot tell a slow queue from a lost write.

use std::collections::BTreeSet;

use hush_connector_kit::outcome::{verification_of, RecordCheck};
use hush_connector_kit::poll::{self, Waits};
use hush_contracts::events::VerificationStatus;
use serde_json::Value;

use crate::client::{BrazeClient, Profile};
use crate::request::{Change, Lookup, Subject};

/// What a request's read-back looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No profile left for any of the subject's identifiers (a deletion).
    Gone,
    /// Every profile found holds the change (an opt-out, limit or opt-in).
    Holds(Change),
}

/// Reads back each subject against its expectation, with as few exports as the identifiers
/// allow (external ids 50 a call, emails one a call). Per item: `PENDING` when any profile
/// does not show the change yet or an export failed, `VERIFIED` when every lookup checked
/// holds, `UNVERIFIABLE` when no profile was left to check a change on.
pub async fn read_back(
    client: &BrazeClient,
    items: &[(&Subject, &Expect)],
) -> Vec<VerificationStatus> {
    let lookups: BTreeSet<&Lookup> = items
        .iter()
        .flat_map(|(subject, _)| &subject.lookups)
        .collect();
    if lookups.is_empty() {
        return vec![VerificationStatus::Unverifiable; items.len()];
    }
    let lookups: Vec<&Lookup> = lookups.into_iter().collect();
    let found = client.find(&lookups).await;
    items
        .iter()
        .map(|(subject, expect)| {
            verification_of(
                subject
                    .lookups
                    .iter()
                    .map(|lookup| match found.get(lookup) {
                        Some(Ok(profiles)) => check(expect, profiles),
                        Some(Err(error)) => {
                            tracing::warn!("Braze read-back export failed: {error}");
                            RecordCheck::Unknown
                        }
                        None => RecordCheck::Unknown,
                    }),
            )
        })
        .collect()
}

/// Reads the items back every `waits.poll_interval` until none is `PENDING` or
/// `waits.max_wait` has passed (at least once), and answers the last statuses read.
pub async fn wait_until_shown(
    client: &BrazeClient,
    items: &[(&Subject, &Expect)],
    waits: Waits,
) -> Vec<VerificationStatus> {
    let read = |_| read_back(client, items);
    poll::sweep_until_settled(items.len(), read, waits.poll_interval, waits.max_wait).await
}

fn check(expect: &Expect, profiles: &[Profile]) -> RecordCheck {
    match expect {
        Expect::Gone if profiles.is_empty() => RecordCheck::Holds,
        Expect::Gone => RecordCheck::NotYet,
        Expect::Holds(_) if profiles.is_empty() => RecordCheck::Nothing,
        Expect::Holds(change) => {
            if profiles.iter().all(|profile| holds(change, profile)) {
                RecordCheck::Holds
            } else {
                RecordCheck::NotYet
            }
        }
    }
}

fn holds(change: &Change, profile: &Profile) -> bool {
    let attribute =
        profile.custom_attributes.get(&change.attribute) == Some(&Value::Bool(change.value));
    let email =
        !change.unsubscribe_email || profile.email_subscribe.as_deref() == Some("unsubscribed");
    attribute && email
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn change(unsubscribe_email: bool) -> Change {
        Change {
            attribute: "hush_do_not_sell".into(),
            value: true,
            unsubscribe_email,
        }
    }

    fn profile(attributes: Value, email_subscribe: Option<&str>) -> Profile {
        Profile {
            braze_id: "b".into(),
            email_subscribe: email_subscribe.map(str::to_owned),
            custom_attributes: attributes.as_object().cloned().unwrap_or_else(Map::new),
        }
    }

    #[test]
    fn a_change_holds_only_with_the_written_boolean_and_unsubscribe() {
        let written = profile(json!({"hush_do_not_sell": true}), Some("subscribed"));
        assert_eq!(
            check(
                &Expect::Holds(change(false)),
                std::slice::from_ref(&written)
            ),
            RecordCheck::Holds
        );
        assert_eq!(
            check(&Expect::Holds(change(true)), &[written]),
            RecordCheck::NotYet
        );
        let as_text = profile(json!({"hush_do_not_sell": "true"}), None);
        assert_eq!(
            check(&Expect::Holds(change(false)), &[as_text]),
            RecordCheck::NotYet
        );
        assert_eq!(
            check(&Expect::Holds(change(false)), &[]),
            RecordCheck::Nothing
        );
    }

    #[test]
    fn a_deletion_holds_once_no_profile_is_left() {
        assert_eq!(check(&Expect::Gone, &[]), RecordCheck::Holds);
        assert_eq!(
            check(&Expect::Gone, &[profile(json!({}), None)]),
            RecordCheck::NotYet
        );
    }
}
