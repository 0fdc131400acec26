//! The pairing handshake end to end: success, failures, tampering, limits.

#![allow(clippy::unwrap_used)]

use peer_pairing::{
    Initiator, MAX_NOISE_MESSAGE, NoiseError, NoiseKeypair, PairingPayload, PairingSecret,
    Responder, Transport, hello_payload, pairing_prologue, parse_hello_payload, short_code,
};

/// The prologue of a pairing with a fixed host id.
fn prologue() -> Vec<u8> {
    pairing_prologue(&[0xa0; 32])
}

/// Both sides of a completed handshake plus what each received.
struct Completed {
    initiator: Transport,
    responder: Transport,
    msg1_payload: Vec<u8>,
    msg2_payload: Vec<u8>,
}

fn complete(phone: &NoiseKeypair, host: &NoiseKeypair, psk: &[u8; 32]) -> Completed {
    let (waiting, msg1) =
        Initiator::start(phone, &host.public(), psk, &prologue(), b"hello host").unwrap();
    let (awaiting_psk, msg1_payload) = Responder::read_first(host, &prologue(), &msg1).unwrap();
    assert_eq!(awaiting_psk.remote_static(), phone.public());
    let (responder, msg2) = awaiting_psk.respond(psk, b"hello phone").unwrap();
    let (initiator, msg2_payload) = waiting.finish(&msg2).unwrap();
    Completed {
        initiator,
        responder,
        msg1_payload,
        msg2_payload,
    }
}

#[test]
fn handshake_and_transport_round_trip_both_ways() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let psk = PairingSecret::generate();
    let Completed {
        mut initiator,
        mut responder,
        msg1_payload,
        msg2_payload,
    } = complete(&phone, &host, psk.as_bytes());
    assert_eq!(msg1_payload, b"hello host");
    assert_eq!(msg2_payload, b"hello phone");

    assert_eq!(initiator.handshake_hash(), responder.handshake_hash());
    assert_eq!(
        short_code(&initiator.handshake_hash()),
        short_code(&responder.handshake_hash())
    );
    assert_eq!(initiator.remote_static(), host.public());
    assert_eq!(responder.remote_static(), phone.public());

    for round in 0u8..5 {
        let message = vec![round; usize::from(round) * 100];
        let ciphertext = initiator.encrypt(&message).unwrap();
        assert_eq!(ciphertext.len(), message.len() + 16);
        if !message.is_empty() {
            assert_ne!(ciphertext[..message.len()], message[..]);
        }
        assert_eq!(responder.decrypt(&ciphertext).unwrap(), message);

        let reply = vec![round ^ 0xff; 3];
        let ciphertext = responder.encrypt(&reply).unwrap();
        assert_eq!(initiator.decrypt(&ciphertext).unwrap(), reply);
    }
}

#[test]
fn every_handshake_is_different() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let psk = [7; 32];
    let first = complete(&phone, &host, &psk);
    let second = complete(&phone, &host, &psk);
    assert_ne!(
        first.initiator.handshake_hash(),
        second.initiator.handshake_hash()
    );
}

#[test]
fn pairing_flow_through_the_qr_payload() {
    // Host side: identity, one-time secret, QR link.
    let host = NoiseKeypair::generate();
    let secret = PairingSecret::generate();
    let payload = PairingPayload {
        host_id: [5; 32],
        host_noise_key: host.public(),
        secret: secret.clone(),
        expires_at: 1_000_600,
        relay_urls: vec!["https://relay.example.com".into()],
        direct_addrs: vec![],
        host_name: Some("studio".into()),
        relay_cert_sha256: None,
        relay_token: None,
    };
    let url = payload.to_url("https://peer.dev/pair").unwrap();

    // Phone side: scan, check, start with the pairing id as message 1 payload.
    let scanned = PairingPayload::from_url(&url).unwrap();
    scanned.check_fresh(1_000_000).unwrap();
    let phone = NoiseKeypair::generate();
    let (waiting, msg1) = Initiator::start(
        &phone,
        &scanned.host_noise_key,
        scanned.secret.as_bytes(),
        &pairing_prologue(&scanned.host_id),
        &hello_payload(&scanned.secret.pairing_id()),
    )
    .unwrap();

    // Host side: find the secret by pairing id, answer with the host name.
    let (awaiting_psk, hello) =
        Responder::read_first(&host, &pairing_prologue(&payload.host_id), &msg1).unwrap();
    assert_eq!(parse_hello_payload(&hello), Some(secret.pairing_id()));
    let (mut host_transport, msg2) = awaiting_psk.respond(secret.as_bytes(), b"studio").unwrap();

    // Phone side: finish and confirm with a first transport message.
    let (mut phone_transport, host_name) = waiting.finish(&msg2).unwrap();
    assert_eq!(host_name, b"studio");
    let confirm = phone_transport.encrypt(b"confirm").unwrap();
    assert_eq!(host_transport.decrypt(&confirm).unwrap(), b"confirm");
    assert_eq!(
        short_code(&phone_transport.handshake_hash()),
        short_code(&host_transport.handshake_hash())
    );
}

#[test]
fn wrong_psk_fails_at_initiator_finish() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let (waiting, msg1) =
        Initiator::start(&phone, &host.public(), &[1; 32], &prologue(), b"").unwrap();
    let (awaiting_psk, _) = Responder::read_first(&host, &prologue(), &msg1).unwrap();
    // The responder cannot notice the mismatch: respond succeeds.
    let (_, msg2) = awaiting_psk.respond(&[2; 32], b"").unwrap();
    assert_eq!(waiting.finish(&msg2).unwrap_err(), NoiseError::Decrypt);
}

#[test]
fn wrong_responder_static_key_fails_at_read_first() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let other_host = NoiseKeypair::generate();
    let (_, msg1) =
        Initiator::start(&phone, &other_host.public(), &[1; 32], &prologue(), b"x").unwrap();
    assert_eq!(
        Responder::read_first(&host, &prologue(), &msg1).unwrap_err(),
        NoiseError::Decrypt
    );
}

#[test]
fn prologue_mismatch_fails() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let (_, msg1) =
        Initiator::start(&phone, &host.public(), &[1; 32], b"peer/noise/1", b"").unwrap();
    assert_eq!(
        Responder::read_first(&host, b"peer/noise/2", &msg1).unwrap_err(),
        NoiseError::Decrypt
    );
}

#[test]
fn other_host_id_in_prologue_fails() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let (_, msg1) = Initiator::start(
        &phone,
        &host.public(),
        &[1; 32],
        &pairing_prologue(&[1; 32]),
        &hello_payload(&[9; 16]),
    )
    .unwrap();
    assert_eq!(
        Responder::read_first(&host, &pairing_prologue(&[2; 32]), &msg1).unwrap_err(),
        NoiseError::Decrypt
    );
}

#[test]
fn tampered_msg1_fails() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let (_, msg1) =
        Initiator::start(&phone, &host.public(), &[1; 32], &prologue(), b"payload").unwrap();
    for index in 0..msg1.len() {
        for bit in [0, 7] {
            let mut tampered = msg1.clone();
            tampered[index] ^= 1 << bit;
            let error = Responder::read_first(&host, &prologue(), &tampered).unwrap_err();
            assert!(
                matches!(error, NoiseError::Decrypt | NoiseError::Malformed),
                "{index}/{bit}: {error:?}"
            );
        }
    }
}

#[test]
fn tampered_msg2_fails() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let psk = [3; 32];
    // A message 2 from an unrelated handshake, for the last check.
    let (_, msg1) = Initiator::start(&phone, &host.public(), &psk, &prologue(), b"").unwrap();
    let (awaiting_psk, _) = Responder::read_first(&host, &prologue(), &msg1).unwrap();
    let (_, msg2) = awaiting_psk.respond(&psk, b"payload").unwrap();
    // Each attempt needs a fresh initiator state, so replay message 1 with a fixed
    // ephemeral to get identical states.
    let start = || {
        Initiator::start_with_ephemeral_for_testing(
            &phone,
            &host.public(),
            &psk,
            &prologue(),
            &[0x42; 32],
            b"",
        )
        .unwrap()
    };
    let (_, msg1) = start();
    let (awaiting_psk, _) = Responder::read_first(&host, &prologue(), &msg1).unwrap();
    let (_, msg2_fixed) = awaiting_psk.respond(&psk, b"payload").unwrap();
    assert_eq!(msg2.len(), msg2_fixed.len());
    for index in 0..msg2_fixed.len() {
        for bit in [0, 7] {
            let mut tampered = msg2_fixed.clone();
            tampered[index] ^= 1 << bit;
            let (waiting, _) = start();
            let error = waiting.finish(&tampered).unwrap_err();
            assert!(
                matches!(error, NoiseError::Decrypt | NoiseError::Malformed),
                "{index}/{bit}: {error:?}"
            );
        }
    }
    let (waiting, _) = start();
    assert!(waiting.finish(&msg2_fixed).is_ok());
    // A message 2 from another handshake fails too.
    let (waiting, _) = start();
    assert_eq!(waiting.finish(&msg2).unwrap_err(), NoiseError::Decrypt);
}

#[test]
fn truncated_empty_and_oversized_handshake_messages_fail() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let psk = [4; 32];
    let (_, msg1) = Initiator::start(&phone, &host.public(), &psk, &prologue(), b"abc").unwrap();
    for len in 0..msg1.len() {
        let error = Responder::read_first(&host, &prologue(), &msg1[..len]).unwrap_err();
        assert!(
            matches!(error, NoiseError::Decrypt | NoiseError::Malformed),
            "{len}: {error:?}"
        );
    }
    assert_eq!(
        Responder::read_first(&host, &prologue(), &[]).unwrap_err(),
        NoiseError::Malformed
    );
    assert_eq!(
        Responder::read_first(&host, &prologue(), &vec![1; MAX_NOISE_MESSAGE + 1]).unwrap_err(),
        NoiseError::TooLarge
    );

    let (awaiting_psk, _) = Responder::read_first(&host, &prologue(), &msg1).unwrap();
    let (_, msg2) = awaiting_psk.respond(&psk, b"abc").unwrap();
    for len in 0..msg2.len() {
        let (waiting, _) =
            Initiator::start(&phone, &host.public(), &psk, &prologue(), b"").unwrap();
        let error = waiting.finish(&msg2[..len]).unwrap_err();
        assert!(
            matches!(error, NoiseError::Decrypt | NoiseError::Malformed),
            "{len}: {error:?}"
        );
    }
    let (waiting, _) = Initiator::start(&phone, &host.public(), &psk, &prologue(), b"").unwrap();
    assert_eq!(
        waiting.finish(&vec![1; MAX_NOISE_MESSAGE + 1]).unwrap_err(),
        NoiseError::TooLarge
    );
}

#[test]
fn low_order_keys_are_rejected() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    assert_eq!(
        Initiator::start(&phone, &[0; 32], &[1; 32], &prologue(), b"").unwrap_err(),
        NoiseError::Malformed
    );
    // Message 1 whose ephemeral is the identity point.
    let (_, mut msg1) =
        Initiator::start(&phone, &host.public(), &[1; 32], &prologue(), b"").unwrap();
    msg1[..32].copy_from_slice(&[0; 32]);
    assert_eq!(
        Responder::read_first(&host, &prologue(), &msg1).unwrap_err(),
        NoiseError::Malformed
    );
}

#[test]
fn handshake_payload_size_limits() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let psk = [5; 32];
    let max1 = MAX_NOISE_MESSAGE - 96;
    assert_eq!(
        Initiator::start(&phone, &host.public(), &psk, b"", &vec![0; max1 + 1]).unwrap_err(),
        NoiseError::TooLarge
    );
    let (waiting, msg1) =
        Initiator::start(&phone, &host.public(), &psk, b"", &vec![0; max1]).unwrap();
    assert_eq!(msg1.len(), MAX_NOISE_MESSAGE);
    let (awaiting_psk, payload) = Responder::read_first(&host, b"", &msg1).unwrap();
    assert_eq!(payload.len(), max1);

    let max2 = MAX_NOISE_MESSAGE - 48;
    let (_, msg1_again) = Initiator::start(&phone, &host.public(), &psk, b"", b"").unwrap();
    let (other, _) = Responder::read_first(&host, b"", &msg1_again).unwrap();
    assert_eq!(
        other.respond(&psk, &vec![0; max2 + 1]).unwrap_err(),
        NoiseError::TooLarge
    );
    let (_, msg2) = awaiting_psk.respond(&psk, &vec![0; max2]).unwrap();
    assert_eq!(msg2.len(), MAX_NOISE_MESSAGE);
    let (_, payload) = waiting.finish(&msg2).unwrap();
    assert_eq!(payload.len(), max2);
}

#[test]
fn transport_rejects_tampering_replay_reordering_and_bad_sizes() {
    let phone = NoiseKeypair::generate();
    let host = NoiseKeypair::generate();
    let Completed {
        mut initiator,
        mut responder,
        ..
    } = complete(&phone, &host, &[6; 32]);

    let first = initiator.encrypt(b"first").unwrap();
    let second = initiator.encrypt(b"second").unwrap();

    // Reordered: the second message cannot be read first.
    assert_eq!(responder.decrypt(&second).unwrap_err(), NoiseError::Decrypt);
    // Tampered.
    let mut tampered = first.clone();
    tampered[0] ^= 1;
    assert_eq!(
        responder.decrypt(&tampered).unwrap_err(),
        NoiseError::Decrypt
    );
    // A failed decryption does not advance the counter.
    assert_eq!(responder.decrypt(&first).unwrap(), b"first");
    // Replayed.
    assert_eq!(responder.decrypt(&first).unwrap_err(), NoiseError::Decrypt);
    assert_eq!(responder.decrypt(&second).unwrap(), b"second");
    // A message cannot be reflected back to its sender.
    let third = initiator.encrypt(b"third").unwrap();
    assert_eq!(initiator.decrypt(&third).unwrap_err(), NoiseError::Decrypt);

    // Sizes.
    assert_eq!(responder.decrypt(&[]).unwrap_err(), NoiseError::Malformed);
    assert_eq!(
        responder.decrypt(&[0; 15]).unwrap_err(),
        NoiseError::Malformed
    );
    assert_eq!(
        responder
            .decrypt(&vec![0; MAX_NOISE_MESSAGE + 1])
            .unwrap_err(),
        NoiseError::TooLarge
    );
    assert_eq!(
        initiator
            .encrypt(&vec![0; MAX_NOISE_MESSAGE - 15])
            .unwrap_err(),
        NoiseError::TooLarge
    );
    assert_eq!(responder.decrypt(&third).unwrap(), b"third");
    let largest = vec![0xaa; MAX_NOISE_MESSAGE - 16];
    let ciphertext = initiator.encrypt(&largest).unwrap();
    assert_eq!(ciphertext.len(), MAX_NOISE_MESSAGE);
    assert_eq!(responder.decrypt(&ciphertext).unwrap(), largest);
    let empty = responder.encrypt(b"").unwrap();
    assert_eq!(empty.len(), 16);
    assert_eq!(initiator.decrypt(&empty).unwrap(), b"");
}

#[test]
fn debug_output_does_not_leak_secrets() {
    let phone = NoiseKeypair::from_secret_bytes([0x61; 32]);
    let host = NoiseKeypair::from_secret_bytes([0x62; 32]);
    let psk = [0x63; 32];
    let (waiting, msg1) = Initiator::start(&phone, &host.public(), &psk, &prologue(), b"").unwrap();
    let (awaiting_psk, _) = Responder::read_first(&host, &prologue(), &msg1).unwrap();
    let outputs = [
        format!("{phone:?}"),
        format!("{waiting:?}"),
        format!("{awaiting_psk:?}"),
    ];
    let (transport, _) = awaiting_psk.respond(&psk, b"").unwrap();
    for debug in outputs.iter().chain([&format!("{transport:?}")]) {
        for secret in ["6161", "6262", "6363", "97, 97", "98, 98", "99, 99"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
