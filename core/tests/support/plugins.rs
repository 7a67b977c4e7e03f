//! Builds the example and fixture plugins (WebAssembly and native) once per test run and
//! lays them out beside their manifests in a temp directory, as an admin would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How a plugin is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Wasm,
    Native,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Build `package` and return the artifact. Cargo's own lock serialises concurrent test
/// processes; after the first build this is a no-op check.
pub fn artifact(package: &str, build: Build) -> PathBuf {
    artifact_with(package, build, false)
}

/// Make sure the WebAssembly target is installed, so `cargo nextest run` works on a machine
/// that has only the host toolchain (as `.ci/run` does, but for anyone running the tests).
fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        })
        .unwrap_or(true); // no rustup: let cargo report what is missing
    if !installed {
        let status = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "the plugin tests need the wasm32-wasip2 target: run `rustup target add wasm32-wasip2`"
        );
    }
}

/// Like [`artifact`]; `release_native` builds the native library optimised (benchmarks).
pub fn artifact_with(package: &str, build: Build, release_native: bool) -> PathBuf {
    if build == Build::Wasm {
        ensure_wasm_target();
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace())
        .args(["build", "--quiet", "-p", package, "--lib"]);
    let lib = package.replace('-', "_");
    let path = match build {
        Build::Wasm => {
            cmd.args(["--release", "--target", "wasm32-wasip2"]);
            target_dir().join(format!("wasm32-wasip2/release/{lib}.wasm"))
        }
        Build::Native if release_native => {
            cmd.arg("--release");
            target_dir().join(format!("release/lib{lib}.so"))
        }
        Build::Native => target_dir().join(format!("debug/lib{lib}.so")),
    };
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building {package} ({build:?}) failed");
    assert!(path.is_file(), "{} missing after build", path.display());
    path
}

/// Copy `package`'s artifact into `dir` as `file_name` and write `manifest` (with `file`
/// pointing at it) beside it; returns the manifest path.
pub fn install(dir: &Path, package: &str, build: Build, manifest: &str) -> PathBuf {
    install_with(dir, package, build, manifest, false)
}

/// Like [`install`], optionally with an optimised native build.
pub fn install_with(
    dir: &Path,
    package: &str,
    build: Build,
    manifest: &str,
    release_native: bool,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let art = artifact_with(package, build, release_native);
    let file_name = art.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(&art, dir.join(&file_name)).unwrap();
    let text = manifest
        .lines()
        .map(|l| {
            if l.starts_with("file = ") {
                format!("file = {file_name:?}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("plugin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The manifest text of a plugin in the repository.
pub fn manifest_of(relative: &str) -> String {
    std::fs::read_to_string(workspace().join(relative)).unwrap()
}
