//! Hush connector for Mailchimp (marketing automation, role `SERVICE_PROVIDER`), through the
//! Marketing API 3.0's audience members.
//!
//! An opt-out unsubscribes the member holding each of the person's email addresses and tags
//! it; a limit on sensitive PI tags it (and unsubscribes it when so configured); a deletion
//! permanently deletes the member, which also stops the address from being re-imported. Each
//! member is read back right after the change. See the crate README for configuration and
//! evidence.

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
    BatchResult, Completion, Connector, ConnectorError, Evidence, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::{MailchimpClient, Member, Write};
pub use config::{MailchimpConfig, MailchimpSettings, KIND};

use verify::Expected;

/// Most work items one call to the connector carries: Mailchimp's member endpoints take one
/// member a call, so each request is one call (a few HTTP requests per address).
pub const MAX_BATCH: usize = 1;

/// Applies privacy requests to the members of one Mailchimp audience.
pub struct MailchimpConnector {
    client: MailchimpClient,
}

impl MailchimpConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: MailchimpConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: MailchimpClient::new(config)?,
        })
    }

    /// What a suppression of `kind` leaves on a member, or `None` for a kind not suppressed.
    fn expected_for(&self, kind: RequestKind) -> Option<Expected> {
        let settings = &self.client.config().settings;
        match kind {
            RequestKind::OptOutSaleShare => Some(Expected {
                unsubscribed: true,
                tag: settings.opt_out_tag.clone(),
            }),
            RequestKind::LimitSensitive => Some(Expected {
                unsubscribed: settings.unsubscribe_on_limit,
                tag: settings.limit_tag.clone(),
            }),
            RequestKind::OptInSaleShare | RequestKind::Delete => None,
        }
    }

    fn evidence(&self) -> Evidence {
        Evidence::from([(
            "list_id".to_owned(),
            self.client.config().settings.list_id.clone(),
        )])
    }

    async fn suppress(&self, work: &SuppressionWork) -> Result<Completion, ConnectorError> {
        match work.kind {
            RequestKind::Delete => {
                return Err(ConnectorError::Permanent(format!(
                    "request {} is a DELETE, which Mailchimp applies through delete, not suppress",
                    work.request_id
                )))
            }
            RequestKind::OptInSaleShare => {
                return Ok(Completion::not_applicable(
                    "opt-ins are not propagated to Mailchimp: re-subscribing needs the person's \
                     own confirmation",
                ))
            }
            RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => {}
        }
        let expected = self.expected_for(work.kind).expect("a suppressed kind");
        let emails = request::emails_of(work).map_err(ConnectorError::Permanent)?;
        if emails.is_empty() {
            return Ok(Completion::not_found(
                "no EMAIL identifier: Mailchimp names audience members by email address",
            ));
        }
        let mut present = Vec::new();
        for email in &emails {
            let mut write = Write::Applied;
            if expected.unsubscribed {
                write = self.client.set_status(email, request::UNSUBSCRIBED).await?;
            }
            if write == Write::Applied {
                write = self.client.add_tag(email, &expected.tag).await?;
            }
            if write == Write::Applied {
                present.push(email.clone());
            }
        }
        let mut evidence = self.evidence();
        evidence.insert("tag".into(), expected.tag.clone());
        evidence.insert("members_updated".into(), present.len().to_string());
        evidence.insert(
            "members_absent".into(),
            (emails.len() - present.len()).to_string(),
        );
        if expected.unsubscribed {
            evidence.insert("status".into(), request::UNSUBSCRIBED.into());
        }
        if present.is_empty() {
            return Ok(absent(
                evidence,
                "no member of the audience has the subject's email",
            ));
        }
        let verification = verify::read_suppression(&self.client, &present, &expected).await;
        let action = if expected.unsubscribed {
            ConfirmationAction::Suppressed
        } else {
            ConfirmationAction::Flagged
        };
        Ok(Completion::new(action, evidence).with_verification(verification))
    }

    async fn delete(&self, work: &SuppressionWork) -> Result<Completion, ConnectorError> {
        if work.kind != RequestKind::Delete {
            return Err(ConnectorError::Permanent(format!(
                "request {} is a {}, not a deletion; Mailchimp members are deleted only for DELETE",
                work.request_id,
                work.kind.as_str()
            )));
        }
        let emails = request::emails_of(work).map_err(ConnectorError::Permanent)?;
        if emails.is_empty() {
            return Ok(Completion::not_found(
                "no EMAIL identifier: Mailchimp names audience members by email address",
            ));
        }
        let mut deleted = Vec::new();
        for email in &emails {
            if self.client.delete_permanently(email).await? == Write::Applied {
                deleted.push(email.clone());
            }
        }
        let mut evidence = self.evidence();
        evidence.insert("members_deleted".into(), deleted.len().to_string());
        evidence.insert(
            "members_absent".into(),
            (emails.len() - deleted.len()).to_string(),
        );
        if deleted.is_empty() {
            return Ok(absent(
                evidence,
                "no member of the audience has the subject's email",
            ));
        }
        let verification = verify::read_deletion(&self.client, &deleted).await;
        Ok(Completion::new(ConfirmationAction::Deleted, evidence).with_verification(verification))
    }
}

/// `NOT_FOUND`, verified: Mailchimp answered 404 for every address in an audience it knows.
fn absent(mut evidence: Evidence, reason: &str) -> Completion {
    evidence.insert("reason".into(), reason.into());
    Completion::new(ConfirmationAction::NotFound, evidence)
        .with_verification(VerificationStatus::Verified)
}

#[async_trait]
impl Connector for MailchimpConnector {
    /// Suppress unsubscribes and tags (opt-out → `SUPPRESSED`) or tags (limit → `FLAGGED`,
    /// `SUPPRESSED` with `unsubscribe_on_limit`) each member; Delete permanently deletes them
    /// (`DELETED`). An audience holding none of the addresses, or a request with no email to
    /// look members up by → `NOT_FOUND` with the reason; opt-ins → `NOT_APPLICABLE`. After a
    /// retryable failure the rest of the batch is not sent.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let mut results = Vec::with_capacity(batch.len());
        let mut halted: Option<ConnectorError> = None;
        for work in batch {
            let result = match &halted {
                Some(error) => Err(error.clone()),
                None => match operation {
                    Operation::Suppress => self.suppress(work).await,
                    Operation::Delete => self.delete(work).await,
                },
            };
            if let Err(error) = &result {
                if error.is_retryable() {
                    halted.get_or_insert(error.clone());
                }
            }
            results.push(result);
        }
        Ok(results)
    }

    /// A `PENDING` outcome reads the members again: the suppression's status and tag, or the
    /// deletion's absence. Anything else keeps its status.
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        if completion.verification != VerificationStatus::Pending {
            return completion.verification;
        }
        let emails = match request::emails_of(work) {
            Ok(emails) if !emails.is_empty() => emails,
            _ => return completion.verification,
        };
        match completion.action {
            ConfirmationAction::Suppressed | ConfirmationAction::Flagged => {
                match self.expected_for(work.kind) {
                    Some(expected) => {
                        verify::read_suppression(&self.client, &emails, &expected).await
                    }
                    None => completion.verification,
                }
            }
            ConfirmationAction::Deleted => verify::read_deletion(&self.client, &emails).await,
            _ => completion.verification,
        }
    }
}

hush_contracts::connector_factory!(MailchimpConnector, MailchimpConfig, &[KIND], MAX_BATCH);
