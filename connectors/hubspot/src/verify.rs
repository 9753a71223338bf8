//! Read-back: after a write, read the contacts again, up to 100 per `batch/read` call, and check
//! that HubSpot holds what each request demands.

use std::collections::BTreeSet;

use hush_connector_kit::outcome::{verification_of, RecordCheck};
use hush_contracts::connector::{Completion, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

use crate::client::{ContactRead, HubSpotClient};
use crate::config::HubSpotSettings;
use crate::request::{contact_emails, property_change};

/// What an item's read-back looks for.
enum Expect {
    /// Every contact gone (a deletion).
    Gone,
    /// Every contact's `property` holding `value`; `absent_holds` when a missing contact
    /// confirms the outcome (`NOT_FOUND`).
    Value {
        property: String,
        value: &'static str,
        absent_holds: bool,
    },
}

/// Reads the outcomes of `items` back, with as few `batch/read` calls as their emails allow:
/// - an opt-out, opt-in or limit (`FLAGGED` or `NOT_FOUND`): each contact's property must hold
///   the written value; a contact that does not exist cannot be sold from HubSpot and counts
///   for neither side (`NOT_FOUND` stays verified while the contact is still absent);
/// - a deletion (`DELETED` or `NOT_FOUND`): each contact must be gone.
///
/// Per item: `FAILED` when any contact contradicts the request, `PENDING` when a read failed,
/// `UNVERIFIABLE` when no contact was left to check, else `VERIFIED`. Other outcomes, and work
/// without raw emails, keep the completion's status. One status per item, in order.
pub async fn read_back(
    client: &HubSpotClient,
    settings: &HubSpotSettings,
    items: &[(&SuppressionWork, &Completion)],
) -> Vec<VerificationStatus> {
    let plans: Vec<Option<(Expect, Vec<String>)>> = items
        .iter()
        .map(|(work, completion)| plan(settings, work, completion))
        .collect();
    let mut properties = BTreeSet::new();
    let mut emails = BTreeSet::new();
    for (expect, item_emails) in plans.iter().flatten() {
        if let Expect::Value { property, .. } = expect {
            properties.insert(property.as_str());
        }
        emails.extend(item_emails.iter().map(String::as_str));
    }
    let emails: Vec<&str> = emails.into_iter().collect();
    let reads = if emails.is_empty() {
        Default::default()
    } else {
        client.batch_read(&emails, &properties).await
    };
    items
        .iter()
        .zip(&plans)
        .map(|((_, completion), plan)| match plan {
            None => completion.verification,
            Some((expect, item_emails)) => verification_of(
                item_emails
                    .iter()
                    .map(|email| check(expect, reads.get(email).unwrap_or(&ContactRead::Unknown))),
            ),
        })
        .collect()
}

/// What to read back for one item, or `None` when its completion's status stands.
fn plan(
    settings: &HubSpotSettings,
    work: &SuppressionWork,
    completion: &Completion,
) -> Option<(Expect, Vec<String>)> {
    let emails = contact_emails(work).ok()?;
    let action = completion.action;
    let expect = if work.kind == RequestKind::Delete {
        matches!(
            action,
            ConfirmationAction::Deleted | ConfirmationAction::NotFound
        )
        .then_some(Expect::Gone)?
    } else {
        let change = property_change(work.kind, settings)?;
        if !matches!(
            action,
            ConfirmationAction::Flagged | ConfirmationAction::NotFound
        ) {
            return None;
        }
        Expect::Value {
            property: change.property,
            value: change.value,
            absent_holds: action == ConfirmationAction::NotFound,
        }
    };
    Some((expect, emails))
}

fn check(expect: &Expect, read: &ContactRead) -> RecordCheck {
    match (expect, read) {
        (_, ContactRead::Unknown) => RecordCheck::Unknown,
        (Expect::Gone, ContactRead::Missing) => RecordCheck::Holds,
        (Expect::Gone, ContactRead::Found(_)) => RecordCheck::Contradicted,
        (Expect::Value { absent_holds, .. }, ContactRead::Missing) => {
            if *absent_holds {
                RecordCheck::Holds
            } else {
                RecordCheck::Nothing
            }
        }
        (
            Expect::Value {
                property, value, ..
            },
            ContactRead::Found(properties),
        ) => match properties.get(property) {
            Some(Some(held)) if held == value => RecordCheck::Holds,
            _ => RecordCheck::Contradicted,
        },
    }
}
