//! Decoding what a native plugin sends the host (and what the host sends back) must never
//! panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_sdk::abi::{decode, HostCall, PluginCall};
use switchboard_sdk::http::Outcome;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<HostCall>(data);
    let _ = decode::<PluginCall>(data);
    let _ = decode::<Outcome>(data);
});
