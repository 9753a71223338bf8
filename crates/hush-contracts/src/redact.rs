//! Removing raw identifier values from text that may be stored or logged (a vendor's error
//! text, evidence, a retry reason). A value is found in every form it commonly takes on its way
//! through HTTP and JSON, in any mix and in any ASCII letter case:
//!
//! - as is (`Jane+News@Example.com`);
//! - percent-encoded, with upper- or lower-case hex (`jane%2Bnews%40example.com`), in part or
//!   in whole, and double-encoded (`%2540`);
//! - form-encoded, where `+` stands for a space;
//! - JSON `\u00XX` escapes of ASCII characters (`jane\u0040example.com`);
//! - Base64 of the value (standard or URL-safe alphabet, with or without padding), as it is,
//!   lower-cased or upper-cased.

use base64::Engine;

/// What replaces a redacted value when the caller has no more specific word for it.
pub const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of each of `values`, in any of the forms listed in the module
/// documentation, replaced by `placeholder`. Empty values are ignored; a longer value is
/// replaced before a shorter one it contains.
pub fn redact(text: &str, values: &[&str], placeholder: &str) -> String {
    let mut values: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return text.to_owned();
    }
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    let mut text = text.to_owned();
    for value in &values {
        for encoded in base64_forms(value) {
            text = text.replace(&encoded, placeholder);
        }
    }
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match values
            .iter()
            .find_map(|value| match_end(bytes, at, value.as_bytes(), 0))
        {
            Some(end) if end > at => {
                out.extend_from_slice(placeholder.as_bytes());
                at = end;
            }
            _ => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    // A match starts and ends on character boundaries (see `match_end`), so this never fails;
    // the lossy fallback keeps the function total.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The Base64 encodings of `value`, lower-cased and upper-cased `value`, longest first (padded
/// before unpadded, so no lone padding is left behind).
fn base64_forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = Vec::new();
    for variant in [value.to_owned(), value.to_lowercase(), value.to_uppercase()] {
        for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(variant.as_bytes()));
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// The end of a match of `needle[from..]` in `text` starting at `at`, each needle byte matched
/// by one unit of text: the byte itself (ASCII case-insensitively), `+` for a space, `%XX`,
/// `%25XX` or `\u00XX` decoding to it. Units are whole ASCII sequences or whole bytes of the
/// text, and the needle is whole UTF-8, so a match never splits a character of valid text.
fn match_end(text: &[u8], at: usize, needle: &[u8], from: usize) -> Option<usize> {
    let Some(&want) = needle.get(from) else {
        return Some(at);
    };
    let rest = text.get(at..)?;
    let first = *rest.first()?;
    let same = |got: u8| got.eq_ignore_ascii_case(&want);
    if first == b'%' {
        if let Some(got) = hex_byte(rest.get(1..3)) {
            if same(got) {
                if let Some(end) = match_end(text, at + 3, needle, from + 1) {
                    return Some(end);
                }
            }
            if got == b'%' {
                if let Some(got) = hex_byte(rest.get(3..5)) {
                    if same(got) {
                        if let Some(end) = match_end(text, at + 5, needle, from + 1) {
                            return Some(end);
                        }
                    }
                }
            }
        }
    }
    if first == b'\\'
        && rest
            .get(1..4)
            .is_some_and(|u| u.eq_ignore_ascii_case(b"u00"))
    {
        if let Some(got) = hex_byte(rest.get(4..6)).filter(u8::is_ascii) {
            if same(got) {
                if let Some(end) = match_end(text, at + 6, needle, from + 1) {
                    return Some(end);
                }
            }
        }
    }
    if same(first) || (first == b'+' && want == b' ') {
        return match_end(text, at + 1, needle, from + 1);
    }
    None
}

/// The byte two hex digits (any case) stand for.
fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = std::str::from_utf8(digits?).ok()?;
    u8::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "jane+news@example.com";
    const PHONE: &str = "+14155550100";

    fn scrub(text: &str) -> String {
        redact(text, &[EMAIL, PHONE], "<x>")
    }

    #[test]
    fn a_plain_value_is_replaced() {
        assert_eq!(
            scrub("no contact jane+news@example.com here"),
            "no contact <x> here"
        );
    }

    #[test]
    fn letter_case_does_not_hide_a_value() {
        assert_eq!(scrub("Email = 'JANE+News@Example.COM'"), "Email = '<x>'");
    }

    #[test]
    fn percent_encoded_values_are_replaced_with_either_hex_case() {
        assert_eq!(scrub("q=jane%2Bnews%40example.com&x=1"), "q=<x>&x=1");
        assert_eq!(scrub("q=jane%2bnews%40EXAMPLE.com"), "q=<x>");
        assert_eq!(scrub("/contacts/jane+news%40example.com"), "/contacts/<x>");
        assert_eq!(
            scrub("%6A%61%6E%65%2B%6E%65%77%73%40%65%78%61%6D%70%6C%65%2E%63%6F%6D!"),
            "<x>!"
        );
    }

    #[test]
    fn an_encoded_phone_plus_is_replaced() {
        assert_eq!(scrub("phone=%2B14155550100"), "phone=<x>");
        assert_eq!(scrub("phone=%2b14155550100;"), "phone=<x>;");
    }

    #[test]
    fn double_encoding_and_json_escapes_are_replaced() {
        assert_eq!(scrub("url=jane%252Bnews%2540example.com"), "url=<x>");
        assert_eq!(
            scrub(r#"{"e":"jane+news\u0040example.com"}"#),
            r#"{"e":"<x>"}"#
        );
    }

    #[test]
    fn a_plus_stands_for_a_space_in_form_encoding() {
        assert_eq!(
            redact("name=Jane+Doe&x", &["jane doe"], "<x>"),
            "name=<x>&x"
        );
    }

    #[test]
    fn base64_of_the_value_is_replaced_in_both_alphabets() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let standard = STANDARD.encode(EMAIL);
        let url_safe = URL_SAFE_NO_PAD.encode(EMAIL.to_uppercase());
        assert_eq!(scrub(&format!("a {standard} b")), "a <x> b");
        assert_eq!(scrub(&format!("a {url_safe} b")), "a <x> b");
    }

    #[test]
    fn text_without_the_values_is_unchanged() {
        let text = "HTTP 400: MALFORMED_QUERY — 100% sure, jane@example.org, 4155550100 é";
        assert_eq!(scrub(text), text);
    }

    #[test]
    fn multibyte_text_around_a_value_survives() {
        assert_eq!(
            redact("é→josé@exämple.com←ü", &["josé@exämple.com"], "<x>"),
            "é→<x>←ü"
        );
        assert_eq!(
            redact(
                "q=jos%C3%A9%40ex%C3%A4mple.com",
                &["josé@exämple.com"],
                "<x>"
            ),
            "q=<x>"
        );
    }

    #[test]
    fn a_longer_value_is_replaced_before_one_it_contains() {
        assert_eq!(
            redact("id=cust-1001-b", &["cust-1001", "cust-1001-b"], "<x>"),
            "id=<x>"
        );
    }

    #[test]
    fn empty_values_are_ignored() {
        assert_eq!(redact("text", &["", ""], "<x>"), "text");
    }
}
