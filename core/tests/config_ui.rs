//! Every bad configuration in `tests/ui/config/*.toml` must produce exactly the message in the
//! `.stderr` file beside it. Run with `SWITCHBOARD_BLESS=1` to rewrite the expectations after a
//! deliberate wording change (then review the diff).

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchboard_core::config::{load, Config, ConfigSource};
use switchboard_core::plugins::manifest::{load_manifest, parse_manifest, World};

/// Run `check` on every `*.toml` in `dir` and compare with the `.stderr` file beside it.
fn check_fixtures(dir: &str, check: impl Fn(&std::path::Path) -> String) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "fixtures missing in {dir}");
    let bless = std::env::var_os("SWITCHBOARD_BLESS").is_some();
    let mut failures = Vec::new();
    for file in files {
        let actual = check(&file);
        let expected_path = file.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_configs_print_their_exact_errors() {
    check_fixtures("tests/ui/config", |file| {
        let source = ConfigSource {
            path: Some(file.to_path_buf()),
            env: BTreeMap::new(),
        };
        match load(&source) {
            Ok(_) => "(valid)\n".to_string(),
            Err(e) => e.to_string(),
        }
    });
}

#[test]
fn bad_manifests_print_their_exact_errors() {
    check_fixtures("tests/ui/manifest", |file| match load_manifest(file) {
        Ok(m) => format!("(valid: {} {} {})\n", m.name, m.version, m.world),
        Err(e) => e.to_string(),
    });
}

#[test]
fn manifest_hash_and_world_checks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wasm"), b"component bytes").unwrap();
    let sha = "f1b2e8a8d2b2f3d8f1e2d1a6c0c1b7f0f5a3b3e2c0d7b6a5e4f3a2b1c0d9e8f7";
    let manifest = |hash: &str| {
        format!("[plugin]\nname = \"p\"\nversion = \"1.0.0\"\nworld = \"http-frontend\"\nsdk = \"0.1.0\"\nfile = \"p.wasm\"\nsha256 = \"{hash}\"\n")
    };
    let err = parse_manifest(&manifest(sha), dir.path()).unwrap_err();
    assert_eq!(err[0].path, "plugin.sha256");
    let real = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"component bytes"))
    };
    let m = parse_manifest(&manifest(&real.to_uppercase()), dir.path())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(m.sha256.as_deref(), Some(real.as_str()));
    assert!(m
        .expect_world(World::HttpFrontend, "frontends.eas.plugin")
        .is_ok());
    let e = m
        .expect_world(World::MailConnector, "domains.example.com.mail")
        .unwrap_err();
    assert_eq!(e.to_string(), "domains.example.com.mail: plugin \"p\" implements http-frontend, but this slot needs mail-connector");
}

#[test]
fn sample_config_documents_exactly_the_defaults() {
    let source = ConfigSource {
        path: Some(PathBuf::from("../switchboard.toml")),
        env: BTreeMap::new(),
    };
    let settings = load(&source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings.config, Config::default());
}

#[test]
fn no_file_means_defaults_and_env_overrides_apply() {
    let env: BTreeMap<String, String> = [
        ("SWITCHBOARD__HTTP__HTTPS", "127.0.0.1:9443,127.0.0.1:9444"),
        ("SWITCHBOARD__HTTP__MAX_BODY_BYTES", "1024"),
        ("SWITCHBOARD__FRONTENDS__AUTODISCOVER__ENABLED", "false"),
        ("SWITCHBOARD__AUTH__THROTTLE__LOCKOUT_SECS", "60"),
        ("SWITCHBOARD_CONFIG", "ignored.toml"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = load(&ConfigSource { path: None, env }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.config.http.https,
        vec!["127.0.0.1:9443", "127.0.0.1:9444"]
    );
    assert_eq!(s.config.http.max_body_bytes, 1024);
    assert!(!s.config.frontends["autodiscover"].enabled);
    assert_eq!(s.config.auth.throttle.lockout_secs, 60);
    assert!(
        s.database_url.starts_with("sqlite://") && s.database_url.ends_with("data/switchboard.db")
    );
}

#[test]
fn env_override_errors_name_the_key() {
    let env: BTreeMap<String, String> = [
        ("SWITCHBOARD__HTTP__NOPE".to_string(), "1".to_string()),
        ("SWITCHBOARD__SIP__UDP".into(), "x".into()),
    ]
    .into_iter()
    .collect();
    let e = load(&ConfigSource { path: None, env })
        .unwrap_err()
        .to_string();
    assert!(e.contains("  - http.nope: unknown key"), "{e}");
    assert!(
        e.contains("  - sip.udp[0]: \"x\" is not a socket address"),
        "{e}"
    );
}

#[test]
fn secrets_resolve_from_env_and_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    let cfg = dir.path().join("sb.toml");
    std::fs::write(
        &cfg,
        "[database]\nurl = \"env:DB_URL\"\n[admin]\ntoken = \"file:token\"\n",
    )
    .unwrap();
    let env = [("DB_URL".to_string(), "postgres://u@127.0.0.1/x".to_string())]
        .into_iter()
        .collect();
    let s = load(&ConfigSource {
        path: Some(cfg),
        env,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.database_url, "postgres://u@127.0.0.1/x");
    assert_eq!(s.admin_token.as_deref(), Some("t0ken"));
    assert!(!format!("{:?}", s.config).contains("t0ken"));
}

/// The built-in local store is the default mail connector; explicit config composes with it.
#[test]
fn default_local_store_composes_with_explicit_plugins() {
    use switchboard_core::plugins::manifest::Artifact;
    let dir = tempfile::tempdir().unwrap();
    let imap = std::fs::canonicalize("tests/ui/manifest/valid.toml").unwrap();
    let load_text = |text: &str, env: &[(&str, &str)]| {
        let path = dir.path().join("sb.toml");
        std::fs::write(&path, text).unwrap();
        load(&ConfigSource {
            path: Some(path),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    };
    let imap_for = |domains: &str| {
        format!("[plugins.imap]\nmanifest = {imap:?}\nsettings = {{ host = \"imap.example.com\" }}\ndomains = {domains}\n")
    };

    // No file: the local store serves every domain, built in.
    let s = load(&ConfigSource::default()).unwrap_or_else(|e| panic!("{e}"));
    let local = &s.plugin_manifests["local"];
    assert_eq!(
        (local.world, local.artifact),
        (World::MailConnector, Artifact::Builtin)
    );
    assert_eq!(s.config.plugins["local"].domains, ["*"]);
    assert_eq!(
        s.config.plugins["local"].manifest,
        PathBuf::from("builtin:local")
    );

    // Turned off in the file, or from the environment.
    let s = load_text("[plugins.local]\nenabled = false\n", &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.plugin_manifests.contains_key("local"));
    let s = load_text("", &[("SWITCHBOARD__PLUGINS__LOCAL__ENABLED", "false")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.plugin_manifests.contains_key("local"));

    // Merged key by key: the manifest stays the built-in one.
    let s = load_text(
        "[plugins.local]\ndomains = [\"example.org\"]\nkv_quota_bytes = 4096\n",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.plugin_manifests["local"].artifact, Artifact::Builtin);
    assert_eq!(s.config.plugins["local"].domains, ["example.org"]);
    assert_eq!(s.config.plugins["local"].kv_quota_bytes, Some(4096));

    // Not mentioned: another connector's domains go to it, "*" included.
    let s = load_text(&imap_for("[\"example.com\"]"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.config.plugins["local"].domains, ["*"]);
    assert!(s.plugin_manifests.contains_key("local"));
    let s = load_text(&imap_for("[\"*\"]"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !s.plugin_manifests.contains_key("local"),
        "nothing left to serve"
    );
    assert!(!s.config.plugins["local"].enabled);

    // Mentioned: a clash is an error that says what to do.
    let e = load_text(
        &format!("{}[plugins.local]\nenabled = true\n", imap_for("[\"*\"]")),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("plugins.local.domains: domain \"*\" is already served by mail-connector \"imap\" (narrow plugins.imap.domains or plugins.local.domains, or disable one)"),
        "{e}"
    );
}
