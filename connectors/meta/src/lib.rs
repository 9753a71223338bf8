//! Hush connector for Meta Custom Audiences (role THIRD_PARTY).
//!
//! An opt-out, a limit on sensitive data or a deletion removes the person from the configured
//! customer-list Custom Audience with `DELETE /{api_version}/{audience_id}/users`, so the
//! business stops sharing them with Meta for targeting. Meta applies removals asynchronously
//! and offers no membership read-back, so every completion is `SUPPRESSED` and
//! `UNVERIFIABLE`. See the crate README for the configuration block.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::collections::BTreeSet;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    apply_except_opt_ins, BatchResult, Completion, Connector, ConnectorError, Evidence,
    ItemResults, Operation, SuppressionWork,
};
use hush_contracts::events::ConfirmationAction;

use crate::client::MetaClient;
use crate::config::MetaConfig;
use crate::request::{plan_removal, ItemPlan, RemovalPlan, Schema, MAX_ROWS_PER_CALL};
use crate::response::UsersResponse;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "meta_custom_audiences";

/// Removes people from one Meta Custom Audience.
#[derive(Debug, Clone)]
pub struct MetaCustomAudiences {
    client: MetaClient,
}

impl MetaCustomAudiences {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: MetaConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: MetaClient::new(config)?,
        })
    }

    async fn remove(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError> {
        let opt_in = not_applicable(
            "an opt-in is not applied to Meta audiences: the business's own audience sync adds \
             people back",
        );
        apply_except_opt_ins(batch, opt_in, |works| async move {
            self.execute(&plan_removal(&works, new_session_id())).await
        })
        .await
    }

    async fn execute(&self, plan: &RemovalPlan) -> Result<ItemResults, ConnectorError> {
        let config = self.client.config();
        let mut evidence: Vec<Evidence> = plan
            .items
            .iter()
            .map(|item| match item {
                ItemPlan::Send {
                    rows,
                    phones_without_raw,
                    madids_without_raw,
                } => {
                    let mut evidence = Evidence::new();
                    evidence.insert("audience_id".into(), config.audience_id.clone());
                    evidence.insert("api_version".into(), config.api_version.clone());
                    evidence.insert("rows_sent".into(), rows.to_string());
                    evidence.insert("removal".into(), verify::REMOVAL_TIMING.into());
                    if *phones_without_raw > 0 {
                        evidence
                            .insert("phone_keys_skipped".into(), phones_without_raw.to_string());
                    }
                    if *madids_without_raw > 0 {
                        evidence
                            .insert("madid_keys_skipped".into(), madids_without_raw.to_string());
                    }
                    evidence
                }
                ItemPlan::NothingToMatch | ItemPlan::Unsendable(_) => Evidence::new(),
            })
            .collect();
        let mut invalid_rows = vec![0usize; plan.items.len()];
        let mut failed: Vec<Option<ConnectorError>> = vec![None; plan.items.len()];

        for (index, call) in plan.calls.iter().enumerate() {
            match self.client.remove_users(call).await {
                Ok(response) => {
                    record_call(&response, call, &mut evidence, &mut invalid_rows);
                }
                Err(error) if index == 0 => return Err(error),
                Err(error) => {
                    for owner in plan.calls[index..].iter().flat_map(|c| &c.owners) {
                        failed[*owner] = Some(error.clone());
                    }
                    break;
                }
            }
        }

        Ok(plan
            .items
            .iter()
            .zip(evidence)
            .zip(invalid_rows)
            .zip(failed)
            .map(|(((item, evidence), invalid), failed)| match item {
                ItemPlan::NothingToMatch => Ok(not_found(
                    "no email, phone or mobile advertiser id: nothing Meta customer-list \
                     audiences match on",
                )),
                ItemPlan::Unsendable(reason) => Err(ConnectorError::Permanent(reason.clone())),
                ItemPlan::Send { rows, .. } => match failed {
                    Some(error) => Err(error),
                    None if invalid > 0 => Err(ConnectorError::Permanent(format!(
                        "Meta counted {invalid} of this person's {rows} row(s) as invalid \
                         entries (audience {}, session {}); the identifier hash does not match \
                         Meta's normalisation",
                        config.audience_id,
                        evidence.get("session_id").map_or("", String::as_str),
                    ))),
                    None => Ok(Completion::new(ConfirmationAction::Suppressed, evidence)
                        .with_verification(verify::VERIFICATION)),
                },
            })
            .collect())
    }
}

fn record_call(
    response: &UsersResponse,
    call: &request::RemovalCall,
    evidence: &mut [Evidence],
    invalid_rows: &mut [usize],
) {
    let samples = response.invalid_samples();
    for (row, owner) in call.payload.data.iter().zip(&call.owners) {
        if row.values().iter().any(|value| samples.contains(*value)) {
            invalid_rows[*owner] += 1;
        }
    }
    let schema = match call.payload.schema {
        Schema::Single(name) => name.to_owned(),
        Schema::MultiKey(names) => names.join(","),
    };
    let owners: BTreeSet<usize> = call.owners.iter().copied().collect();
    for owner in owners {
        let evidence = &mut evidence[owner];
        evidence.insert("schema".into(), schema.clone());
        append(evidence, "session_id", &response.session_id);
        append(evidence, "num_received", &response.num_received.to_string());
        append(
            evidence,
            "num_invalid_entries",
            &response.num_invalid_entries.to_string(),
        );
        if let Some(session) = call.session {
            append(evidence, "batch_seq", &session.batch_seq.to_string());
        }
    }
}

/// Adds `value` under `key`, comma-joined when a person's rows spanned several calls.
fn append(evidence: &mut Evidence, key: &str, value: &str) {
    evidence
        .entry(key.to_owned())
        .and_modify(|existing| {
            existing.push(',');
            existing.push_str(value);
        })
        .or_insert_with(|| value.to_owned());
}

fn not_applicable(reason: &str) -> Completion {
    Completion::not_applicable(reason).with_verification(verify::VERIFICATION)
}

fn not_found(reason: &str) -> Completion {
    Completion::not_found(reason).with_verification(verify::VERIFICATION)
}

/// A fresh session id, kept below 2^53 so that JSON readers that use doubles read it exactly.
fn new_session_id() -> u64 {
    (uuid::Uuid::new_v4().as_u64_pair().0 & ((1 << 53) - 1)).max(1)
}

#[async_trait]
impl Connector for MetaCustomAudiences {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// Removes every person from the Custom Audience, whatever the operation: removal is the
    /// only suppression Meta offers. A person with no email, phone or MAID is `NOT_FOUND` with
    /// the reason (no audience can hold them under anything Meta matches on); an opt-in is
    /// `NOT_APPLICABLE`.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.remove(batch).await
    }
}

hush_contracts::connector_factory!(MetaCustomAudiences, MetaConfig, &[KIND], MAX_ROWS_PER_CALL);
