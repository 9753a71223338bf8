//! Hush connector for The Trade Desk (role THIRD_PARTY).
//!
//! An opt-out or a limit on sensitive data sends the person's ids with `RequestType: OptOut`, a
//! deletion with `RequestType: Deletion`, through the Data API's
//! `POST /data/deletion-optout/advertiser` (header `TTD-Auth`). The ids are the ones the
//! configured `id_map` names (by default the raw mobile advertising id as `DAID`); a UID2 is sent
//! only when identity resolution already put one on the request, never derived here. A person
//! with no usable id is `NOT_FOUND` with the reason. TTD offers no read-back, so every accepted
//! request is `UNVERIFIABLE`. See the crate README for the configuration block.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults, Operation,
    SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind};
use hush_contracts::redact::{redact, REDACTED};

pub use client::TradeDeskClient;
pub use config::{TradeDeskConfig, TradeDeskSettings, KIND};

use request::{DsrCall, DsrPlan, ItemPlan, RequestType};

/// Most work items one call to the connector carries: TTD's item limit per call, which one id
/// per person fills.
pub const MAX_BATCH: usize = request::MAX_ITEMS_PER_CALL;

/// Sends opt-outs and deletions to The Trade Desk for one advertiser.
#[derive(Debug, Clone)]
pub struct TradeDesk {
    client: TradeDeskClient,
}

/// What the calls carrying one item's ids answered.
#[derive(Default)]
struct Outcome {
    error: Option<ConnectorError>,
    refused: Vec<String>,
    http_status: u16,
    trace_ids: Vec<String>,
}

impl Outcome {
    fn fail(&mut self, error: &ConnectorError) {
        self.error.get_or_insert_with(|| error.clone());
    }
}

impl TradeDesk {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: TradeDeskConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: TradeDeskClient::new(config)?,
        })
    }

    /// Makes the plan's calls in order. After a rate limit or a transient failure nothing more
    /// is sent: the rest of the batch waits with the same error.
    async fn execute(&self, plan: &DsrPlan) -> ItemResults {
        let mut outcomes: Vec<Outcome> = plan.items.iter().map(|_| Outcome::default()).collect();
        let mut halted: Option<ConnectorError> = None;
        for call in &plan.calls {
            if let Some(error) = &halted {
                call.owners.iter().for_each(|o| outcomes[*o].fail(error));
                continue;
            }
            match self.client.submit(&call.body).await {
                Ok((status, response)) => {
                    record_acceptance(call, status, response, &mut outcomes);
                }
                Err(error) => {
                    let error = scrub(&error, call);
                    if error.is_retryable() {
                        halted = Some(error.clone());
                    }
                    call.owners.iter().for_each(|o| outcomes[*o].fail(&error));
                }
            }
        }
        plan.results(outcomes, |item, outcome| self.result(item, outcome))
    }

    fn result(&self, item: &ItemPlan, outcome: Outcome) -> Result<Completion, ConnectorError> {
        let (request_type, id_types, skipped) =
            match item {
                ItemPlan::OptIn => return Ok(Completion::not_applicable(
                    "The Trade Desk has no call that reverses an opt-out; an opt-in is not applied",
                )
                .with_verification(verify::VERIFICATION)),
                ItemPlan::NoUsableId(reason) => {
                    return Ok(Completion::not_found(reason.clone())
                        .with_verification(verify::VERIFICATION))
                }
                ItemPlan::Send {
                    request_type,
                    id_types,
                    skipped,
                } => (*request_type, id_types, skipped),
            };
        if let Some(error) = outcome.error {
            return Err(error);
        }
        if !outcome.refused.is_empty() {
            return Err(ConnectorError::Permanent(format!(
                "The Trade Desk refused {} of the person's ids: {}",
                outcome.refused.len(),
                outcome.refused.join("; ")
            )));
        }
        Ok(self.completion(request_type, id_types, skipped, outcome))
    }

    fn completion(
        &self,
        request_type: RequestType,
        id_types: &[&str],
        skipped: &str,
        outcome: Outcome,
    ) -> Completion {
        let config = self.client.config();
        let deletion = request_type == RequestType::Deletion;
        let mut evidence = Evidence::new();
        evidence.insert("advertiser_id".into(), config.advertiser_id.clone());
        evidence.insert(
            "request_type".into(),
            if deletion { "Deletion" } else { "OptOut" }.into(),
        );
        evidence.insert("http_status".into(), outcome.http_status.to_string());
        evidence.insert("id_types".into(), id_types.join(","));
        evidence.insert("data_load_trace_ids".into(), outcome.trace_ids.join(","));
        evidence.insert("verification_note".into(), verify::REASON.into());
        if !skipped.is_empty() {
            evidence.insert("ids_left_out".into(), skipped.to_owned());
        }
        let action = if deletion {
            ConfirmationAction::Deleted
        } else {
            ConfirmationAction::Suppressed
        };
        Completion::new(action, evidence).with_verification(verify::VERIFICATION)
    }
}

/// Notes, for each owner of `call`, the acceptance and any line TTD refused.
fn record_acceptance(
    call: &DsrCall,
    status: u16,
    response: response::DsrResponse,
    outcomes: &mut [Outcome],
) {
    let trace = &call.body.data_load_trace_id;
    for owner in &call.owners {
        let outcome = &mut outcomes[*owner];
        outcome.http_status = status;
        if !outcome.trace_ids.contains(trace) {
            outcome.trace_ids.push(trace.clone());
        }
    }
    for line in response.failed_lines.unwrap_or_default() {
        let text = redact(&line.describe(), &raw_values(call), REDACTED);
        match line.item_index().and_then(|index| call.owners.get(index)) {
            Some(owner) => outcomes[*owner].refused.push(text),
            None => {
                let error = ConnectorError::Permanent(format!(
                    "The Trade Desk refused a line that names no item of the call, so no id of \
                     it can be taken as applied: {text}"
                ));
                call.owners.iter().for_each(|o| outcomes[*o].fail(&error));
            }
        }
    }
}

fn raw_values(call: &DsrCall) -> Vec<&str> {
    call.body
        .items
        .iter()
        .flat_map(|item| item.values().map(String::as_str))
        .collect()
}

/// `error` with the call's raw ids replaced, in case TTD echoed one.
fn scrub(error: &ConnectorError, call: &DsrCall) -> ConnectorError {
    let values = raw_values(call);
    match error {
        ConnectorError::RetryAfter { after, detail } => ConnectorError::RetryAfter {
            after: *after,
            detail: redact(detail, &values, REDACTED),
        },
        ConnectorError::Transient(detail) => {
            ConnectorError::Transient(redact(detail, &values, REDACTED))
        }
        ConnectorError::Permanent(detail) => {
            ConnectorError::Permanent(redact(detail, &values, REDACTED))
        }
    }
}

/// Whether `operation` may carry a request of `kind`; the refusal says why not.
fn refusal(operation: Operation, work: &SuppressionWork) -> Option<ConnectorError> {
    let is_delete = work.kind == RequestKind::Delete;
    match (operation, is_delete) {
        (Operation::Delete, false) => Some(ConnectorError::Permanent(format!(
            "request {} is not a deletion and cannot be applied through delete",
            work.request_id
        ))),
        (Operation::Suppress, true) => Some(ConnectorError::Permanent(format!(
            "request {} is a DELETE, which The Trade Desk applies through delete, not suppress",
            work.request_id
        ))),
        _ => None,
    }
}

#[async_trait]
impl Connector for TradeDesk {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// Suppress sends `RequestType: OptOut` (`SUPPRESSED`), Delete `RequestType: Deletion`
    /// (`DELETED`), both `UNVERIFIABLE`; an opt-in is `NOT_APPLICABLE` and a person with no id
    /// TTD accepts `NOT_FOUND` with the reason.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let mut refused: Vec<Option<ConnectorError>> =
            batch.iter().map(|work| refusal(operation, work)).collect();
        let (indices, works): (Vec<usize>, Vec<SuppressionWork>) = batch
            .iter()
            .enumerate()
            .filter(|(index, _)| refused[*index].is_none())
            .map(|(index, work)| (index, work.clone()))
            .unzip();
        let config = self.client.config();
        let plan = request::plan(
            &works,
            &config.advertiser_id,
            config.data_provider_id.as_deref(),
            &config.id_map,
        );
        let mut applied = self.execute(&plan).await.into_iter();
        let mut results = Vec::with_capacity(batch.len());
        let mut next = indices.into_iter().peekable();
        for (index, refusal) in refused.iter_mut().enumerate() {
            if next.peek() == Some(&index) {
                next.next();
                results.push(applied.next().unwrap_or_else(|| {
                    Err(ConnectorError::Permanent(
                        "internal error: item left without an outcome".into(),
                    ))
                }));
            } else if let Some(error) = refusal.take() {
                results.push(Err(error));
            }
        }
        Ok(results)
    }
}

hush_contracts::connector_factory!(TradeDesk, TradeDeskConfig, &[KIND], MAX_BATCH);
