//! What a run sends: the synthetic subject of one channel, the bodies that carry its opt-out
//! and opt-in, and the synthetic outbound events the gate and the leak watch must catch.

use hush_contracts::canary::{CanaryChannel, CanaryIdentity, CanarySection};
use hush_contracts::events::{IdentifierType, PrivacySignal, RequestKind, SignalIdentifier};
use hush_contracts::gate::IdentifierPath;
use hush_contracts::identifiers::{hash_identifier, IdentifierError};
use serde_json::{json, Map, Value};

/// Field of every outbound event the canary writes: `{"run_id","event_id","role"}`, so anyone
/// reading a stream can tell the canary's events from real ones.
pub const MARKER_FIELD: &str = "hush_canary";

/// The synthetic subject one channel's run opts out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its identities, as the channel carries them.
    pub identities: Vec<CanaryIdentity>,
}

impl Subject {
    /// The subject of `channel` in run `run_id`: every configured identity for the web form and
    /// the signal; for GPC, a fresh cookie id (a browser) and the first configured customer id
    /// (the account behind it), the only identifiers a GPC signal carries; for `DELETE`, the
    /// run's fresh email (none without `fresh_email_domain`).
    pub fn for_channel(canary: &CanarySection, channel: CanaryChannel, run_id: &str) -> Self {
        let identities = match channel {
            CanaryChannel::WebForm | CanaryChannel::Signals => canary.identities(),
            // The run's fresh email, at the records the run creates.
            CanaryChannel::Delete => canary
                .fresh_email(run_id)
                .map(|value| CanaryIdentity {
                    kind: IdentifierType::Email,
                    value,
                })
                .into_iter()
                .collect(),
            CanaryChannel::Gpc => canary
                .identities()
                .into_iter()
                .filter(|i| i.kind == IdentifierType::CustomerId)
                .take(1)
                .chain([CanaryIdentity {
                    kind: IdentifierType::CookieId,
                    value: canary.fresh_id(run_id),
                }])
                .collect(),
        };
        Self { identities }
    }

    fn identifiers_json(&self) -> Value {
        self.identities
            .iter()
            .map(|i| json!({"type": i.kind.as_str(), "value": i.value}))
            .collect()
    }

    /// The body of the web form's `POST /v1/requests` opt-out.
    pub fn opt_out_body(&self, jurisdiction: &str, idempotency_key: &str) -> Value {
        json!({
            "kind": RequestKind::OptOutSaleShare.as_str(),
            "channel": "WEB_FORM",
            "jurisdiction": jurisdiction,
            "identifiers": self.identifiers_json(),
            "categories": ["ALL"],
            "idempotency_key": idempotency_key,
        })
    }

    /// The body of `POST /v1/gpc`: the browser's cookie id and the customer id, when any.
    pub fn gpc_body(&self, jurisdiction: &str) -> Value {
        let mut body = Map::new();
        for identity in &self.identities {
            let field = match identity.kind {
                IdentifierType::CookieId => "cookie_id",
                IdentifierType::DeviceId => "device_id",
                IdentifierType::CustomerId => "customer_id",
                _ => continue,
            };
            body.insert(field.into(), json!(identity.value));
        }
        body.insert("jurisdiction".into(), json!(jurisdiction));
        Value::Object(body)
    }

    /// The `PrivacySignal` an upstream system would publish for this opt-out.
    pub fn signal(
        &self,
        source: &str,
        idempotency_key: &str,
        jurisdiction: &str,
        received_at: i64,
    ) -> PrivacySignal {
        PrivacySignal {
            kind: RequestKind::OptOutSaleShare,
            identifiers: self
                .identities
                .iter()
                .map(|i| SignalIdentifier {
                    kind: i.kind,
                    value: Some(i.value.clone()),
                    sha256: None,
                })
                .collect(),
            channel: None,
            jurisdiction: Some(jurisdiction.to_owned()),
            categories: Vec::new(),
            verification: None,
            age_band: None,
            consumer_initiated: true,
            received_at,
            source: source.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
        }
    }

    /// The body of the consumer-initiated opt-in that lifts the opt-out, with the signed
    /// `attestation` over [`Subject::attested_hash`].
    pub fn opt_in_body(
        &self,
        jurisdiction: &str,
        idempotency_key: &str,
        attestation: &str,
    ) -> Value {
        json!({
            "kind": RequestKind::OptInSaleShare.as_str(),
            "channel": "WEB_FORM",
            "jurisdiction": jurisdiction,
            "identifiers": self.identifiers_json(),
            "categories": ["ALL"],
            "consumer_initiated": true,
            "verification": {"attestation": attestation},
            "idempotency_key": idempotency_key,
        })
    }

    /// The body of the `DELETE` channel's deletion, verified by the signed `attestation` over
    /// [`Subject::attested_hash`].
    pub fn delete_body(
        &self,
        jurisdiction: &str,
        idempotency_key: &str,
        attestation: &str,
    ) -> Value {
        json!({
            "kind": RequestKind::Delete.as_str(),
            "channel": "WEB_FORM",
            "jurisdiction": jurisdiction,
            "identifiers": self.identifiers_json(),
            "verification": {"attestation": attestation},
            "idempotency_key": idempotency_key,
        })
    }

    /// The hash of the identity an attestation vouches for (the first one).
    pub fn attested_hash(&self) -> Result<String, IdentifierError> {
        let first = self
            .identities
            .first()
            .ok_or(IdentifierError::Empty(IdentifierType::Email))?;
        hash_identifier(first.kind, &first.value)
    }

    /// The first of `paths` that locates one of this subject's identifier kinds (a phone only
    /// when nothing else does), with the identity to put there.
    pub fn locate<'a>(
        &'a self,
        paths: &'a [IdentifierPath],
    ) -> Option<(&'a IdentifierPath, &'a CanaryIdentity)> {
        let mut candidates = paths.iter().filter_map(|path| {
            self.identities
                .iter()
                .find(|i| i.kind == path.kind)
                .map(|identity| (path, identity))
        });
        let first = candidates.next()?;
        if first.0.kind != IdentifierType::Phone {
            return Some(first);
        }
        candidates
            .find(|(path, _)| path.kind != IdentifierType::Phone)
            .or(Some(first))
    }
}

/// A fresh value of `kind` that no one is suppressed under, for the gate's control event;
/// `None` for a phone (no number is certain to be nobody's).
pub fn control_value(kind: IdentifierType, canary: &CanarySection, run_id: &str) -> Option<String> {
    let fresh = canary.fresh_id(&format!("control-{run_id}"));
    match kind {
        IdentifierType::Email => Some(format!("{fresh}@hush-canary.invalid")),
        IdentifierType::Phone => None,
        IdentifierType::DeviceId
        | IdentifierType::CookieId
        | IdentifierType::CustomerId
        | IdentifierType::Maid => Some(fresh),
    }
}

/// Which of the canary's outbound events one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRole {
    /// About the opted-out subject: the gate must stop it, the leak watch must report it.
    Subject,
    /// About no suppressed person: the gate must forward it.
    Control,
}

impl EventRole {
    fn as_str(self) -> &'static str {
        match self {
            EventRole::Subject => "subject",
            EventRole::Control => "control",
        }
    }
}

/// A synthetic outbound event: the marker field, and `value` at `path` (hashed when the path
/// holds hashes). Returns the event's id and its JSON.
pub fn outbound_event(
    run_id: &str,
    role: EventRole,
    path: &IdentifierPath,
    value: &str,
) -> Result<(String, Value), IdentifierError> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let value = if path.hashed {
        hash_identifier(path.kind, value)?
    } else {
        value.to_owned()
    };
    let mut event = json!({
        MARKER_FIELD: {"run_id": run_id, "event_id": event_id, "role": role.as_str()},
        "event_name": "HushCanary",
    });
    set_path(&mut event, &path.path, Value::String(value));
    Ok((event_id, event))
}

/// Sets the dotted `path` of `target` to `value`, creating objects on the way.
fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut node = target;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let object = node.as_object_mut().expect("made an object above");
        if parts.peek().is_none() {
            object.insert(part.to_owned(), value);
            return;
        }
        node = object
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The value at the dotted `path` of `source`, if any.
pub fn get_path<'a>(source: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(source, |node, part| node.get(part))
}

/// The canary event id of an outbound record, when it is one of the canary's.
pub fn event_id_of(record: &Value) -> Option<&str> {
    record.get(MARKER_FIELD)?.get("event_id")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary() -> CanarySection {
        toml::from_str(
            r#"
            [[subjects]]
            recipient = "hubspot"
            identifiers = [{ type = "EMAIL", value = "canary@hush-canary.example" },
                           { type = "PHONE", value = "+1 415 555 0100" }]
            [[subjects]]
            recipient = "segment"
            identifiers = [{ type = "CUSTOMER_ID", value = "canary-1" }]
            "#,
        )
        .unwrap()
    }

    fn path(path: &str, kind: IdentifierType, hashed: bool) -> IdentifierPath {
        IdentifierPath {
            path: path.into(),
            kind,
            hashed,
        }
    }

    #[test]
    fn the_web_form_names_every_identity_and_gpc_a_fresh_browser_and_the_account() {
        let canary = canary();
        let web = Subject::for_channel(&canary, CanaryChannel::WebForm, "r1");
        assert_eq!(web.identities.len(), 3);
        let body = web.opt_out_body("US-CA", "k");
        assert_eq!(
            body["identifiers"][0]["value"],
            "canary@hush-canary.example"
        );
        assert_eq!(body["kind"], "OPT_OUT_SALE_SHARE");
        let gpc = Subject::for_channel(&canary, CanaryChannel::Gpc, "r1");
        assert_eq!(
            gpc.gpc_body("US-CA"),
            json!({"customer_id": "canary-1", "cookie_id": "hush-canary-r1", "jurisdiction": "US-CA"})
        );
        let next = Subject::for_channel(&canary, CanaryChannel::Gpc, "r2");
        assert_ne!(gpc, next, "each run's browser is new");
    }

    #[test]
    fn the_signal_carries_the_same_identities_from_the_canary_source() {
        let subject = Subject::for_channel(&canary(), CanaryChannel::Signals, "r1");
        let signal = subject.signal("hush-canary", "r1", "US-CA", 5);
        assert_eq!(signal.source, "hush-canary");
        assert_eq!(signal.identifiers.len(), 3);
        assert_eq!(signal.kind, RequestKind::OptOutSaleShare);
    }

    #[test]
    fn the_opt_in_is_consumer_initiated_and_attested_over_the_first_identity() {
        let subject = Subject::for_channel(&canary(), CanaryChannel::WebForm, "r1");
        let body = subject.opt_in_body("US-CA", "k", "jws");
        assert_eq!(body["consumer_initiated"], true);
        assert_eq!(body["verification"]["attestation"], "jws");
        assert_eq!(
            subject.attested_hash().unwrap(),
            hash_identifier(IdentifierType::Email, "canary@hush-canary.example").unwrap()
        );
    }

    #[test]
    fn the_delete_names_the_runs_fresh_email_and_carries_the_attestation() {
        let mut canary = canary();
        assert!(Subject::for_channel(&canary, CanaryChannel::Delete, "r1")
            .identities
            .is_empty());
        canary.fresh_email_domain = Some("hush-canary.example".into());
        let subject = Subject::for_channel(&canary, CanaryChannel::Delete, "r1");
        let body = subject.delete_body("US-CA", "k", "jws");
        assert_eq!(body["kind"], "DELETE");
        assert_eq!(
            body["identifiers"],
            json!([{"type": "EMAIL", "value": "hush-canary-r1@hush-canary.example"}])
        );
        assert_eq!(body["verification"]["attestation"], "jws");
        assert_ne!(
            Subject::for_channel(&canary, CanaryChannel::Delete, "r2"),
            subject,
            "each run deletes a record of its own"
        );
    }

    #[test]
    fn an_outbound_event_carries_the_value_at_its_path_hashed_where_the_path_holds_hashes() {
        let (id, raw) = outbound_event(
            "r1",
            EventRole::Subject,
            &path("user.email", IdentifierType::Email, false),
            "canary@hush-canary.example",
        )
        .unwrap();
        assert_eq!(raw["user"]["email"], "canary@hush-canary.example");
        assert_eq!(event_id_of(&raw), Some(id.as_str()));
        assert_eq!(raw[MARKER_FIELD]["role"], "subject");
        let (_, hashed) = outbound_event(
            "r1",
            EventRole::Control,
            &path("user_data.em", IdentifierType::Email, true),
            " Canary@Hush-Canary.example",
        )
        .unwrap();
        assert_eq!(
            get_path(&hashed, "user_data.em").and_then(Value::as_str),
            Some(
                hash_identifier(IdentifierType::Email, "canary@hush-canary.example")
                    .unwrap()
                    .as_str()
            )
        );
    }

    #[test]
    fn a_path_is_located_by_kind_and_a_phone_only_as_the_last_resort() {
        let subject = Subject::for_channel(&canary(), CanaryChannel::WebForm, "r1");
        let paths = [
            path("user.phone", IdentifierType::Phone, false),
            path("device.maid", IdentifierType::Maid, false),
            path("user.id", IdentifierType::CustomerId, false),
        ];
        let (found, identity) = subject.locate(&paths).unwrap();
        assert_eq!(found.path, "user.id");
        assert_eq!(identity.value, "canary-1");
        let (found, _) = subject.locate(&paths[..2]).unwrap();
        assert_eq!(found.path, "user.phone");
        assert!(subject.locate(&paths[1..2]).is_none());
    }

    #[test]
    fn control_values_belong_to_no_one_and_differ_per_run() {
        let canary = canary();
        let email = control_value(IdentifierType::Email, &canary, "r1").unwrap();
        assert!(
            hash_identifier(IdentifierType::Email, &email).is_ok(),
            "{email}"
        );
        assert_ne!(
            control_value(IdentifierType::CustomerId, &canary, "r1"),
            control_value(IdentifierType::CustomerId, &canary, "r2")
        );
        assert_eq!(control_value(IdentifierType::Phone, &canary, "r1"), None);
    }
}
