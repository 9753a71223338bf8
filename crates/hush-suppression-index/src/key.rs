//! The key of the index: a truncated SHA-256 of a normalised identifier.

use std::fmt;

/// The number of hex characters in a SHA-256 digest.
const SHA256_HEX_LEN: usize = 64;

/// The first 16 bytes (128 bits) of the SHA-256 digest of a normalised personal identifier.
///
/// 128 bits keep accidental collisions negligible (the chance that any two of 10 billion
/// identifiers share a key is about 1.5e-19) at half the memory of the full digest. Keys compare
/// as their bytes do, lexicographically; `Debug` prints them as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentifierKey([u8; 16]);

/// Why a string is not a SHA-256 digest in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A character that is not a hex digit (`0-9`, `a-f`, `A-F`); `index` counts characters
    /// from 0 (every character before it is a hex digit, so it is also the byte offset).
    #[error("not a hex SHA-256 digest: {found:?} at position {index} is not a hex digit")]
    InvalidCharacter {
        /// The offending character.
        found: char,
        /// Its position in the string.
        index: usize,
    },
    /// Only hex digits, but not 64 of them (a SHA-1 has 40, an MD5 32).
    #[error("not a hex SHA-256 digest: expected 64 hex characters, got {len}")]
    WrongLength {
        /// How many hex digits the string has.
        len: usize,
    },
}

impl IdentifierKey {
    /// Parses the 64-character hex form of a SHA-256 digest (lowercase, uppercase or mixed) and
    /// keeps its first 16 bytes. The whole string is validated, including the half that is
    /// dropped: any character that is not a hex digit is [`KeyError::InvalidCharacter`] (the
    /// first one is reported), and otherwise any length but 64 is [`KeyError::WrongLength`].
    pub fn from_sha256_hex(hex: &str) -> Result<Self, KeyError> {
        if let Some((index, found)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(KeyError::InvalidCharacter { found, index });
        }
        if hex.len() != SHA256_HEX_LEN {
            return Err(KeyError::WrongLength { len: hex.len() });
        }
        let digits = hex.as_bytes();
        let mut key = [0u8; 16];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = (hex_value(digits[2 * i]) << 4) | hex_value(digits[2 * i + 1]);
        }
        Ok(Self(key))
    }

    /// Keeps the first 16 bytes of a SHA-256 digest; equal to
    /// [`from_sha256_hex`](Self::from_sha256_hex) of the digest's hex form.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    /// The 16 bytes of the key: the first 16 bytes of the digest, in order.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for IdentifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentifierKey(")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// The value of one ASCII hex digit (the caller has checked it is one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST_HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef";

    #[test]
    fn hex_keeps_the_first_sixteen_bytes_in_any_case() {
        let lower = IdentifierKey::from_sha256_hex(DIGEST_HEX).unwrap();
        assert_eq!(
            lower.as_bytes(),
            &[
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
        let upper = IdentifierKey::from_sha256_hex(&DIGEST_HEX.to_uppercase()).unwrap();
        assert_eq!(lower, upper);
        assert_eq!(
            format!("{lower:?}"),
            "IdentifierKey(00112233445566778899aabbccddeeff)"
        );
    }

    #[test]
    fn digest_and_hex_agree() {
        let mut digest = [0u8; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            IdentifierKey::from_digest(&digest),
            IdentifierKey::from_sha256_hex(&hex).unwrap()
        );
    }

    #[test]
    fn wrong_length_names_the_length() {
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let err = IdentifierKey::from_sha256_hex(sha1).unwrap_err();
        assert_eq!(err, KeyError::WrongLength { len: 40 });
        assert_eq!(
            err.to_string(),
            "not a hex SHA-256 digest: expected 64 hex characters, got 40"
        );
        assert_eq!(
            IdentifierKey::from_sha256_hex("").unwrap_err(),
            KeyError::WrongLength { len: 0 }
        );
        let too_long = format!("{DIGEST_HEX}0");
        assert_eq!(
            IdentifierKey::from_sha256_hex(&too_long).unwrap_err(),
            KeyError::WrongLength { len: 65 }
        );
    }

    #[test]
    fn a_bad_character_is_named_even_in_the_dropped_half() {
        let mut bad = DIGEST_HEX.to_string();
        bad.replace_range(50..51, "g");
        let err = IdentifierKey::from_sha256_hex(&bad).unwrap_err();
        assert_eq!(
            err,
            KeyError::InvalidCharacter {
                found: 'g',
                index: 50
            }
        );
        assert_eq!(
            err.to_string(),
            "not a hex SHA-256 digest: 'g' at position 50 is not a hex digit"
        );
        // A raw identifier instead of its digest.
        assert_eq!(
            IdentifierKey::from_sha256_hex("ann@example.com").unwrap_err(),
            KeyError::InvalidCharacter {
                found: 'n',
                index: 1
            }
        );
        assert_eq!(
            IdentifierKey::from_sha256_hex("é").unwrap_err(),
            KeyError::InvalidCharacter {
                found: 'é',
                index: 0
            }
        );
    }
}
