//! `switchboard plugin new`: a new plugin crate from the SDK template.
//!
//! The template lives in `sdk/rust/template/<world>/` (one directory per world, files ending
//! in `.tmpl`) and is compiled into the binary, so the command works on a server that has
//! no source checkout. Placeholders are `{{name}}`, `{{crate_name}}`, `{{struct_name}}` and
//! `{{sdk_version}}`; the `switchboard-sdk` dependency lines of `Cargo.toml` are rewritten
//! when the crate should use a local SDK checkout instead of crates.io.

use std::path::{Path, PathBuf};

use super::manifest::{World, HOST_SDK_VERSION};

/// Where the generated crate gets `switchboard-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkDependency {
    /// crates.io: `switchboard-sdk = "0.1"`.
    Registry,
    /// A local checkout of `sdk/rust`: `switchboard-sdk = { path = "…" }`, for work inside
    /// this repository and for tests. A relative path is taken from the current directory.
    Path(PathBuf),
}

/// Why a plugin crate could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name breaks the manifest rule, or cannot be a Cargo package.
    #[error("\"{name}\" cannot be a plugin name: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The target directory exists and has something in it.
    #[error("{0} already exists and is not empty; choose another directory")]
    NotEmpty(PathBuf),
    /// The SDK path cannot be written into `Cargo.toml`.
    #[error("SDK path {0}: {1}")]
    SdkPath(PathBuf, &'static str),
    /// The target directory could not be inspected.
    #[error("cannot use {path}: {source}")]
    Inspect {
        /// The target directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Creating a directory or writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The template files of one world.
struct Template {
    cargo: &'static str,
    lib: &'static str,
    manifest: &'static str,
    manifest_native: &'static str,
    readme: &'static str,
}

macro_rules! template {
    ($world:literal) => {
        Template {
            cargo: include_str!(concat!(
                "../../../sdk/rust/template/",
                $world,
                "/Cargo.toml.tmpl"
            )),
            lib: include_str!(concat!(
                "../../../sdk/rust/template/",
                $world,
                "/src/lib.rs.tmpl"
            )),
            manifest: include_str!(concat!(
                "../../../sdk/rust/template/",
                $world,
                "/plugin.toml.tmpl"
            )),
            manifest_native: include_str!(concat!(
                "../../../sdk/rust/template/",
                $world,
                "/plugin-native.toml.tmpl"
            )),
            readme: include_str!(concat!(
                "../../../sdk/rust/template/",
                $world,
                "/README.md.tmpl"
            )),
        }
    };
}

const HTTP_FRONTEND: Template = template!("http-frontend");
const SIP_FRONTEND: Template = template!("sip-frontend");
const MAIL_CONNECTOR: Template = template!("mail-connector");
const DIRECTORY_CONNECTOR: Template = template!("directory-connector");

fn template(world: World) -> &'static Template {
    match world {
        World::HttpFrontend => &HTTP_FRONTEND,
        World::SipFrontend => &SIP_FRONTEND,
        World::MailConnector => &MAIL_CONNECTOR,
        World::DirectoryConnector => &DIRECTORY_CONNECTOR,
    }
}

/// The dependency lines exactly as every `Cargo.toml.tmpl` writes them; [`render`] swaps
/// them for path dependencies (a test checks each template has both).
const REGISTRY_DEPENDENCY: &str = "switchboard-sdk = \"0.1\"\n";
const REGISTRY_DEV_DEPENDENCY: &str =
    "switchboard-sdk = { version = \"0.1\", features = [\"mock\"] }\n";

/// Not a template: the same for every world, and build output must not be committed.
const GITIGNORE: &str = "/target\n*.wasm\n*.so\n*.dylib\n*.dll\n";

/// Rust keywords (strict and reserved, all editions), which `cargo new` refuses as package
/// names too: Rust code cannot name such a crate plainly, and `self` would
/// make the plugin's struct `Self`, which does not compile.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names that clash with the standard library (`cargo new` refuses or warns about these
/// too) or with the SDK the crate depends on.
const TAKEN: &[&str] = &[
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "switchboard_sdk",
];

/// Check `name` as a plugin name: the manifest rule (`[a-z][a-z0-9-]*`, at most 63
/// characters) plus what Cargo and Rust need of the package it names.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |reason| {
        Err(ScaffoldError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    // Same rule as `plugin.name` in manifest.rs (a test keeps the two in step).
    let manifest_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !manifest_ok {
        return bad(
            "use lower-case letters, digits and '-', starting with a letter, at most 63 characters",
        );
    }
    let crate_name = crate_name(name);
    if KEYWORDS.contains(&crate_name.as_str()) {
        return bad("it is a Rust keyword");
    }
    if TAKEN.contains(&crate_name.as_str()) {
        return bad("the crate would clash with the standard library or switchboard-sdk");
    }
    Ok(())
}

/// The Rust crate name of plugin `name` (`my-plugin` → `my_plugin`).
fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// UpperCamelCase of a valid plugin name (`my-plugin-2` → `MyPlugin2`), for the plugin's
/// struct. Never empty and never a keyword: names start with a letter, and the only
/// UpperCamelCase keyword, `Self`, comes from `self`, which [`check_name`] refuses.
fn struct_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `text` as a TOML basic string, quoted and escaped.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The two `switchboard-sdk` lines of the generated `Cargo.toml` (dependency, dev-dependency
/// with the mock host), without their trailing newlines.
fn sdk_lines(sdk: &SdkDependency) -> Result<(String, String), ScaffoldError> {
    match sdk {
        SdkDependency::Registry => Ok((
            REGISTRY_DEPENDENCY.trim_end().to_string(),
            REGISTRY_DEV_DEPENDENCY.trim_end().to_string(),
        )),
        SdkDependency::Path(p) => {
            // Cargo resolves a relative path from the generated Cargo.toml, not from where
            // the command ran, so anchor it here.
            let absolute = std::path::absolute(p)
                .map_err(|_| ScaffoldError::SdkPath(p.clone(), "cannot be made absolute"))?;
            let Some(text) = absolute.to_str() else {
                return Err(ScaffoldError::SdkPath(
                    p.clone(),
                    "is not valid UTF-8, so Cargo.toml cannot name it",
                ));
            };
            let quoted = toml_string(text);
            Ok((
                format!("switchboard-sdk = {{ path = {quoted} }}"),
                format!("switchboard-sdk = {{ path = {quoted}, features = [\"mock\"] }}"),
            ))
        }
    }
}

/// The files of a new `world` plugin named `name`: paths relative to the crate root, and
/// their contents. Nothing is written.
pub fn render(
    name: &str,
    world: World,
    sdk: &SdkDependency,
) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
    check_name(name)?;
    let t = template(world);
    let (dependency, dev_dependency) = sdk_lines(sdk)?;
    let crate_name = crate_name(name);
    let struct_name = struct_name(name);
    let sdk_version = HOST_SDK_VERSION.to_string();
    // `{{crate_name}}` and `{{struct_name}}` go before `{{name}}` only for clarity: no
    // placeholder contains another, and substituted values never contain `{{`.
    let fill = |text: &str| {
        text.replace("{{crate_name}}", &crate_name)
            .replace("{{struct_name}}", &struct_name)
            .replace("{{sdk_version}}", &sdk_version)
            .replace("{{name}}", name)
    };
    let cargo = fill(t.cargo)
        .replace(REGISTRY_DEPENDENCY.trim_end(), &dependency)
        .replace(REGISTRY_DEV_DEPENDENCY.trim_end(), &dev_dependency);
    Ok(vec![
        (PathBuf::from("Cargo.toml"), cargo),
        (PathBuf::from("src").join("lib.rs"), fill(t.lib)),
        (PathBuf::from("plugin.toml"), fill(t.manifest)),
        (PathBuf::from("plugin-native.toml"), fill(t.manifest_native)),
        (PathBuf::from("README.md"), fill(t.readme)),
        (PathBuf::from(".gitignore"), GITIGNORE.to_string()),
    ])
}

/// Write a new `world` plugin crate named `name` into `dir`, which is created if missing
/// and must be empty if present. Returns the paths written (under `dir`).
///
/// The name and the directory are checked before anything is written. A failure while
/// writing leaves the files written so far.
pub fn scaffold(
    name: &str,
    world: World,
    dir: &Path,
    sdk_dependency: SdkDependency,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let files = render(name, world, &sdk_dependency)?;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Not a directory, no permission, …: say so now rather than fail halfway.
        Err(source) => {
            return Err(ScaffoldError::Inspect {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::manifest::{parse_manifest, Artifact};

    const WORLDS: [World; 4] = [
        World::HttpFrontend,
        World::SipFrontend,
        World::MailConnector,
        World::DirectoryConnector,
    ];

    fn sdk_path() -> SdkDependency {
        SdkDependency::Path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/rust"))
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn every_world_renders_completely_with_valid_manifests() {
        for world in WORLDS {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("my-plugin-2");
            let written = scaffold("my-plugin-2", world, &root, sdk_path()).unwrap();
            let names: Vec<_> = written
                .iter()
                .map(|p| p.strip_prefix(&root).unwrap().to_path_buf())
                .collect();
            assert_eq!(
                names,
                [
                    "Cargo.toml",
                    "src/lib.rs",
                    "plugin.toml",
                    "plugin-native.toml",
                    "README.md",
                    ".gitignore"
                ]
                .map(PathBuf::from),
                "{world}"
            );
            for path in &written {
                let text = read(path);
                assert!(
                    !text.contains("{{") && !text.contains("}}"),
                    "{world}: placeholder left in {}:\n{text}",
                    path.display()
                );
            }

            let cargo: toml::Table = read(&root.join("Cargo.toml")).parse().unwrap();
            assert_eq!(cargo["package"]["name"].as_str(), Some("my-plugin-2"));
            assert!(cargo["workspace"].is_table(), "{world}: standalone crate");
            let lib = read(&root.join("src/lib.rs"));
            assert!(lib.contains("pub struct MyPlugin2;"), "{world}");
            assert!(lib.contains("#[cfg(test)]"), "{world}");
            let keyword = world.as_str().replace('-', "_");
            assert!(
                lib.contains(&format!("export_wasm!({keyword}: MyPlugin2)"))
                    && lib.contains(&format!("export_native!({keyword}: MyPlugin2)")),
                "{world}"
            );

            // The manifests check that their file exists; stand-ins are enough for that.
            std::fs::write(root.join("my-plugin-2.wasm"), b"\0asm").unwrap();
            std::fs::write(root.join("libmy_plugin_2.so"), b"\x7fELF").unwrap();
            for (manifest, artifact) in [
                ("plugin.toml", Artifact::Wasm),
                ("plugin-native.toml", Artifact::Native),
            ] {
                let m = parse_manifest(&read(&root.join(manifest)), &root)
                    .unwrap_or_else(|e| panic!("{world} {manifest}: {e:?}"));
                assert_eq!(m.name, "my-plugin-2");
                assert_eq!(m.world, world);
                assert_eq!(m.sdk, HOST_SDK_VERSION);
                assert_eq!(m.artifact, artifact, "{world} {manifest}");
                if world == World::HttpFrontend {
                    assert_eq!(m.http_paths, ["/my-plugin-2"]);
                }
            }
        }
    }

    #[test]
    fn every_template_has_the_registry_dependency_lines() {
        // `render` rewrites these lines for path dependencies; if a template spelt them
        // differently, the rewrite would silently leave crates.io in place.
        for world in WORLDS {
            let cargo = template(world).cargo;
            assert!(cargo.contains(REGISTRY_DEPENDENCY), "{world}");
            assert!(cargo.contains(REGISTRY_DEV_DEPENDENCY), "{world}");
        }
    }

    #[test]
    fn sdk_dependency_is_written_as_asked() {
        let cargo_of = |sdk: SdkDependency| {
            let files = render("p", World::MailConnector, &sdk).unwrap();
            let text = &files[0].1;
            let table: toml::Table = text.parse().unwrap();
            (
                table["dependencies"]["switchboard-sdk"].clone(),
                table["dev-dependencies"]["switchboard-sdk"].clone(),
            )
        };
        let (dep, dev) = cargo_of(SdkDependency::Registry);
        assert_eq!(dep.as_str(), Some("0.1"));
        assert_eq!(dev["version"].as_str(), Some("0.1"));
        assert_eq!(dev["features"][0].as_str(), Some("mock"));

        // Quotes and backslashes in the path must survive TOML quoting.
        let odd = std::env::temp_dir().join("sdk \"x\" \\ y");
        let (dep, dev) = cargo_of(SdkDependency::Path(odd.clone()));
        assert_eq!(dep["path"].as_str(), odd.to_str());
        assert_eq!(dev["path"].as_str(), odd.to_str());
        assert_eq!(dev["features"][0].as_str(), Some("mock"));
        assert!(dep.get("version").is_none());

        // Relative paths are anchored at the current directory, not the new crate.
        let (dep, _) = cargo_of(SdkDependency::Path("sdk/rust".into()));
        let written = Path::new(dep["path"].as_str().unwrap());
        assert!(written.is_absolute(), "{written:?}");
        assert!(written.ends_with("sdk/rust"), "{written:?}");
    }

    #[test]
    fn names_follow_the_manifest_rule() {
        // check_name must agree with the manifest parser on the shared rule.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.wasm"), b"\0asm").unwrap();
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        for name in [
            "a",
            "x1",
            "my-plugin",
            "a--b",
            "ends-",
            &long,
            "",
            "Upper",
            "9lives",
            "-lead",
            "under_score",
            "dot.ted",
            "sp ace",
            "é",
            &too_long,
        ] {
            let manifest = format!(
                "[plugin]\nname = {}\nversion = \"0.1.0\"\nworld = \"http-frontend\"\nsdk = \"{HOST_SDK_VERSION}\"\nfile = \"x.wasm\"\n",
                toml_string(name)
            );
            let manifest_ok = parse_manifest(&manifest, dir.path()).is_ok();
            assert_eq!(check_name(name).is_ok(), manifest_ok, "{name:?}");
        }
    }

    #[test]
    fn refuses_bad_and_reserved_names_naming_them() {
        for bad in [
            "",
            "Upper",
            "9lives",
            "under_score",
            "self",
            "type",
            "std",
            "test",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("new");
            let err =
                scaffold(bad, World::HttpFrontend, &target, SdkDependency::Registry).unwrap_err();
            assert!(
                matches!(&err, ScaffoldError::BadName { name, .. } if name == bad),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(&format!("\"{bad}\"")), "{err}");
            assert!(!target.exists(), "{bad}: nothing written");
        }
        // Hyphenated names that only become keywords never exist: '-' turns into '_'.
        assert!(check_name("switchboard-sdk").is_err());
        assert!(check_name("self-service").is_ok());
        assert_eq!(struct_name("self-service"), "SelfService");
    }

    #[test]
    fn refuses_non_empty_directories_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = scaffold(
            "ok",
            World::MailConnector,
            dir.path(),
            SdkDependency::Registry,
        )
        .unwrap_err();
        assert!(matches!(err, ScaffoldError::NotEmpty(_)), "{err}");
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
        assert!(!dir.path().join("Cargo.toml").exists(), "nothing written");
        assert_eq!(read(&dir.path().join("keep.txt")), "mine");

        let file = dir.path().join("keep.txt");
        let err = scaffold("ok", World::MailConnector, &file, SdkDependency::Registry).unwrap_err();
        assert!(matches!(err, ScaffoldError::Inspect { .. }), "{err}");
        assert!(err.to_string().contains("keep.txt"), "{err}");

        // An existing empty directory is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let written = scaffold("ok", World::SipFrontend, &empty, SdkDependency::Registry).unwrap();
        assert!(written.iter().all(|p| p.starts_with(&empty) && p.is_file()));
    }

    #[test]
    fn struct_names_are_upper_camel_case() {
        assert_eq!(struct_name("notes"), "Notes");
        assert_eq!(struct_name("my-plugin"), "MyPlugin");
        assert_eq!(struct_name("a--b-"), "AB");
        assert_eq!(struct_name("x-1"), "X1");
    }
}
