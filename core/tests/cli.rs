//! The `switchboard` binary as an admin uses it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn switchboard(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("SWITCHBOARD_CONFIG")
        .env("RUST_LOG", "info");
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD__") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn check_config_reports_every_problem_and_exits_non_zero() {
    let out = Command::new(BIN)
        .args(["check-config", "tests/ui/config/bad_addresses.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: invalid configuration (tests/ui/config/bad_addresses.toml): 4 problems"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("http.https[1]"), "{stderr}");

    let out = Command::new(BIN)
        .args(["check-config", "../switchboard.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
}

#[test]
fn serve_refuses_an_invalid_config_with_the_same_messages() {
    let out = Command::new(BIN)
        .args(["--config", "tests/ui/config/unknown_keys.toml", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.hostnme: unknown key"), "{stderr}");
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_line(lines: &mut impl Iterator<Item = String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        if line.contains(needle) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?}"
        );
    }
    panic!("output ended before {needle:?}");
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn first_start_creates_a_demo_user_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (https, plain, admin) = (free_port(), free_port(), free_port());
    let config = format!(
        "[http]\nhttps = [\"127.0.0.1:{https}\"]\nplain = [\"127.0.0.1:{plain}\"]\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[sip]\nudp = []\ntcp = []\ntls = []\n"
    );
    std::fs::write(dir.path().join("switchboard.toml"), &config).unwrap();
    let mut child = switchboard(dir.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let server = Server(child);
    let mut out = stdout.lines().map_while(Result::ok);
    let demo = wait_for_line(&mut out, "created demo user");
    assert!(demo.contains("demo@example.com with password "), "{demo}");
    let mut log = stderr.lines().map_while(Result::ok);
    wait_for_line(&mut log, "switchboard is listening");
    assert!(dir.path().join("data/switchboard.db").exists());
    assert!(dir.path().join("data/tls/cert.pem").exists());
    assert!(http_get(plain, "/healthz")
        .unwrap()
        .starts_with("HTTP/1.1 200"));

    // `switchboard reload` goes through the admin API.
    let out = switchboard(dir.path()).arg("reload").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A broken config on SIGHUP is refused and logged; the server keeps serving.
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!("{config}\n[bogus]\n"),
    )
    .unwrap();
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_for_line(&mut log, "reload refused");
    assert!(http_get(plain, "/healthz")
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    // The CLI reads the same file to find the admin API, so it reports the problem itself.
    let out = switchboard(dir.path()).arg("reload").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus: unknown section"));

    // A second start does not create another demo user.
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut server = server;
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::write(dir.path().join("switchboard.toml"), &config).unwrap();
    let out = switchboard(dir.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.starts_with("demo@example.com\tactive\tDemo User"),
        "{listing}"
    );
}

#[test]
fn user_and_domain_commands() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        "[server]\ndemo_user = false\n",
    )
    .unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = switchboard(dir.path());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["user", "add", "bob@example.org"], None);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("example.org") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(
        run(&["domain", "add", "Example.ORG"], None).1,
        "added domain example.org\n"
    );
    let (code, out, _) = run(
        &["user", "add", "bob@example.org", "--display-name", "Bob"],
        None,
    );
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("added user bob@example.org with password "),
        "{out}"
    );
    let (code, out, _) = run(
        &["user", "passwd", "bob@example.org", "--password-stdin"],
        Some("n3w-pass\n"),
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "password changed for bob@example.org\n")
    );
    assert_eq!(
        run(&["user", "disable", "bob@example.org"], None).0,
        Some(0)
    );
    assert_eq!(
        run(&["user", "list"], None).1,
        "bob@example.org\tdisabled\tBob\n"
    );
    assert_eq!(run(&["user", "enable", "bob@example.org"], None).0, Some(0));
    assert_eq!(run(&["domain", "list"], None).1, "example.org\n");
    let (code, out, _) = run(&["migrate", "--status"], None);
    assert_eq!((code, out.as_str()), (Some(0), "database is up to date\n"));
    let help = run(&["user", "--help"], None).1;
    for verb in ["add", "list", "passwd", "disable", "enable"] {
        assert!(help.contains(verb), "{help}");
    }
}

#[test]
fn plugin_verify_and_inspect_manifests() {
    // The manifest is fine, but its file is an empty component: verify loads it and says so.
    let out = Command::new(BIN)
        .args(["plugin", "verify", "tests/ui/manifest/valid.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("manifest OK: imap 0.3.1, mail-connector world, SDK 0.1.0"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: plugin imap does not match its manifest: the component does not export switchboard:plugin/mailstore@0.1.0, which the mail-connector world requires"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args([
            "plugin",
            "verify",
            "tests/ui/manifest/unknown_capability.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected = std::fs::read_to_string("tests/ui/manifest/unknown_capability.stderr").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {expected}")
    );

    let out = Command::new(BIN)
        .args(["plugin", "inspect", "tests/ui/manifest/valid.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("outbound:    imap.example.com:993, *:587"),
        "{stdout}"
    );
    assert!(
        stdout.contains("setting:     port (Integer, default 993)"),
        "{stdout}"
    );
}

#[allow(dead_code)]
#[path = "support/plugins.rs"]
mod plugin_files;

#[test]
fn plugin_verify_loads_real_plugins_both_ways() {
    use plugin_files::{install, manifest_of, Build};
    let dir = tempfile::tempdir().unwrap();
    for (build, sub) in [(Build::Wasm, "wasm"), (Build::Native, "native")] {
        let manifest = install(
            &dir.path().join(sub),
            "example-eml-connector",
            build,
            &manifest_of("examples/eml-connector/plugin.toml"),
        );
        let out = Command::new(BIN)
            .args(["plugin", "verify"])
            .arg(&manifest)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{sub}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("plugin OK: loads as mail-connector"),
            "{stdout}"
        );
        if build == Build::Wasm {
            assert!(
                stdout.contains("exports: switchboard:plugin/mailstore@0.1.0"),
                "{stdout}"
            );
            assert!(
                !stdout.contains("switchboard:plugin/outbound"),
                "unused imports are dropped: {stdout}"
            );
        } else {
            assert!(stdout.contains("native ABI 1, SDK 0.1.0"), "{stdout}");
        }
    }
}

#[test]
fn plugin_new_writes_a_crate_and_plugin_list_shows_configured_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("hello");
    let out = Command::new(BIN)
        .args([
            "plugin",
            "new",
            "hello",
            "--world",
            "http-frontend",
            "--dir",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["Cargo.toml", "src/lib.rs", "plugin.toml", "README.md"] {
        assert!(target.join(f).is_file(), "{f} missing");
    }
    // Again into the same place: refused, nothing overwritten.
    let out = Command::new(BIN)
        .args([
            "plugin",
            "new",
            "hello",
            "--world",
            "http-frontend",
            "--dir",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(BIN)
        .args(["plugin", "new", "x", "--world", "gopher"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown world \"gopher\""));

    let config = dir.path().join("switchboard.toml");
    // `list` reads manifests, not plugin files: an empty file stands in for the component.
    let manifest = dir.path().join("plugin.toml");
    std::fs::copy("../examples/notes-frontend/plugin.toml", &manifest).unwrap();
    std::fs::write(dir.path().join("notes.wasm"), b"").unwrap();
    std::fs::write(
        &config,
        format!(
            "[plugins.notes]\nmanifest = {:?}\n[frontends.notes]\nplugin = \"notes\"\n",
            manifest.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&config)
        .args(["plugin", "list"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "notes          http-frontend        0.1.0     wasm     enabled   frontends notes"
        ),
        "{stdout}"
    );
}

#[test]
fn builtin_plugins_are_listed_verified_and_inspected() {
    let dir = tempfile::tempdir().unwrap();
    // No config file: the built-in local store is the default mail connector.
    let out = switchboard(dir.path())
        .args(["plugin", "list"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout
            .contains("local          mail-connector       0.1.0     builtin  enabled   domains *"),
        "{stdout}"
    );
    let out = switchboard(dir.path())
        .args(["plugin", "verify", "builtin:local"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("manifest OK: local 0.1.0, mail-connector world, SDK 0.1.0, built into this binary (native, trusted code, not sandboxed); no file to check"), "{stdout}");
    assert!(
        stdout.contains("plugin OK: loads as mail-connector"),
        "{stdout}"
    );
    let out = switchboard(dir.path())
        .args(["plugin", "inspect", "builtin:local"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("file:        builtin:local — built into this binary"),
        "{stdout}"
    );
    assert!(stdout.contains("events:      mailbox"), "{stdout}");
    let out = switchboard(dir.path())
        .args(["plugin", "verify", "builtin:nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "unknown built-in plugin \"nosuch\" (this binary has: eas, ldap, local, sip)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // The reading end is closed before the command starts, so its first line meets EPIPE
    // (as `switchboard plugin list | head -0` would).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = switchboard(dir.path())
        .args(["plugin", "list"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn mail_import_loads_files_and_reports_each_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        "[server]\ndemo_user = false\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = switchboard(dir.path()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["domain", "add", "example.org"]).0, Some(0));
    assert_eq!(run(&["user", "add", "ann@example.org"]).0, Some(0));
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(mail.join("sub")).unwrap();
    std::fs::write(
        mail.join("a.eml"),
        "From: Bob <bob@example.com>\r\nTo: ann@example.org\r\nSubject: Lunch?\r\n\r\nAt noon.\r\n",
    )
    .unwrap();
    let mut big =
        b"From: carol@example.com\r\nTo: ann@example.org\r\nSubject: Big one\r\n\r\n".to_vec();
    big.extend((0..3 * 1024 * 1024).map(|i| b'a' + (i % 26) as u8));
    std::fs::write(mail.join("sub/big.eml"), &big).unwrap();
    std::fs::write(mail.join("notes.txt"), "just some text\n").unwrap();
    std::fs::write(mail.join("empty.eml"), "").unwrap();
    std::fs::write(mail.join(".hidden"), "ignored").unwrap();

    let (code, out, err) = run(&["mail", "import", "--user", "ann@example.org", "mail"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "imported 2 of 4 messages into ann@example.org/Inbox\n");
    assert!(
        err.contains("error: mail/empty.eml: it is empty\n"),
        "{err}"
    );
    assert!(
        err.contains("error: mail/notes.txt: not a message: line 1 is not a header field (\"Name: value\")\n"),
        "{err}"
    );
    assert!(
        err.contains("error: 2 of 4 files could not be imported (see above)"),
        "{err}"
    );

    // One file, into another folder.
    let (code, out, err) = run(&[
        "mail",
        "import",
        "--user",
        "ann@example.org",
        "--folder",
        "sent items",
        "mail/a.eml",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        "imported 1 of 1 messages into ann@example.org/Sent Items\n"
    );

    // Mistakes that stop before anything is imported say what was wrong.
    let (code, _, err) = run(&["mail", "import", "--user", "nobody@example.org", "mail"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(
            "no user nobody@example.org (add it with `switchboard user add nobody@example.org`)"
        ),
        "{err}"
    );
    let (code, _, err) = run(&[
        "mail",
        "import",
        "--user",
        "ann@example.org",
        "--folder",
        "Nope",
        "mail",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("ann@example.org has no folder \"Nope\" (folders: "),
        "{err}"
    );
    let (code, _, err) = run(&["mail", "import", "--user", "ann@example.org", "missing.eml"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("missing.eml: no such file or directory"),
        "{err}"
    );
}
