//! The GPP bit-level data types (Consent String Specification, "Section Encoding") and the
//! base64url-like text form every GPP header, section and sub-section is written in.

/// The URL-safe base64 alphabet (RFC 4648 §5). Each character carries 6 bits.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Collects the bits of one GPP segment, most significant bit first.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    bits: Vec<bool>,
}

impl BitWriter {
    /// An empty segment.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `Int(width)`: `value` as an unsigned big-endian integer of exactly `width` bits.
    pub(crate) fn int(&mut self, value: u64, width: u32) {
        assert!(
            width <= 64 && (width == 64 || value >> width == 0),
            "{value} does not fit in {width} bits"
        );
        for shift in (0..width).rev() {
            self.bits.push((value >> shift) & 1 == 1);
        }
    }

    /// `Boolean`: one bit, 1 for true.
    pub(crate) fn bool(&mut self, value: bool) {
        self.bits.push(value);
    }

    /// `Integer (Fibonacci)`: the Zeckendorf representation of `value` (bit *i* stands for
    /// the Fibonacci number F(i+2): 1, 2, 3, 5, 8, …), followed by a terminating 1, so every
    /// code word ends in "11". Zero has no Fibonacci code.
    pub(crate) fn fibonacci(&mut self, value: u64) {
        assert!(value >= 1, "Fibonacci coding starts at 1");
        let mut fibs = vec![1u64, 2];
        while let Some(next) = fibs[fibs.len() - 2].checked_add(fibs[fibs.len() - 1]) {
            if next > value {
                break;
            }
            fibs.push(next);
        }
        while fibs.last().is_some_and(|&f| f > value) {
            fibs.pop();
        }
        let mut code = vec![false; fibs.len()];
        let mut rest = value;
        for (i, &f) in fibs.iter().enumerate().rev() {
            if f <= rest {
                code[i] = true;
                rest -= f;
            }
        }
        self.bits.extend(code);
        self.bits.push(true);
    }

    /// `Range (Fibonacci)`: an `Int(12)` count of groups, then per group a Boolean (0 = a
    /// single id, 1 = a run of consecutive ids), the Fibonacci-coded offset of its first id
    /// from the last id written before it (0 at the start) and, for a run, the
    /// Fibonacci-coded distance from its first to its last id. `ids` must be sorted and
    /// free of duplicates, as the specification requires.
    pub(crate) fn fibonacci_range(&mut self, ids: &[u16]) {
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "range ids must be sorted and distinct: {ids:?}"
        );
        let mut groups: Vec<(u16, u16)> = Vec::new();
        for &id in ids {
            match groups.last_mut() {
                Some((_, end)) if *end + 1 == id => *end = id,
                _ => groups.push((id, id)),
            }
        }
        self.int(groups.len() as u64, 12);
        let mut last = 0u16;
        for (start, end) in groups {
            self.bool(start != end);
            self.fibonacci(u64::from(start - last));
            if start != end {
                self.fibonacci(u64::from(end - start));
            }
            last = end;
        }
    }

    /// The bits written so far, as '0'/'1' characters.
    #[cfg(test)]
    pub(crate) fn bit_string(&self) -> String {
        self.bits
            .iter()
            .map(|&b| if b { '1' } else { '0' })
            .collect()
    }

    /// The segment as text: zero bits are appended up to a whole number of bytes and then
    /// up to a multiple of 6 bits, and each 6 bits become one character of the base64url
    /// alphabet; there is no '=' padding.
    ///
    /// The specification only asks for "a total bit length that is a multiple of 6"; going
    /// to a whole byte first is what the IAB's reference encoders (iabgpp-es, iabgpp-java)
    /// do, so the text is byte-for-byte what they produce and stays decodable by consumers
    /// that read it with an ordinary byte-oriented base64url decoder. The field bits are the
    /// same either way; only the number of trailing zero bits differs.
    pub(crate) fn into_base64url(mut self) -> String {
        while !self.bits.len().is_multiple_of(8) {
            self.bits.push(false);
        }
        while !self.bits.len().is_multiple_of(6) {
            self.bits.push(false);
        }
        sextets(&self.bits)
    }
}

/// Maps bits (a multiple of 6 of them) to base64url characters.
fn sextets(bits: &[bool]) -> String {
    debug_assert!(bits.len().is_multiple_of(6));
    bits.chunks(6)
        .map(|sextet| {
            let index = sextet
                .iter()
                .fold(0usize, |acc, &bit| (acc << 1) | usize::from(bit));
            char::from(ALPHABET[index])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fib(value: u64) -> String {
        let mut w = BitWriter::new();
        w.fibonacci(value);
        w.bit_string()
    }

    /// Bits as text with only the spec's minimal padding (to a multiple of 6), used to show
    /// that the field bits match the specification's own encoded examples.
    fn minimal_text(bits: &str) -> String {
        let mut bits: Vec<bool> = bits.chars().map(|c| c == '1').collect();
        while !bits.len().is_multiple_of(6) {
            bits.push(false);
        }
        sextets(&bits)
    }

    #[test]
    fn fibonacci_codes_match_the_spec_table() {
        // Consent String Specification, "About Fibonacci Encoding": 1..=7.
        let table = [
            (1, "11"),
            (2, "011"),
            (3, "0011"),
            (4, "1011"),
            (5, "00011"),
            (6, "10011"),
            (7, "01011"),
        ];
        for (value, code) in table {
            assert_eq!(fib(value), code, "F-code of {value}");
        }
        // Larger values: 8 = F(6); 17 = 13 + 3 + 1; 100 = 89 + 8 + 3.
        assert_eq!(fib(8), "000011");
        assert_eq!(fib(17), "1010011");
        assert_eq!(fib(100), "00101000011");
    }

    #[test]
    fn fibonacci_range_matches_the_spec_example() {
        // Consent String Specification, data type "Range (Fibonacci)": [3,5,6,7,8] is
        // 000000000010 0 0011 1 011 0011.
        let mut w = BitWriter::new();
        w.fibonacci_range(&[3, 5, 6, 7, 8]);
        assert_eq!(w.bit_string(), "0000000000100001110110011");
    }

    #[test]
    fn fixed_integers_are_big_endian_and_exact_width() {
        // Consent String Specification: int(6) "000101" represents 5.
        let mut w = BitWriter::new();
        w.int(5, 6);
        w.int(2, 2);
        w.bool(true);
        w.bool(false);
        assert_eq!(w.bit_string(), "0001011010");
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn an_integer_too_wide_for_its_field_is_refused() {
        BitWriter::new().int(4, 2);
    }

    #[test]
    fn text_uses_the_url_safe_alphabet_without_padding_characters() {
        // 62 and 63 are '-' and '_' (not '+' and '/'), and no '=' is ever added.
        let mut w = BitWriter::new();
        w.int(62, 6);
        w.int(63, 6);
        w.int(0, 6);
        w.int(25, 6);
        assert_eq!(w.into_base64url(), "-_AZ");
    }

    #[test]
    fn padding_goes_to_a_whole_byte_then_to_a_multiple_of_six() {
        // 3 bits (a GPC sub-section): 8 bits, then 12 -> 2 characters, as the IAB
        // reference encoders write it ("QA" / "YA" in their UsNat/UsCa tests).
        let mut w = BitWriter::new();
        w.int(1, 2);
        w.bool(true);
        assert_eq!(w.into_base64url(), "YA");
        // 24 bits are already both: nothing is added.
        let mut w = BitWriter::new();
        w.int(0xABCDEF, 24);
        assert_eq!(w.into_base64url(), "q83v");
        // The minimal multiple-of-6 form of the same 3 bits is the single character 'Y'.
        assert_eq!(minimal_text("011"), "Y");
    }
}
