//! Authorization header parsers must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = switchboard_auth::basic::parse_basic(s);
        let _ = switchboard_auth::digest::parse_authorization(s);
    }
});
