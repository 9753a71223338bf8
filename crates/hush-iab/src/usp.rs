//! The legacy IAB US Privacy string ("US Privacy String", CCPA opt-out storage format,
//! version 1): four characters, the version and three Y/N/- flags.

use crate::PrivacySignals;

/// The US Privacy string for a consumer to whom the CCPA does not apply (the
/// specification's example 4).
pub const US_PRIVACY_NOT_APPLICABLE: &str = "1---";

/// The US Privacy string for `signals`, for a consumer the CCPA applies to: `1`, then
/// notice and opportunity to opt out given (`Y`/`N`), opted out of sale (`Y`/`N`), and LSPA
/// covered transaction (`Y`/`N`); an opted-out Californian with notice outside the LSPA is
/// `1YYN`.
///
/// The opt-out flag is `Y` when the person opted out of sale *or* sharing: the right it
/// refers to (Cal. Civ. Code 1798.120, 1798.135) is, since the CPRA, the right to opt out
/// of the sale or sharing of personal information, and the string has no other flag for it.
/// When the CCPA does not apply, send [`US_PRIVACY_NOT_APPLICABLE`].
pub fn us_privacy_string(signals: &PrivacySignals) -> String {
    let flag = |yes: bool| if yes { 'Y' } else { 'N' };
    [
        '1',
        flag(signals.notice_given),
        flag(signals.sale_opted_out || signals.sharing_opted_out),
        flag(signals.lspa_covered),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_examples() {
        // US Privacy String specification, "Examples": 1 notice given, not opted out, not
        // LSPA -> 1YNN; 2 no notice, opted out, not LSPA -> 1NYN; 4 CCPA does not apply ->
        // 1---.
        let example_1 = PrivacySignals {
            notice_given: true,
            ..PrivacySignals::default()
        };
        assert_eq!(us_privacy_string(&example_1), "1YNN");
        let example_2 = PrivacySignals {
            sale_opted_out: true,
            ..PrivacySignals::default()
        };
        assert_eq!(us_privacy_string(&example_2), "1NYN");
        assert_eq!(US_PRIVACY_NOT_APPLICABLE, "1---");
    }

    #[test]
    fn an_opted_out_californian() {
        let signals = PrivacySignals {
            sale_opted_out: true,
            sharing_opted_out: true,
            notice_given: true,
            ..PrivacySignals::default()
        };
        assert_eq!(us_privacy_string(&signals), "1YYN");
    }

    #[test]
    fn sharing_alone_is_an_opt_out_and_lspa_is_carried() {
        let signals = PrivacySignals {
            sharing_opted_out: true,
            notice_given: true,
            lspa_covered: true,
            ..PrivacySignals::default()
        };
        assert_eq!(us_privacy_string(&signals), "1YYY");
        // Targeted advertising and sensitive data are not CCPA sale/sharing opt-outs.
        let signals = PrivacySignals {
            targeted_advertising_opted_out: true,
            sensitive_limited: true,
            notice_given: true,
            ..PrivacySignals::default()
        };
        assert_eq!(us_privacy_string(&signals), "1YNN");
    }
}
