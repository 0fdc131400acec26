//! TLV tags, field names and per-field rules of the payload format v1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::PayloadError;

/// Tag of a relay URL field.
pub(super) const TAG_RELAY_URL: u8 = 0x01;
/// Tag of a direct address field.
pub(super) const TAG_DIRECT_ADDR: u8 = 0x02;
/// Tag of the host name field.
pub(super) const TAG_HOST_NAME: u8 = 0x03;
/// Tag of the relay certificate hash field.
pub(super) const TAG_RELAY_CERT_SHA256: u8 = 0x04;
/// Tags at or above this value are optional: decoders skip them if unknown.
pub(super) const FIRST_OPTIONAL_TAG: u8 = 0x80;
/// Tag of the relay token field (optional: a decoder that does not know it may skip it,
/// because ignoring it only costs relay access, never security).
pub(super) const TAG_RELAY_TOKEN: u8 = 0x81;

/// Field names used in errors.
pub(super) const RELAY_URL: &str = "relay URL";
pub(super) const DIRECT_ADDR: &str = "direct address";
pub(super) const HOST_NAME: &str = "host name";
pub(super) const RELAY_CERT_SHA256: &str = "relay certificate hash";
pub(super) const RELAY_TOKEN: &str = "relay token";
pub(super) const UNKNOWN_FIELD: &str = "an unknown field";

/// Maximum length of a relay URL in bytes.
pub(super) const MAX_RELAY_URL_LEN: usize = 255;
/// Maximum length of the host name in bytes.
pub(super) const MAX_HOST_NAME_LEN: usize = 64;

/// Length of an encoded IPv4 direct address.
pub(super) const ADDR_V4_LEN: usize = 4 + 2;
/// Length of an encoded IPv6 direct address.
pub(super) const ADDR_V6_LEN: usize = 16 + 2;

/// Human-readable name of a field tag, for errors.
pub(super) fn tag_name(tag: u8) -> &'static str {
    match tag {
        TAG_RELAY_URL => RELAY_URL,
        TAG_DIRECT_ADDR => DIRECT_ADDR,
        TAG_HOST_NAME => HOST_NAME,
        TAG_RELAY_CERT_SHA256 => RELAY_CERT_SHA256,
        TAG_RELAY_TOKEN => RELAY_TOKEN,
        _ => UNKNOWN_FIELD,
    }
}

/// Checks the relay URL rules: 1..=255 bytes, lowercase `http://` or `https://`
/// followed by at least one character, no whitespace or control characters.
pub(super) fn check_relay_url(url: &str) -> Result<(), PayloadError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(PayloadError::InvalidRelayUrl)?;
    let valid = url.len() <= MAX_RELAY_URL_LEN
        && !rest.is_empty()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(PayloadError::InvalidRelayUrl)
    }
}

/// Checks the host name rules: 1..=64 bytes, no control characters.
pub(super) fn check_host_name(name: &str) -> Result<(), PayloadError> {
    let valid =
        !name.is_empty() && name.len() <= MAX_HOST_NAME_LEN && !name.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(PayloadError::InvalidHostName)
    }
}

/// Length of the encoded form of `addr`.
pub(super) fn addr_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => ADDR_V4_LEN,
        SocketAddr::V6(_) => ADDR_V6_LEN,
    }
}

/// Appends the encoded form of `addr`: IP address bytes then the port (u16 BE).
pub(super) fn write_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Decodes a direct address value of 6 or 18 bytes.
pub(super) fn read_addr(value: &[u8]) -> Result<SocketAddr, PayloadError> {
    let invalid = PayloadError::InvalidAddr { len: value.len() };
    let (ip, port) = match value.len() {
        ADDR_V4_LEN => value.split_at(4),
        ADDR_V6_LEN => value.split_at(16),
        _ => return Err(invalid),
    };
    let port = u16::from_be_bytes(port.try_into().map_err(|_| invalid)?);
    Ok(if let Ok(octets) = <[u8; 4]>::try_from(ip) {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(octets), port))
    } else {
        let octets = <[u8; 16]>::try_from(ip).map_err(|_| invalid)?;
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0))
    })
}
