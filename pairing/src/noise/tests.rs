//! Unit tests of the Noise wrapper internals: sizes and low-order keys.

use super::*;
use crate::keys::NoiseKeypair;

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

#[test]
fn pattern_parses() {
    assert!(noise_params().is_ok());
}

#[test]
fn low_order_points_are_detected() {
    // The points of order 1, 2, 4 and 8 (and non-canonical encodings of them).
    let low_order = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    for point in low_order {
        assert!(is_low_order(&hex32(point)), "{point}");
    }
    assert!(!is_low_order(
        &NoiseKeypair::from_secret_bytes([1; 32]).public()
    ));
    assert!(!is_low_order(&NoiseKeypair::generate().public()));
}

#[test]
fn message_overheads_match_snow() {
    let host = NoiseKeypair::generate();
    let phone = NoiseKeypair::generate();
    let psk = [9; 32];
    let (waiting, msg1) = Initiator::start(&phone, &host.public(), &psk, b"", &[1, 2, 3]).unwrap();
    assert_eq!(msg1.len(), MSG1_OVERHEAD + 3);
    let (responder, payload) = Responder::read_first(&host, b"", &msg1).unwrap();
    assert_eq!(payload, [1, 2, 3]);
    let (_, msg2) = responder.respond(&psk, &[4; 5]).unwrap();
    assert_eq!(msg2.len(), MSG2_OVERHEAD + 5);
    let (mut transport, payload) = waiting.finish(&msg2).unwrap();
    assert_eq!(payload, [4; 5]);
    assert_eq!(transport.encrypt(&[0; 7]).unwrap().len(), 7 + TAG_LEN);
}

#[test]
fn errors_are_plain_variants_with_messages() {
    for (error, name) in [
        (NoiseError::Decrypt, "Decrypt"),
        (NoiseError::Malformed, "Malformed"),
        (NoiseError::TooLarge, "TooLarge"),
        (NoiseError::Internal, "Internal"),
    ] {
        assert_eq!(format!("{error:?}"), name);
        assert!(error.to_string().len() > 10);
    }
}
