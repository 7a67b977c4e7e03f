//! The stream framer must never panic, whatever the bytes and however they are split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_sip_transport::framing::{Limits, StreamFramer};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let chunk = usize::from(split).max(1);
    let mut framer = StreamFramer::new(Limits { max_message_bytes: 4096, max_header_bytes: 1024 });
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
