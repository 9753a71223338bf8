//! Hush connector for Braze (marketing automation, role `SERVICE_PROVIDER`).
//!
//! The subject's profiles are found with `/users/export/ids` (by `external_id`, the business's
//! customer id, and by email address, which finds every profile holding it). An opt-out or a
//! limit sets a boolean custom attribute on each through `/users/track` (and, when configured,
//! unsubscribes the profile from email); a deletion deletes each through `/users/delete` by
//! `braze_id`. Both are read back through the same export until Braze shows them, within the
//! recipient's wait. See the crate README for configuration and evidence.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::collections::BTreeSet;

use async_trait::async_trait;
use hush_connector_kit::outcome::{self, keep_deciding, Halt};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    fill_results, BatchResult, Completion, Connector, ConnectorError, Evidence, ItemSlot,
    Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::{BrazeClient, Profile};
pub use config::{BrazeConfig, BrazeSettings, KIND};

use request::{Change, Lookup, Subject, Target};
use verify::Expect;

/// Most work items one call to the connector carries: Braze's `/users/delete` limit of 50
/// identifiers a request (larger batches would only be cut again).
pub const MAX_BATCH: usize = request::MAX_DELETE_IDS;

/// Applies privacy requests to the user profiles of one Braze workspace.
pub struct BrazeConnector {
    client: BrazeClient,
}

/// Per-item account of the profile writes made for it.
#[derive(Default)]
struct Tally {
    matched: usize,
    applied: usize,
    reported_deleted: u64,
    last_status: u16,
    error: Option<ConnectorError>,
}

impl Tally {
    fn fail(&mut self, error: ConnectorError) {
        keep_deciding(&mut self.error, error);
    }
}

impl BrazeConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: BrazeConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: BrazeClient::new(config)?,
        })
    }

    /// Finds every item's profiles; items with nothing to act on, or whose lookup failed (every
    /// item, when one lookup was rate limited or failed transiently), get their result here.
    async fn find_profiles(
        &self,
        planned: &[(usize, Subject)],
        results: &mut [ItemSlot],
    ) -> Vec<(usize, Vec<String>)> {
        let lookups: BTreeSet<&Lookup> = planned
            .iter()
            .flat_map(|(_, subject)| &subject.lookups)
            .collect();
        let lookups: Vec<&Lookup> = lookups.into_iter().collect();
        let found = self.client.find(&lookups).await;
        // After a rate limit or a transient failure, nothing is written: the whole batch is
        // retried later rather than half of it pressed on a struggling API.
        let halted = found
            .values()
            .filter_map(|outcome| outcome.as_ref().err())
            .find(|error| error.is_retryable())
            .cloned();
        let mut targets = Vec::new();
        for (item, subject) in planned {
            let mut tally = Tally::default();
            let mut braze_ids: Vec<String> = Vec::new();
            for lookup in &subject.lookups {
                match found.get(lookup) {
                    Some(Ok(profiles)) => {
                        for profile in profiles {
                            if !braze_ids.contains(&profile.braze_id) {
                                braze_ids.push(profile.braze_id.clone());
                            }
                        }
                    }
                    Some(Err(error)) => tally.fail(scrub(error, subject)),
                    None => tally.fail(ConnectorError::Transient(
                        "internal error: a lookup was not made".into(),
                    )),
                }
            }
            if let Some(error) = &halted {
                tally.fail(scrub(error, subject));
            }
            results[*item] = match tally.error {
                Some(error) => Some(Err(error)),
                None if braze_ids.is_empty() => Some(Ok(Completion::not_found(
                    "no Braze profile holds the subject's external_id or email address",
                ))),
                None => {
                    targets.push((*item, braze_ids));
                    None
                }
            };
        }
        targets
    }

    /// Writes each item's change on its profiles, 75 attribute objects a `/users/track` call.
    async fn track(
        &self,
        batch: &[SuppressionWork],
        targets: &[(usize, Vec<String>)],
        tallies: &mut [Tally],
    ) {
        let settings = &self.client.config().settings;
        let pairs = targets.iter().flat_map(|(item, braze_ids)| {
            let change = request::change_for(batch[*item].kind, settings);
            braze_ids
                .iter()
                .filter_map(move |id| change.clone().map(|change| (*item, (id.clone(), change))))
        });
        let mut halt = Halt::default();
        for call in request::calls(request::group(pairs), request::MAX_TRACK_ATTRIBUTES) {
            if let Some(error) = halt.halted() {
                fail_all(&call, error, tallies);
                continue;
            }
            let objects = call
                .iter()
                .map(|target| request::attribute_object(&target.key.0, &target.key.1))
                .collect();
            match self.client.track(objects).await {
                Ok(outcome) => {
                    for (index, target) in call.iter().enumerate() {
                        let refusal = outcome.refused.iter().find(|(i, _)| *i == index);
                        for item in &target.items {
                            let tally = &mut tallies[*item];
                            tally.last_status = outcome.status;
                            match refusal {
                                Some((_, text)) => {
                                    tally.fail(ConnectorError::Permanent(text.clone()))
                                }
                                None => tally.applied += 1,
                            }
                        }
                    }
                }
                Err(error) => {
                    halt.note(&error);
                    fail_all(&call, &error, tallies);
                }
            }
        }
    }

    /// Deletes each item's profiles by `braze_id`, 50 a `/users/delete` call.
    async fn delete(&self, targets: &[(usize, Vec<String>)], tallies: &mut [Tally]) {
        let pairs = targets
            .iter()
            .flat_map(|(item, braze_ids)| braze_ids.iter().map(move |id| (*item, id.clone())));
        let mut halt = Halt::default();
        for call in request::calls(request::group(pairs), request::MAX_DELETE_IDS) {
            if let Some(error) = halt.halted() {
                fail_all(&call, error, tallies);
                continue;
            }
            let ids: Vec<&str> = call.iter().map(|target| target.key.as_str()).collect();
            match self.client.delete(&ids).await {
                Ok((status, deleted)) => {
                    let mut counted = BTreeSet::new();
                    for target in &call {
                        for item in &target.items {
                            let tally = &mut tallies[*item];
                            tally.applied += 1;
                            tally.last_status = status;
                            if counted.insert(*item) {
                                tally.reported_deleted += deleted;
                            }
                        }
                    }
                }
                Err(error) => {
                    halt.note(&error);
                    fail_all(&call, &error, tallies);
                }
            }
        }
    }

    async fn apply_batch(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let mut results: Vec<ItemSlot> = vec![None; batch.len()];
        let mut planned: Vec<(usize, Subject)> = Vec::new();
        for (item, work) in batch.iter().enumerate() {
            if let Some(refusal) = mismatch(operation, work) {
                results[item] = Some(Err(ConnectorError::Permanent(refusal)));
                continue;
            }
            match request::subject_of(work) {
                Err(reason) => results[item] = Some(Err(ConnectorError::Permanent(reason))),
                Ok(None) => {
                    results[item] = Some(Ok(Completion::not_found(
                        "no CUSTOMER_ID or EMAIL identifier: Braze profiles are found by \
                         external_id or email address",
                    )))
                }
                Ok(Some(subject)) => planned.push((item, subject)),
            }
        }
        let targets = self.find_profiles(&planned, &mut results).await;
        let mut tallies: Vec<Tally> = batch.iter().map(|_| Tally::default()).collect();
        for (item, braze_ids) in &targets {
            tallies[*item].matched = braze_ids.len();
        }
        match operation {
            Operation::Suppress => self.track(batch, &targets, &mut tallies).await,
            Operation::Delete => self.delete(&targets, &mut tallies).await,
        }

        let settings = &self.client.config().settings;
        let mut waiting: Vec<(usize, &Subject, Expect)> = Vec::new();
        for (item, subject) in &planned {
            if results[*item].is_some() {
                continue;
            }
            if let Some(error) = tallies[*item].error.take() {
                results[*item] = Some(Err(scrub(&error, subject)));
                continue;
            }
            waiting.push((*item, subject, expectation(batch[*item].kind, settings)));
        }
        let reads: Vec<(&Subject, &Expect)> = waiting.iter().map(|(_, s, e)| (*s, e)).collect();
        let config = self.client.config();
        let statuses = verify::wait_until_shown(&self.client, &reads, config.waits).await;
        for ((item, _, expect), verification) in waiting.iter().zip(statuses) {
            let completion = completion(&tallies[*item], expect, verification);
            tracing::info!(
                recipient = %config.recipient_id,
                request_id = %batch[*item].request_id,
                action = ?completion.action,
                verification = ?completion.verification,
                "Braze"
            );
            results[*item] = Some(Ok(completion));
        }
        Ok(fill_results(results))
    }
}

/// Why an item cannot go with `operation`, if it cannot: a deletion only through `Delete`,
/// and `Delete` only for a deletion.
fn mismatch(operation: Operation, work: &SuppressionWork) -> Option<String> {
    let is_delete = work.kind == RequestKind::Delete;
    match (operation, is_delete) {
        (Operation::Delete, false) => Some(format!(
            "request {} is a {}, not a deletion; Braze profiles are deleted only for DELETE",
            work.request_id,
            work.kind.as_str()
        )),
        (Operation::Suppress, true) => Some(format!(
            "request {} is a DELETE, which Braze applies through delete, not suppress",
            work.request_id
        )),
        _ => None,
    }
}

/// What the read-back of a request of `kind` looks for.
fn expectation(kind: RequestKind, settings: &BrazeSettings) -> Expect {
    match request::change_for(kind, settings) {
        Some(change) => Expect::Holds(change),
        None => Expect::Gone,
    }
}

fn completion(tally: &Tally, expect: &Expect, verification: VerificationStatus) -> Completion {
    let mut evidence = Evidence::new();
    evidence.insert("http_status".into(), tally.last_status.to_string());
    evidence.insert("profiles_matched".into(), tally.matched.to_string());
    let action = match expect {
        Expect::Gone => {
            evidence.insert("profiles_deleted".into(), tally.applied.to_string());
            evidence.insert(
                "braze_reported_deleted".into(),
                tally.reported_deleted.to_string(),
            );
            ConfirmationAction::Deleted
        }
        Expect::Holds(Change {
            attribute,
            value,
            unsubscribe_email,
        }) => {
            evidence.insert("profiles_updated".into(), tally.applied.to_string());
            evidence.insert("attribute".into(), attribute.clone());
            evidence.insert("value".into(), value.to_string());
            if *unsubscribe_email {
                evidence.insert("email_subscribe".into(), "unsubscribed".into());
            }
            ConfirmationAction::Flagged
        }
    };
    Completion::new(action, evidence).with_verification(verification)
}

fn fail_all<K>(call: &[Target<K>], error: &ConnectorError, tallies: &mut [Tally]) {
    for target in call {
        for item in &target.items {
            tallies[*item].fail(error.clone());
        }
    }
}

/// `error` with the subject's raw identifiers replaced, in case Braze echoed one.
fn scrub(error: &ConnectorError, subject: &Subject) -> ConnectorError {
    let raws = subject.raw_values();
    match error {
        ConnectorError::RetryAfter { after, detail } => ConnectorError::RetryAfter {
            after: *after,
            detail: response::redacted(detail, &raws),
        },
        ConnectorError::Transient(detail) => {
            ConnectorError::Transient(response::redacted(detail, &raws))
        }
        ConnectorError::Permanent(detail) => {
            ConnectorError::Permanent(response::redacted(detail, &raws))
        }
    }
}

#[async_trait]
impl Connector for BrazeConnector {
    /// Suppress writes the request's attribute on every profile of the subject (opt-in: the
    /// opt-out attribute back to `false`) → `FLAGGED`; Delete deletes every profile →
    /// `DELETED`. No profile, or no customer id or email to find one by → `NOT_FOUND` with the
    /// reason. Each outcome is read back until Braze shows it or `max_wait_ms` passes
    /// (`PENDING`).
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.apply_batch(operation, batch).await
    }

    /// Reads back the item's profiles (see [`verify::read_back`]).
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        outcome::verify_through_batch(self, work, completion).await
    }

    /// An export carries up to 50 external ids.
    fn verify_batch_limit(&self) -> usize {
        request::MAX_EXPORT_EXTERNAL_IDS
    }

    /// Reads back the items left `PENDING` (`FLAGGED` or `DELETED` not shown yet) together;
    /// every other outcome keeps its status.
    async fn verify_batch(
        &self,
        items: &[(&SuppressionWork, &Completion)],
    ) -> Vec<VerificationStatus> {
        let settings = &self.client.config().settings;
        let plans: Vec<Option<(Subject, Expect)>> = items
            .iter()
            .map(|(work, completion)| {
                let reread = completion.verification == VerificationStatus::Pending
                    && matches!(
                        completion.action,
                        ConfirmationAction::Flagged | ConfirmationAction::Deleted
                    );
                if !reread {
                    return None;
                }
                let subject = request::subject_of(work).ok()??;
                Some((subject, expectation(work.kind, settings)))
            })
            .collect();
        let reads: Vec<(&Subject, &Expect)> = plans.iter().flatten().map(|(s, e)| (s, e)).collect();
        let mut statuses = verify::read_back(&self.client, &reads).await.into_iter();
        items
            .iter()
            .zip(&plans)
            .map(|((_, completion), plan)| match plan {
                Some(_) => statuses.next().unwrap_or(completion.verification),
                None => completion.verification,
            })
            .collect()
    }
}

hush_contracts::connector_factory!(BrazeConnector, BrazeConfig, &[KIND], MAX_BATCH);
