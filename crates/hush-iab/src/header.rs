//! The GPP header section (Consent String Specification, "Header Encoding").

use crate::bits::BitWriter;

/// `Type`: fixed to 3, the section id of the GPP header.
const HEADER_TYPE: u64 = 3;
/// `Version`: version 1 of the GPP string.
const GPP_VERSION: u64 = 1;

/// Writes the header bits: `Type` Int(6), `Version` Int(6), then `Sections` as a Fibonacci
/// range of the section ids, which must be sorted and distinct (the order the sections
/// follow the header in).
fn write(w: &mut BitWriter, section_ids: &[u16]) {
    w.int(HEADER_TYPE, 6);
    w.int(GPP_VERSION, 6);
    w.fibonacci_range(section_ids);
}

/// The encoded header naming `section_ids`.
pub(crate) fn encode(section_ids: &[u16]) -> String {
    let mut w = BitWriter::new();
    write(&mut w, section_ids);
    w.into_base64url()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(section_ids: &[u16]) -> String {
        let mut w = BitWriter::new();
        write(&mut w, section_ids);
        w.bit_string()
    }

    #[test]
    fn header_bits_match_the_spec_examples() {
        // Consent String Specification, "Header Examples" 1-3 (the bit representations,
        // before padding): EU TCF v2 (2); EU TCF v2 and US Privacy (2, 6); Canadian TCF and
        // US Privacy (5, 6), the last one a group.
        assert_eq!(bits(&[2]), concat!("000011000001000000000001", "0011"));
        assert_eq!(
            bits(&[2, 6]),
            concat!("000011000001000000000010", "0011", "01011")
        );
        assert_eq!(
            bits(&[5, 6]),
            concat!("000011000001000000000001", "100011", "11")
        );
    }

    #[test]
    fn header_bits_match_the_reference_encoder_tests() {
        // iabgpp-es modules/cmpapi/test/encoder/section/HeaderV1.test.ts ("should encode
        // section ids ... to <bits>").
        assert_eq!(bits(&[]), "000011000001000000000000");
        assert_eq!(bits(&[2]), "0000110000010000000000010011");
        assert_eq!(bits(&[2, 6]), "000011000001000000000010001101011");
    }

    #[test]
    fn encoded_headers_match_the_reference_encoders() {
        // iabgpp-es HeaderV1.test.ts and iabgpp-java HeaderV1Test.java: [] -> DBAA,
        // [2] -> DBABMA, [2,6] -> DBACNYA.
        assert_eq!(encode(&[]), "DBAA");
        assert_eq!(encode(&[2]), "DBABMA");
        assert_eq!(encode(&[2, 6]), "DBACNYA");
        // iabgpp-java GppModelTest.java testEncodeUspv1: [6] -> DBABTA.
        assert_eq!(encode(&[6]), "DBABTA");
        // iabgpp-java GppModelTest.java testEncodeDefaultAll: sections 2 and 5..=22, a
        // single id followed by a run -> DBACOdM.
        let all: Vec<u16> = [2].into_iter().chain(5..=22).collect();
        assert_eq!(encode(&all), "DBACOdM");
    }

    #[test]
    fn encoded_headers_agree_with_the_spec_text_examples() {
        // Consent String Specification, "Header Example 3": DBABjw (32 bits, so the byte
        // and the multiple-of-6 padding coincide).
        assert_eq!(encode(&[5, 6]), "DBABjw");
        // Header Examples 1 and 2 print the minimal multiple-of-6 form, DBABM and DBACNY;
        // the reference encoders (and this crate) write one more zero character. The
        // field bits are identical: dropping that padding character gives the spec text.
        assert_eq!(encode(&[2]), concat!("DBABM", "A"));
        assert_eq!(encode(&[2, 6]), concat!("DBACNY", "A"));
    }

    #[test]
    fn us_sections_headers() {
        // usnat alone (7): 0 01011; usca alone (8): 0 000011; both: one group 7..=8.
        assert_eq!(bits(&[7]), concat!("000011000001000000000001", "001011"));
        assert_eq!(bits(&[8]), concat!("000011000001000000000001", "0000011"));
        assert_eq!(
            bits(&[7, 8]),
            concat!("000011000001000000000001", "101011", "11")
        );
        // What these headers decode to is checked against the IAB reference decoder in
        // tests/reference_decoder.rs.
        assert_eq!(encode(&[7]), "DBABLA");
        assert_eq!(encode(&[8]), "DBABBg");
        assert_eq!(encode(&[7, 8]), "DBABrw");
    }
}
