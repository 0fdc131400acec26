//! Who may use the relay: [`AccessPolicy`], enforced through iroh-relay's `AccessControl` hook.
//!
//! What the hook sees (iroh-relay 1.4.1, `ClientRequest`): the client's endpoint id (proven by
//! the relay handshake), the HTTP request it connected with (headers, URI, so an
//! `Authorization: Bearer` token or a `?token=` query parameter), and nothing else. It runs once
//! per relay connection, before the client is registered; after that the relay forwards to any
//! endpoint id the client names, and has no per-packet hook. So a policy decides *who may connect*,
//! never *who may talk to whom*: every endpoint that uses the relay — hosts and the phones and
//! laptops that dial them — has to pass it.

//!
//! This module is the policy only: a pure decision on an endpoint id and a token digest. The
//! front server applies it (`front::relay_access`).

use std::{collections::BTreeSet, fmt, str::FromStr};

use iroh_base::EndpointId;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// How an [`AccessPolicy`] decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AccessMode {
    /// Every endpoint may connect.
    #[default]
    Open,
    /// Only the listed endpoint ids may connect (hosts *and* the devices that dial them).
    Allowlist,
    /// The listed endpoint ids, plus any endpoint presenting one of the relay tokens.
    Token,
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Allowlist => "allowlist",
            Self::Token => "token",
        })
    }
}

impl FromStr for AccessMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Self::Open),
            "allowlist" => Ok(Self::Allowlist),
            "token" => Ok(Self::Token),
            other => Err(format!(
                "unknown access mode {other:?} (expected open, allowlist or token)"
            )),
        }
    }
}

/// A relay token: a shared secret a client presents to be admitted in [`AccessMode::Token`].
///
/// Only its SHA-256 digest is kept; `Debug` shows a short digest prefix (to tell tokens apart in
/// logs), never the secret. Comparison is constant-time.
///
/// iroh endpoints send it when the relay is in their relay map with
/// `iroh::RelayConfig::with_auth_token(token)` (as `Authorization: Bearer <token>`; browsers
/// built to WebAssembly send `?token=<token>`).
#[derive(Clone, PartialEq, Eq)]
pub struct RelayToken {
    digest: [u8; 32],
}

/// A string that cannot be a relay token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid relay token: {0}")]
pub struct InvalidToken(&'static str);

impl RelayToken {
    /// Shortest accepted token, in characters.
    pub const MIN_LEN: usize = 16;

    /// Wraps a secret. It must be at least [`Self::MIN_LEN`] printable ASCII characters without
    /// spaces (it travels in an HTTP header).
    pub fn new(secret: &str) -> Result<Self, InvalidToken> {
        if secret.len() < Self::MIN_LEN {
            return Err(InvalidToken("shorter than 16 characters"));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken(
                "only printable ASCII without spaces is allowed",
            ));
        }
        Ok(Self {
            digest: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// A new random token (32 bytes, base64url without padding: 43 characters).
    pub fn generate() -> (Self, String) {
        let bytes: [u8; 32] = rand::random();
        // 43 characters of the base64url alphabet: a valid token.
        let secret = base64url(&bytes);
        let token = Self {
            digest: Sha256::digest(secret.as_bytes()).into(),
        };
        (token, secret)
    }

    fn matches_digest(&self, digest: &[u8; 32]) -> bool {
        self.digest.ct_eq(digest).into()
    }
}

impl fmt::Debug for RelayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RelayToken(sha256:{:02x}{:02x}{:02x}{:02x}…)",
            self.digest[0], self.digest[1], self.digest[2], self.digest[3]
        )
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Who may connect to the relay.
///
/// - [`AccessPolicy::open`] admits everyone.
/// - [`AccessPolicy::allowlist`] admits only the listed endpoint ids. Both ends of a relayed
///   connection connect to the relay, so the devices that dial a host must be listed too.
/// - [`AccessPolicy::token`] admits the listed endpoint ids, plus every endpoint presenting one
///   of the tokens (a host can hand the token to its devices in its pairing payload).
///
/// `Debug` never shows tokens.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    mode: AccessMode,
    endpoints: BTreeSet<EndpointId>,
    tokens: Vec<RelayToken>,
}

/// Why a client was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Open,
    Listed,
    Token,
    /// One of the relay's own services (its mobile bridge's endpoint).
    Service,
}

impl AccessPolicy {
    /// Admits every endpoint.
    pub fn open() -> Self {
        Self::default()
    }

    /// Admits exactly the given endpoints.
    pub fn allowlist(endpoints: impl IntoIterator<Item = EndpointId>) -> Self {
        Self {
            mode: AccessMode::Allowlist,
            endpoints: endpoints.into_iter().collect(),
            tokens: Vec::new(),
        }
    }

    /// Admits endpoints presenting one of `tokens`, and the `endpoints` without a token.
    pub fn token(
        tokens: impl IntoIterator<Item = RelayToken>,
        endpoints: impl IntoIterator<Item = EndpointId>,
    ) -> Self {
        Self {
            mode: AccessMode::Token,
            endpoints: endpoints.into_iter().collect(),
            tokens: tokens.into_iter().collect(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// The endpoints admitted without a token (in allowlist and token mode).
    pub fn endpoints(&self) -> &BTreeSet<EndpointId> {
        &self.endpoints
    }

    /// How many tokens are accepted.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Whether `endpoint`, presenting `token` (if any), may connect.
    pub fn admits(&self, endpoint: &EndpointId, token: Option<&str>) -> bool {
        let digest = token.map(|t| Sha256::digest(t.as_bytes()).into());
        self.decide(endpoint, digest.as_ref()).is_some()
    }

    pub(crate) fn decide(
        &self,
        endpoint: &EndpointId,
        token: Option<&[u8; 32]>,
    ) -> Option<Admission> {
        match self.mode {
            AccessMode::Open => Some(Admission::Open),
            _ if self.endpoints.contains(endpoint) => Some(Admission::Listed),
            AccessMode::Allowlist => None,
            AccessMode::Token => {
                let digest = token?;
                // Check every token, so timing does not tell which one matched.
                let matched = self
                    .tokens
                    .iter()
                    .fold(false, |found, t| t.matches_digest(digest) | found);
                matched.then_some(Admission::Token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use iroh_base::SecretKey;

    use super::*;

    fn id(n: u8) -> EndpointId {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn open_admits_everyone() {
        let policy = AccessPolicy::open();
        assert!(policy.admits(&id(1), None));
        assert!(policy.admits(&id(2), Some("whatever")));
    }

    #[test]
    fn allowlist_admits_only_listed() {
        let policy = AccessPolicy::allowlist([id(1)]);
        assert!(policy.admits(&id(1), None));
        assert!(!policy.admits(&id(2), None));
        // Tokens mean nothing in allowlist mode.
        let token = "a-long-enough-token-123";
        assert!(!policy.admits(&id(2), Some(token)));
    }

    #[test]
    fn token_admits_listed_or_token_holders() -> Result<(), InvalidToken> {
        let policy = AccessPolicy::token(
            [
                RelayToken::new("first-token-0123456789")?,
                RelayToken::new("second-token-0123456789")?,
            ],
            [id(1)],
        );
        assert!(
            policy.admits(&id(1), None),
            "listed endpoints need no token"
        );
        assert!(policy.admits(&id(2), Some("second-token-0123456789")));
        assert!(policy.admits(&id(3), Some("first-token-0123456789")));
        assert!(!policy.admits(&id(2), Some("second-token-012345678")));
        assert!(!policy.admits(&id(2), None));
        Ok(())
    }

    #[test]
    fn tokens_are_validated_and_never_printed() -> Result<(), InvalidToken> {
        assert!(RelayToken::new("short").is_err());
        assert!(RelayToken::new("has a space in it, sadly").is_err());
        assert!(RelayToken::new("non-ascii-é-0123456789").is_err());
        let secret = "super-secret-token-value";
        let token = RelayToken::new(secret)?;
        let policy = AccessPolicy::token([token.clone()], []);
        for printed in [format!("{token:?}"), format!("{policy:?}")] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!printed.contains("super"), "{printed}");
        }
        Ok(())
    }

    #[test]
    fn generated_tokens_are_valid_and_distinct() -> Result<(), InvalidToken> {
        let (token, secret) = RelayToken::generate();
        assert_eq!(secret.len(), 43);
        assert_eq!(RelayToken::new(&secret)?, token);
        let (_, other) = RelayToken::generate();
        assert_ne!(secret, other);
        Ok(())
    }

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn modes_parse() {
        assert_eq!("open".parse(), Ok(AccessMode::Open));
        assert_eq!(" Allowlist ".parse(), Ok(AccessMode::Allowlist));
        assert_eq!("TOKEN".parse(), Ok(AccessMode::Token));
        assert!("closed".parse::<AccessMode>().is_err());
    }
}
