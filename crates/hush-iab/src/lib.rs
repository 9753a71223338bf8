//! IAB privacy signals for a person's opt-out state.
//!
//! Hush keeps, per person, whether they opted out of the sale and sharing of their personal
//! information, of targeted advertising, whether they limited the use of their sensitive
//! personal information, and whether their browser sent Global Privacy Control. Ad-tech
//! recipients read the same decisions as IAB strings; this crate writes them:
//!
//! * [`gpp_string`]: the IAB Tech Lab Global Privacy Platform (GPP) string, with the header and
//!   the MSPA US National ([`UsNat`], section 7, `usnat`) and California ([`UsCa`], section 8,
//!   `usca`) sections, each optionally followed by its GPC sub-section;
//! * [`us_privacy_string`]: the legacy IAB US Privacy (CCPA) string, e.g. `1YYN`.
//!
//! [`UsNat::from_signals`] and [`UsCa::from_signals`] expose the field values a string is made
//! of, so the mapping from [`PrivacySignals`] can be inspected field by field; the crate
//! README has the full mapping table.
//!
//! ```
//! use hush_iab::{gpp_string, us_privacy_string, PrivacySignals, Section};
//!
//! let opted_out = PrivacySignals {
//!     sale_opted_out: true,
//!     sharing_opted_out: true,
//!     targeted_advertising_opted_out: true,
//!     sensitive_limited: true,
//!     gpc: Some(true),
//!     notice_given: true,
//!     ..PrivacySignals::default()
//! };
//! assert_eq!(gpp_string(&opted_out, &[Section::UsCa]), "DBABBg~BVVVVUGA.YA");
//! assert_eq!(us_privacy_string(&opted_out), "1YYN");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bits;
mod header;
mod usca;
mod usnat;
mod usp;
mod values;

pub use usca::UsCa;
pub use usnat::UsNat;
pub use usp::{us_privacy_string, US_PRIVACY_NOT_APPLICABLE};
pub use values::{Consent, MspaCovered, MspaMode, Notice, OptOut};

use bits::BitWriter;

/// What Hush knows about one person's privacy choices, and the few facts about the business
/// the strings also carry. [`Default`] is a person who opted out of nothing and was given no
/// notice, with no GPC information, no known child, and no MSPA/LSPA coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrivacySignals {
    /// The person opted out of the sale of their personal information.
    pub sale_opted_out: bool,
    /// The person opted out of the sharing of their personal information (California's
    /// "share": cross-context behavioural advertising).
    pub sharing_opted_out: bool,
    /// The person opted out of the processing of their personal information for targeted
    /// advertising (the other states' right; carried by `usnat` only).
    pub targeted_advertising_opted_out: bool,
    /// The person limited the use and disclosure of their sensitive personal information.
    pub sensitive_limited: bool,
    /// Global Privacy Control as received with the person's request: `Some(true)` it was
    /// set, `Some(false)` it was checked and not set, `None` unknown. Each section gets its
    /// GPC sub-section only when this is `Some`.
    pub gpc: Option<bool>,
    /// The business gave the notices at collection and of the right to opt out (and to
    /// limit sensitive data use).
    pub notice_given: bool,
    /// The publisher signed the IAB Limited Service Provider Agreement and declares the
    /// transaction covered. Only the US Privacy string carries this.
    pub lspa_covered: bool,
    /// Whether, and how, the transaction is covered by the IAB Multi-State Privacy Agreement.
    pub mspa: Mspa,
    /// What the business actually knows about the person being a child.
    pub known_child: KnownChild,
}

/// The business's standing under the IAB Multi-State Privacy Agreement (MSPA) for the
/// transaction, written to `MspaCoveredTransaction`, `MspaOptOutOptionMode` and
/// `MspaServiceProviderMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mspa {
    /// Not an MSPA signatory, or not a covered transaction: covered 2 (no), both modes 0
    /// (not applicable).
    #[default]
    NotCovered,
    /// A covered transaction in Opt-Out Option Mode: covered 1, opt-out option mode 1,
    /// service provider mode 2.
    OptOutOptionMode,
    /// A covered transaction in Service Provider Mode: covered 1, opt-out option mode 2,
    /// service provider mode 1.
    ServiceProviderMode,
}

impl Mspa {
    /// `MspaCoveredTransaction`, `MspaOptOutOptionMode`, `MspaServiceProviderMode`.
    fn fields(self) -> (MspaCovered, MspaMode, MspaMode) {
        match self {
            Mspa::NotCovered => (
                MspaCovered::No,
                MspaMode::NotApplicable,
                MspaMode::NotApplicable,
            ),
            Mspa::OptOutOptionMode => (MspaCovered::Yes, MspaMode::Yes, MspaMode::No),
            Mspa::ServiceProviderMode => (MspaCovered::Yes, MspaMode::No, MspaMode::Yes),
        }
    }
}

/// The business's actual knowledge that the person is a child, as Hush's minors rule records
/// it (under 16, with or without the affirmative opt-in), written to
/// `KnownChildSensitiveDataConsents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KnownChild {
    /// No actual knowledge that the person is a child: every element 0.
    #[default]
    NotKnown,
    /// Known to be under 16, without the affirmative opt-in: no consent.
    UnderSixteenWithoutConsent,
    /// Known to be under 16, with the affirmative opt-in (from a parent under 13). A later
    /// opt-out of sale or sharing withdraws it for that activity.
    UnderSixteenWithConsent,
}

/// A section of the GPP string that Hush writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// MSPA US National, section id 7, client-side API prefix `usnat`.
    UsNat,
    /// California, section id 8, client-side API prefix `usca`.
    UsCa,
}

impl Section {
    /// The GPP section id (the value for `gpp_sid` when this section applies).
    pub const fn id(self) -> u8 {
        match self {
            Section::UsNat => UsNat::ID,
            Section::UsCa => UsCa::ID,
        }
    }

    /// The client-side API prefix, which is also the section's name in the IAB libraries.
    pub const fn api_prefix(self) -> &'static str {
        match self {
            Section::UsNat => "usnat",
            Section::UsCa => "usca",
        }
    }
}

/// The GPP string for `signals` with the given sections: the header listing their ids, then
/// each section, joined with `~`. Sections are written in ascending id order (the header's
/// range encoding requires it) and each at most once, whatever the order or repetition of
/// `sections`; with no sections the result is the bare header `DBAA`.
pub fn gpp_string(signals: &PrivacySignals, sections: &[Section]) -> String {
    let mut sections = sections.to_vec();
    sections.sort_by_key(|section| section.id());
    sections.dedup();
    let ids: Vec<u16> = sections.iter().map(|s| u16::from(s.id())).collect();
    let mut out = header::encode(&ids);
    for section in sections {
        out.push('~');
        out.push_str(&match section {
            Section::UsNat => UsNat::from_signals(signals).encode(),
            Section::UsCa => UsCa::from_signals(signals).encode(),
        });
    }
    out
}

/// A notice field: provided when Hush's business gave notice, otherwise not provided.
fn notice(signals: &PrivacySignals) -> Notice {
    if signals.notice_given {
        Notice::Provided
    } else {
        Notice::NotProvided
    }
}

/// An opt-out field: opted out whenever the person did; otherwise "did not opt out" after a
/// notice, and "not applicable" without one (the specs' 0: "no notice was provided").
fn opt_out(opted_out: bool, signals: &PrivacySignals) -> OptOut {
    if opted_out {
        OptOut::OptedOut
    } else if signals.notice_given {
        OptOut::DidNotOptOut
    } else {
        OptOut::NotApplicable
    }
}

/// Consent of a known child for an activity the person may since have opted out of.
fn child_consent(known_child: KnownChild, opted_out: bool) -> Consent {
    match known_child {
        KnownChild::NotKnown => Consent::NotApplicable,
        KnownChild::UnderSixteenWithoutConsent => Consent::NoConsent,
        KnownChild::UnderSixteenWithConsent if opted_out => Consent::NoConsent,
        KnownChild::UnderSixteenWithConsent => Consent::Consent,
    }
}

/// A GPC sub-section: `SubsectionType` Int(2) = 1 (GPC), then `Gpc` as a Boolean.
fn gpc_subsection(gpc: bool) -> String {
    let mut w = BitWriter::new();
    w.int(1, 2);
    w.bool(gpc);
    w.into_base64url()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opted_out_californian() -> PrivacySignals {
        PrivacySignals {
            sale_opted_out: true,
            sharing_opted_out: true,
            targeted_advertising_opted_out: true,
            sensitive_limited: true,
            gpc: Some(true),
            notice_given: true,
            ..PrivacySignals::default()
        }
    }

    #[test]
    fn section_ids_and_prefixes_are_the_registered_ones() {
        // Sections/Section Information.md: 7 usnat, 8 usca.
        assert_eq!(
            (Section::UsNat.id(), Section::UsNat.api_prefix()),
            (7, "usnat")
        );
        assert_eq!(
            (Section::UsCa.id(), Section::UsCa.api_prefix()),
            (8, "usca")
        );
    }

    #[test]
    fn gpp_string_is_the_header_then_each_section_joined_with_tilde() {
        let s = opted_out_californian();
        let usnat = UsNat::from_signals(&s).encode();
        let usca = UsCa::from_signals(&s).encode();
        assert_eq!(gpp_string(&s, &[Section::UsNat]), format!("DBABLA~{usnat}"));
        assert_eq!(gpp_string(&s, &[Section::UsCa]), format!("DBABBg~{usca}"));
        assert_eq!(
            gpp_string(&s, &[Section::UsNat, Section::UsCa]),
            format!("DBABrw~{usnat}~{usca}")
        );
    }

    #[test]
    fn sections_are_sorted_and_deduplicated() {
        let s = opted_out_californian();
        let both = gpp_string(&s, &[Section::UsNat, Section::UsCa]);
        assert_eq!(gpp_string(&s, &[Section::UsCa, Section::UsNat]), both);
        assert_eq!(
            gpp_string(&s, &[Section::UsCa, Section::UsNat, Section::UsCa]),
            both
        );
        assert_eq!(gpp_string(&s, &[]), "DBAA");
    }

    #[test]
    fn an_opted_out_californian() {
        assert_eq!(
            gpp_string(&opted_out_californian(), &[Section::UsCa]),
            "DBABBg~BVVVVUGA.YA"
        );
    }

    #[test]
    fn gpc_subsection_is_type_one_then_the_flag() {
        // iabgpp-es UsNat.test.ts / UsCa.test.ts: GPC true is ".YA", the default false ".QA".
        assert_eq!(gpc_subsection(true), "YA");
        assert_eq!(gpc_subsection(false), "QA");
    }

    #[test]
    fn opt_out_fields_follow_the_notice() {
        let with_notice = PrivacySignals {
            notice_given: true,
            ..PrivacySignals::default()
        };
        let without_notice = PrivacySignals::default();
        assert_eq!(opt_out(true, &with_notice), OptOut::OptedOut);
        assert_eq!(opt_out(false, &with_notice), OptOut::DidNotOptOut);
        assert_eq!(opt_out(true, &without_notice), OptOut::OptedOut);
        assert_eq!(opt_out(false, &without_notice), OptOut::NotApplicable);
        assert_eq!(notice(&with_notice), Notice::Provided);
        assert_eq!(notice(&without_notice), Notice::NotProvided);
    }

    #[test]
    fn child_consent_follows_the_minors_rule() {
        use KnownChild::*;
        assert_eq!(child_consent(NotKnown, true), Consent::NotApplicable);
        assert_eq!(child_consent(NotKnown, false), Consent::NotApplicable);
        assert_eq!(
            child_consent(UnderSixteenWithoutConsent, false),
            Consent::NoConsent
        );
        assert_eq!(
            child_consent(UnderSixteenWithConsent, false),
            Consent::Consent
        );
        assert_eq!(
            child_consent(UnderSixteenWithConsent, true),
            Consent::NoConsent
        );
    }

    #[test]
    fn mspa_fields_per_standing() {
        // A business outside the MSPA: MspaCoveredTransaction 2 (the specs have no 0 for it;
        // the reference library rejects 0), both modes 0.
        assert_eq!(
            Mspa::NotCovered.fields(),
            (
                MspaCovered::No,
                MspaMode::NotApplicable,
                MspaMode::NotApplicable
            )
        );
        assert_eq!(
            Mspa::OptOutOptionMode.fields(),
            (MspaCovered::Yes, MspaMode::Yes, MspaMode::No)
        );
        assert_eq!(
            Mspa::ServiceProviderMode.fields(),
            (MspaCovered::Yes, MspaMode::No, MspaMode::Yes)
        );
        assert_eq!(Mspa::default(), Mspa::NotCovered);
    }
}
