//! The MSPA US National section (GPP section 7, `usnat`), version 2 of its core segment.

use crate::bits::BitWriter;
use crate::values::{Consent, MspaCovered, MspaMode, Notice, OptOut};
use crate::{child_consent, gpc_subsection, notice, opt_out, PrivacySignals};

/// The field values of a `usnat` section, in the order the specification ("IAB Privacy's
/// Multi-State Privacy Agreement (MSPA) US National Technical Specification", core segment
/// and GPC sub-section) writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsNat {
    /// `SharingNotice`: notice describing the processing of personal information.
    pub sharing_notice: Notice,
    /// `SaleOptOutNotice`: notice of the opportunity to opt out of sale.
    pub sale_opt_out_notice: Notice,
    /// `SharingOptOutNotice`: notice of the opportunity to opt out of sharing.
    pub sharing_opt_out_notice: Notice,
    /// `TargetedAdvertisingOptOutNotice`: notice of the opportunity to opt out of targeted
    /// advertising.
    pub targeted_advertising_opt_out_notice: Notice,
    /// `SensitiveDataProcessingOptOutNotice`: notice of the right to opt out of the
    /// processing of sensitive data.
    pub sensitive_data_processing_opt_out_notice: Notice,
    /// `SensitiveDataLimitUseNotice`: notice of the right to limit the use of sensitive data.
    pub sensitive_data_limit_use_notice: Notice,
    /// `SaleOptOut`.
    pub sale_opt_out: OptOut,
    /// `SharingOptOut`.
    pub sharing_opt_out: OptOut,
    /// `TargetedAdvertisingOptOut`.
    pub targeted_advertising_opt_out: OptOut,
    /// `SensitiveDataProcessing`, N-Bitfield(2,16): consent to process each of the 16
    /// categories of sensitive data, (1) racial or ethnic origin … (16) status as transgender
    /// or nonbinary.
    pub sensitive_data_processing: [Consent; 16],
    /// `KnownChildSensitiveDataConsents`, N-Bitfield(2,3): consent for a known child aged
    /// (1) 13 to 16, (2) under 13, (3) 16 to 17.
    pub known_child_sensitive_data_consents: [Consent; 3],
    /// `PersonalDataConsents`: consent to processing beyond the secondary use limitations.
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

impl UsNat {
    /// The GPP section id.
    pub const ID: u8 = 7;
    /// The version of the core segment this crate writes: 2, with 16 sensitive data
    /// categories and 3 known-child age bands.
    pub const VERSION: u8 = 2;

    /// The section for a person's signals (the mapping is in the crate README).
    ///
    /// The US National approach requires opt-in consent before sensitive data is processed,
    /// and Hush records no such consent: every `SensitiveDataProcessing` element is 1 (no
    /// consent), whether or not the person also limited its use. `PersonalDataConsents` is 1
    /// (no consent) for the same reason.
    pub fn from_signals(signals: &PrivacySignals) -> Self {
        let any_opt_out = signals.sale_opted_out
            || signals.sharing_opted_out
            || signals.targeted_advertising_opted_out;
        let child = child_consent(signals.known_child, any_opt_out);
        let (covered, opt_out_option_mode, service_provider_mode) = signals.mspa.fields();
        Self {
            sharing_notice: notice(signals),
            sale_opt_out_notice: notice(signals),
            sharing_opt_out_notice: notice(signals),
            targeted_advertising_opt_out_notice: notice(signals),
            sensitive_data_processing_opt_out_notice: notice(signals),
            sensitive_data_limit_use_notice: notice(signals),
            sale_opt_out: opt_out(signals.sale_opted_out, signals),
            sharing_opt_out: opt_out(signals.sharing_opted_out, signals),
            targeted_advertising_opt_out: opt_out(signals.targeted_advertising_opted_out, signals),
            sensitive_data_processing: [Consent::NoConsent; 16],
            // Hush's minors rule is about under-16s: the 13-16 and under-13 bands; Hush has no
            // knowledge of a 16-17 year old as a child.
            known_child_sensitive_data_consents: [child, child, Consent::NotApplicable],
            personal_data_consents: Consent::NoConsent,
            mspa_covered_transaction: covered,
            mspa_opt_out_option_mode: opt_out_option_mode,
            mspa_service_provider_mode: service_provider_mode,
            gpc: signals.gpc,
        }
    }

    /// The encoded section: the core segment, then `.` and the GPC sub-section if `gpc` is
    /// set.
    pub fn encode(&self) -> String {
        let mut w = BitWriter::new();
        w.int(u64::from(Self::VERSION), 6);
        for notice in [
            self.sharing_notice,
            self.sale_opt_out_notice,
            self.sharing_opt_out_notice,
            self.targeted_advertising_opt_out_notice,
            self.sensitive_data_processing_opt_out_notice,
            self.sensitive_data_limit_use_notice,
        ] {
            notice.write(&mut w);
        }
        for opt_out in [
            self.sale_opt_out,
            self.sharing_opt_out,
            self.targeted_advertising_opt_out,
        ] {
            opt_out.write(&mut w);
        }
        for consent in self
            .sensitive_data_processing
            .iter()
            .chain(&self.known_child_sensitive_data_consents)
            .chain([&self.personal_data_consents])
        {
            consent.write(&mut w);
        }
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
    fn reference_default() -> UsNat {
        UsNat {
            sharing_notice: Notice::NotApplicable,
            sale_opt_out_notice: Notice::NotApplicable,
            sharing_opt_out_notice: Notice::NotApplicable,
            targeted_advertising_opt_out_notice: Notice::NotApplicable,
            sensitive_data_processing_opt_out_notice: Notice::NotApplicable,
            sensitive_data_limit_use_notice: Notice::NotApplicable,
            sale_opt_out: OptOut::NotApplicable,
            sharing_opt_out: OptOut::NotApplicable,
            targeted_advertising_opt_out: OptOut::NotApplicable,
            sensitive_data_processing: [Consent::NotApplicable; 16],
            known_child_sensitive_data_consents: [Consent::NotApplicable; 3],
            personal_data_consents: Consent::NotApplicable,
            mspa_covered_transaction: MspaCovered::Yes,
            mspa_opt_out_option_mode: MspaMode::NotApplicable,
            mspa_service_provider_mode: MspaMode::NotApplicable,
            gpc: Some(false),
        }
    }

    fn consents<const N: usize>(values: [u8; N]) -> [Consent; N] {
        values.map(|v| match v {
            0 => Consent::NotApplicable,
            1 => Consent::NoConsent,
            2 => Consent::Consent,
            _ => unreachable!(),
        })
    }

    #[test]
    fn encodes_the_reference_default() {
        // iabgpp-es modules/cmpapi/test/encoder/section/UsNat.test.ts: "should encode default
        // to CAAAAAAAAABA.QA" and, without the GPC segment, "CAAAAAAAAABA".
        assert_eq!(reference_default().encode(), "CAAAAAAAAABA.QA");
        let no_gpc = UsNat {
            gpc: None,
            ..reference_default()
        };
        assert_eq!(no_gpc.encode(), "CAAAAAAAAABA");
    }

    #[test]
    fn encodes_the_reference_example_with_every_value_kind() {
        // iabgpp-es UsNat.test.ts "should encode to CVVVkkkkkpFY.YA" (the same vector is in
        // iabgpp-java UsNatTest.java testEncode2).
        let section = UsNat {
            sharing_notice: Notice::Provided,
            sale_opt_out_notice: Notice::Provided,
            sharing_opt_out_notice: Notice::Provided,
            targeted_advertising_opt_out_notice: Notice::Provided,
            sensitive_data_processing_opt_out_notice: Notice::Provided,
            sensitive_data_limit_use_notice: Notice::Provided,
            sale_opt_out: OptOut::OptedOut,
            sharing_opt_out: OptOut::OptedOut,
            targeted_advertising_opt_out: OptOut::OptedOut,
            sensitive_data_processing: consents([2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2]),
            known_child_sensitive_data_consents: consents([2, 1, 0]),
            personal_data_consents: Consent::NoConsent,
            mspa_covered_transaction: MspaCovered::Yes,
            mspa_opt_out_option_mode: MspaMode::Yes,
            mspa_service_provider_mode: MspaMode::No,
            gpc: Some(true),
        };
        assert_eq!(section.encode(), "CVVVkkkkkpFY.YA");
    }

    #[test]
    fn encodes_the_reference_example_with_every_consent_refused() {
        // iabgpp-java UsNatTest.java testEncodeV2WithV2Values: all 16 sensitive categories
        // and all 3 child bands 1 -> CAAAVVVVVVRA.QA.
        let section = UsNat {
            sensitive_data_processing: [Consent::NoConsent; 16],
            known_child_sensitive_data_consents: [Consent::NoConsent; 3],
            ..reference_default()
        };
        assert_eq!(section.encode(), "CAAAVVVVVVRA.QA");
    }

    #[test]
    fn an_opted_out_person_with_notice() {
        let signals = PrivacySignals {
            sale_opted_out: true,
            sharing_opted_out: true,
            targeted_advertising_opted_out: true,
            sensitive_limited: true,
            gpc: Some(true),
            notice_given: true,
            ..PrivacySignals::default()
        };
        let section = UsNat::from_signals(&signals);
        assert_eq!(section.sharing_notice, Notice::Provided);
        assert_eq!(section.sale_opt_out_notice, Notice::Provided);
        assert_eq!(section.sharing_opt_out_notice, Notice::Provided);
        assert_eq!(
            section.targeted_advertising_opt_out_notice,
            Notice::Provided
        );
        assert_eq!(
            section.sensitive_data_processing_opt_out_notice,
            Notice::Provided
        );
        assert_eq!(section.sensitive_data_limit_use_notice, Notice::Provided);
        assert_eq!(section.sale_opt_out, OptOut::OptedOut);
        assert_eq!(section.sharing_opt_out, OptOut::OptedOut);
        assert_eq!(section.targeted_advertising_opt_out, OptOut::OptedOut);
        assert_eq!(section.sensitive_data_processing, [Consent::NoConsent; 16]);
        assert_eq!(
            section.known_child_sensitive_data_consents,
            [Consent::NotApplicable; 3]
        );
        assert_eq!(section.personal_data_consents, Consent::NoConsent);
        assert_eq!(section.mspa_covered_transaction, MspaCovered::No);
        assert_eq!(section.mspa_opt_out_option_mode, MspaMode::NotApplicable);
        assert_eq!(section.mspa_service_provider_mode, MspaMode::NotApplicable);
        assert_eq!(section.gpc, Some(true));
        assert_eq!(section.encode(), "CVVVVVVVVQGA.YA");
    }

    #[test]
    fn a_person_who_did_not_opt_out() {
        let signals = PrivacySignals {
            notice_given: true,
            ..PrivacySignals::default()
        };
        let section = UsNat::from_signals(&signals);
        assert_eq!(section.sale_opt_out, OptOut::DidNotOptOut);
        assert_eq!(section.sharing_opt_out, OptOut::DidNotOptOut);
        assert_eq!(section.targeted_advertising_opt_out, OptOut::DidNotOptOut);
        // No opt-in consent is on record, limited or not.
        assert_eq!(section.sensitive_data_processing, [Consent::NoConsent; 16]);
        assert_eq!(section.gpc, None);
        assert!(!section.encode().contains('.'));
    }

    #[test]
    fn without_notice_the_opt_outs_that_were_not_made_are_not_applicable() {
        let signals = PrivacySignals {
            sale_opted_out: true,
            ..PrivacySignals::default()
        };
        let section = UsNat::from_signals(&signals);
        assert_eq!(section.sale_opt_out_notice, Notice::NotProvided);
        assert_eq!(section.sharing_notice, Notice::NotProvided);
        assert_eq!(section.sale_opt_out, OptOut::OptedOut);
        assert_eq!(section.sharing_opt_out, OptOut::NotApplicable);
        assert_eq!(section.targeted_advertising_opt_out, OptOut::NotApplicable);
    }

    #[test]
    fn known_children_and_mspa_standing() {
        let child = |known_child, sale_opted_out| {
            UsNat::from_signals(&PrivacySignals {
                known_child,
                sale_opted_out,
                ..PrivacySignals::default()
            })
            .known_child_sensitive_data_consents
        };
        assert_eq!(
            child(KnownChild::UnderSixteenWithoutConsent, false),
            consents([1, 1, 0])
        );
        assert_eq!(
            child(KnownChild::UnderSixteenWithConsent, false),
            consents([2, 2, 0])
        );
        assert_eq!(
            child(KnownChild::UnderSixteenWithConsent, true),
            consents([1, 1, 0])
        );

        let covered = UsNat::from_signals(&PrivacySignals {
            mspa: Mspa::OptOutOptionMode,
            ..PrivacySignals::default()
        });
        assert_eq!(covered.mspa_covered_transaction, MspaCovered::Yes);
        assert_eq!(covered.mspa_opt_out_option_mode, MspaMode::Yes);
        assert_eq!(covered.mspa_service_provider_mode, MspaMode::No);
    }

    #[test]
    fn the_core_segment_is_70_bits() {
        // 6 (version) + 9 x 2 + 16 x 2 + 3 x 2 + 2 + 3 x 2 = 70 bits -> 72 -> 12 characters.
        let core = UsNat {
            gpc: None,
            ..reference_default()
        }
        .encode();
        assert_eq!(core.len(), 12);
    }
}
