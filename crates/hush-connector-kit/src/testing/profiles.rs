//! The checks shared by vendors that keep a profile per person (CRM and messaging platforms
//! such as Braze, Klaviyo or Mailchimp): the `[[recipients]]` block pointed at a simulator, the
//! read-back of an outcome, the requests such a vendor cannot act on and its refusals.

use std::sync::Once;

use hush_contracts::connector::{
    Completion, Connector, ConnectorError, Operation, SuppressionWork,
};
use hush_contracts::events::{RequestKind, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;

use super::{apply_one, assert_refused, email, service_provider, work, WorkExt};

/// A `kind` recipient (id `kind`, a service provider) of the simulator at `base_url` with a
/// one-second timeout, `[settings]` holding the TOML `settings`, each key of the TOML
/// `overrides` then replacing the block's own as in [`super::recipient_with`]. A contract test passes
/// its vendor's defaults as `settings` and what a test is about as `overrides`.
pub fn simulator_recipient(
    kind: &str,
    base_url: &str,
    settings: &str,
    overrides: &str,
) -> RecipientConfig {
    service_provider(kind, kind, base_url, 1000, settings, overrides)
}

/// Sets each `(name, value)` of `variables` in the environment the first time a test of this
/// binary calls it (later calls wait until that is done), then panics unless each holds its
/// value: every call of a binary passes the same variables. A contract test whose block names
/// its credentials calls it before building the connector, so the variables are set once,
/// before any test reads them, and no test races another's setting.
pub fn credentials_in_env(variables: &[(&str, &str)]) {
    static SET: Once = Once::new();
    SET.call_once(|| {
        for (name, value) in variables {
            std::env::set_var(name, value);
        }
    });
    for (name, value) in variables {
        let held = std::env::var(name);
        assert_eq!(
            held.as_deref(),
            Ok(*value),
            "{name} holds what this binary set"
        );
    }
}

/// Reads `item`'s `completion` back through `connector` once and panics unless the vendor's
/// records now say `expected`.
pub async fn assert_reads_back(
    connector: &dyn Connector,
    item: &SuppressionWork,
    completion: &Completion,
    expected: VerificationStatus,
) {
    let read = connector.verify(item, completion).await;
    assert_eq!(read, expected, "the read-back of {}", item.request_id);
}

/// Panics unless `connector`, given each alone in a batch, permanently refuses an opt-out
/// whose email was hashed without its raw value (a profile vendor looks people up by the raw
/// value), an opt-out of `person` sent as a deletion, and a deletion of `person` sent as a
/// suppression. `person` builds a request of a kind for someone the vendor could match.
pub async fn assert_misrouted_refused(
    connector: &dyn Connector,
    person: &dyn Fn(RequestKind) -> SuppressionWork,
) {
    let hashed_only = work(RequestKind::OptOutSaleShare).with(email("a@example.com"));
    let hashed = apply_one(connector, Operation::Suppress, &hashed_only).await;
    assert_refused(hashed, "no raw value");
    let opt_out = person(RequestKind::OptOutSaleShare);
    let wrong_way = apply_one(connector, Operation::Delete, &opt_out).await;
    assert_refused(wrong_way, "not a deletion");
    let deletion = person(RequestKind::Delete);
    let delete_by_suppress = apply_one(connector, Operation::Suppress, &deletion).await;
    assert_refused(delete_by_suppress, "applies through delete");
}

/// Panics unless `result` (a whole batch's, or one item's) is the permanent refusal of a key
/// the vendor did not accept: `HTTP 401` first, then the vendor's own text `says`, and the
/// setting to fix, `credentials.api_key`.
pub fn assert_key_refused<T: std::fmt::Debug>(result: Result<T, ConnectorError>, says: &str) {
    let detail = http_refusal(result, 401, says);
    assert!(detail.contains("credentials.api_key"), "{detail}");
}

/// Panics unless `result` (a whole batch's, or one item's) is a permanent refusal starting
/// `HTTP {status}` and quoting the vendor's text `says`, without `hidden`: a raw identifier the
/// vendor quoted back, which must never reach an error.
pub fn assert_http_refused_without<T: std::fmt::Debug>(
    result: Result<T, ConnectorError>,
    status: u16,
    says: &str,
    hidden: &str,
) {
    let detail = http_refusal(result, status, says);
    assert!(
        !detail.contains(hidden),
        "{hidden:?} reached the error: {detail}"
    );
}

/// The detail of `result`, a permanent refusal starting `HTTP {status}` and containing `says`;
/// panics when it is anything else.
fn http_refusal<T: std::fmt::Debug>(
    result: Result<T, ConnectorError>,
    status: u16,
    says: &str,
) -> String {
    match result {
        Err(ConnectorError::Permanent(detail)) => {
            assert!(
                detail.starts_with(&format!("HTTP {status}")) && detail.contains(says),
                "expected HTTP {status} saying {says:?}: {detail}"
            );
            detail
        }
        other => panic!("expected HTTP {status} refused saying {says:?}, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulator_recipient_holds_the_defaults_then_the_overrides() {
        let recipient = simulator_recipient(
            "braze",
            "http://127.0.0.1:9",
            "poll_interval_ms = 10\nmax_wait_ms = 500",
            "max_wait_ms = 30",
        );
        assert_eq!(
            (recipient.id.as_str(), recipient.kind.as_str()),
            ("braze", "braze")
        );
        assert_eq!(recipient.base_url, "http://127.0.0.1:9");
        assert_eq!(recipient.timeout_ms, 1000);
        assert_eq!(
            recipient.settings["poll_interval_ms"].as_integer(),
            Some(10)
        );
        assert_eq!(recipient.settings["max_wait_ms"].as_integer(), Some(30));
    }

    #[test]
    fn a_key_refusal_is_a_401_naming_the_credential() {
        let refused = |detail: &str| Err::<(), _>(ConnectorError::Permanent(detail.into()));
        assert_key_refused(
            refused("HTTP 401: bad key (credentials.api_key)"),
            "bad key",
        );
        for wrong in [
            "HTTP 403: bad key (credentials.api_key)",
            "HTTP 401: bad key",
            "HTTP 401: other (credentials.api_key)",
        ] {
            let outcome =
                std::panic::catch_unwind(|| assert_key_refused(refused(wrong), "bad key"));
            assert!(outcome.is_err(), "{wrong} is not the key refused");
        }
    }

    #[test]
    fn an_http_refusal_must_not_quote_the_hidden_value() {
        let refused = |detail: &str| Err::<(), _>(ConnectorError::Permanent(detail.into()));
        assert_http_refused_without(refused("HTTP 400: [redacted] is bad"), 400, "is bad", "a@b");
        let quoted = std::panic::catch_unwind(|| {
            assert_http_refused_without(refused("HTTP 400: a@b is bad"), 400, "is bad", "a@b")
        });
        assert!(quoted.is_err(), "a quoted identifier fails");
    }
}
