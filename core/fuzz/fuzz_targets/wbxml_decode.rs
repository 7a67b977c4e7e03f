//! The WBXML decoder must never panic, and whatever it accepts must survive a round trip:
//! re-encoding the tree and decoding again gives the same tree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_wbxml::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = decode(data) {
        let bytes = encode(&tree).expect("a decoded tree always encodes");
        assert_eq!(decode(&bytes).as_ref(), Ok(&tree));
        let _ = tree.to_string();
    }
});
