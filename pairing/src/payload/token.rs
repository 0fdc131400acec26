//! [`RelayToken`]: the relay access token a host hands to the devices it pairs with, and the
//! one rule for what a valid token is (used by the pairing payload and by `peer-relay`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

use super::PayloadError;

/// A bearer token that admits an endpoint to a relay running in token mode
/// (`peer-relay`'s `access.mode = "token"`).
///
/// It grants use of that relay (forwarding of already end-to-end encrypted packets) and
/// nothing else: it is not a credential for the host. 16 to 255 bytes of printable ASCII
/// without spaces (`0x21..=0x7e`), because it travels in an HTTP `Authorization` header and in
/// one TLV field of the pairing payload. This is the only definition of a valid token: the
/// relay's tokens file, the host's `--relay-token` and the pairing payload all go through
/// [`RelayToken::new`].
///
/// `Debug` prints `RelayToken(..)`; equality is constant-time; the text is zeroized on drop.
#[derive(Clone)]
pub struct RelayToken(Zeroizing<String>);

/// Why a string is not a [`RelayToken`]. The messages never include the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRelayToken {
    /// Shorter than [`RelayToken::MIN_LEN`] bytes.
    #[error("a relay token must be at least 16 characters long (this one has {len})")]
    TooShort {
        /// Length of the rejected text, in bytes.
        len: usize,
    },
    /// Longer than [`RelayToken::MAX_LEN`] bytes.
    #[error("a relay token must be at most 255 characters long (this one has {len})")]
    TooLong {
        /// Length of the rejected text, in bytes.
        len: usize,
    },
    /// A byte outside `0x21..=0x7e` (a space, a control character, non-ASCII).
    #[error(
        "a relay token may only contain printable ASCII characters without spaces \
         (character {position} is not)"
    )]
    NotPrintable {
        /// 1-based byte position of the first offending byte.
        position: usize,
    },
}

impl From<InvalidRelayToken> for PayloadError {
    fn from(_: InvalidRelayToken) -> Self {
        PayloadError::InvalidRelayToken
    }
}

impl RelayToken {
    /// Shortest accepted token, in bytes.
    pub const MIN_LEN: usize = 16;
    /// Longest accepted token, in bytes (what one TLV field holds).
    pub const MAX_LEN: usize = 255;

    /// Checks and wraps a token.
    ///
    /// # Errors
    ///
    /// [`InvalidRelayToken`] if `token` is shorter than [`Self::MIN_LEN`], longer than
    /// [`Self::MAX_LEN`], or contains a byte outside `0x21..=0x7e`.
    pub fn new(token: &str) -> Result<Self, InvalidRelayToken> {
        let len = token.len();
        if len < Self::MIN_LEN {
            return Err(InvalidRelayToken::TooShort { len });
        }
        if len > Self::MAX_LEN {
            return Err(InvalidRelayToken::TooLong { len });
        }
        if let Some(index) = token.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(InvalidRelayToken::NotPrintable {
                position: index + 1,
            });
        }
        Ok(Self(Zeroizing::new(token.to_owned())))
    }

    /// A new random token: 32 bytes from the operating system, base64url without padding
    /// (43 characters).
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = crate::keys::os_random_32();
        let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes));
        bytes.zeroize();
        // 43 characters of the base64url alphabet always pass `new`; build it directly so this
        // cannot fail.
        Self(text)
    }

    /// The token text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for RelayToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for RelayToken {}

impl fmt::Debug for RelayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayToken(..)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_printable_ascii_of_16_to_255_bytes() {
        assert!(RelayToken::new(&"a".repeat(16)).is_ok());
        assert!(RelayToken::new(&"~".repeat(255)).is_ok());
        assert!(RelayToken::new("Ab0-_.!#$%&'()*+,/:;<=>?@[]^`{|}").is_ok());
        for (bad, why) in [
            ("a".repeat(15), InvalidRelayToken::TooShort { len: 15 }),
            (String::new(), InvalidRelayToken::TooShort { len: 0 }),
            ("a".repeat(256), InvalidRelayToken::TooLong { len: 256 }),
            (
                "has a space in the middle".into(),
                InvalidRelayToken::NotPrintable { position: 4 },
            ),
            (
                "tab\tinside-0123456789".into(),
                InvalidRelayToken::NotPrintable { position: 4 },
            ),
            (
                "non-ascii-é-0123456789".into(),
                InvalidRelayToken::NotPrintable { position: 11 },
            ),
            (
                "delete\u{7f}-0123456789".into(),
                InvalidRelayToken::NotPrintable { position: 7 },
            ),
        ] {
            assert_eq!(RelayToken::new(&bad), Err(why), "{bad:?}");
            assert_eq!(PayloadError::from(why), PayloadError::InvalidRelayToken);
        }
    }

    #[test]
    fn errors_never_repeat_the_text() {
        let secret = "secret part\u{1}-0123456789";
        let err = RelayToken::new(secret).unwrap_err();
        let message = err.to_string();
        assert!(!message.contains("secret"), "{message}");
        assert!(message.contains("character 7"), "{message}");
    }

    #[test]
    fn debug_hides_the_token() {
        let token = RelayToken::new("super-secret-relay-token").unwrap();
        assert_eq!(format!("{token:?}"), "RelayToken(..)");
        assert_eq!(token.as_str(), "super-secret-relay-token");
        assert_eq!(token, RelayToken::new("super-secret-relay-token").unwrap());
        assert_ne!(token, RelayToken::new("super-secret-relay-tokeN").unwrap());
    }

    #[test]
    fn generated_tokens_are_valid_and_distinct() {
        let token = RelayToken::generate();
        assert_eq!(token.as_str().len(), 43);
        assert_eq!(RelayToken::new(token.as_str()).unwrap(), token);
        assert!(
            token
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(RelayToken::generate(), token);
    }
}
