//! The webhook connector: the fallback for every recipient without an API. Each request becomes
//! a signed "comply and forward" notice posted to the recipient, who may answer later with a
//! signed callback. See `README.md` for the configuration block.
//!
//! Opt-out, limit, opt-in, deletion and third-party notification all send the same notice; its
//! `kind` and `instruction` say what to do. A delivered notice is `NOTIFIED`; nothing can be read
//! back, so verification is `PENDING` (a callback is expected) or `UNVERIFIABLE`.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;

use async_trait::async_trait;
use hush_connector_kit::outcome::Halt;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, Evidence, ItemResults, Operation, SuppressionWork,
};
use hush_contracts::events::ConfirmationAction;

pub use client::{Delivery, WebhookClient};
pub use config::{WebhookConfig, WebhookSettings, KIND};
pub use request::{notice_for, Notice, NoticeIdentifier};

/// Sends signed notices to one webhook recipient.
#[derive(Debug, Clone)]
pub struct WebhookConnector {
    config: WebhookConfig,
    client: WebhookClient,
}

impl WebhookConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: WebhookConfig) -> Result<Self, ConfigError> {
        let client = WebhookClient::new(&config)?;
        Ok(Self { config, client })
    }

    /// Posts one notice per item, in order. After a rate limit or a transient failure the rest of
    /// the batch is not attempted and carries the same error, so it is retried as a whole.
    async fn send_notices(&self, batch: &[SuppressionWork]) -> ItemResults {
        let mut results = Vec::with_capacity(batch.len());
        let mut halt = Halt::default();
        for work in batch {
            if let Some(error) = halt.halted() {
                results.push(Err(error.clone()));
                continue;
            }
            let notice = notice_for(
                work,
                &self.config.recipient_id,
                self.config.callback_url.as_deref(),
            );
            let result = self
                .client
                .post_notice(&notice)
                .await
                .map(|delivery| self.completion(&notice, &delivery));
            if let Err(error) = &result {
                halt.note(error);
            }
            results.push(result);
        }
        results
    }

    fn completion(&self, notice: &Notice, delivery: &Delivery) -> Completion {
        let mut evidence = Evidence::new();
        evidence.insert("http_status".into(), delivery.status.to_string());
        evidence.insert("notice_id".into(), notice.notice_id.clone());
        evidence.insert("signature_timestamp".into(), delivery.signed_at.to_string());
        evidence.insert(
            "response_body_sha256".into(),
            delivery.response_sha256.clone(),
        );
        Completion::new(ConfirmationAction::Notified, evidence).with_verification(
            hush_contracts::callback::delivered_verification(self.config.callback_url.is_some()),
        )
    }
}

#[async_trait]
impl Connector for WebhookConnector {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// The notice is the suppression or deletion: a webhook recipient is told to comply and
    /// forward, and each notice names its request's kind, so both operations send it.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        Ok(self.send_notices(batch).await)
    }

    /// A notice's `PENDING` verification is settled by the recipient's callback to the
    /// auditor, never by reading anything back.
    fn reverifies_pending(&self) -> bool {
        false
    }
}

hush_contracts::connector_factory!(WebhookConnector, WebhookConfig, &[KIND], 1);
