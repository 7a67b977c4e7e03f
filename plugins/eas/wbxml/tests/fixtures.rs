//! Byte fixtures (tests/fixtures/*.hex): each decodes to the rendering in the matching
//! `.txt`, and re-encoding the decoded tree reproduces the fixture byte for byte.
//! Error fixtures (tests/fixtures/errors.txt): each input fails with exactly that message.

use std::path::{Path, PathBuf};

use switchboard_wbxml::{decode, decode_with, encode, DecodeError, Limits};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Hex with `#` comments to end of line and any whitespace.
fn parse_hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    v.sort();
    v
}

#[test]
fn hex_fixtures_decode_render_and_reencode_exactly() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let fixtures = hex_fixtures();
    assert!(fixtures.len() >= 6, "fixtures missing: {fixtures:?}");
    for path in fixtures {
        let bytes = parse_hex(&std::fs::read_to_string(&path).unwrap());
        let tree = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rendered = format!("{tree:#}\n");
        let txt = path.with_extension("txt");
        if update {
            std::fs::write(&txt, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&txt)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_FIXTURES=1)", txt.display()));
        assert_eq!(rendered, expected, "{}", path.display());
        let again = encode(&tree).unwrap();
        assert_eq!(again, bytes, "{}: re-encoding differs", path.display());
    }
}

#[test]
fn spec_example_reads_as_the_spec_xml() {
    // [MS-ASWBXML] section 3: the XML the example encodes.
    let bytes = parse_hex(
        &std::fs::read_to_string(fixtures_dir().join("ms-aswbxml-3-sync-add-contact.hex")).unwrap(),
    );
    let sync = decode(&bytes).unwrap();
    assert_eq!(sync.name(), "Sync");
    assert_eq!(sync.namespace(), "AirSync:");
    let collection = sync
        .child("Collections")
        .and_then(|c| c.child("Collection"))
        .unwrap();
    assert_eq!(collection.child_text("Class"), Some("Contacts"));
    assert_eq!(collection.child_text("SyncKey"), Some("2"));
    assert_eq!(collection.child_text("CollectionId"), Some("2"));
    assert_eq!(collection.child_text("Status"), Some("1"));
    let add = collection.child("Commands").unwrap().child("Add").unwrap();
    assert_eq!(add.child_text("ServerId"), Some("2:1"));
    let data = add.child("ApplicationData").unwrap();
    let body = data.child("Body").unwrap();
    assert_eq!(body.namespace(), "AirSyncBase:");
    assert_eq!(body.child_text("Type"), Some("1"));
    assert_eq!(body.child_text("EstimatedDataSize"), Some("0"));
    assert_eq!(body.child_text("Truncated"), Some("1"));
    assert_eq!(data.child_text("FileAs"), Some("Funk, Don"));
    assert_eq!(data.child("FileAs").unwrap().namespace(), "Contacts:");
    assert_eq!(data.child_text("FirstName"), Some("Don"));
    assert_eq!(data.child_text("LastName"), Some("Funk"));
    assert_eq!(data.child_text("NativeBodyType"), Some("1"));
    let names: Vec<_> = data.elements().map(|e| e.name()).collect();
    assert_eq!(
        names,
        ["Body", "FileAs", "FirstName", "LastName", "NativeBodyType"]
    );
}

#[test]
fn error_fixtures_give_exact_messages() {
    let text = std::fs::read_to_string(fixtures_dir().join("errors.txt")).unwrap();
    let mut n = 0;
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (input, message) = line
            .split_once("=>")
            .unwrap_or_else(|| panic!("errors.txt:{}: no =>", line_no + 1));
        let input = expand(input.trim());
        let err = decode(&input).expect_err(&format!("errors.txt:{}: decoded", line_no + 1));
        assert_eq!(
            err.to_string(),
            message.trim(),
            "errors.txt:{}",
            line_no + 1
        );
        assert!(err.offset() <= input.len(), "errors.txt:{}", line_no + 1);
        n += 1;
    }
    assert!(n >= 20, "only {n} error fixtures");
}

/// Hex, where `XX*N` repeats a byte N times.
fn expand(input: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for word in input.split_whitespace() {
        match word.split_once('*') {
            Some((b, n)) => {
                let b = u8::from_str_radix(b, 16).unwrap();
                out.extend(std::iter::repeat_n(b, n.parse().unwrap()));
            }
            None => out.push(u8::from_str_radix(word, 16).unwrap()),
        }
    }
    out
}

#[test]
fn limits_are_configurable() {
    // Sync > Collections > Collection: depth 3, 3 elements.
    let doc = [0x03, 0x01, 0x6A, 0x00, 0x45, 0x5C, 0x0F, 0x01, 0x01];
    assert!(decode(&doc).is_ok());
    let tight = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    assert_eq!(
        decode_with(&doc, &tight),
        Err(DecodeError::TooDeep {
            offset: 6,
            limit: 2
        })
    );
    let few = Limits {
        max_elements: 2,
        ..Limits::default()
    };
    assert_eq!(
        decode_with(&doc, &few).unwrap_err().to_string(),
        "element at byte 6 exceeds the limit of 2 elements"
    );
    let depth = |n: usize| {
        let mut d = vec![0x03, 0x01, 0x6A, 0x00];
        d.extend(std::iter::repeat_n(0x45, n));
        d.extend(std::iter::repeat_n(0x01, n));
        d
    };
    assert!(decode(&depth(64)).is_ok());
    assert!(matches!(
        decode(&depth(65)),
        Err(DecodeError::TooDeep {
            offset: 68,
            limit: 64
        })
    ));
    // Far deeper than a recursive decoder's stack would allow: refused at the hard cap, which
    // bounds even a caller-supplied max_depth.
    let unlimited = Limits {
        max_depth: usize::MAX,
        max_elements: usize::MAX,
    };
    assert!(decode_with(&depth(256), &unlimited).is_ok());
    assert_eq!(
        decode_with(&depth(200_000), &unlimited),
        Err(DecodeError::TooDeep {
            offset: 4 + 256,
            limit: switchboard_wbxml::MAX_DEPTH_CAP
        })
    );
}

#[test]
fn string_table_entity_and_text_merging() {
    // String table "ab\0cd\0"; Sync holds STR_T 0, ENTITY U+00A0, STR_I "x", STR_T 3.
    let doc = [
        0x03, 0x01, 0x6A, 0x06, b'a', b'b', 0, b'c', b'd', 0, 0x45, 0x83, 0x00, 0x02, 0x81, 0x20,
        0x03, b'x', 0x00, 0x83, 0x03, 0x01,
    ];
    let sync = decode(&doc).unwrap();
    assert_eq!(sync.text(), Some("ab\u{a0}xcd"));
    // Re-encoding uses one inline string and no string table.
    assert_eq!(
        encode(&sync).unwrap(),
        [
            0x03, 0x01, 0x6A, 0x00, 0x45, 0x03, b'a', b'b', 0xC2, 0xA0, b'x', b'c', b'd', 0x00,
            0x01
        ]
    );
}
