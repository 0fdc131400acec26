//! The browser envelope (channel + frame): never panics, and an envelope that decodes
//! re-encodes to one that decodes to the same channel and frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer_proto::browser;

fuzz_target!(|data: &[u8]| {
    if let Ok((channel, Ok(frame))) = browser::decode(data) {
        let again = browser::encode(channel, &frame);
        assert_eq!(browser::decode(&again), Ok((channel, Ok(frame))));
    }
});
