//! Hush connector for Salesforce (CRM, a service provider).
//!
//! A person is found by plain email among Contacts and Leads (SOQL). Their privacy choices are
//! written on the `Individual` data-privacy record linked to those records, through sObject
//! Collections (at most 200 records a call):
//!
//! - opt-out of sale/share and limit-SPI set the configured `HasOptedOut*` flags;
//! - a consumer-initiated opt-in clears the opt-out flags;
//! - a deletion sets `ShouldForget`, then deletes the Contacts and Leads (unless configured to
//!   keep them).
//!
//! A Contact or Lead without an `Individual` gets one (created and linked) unless
//! `create_individuals = false`. Outcomes are read back by [`Connector::verify`]. The
//! simulator used by the tests and the demo lives in the `sim` module, behind the `sim` feature.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults, Operation,
    SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};
use serde_json::Value;

use crate::client::SalesforceClient;
use crate::config::SalesforceConfig;
use crate::request::{
    emails_of, individual_fields, individual_update, link_to_individual, new_individual,
    IndividualFields, PersonRecord, SObjectType, SaveResult, MAX_COLLECTION, PERSON_OBJECTS,
};
use crate::response::{already_deleted, classify_record_error};
use crate::verify::EVIDENCE_INDIVIDUAL_IDS;

/// The connector kind of a Salesforce recipient in the recipients file.
pub const KIND: &str = "salesforce";

/// The Salesforce connector of one recipient. Idempotent per request: running a request again
/// finds the same records and writes the same values.
pub struct SalesforceConnector {
    client: SalesforceClient,
}

impl SalesforceConnector {
    /// A connector for an already resolved configuration.
    pub fn new(config: SalesforceConfig) -> Result<Self, ConfigError> {
        let client = SalesforceClient::new(config)?;
        Ok(Self { client })
    }

    fn default_wait(&self) -> Duration {
        Duration::from_secs(self.client.config().settings.retry_after_default_secs)
    }

    async fn apply_batch(
        &self,
        batch: &[SuppressionWork],
        call: Operation,
    ) -> Result<ItemResults, ConnectorError> {
        let mut slots: Vec<Slot> = batch.iter().map(|work| self.open(work, call)).collect();
        self.look_up(&mut slots).await?;
        self.link_individuals(&mut slots, call).await?;
        self.write_individuals(&mut slots).await?;
        if call == Operation::Delete && self.client.config().settings.delete_records {
            self.delete_records(&mut slots).await?;
        }
        Ok(slots
            .into_iter()
            .map(|slot| self.finish(slot, call))
            .collect())
    }

    /// Checks the item belongs to this call and has emails to search by.
    fn open(&self, work: &SuppressionWork, call: Operation) -> Slot {
        if (work.kind == RequestKind::Delete) != (call == Operation::Delete) {
            return Slot::Done(Err(ConnectorError::Permanent(format!(
                "a {} request cannot be applied by {}",
                work.kind.as_str(),
                match call {
                    Operation::Suppress => "a suppression",
                    Operation::Delete => "a deletion",
                }
            ))));
        }
        let emails = match emails_of(work) {
            Ok(emails) => emails,
            Err(error) => return Slot::Done(Err(error)),
        };
        if emails.is_empty() {
            return Slot::Done(Ok(self.not_found(
                "the request has no EMAIL identifier and Salesforce records are matched by email",
                VerificationStatus::Unverifiable,
            )));
        }
        let (fields, action) = individual_fields(work.kind, &self.client.config().settings);
        Slot::Open(Subject {
            emails,
            fields,
            action,
            records: Vec::new(),
            individuals: BTreeSet::new(),
            created: 0,
            without_individual: 0,
            deleted: 0,
            already_deleted: 0,
        })
    }

    /// Finds each subject's Contacts and Leads, one query per object for each chunk of the
    /// batch's emails; a subject with none is NOT_FOUND.
    async fn look_up(&self, slots: &mut [Slot]) -> Result<(), ConnectorError> {
        let mut emails: Vec<String> = Vec::new();
        for slot in slots.iter() {
            let Slot::Open(subject) = slot else { continue };
            for email in &subject.emails {
                if !emails.contains(email) {
                    emails.push(email.clone());
                }
            }
        }
        if emails.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        for object in PERSON_OBJECTS {
            found.push((object, self.client.people_by_email(object, &emails).await?));
        }
        for slot in slots.iter_mut() {
            let Slot::Open(subject) = slot else { continue };
            for email in &subject.emails {
                for (object, by_email) in &found {
                    for record in by_email.get(email).into_iter().flatten() {
                        if !subject.records.iter().any(|(_, r)| r.id == record.id) {
                            subject.records.push((*object, record.clone()));
                        }
                    }
                }
            }
            subject.individuals = subject
                .records
                .iter()
                .filter_map(|(_, r)| r.individual_id.clone())
                .collect();
            if subject.records.is_empty() {
                *slot = Slot::Done(Ok(self.not_found(
                    "no Contact or Lead has the subject's email",
                    VerificationStatus::Verified,
                )));
            }
        }
        Ok(())
    }

    /// Gives every matched record an `Individual`: records without one are linked to the
    /// subject's existing `Individual`, or to one created for the subject. A record shared by
    /// two subjects of the batch is claimed by the first.
    async fn link_individuals(
        &self,
        slots: &mut [Slot],
        call: Operation,
    ) -> Result<(), ConnectorError> {
        let settings = &self.client.config().settings;
        let mut claims: HashMap<String, usize> = HashMap::new();
        for (index, slot) in slots.iter_mut().enumerate() {
            let Slot::Open(subject) = slot else { continue };
            let unlinked = subject
                .unlinked()
                .map(|(_, id)| id.to_owned())
                .collect::<Vec<_>>();
            if unlinked.is_empty() {
                continue;
            }
            if !settings.create_individuals {
                subject.without_individual = unlinked.len();
                let deletes_anyway = call == Operation::Delete && settings.delete_records;
                if subject.individuals.is_empty() && !deletes_anyway {
                    *slot = Slot::Done(Ok(self.not_found(
                        "the subject's Contact/Lead records have no Individual and \
                         create_individuals = false",
                        VerificationStatus::Unverifiable,
                    )));
                }
                continue;
            }
            for id in unlinked {
                claims.entry(id).or_insert(index);
            }
        }
        if claims.is_empty() {
            return Ok(());
        }

        // The Individual each claiming subject links its records to.
        let mut targets: HashMap<usize, Result<String, ConnectorError>> = HashMap::new();
        let mut creators = Vec::new();
        for (index, slot) in slots.iter().enumerate() {
            let Slot::Open(subject) = slot else { continue };
            if let Some(existing) = subject.individuals.iter().next() {
                targets.insert(index, Ok(existing.clone()));
            } else if claims.values().any(|&owner| owner == index) {
                creators.push(index);
            }
        }
        for chunk in creators.chunks(MAX_COLLECTION) {
            let records = vec![new_individual(); chunk.len()];
            let results = self.client.create(&records).await?;
            for (&index, result) in chunk.iter().zip(results) {
                targets.insert(index, self.saved_id(result));
            }
        }

        // Link each claimed record to its claimer's Individual, grouped by object type:
        // Salesforce processes a mixed-type collection as runs of one type and refuses more
        // than 10 runs, so Contacts and Leads interleaved in batch order would fail whole.
        let mut outcome: HashMap<String, Result<String, ConnectorError>> = HashMap::new();
        let mut links: Vec<(SObjectType, String, String, Value)> = Vec::new();
        for (index, slot) in slots.iter().enumerate() {
            let Slot::Open(subject) = slot else { continue };
            for (object, id) in subject.unlinked() {
                if claims.get(id) != Some(&index) {
                    continue;
                }
                match &targets[&index] {
                    Ok(individual) => links.push((
                        object,
                        id.to_owned(),
                        individual.clone(),
                        link_to_individual(object, id, individual),
                    )),
                    Err(error) => {
                        outcome.insert(id.to_owned(), Err(error.clone()));
                    }
                }
            }
        }
        links.sort_by_key(|(object, ..)| object.as_str());
        for chunk in links.chunks(MAX_COLLECTION) {
            let records: Vec<Value> = chunk.iter().map(|(.., record)| record.clone()).collect();
            let results = self.client.update(&records).await?;
            for ((_, id, individual, _), result) in chunk.iter().zip(results) {
                let linked = self.saved_id(result).map(|_| individual.clone());
                outcome.insert(id.clone(), linked);
            }
        }

        for (index, slot) in slots.iter_mut().enumerate() {
            let Slot::Open(subject) = slot else { continue };
            let mut failure = None;
            let unlinked: Vec<String> = subject.unlinked().map(|(_, id)| id.to_owned()).collect();
            for id in unlinked {
                match &outcome[&id] {
                    Ok(individual) => {
                        subject.individuals.insert(individual.clone());
                    }
                    Err(error) => failure = failure.or(Some(error.clone())),
                }
            }
            if creators.contains(&index) && matches!(targets.get(&index), Some(Ok(_))) {
                subject.created = 1;
            }
            if let Some(error) = failure {
                *slot = Slot::Done(Err(error));
            }
        }
        Ok(())
    }

    /// Writes the request's fields on every subject's `Individual`s. Subjects of one batch that
    /// share an `Individual` are merged into one record; a later request wins on a field both
    /// write (the batch is in request order).
    async fn write_individuals(&self, slots: &mut [Slot]) -> Result<(), ConnectorError> {
        let mut writes: BTreeMap<String, IndividualFields> = BTreeMap::new();
        for slot in slots.iter() {
            let Slot::Open(subject) = slot else { continue };
            for individual in &subject.individuals {
                writes
                    .entry(individual.clone())
                    .or_default()
                    .extend(subject.fields.iter());
            }
        }
        let writes: Vec<(String, IndividualFields)> = writes.into_iter().collect();
        let mut outcome: HashMap<String, Result<(), ConnectorError>> = HashMap::new();
        for chunk in writes.chunks(MAX_COLLECTION) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(id, fields)| individual_update(id, fields))
                .collect();
            let results = self.client.update(&records).await?;
            for ((id, _), result) in chunk.iter().zip(results) {
                outcome.insert(id.clone(), self.saved_id(result).map(|_| ()));
            }
        }
        for slot in slots.iter_mut() {
            let Slot::Open(subject) = slot else { continue };
            let failure = subject
                .individuals
                .iter()
                .find_map(|id| outcome.get(id).and_then(|r| r.clone().err()));
            if let Some(error) = failure {
                *slot = Slot::Done(Err(error));
            }
        }
        Ok(())
    }

    /// Deletes the subjects' Contacts and Leads; a record already deleted counts as gone.
    async fn delete_records(&self, slots: &mut [Slot]) -> Result<(), ConnectorError> {
        let mut ids: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for slot in slots.iter() {
            let Slot::Open(subject) = slot else { continue };
            for (_, record) in &subject.records {
                if seen.insert(record.id.clone()) {
                    ids.push(record.id.clone());
                }
            }
        }
        let mut outcome: HashMap<String, Deletion> = HashMap::new();
        for chunk in ids.chunks(MAX_COLLECTION) {
            let results = self.client.delete(chunk).await?;
            for (id, result) in chunk.iter().zip(results) {
                let deletion = if result.success {
                    Deletion::Deleted
                } else if already_deleted(&result.errors) {
                    Deletion::AlreadyDeleted
                } else {
                    Deletion::Failed(classify_record_error(&result.errors, self.default_wait()))
                };
                outcome.insert(id.clone(), deletion);
            }
        }
        for slot in slots.iter_mut() {
            let Slot::Open(subject) = slot else { continue };
            let mut failure = None;
            for (_, record) in &subject.records {
                match &outcome[&record.id] {
                    Deletion::Deleted => subject.deleted += 1,
                    Deletion::AlreadyDeleted => subject.already_deleted += 1,
                    Deletion::Failed(error) => failure = failure.or(Some(error.clone())),
                }
            }
            if let Some(error) = failure {
                *slot = Slot::Done(Err(error));
            }
        }
        Ok(())
    }

    fn finish(&self, slot: Slot, call: Operation) -> Result<Completion, ConnectorError> {
        let subject = match slot {
            Slot::Done(result) => return result,
            Slot::Open(subject) => subject,
        };
        let settings = &self.client.config().settings;
        let count = |object: SObjectType| {
            subject
                .records
                .iter()
                .filter(|(o, _)| *o == object)
                .count()
                .to_string()
        };
        let mut evidence = self.evidence();
        evidence.insert("contacts_matched".into(), count(SObjectType::Contact));
        evidence.insert("leads_matched".into(), count(SObjectType::Lead));
        evidence.insert(
            EVIDENCE_INDIVIDUAL_IDS.into(),
            subject
                .individuals
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        );
        evidence.insert("individuals_created".into(), subject.created.to_string());
        evidence.insert(
            "fields_written".into(),
            subject
                .fields
                .iter()
                .map(|(field, value)| format!("{field}={value}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        if subject.without_individual > 0 {
            evidence.insert(
                "records_without_individual".into(),
                subject.without_individual.to_string(),
            );
        }
        if call == Operation::Delete && settings.delete_records {
            evidence.insert("records_deleted".into(), subject.deleted.to_string());
            evidence.insert(
                "records_already_deleted".into(),
                subject.already_deleted.to_string(),
            );
            if subject.deleted == 0 {
                evidence.insert(
                    "reason".into(),
                    "every matched Contact/Lead was already deleted".into(),
                );
                return Ok(Completion::new(ConfirmationAction::NotFound, evidence)
                    .with_verification(VerificationStatus::Verified));
            }
        }
        Ok(
            Completion::new(subject.action, evidence)
                .with_verification(VerificationStatus::Pending),
        )
    }

    fn evidence(&self) -> Evidence {
        Evidence::from([(
            "api_version".to_owned(),
            self.client.config().settings.api_version.clone(),
        )])
    }

    fn not_found(&self, reason: &str, verification: VerificationStatus) -> Completion {
        let mut evidence = self.evidence();
        evidence.insert("reason".into(), reason.into());
        Completion::new(ConfirmationAction::NotFound, evidence).with_verification(verification)
    }

    /// The id of a saved record, or its classified error.
    fn saved_id(&self, result: SaveResult) -> Result<String, ConnectorError> {
        match result {
            SaveResult {
                success: true,
                id: Some(id),
                ..
            } => Ok(id),
            SaveResult { errors, .. } => Err(classify_record_error(&errors, self.default_wait())),
        }
    }
}

#[async_trait]
impl Connector for SalesforceConnector {
    /// Sets the `Individual` flags of every person (and, for a deletion with
    /// `delete_records`, deletes their contacts and leads).
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.apply_batch(batch, operation).await
    }

    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        verify::verify(&self.client, work, completion).await
    }
}

/// One work item while a batch is applied: decided, or still open.
enum Slot {
    Done(Result<Completion, ConnectorError>),
    Open(Subject),
}

/// What is known about an open work item's person at Salesforce.
struct Subject {
    emails: Vec<String>,
    fields: IndividualFields,
    action: ConfirmationAction,
    records: Vec<(SObjectType, PersonRecord)>,
    individuals: BTreeSet<String>,
    created: usize,
    without_individual: usize,
    deleted: usize,
    already_deleted: usize,
}

impl Subject {
    /// Matched records with no `Individual`, as (object, id).
    fn unlinked(&self) -> impl Iterator<Item = (SObjectType, &str)> {
        self.records
            .iter()
            .filter(|(_, r)| r.individual_id.is_none())
            .map(|(object, r)| (*object, r.id.as_str()))
    }
}

/// The outcome of deleting one record.
enum Deletion {
    Deleted,
    AlreadyDeleted,
    Failed(ConnectorError),
}

hush_contracts::connector_factory!(
    SalesforceConnector,
    SalesforceConfig,
    &[KIND],
    MAX_COLLECTION
);
