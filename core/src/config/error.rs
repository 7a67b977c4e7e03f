//! Configuration errors, each tied to the key path it is about.

use std::fmt;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `http.https[0]`; `(file)` for problems with the file as a whole.
    pub path: String,
    /// What is wrong, phrased for an admin.
    pub message: String,
}

impl ConfigError {
    /// Build an error for `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one configuration file (or plugin manifest), in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// What kind of file: `configuration` or `plugin manifest`.
    pub subject: &'static str,
    /// Where it came from (file path, or `built-in defaults`).
    pub origin: String,
    /// The problems, in file order of their sections.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "invalid {} ({}): {n} problem{}",
            self.subject,
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}
