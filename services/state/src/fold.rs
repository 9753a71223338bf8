//! The suppression-state fold: how one request changes the state of one identifier.

use chrono::{DateTime, Months, Utc};
use hush_contracts::canary::CANARY_SOURCE_SYSTEM;
use hush_contracts::events::{
    AgeBand, EpochMillis, Identifier, MinorStatus, PrivacyRequest, RequestKind, SuppressionState,
};

/// The consumer may not be asked to opt back in for 12 months after opting out
/// (Civ. Code 1798.135(c)(5)).
const RESOLICIT_MONTHS: u32 = 12;

/// `received_at` plus 12 calendar months.
pub fn resolicit_after(received_at: EpochMillis) -> EpochMillis {
    DateTime::<Utc>::from_timestamp_millis(received_at)
        .and_then(|t| t.checked_add_months(Months::new(RESOLICIT_MONTHS)))
        .map(|t| t.timestamp_millis())
        .unwrap_or(received_at)
}

fn minor_status_of(band: Option<AgeBand>, current: MinorStatus) -> MinorStatus {
    match (band, current) {
        (Some(AgeBand::Under13 | AgeBand::Age13To15), MinorStatus::MinorOptedIn) => {
            MinorStatus::MinorOptedIn
        }
        (Some(AgeBand::Under13 | AgeBand::Age13To15), _) => MinorStatus::MinorNoOptIn,
        (Some(AgeBand::Age16Plus), _) => MinorStatus::NotMinor,
        (None, current) => current,
    }
}

/// The new state of `identifier` after `request`, or `None` when the request changes nothing
/// (an opt-in the consumer did not initiate, one for a deleted subject, or one received before
/// the opt-out in force). A state the canary's request produced is marked `synthetic`.
pub fn fold(
    current: Option<&SuppressionState>,
    request: &PrivacyRequest,
    identifier: &Identifier,
    now: EpochMillis,
) -> Option<SuppressionState> {
    let mut state = current.cloned().unwrap_or_else(|| SuppressionState {
        identifier_hash: identifier.sha256.clone(),
        identifier_type: identifier.kind,
        subject_key: request.subject_key.clone(),
        sale_share_opted_out: false,
        sensitive_limited: false,
        deleted: false,
        effective_at: request.received_at,
        resolicit_after: None,
        minor_status: MinorStatus::Unknown,
        last_request_id: request.request_id.clone(),
        updated_at: now,
        synthetic: false,
    });
    if current.is_some_and(|c| c.last_request_id == request.request_id) {
        return None; // a re-delivered request: already folded
    }
    state.minor_status = minor_status_of(request.age_band, state.minor_status);
    let was_suppressed = state.sale_share_opted_out;
    match request.kind {
        RequestKind::OptOutSaleShare => {
            state.sale_share_opted_out = true;
            state.resolicit_after = Some(resolicit_after(request.received_at));
        }
        RequestKind::LimitSensitive => {
            state.sensitive_limited = true;
            state.resolicit_after = Some(resolicit_after(request.received_at));
        }
        RequestKind::Delete => {
            // Suppression outlives deletion: the confidential record that prevents re-sale
            // (Civ. Code 1798.105(c)(2)).
            state.deleted = true;
            state.sale_share_opted_out = true;
            state.sensitive_limited = true;
            state.resolicit_after = Some(resolicit_after(request.received_at));
        }
        RequestKind::OptInSaleShare => {
            // An opt-in received before the opt-out in force (a replay, a late delivery) never
            // lifts it: requests are ordered by receipt, not by arrival.
            let older_than_opt_out =
                state.sale_share_opted_out && request.received_at < state.effective_at;
            if !request.consumer_initiated || state.deleted || older_than_opt_out {
                return None;
            }
            state.sale_share_opted_out = false;
            if state.minor_status == MinorStatus::MinorNoOptIn {
                state.minor_status = MinorStatus::MinorOptedIn;
            }
        }
    }
    // Minors under 16: no sale or sharing without affirmative opt-in (1798.120(c)).
    if state.minor_status == MinorStatus::MinorNoOptIn {
        state.sale_share_opted_out = true;
    }
    if state.sale_share_opted_out && !was_suppressed || current.is_none() {
        state.effective_at = request.received_at;
    }
    state.subject_key = request.subject_key.clone();
    state.synthetic = request.source_system == CANARY_SOURCE_SYSTEM;
    state.last_request_id = request.request_id.clone();
    state.updated_at = now;
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{Category, Channel, IdentifierType};

    const DAY: i64 = 86_400_000;

    fn request(kind: RequestKind, received_at: EpochMillis) -> PrivacyRequest {
        PrivacyRequest {
            request_id: format!("r-{kind:?}-{received_at}"),
            subject_key: "s".into(),
            kind,
            channel: Channel::WebForm,
            jurisdiction: "US-CA".into(),
            received_at,
            identifiers: vec![email()],
            categories: vec![Category::All],
            verification: None,
            age_band: None,
            source_system: "t".into(),
            consumer_initiated: false,
            idempotency_key: None,
            resolution: Vec::new(),
        }
    }

    fn email() -> Identifier {
        Identifier {
            kind: IdentifierType::Email,
            sha256: "e".repeat(64),
            encrypted_value: None,
        }
    }

    #[test]
    fn opt_out_suppresses_and_blocks_resolicitation_for_twelve_months() {
        let received = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let state = fold(
            None,
            &request(RequestKind::OptOutSaleShare, received),
            &email(),
            5,
        )
        .unwrap();
        assert!(state.sale_share_opted_out && !state.deleted);
        assert_eq!(state.effective_at, received);
        assert_eq!(state.resolicit_after, Some(1_798_761_600_000)); // 2027-01-01
    }

    #[test]
    fn opt_in_is_honoured_only_when_the_consumer_initiates_it() {
        let opted_out = fold(None, &request(RequestKind::OptOutSaleShare, 0), &email(), 1).unwrap();
        let business_initiated = request(RequestKind::OptInSaleShare, DAY);
        assert_eq!(
            fold(Some(&opted_out), &business_initiated, &email(), 2),
            None
        );
        let mut consumer_initiated = request(RequestKind::OptInSaleShare, 2 * DAY);
        consumer_initiated.consumer_initiated = true;
        let state = fold(Some(&opted_out), &consumer_initiated, &email(), 3).unwrap();
        assert!(!state.sale_share_opted_out);
    }

    #[test]
    fn a_deleted_subject_stays_suppressed_even_after_an_opt_in() {
        let deleted = fold(None, &request(RequestKind::Delete, 0), &email(), 1).unwrap();
        assert!(deleted.deleted && deleted.sale_share_opted_out && deleted.sensitive_limited);
        let mut opt_in = request(RequestKind::OptInSaleShare, DAY);
        opt_in.consumer_initiated = true;
        assert_eq!(fold(Some(&deleted), &opt_in, &email(), 2), None);
    }

    #[test]
    fn minors_are_opted_out_by_default_until_they_opt_in() {
        let mut limit = request(RequestKind::LimitSensitive, 0);
        limit.age_band = Some(AgeBand::Age13To15);
        let state = fold(None, &limit, &email(), 1).unwrap();
        assert_eq!(state.minor_status, MinorStatus::MinorNoOptIn);
        assert!(
            state.sale_share_opted_out,
            "no sale/share without affirmative opt-in"
        );
        let mut opt_in = request(RequestKind::OptInSaleShare, DAY);
        opt_in.consumer_initiated = true;
        let state = fold(Some(&state), &opt_in, &email(), 2).unwrap();
        assert_eq!(state.minor_status, MinorStatus::MinorOptedIn);
        assert!(!state.sale_share_opted_out);
    }

    #[test]
    fn the_canarys_request_suppresses_like_any_other_and_marks_the_state_synthetic() {
        let mut canary = request(RequestKind::Delete, 0);
        canary.source_system = CANARY_SOURCE_SYSTEM.into();
        let state = fold(None, &canary, &email(), 1).unwrap();
        assert!(state.synthetic);
        assert!(state.deleted && state.sale_share_opted_out && state.sensitive_limited);
        let real = fold(None, &request(RequestKind::Delete, 0), &email(), 1).unwrap();
        assert!(!real.synthetic);
    }

    #[test]
    fn redelivery_of_the_same_request_changes_nothing() {
        let r = request(RequestKind::OptOutSaleShare, 0);
        let state = fold(None, &r, &email(), 1).unwrap();
        assert_eq!(fold(Some(&state), &r, &email(), 2), None);
    }

    #[test]
    fn effective_at_keeps_the_first_opt_out() {
        let first = fold(None, &request(RequestKind::OptOutSaleShare, 0), &email(), 1).unwrap();
        let again = fold(
            Some(&first),
            &request(RequestKind::OptOutSaleShare, DAY),
            &email(),
            2,
        )
        .unwrap();
        assert_eq!(again.effective_at, 0);
        assert_eq!(again.resolicit_after, Some(resolicit_after(DAY)));
    }

    #[test]
    fn a_replayed_older_opt_in_does_not_lift_a_later_opt_out() {
        let opt_out = request(RequestKind::OptOutSaleShare, 10 * DAY);
        let state = fold(None, &opt_out, &email(), 10 * DAY).unwrap();
        let mut old_opt_in = request(RequestKind::OptInSaleShare, 5 * DAY);
        old_opt_in.consumer_initiated = true;
        assert_eq!(fold(Some(&state), &old_opt_in, &email(), 11 * DAY), None);
        let mut new_opt_in = request(RequestKind::OptInSaleShare, 12 * DAY);
        new_opt_in.consumer_initiated = true;
        let lifted = fold(Some(&state), &new_opt_in, &email(), 12 * DAY).unwrap();
        assert!(!lifted.sale_share_opted_out);
    }
}
