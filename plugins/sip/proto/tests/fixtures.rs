//! Fixture-driven tests: every `*.sip` under `tests/fixtures/{rfc4475,messages,errors}` is
//! parsed, validated and every typed accessor is run; the outcome (`ok`, or the exact error
//! text) must equal the sibling `*.err` file (absent = must be `ok`). Fixture files are stored
//! with LF line ends and converted to CRLF on load (see tests/fixtures/README.md).
//!
//! `BLESS=1 cargo test -p switchboard-sip-proto --test fixtures` rewrites the `.err` files.

use std::fs;
use std::path::{Path, PathBuf};

use switchboard_sip_proto::{Error, Message};

fn fixture_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

/// Load a fixture: LF → CRLF.
pub fn load(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap();
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &b in &raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Every check a server would make, in order; the first error wins.
fn check(msg: &Message<'_>) -> Result<(), Error> {
    if msg.is_request() {
        msg.validate_request()?;
    } else {
        msg.validate_response()?;
    }
    msg.contacts()?;
    msg.expires()?;
    msg.content_type()?;
    msg.event()?;
    msg.subscription_state()?;
    msg.sip_etag()?;
    msg.sip_if_match()?;
    msg.route()?;
    msg.record_route()?;
    msg.path()?;
    msg.supported()?;
    msg.require()?;
    msg.allow()?;
    msg.accept()?;
    Ok(())
}

fn outcome(bytes: &[u8]) -> String {
    match Message::parse(bytes) {
        Err(e) => format!("parse: {e}"),
        Ok(m) => match check(&m) {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("check: {e}"),
        },
    }
}

/// Serialize → parse gives the same model (Content-Length is added when absent), and
/// serializing is idempotent.
fn assert_round_trip(name: &str, bytes: &[u8]) {
    let Ok(m) = Message::parse(bytes) else { return };
    let out = m.to_bytes();
    let again = Message::parse(&out).unwrap_or_else(|e| panic!("{name}: re-parse failed: {e}"));
    fn strip<'m>(m: &Message<'m>) -> Message<'m> {
        let mut m = m.clone();
        m.remove_headers("Content-Length");
        m
    }
    assert_eq!(strip(&m), strip(&again), "{name}: model changed");
    assert_eq!(again.to_bytes(), out, "{name}: serializer not idempotent");
}

fn run_dir(sub: &str, must_fail: Option<bool>) {
    let bless = std::env::var_os("BLESS").is_some();
    let mut paths: Vec<_> = fs::read_dir(fixture_dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    let mut failures = Vec::new();
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = load(&path);
        let got = outcome(&bytes);
        let err_path = path.with_extension("err");
        if bless {
            if got == "ok" {
                let _ = fs::remove_file(&err_path);
            } else {
                fs::write(&err_path, format!("{got}\n")).unwrap();
            }
        }
        let want = fs::read_to_string(&err_path)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_else(|_| "ok".to_owned());
        if got != want {
            failures.push(format!("{sub}/{name}: got {got:?}, want {want:?}"));
        }
        match must_fail {
            Some(true) if got == "ok" => failures.push(format!("{sub}/{name}: should fail")),
            Some(false) if got != "ok" => failures.push(format!("{sub}/{name}: should pass")),
            _ => {}
        }
        assert_round_trip(&name, &bytes);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rfc4475_torture_messages() {
    run_dir("rfc4475", None);
}

#[test]
fn rfc_example_messages_are_valid() {
    run_dir("messages", Some(false));
}

#[test]
fn error_messages() {
    run_dir("errors", Some(true));
}
