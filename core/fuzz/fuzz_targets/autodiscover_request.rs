//! The Autodiscover XML request parser must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switchboard_core::frontends::autodiscover::parse_request(data);
});
