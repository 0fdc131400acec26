//! The Noise message path: a responder reading an arbitrary message 1, an initiator reading an
//! arbitrary message 2, and a transport decrypting arbitrary bytes never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer_pairing::{Initiator, NoiseKeypair, Responder};

fuzz_target!(|data: &[u8]| {
    let host = NoiseKeypair::from_secret_bytes([7; 32]);
    let browser = NoiseKeypair::from_secret_bytes([9; 32]);
    let prologue = b"peer/bridge/1";
    if let Ok((resp, _)) = Responder::read_first(&host, prologue, data) {
        let _ = resp.respond(&[1; 32], b"host");
    }
    if let Ok((init, msg1)) = Initiator::start(&browser, &host.public(), &[1; 32], prologue, b"") {
        let _ = init.finish(data);
        // A genuine exchange, then garbage in transport mode.
        if let Ok((resp, _)) = Responder::read_first(&host, prologue, &msg1) {
            if let Ok((mut t, _)) = resp.respond(&[1; 32], b"") {
                let _ = t.decrypt(data);
            }
        }
    }
});
