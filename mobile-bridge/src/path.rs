//! The bridge URL path: `/bridge/<64 hex chars>`.

use iroh::EndpointId;

/// The path prefix of bridge sockets.
pub const BRIDGE_PATH_PREFIX: &str = "/bridge/";

/// Why a request path does not name a bridge socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/bridge/`.
    #[error("not a bridge path: expected /bridge/<host id as 64 hex characters>")]
    NotBridge,
    /// The path carries a query string or fragment, which the bridge does not accept.
    #[error("the bridge path takes no query string or fragment")]
    Query,
    /// The host id is not 64 characters long.
    #[error("the host id must be 64 hex characters, got {0}")]
    BadLength(usize),
    /// The host id contains a character that is not a hex digit.
    #[error("the host id must be hex (0-9, a-f)")]
    NotHex,
    /// The 32 bytes are not a valid endpoint id (not an ed25519 public key).
    #[error("the host id is not a valid endpoint id")]
    InvalidKey,
}

/// Parses `"/bridge/<64 hex chars>"` into the host's endpoint id.
///
/// Exactly that shape is accepted: no trailing slash, no query string, no fragment. Hex digits
/// may be upper or lower case.
pub fn parse_bridge_path(path: &str) -> Result<EndpointId, PathError> {
    if path.contains(['?', '#']) {
        return Err(PathError::Query);
    }
    let hex_id = path
        .strip_prefix(BRIDGE_PATH_PREFIX)
        .ok_or(PathError::NotBridge)?;
    if hex_id.len() != 64 {
        return Err(PathError::BadLength(hex_id.len()));
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id, &mut bytes).map_err(|_| PathError::NotHex)?;
    EndpointId::from_bytes(&bytes).map_err(|_| PathError::InvalidKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_id() -> EndpointId {
        iroh::SecretKey::from_bytes(&[7u8; 32]).public()
    }

    #[test]
    fn parses_lower_and_upper_case() {
        let id = some_id();
        let lower = format!("/bridge/{id}");
        assert_eq!(parse_bridge_path(&lower), Ok(id));
        let upper = format!("/bridge/{}", id.to_string().to_uppercase());
        assert_eq!(parse_bridge_path(&upper), Ok(id));
    }

    #[test]
    fn rejects_other_prefixes() {
        let id = some_id();
        for p in [
            format!("/bridges/{id}"),
            format!("bridge/{id}"),
            format!("/relay/{id}"),
            format!("//bridge/{id}"),
            "/bridge".to_string(),
            String::new(),
        ] {
            assert_eq!(parse_bridge_path(&p), Err(PathError::NotBridge), "{p}");
        }
    }

    #[test]
    fn rejects_queries_and_fragments() {
        let id = some_id();
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{id}?x=1")),
            Err(PathError::Query)
        );
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{id}?")),
            Err(PathError::Query)
        );
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{id}#f")),
            Err(PathError::Query)
        );
    }

    #[test]
    fn rejects_wrong_lengths() {
        let id = some_id().to_string();
        assert_eq!(parse_bridge_path("/bridge/"), Err(PathError::BadLength(0)));
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{}", &id[..63])),
            Err(PathError::BadLength(63))
        );
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{id}0")),
            Err(PathError::BadLength(65))
        );
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{id}/")),
            Err(PathError::BadLength(65))
        );
        // Multi-byte characters count in bytes, and never panic.
        let odd = format!("/bridge/{}é", &id[..62]);
        assert_eq!(parse_bridge_path(&odd), Err(PathError::NotHex));
        let odd = format!("/bridge/{}é", &id[..61]);
        assert_eq!(parse_bridge_path(&odd), Err(PathError::BadLength(63)));
    }

    #[test]
    fn rejects_non_hex() {
        let mut id = some_id().to_string();
        id.replace_range(10..11, "g");
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{id}")),
            Err(PathError::NotHex)
        );
        let base32ish = "z".repeat(64);
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{base32ish}")),
            Err(PathError::NotHex)
        );
    }

    #[test]
    fn rejects_invalid_keys() {
        // Not every 32-byte string is a point on the curve: find one that is not.
        let bad = (0u8..=255)
            .map(|b| {
                let mut bytes = [0xffu8; 32];
                bytes[0] = b;
                bytes
            })
            .find(|bytes| EndpointId::from_bytes(bytes).is_err())
            .expect("some 32-byte string is not a valid key");
        assert_eq!(
            parse_bridge_path(&format!("/bridge/{}", hex::encode(bad))),
            Err(PathError::InvalidKey)
        );
    }

    #[test]
    fn errors_read_clearly() {
        assert_eq!(
            PathError::BadLength(3).to_string(),
            "the host id must be 64 hex characters, got 3"
        );
    }
}
