//! The `Int(2)` value sets the US sections use, with the integers the specifications assign.

use crate::bits::BitWriter;

macro_rules! int2_values {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// The integer written to the string.
            pub const fn value(self) -> u8 {
                self as u8
            }

            /// Writes the value as `Int(2)`.
            pub(crate) fn write(self, w: &mut BitWriter) {
                w.int(u64::from(self.value()), 2);
            }
        }
    };
}

int2_values! {
    /// A notice field (`SharingNotice`, `SaleOptOutNotice`, `SharingOptOutNotice`,
    /// `TargetedAdvertisingOptOutNotice`, `SensitiveDataProcessingOptOutNotice`,
    /// `SensitiveDataLimitUseNotice`).
    Notice {
        /// 0: the business does not do what the notice would be about.
        NotApplicable = 0,
        /// 1: yes, notice was provided.
        Provided = 1,
        /// 2: no, notice was not provided.
        NotProvided = 2,
    }
}

int2_values! {
    /// An opt-out field (`SaleOptOut`, `SharingOptOut`, `TargetedAdvertisingOptOut`, and each
    /// element of the California `SensitiveDataProcessing` list).
    OptOut {
        /// 0: the matching notice was not applicable or was not provided.
        NotApplicable = 0,
        /// 1: the consumer opted out.
        OptedOut = 1,
        /// 2: the consumer did not opt out.
        DidNotOptOut = 2,
    }
}

int2_values! {
    /// A consent field (`PersonalDataConsents`, each element of
    /// `KnownChildSensitiveDataConsents` and of the US National `SensitiveDataProcessing`).
    Consent {
        /// 0: the business does not process the data concerned.
        NotApplicable = 0,
        /// 1: no consent.
        NoConsent = 1,
        /// 2: consent.
        Consent = 2,
    }
}

int2_values! {
    /// `MspaOptOutOptionMode` and `MspaServiceProviderMode`.
    MspaMode {
        /// 0: not applicable (the transaction is not an MSPA covered transaction).
        NotApplicable = 0,
        /// 1: yes.
        Yes = 1,
        /// 2: no.
        No = 2,
    }
}

int2_values! {
    /// `MspaCoveredTransaction`; the specifications define no "not applicable" value here.
    MspaCovered {
        /// 1: the publisher or advertiser is an MSPA signatory and declares the transaction
        /// a covered transaction.
        Yes = 1,
        /// 2: not an MSPA covered transaction.
        No = 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_integers_the_specs_assign() {
        // MSPA US National and California technical specifications, core segment tables.
        assert_eq!(
            [Notice::NotApplicable, Notice::Provided, Notice::NotProvided].map(Notice::value),
            [0, 1, 2]
        );
        assert_eq!(
            [
                OptOut::NotApplicable,
                OptOut::OptedOut,
                OptOut::DidNotOptOut
            ]
            .map(OptOut::value),
            [0, 1, 2]
        );
        assert_eq!(
            [Consent::NotApplicable, Consent::NoConsent, Consent::Consent].map(Consent::value),
            [0, 1, 2]
        );
        assert_eq!(
            [MspaMode::NotApplicable, MspaMode::Yes, MspaMode::No].map(MspaMode::value),
            [0, 1, 2]
        );
        assert_eq!(
            [MspaCovered::Yes, MspaCovered::No].map(MspaCovered::value),
            [1, 2]
        );
    }

    #[test]
    fn each_value_is_written_as_two_bits() {
        let mut w = BitWriter::new();
        Notice::NotProvided.write(&mut w);
        OptOut::OptedOut.write(&mut w);
        Consent::NotApplicable.write(&mut w);
        MspaCovered::No.write(&mut w);
        assert_eq!(w.bit_string(), "10010010");
    }
}
