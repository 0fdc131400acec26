//! The QR pairing payload decoder: binary and URL forms must never panic, and whatever decodes
//! must encode back to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer_pairing::PairingPayload;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = PairingPayload::decode(data) {
        let again = p.encode().expect("a decoded payload encodes");
        let back = PairingPayload::decode(&again).expect("its encoding decodes");
        assert_eq!(back.encode().expect("encodes"), again);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PairingPayload::from_url(text);
    }
});
