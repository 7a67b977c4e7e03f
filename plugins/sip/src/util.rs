//! Small helpers: time, random tokens, settings, addresses of record, sending.

use std::cell::OnceCell;
use std::hash::{BuildHasher, Hasher};

use switchboard_sdk::host;
use switchboard_sdk::sip::Origin;
use switchboard_sip_proto::{Message, Uri};

use crate::SipError;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 64 random bits from the standard library's per-process random hash keys (seeded from the
/// OS, or WASI `random`), mixed with a counter so repeated calls differ.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random token of 128 bits in hex (tags, branches, ETags, ids).
pub fn random_token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// The settings this plugin reads, with their defaults (the manifest's). Each is read from
/// the host the first time a call needs it (a `config.get` is a host call with two strings
/// copied across; a MESSAGE needs three settings, a response none), then kept for the call.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    realm: OnceCell<String>,
    domains: OnceCell<Vec<String>>,
    watcher_policy: OnceCell<String>,
    trust_registered_address: OnceCell<bool>,
    min_expires: OnceCell<u32>,
    max_expires: OnceCell<u32>,
    max_body_bytes: OnceCell<usize>,
    max_contacts: OnceCell<usize>,
    max_queued: OnceCell<usize>,
    max_subscriptions: OnceCell<usize>,
}

fn int(key: &str, default: u64) -> u64 {
    host::config::get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    /// The settings of this call, read from the host as they are first used.
    pub fn load() -> Settings {
        Settings::default()
    }

    /// Digest realm; empty: the user's domain.
    pub fn realm(&self) -> &str {
        self.realm
            .get_or_init(|| host::config::get("realm").unwrap_or_default())
    }

    /// Hosted domains, lower case; empty: any known user's domain.
    pub fn domains(&self) -> &[String] {
        self.domains.get_or_init(|| {
            host::config::get("domains")
                .unwrap_or_default()
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect()
        })
    }

    /// `same-domain`, `hosted` or `self`.
    pub fn watcher_policy(&self) -> &str {
        self.watcher_policy.get_or_init(|| {
            host::config::get("watcher_policy").unwrap_or_else(|| "same-domain".into())
        })
    }

    /// Trust the UDP source address of a current registration.
    pub fn trust_registered_address(&self) -> bool {
        *self.trust_registered_address.get_or_init(|| {
            host::config::get("trust_registered_address")
                .map(|v| v.trim() != "false")
                .unwrap_or(true)
        })
    }

    /// Shortest expiry accepted.
    pub fn min_expires(&self) -> u32 {
        *self
            .min_expires
            .get_or_init(|| int("min_expires", 60).clamp(1, 86_400) as u32)
    }

    /// Longest expiry granted (never below [`Settings::min_expires`]).
    pub fn max_expires(&self) -> u32 {
        *self.max_expires.get_or_init(|| {
            (int("max_expires", 3600).clamp(1, 7 * 86_400) as u32).max(self.min_expires())
        })
    }

    /// Largest MESSAGE/PUBLISH body.
    pub fn max_body_bytes(&self) -> usize {
        *self
            .max_body_bytes
            .get_or_init(|| int("max_body_bytes", 16_384).min(1 << 20) as usize)
    }

    /// Most contacts per AOR.
    pub fn max_contacts(&self) -> usize {
        *self
            .max_contacts
            .get_or_init(|| int("max_contacts", 10).clamp(1, 1000) as usize)
    }

    /// Most queued messages per AOR.
    pub fn max_queued(&self) -> usize {
        *self
            .max_queued
            .get_or_init(|| int("max_queued", 100).clamp(1, 10_000) as usize)
    }

    /// Most subscriptions per presentity.
    pub fn max_subscriptions(&self) -> usize {
        *self
            .max_subscriptions
            .get_or_init(|| int("max_subscriptions", 100).clamp(1, 10_000) as usize)
    }

    /// The realm for a request whose user is in `domain`.
    pub fn realm_for(&self, domain: &str) -> String {
        let realm = self.realm();
        if realm.is_empty() {
            domain.to_string()
        } else {
            realm.to_string()
        }
    }
}

/// An address of record: `user@domain`, lower case (kv keys and comparisons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aor {
    /// User part (lower case).
    pub user: String,
    /// Domain (lower case, no port).
    pub domain: String,
}

impl Aor {
    /// The AOR of a SIP/SIPS URI with a user part.
    pub fn of_uri(uri: &Uri<'_>) -> Option<Aor> {
        let sip = uri.as_sip()?;
        let user = sip.user?;
        let host = sip.host.to_string();
        if user.is_empty() || host.is_empty() {
            return None;
        }
        Some(Aor {
            user: user.to_ascii_lowercase(),
            domain: host.to_ascii_lowercase(),
        })
    }

    /// `user@domain`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// `sip:user@domain`.
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }
}

/// `400` naming what was wrong with the request (a header that did not parse).
pub fn bad(e: impl std::fmt::Display) -> SipError {
    SipError::status(400, reason_text(&e.to_string()))
}

/// A reason phrase without control characters, at most 200 bytes.
pub fn reason_text(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The IP address part of `ip:port` (`[v6]:port` too).
pub fn ip_of(peer: &str) -> String {
    match peer.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => peer.to_string(),
    }
}

/// Where a message goes: a stream flow, or a transport and address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// `ip:port`.
    pub peer: String,
    /// The stream connection, when there is one.
    pub flow: Option<u64>,
    /// Our local address the peer talks to (`ip:port`), for our Via and Contact.
    pub local: String,
}

impl Target {
    /// Back where `origin` came from.
    pub fn of(origin: &Origin) -> Target {
        Target {
            transport: origin.transport.to_ascii_lowercase(),
            peer: origin.peer.clone(),
            flow: origin.flow,
            local: origin.local.clone(),
        }
    }

    /// Send `bytes`: on the flow if open, else to the address (the core reuses or reopens a
    /// connection to it; UDP goes out of its socket).
    pub fn send(&self, bytes: &[u8]) -> switchboard_sdk::Result<()> {
        self.send_as(bytes, host::sip_transport::send_to)
    }

    /// [`Target::send`] for a request whose `2xx` answer we have no use for (a forked
    /// MESSAGE): by address it goes with `relay-to`, so the core consumes that answer
    /// instead of calling us with it.
    pub fn relay(&self, bytes: &[u8]) -> switchboard_sdk::Result<()> {
        self.send_as(bytes, host::sip_transport::relay_to)
    }

    fn send_as(
        &self,
        bytes: &[u8],
        by_address: fn(&str, &str, &[u8]) -> switchboard_sdk::Result<()>,
    ) -> switchboard_sdk::Result<()> {
        if let Some(flow) = self.flow {
            match host::sip_transport::send_flow(flow, bytes) {
                Ok(()) => return Ok(()),
                Err(switchboard_sdk::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        by_address(&self.transport, &self.peer, bytes)
    }

    /// A Via value for a request we send to this target.
    pub fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch=z9hG4bK{branch};rport",
            self.transport.to_ascii_uppercase(),
            self.local
        )
    }

    /// Our Contact for dialogs with this target.
    pub fn contact(&self) -> String {
        let t = self.transport.to_ascii_lowercase();
        if t == "udp" {
            format!("<sip:switchboard@{}>", self.local)
        } else {
            format!("<sip:switchboard@{};transport={t}>", self.local)
        }
    }
}

/// Serialise and send a message, logging (not failing) when it cannot go out.
pub fn send_logged(target: &Target, msg: &Message<'_>, what: &str) -> bool {
    logged(target, target.send(&msg.to_bytes()), what)
}

/// [`send_logged`] with [`Target::relay`].
pub fn relay_logged(target: &Target, msg: &Message<'_>, what: &str) -> bool {
    logged(target, target.relay(&msg.to_bytes()), what)
}

fn logged(target: &Target, sent: switchboard_sdk::Result<()>, what: &str) -> bool {
    match sent {
        Ok(()) => true,
        Err(e) => {
            host::log::warn(&format!("sip: {what} to {} not sent: {e}", target.peer));
            false
        }
    }
}
