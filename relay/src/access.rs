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
use peer_pairing::RelayToken;
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

/// The SHA-256 digest of a [`RelayToken`]: all the relay keeps of a token.
///
/// Built only from a valid [`RelayToken`], so the relay's tokens file, the host's token and a
/// presented token obey one rule (16 to 255 bytes of `0x21..=0x7e`). Comparison is
/// constant-time; `Debug` shows nothing of it.
#[derive(Clone)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub(crate) fn of(token: &RelayToken) -> Self {
        Self(Sha256::digest(token.as_str().as_bytes()).into())
    }

    /// The digest of `text` if it is a valid token; anything else cannot match a token.
    pub(crate) fn of_presented(text: &str) -> Option<Self> {
        RelayToken::new(text).ok().map(|token| Self::of(&token))
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TokenDigest {}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
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
    tokens: Vec<TokenDigest>,
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
    ///
    /// Only the tokens' SHA-256 digests are kept.
    pub fn token(
        tokens: impl IntoIterator<Item = RelayToken>,
        endpoints: impl IntoIterator<Item = EndpointId>,
    ) -> Self {
        Self {
            mode: AccessMode::Token,
            endpoints: endpoints.into_iter().collect(),
            tokens: tokens.into_iter().map(|t| TokenDigest::of(&t)).collect(),
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

    /// Whether `endpoint`, presenting `token` (if any), may connect. Text that is not a valid
    /// [`RelayToken`] counts as no token.
    pub fn admits(&self, endpoint: &EndpointId, token: Option<&str>) -> bool {
        let digest = token.and_then(TokenDigest::of_presented);
        self.decide(endpoint, digest.as_ref()).is_some()
    }

    pub(crate) fn decide(
        &self,
        endpoint: &EndpointId,
        token: Option<&TokenDigest>,
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
                    .fold(false, |found, t| (t == digest) | found);
                matched.then_some(Admission::Token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use iroh_base::SecretKey;
    use peer_pairing::InvalidRelayToken;

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
    fn token_admits_listed_or_token_holders() -> Result<(), InvalidRelayToken> {
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
    fn presented_tokens_obey_the_same_rule() -> Result<(), InvalidRelayToken> {
        let policy = AccessPolicy::token([RelayToken::generate()], []);
        // Text that is not a valid token never matches, whatever the configured tokens.
        for presented in ["", "short", "has a space in it, sadly", &"x".repeat(256)] {
            assert!(
                TokenDigest::of_presented(presented).is_none(),
                "{presented:?}"
            );
            assert!(!policy.admits(&id(2), Some(presented)));
        }
        let token = RelayToken::new("exactly-16-bytes")?;
        assert_eq!(
            TokenDigest::of_presented(token.as_str()),
            Some(TokenDigest::of(&token))
        );
        Ok(())
    }

    #[test]
    fn tokens_never_print() -> Result<(), InvalidRelayToken> {
        let secret = "super-secret-token-value";
        let token = RelayToken::new(secret)?;
        let digest = TokenDigest::of(&token);
        let policy = AccessPolicy::token([token.clone()], []);
        for printed in [
            format!("{token:?}"),
            format!("{digest:?}"),
            format!("{policy:?}"),
        ] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!printed.contains("super"), "{printed}");
        }
        Ok(())
    }

    #[test]
    fn generated_tokens_are_admitted() {
        let token = RelayToken::generate();
        let policy = AccessPolicy::token([token.clone()], []);
        assert!(policy.admits(&id(5), Some(token.as_str())));
        assert!(!policy.admits(&id(5), Some(RelayToken::generate().as_str())));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("open".parse(), Ok(AccessMode::Open));
        assert_eq!(" Allowlist ".parse(), Ok(AccessMode::Allowlist));
        assert_eq!("TOKEN".parse(), Ok(AccessMode::Token));
        assert!("closed".parse::<AccessMode>().is_err());
    }
}
