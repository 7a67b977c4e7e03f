//! The connector's settings (`[plugins.ldap.settings]`, schema in `plugin.toml`), read from
//! the host, checked once per distinct configuration, and the filter templates with RFC 4515
//! escaping of every substituted value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::LdapError;

/// Placeholders a filter template may use.
const PLACEHOLDERS: [&str; 4] = ["user", "login", "domain", "query"];

/// Escape a value for use inside an LDAP filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL
/// become `\2a`, `\28`, `\29`, `\5c`, `\00`, so a login such as `*)(uid=*` is matched
/// literally and can never widen or restructure the filter.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// A filter with `{user}`, `{login}`, `{domain}` and `{query}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTemplate {
    /// The setting it came from (for error messages).
    setting: &'static str,
    text: String,
}

impl FilterTemplate {
    /// Check a template: known placeholders only, `required` ones present, and with sample
    /// values substituted it must parse as an LDAP filter.
    pub fn parse(
        setting: &'static str,
        text: &str,
        required: &[&str],
    ) -> Result<FilterTemplate, LdapError> {
        let bad = |why: String| LdapError::Setting {
            setting,
            message: format!("\"{text}\" {why}"),
        };
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| bad("has a `{` without a closing `}`".into()))?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(bad(format!(
                    "uses the unknown placeholder {{{name}}} (known: {{user}}, {{login}}, {{domain}}, {{query}})"
                )));
            }
            rest = &after[close + 1..];
        }
        if !required.is_empty() && !required.iter().any(|r| text.contains(&format!("{{{r}}}"))) {
            let names: Vec<String> = required.iter().map(|r| format!("{{{r}}}")).collect();
            return Err(bad(format!(
                "must use {} (otherwise it matches the same entries for everyone)",
                names.join(" or ")
            )));
        }
        let t = FilterTemplate {
            setting,
            text: text.to_string(),
        };
        let sample = t.render(&[
            ("user", "sample"),
            ("login", "sample@example.com"),
            ("domain", "example.com"),
            ("query", "sample"),
        ]);
        ldap3::parse_filter(&sample)
            .map_err(|_| bad("is not a valid LDAP filter (RFC 4515)".into()))?;
        Ok(t)
    }

    /// Substitute values (escaped) for the placeholders.
    pub fn render(&self, values: &[(&str, &str)]) -> String {
        let mut out = self.text.clone();
        for (name, value) in values {
            out = out.replace(&format!("{{{name}}}"), &escape_filter_value(value));
        }
        out
    }
}

/// Where and how to reach the directory server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured (`ldap://host:389` or `ldaps://host:636`).
    pub url: String,
    /// `host:port`, for error messages.
    pub host_port: String,
    /// `ldaps://`: TLS from the first byte.
    pub ldaps: bool,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// PEM file of CAs to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

/// An LDAP attribute shown as a person attribute under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMap {
    /// LDAP attribute (case-insensitive).
    pub ldap: String,
    /// Name in the person's `attributes`.
    pub name: String,
}

/// The checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The server.
    pub endpoint: Endpoint,
    /// Service account DN; empty: anonymous searches.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Where people are searched (subtree).
    pub base_dn: String,
    /// Finds the one entry of a login.
    pub user_filter: FilterTemplate,
    /// Who is in the GAL.
    pub gal_filter: FilterTemplate,
    /// Narrows the GAL by the query.
    pub query_filter: FilterTemplate,
    /// Attribute holding the login's local part.
    pub attr_uid: String,
    /// Attribute holding the email address.
    pub attr_mail: String,
    /// Attributes tried in order for the display name.
    pub attr_display_name: Vec<String>,
    /// Attribute holding the phone number.
    pub attr_phone: String,
    /// Further attributes copied into the person.
    pub attributes: Vec<AttributeMap>,
    /// Entries per page (simple paged results control).
    pub page_size: i32,
    /// Most entries a GAL search returns, whatever the caller asks.
    pub size_limit: u32,
    /// Connect and per-operation timeout.
    pub timeout: Duration,
    /// Idle connections kept per kind (service searches, user binds).
    pub pool_size: usize,
}

/// Defaults, as in `plugin.toml` (used when the host has no value, e.g. in unit tests).
pub const DEFAULT_USER_FILTER: &str = "(&(objectClass=inetOrgPerson)(|(uid={user})(mail={login})))";
/// Default GAL filter.
pub const DEFAULT_GAL_FILTER: &str = "(&(objectClass=inetOrgPerson)(mail=*))";
/// Default query filter.
pub const DEFAULT_QUERY_FILTER: &str =
    "(|(cn=*{query}*)(displayName=*{query}*)(mail={query}*)(uid={query}*)(sn={query}*)(givenName={query}*))";

fn parse_url(url: &str) -> Result<(String, bool), LdapError> {
    let bad = |why: &str| LdapError::Setting {
        setting: "url",
        message: format!("\"{url}\" {why}"),
    };
    let (ldaps, rest) = if let Some(r) = url.strip_prefix("ldaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ldap://") {
        (false, r)
    } else {
        return Err(bad("must start with ldap:// or ldaps://"));
    };
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') || hostport.contains('?') {
        return Err(bad(
            "must be ldap://HOST[:PORT] or ldaps://HOST[:PORT] (no path)",
        ));
    }
    let default_port = if ldaps { 636 } else { 389 };
    let has_port = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
            if h.contains(':') && !h.starts_with('[') {
                false // bare IPv6 without brackets: no port given
            } else {
                p.parse::<u16>()
                    .map_err(|_| bad("has a port that is not a number"))?;
                true
            }
        }
        _ => false,
    };
    let host_port = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    };
    Ok((host_port, ldaps))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Settings {
    /// Read and check the settings through `get` (the host's `config.get`). Every error
    /// names the setting.
    pub fn load(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, LdapError> {
        let text = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_string());
        let required = |k: &'static str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or(LdapError::Setting {
                    setting: k,
                    message: "must be set".into(),
                })
        };
        let int = |k: &'static str, d: i64, min: i64, max: i64| -> Result<i64, LdapError> {
            let Some(v) = get(k) else { return Ok(d) };
            match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(LdapError::Setting {
                    setting: k,
                    message: format!("\"{v}\" must be a whole number from {min} to {max}"),
                }),
            }
        };
        let url = required("url")?;
        let (host_port, ldaps) = parse_url(&url)?;
        let starttls = match text("starttls", "true").as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(LdapError::Setting {
                    setting: "starttls",
                    message: format!("\"{other}\" must be true or false"),
                })
            }
        };
        let ca_file = Some(text("ca_file", ""))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        if let Some(f) = &ca_file {
            if !f.is_file() {
                return Err(LdapError::Setting {
                    setting: "ca_file",
                    message: format!("{} is not a readable file", f.display()),
                });
            }
        }
        let bind_dn = text("bind_dn", "");
        let bind_password = text("bind_password", "");
        if !bind_dn.is_empty() && bind_password.is_empty() {
            return Err(LdapError::Setting {
                setting: "bind_password",
                message: "must be set when bind_dn is (an empty password would bind anonymously)"
                    .into(),
            });
        }
        let attributes = list(&text("attributes", "cn,title,department,memberOf"))
            .into_iter()
            .map(|a| match a.split_once('=') {
                Some((l, n)) => AttributeMap {
                    ldap: l.trim().to_string(),
                    name: n.trim().to_string(),
                },
                None => AttributeMap {
                    ldap: a.clone(),
                    name: a,
                },
            })
            .collect();
        let attr_display_name = list(&text("attr_display_name", "displayName,cn"));
        Ok(Settings {
            endpoint: Endpoint {
                url,
                host_port,
                ldaps,
                starttls,
                ca_file,
            },
            bind_dn,
            bind_password,
            base_dn: required("base_dn")?,
            user_filter: FilterTemplate::parse(
                "user_filter",
                &text("user_filter", DEFAULT_USER_FILTER),
                &["user", "login"],
            )?,
            gal_filter: FilterTemplate::parse(
                "gal_filter",
                &text("gal_filter", DEFAULT_GAL_FILTER),
                &[],
            )?,
            query_filter: FilterTemplate::parse(
                "query_filter",
                &text("query_filter", DEFAULT_QUERY_FILTER),
                &["query"],
            )?,
            attr_uid: text("attr_uid", "uid"),
            attr_mail: text("attr_mail", "mail"),
            attr_display_name,
            attr_phone: text("attr_phone", "telephoneNumber"),
            attributes,
            page_size: int("page_size", 200, 1, 10_000)? as i32,
            size_limit: int("size_limit", 1000, 1, 100_000)? as u32,
            timeout: Duration::from_millis(int("timeout_ms", 5000, 100, 600_000)? as u64),
            pool_size: int("pool_size", 4, 1, 64)? as usize,
        })
    }

    /// Every LDAP attribute a person search asks for.
    pub fn wanted_attributes(&self) -> Vec<String> {
        let mut v = vec![self.attr_uid.clone(), self.attr_mail.clone()];
        v.extend(self.attr_display_name.iter().cloned());
        v.push(self.attr_phone.clone());
        v.extend(self.attributes.iter().map(|a| a.ldap.clone()));
        v.sort_by_key(|a| a.to_ascii_lowercase());
        v.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        v
    }
}

/// Settings read through the host, checked once per distinct set of values.
pub fn current(get: &dyn Fn(&str) -> Option<String>) -> Result<Arc<Settings>, LdapError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Settings>>>> = OnceLock::new();
    const KEYS: [&str; 18] = [
        "url",
        "starttls",
        "ca_file",
        "bind_dn",
        "bind_password",
        "base_dn",
        "user_filter",
        "gal_filter",
        "query_filter",
        "attr_uid",
        "attr_mail",
        "attr_display_name",
        "attr_phone",
        "attributes",
        "page_size",
        "size_limit",
        "timeout_ms",
        "pool_size",
    ];
    let values: Vec<Option<String>> = KEYS.iter().map(|k| get(k)).collect();
    let key = format!("{values:?}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(s.clone());
    }
    let lookup = |k: &str| {
        KEYS.iter()
            .position(|x| *x == k)
            .and_then(|i| values[i].clone())
    };
    let s = Arc::new(Settings::load(&lookup)?);
    let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
    if c.len() >= 16 {
        c.clear();
    }
    c.insert(key, s.clone());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_rfc4515_specials() {
        assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_filter_value("Jöhn Doe"), "Jöhn Doe");
    }

    #[test]
    fn injection_stays_one_value() {
        let t = FilterTemplate::parse("user_filter", DEFAULT_USER_FILTER, &["user"]).unwrap();
        let f = t.render(&[("user", "*)(uid=*"), ("login", "*)(uid=*@example.com")]);
        assert_eq!(
            f,
            "(&(objectClass=inetOrgPerson)(|(uid=\\2a\\29\\28uid=\\2a)(mail=\\2a\\29\\28uid=\\2a@example.com)))"
        );
        ldap3::parse_filter(&f).unwrap();
    }

    #[test]
    fn bad_templates_name_the_setting() {
        let e = FilterTemplate::parse("user_filter", "(uid={user}", &["user"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "setting user_filter: \"(uid={user}\" is not a valid LDAP filter (RFC 4515)"
        );
        let e = FilterTemplate::parse("user_filter", "(uid={usr})", &["user"]).unwrap_err();
        assert!(e.to_string().contains("unknown placeholder {usr}"), "{e}");
        let e = FilterTemplate::parse("user_filter", "(uid=*)", &["user", "login"]).unwrap_err();
        assert!(e.to_string().contains("must use {user} or {login}"), "{e}");
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("ldap://dir.example.com").unwrap(),
            ("dir.example.com:389".into(), false)
        );
        assert_eq!(
            parse_url("ldaps://127.0.0.1:1636/").unwrap(),
            ("127.0.0.1:1636".into(), true)
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("ldap://x:port").is_err());
        assert!(parse_url("ldap://x/dc=example").is_err());
    }
}
