//! Builds the ActiveSync plugin (`plugins/eas`) as a WebAssembly component and hands its path
//! to the crate (`SWITCHBOARD_EAS_WASM`), which embeds it as the built-in `builtin:eas`
//! (see `src/plugins/embedded.rs`). The plugin parses untrusted bytes from phones, so it is
//! embedded as a sandboxed component rather than linked natively.
//!
//! The nested `cargo build` uses its own target directory (`$CARGO_TARGET_DIR/embedded-wasm`,
//! or `target/embedded-wasm` beside this build's output) so it never waits on the lock of the
//! build that runs this script, and debug and release builds of the core share one wasm build.
//! It is incremental: after the first build, a rerun with no change to the plugin takes about
//! a second.
//!
//! `SWITCHBOARD_EAS_WASM=/path/to/eas.wasm` skips the nested build and embeds that file
//! (packaging, or machines without the `wasm32-wasip2` target).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("core/ has a parent")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    println!("cargo:rerun-if-env-changed=SWITCHBOARD_EAS_WASM");
    if let Some(prebuilt) = env::var_os("SWITCHBOARD_EAS_WASM").filter(|v| !v.is_empty()) {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        install(&prebuilt, &out_dir);
        return;
    }

    for path in [
        "plugins/eas/src",
        "plugins/eas/Cargo.toml",
        "plugins/eas/plugin.toml",
        "plugins/eas/wbxml/src",
        "plugins/eas/wbxml/Cargo.toml",
        "sdk/rust/src",
        "sdk/rust/Cargo.toml",
        "sdk/wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }

    ensure_target();
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(|d| PathBuf::from(d).join("embedded-wasm"))
        .unwrap_or_else(|| {
            // OUT_DIR is {target}/{profile}/build/{pkg}-{hash}/out.
            out_dir
                .ancestors()
                .nth(4)
                .unwrap_or(&out_dir)
                .join("embedded-wasm")
        });
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "switchboard-eas",
            "--lib",
            "--release",
        ])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // No debug info in the embedded component: smaller binary, faster first compile.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    // Settings meant for the outer (host) build must not leak into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("switchboard-core build: could not run cargo to build the ActiveSync plugin: {e}")
    });
    if !status.success() {
        panic!(
            "switchboard-core build: building the ActiveSync plugin (switchboard-eas) for \
             {TARGET} failed (see the errors above). Set SWITCHBOARD_EAS_WASM=/path/to/eas.wasm \
             to embed a prebuilt component instead."
        );
    }
    let built = target_dir.join(format!("{TARGET}/release/switchboard_eas.wasm"));
    install(&built, &out_dir);
}

/// Copy the component to `$OUT_DIR/eas.wasm` (what `include_bytes!` reads).
fn install(from: &Path, out_dir: &Path) {
    let to = out_dir.join("eas.wasm");
    std::fs::copy(from, &to).unwrap_or_else(|e| {
        panic!(
            "switchboard-core build: copying the ActiveSync component {} to {}: {e}",
            from.display(),
            to.display()
        )
    });
}

/// Install the `wasm32-wasip2` target with rustup when it is missing (as the plugin tests
/// do); without rustup, leave it to cargo to report what is missing.
fn ensure_target() {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return;
    };
    let installed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == TARGET);
    if installed {
        return;
    }
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        panic!(
            "switchboard-core build: the ActiveSync plugin is embedded as a WebAssembly \
             component and needs the {TARGET} target, which could not be added. Run \
             `rustup target add {TARGET}`, or set SWITCHBOARD_EAS_WASM=/path/to/eas.wasm \
             to embed a prebuilt component."
        );
    }
}
