//! The session frame decoder: never panics, and a decoded frame re-encodes to a frame that
//! decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer_proto::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let enc = frame.encode();
        assert_eq!(Frame::decode(&enc[4..]).as_ref(), Ok(&frame));
    }
});
