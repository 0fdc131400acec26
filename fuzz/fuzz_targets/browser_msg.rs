//! The browser channel codec, both directions: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer::proto::browser::{self, BrowserToHost, HostToBrowser, KIND_INPUT, KIND_OUTPUT};

fuzz_target!(|data: &[u8]| {
    if let Ok(browser::BrowserMsg::Control(m)) = browser::decode::<BrowserToHost>(data, KIND_INPUT) {
        let again = browser::encode_control(&m);
        assert_eq!(
            browser::decode::<BrowserToHost>(&again, KIND_INPUT),
            Ok(browser::BrowserMsg::Control(m))
        );
    }
    let _ = browser::decode::<HostToBrowser>(data, KIND_OUTPUT);
});
