//! Seeders: the `DELETE` channel's fresh records. Before it submits a deletion, a run creates a
//! record for a fresh synthetic email at every recipient that takes deletions and lets the
//! canary create one through the vendor's API, with the recipient's own credentials (read from
//! the environment as its connector reads them). Recipients of other kinds are skipped with the
//! reason; they still receive the deletion and must confirm it.

use hush_connector_hubspot::config::HubSpotConfig;
use hush_connector_kit::http::{client, send};
use hush_contracts::events::RequestKind;
use hush_contracts::recipients::RecipientConfig;
use serde_json::{json, Value};

/// What seeding one recipient came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeded {
    /// A record was created: its id at the recipient.
    Created {
        /// The recipient (`[[recipients]] id`).
        recipient: String,
        /// What was created, e.g. `contact 1004`.
        record: String,
    },
    /// The recipient's kind has no seeder: why.
    Skipped {
        /// The recipient.
        recipient: String,
        /// Why no record was created there.
        reason: String,
    },
}

/// Why a record could not be created at a recipient that has a seeder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recipient {recipient}: {reason}")]
pub struct SeedError {
    /// The recipient.
    pub recipient: String,
    /// What went wrong (never the email).
    pub reason: String,
}

/// The recipient kinds a run can create a record at.
pub const SEEDABLE_KINDS: [&str; 1] = [hush_connector_hubspot::config::KIND];

/// Creates a record for `email` at each recipient of `recipients` that takes deletions, in
/// order; a recipient whose kind has no seeder is [`Seeded::Skipped`]. Stops at the first
/// recipient where creating fails (a missing credential included).
pub async fn seed_all(
    recipients: &[RecipientConfig],
    email: &str,
) -> Result<Vec<Seeded>, SeedError> {
    let mut seeded = Vec::new();
    for recipient in recipients
        .iter()
        .filter(|r| r.request_kinds.contains(&RequestKind::Delete))
    {
        seeded.push(seed(recipient, email).await?);
    }
    Ok(seeded)
}

/// Creates a record for `email` at `recipient`, or says why its kind is skipped.
pub async fn seed(recipient: &RecipientConfig, email: &str) -> Result<Seeded, SeedError> {
    let failed = |reason: String| SeedError {
        recipient: recipient.id.clone(),
        reason,
    };
    match recipient.kind.as_str() {
        hush_connector_hubspot::config::KIND => {
            let config =
                HubSpotConfig::from_recipient(recipient).map_err(|e| failed(e.to_string()))?;
            let id = create_hubspot_contact(&config, email)
                .await
                .map_err(failed)?;
            Ok(Seeded::Created {
                recipient: recipient.id.clone(),
                record: format!("contact {id}"),
            })
        }
        kind => Ok(Seeded::Skipped {
            recipient: recipient.id.clone(),
            reason: format!(
                "kind {kind}: the canary cannot create a record there (seeders: {})",
                SEEDABLE_KINDS.join(", ")
            ),
        }),
    }
}

/// `POST /crm/objects/{version}/contacts` with the email as the only property: the new
/// contact's id (HubSpot answers 201 with the object).
async fn create_hubspot_contact(config: &HubSpotConfig, email: &str) -> Result<String, String> {
    let http = client("hubspot", config.timeout).map_err(|e| e.to_string())?;
    let url = format!(
        "{}/crm/objects/{}/contacts",
        config.base_url.as_str().trim_end_matches('/'),
        config.settings.api_version
    );
    let request = http
        .post(url)
        .bearer_auth(config.token.expose())
        .json(&json!({"properties": {"email": email}}));
    let answer = send(request)
        .await
        .map_err(|error| format!("creating the contact: {error}"))?;
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    if answer.status != 201 && answer.status != 200 {
        return Err(format!(
            "creating the contact: HubSpot answered HTTP {} {}",
            answer.status,
            body["category"].as_str().unwrap_or("(no category)")
        ));
    }
    body["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "creating the contact: HubSpot's answer has no id".to_owned())
}

/// What a SEED stage says: the records created and the recipients skipped, with why.
pub fn describe(seeded: &[Seeded]) -> String {
    let created: Vec<String> = seeded
        .iter()
        .filter_map(|s| match s {
            Seeded::Created { recipient, record } => Some(format!("{recipient} {record}")),
            Seeded::Skipped { .. } => None,
        })
        .collect();
    let skipped: Vec<String> = seeded
        .iter()
        .filter_map(|s| match s {
            Seeded::Skipped { recipient, reason } => Some(format!("{recipient} ({reason})")),
            Seeded::Created { .. } => None,
        })
        .collect();
    let mut parts = Vec::new();
    if !created.is_empty() {
        parts.push(format!("created {}", created.join(", ")));
    }
    if !skipped.is_empty() {
        parts.push(format!("skipped {}", skipped.join("; ")));
    }
    parts.join("; ")
}

/// The recipients a record was created at.
pub fn created_at(seeded: &[Seeded]) -> Vec<String> {
    seeded
        .iter()
        .filter_map(|s| match s {
            Seeded::Created { recipient, .. } => Some(recipient.clone()),
            Seeded::Skipped { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_hubspot::sim::HubSpotSimulator;

    const TOKEN: &str = "pat-na1-canary-seed";
    const TOKEN_VAR: &str = "HUSH_CANARY_SEED_TEST_HUBSPOT_TOKEN";

    fn recipients(hubspot: &str, token_var: &str) -> Vec<RecipientConfig> {
        toml::from_str::<toml::Table>(&format!(
            r#"
            [[recipients]]
            id = "partner"
            kind = "webhook"
            role = "THIRD_PARTY"
            base_url = "http://127.0.0.1:9"
            [[recipients]]
            id = "crm"
            kind = "hubspot"
            role = "SERVICE_PROVIDER"
            base_url = "{hubspot}"
            credentials = {{ token = "{token_var}" }}
            [[recipients]]
            id = "ads"
            kind = "hubspot"
            role = "THIRD_PARTY"
            base_url = "http://127.0.0.1:9"
            request_kinds = ["OPT_OUT_SALE_SHARE"]
            "#
        ))
        .unwrap()["recipients"]
            .clone()
            .try_into()
            .unwrap()
    }

    #[tokio::test]
    async fn a_contact_is_created_where_deletes_go_and_other_kinds_are_skipped_with_the_reason() {
        let sim = HubSpotSimulator::start(TOKEN).await.unwrap();
        std::env::set_var(TOKEN_VAR, TOKEN);
        let email = "hush-canary-run-1@hush-canary.example";
        let seeded = seed_all(&recipients(&sim.base_url(), TOKEN_VAR), email)
            .await
            .unwrap();
        assert!(sim.exists(email));
        assert_eq!(seeded.len(), 2, "the opt-out-only recipient is left out");
        assert!(
            matches!(&seeded[0], Seeded::Skipped { recipient, reason }
                if recipient == "partner" && reason.contains("kind webhook")),
            "{seeded:?}"
        );
        assert!(
            matches!(&seeded[1], Seeded::Created { recipient, record }
                if recipient == "crm" && record.starts_with("contact ")),
            "{seeded:?}"
        );
        assert_eq!(created_at(&seeded), ["crm"]);
        assert!(describe(&seeded).starts_with("created crm contact "));

        // The same email again: HubSpot's 409, named with the recipient.
        let error = seed_all(&recipients(&sim.base_url(), TOKEN_VAR), email)
            .await
            .unwrap_err();
        assert_eq!(error.recipient, "crm");
        assert!(error.reason.contains("HTTP 409 CONFLICT"), "{error}");
        assert!(!error.to_string().contains(email), "no email in the error");
    }

    #[tokio::test]
    async fn a_missing_or_wrong_token_fails_seeding_and_names_the_recipient() {
        let sim = HubSpotSimulator::start(TOKEN).await.unwrap();
        let error = seed_all(
            &recipients(&sim.base_url(), "HUSH_CANARY_SEED_TEST_UNSET"),
            "hush-canary-run-2@hush-canary.example",
        )
        .await
        .unwrap_err();
        assert_eq!(error.recipient, "crm");
        assert!(
            error.reason.contains("HUSH_CANARY_SEED_TEST_UNSET"),
            "{error}"
        );
        std::env::set_var("HUSH_CANARY_SEED_TEST_WRONG", "pat-na1-wrong");
        let error = seed_all(
            &recipients(&sim.base_url(), "HUSH_CANARY_SEED_TEST_WRONG"),
            "hush-canary-run-3@hush-canary.example",
        )
        .await
        .unwrap_err();
        assert!(error.reason.contains("HTTP 401"), "{error}");
        assert!(!sim.exists("hush-canary-run-3@hush-canary.example"));
    }
}
