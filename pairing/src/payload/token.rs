//! [`RelayToken`]: the relay access token a host hands to the devices it pairs with.

use std::fmt;

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::PayloadError;

/// A bearer token that admits an endpoint to a relay running in token mode
/// (`peer-relay`'s `access.mode = "token"`).
///
/// It grants use of that relay (forwarding of already end-to-end encrypted packets) and
/// nothing else: it is not a credential for the host. 16 to 255 bytes of printable ASCII
/// without spaces (`0x21..=0x7e`), because it travels in an HTTP `Authorization` header.
///
/// `Debug` prints `RelayToken(..)`; equality is constant-time; the text is zeroized on drop.
#[derive(Clone)]
pub struct RelayToken(Zeroizing<String>);

impl RelayToken {
    /// Shortest accepted token, in bytes.
    pub const MIN_LEN: usize = 16;
    /// Longest accepted token, in bytes (what one TLV field holds).
    pub const MAX_LEN: usize = 255;

    /// Checks and wraps a token.
    ///
    /// # Errors
    ///
    /// [`PayloadError::InvalidRelayToken`] if `token` is shorter than [`Self::MIN_LEN`],
    /// longer than [`Self::MAX_LEN`], or contains a byte outside `0x21..=0x7e`.
    pub fn new(token: &str) -> Result<Self, PayloadError> {
        let valid = (Self::MIN_LEN..=Self::MAX_LEN).contains(&token.len())
            && token.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(Zeroizing::new(token.to_owned())))
        } else {
            Err(PayloadError::InvalidRelayToken)
        }
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
        for bad in [
            "a".repeat(15),
            "a".repeat(256),
            "has a space in the middle".into(),
            "tab\tinside-0123456789".into(),
            "non-ascii-é-0123456789".into(),
            String::new(),
        ] {
            assert_eq!(
                RelayToken::new(&bad),
                Err(PayloadError::InvalidRelayToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = RelayToken::new("super-secret-relay-token").unwrap();
        assert_eq!(format!("{token:?}"), "RelayToken(..)");
        assert_eq!(token.as_str(), "super-secret-relay-token");
        assert_eq!(token, RelayToken::new("super-secret-relay-token").unwrap());
        assert_ne!(token, RelayToken::new("super-secret-relay-tokeN").unwrap());
    }
}
