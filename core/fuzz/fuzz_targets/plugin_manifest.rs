//! The plugin manifest parser must never panic, whatever a plugin bundle ships as plugin.toml.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchboard_core::plugins::manifest::parse_manifest(text, std::path::Path::new("/nonexistent"));
    }
});
