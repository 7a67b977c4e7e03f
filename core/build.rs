//! Builds the plugins the binary embeds as sandboxed WebAssembly components — ActiveSync
//! (`plugins/eas`, `builtin:eas`) and SIP IM/presence (`plugins/sip`, `builtin:sip`) — and
//! copies each to `$OUT_DIR/NAME.wasm`, which `src/plugins/embedded.rs` includes. Both parse
//! untrusted bytes from the internet, so they ship as components rather than linked natively.
//!
//! The nested `cargo build` uses its own target directory (`$CARGO_TARGET_DIR/embedded-wasm`,
//! or `target/embedded-wasm` beside this build's output) so it never waits on the lock of the
//! build that runs this script, and debug and release builds of the core share one wasm build.
//! It is incremental: after the first build, a rerun with no change to the plugins takes about
//! a second.
//!
//! `SWITCHBOARD_EAS_WASM=/path/to/eas.wasm` / `SWITCHBOARD_SIP_WASM=/path/to/sip.wasm` skip
//! the nested build of that plugin and embed the file (packaging, or machines without the
//! `wasm32-wasip2` target).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// One embedded component: its name (`builtin:NAME`), crate, what it is (for messages), the
/// variable that supplies a prebuilt file, and the source paths a rebuild depends on.
struct Embedded {
    name: &'static str,
    package: &'static str,
    what: &'static str,
    prebuilt_var: &'static str,
    sources: &'static [&'static str],
}

const EMBEDDED: &[Embedded] = &[
    Embedded {
        name: "eas",
        package: "switchboard-eas",
        what: "ActiveSync plugin",
        prebuilt_var: "SWITCHBOARD_EAS_WASM",
        sources: &[
            "plugins/eas/src",
            "plugins/eas/Cargo.toml",
            "plugins/eas/plugin.toml",
            "plugins/eas/wbxml/src",
            "plugins/eas/wbxml/Cargo.toml",
        ],
    },
    Embedded {
        name: "sip",
        package: "switchboard-sip",
        what: "SIP IM/presence plugin",
        prebuilt_var: "SWITCHBOARD_SIP_WASM",
        sources: &[
            "plugins/sip/src",
            "plugins/sip/Cargo.toml",
            "plugins/sip/plugin.toml",
            "plugins/sip/proto/src",
            "plugins/sip/proto/Cargo.toml",
        ],
    },
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("core/ has a parent")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    let mut to_build = Vec::new();
    for e in EMBEDDED {
        println!("cargo:rerun-if-env-changed={}", e.prebuilt_var);
        if let Some(prebuilt) = env::var_os(e.prebuilt_var).filter(|v| !v.is_empty()) {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", prebuilt.display());
            install(e, &prebuilt, &out_dir);
        } else {
            to_build.push(e);
        }
    }
    if to_build.is_empty() {
        return;
    }

    let shared = [
        "sdk/rust/src",
        "sdk/rust/Cargo.toml",
        "sdk/wit",
        "Cargo.lock",
    ];
    for path in to_build.iter().flat_map(|e| e.sources).chain(&shared) {
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
    cmd.current_dir(&workspace).args(["build", "--quiet"]);
    // One cargo run for all of them: shared dependencies (the SDK, serde) build once.
    for e in &to_build {
        cmd.args(["-p", e.package]);
    }
    cmd.args(["--lib", "--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // No debug info in the embedded components: smaller binary, faster first compile.
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
    let names = || {
        to_build
            .iter()
            .map(|e| format!("{} ({})", e.what, e.package))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "switchboard-core build: could not run cargo to build {}: {e}",
            names()
        )
    });
    if !status.success() {
        let vars = to_build
            .iter()
            .map(|e| format!("{}=/path/to/{}.wasm", e.prebuilt_var, e.name))
            .collect::<Vec<_>>()
            .join(" / ");
        panic!(
            "switchboard-core build: building {} for {TARGET} failed (see the errors above). \
             Set {vars} to embed a prebuilt component instead.",
            names()
        );
    }
    for e in to_build {
        let lib = e.package.replace('-', "_");
        let built = target_dir.join(format!("{TARGET}/release/{lib}.wasm"));
        install(e, &built, &out_dir);
    }
}

/// Copy a component to `$OUT_DIR/NAME.wasm` (what `include_bytes!` reads).
fn install(e: &Embedded, from: &Path, out_dir: &Path) {
    let to = out_dir.join(format!("{}.wasm", e.name));
    std::fs::copy(from, &to).unwrap_or_else(|err| {
        panic!(
            "switchboard-core build: copying the {} component {} to {}: {err}",
            e.what,
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
            "switchboard-core build: the ActiveSync and SIP plugins are embedded as WebAssembly \
             components and need the {TARGET} target, which could not be added. Run \
             `rustup target add {TARGET}`, or set SWITCHBOARD_EAS_WASM and SWITCHBOARD_SIP_WASM \
             to prebuilt components."
        );
    }
}
