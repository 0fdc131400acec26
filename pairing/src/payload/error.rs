//! Errors from building, encoding and decoding a [`PairingPayload`](super::PairingPayload).

/// Why a pairing payload (or pairing code, or pairing link) was rejected.
///
/// The messages are written for the person holding the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The input is empty.
    #[error("the pairing code is empty; scan the QR code or paste the whole pairing link")]
    Empty,

    /// The input is longer than any valid pairing code (binary or text form).
    #[error(
        "this is not a peer pairing code: it is too long ({len} bytes, at most {max}); \
         scan the QR code shown by peer on the host"
    )]
    TooLong {
        /// Length of the input.
        len: usize,
        /// Maximum allowed length.
        max: usize,
    },

    /// The first byte is a format version this build does not understand.
    #[error(
        "this pairing code is for a newer version of peer (format version {0}); \
         update peer on this device and scan again"
    )]
    UnsupportedVersion(u8),

    /// The input ends in the middle of a field.
    #[error(
        "the pairing code is incomplete (it ends inside {field}); \
         scan the QR code again or copy the whole link"
    )]
    Truncated {
        /// The field that is cut off.
        field: &'static str,
    },

    /// The text form is not valid unpadded base64url.
    #[error(
        "the pairing code is damaged (it is not valid base64url text); \
         scan the QR code again or copy the whole link"
    )]
    Base64,

    /// A text field is not valid UTF-8.
    #[error("the pairing code is damaged ({field} is not valid UTF-8); scan the QR code again")]
    BadUtf8 {
        /// The field that is not valid UTF-8.
        field: &'static str,
    },

    /// A direct address has a length other than 6 (IPv4) or 18 (IPv6) bytes.
    #[error(
        "the pairing code is damaged (a direct address has {len} bytes, expected 6 or 18); \
         scan the QR code again"
    )]
    InvalidAddr {
        /// Length of the address value.
        len: usize,
    },

    /// A relay URL is empty, too long, not `http://` or `https://`, or contains
    /// whitespace or control characters.
    #[error(
        "the pairing code contains an invalid relay URL (it must start with http:// or \
         https://, be at most 255 bytes and contain no spaces); check the host's relay setting"
    )]
    InvalidRelayUrl,

    /// The host name is empty, longer than 64 bytes or contains control characters.
    #[error(
        "the pairing code contains an invalid host name (it must be 1 to 64 bytes with no \
         control characters); rename the host or leave the name out"
    )]
    InvalidHostName,

    /// The relay certificate hash is not 32 bytes long.
    #[error(
        "the pairing code is damaged (the relay certificate hash has {len} bytes, expected 32); \
         scan the QR code again"
    )]
    InvalidRelayCertHash {
        /// Length of the hash value.
        len: usize,
    },

    /// The relay token is shorter than 16 or longer than 255 bytes, or has a byte that is
    /// not printable ASCII (`0x21..=0x7e`).
    #[error(
        "the pairing code contains an invalid relay token (it must be 16 to 255 printable \
         ASCII characters without spaces); check the host's --relay-token"
    )]
    InvalidRelayToken,

    /// A field that may appear at most once appears twice.
    #[error("the pairing code is damaged ({field} appears more than once); scan the QR code again")]
    DuplicateField {
        /// The repeated field.
        field: &'static str,
    },

    /// A repeatable field appears more often than allowed.
    #[error("the pairing code has too many {field} entries (at most {max})")]
    TooMany {
        /// The repeated field.
        field: &'static str,
        /// Maximum number of entries.
        max: usize,
    },

    /// The payload contains a field this build does not know and must not ignore.
    #[error(
        "this pairing code needs a feature this version of peer does not have \
         (field 0x{tag:02x}); update peer on this device and scan again"
    )]
    UnknownCriticalField {
        /// The field's tag.
        tag: u8,
    },

    /// The payload contains neither a relay URL nor a direct address.
    #[error(
        "the pairing code contains no way to reach the host (no relay URL and no direct \
         address); check the host's network settings and create a new code"
    )]
    NoRoute,

    /// The payload has expired.
    #[error(
        "this pairing code has expired (at unix time {expired_at}); \
         create a new one on the host. If it was just created, check this device's clock"
    )]
    Expired {
        /// The payload's `expires_at`, in unix seconds.
        expired_at: u64,
    },

    /// A link has nothing after `#`, or looks like a URL but has no `#` at all.
    #[error("the pairing link has no pairing code after '#'; copy the whole link")]
    MissingFragment,
}
