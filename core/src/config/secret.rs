//! Secrets by indirection: a config value may be written inline, or as `env:NAME` (read from
//! the environment) or `file:PATH` (first line of a file), so that passwords need not sit in
//! the config file. The resolved value never appears in `Debug` output or logs.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A configuration string that may hold a secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a literal value.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The value as written in the config (`env:…`, `file:…` or literal).
    pub fn raw(&self) -> &str {
        &self.0
    }

    /// Resolve the value. `env` looks up environment variables; relative `file:` paths are
    /// taken from `base_dir`.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        base_dir: &Path,
    ) -> Result<String, String> {
        if let Some(name) = self.0.strip_prefix("env:") {
            return env(name).ok_or_else(|| format!("environment variable {name} is not set"));
        }
        if let Some(path) = self.0.strip_prefix("file:") {
            let path = base_dir.join(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
            let first = text.lines().next().unwrap_or_default().trim().to_string();
            if first.is_empty() {
                return Err(format!("secret file {} is empty", path.display()));
            }
            return Ok(first);
        }
        Ok(self.0.clone())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.starts_with("env:") || self.0.starts_with("file:") {
            write!(f, "Secret({:?})", self.0)
        } else {
            f.write_str("Secret([redacted])")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_env_file_and_literal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\nignored\n").unwrap();
        let env = |k: &str| (k == "DB").then(|| "postgres://x".to_string());
        assert_eq!(
            Secret::new("env:DB").resolve(&env, dir.path()).unwrap(),
            "postgres://x"
        );
        assert_eq!(
            Secret::new("file:pw").resolve(&env, dir.path()).unwrap(),
            "s3cret"
        );
        assert_eq!(
            Secret::new("plain").resolve(&env, dir.path()).unwrap(),
            "plain"
        );
        assert_eq!(
            Secret::new("env:NOPE")
                .resolve(&env, dir.path())
                .unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(Secret::new("file:missing")
            .resolve(&env, dir.path())
            .is_err());
    }

    #[test]
    fn debug_never_shows_inline_values() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }
}
