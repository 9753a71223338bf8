//! Read-back. Mailchimp applies a status change, a tag and a permanent deletion at once, so
//! each member is read back right after the change: an opt-out is `VERIFIED` when the member
//! reads `unsubscribed` with the tag, a limit when it carries its tag, a deletion when the
//! member is gone (404). A member read back otherwise is `FAILED`; a failed read is `PENDING`
//! and `verify` reads again later.

use hush_contracts::events::VerificationStatus;

use crate::client::{MailchimpClient, Member};
use crate::request::UNSUBSCRIBED;

/// What a suppression must leave on each member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Whether the member must read `unsubscribed`.
    pub unsubscribed: bool,
    /// The tag the member must carry.
    pub tag: String,
}

impl Expected {
    /// Whether `member` shows the suppression: absent members receive nothing either.
    pub fn is_met_by(&self, member: Option<&Member>) -> bool {
        member.is_none_or(|member| {
            member.has_tag(&self.tag) && (!self.unsubscribed || member.status == UNSUBSCRIBED)
        })
    }
}

/// Reads every address back: `VERIFIED` when each shows `expected`, `FAILED` when one does
/// not, `PENDING` when a read failed.
pub async fn read_suppression(
    client: &MailchimpClient,
    emails: &[String],
    expected: &Expected,
) -> VerificationStatus {
    let mut status = VerificationStatus::Verified;
    for email in emails {
        match client.member(email).await {
            Ok(member) if expected.is_met_by(member.as_ref()) => {}
            Ok(_) => return VerificationStatus::Failed,
            Err(error) => {
                tracing::warn!("Mailchimp member read-back failed: {error}");
                status = VerificationStatus::Pending;
            }
        }
    }
    status
}

/// Reads every address back: `VERIFIED` when no member is left, `PENDING` while one is or a
/// read failed (a permanent deletion Mailchimp answered 204 for is read again later).
pub async fn read_deletion(client: &MailchimpClient, emails: &[String]) -> VerificationStatus {
    for email in emails {
        match client.member(email).await {
            Ok(None) => {}
            Ok(Some(_)) => return VerificationStatus::Pending,
            Err(error) => {
                tracing::warn!("Mailchimp member read-back failed: {error}");
                return VerificationStatus::Pending;
            }
        }
    }
    VerificationStatus::Verified
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(status: &str, tags: &[&str]) -> Member {
        Member {
            status: status.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn an_opt_out_needs_the_status_and_the_tag() {
        let opt_out = Expected {
            unsubscribed: true,
            tag: "hush_do_not_sell".into(),
        };
        assert!(opt_out.is_met_by(Some(&member("unsubscribed", &["HUSH_DO_NOT_SELL"]))));
        assert!(!opt_out.is_met_by(Some(&member("subscribed", &["hush_do_not_sell"]))));
        assert!(!opt_out.is_met_by(Some(&member("unsubscribed", &[]))));
        assert!(opt_out.is_met_by(None));
        let limit = Expected {
            unsubscribed: false,
            tag: "hush_limit_sensitive".into(),
        };
        assert!(limit.is_met_by(Some(&member("subscribed", &["hush_limit_sensitive"]))));
    }
}
