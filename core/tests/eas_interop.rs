//! ActiveSync end to end with a real third-party client: pyactivesync (PyPI, EAS 16.1) against
//! the server as shipped — the embedded `builtin:eas` WebAssembly component over the built-in
//! local store — over HTTPS. Each test starts a server, imports real `.eml` files with
//! `switchboard mail import`, and runs one scenario of `tests/eas/interop.py`, which asserts
//! the outcomes (subjects, bodies, attachment bytes) and drives `switchboard device …`.
//!
//! The client lives in a virtualenv: `SWITCHBOARD_EAS_VENV`, default
//! `$HOME/.cache/switchboard-venv` (`.ci/run` creates it:
//! `python3 -m venv DIR && DIR/bin/pip install pyactivesync==0.17.0`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{start_server, PASSWORD, USER};

const BOB: &str = "bob@example.com";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("SWITCHBOARD_EAS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/switchboard-venv")
        });
    let python = venv.join("bin/python");
    let ok = python.is_file()
        && Command::new(&python)
            .args(["-c", "import pyactivesync"])
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the EAS interop tests need pyactivesync in a virtualenv at {} (or set SWITCHBOARD_EAS_VENV): \
         python3 -m venv {0} && {0}/bin/pip install pyactivesync==0.17.0  (.ci/run does this)",
        venv.display()
    );
    python
}

/// The compiled component is cached per data directory; the tests share one cache directory
/// so the embedded component is compiled once, not once per test process.
fn shared_compile_cache() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = base.join("tmp/eas-interop-plugin-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eas")
}

/// Start a server with ActiveSync as shipped (provisioning required, the defaults), users
/// alice and bob, and the fixture mail in Alice's Inbox; run `scenario`.
async fn run(scenario: &str) {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(shared_compile_cache(), data.join("plugin-cache")).unwrap();
    let config_path = dir.path().join("switchboard.toml");
    // Only the default ActiveSync entries: the same as a file that does not mention them.
    let extra = "[frontends.eas]\nenabled = true\n[plugins.eas]\nmanifest = \"builtin:eas\"\n";
    let running = start_server(&config_path, &data, extra)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let storage = &running.shared.storage;
    storage
        .add_user(BOB, PASSWORD, Some("Bob Builder"))
        .await
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let mail = fixtures().join("mail");
    let import = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .args(["mail", "import", "--user", USER])
        .arg(&mail)
        .output()
        .await
        .unwrap();
    assert!(
        import.status.success(),
        "mail import failed: {}{}",
        String::from_utf8_lossy(&import.stdout),
        String::from_utf8_lossy(&import.stderr)
    );

    let out = tokio::process::Command::new(&python)
        .arg(fixtures().join("interop.py"))
        .arg(scenario)
        .env(
            "SB_SERVER",
            format!("localhost:{}", running.addrs.https[0].port()),
        )
        // Trust exactly the server's generated certificate (issued for `localhost`).
        .env("REQUESTS_CA_BUNDLE", data.join("tls/cert.pem"))
        .env_remove("CURL_CA_BUNDLE")
        .env("SB_PASSWORD", PASSWORD)
        .env("SB_SWITCHBOARD", bin)
        .env("SB_CONFIG", &config_path)
        .env("SB_MAIL", &mail)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), out)
        .await
        .expect("the scenario finished within 10 minutes")
        .unwrap();
    running.shutdown().await;
    assert!(
        out.status.success(),
        "scenario {scenario} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run(stringify!($name)).await;
        }
    )*};
}

scenarios!(
    provision_and_folders,
    mail_sync,
    incremental_sync,
    send_mail,
    ping_wakeup,
    attachments,
    move_items,
    search,
    contacts,
    device_admin,
);
