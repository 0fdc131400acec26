//! Key material: the host's long-term identity, Noise static keypairs and the
//! one-time pairing secret.
//!
//! Every type here that holds secret bytes zeroizes them on drop and prints only
//! `Name(..)` (or public parts) in its `Debug` output.

use std::fmt;

use blake2::{Blake2s256, Digest};
use curve25519_dalek::MontgomeryPoint;
use rand::{RngCore, TryRngCore, rngs::OsRng};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::hex_fmt::Hex;

/// Domain separation label for [`PairingSecret::pairing_id`].
const PAIRING_ID_LABEL: &[u8] = b"peer/pairing-id/1";

/// Fills 32 bytes from the operating system's random number generator.
///
/// Panics only if the OS cannot provide randomness at all, in which case no key
/// can be generated safely anyway.
pub(crate) fn os_random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.unwrap_err().fill_bytes(&mut bytes);
    bytes
}

/// An X25519 static keypair used as a Noise static key.
///
/// The secret is stored as given (X25519 clamps it when used); the public key is
/// derived from it. `Debug` prints only the public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NoiseKeypair {
    secret: [u8; 32],
    #[zeroize(skip)]
    public: [u8; 32],
}

impl NoiseKeypair {
    /// Generates a new keypair from OS randomness.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        let mut secret = os_random_32();
        let keypair = Self::from_secret_bytes(secret);
        secret.zeroize();
        keypair
    }

    /// Builds the keypair for an existing X25519 secret key, deriving its public key.
    #[must_use]
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        Self { secret, public }
    }

    /// The X25519 public key.
    #[must_use]
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The X25519 secret key. Handle with care: do not log or copy it around.
    #[must_use]
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for NoiseKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseKeypair")
            .field("public", &Hex(&self.public))
            .finish_non_exhaustive()
    }
}

/// 32 secret bytes, zeroized on drop. `Debug` prints `SecretBytes32(..)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes32([u8; 32]);

impl SecretBytes32 {
    /// Generates 32 bytes from OS randomness.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        Self(os_random_32())
    }

    /// Wraps existing secret bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes32(..)")
    }
}

/// Errors from [`HostIdentity::from_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The stored identity has the wrong length for its version.
    #[error("stored host identity has {len} bytes, expected {expected}; it is corrupted")]
    WrongLength {
        /// Length of the input.
        len: usize,
        /// Length required by the version byte.
        expected: usize,
    },
    /// The stored identity starts with a version byte this build does not know,
    /// e.g. it was written by a newer version of peer.
    #[error(
        "stored host identity has format version {0}, which this version of peer does not know; \
         update peer"
    )]
    UnknownVersion(u8),
}

/// The host machine's long-term identity: its iroh endpoint secret key and its
/// Noise static keypair.
///
/// `Debug` shows only public parts.
#[derive(Clone, Debug)]
pub struct HostIdentity {
    /// Secret key of the host's iroh endpoint (an ed25519 secret key seed).
    pub iroh_secret: SecretBytes32,
    /// The host's Noise static keypair.
    pub noise: NoiseKeypair,
}

impl HostIdentity {
    /// Version byte of the encoding produced by [`HostIdentity::to_bytes`].
    pub const ENCODING_VERSION: u8 = 1;
    /// Length of the encoding produced by [`HostIdentity::to_bytes`].
    pub const ENCODED_LEN: usize = 1 + 32 + 32;

    /// Generates a fresh identity from OS randomness.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            iroh_secret: SecretBytes32::generate(),
            noise: NoiseKeypair::generate(),
        }
    }

    /// Encodes the identity for storage: version byte `1`, the 32-byte iroh
    /// secret, then the 32-byte Noise secret (65 bytes). The buffer is zeroized
    /// when dropped.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(Self::ENCODED_LEN));
        out.push(Self::ENCODING_VERSION);
        out.extend_from_slice(self.iroh_secret.as_bytes());
        out.extend_from_slice(self.noise.secret_bytes());
        out
    }

    /// Decodes an identity written by [`HostIdentity::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`KeyError::UnknownVersion`] if the first byte is not `1`,
    /// [`KeyError::WrongLength`] if the input is empty or not 65 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let wrong_length = KeyError::WrongLength {
            len: bytes.len(),
            expected: Self::ENCODED_LEN,
        };
        let (&version, rest) = bytes.split_first().ok_or(wrong_length)?;
        if version != Self::ENCODING_VERSION {
            return Err(KeyError::UnknownVersion(version));
        }
        if bytes.len() != Self::ENCODED_LEN {
            return Err(wrong_length);
        }
        let mut iroh = [0u8; 32];
        let mut noise = [0u8; 32];
        iroh.copy_from_slice(&rest[..32]);
        noise.copy_from_slice(&rest[32..]);
        let identity = Self {
            iroh_secret: SecretBytes32::from_bytes(iroh),
            noise: NoiseKeypair::from_secret_bytes(noise),
        };
        iroh.zeroize();
        noise.zeroize();
        Ok(identity)
    }
}

/// The one-time 32-byte pairing secret carried in the QR code and used as the
/// Noise psk.
///
/// Equality is constant-time. `Debug` prints `PairingSecret(..)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PairingSecret([u8; 32]);

impl PairingSecret {
    /// Generates a new secret from OS randomness.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        Self(os_random_32())
    }

    /// Wraps existing secret bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes (the Noise psk).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public identifier for this secret: the first 16 bytes of
    /// `BLAKE2s-256("peer/pairing-id/1" || secret)`.
    ///
    /// The initiator can send it so the host finds the matching secret without
    /// revealing the secret itself.
    #[must_use]
    pub fn pairing_id(&self) -> [u8; 16] {
        let digest = Blake2s256::new()
            .chain_update(PAIRING_ID_LABEL)
            .chain_update(self.0)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        id
    }
}

impl PartialEq for PairingSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for PairingSecret {}

impl fmt::Debug for PairingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingSecret(..)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn noise_keypair_derives_rfc7748_public_key() {
        // RFC 7748 section 6.1, Alice's key pair.
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let keypair = NoiseKeypair::from_secret_bytes(secret);
        assert_eq!(
            hex::encode(keypair.public()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(keypair.secret_bytes(), &secret);
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            NoiseKeypair::generate().public(),
            NoiseKeypair::generate().public()
        );
        assert_ne!(
            SecretBytes32::generate().as_bytes(),
            SecretBytes32::generate().as_bytes()
        );
        assert_ne!(PairingSecret::generate(), PairingSecret::generate());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let keypair = NoiseKeypair::from_secret_bytes([0xab; 32]);
        let debug = format!("{keypair:?}");
        assert!(debug.contains(&hex::encode(keypair.public())), "{debug}");
        assert!(!debug.contains("abab"), "{debug}");

        assert_eq!(
            format!("{:?}", SecretBytes32::from_bytes([0xab; 32])),
            "SecretBytes32(..)"
        );
        assert_eq!(
            format!("{:?}", PairingSecret::from_bytes([0xab; 32])),
            "PairingSecret(..)"
        );

        let identity = HostIdentity {
            iroh_secret: SecretBytes32::from_bytes([0xcd; 32]),
            noise: NoiseKeypair::from_secret_bytes([0xab; 32]),
        };
        let debug = format!("{identity:?}");
        assert!(
            !debug.contains("abab") && !debug.contains("cdcd"),
            "{debug}"
        );
        assert!(
            !debug.contains("171, 171") && !debug.contains("205, 205"),
            "{debug}"
        );
    }

    #[test]
    fn host_identity_round_trips() {
        let identity = HostIdentity::generate();
        let bytes = identity.to_bytes();
        assert_eq!(bytes.len(), HostIdentity::ENCODED_LEN);
        assert_eq!(bytes[0], 1);
        let back = HostIdentity::from_bytes(&bytes).unwrap();
        assert_eq!(back.iroh_secret.as_bytes(), identity.iroh_secret.as_bytes());
        assert_eq!(back.noise.secret_bytes(), identity.noise.secret_bytes());
        assert_eq!(back.noise.public(), identity.noise.public());
    }

    #[test]
    fn host_identity_layout_is_version_iroh_noise() {
        let identity = HostIdentity {
            iroh_secret: SecretBytes32::from_bytes([1; 32]),
            noise: NoiseKeypair::from_secret_bytes([2; 32]),
        };
        let bytes = identity.to_bytes();
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..33], &[1; 32]);
        assert_eq!(&bytes[33..], &[2; 32]);
    }

    #[test]
    fn host_identity_rejects_bad_input() {
        assert_eq!(
            HostIdentity::from_bytes(&[]).unwrap_err(),
            KeyError::WrongLength {
                len: 0,
                expected: 65
            }
        );
        assert_eq!(
            HostIdentity::from_bytes(&[1; 64]).unwrap_err(),
            KeyError::WrongLength {
                len: 64,
                expected: 65
            }
        );
        assert_eq!(
            HostIdentity::from_bytes(&[1; 66]).unwrap_err(),
            KeyError::WrongLength {
                len: 66,
                expected: 65
            }
        );
        let mut bytes = vec![2u8];
        bytes.extend_from_slice(&[0; 64]);
        assert_eq!(
            HostIdentity::from_bytes(&bytes).unwrap_err(),
            KeyError::UnknownVersion(2)
        );
        assert_eq!(
            HostIdentity::from_bytes(&[0]).unwrap_err(),
            KeyError::UnknownVersion(0)
        );
    }

    #[test]
    fn pairing_id_is_labelled_blake2s_prefix() {
        let secret = PairingSecret::from_bytes([7; 32]);
        let mut input = b"peer/pairing-id/1".to_vec();
        input.extend_from_slice(&[7; 32]);
        let digest = Blake2s256::digest(&input);
        assert_eq!(secret.pairing_id(), digest[..16]);
        assert_ne!(
            secret.pairing_id(),
            PairingSecret::from_bytes([8; 32]).pairing_id()
        );
    }

    #[test]
    fn pairing_secret_equality() {
        let a = PairingSecret::from_bytes([1; 32]);
        assert_eq!(a, a.clone());
        assert_ne!(a, PairingSecret::from_bytes([2; 32]));
    }
}
