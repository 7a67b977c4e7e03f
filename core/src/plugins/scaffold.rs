//! `switchboard plugin new`: a new plugin crate from the SDK template (`sdk/rust/template/`,
//! compiled into the binary so it works anywhere).

use std::path::{Path, PathBuf};

use super::manifest::{World, HOST_SDK_VERSION};

/// Where the generated crate gets `switchboard-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkDependency {
    /// crates.io (`switchboard-sdk = "0.1"`).
    Registry,
    /// A local checkout (inside this repository, and in tests).
    Path(PathBuf),
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name breaks the manifest rule.
    #[error("\"{0}\" is not a plugin name: use [a-z][a-z0-9-]*, at most 63 characters")]
    BadName(String),
    /// The target exists and has files in it.
    #[error("{0} already exists and is not empty; choose another --dir")]
    NotEmpty(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

const CARGO: &str = include_str!("../../../sdk/rust/template/Cargo.toml.tmpl");
const MANIFEST: &str = include_str!("../../../sdk/rust/template/plugin.toml.tmpl");
const README: &str = include_str!("../../../sdk/rust/template/README.md.tmpl");
const HTTP: &str = include_str!("../../../sdk/rust/template/http-frontend.rs.tmpl");
const SIP: &str = include_str!("../../../sdk/rust/template/sip-frontend.rs.tmpl");
const MAIL: &str = include_str!("../../../sdk/rust/template/mail-connector.rs.tmpl");
const DIRECTORY: &str = include_str!("../../../sdk/rust/template/directory-connector.rs.tmpl");

/// Whether `name` is a valid plugin name.
pub fn valid_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn camel(name: &str) -> String {
    name.split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The files of a new plugin, path relative to the crate root → contents.
pub fn render(
    name: &str,
    world: World,
    sdk: &SdkDependency,
) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let crate_name = name.replace('-', "_");
    let (source, capabilities, config_hint) = match world {
        World::HttpFrontend => (
            HTTP,
            format!("kv_quota_bytes = 65536\nhttp_paths = [\"/{name}\"]"),
            format!("\n[frontends.{name}]\nplugin = \"{name}\""),
        ),
        World::SipFrontend => (
            SIP,
            String::new(),
            format!("\n[frontends.sip]\nplugin = \"{name}\""),
        ),
        World::MailConnector => (
            MAIL,
            "outbound = []".into(),
            "domains = [\"example.com\"]".into(),
        ),
        World::DirectoryConnector => (
            DIRECTORY,
            "outbound = []".into(),
            "domains = [\"example.com\"]\nsettings = { display_name = \"Front Desk\" }".into(),
        ),
    };
    let manifest_config = if world == World::DirectoryConnector {
        "\n[config.display_name]\ntype = \"string\"\ndefault = \"Info Desk\"\n"
    } else {
        ""
    };
    let dep = match sdk {
        SdkDependency::Registry => "\"0.1\"".to_string(),
        SdkDependency::Path(p) => format!("{{ path = {:?} }}", p.display().to_string()),
    };
    let dep_mock = match sdk {
        SdkDependency::Registry => "{ version = \"0.1\", features = [\"mock\"] }".to_string(),
        SdkDependency::Path(p) => format!(
            "{{ path = {:?}, features = [\"mock\"] }}",
            p.display().to_string()
        ),
    };
    let fill = |t: &str| {
        t.replace("{{sdk_dependency_mock}}", &dep_mock)
            .replace("{{sdk_dependency}}", &dep)
            .replace("{{capabilities}}", &capabilities)
            .replace("{{config_hint}}", &config_hint)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{struct_name}}", &camel(name))
            .replace("{{sdk_version}}", &HOST_SDK_VERSION.to_string())
            .replace("{{world}}", world.as_str())
            .replace("{{path}}", &format!("/{name}"))
            .replace("{{name}}", name)
    };
    Ok(vec![
        (PathBuf::from("Cargo.toml"), fill(CARGO)),
        (PathBuf::from("src/lib.rs"), fill(source)),
        (
            PathBuf::from("plugin.toml"),
            fill(MANIFEST) + manifest_config,
        ),
        (PathBuf::from("README.md"), fill(README)),
        (
            PathBuf::from(".gitignore"),
            "/target\n*.wasm\n*.so\n".to_string(),
        ),
    ])
}

/// Write a new plugin crate into `dir` (created; must not hold files already).
pub fn scaffold(
    name: &str,
    world: World,
    dir: &Path,
    sdk: SdkDependency,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let files = render(name, world, &sdk)?;
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
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
    use crate::plugins::manifest::parse_manifest;

    const WORLDS: [World; 4] = [
        World::HttpFrontend,
        World::SipFrontend,
        World::MailConnector,
        World::DirectoryConnector,
    ];

    #[test]
    fn every_world_renders_completely_with_a_valid_manifest() {
        for world in WORLDS {
            let files = render("my-plugin", world, &SdkDependency::Registry).unwrap();
            for (path, text) in &files {
                assert!(
                    !text.contains("{{"),
                    "{world}: placeholder left in {}",
                    path.display()
                );
            }
            let lib = &files.iter().find(|(p, _)| p.ends_with("lib.rs")).unwrap().1;
            assert!(lib.contains("pub struct MyPlugin;"), "{world}");
            let manifest = &files
                .iter()
                .find(|(p, _)| p.ends_with("plugin.toml"))
                .unwrap()
                .1;
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("my-plugin.wasm"), b"\0asm").unwrap();
            let m =
                parse_manifest(manifest, dir.path()).unwrap_or_else(|e| panic!("{world}: {e:?}"));
            assert_eq!((m.name.as_str(), m.world), ("my-plugin", world));
        }
    }

    #[test]
    fn refuses_bad_names_and_non_empty_directories() {
        for bad in ["", "Upper", "9lives", "under_score", &"x".repeat(64)] {
            assert!(
                matches!(
                    render(bad, World::HttpFrontend, &SdkDependency::Registry),
                    Err(ScaffoldError::BadName(_))
                ),
                "{bad}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let err = scaffold(
            "ok",
            World::MailConnector,
            dir.path(),
            SdkDependency::Registry,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("already exists and is not empty; choose another --dir"),
            "{err}"
        );
        assert!(!dir.path().join("Cargo.toml").exists(), "nothing written");
    }

    #[test]
    fn path_dependency_is_written() {
        let files = render(
            "p",
            World::HttpFrontend,
            &SdkDependency::Path("/src/sdk/rust".into()),
        )
        .unwrap();
        let cargo = &files[0].1;
        assert!(
            cargo.contains("switchboard-sdk = { path = \"/src/sdk/rust\" }"),
            "{cargo}"
        );
        assert!(cargo.contains("features = [\"mock\"]"), "{cargo}");
    }
}
