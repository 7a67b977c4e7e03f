//! Small helpers: time, random tokens, settings, addresses of record, sending.

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

/// The settings this plugin reads, with their defaults (the manifest's).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Digest realm; empty: the user's domain.
    pub realm: String,
    /// Hosted domains, lower case; empty: any known user's domain.
    pub domains: Vec<String>,
    /// `same-domain`, `hosted` or `self`.
    pub watcher_policy: String,
    /// Trust the UDP source address of a current registration.
    pub trust_registered_address: bool,
    /// Shortest expiry accepted.
    pub min_expires: u32,
    /// Longest expiry granted.
    pub max_expires: u32,
    /// Largest MESSAGE/PUBLISH body.
    pub max_body_bytes: usize,
    /// Most contacts per AOR.
    pub max_contacts: usize,
    /// Most queued messages per AOR.
    pub max_queued: usize,
    /// Most subscriptions per presentity.
    pub max_subscriptions: usize,
}

fn int(key: &str, default: u64) -> u64 {
    host::config::get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    /// Read the settings from the host.
    pub fn load() -> Settings {
        let min_expires = int("min_expires", 60).clamp(1, 86_400) as u32;
        Settings {
            realm: host::config::get("realm").unwrap_or_default(),
            domains: host::config::get("domains")
                .unwrap_or_default()
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            watcher_policy: host::config::get("watcher_policy")
                .unwrap_or_else(|| "same-domain".into()),
            trust_registered_address: host::config::get("trust_registered_address")
                .map(|v| v.trim() != "false")
                .unwrap_or(true),
            min_expires,
            max_expires: (int("max_expires", 3600).clamp(1, 7 * 86_400) as u32).max(min_expires),
            max_body_bytes: int("max_body_bytes", 16_384).min(1 << 20) as usize,
            max_contacts: int("max_contacts", 10).clamp(1, 1000) as usize,
            max_queued: int("max_queued", 100).clamp(1, 10_000) as usize,
            max_subscriptions: int("max_subscriptions", 100).clamp(1, 10_000) as usize,
        }
    }

    /// The realm for a request whose user is in `domain`.
    pub fn realm_for(&self, domain: &str) -> String {
        if self.realm.is_empty() {
            domain.to_string()
        } else {
            self.realm.clone()
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
        if let Some(flow) = self.flow {
            match host::sip_transport::send_flow(flow, bytes) {
                Ok(()) => return Ok(()),
                Err(switchboard_sdk::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        host::sip_transport::send_to(&self.transport, &self.peer, bytes)
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
    match target.send(&msg.to_bytes()) {
        Ok(()) => true,
        Err(e) => {
            host::log::warn(&format!("sip: {what} to {} not sent: {e}", target.peer));
            false
        }
    }
}
