//! The suppressor's batch handler: decode → plan → apply → record. Each stage lives in its own
//! module; this one only strings them together for one consumed batch. Re-verifications (from
//! the retry topic) skip planning: they are only read back again.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use hush_contracts::connector::Operation;
use hush_contracts::crypto::FieldCipher;
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{BatchHandler, HandlerError, IncomingMessage};

use crate::apply::Applier;
use crate::clock::Clock;
use crate::decode::{decode, Decoded};
use crate::done::DoneSet;
use crate::metrics;
use crate::plan::{plan, InFlight};
use crate::record::Record;

/// Everything one recipient's suppressor needs; shared by its requests and retry consumers.
pub struct Suppressor<R, C> {
    /// Codec for requests.
    pub codec: AvroCodec,
    /// Decrypts raw values, when a key is configured.
    pub cipher: Option<FieldCipher>,
    /// Requests already confirmed.
    pub done: Arc<DoneSet>,
    /// Calls the connector and records outcomes.
    pub applier: Applier<R, C>,
}

/// Shares one [`Suppressor`] between the requests consumer and the retry consumer.
pub struct SharedSuppressor<R, C>(pub Arc<Suppressor<R, C>>);

impl<R, C> Clone for SharedSuppressor<R, C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

#[async_trait]
impl<R: Record + 'static, C: Clock + 'static> BatchHandler for SharedSuppressor<R, C> {
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError> {
        let suppressor = &self.0;
        let applier = &suppressor.applier;
        let recipient_id = applier.recipient.id.as_str();
        // However far away a retry's due time is, this batch waits in place at most this long.
        let horizon = applier.clock.now_millis() + applier.max_in_place_wait().as_millis() as i64;
        let mut requests = Vec::new();
        let mut reverifications = Vec::new();
        for message in batch {
            match decode(&suppressor.codec, message, applier.clock.now_millis()).await? {
                Decoded::Malformed(reason) => applier.record.dead_letter(message, &reason).await?,
                Decoded::Request(request, state) => {
                    if applier.hold_until_due(message, &state, horizon).await? {
                        requests.push((message.clone(), *request, state));
                    }
                }
                Decoded::Reverify(request, state, reverify) => {
                    if applier.hold_until_due(message, &state, horizon).await? {
                        let work = crate::work::work_for(&request, suppressor.cipher.as_ref());
                        let item = InFlight::new(message.clone(), work, &state);
                        reverifications.push((item, *reverify));
                    }
                }
            }
        }
        applier.reverify(reverifications).await?;
        let plan = plan(
            requests,
            &applier.recipient,
            &suppressor.done,
            suppressor.cipher.as_ref(),
            applier.batch_limit(),
        );
        metrics::SKIPPED_DONE
            .with_label_values(&[recipient_id])
            .inc_by(plan.already_confirmed as u64);
        for (item, reason) in plan.not_applicable {
            applier.not_applicable(item, reason).await?;
        }
        // Suppressions first, then deletions, as consumed batches always were.
        let (suppress, delete): (Vec<_>, Vec<_>) = plan
            .calls
            .into_iter()
            .partition(|(operation, _)| *operation == Operation::Suppress);
        for calls in [suppress, delete] {
            // Vendor calls for different chunks overlap (the rate limiter still paces them);
            // any transient failure retries the batch, and what was confirmed is skipped then.
            let results: Vec<Result<(), HandlerError>> = futures::stream::iter(calls)
                .map(|(operation, items)| applier.apply(operation, items))
                .buffer_unordered(applier.section.concurrency.max(1))
                .collect()
                .await;
            results.into_iter().collect::<Result<(), _>>()?;
        }
        Ok(())
    }
}
