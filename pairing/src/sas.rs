//! The short authentication string shown on both screens after the handshake.
//!
//! `short_code(h)`:
//!
//! 1. `d = BLAKE2s-256("peer/sas/1" || h)` where `h` is the 32-byte Noise handshake
//!    hash and the label is the 10 ASCII bytes `peer/sas/1`;
//! 2. `n = u32::from_be_bytes(d[0..4]) % 1_000_000`;
//! 3. format `n` as six decimal digits, zero padded, with a space after the third:
//!    `"042 917"`.
//!
//! The user compares the two codes. They match only if both sides completed the
//! same handshake, so a mismatch reveals a man in the middle (for example someone
//! who copied the QR code).

use blake2::{Blake2s256, Digest};

/// Domain separation label of the short code.
const SAS_LABEL: &[u8] = b"peer/sas/1";

/// The six-digit code for a handshake hash, formatted as `"123 456"`.
#[must_use]
pub fn short_code(handshake_hash: &[u8; 32]) -> String {
    let digest = Blake2s256::new()
        .chain_update(SAS_LABEL)
        .chain_update(handshake_hash)
        .finalize();
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn format_is_two_groups_of_three_digits() {
        for seed in 0u8..=255 {
            let code = short_code(&[seed; 32]);
            assert_eq!(code.len(), 7, "{code}");
            assert_eq!(code.as_bytes()[3], b' ', "{code}");
            assert!(
                code.chars()
                    .filter(|c| *c != ' ')
                    .all(|c| c.is_ascii_digit())
            );
        }
    }

    #[test]
    fn matches_the_definition() {
        let hash = [0x42; 32];
        let mut input = b"peer/sas/1".to_vec();
        input.extend_from_slice(&hash);
        let digest = Blake2s256::digest(&input);
        let n = u32::from_be_bytes(digest[..4].try_into().unwrap()) % 1_000_000;
        assert_eq!(short_code(&hash).replace(' ', ""), format!("{n:06}"));
    }

    #[test]
    fn zero_pads_small_values() {
        // Find a hash whose code starts with a zero to check the padding.
        let hash = (0u8..=255)
            .map(|seed| [seed; 32])
            .find(|hash| short_code(hash).starts_with('0'))
            .expect("one of 256 codes starts with 0");
        let code = short_code(&hash);
        assert!(code.starts_with('0') && code.len() == 7, "{code}");
    }

    #[test]
    fn differs_for_different_hashes() {
        assert_ne!(short_code(&[0; 32]), short_code(&[1; 32]));
    }
}
