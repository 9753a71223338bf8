//! HTTP calls to the Mailchimp Marketing API 3.0 for one audience: a member's status update,
//! its tags, its permanent deletion and its read-back. Every call carries HTTP Basic auth with
//! the API key as the password (Mailchimp ignores the user name). A member Mailchimp does not
//! know (404) is reported as absent once the audience itself is known to exist, so a wrong
//! `list_id` is an error rather than a list of people "not found".

use hush_connector_kit::http::VendorAnswer;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::MailchimpConfig;
use crate::request;
use crate::response::{self, Answer};

/// The Basic-auth user name sent with the key (Mailchimp accepts any).
const BASIC_USER: &str = "hush";

/// Whether a write found the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Mailchimp applied it.
    Applied,
    /// The audience has no member with that address.
    Absent,
}

/// A member as read back: its status and tag names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `subscribed`, `unsubscribed`, `cleaned`, `pending`, `transactional` or `archived`.
    pub status: String,
    /// Names of the member's tags.
    pub tags: Vec<String>,
}

impl Member {
    /// Whether the member carries `tag` (Mailchimp's tag names are case-insensitive).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|name| name.eq_ignore_ascii_case(tag))
    }
}

/// A Mailchimp Marketing API client for one audience.
pub struct MailchimpClient {
    http: reqwest::Client,
    config: MailchimpConfig,
    list_found: OnceCell<()>,
}

impl MailchimpClient {
    /// Builds the client; the recipient's timeout bounds every call.
    pub fn new(config: MailchimpConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("mailchimp", config.timeout)?;
        Ok(Self {
            http,
            config,
            list_found: OnceCell::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MailchimpConfig {
        &self.config
    }

    /// `PATCH /3.0/lists/{list_id}/members/{subscriber_hash}` with `{"status": status}`.
    pub async fn set_status(&self, email: &str, status: &str) -> Result<Write, ConnectorError> {
        let call = self
            .http
            .patch(self.member_url(email, ""))
            .header("content-type", "application/json")
            .body(request::status_body(status).to_string());
        self.write(call, email).await
    }

    /// `POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags` making `tag` active.
    pub async fn add_tag(&self, email: &str, tag: &str) -> Result<Write, ConnectorError> {
        let call = self
            .http
            .post(self.member_url(email, "/tags"))
            .header("content-type", "application/json")
            .body(request::tag_body(tag).to_string());
        self.write(call, email).await
    }

    /// `POST /3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent`: erases
    /// the member's personal data; Mailchimp refuses to re-import the address afterwards.
    pub async fn delete_permanently(&self, email: &str) -> Result<Write, ConnectorError> {
        let call = self
            .http
            .post(self.member_url(email, "/actions/delete-permanent"));
        self.write(call, email).await
    }

    /// `GET /3.0/lists/{list_id}/members/{subscriber_hash}?fields=status,tags`: the member, or
    /// `None` when the audience has none with that address.
    pub async fn member(&self, email: &str) -> Result<Option<Member>, ConnectorError> {
        let call = self
            .http
            .get(self.member_url(email, ""))
            .query(&[("fields", "status,tags")]);
        match self.send(call, email).await? {
            Answer::NotFound => Ok(None),
            Answer::Done(document) => member_of(&document).map(Some),
        }
    }

    fn member_url(&self, email: &str, tail: &str) -> String {
        format!(
            "{}{}{tail}",
            self.config.base_url,
            request::member_path(&self.config.settings.list_id, email)
        )
    }

    async fn write(
        &self,
        call: reqwest::RequestBuilder,
        email: &str,
    ) -> Result<Write, ConnectorError> {
        Ok(match self.send(call, email).await? {
            Answer::Done(_) => Write::Applied,
            Answer::NotFound => Write::Absent,
        })
    }

    /// Sends a member call; a 404 is `NotFound` only once the audience is known to exist.
    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        email: &str,
    ) -> Result<Answer, ConnectorError> {
        let hash = request::subscriber_hash(email);
        let answer = self.authorised(call).await?;
        let answer = response::read(&answer, &[email, &hash])?;
        if answer == Answer::NotFound {
            self.list_found.get_or_try_init(|| self.find_list()).await?;
        }
        Ok(answer)
    }

    /// `GET /3.0/lists/{list_id}?fields=id`: a 404 means `settings.list_id` names no audience
    /// of this account.
    async fn find_list(&self) -> Result<(), ConnectorError> {
        let list_id = &self.config.settings.list_id;
        let call = self
            .http
            .get(format!("{}/3.0/lists/{list_id}", self.config.base_url))
            .query(&[("fields", "id")]);
        match response::read(&self.authorised(call).await?, &[])? {
            Answer::Done(_) => Ok(()),
            Answer::NotFound => Err(ConnectorError::Permanent(format!(
                "Mailchimp has no audience with list id {list_id} in this account (check \
                 recipients.{}.settings.list_id)",
                self.config.recipient_id
            ))),
        }
    }

    async fn authorised(
        &self,
        call: reqwest::RequestBuilder,
    ) -> Result<VendorAnswer, ConnectorError> {
        let call = call
            .basic_auth(BASIC_USER, Some(self.config.api_key.expose()))
            .header("accept", "application/json");
        hush_connector_kit::http::send(call).await
    }
}

fn member_of(document: &Value) -> Result<Member, ConnectorError> {
    let status = document["status"].as_str().ok_or_else(|| {
        ConnectorError::Transient("Mailchimp answered a member without its status".into())
    })?;
    let tags = document["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| tag["name"].as_str().map(str::to_owned))
        .collect();
    Ok(Member {
        status: status.to_owned(),
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_member_document_gives_status_and_tag_names() {
        let member = member_of(&json!({"status": "unsubscribed", "tags": [
            {"id": 1, "name": "Hush_Do_Not_Sell"}, {"id": 2, "name": "vip"}
        ]}))
        .unwrap();
        assert_eq!(member.status, "unsubscribed");
        assert!(member.has_tag("hush_do_not_sell"));
        assert!(!member.has_tag("hush_limit_sensitive"));
        assert!(member_of(&json!({"tags": []})).is_err());
    }
}
