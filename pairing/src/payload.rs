//! The QR pairing payload, format version 1.
//!
//! The host shows this payload as a QR code (usually a URL whose fragment is the
//! payload in base64url) and the phone or laptop that scans it learns how to reach
//! the host and how to authenticate it.
//!
//! # Binary format v1
//!
//! All integers are big-endian. The whole encoding is at most
//! [`MAX_PAYLOAD_LEN`] (1024) bytes; decoders check this before anything else.
//!
//! | offset | size | field                                                     |
//! |-------:|-----:|-----------------------------------------------------------|
//! | 0      | 1    | version, always `0x01`                                    |
//! | 1      | 32   | `host_id`: the host's iroh endpoint id (ed25519 public key) |
//! | 33     | 32   | `host_noise_key`: the host's X25519 Noise static public key |
//! | 65     | 32   | `secret`: the one-time pairing secret (the Noise psk)      |
//! | 97     | 8    | `expires_at`: unix time in seconds, u64 big-endian         |
//! | 105    | ...  | zero or more TLV fields until the end of the input        |
//!
//! Each TLV field is `tag (u8) || len (u8) || value (len bytes)`:
//!
//! | tag    | field               | value                                                  | count  |
//! |-------:|---------------------|--------------------------------------------------------|--------|
//! | `0x01` | relay URL           | UTF-8 URL, see below                                   | 0..=4  |
//! | `0x02` | direct address      | 6 bytes: IPv4 (4) + port (u16), or 18 bytes: IPv6 (16) + port (u16) | 0..=8 |
//! | `0x03` | host name           | UTF-8, 1..=64 bytes, no control characters              | 0..=1  |
//! | `0x04` | relay cert SHA-256  | 32 bytes: SHA-256 of the relay's DER certificate       | 0..=1  |
//! | `0x81` | relay token         | 16..=255 bytes of printable ASCII (`0x21..=0x7E`)      | 0..=1  |
//! | `0x80`, `0x82..=0xFF` | (reserved) | unknown optional fields: decoders skip them      | any    |
//! | other  | (reserved)          | unknown critical fields: decoders reject the payload   | -      |
//!
//! Rules:
//!
//! - A relay URL is 1..=255 bytes of UTF-8, starts with `http://` or `https://`
//!   (lowercase), has at least one character after the scheme, and contains no
//!   whitespace or control characters.
//! - IPv6 flow info and scope ids are not encoded (they only mean something on
//!   the host itself); decoded IPv6 addresses have both set to 0.
//! - Repeated relay URLs and direct addresses keep their order.
//! - A payload must contain at least one relay URL or one direct address.
//! - Encoders write the fields in tag order (relay URLs, direct addresses, host
//!   name, certificate hash, relay token); decoders accept any order.
//! - The certificate hash and the relay token apply to every relay URL of the
//!   payload. The relay token is optional (tag >= `0x80`): a decoder that does
//!   not know it may skip it, and then only loses access to a relay in token mode.
//! - The decoder does not check `expires_at` (it has no clock); call
//!   [`PairingPayload::check_fresh`].
//!
//! # Text form
//!
//! The text form (the "fragment") is the binary encoding in unpadded base64url
//! (RFC 4648 section 5, no `=`; non-canonical trailing bits are rejected). It is
//! at most [`MAX_FRAGMENT_LEN`] (1366) characters. A pairing URL is any base URL
//! followed by `#` and the fragment, so the secret never reaches a web server.

mod codec;
mod error;
mod fields;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod token;

use std::fmt;
use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use error::PayloadError;
pub use token::{InvalidRelayToken, RelayToken};

use crate::hex_fmt::Hex;
use crate::keys::PairingSecret;

/// The payload format version written by this crate.
pub const PAYLOAD_VERSION: u8 = 1;
/// Maximum length of an encoded payload in bytes.
pub const MAX_PAYLOAD_LEN: usize = 1024;
/// Maximum length of the base64url text form of a payload in characters.
pub const MAX_FRAGMENT_LEN: usize = (MAX_PAYLOAD_LEN * 4).div_ceil(3);
/// Maximum number of relay URLs in a payload.
pub const MAX_RELAY_URLS: usize = 4;
/// Maximum number of direct addresses in a payload.
pub const MAX_DIRECT_ADDRS: usize = 8;

/// The information a device needs to pair with a host, as carried by the QR code.
///
/// Build one, check it with [`validate`](Self::validate), and turn it into text
/// with [`to_url`](Self::to_url). `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingPayload {
    /// The host's iroh endpoint id (ed25519 public key).
    pub host_id: [u8; 32],
    /// The host's Noise static public key (X25519).
    pub host_noise_key: [u8; 32],
    /// The one-time pairing secret, used as the Noise psk.
    pub secret: PairingSecret,
    /// When the payload stops being valid, in unix seconds.
    pub expires_at: u64,
    /// Relay URLs the host can be reached through: 0..=4, each `http://` or
    /// `https://`, 1..=255 bytes.
    pub relay_urls: Vec<String>,
    /// Direct socket addresses of the host: 0..=8. IPv6 flow info and scope id are
    /// not encoded.
    pub direct_addrs: Vec<SocketAddr>,
    /// A human-readable name of the host: 1..=64 bytes, no control characters.
    pub host_name: Option<String>,
    /// SHA-256 of the relay's certificate, pinning a self-signed relay.
    pub relay_cert_sha256: Option<[u8; 32]>,
    /// The token that admits the device to the host's relays when they run in token mode.
    pub relay_token: Option<RelayToken>,
}

impl PairingPayload {
    /// Checks that the payload satisfies every rule of the format, i.e. that
    /// [`encode`](Self::encode) will succeed and [`decode`](Self::decode) will accept
    /// the result.
    ///
    /// # Errors
    ///
    /// [`PayloadError::TooMany`], [`PayloadError::InvalidRelayUrl`],
    /// [`PayloadError::InvalidHostName`], [`PayloadError::NoRoute`] or
    /// [`PayloadError::TooLong`] (if all fields together exceed
    /// [`MAX_PAYLOAD_LEN`]).
    pub fn validate(&self) -> Result<(), PayloadError> {
        codec::validate(self)
    }

    /// Encodes the payload in the binary format v1 (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// Any error of [`validate`](Self::validate): invalid data is never encoded.
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        codec::encode(self)
    }

    /// Decodes and validates a binary payload.
    ///
    /// # Errors
    ///
    /// A [`PayloadError`] describing the first problem found. Expiry is not checked;
    /// see [`check_fresh`](Self::check_fresh).
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        codec::decode(bytes)
    }

    /// Encodes the payload as unpadded base64url text.
    ///
    /// # Errors
    ///
    /// Any error of [`validate`](Self::validate).
    pub fn to_fragment(&self) -> Result<String, PayloadError> {
        let bytes = zeroize::Zeroizing::new(self.encode()?);
        Ok(URL_SAFE_NO_PAD.encode(bytes.as_slice()))
    }

    /// Decodes unpadded base64url text (surrounding whitespace is ignored).
    ///
    /// # Errors
    ///
    /// [`PayloadError::Empty`], [`PayloadError::TooLong`] (text longer than
    /// [`MAX_FRAGMENT_LEN`], checked before decoding), [`PayloadError::Base64`], or
    /// any error of [`decode`](Self::decode).
    pub fn from_fragment(fragment: &str) -> Result<Self, PayloadError> {
        let fragment = fragment.trim();
        if fragment.len() > MAX_FRAGMENT_LEN {
            return Err(PayloadError::TooLong {
                len: fragment.len(),
                max: MAX_FRAGMENT_LEN,
            });
        }
        if fragment.is_empty() {
            return Err(PayloadError::Empty);
        }
        let bytes = zeroize::Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(fragment)
                .map_err(|_| PayloadError::Base64)?,
        );
        Self::decode(&bytes)
    }

    /// Builds the pairing URL: `base` without any existing fragment, then `#`, then
    /// the [fragment](Self::to_fragment). A `base` ending in `#` is not doubled.
    ///
    /// # Errors
    ///
    /// Any error of [`validate`](Self::validate).
    pub fn to_url(&self, base: &str) -> Result<String, PayloadError> {
        let base = base.split_once('#').map_or(base, |(before, _)| before);
        Ok(format!("{base}#{}", self.to_fragment()?))
    }

    /// Parses a pairing URL or a bare fragment.
    ///
    /// Surrounding whitespace is trimmed. If the text contains `#`, everything after
    /// the first `#` is the fragment. Text without `#` is tried as a bare fragment,
    /// unless it looks like a URL (contains `://`), which is
    /// [`PayloadError::MissingFragment`].
    ///
    /// # Errors
    ///
    /// [`PayloadError::Empty`], [`PayloadError::MissingFragment`], or any error of
    /// [`from_fragment`](Self::from_fragment).
    pub fn from_url(url: &str) -> Result<Self, PayloadError> {
        let text = url.trim();
        if text.is_empty() {
            return Err(PayloadError::Empty);
        }
        match text.split_once('#') {
            Some((_, fragment)) if fragment.trim().is_empty() => Err(PayloadError::MissingFragment),
            Some((_, fragment)) => Self::from_fragment(fragment),
            None if text.contains("://") => Err(PayloadError::MissingFragment),
            None => Self::from_fragment(text),
        }
    }

    /// Checks that the payload has not expired: it is valid while
    /// `now_unix < expires_at`.
    ///
    /// # Errors
    ///
    /// [`PayloadError::Expired`] when `now_unix >= expires_at`.
    pub fn check_fresh(&self, now_unix: u64) -> Result<(), PayloadError> {
        if now_unix >= self.expires_at {
            Err(PayloadError::Expired {
                expired_at: self.expires_at,
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for PairingPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairingPayload")
            .field("host_id", &Hex(&self.host_id))
            .field("host_noise_key", &Hex(&self.host_noise_key))
            .field("secret", &self.secret)
            .field("expires_at", &self.expires_at)
            .field("relay_urls", &self.relay_urls)
            .field("direct_addrs", &self.direct_addrs)
            .field("host_name", &self.host_name)
            .field(
                "relay_cert_sha256",
                &self.relay_cert_sha256.as_ref().map(|hash| Hex(hash)),
            )
            .field("relay_token", &self.relay_token)
            .finish()
    }
}
