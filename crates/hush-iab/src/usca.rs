//! The California section (GPP section 8, `usca`), version 1.

use crate::bits::BitWriter;
use crate::values::{Consent, MspaCovered, MspaMode, Notice, OptOut};
use crate::{child_consent, gpc_subsection, notice, opt_out, PrivacySignals};

/// The field values of a `usca` section, in the order the specification ("GPP Extension:
/// California Privacy Technical Specification", core sub-section and GPC sub-section)
/// writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsCa {
    /// `SaleOptOutNotice`: notice of the opportunity to opt out of sale.
    pub sale_opt_out_notice: Notice,
    /// `SharingOptOutNotice`: notice of the opportunity to opt out of sharing.
    pub sharing_opt_out_notice: Notice,
    /// `SensitiveDataLimitUseNotice`: notice of the opportunity to limit the use or
    /// disclosure of sensitive personal information.
    pub sensitive_data_limit_use_notice: Notice,
    /// `SaleOptOut`.
    pub sale_opt_out: OptOut,
    /// `SharingOptOut`.
    pub sharing_opt_out: OptOut,
    /// `SensitiveDataProcessing`, N-Bitfield(2,9): opt-out of the use or disclosure of each
    /// of the 9 categories of sensitive personal information, (1) government identifiers …
    /// (9) sex life or sexual orientation. Unlike `usnat`, these are opt-outs, not consents.
    pub sensitive_data_processing: [OptOut; 9],
    /// `KnownChildSensitiveDataConsents`, N-Bitfield(2,2): consent to (1) sell and (2) share
    /// the personal information of a consumer known to be under 16.
    pub known_child_sensitive_data_consents: [Consent; 2],
    /// `PersonalDataConsents`: consent to uses unrelated to or incompatible with the purpose
    /// of collection.
    pub personal_data_consents: Consent,
    /// `MspaCoveredTransaction`.
    pub mspa_covered_transaction: MspaCovered,
    /// `MspaOptOutOptionMode`.
    pub mspa_opt_out_option_mode: MspaMode,
    /// `MspaServiceProviderMode`.
    pub mspa_service_provider_mode: MspaMode,
    /// `Gpc` of the GPC sub-section; `None` leaves the sub-section out.
    pub gpc: Option<bool>,
}

impl UsCa {
    /// The GPP section id.
    pub const ID: u8 = 8;
    /// The version of the section specification this crate writes.
    pub const VERSION: u8 = 1;

    /// The section for a person's signals (the mapping is in the crate README).
    ///
    /// Limiting sensitive data use is an opt-out in California, so every
    /// `SensitiveDataProcessing` element is 1 (opted out) when the person limited it, 2 when
    /// they did not after a notice, and 0 without a notice. `PersonalDataConsents` is 1 (no
    /// consent): Hush records no such consent.
    pub fn from_signals(signals: &PrivacySignals) -> Self {
        let (covered, opt_out_option_mode, service_provider_mode) = signals.mspa.fields();
        Self {
            sale_opt_out_notice: notice(signals),
            sharing_opt_out_notice: notice(signals),
            sensitive_data_limit_use_notice: notice(signals),
            sale_opt_out: opt_out(signals.sale_opted_out, signals),
            sharing_opt_out: opt_out(signals.sharing_opted_out, signals),
            sensitive_data_processing: [opt_out(signals.sensitive_limited, signals); 9],
            known_child_sensitive_data_consents: [
                child_consent(signals.known_child, signals.sale_opted_out),
                child_consent(signals.known_child, signals.sharing_opted_out),
            ],
            personal_data_consents: Consent::NoConsent,
            mspa_covered_transaction: covered,
            mspa_opt_out_option_mode: opt_out_option_mode,
            mspa_service_provider_mode: service_provider_mode,
            gpc: signals.gpc,
        }
    }

    /// The encoded section: the core sub-section, then `.` and the GPC sub-section if `gpc`
    /// is set.
    pub fn encode(&self) -> String {
        let mut w = BitWriter::new();
        w.int(u64::from(Self::VERSION), 6);
        self.sale_opt_out_notice.write(&mut w);
        self.sharing_opt_out_notice.write(&mut w);
        self.sensitive_data_limit_use_notice.write(&mut w);
        self.sale_opt_out.write(&mut w);
        self.sharing_opt_out.write(&mut w);
        for opt_out in self.sensitive_data_processing {
            opt_out.write(&mut w);
        }
        for consent in self.known_child_sensitive_data_consents {
            consent.write(&mut w);
        }
        self.personal_data_consents.write(&mut w);
        self.mspa_covered_transaction.write(&mut w);
        self.mspa_opt_out_option_mode.write(&mut w);
        self.mspa_service_provider_mode.write(&mut w);
        let core = w.into_base64url();
        match self.gpc {
            Some(gpc) => format!("{core}.{}", gpc_subsection(gpc)),
            None => core,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KnownChild, Mspa};

    /// The field values the reference libraries start from: every notice, opt-out and
    /// consent 0, covered transaction 1, modes 0, GPC sub-section with GPC false.
    fn reference_default() -> UsCa {
        UsCa {
            sale_opt_out_notice: Notice::NotApplicable,
            sharing_opt_out_notice: Notice::NotApplicable,
            sensitive_data_limit_use_notice: Notice::NotApplicable,
            sale_opt_out: OptOut::NotApplicable,
            sharing_opt_out: OptOut::NotApplicable,
            sensitive_data_processing: [OptOut::NotApplicable; 9],
            known_child_sensitive_data_consents: [Consent::NotApplicable; 2],
            personal_data_consents: Consent::NotApplicable,
            mspa_covered_transaction: MspaCovered::Yes,
            mspa_opt_out_option_mode: MspaMode::NotApplicable,
            mspa_service_provider_mode: MspaMode::NotApplicable,
            gpc: Some(false),
        }
    }

    #[test]
    fn encodes_the_reference_defaults() {
        // iabgpp-es modules/cmpapi/test/encoder/section/UsCa.test.ts and iabgpp-java
        // UsCaTest.java: default "BAAAAABA.QA"; without the GPC segment "BAAAAABA".
        assert_eq!(reference_default().encode(), "BAAAAABA.QA");
        let no_gpc = UsCa {
            gpc: None,
            ..reference_default()
        };
        assert_eq!(no_gpc.encode(), "BAAAAABA");
    }

    #[test]
    fn encodes_the_reference_example_with_every_value_kind() {
        // iabgpp-es UsCa.test.ts "should encode to BVWSSSVY.YA" (also iabgpp-java
        // UsCaTest.java testEncode2): sensitive [2,1,0,2,1,0,2,1,0], child [2,1].
        let o = |v| match v {
            0 => OptOut::NotApplicable,
            1 => OptOut::OptedOut,
            _ => OptOut::DidNotOptOut,
        };
        let section = UsCa {
            sale_opt_out_notice: Notice::Provided,
            sharing_opt_out_notice: Notice::Provided,
            sensitive_data_limit_use_notice: Notice::Provided,
            sale_opt_out: OptOut::OptedOut,
            sharing_opt_out: OptOut::OptedOut,
            sensitive_data_processing: [2, 1, 0, 2, 1, 0, 2, 1, 0].map(o),
            known_child_sensitive_data_consents: [Consent::Consent, Consent::NoConsent],
            personal_data_consents: Consent::NoConsent,
            mspa_covered_transaction: MspaCovered::Yes,
            mspa_opt_out_option_mode: MspaMode::Yes,
            mspa_service_provider_mode: MspaMode::No,
            gpc: Some(true),
        };
        assert_eq!(section.encode(), "BVWSSSVY.YA");
    }

    #[test]
    fn an_opted_out_californian() {
        let signals = PrivacySignals {
            sale_opted_out: true,
            sharing_opted_out: true,
            targeted_advertising_opted_out: true,
            sensitive_limited: true,
            gpc: Some(true),
            notice_given: true,
            ..PrivacySignals::default()
        };
        let section = UsCa::from_signals(&signals);
        assert_eq!(section.sale_opt_out_notice, Notice::Provided);
        assert_eq!(section.sharing_opt_out_notice, Notice::Provided);
        assert_eq!(section.sensitive_data_limit_use_notice, Notice::Provided);
        assert_eq!(section.sale_opt_out, OptOut::OptedOut);
        assert_eq!(section.sharing_opt_out, OptOut::OptedOut);
        assert_eq!(section.sensitive_data_processing, [OptOut::OptedOut; 9]);
        assert_eq!(
            section.known_child_sensitive_data_consents,
            [Consent::NotApplicable; 2]
        );
        assert_eq!(section.personal_data_consents, Consent::NoConsent);
        assert_eq!(section.mspa_covered_transaction, MspaCovered::No);
        assert_eq!(section.mspa_opt_out_option_mode, MspaMode::NotApplicable);
        assert_eq!(section.mspa_service_provider_mode, MspaMode::NotApplicable);
        assert_eq!(section.gpc, Some(true));
        assert_eq!(section.encode(), "BVVVVUGA.YA");
    }

    #[test]
    fn sensitive_data_processing_follows_the_limit_and_the_notice() {
        let sdp = |sensitive_limited, notice_given| {
            UsCa::from_signals(&PrivacySignals {
                sensitive_limited,
                notice_given,
                ..PrivacySignals::default()
            })
            .sensitive_data_processing
        };
        assert_eq!(sdp(true, true), [OptOut::OptedOut; 9]);
        assert_eq!(sdp(false, true), [OptOut::DidNotOptOut; 9]);
        assert_eq!(sdp(true, false), [OptOut::OptedOut; 9]);
        assert_eq!(sdp(false, false), [OptOut::NotApplicable; 9]);
    }

    #[test]
    fn known_children_per_activity() {
        let child = |known_child, sale_opted_out, sharing_opted_out| {
            UsCa::from_signals(&PrivacySignals {
                known_child,
                sale_opted_out,
                sharing_opted_out,
                ..PrivacySignals::default()
            })
            .known_child_sensitive_data_consents
        };
        assert_eq!(
            child(KnownChild::UnderSixteenWithoutConsent, false, false),
            [Consent::NoConsent; 2]
        );
        assert_eq!(
            child(KnownChild::UnderSixteenWithConsent, false, false),
            [Consent::Consent; 2]
        );
        assert_eq!(
            child(KnownChild::UnderSixteenWithConsent, true, false),
            [Consent::NoConsent, Consent::Consent]
        );
    }

    #[test]
    fn service_provider_mode() {
        let section = UsCa::from_signals(&PrivacySignals {
            mspa: Mspa::ServiceProviderMode,
            ..PrivacySignals::default()
        });
        assert_eq!(section.mspa_covered_transaction, MspaCovered::Yes);
        assert_eq!(section.mspa_opt_out_option_mode, MspaMode::No);
        assert_eq!(section.mspa_service_provider_mode, MspaMode::Yes);
    }

    #[test]
    fn the_core_sub_section_is_46_bits() {
        // 6 (version) + 5 x 2 + 9 x 2 + 2 x 2 + 2 + 3 x 2 = 46 bits -> 48 -> 8 characters.
        let core = UsCa {
            gpc: None,
            ..reference_default()
        }
        .encode();
        assert_eq!(core.len(), 8);
    }
}
