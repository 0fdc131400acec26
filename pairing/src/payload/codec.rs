//! Encoding, decoding and validation of the binary payload format v1.

use zeroize::Zeroize;

use super::fields::{
    self, DIRECT_ADDR, FIRST_OPTIONAL_TAG, HOST_NAME, RELAY_CERT_SHA256, RELAY_TOKEN, RELAY_URL,
    TAG_DIRECT_ADDR, TAG_HOST_NAME, TAG_RELAY_CERT_SHA256, TAG_RELAY_TOKEN, TAG_RELAY_URL,
};
use super::{
    MAX_DIRECT_ADDRS, MAX_PAYLOAD_LEN, MAX_RELAY_URLS, PAYLOAD_VERSION, PairingPayload,
    PayloadError, RelayToken,
};
use crate::keys::PairingSecret;

/// Length of the fixed part: version, host id, Noise key, secret, expiry.
const FIXED_LEN: usize = 1 + 32 + 32 + 32 + 8;
/// Length of a TLV header: tag and length.
const TLV_HEADER_LEN: usize = 2;

/// Checks every rule of the format; see [`PairingPayload::validate`].
pub(super) fn validate(payload: &PairingPayload) -> Result<(), PayloadError> {
    if payload.relay_urls.len() > MAX_RELAY_URLS {
        return Err(PayloadError::TooMany {
            field: RELAY_URL,
            max: MAX_RELAY_URLS,
        });
    }
    if payload.direct_addrs.len() > MAX_DIRECT_ADDRS {
        return Err(PayloadError::TooMany {
            field: DIRECT_ADDR,
            max: MAX_DIRECT_ADDRS,
        });
    }
    for url in &payload.relay_urls {
        fields::check_relay_url(url)?;
    }
    if let Some(name) = &payload.host_name {
        fields::check_host_name(name)?;
    }
    if payload.relay_urls.is_empty() && payload.direct_addrs.is_empty() {
        return Err(PayloadError::NoRoute);
    }
    let len = encoded_len(payload);
    if len > MAX_PAYLOAD_LEN {
        return Err(PayloadError::TooLong {
            len,
            max: MAX_PAYLOAD_LEN,
        });
    }
    Ok(())
}

/// Length of the encoding of a payload whose fields are individually valid.
fn encoded_len(payload: &PairingPayload) -> usize {
    let urls: usize = payload
        .relay_urls
        .iter()
        .map(|url| TLV_HEADER_LEN + url.len())
        .sum();
    let addrs: usize = payload
        .direct_addrs
        .iter()
        .map(|addr| TLV_HEADER_LEN + fields::addr_len(addr))
        .sum();
    let name = payload
        .host_name
        .as_ref()
        .map_or(0, |name| TLV_HEADER_LEN + name.len());
    let cert = payload
        .relay_cert_sha256
        .map_or(0, |hash| TLV_HEADER_LEN + hash.len());
    let token = payload
        .relay_token
        .as_ref()
        .map_or(0, |token| TLV_HEADER_LEN + token.as_str().len());
    FIXED_LEN + urls + addrs + name + cert + token
}

/// Encodes a valid payload; see [`PairingPayload::encode`].
pub(super) fn encode(payload: &PairingPayload) -> Result<Vec<u8>, PayloadError> {
    validate(payload)?;
    let mut out = Vec::with_capacity(encoded_len(payload));
    out.push(PAYLOAD_VERSION);
    out.extend_from_slice(&payload.host_id);
    out.extend_from_slice(&payload.host_noise_key);
    out.extend_from_slice(payload.secret.as_bytes());
    out.extend_from_slice(&payload.expires_at.to_be_bytes());
    for url in &payload.relay_urls {
        write_tlv(
            &mut out,
            TAG_RELAY_URL,
            url.as_bytes(),
            PayloadError::InvalidRelayUrl,
        )?;
    }
    for addr in &payload.direct_addrs {
        let mut value = Vec::with_capacity(fields::ADDR_V6_LEN);
        fields::write_addr(&mut value, addr);
        let too_long = PayloadError::InvalidAddr { len: value.len() };
        write_tlv(&mut out, TAG_DIRECT_ADDR, &value, too_long)?;
    }
    if let Some(name) = &payload.host_name {
        write_tlv(
            &mut out,
            TAG_HOST_NAME,
            name.as_bytes(),
            PayloadError::InvalidHostName,
        )?;
    }
    if let Some(hash) = &payload.relay_cert_sha256 {
        let too_long = PayloadError::InvalidRelayCertHash { len: hash.len() };
        write_tlv(&mut out, TAG_RELAY_CERT_SHA256, hash, too_long)?;
    }
    if let Some(token) = &payload.relay_token {
        write_tlv(
            &mut out,
            TAG_RELAY_TOKEN,
            token.as_str().as_bytes(),
            PayloadError::InvalidRelayToken,
        )?;
    }
    Ok(out)
}

/// Appends one TLV field. Validation guarantees that `value` fits in 255 bytes; a
/// value that does not is reported as `too_long` rather than silently truncated.
fn write_tlv(
    out: &mut Vec<u8>,
    tag: u8,
    value: &[u8],
    too_long: PayloadError,
) -> Result<(), PayloadError> {
    let len = u8::try_from(value.len()).map_err(|_| too_long)?;
    out.push(tag);
    out.push(len);
    out.extend_from_slice(value);
    Ok(())
}

/// Reads fields front to back, reporting which field is cut off.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], PayloadError> {
        if self.rest.len() < len {
            return Err(PayloadError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], PayloadError> {
        let bytes = self.take(N, field)?;
        bytes
            .try_into()
            .map_err(|_| PayloadError::Truncated { field })
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, PayloadError> {
        let [byte] = self.array::<1>(field)?;
        Ok(byte)
    }
}

/// Decodes and validates; see [`PairingPayload::decode`].
pub(super) fn decode(bytes: &[u8]) -> Result<PairingPayload, PayloadError> {
    if bytes.len() > MAX_PAYLOAD_LEN {
        return Err(PayloadError::TooLong {
            len: bytes.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    if bytes.is_empty() {
        return Err(PayloadError::Empty);
    }
    let mut reader = Reader { rest: bytes };
    let version = reader.byte("version")?;
    if version != PAYLOAD_VERSION {
        return Err(PayloadError::UnsupportedVersion(version));
    }
    let host_id = reader.array::<32>("host id")?;
    let host_noise_key = reader.array::<32>("host Noise key")?;
    let mut secret_bytes = reader.array::<32>("pairing secret")?;
    let secret = PairingSecret::from_bytes(secret_bytes);
    secret_bytes.zeroize();
    let expires_at = u64::from_be_bytes(reader.array::<8>("expiry time")?);

    let mut payload = PairingPayload {
        host_id,
        host_noise_key,
        secret,
        expires_at,
        relay_urls: Vec::new(),
        direct_addrs: Vec::new(),
        host_name: None,
        relay_cert_sha256: None,
        relay_token: None,
    };

    while !reader.rest.is_empty() {
        let tag = reader.byte("field tag")?;
        let len = reader.byte("field length")?;
        let value = reader.take(usize::from(len), fields::tag_name(tag))?;
        read_tlv(&mut payload, tag, value)?;
    }

    if payload.relay_urls.is_empty() && payload.direct_addrs.is_empty() {
        return Err(PayloadError::NoRoute);
    }
    Ok(payload)
}

/// Applies one TLV field to `payload`, enforcing the per-field rules.
fn read_tlv(payload: &mut PairingPayload, tag: u8, value: &[u8]) -> Result<(), PayloadError> {
    match tag {
        TAG_RELAY_URL => {
            if payload.relay_urls.len() >= MAX_RELAY_URLS {
                return Err(PayloadError::TooMany {
                    field: RELAY_URL,
                    max: MAX_RELAY_URLS,
                });
            }
            let url = std::str::from_utf8(value)
                .map_err(|_| PayloadError::BadUtf8 { field: RELAY_URL })?;
            fields::check_relay_url(url)?;
            payload.relay_urls.push(url.to_owned());
        }
        TAG_DIRECT_ADDR => {
            if payload.direct_addrs.len() >= MAX_DIRECT_ADDRS {
                return Err(PayloadError::TooMany {
                    field: DIRECT_ADDR,
                    max: MAX_DIRECT_ADDRS,
                });
            }
            payload.direct_addrs.push(fields::read_addr(value)?);
        }
        TAG_HOST_NAME => {
            if payload.host_name.is_some() {
                return Err(PayloadError::DuplicateField { field: HOST_NAME });
            }
            let name = std::str::from_utf8(value)
                .map_err(|_| PayloadError::BadUtf8 { field: HOST_NAME })?;
            fields::check_host_name(name)?;
            payload.host_name = Some(name.to_owned());
        }
        TAG_RELAY_CERT_SHA256 => {
            if payload.relay_cert_sha256.is_some() {
                return Err(PayloadError::DuplicateField {
                    field: RELAY_CERT_SHA256,
                });
            }
            let hash = <[u8; 32]>::try_from(value)
                .map_err(|_| PayloadError::InvalidRelayCertHash { len: value.len() })?;
            payload.relay_cert_sha256 = Some(hash);
        }
        TAG_RELAY_TOKEN => {
            if payload.relay_token.is_some() {
                return Err(PayloadError::DuplicateField { field: RELAY_TOKEN });
            }
            let token = std::str::from_utf8(value)
                .map_err(|_| PayloadError::BadUtf8 { field: RELAY_TOKEN })?;
            payload.relay_token = Some(RelayToken::new(token)?);
        }
        FIRST_OPTIONAL_TAG..=u8::MAX => {}
        _ => return Err(PayloadError::UnknownCriticalField { tag }),
    }
    Ok(())
}
