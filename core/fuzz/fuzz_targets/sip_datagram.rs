//! Datagram classification and error responses must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_sip_transport::framing::{classify_datagram, error_response, Limits};

fuzz_target!(|data: &[u8]| {
    let _ = classify_datagram(data, Limits::default());
    let _ = error_response(data, 400, "Bad Request");
});
