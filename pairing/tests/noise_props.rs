//! Property tests: the handshake and transport never panic on arbitrary input.

#![allow(clippy::unwrap_used)]

use peer_pairing::{Initiator, NoiseKeypair, Responder, pairing_prologue};
use proptest::prelude::*;

fn prologue() -> Vec<u8> {
    pairing_prologue(&[0xa0; 32])
}

fn host() -> NoiseKeypair {
    NoiseKeypair::from_secret_bytes([0x50; 32])
}

fn phone() -> NoiseKeypair {
    NoiseKeypair::from_secret_bytes([0x10; 32])
}

proptest! {
    #[test]
    fn read_first_never_panics(msg1 in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Responder::read_first(&host(), &prologue(), &msg1);
    }
}

// Every case below runs a full X25519 handshake, which is slow in debug builds.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn read_first_rejects_mutated_messages(
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (_, mut msg1) =
            Initiator::start(&phone(), &host().public(), &[1; 32], &prologue(), &payload)
                .unwrap();
        let index = index.index(msg1.len());
        msg1[index] ^= flip;
        prop_assert!(Responder::read_first(&host(), &prologue(), &msg1).is_err());
    }

    #[test]
    fn finish_never_panics(msg2 in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let (waiting, _) =
            Initiator::start(&phone(), &host().public(), &[1; 32], &prologue(), b"").unwrap();
        prop_assert!(waiting.finish(&msg2).is_err());
    }

    #[test]
    fn transport_decrypt_never_panics(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..5),
    ) {
        let psk = [2; 32];
        let (waiting, msg1) =
            Initiator::start(&phone(), &host().public(), &psk, &prologue(), b"").unwrap();
        let (awaiting_psk, _) = Responder::read_first(&host(), &prologue(), &msg1).unwrap();
        let (mut responder, msg2) = awaiting_psk.respond(&psk, b"").unwrap();
        let (mut initiator, _) = waiting.finish(&msg2).unwrap();
        for message in &messages {
            prop_assert!(responder.decrypt(message).is_err());
            prop_assert!(initiator.decrypt(message).is_err());
        }
        // The sessions still work afterwards.
        let ciphertext = initiator.encrypt(b"ok").unwrap();
        prop_assert_eq!(responder.decrypt(&ciphertext).unwrap(), b"ok");
    }
}
