//! Sync keys: `0` asks for a fresh start; every other key is one the server issued, of the
//! form `{epoch:08x}-{n}`. The epoch is fixed when a state is created (from the device, the
//! collection and the clock), so a key from before a reset or from another device never
//! matches a new state, even when the counters coincide.

use std::fmt;

use crate::provision::fnv;

/// A parsed client sync key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKey {
    /// `0`: start over.
    Initial,
    /// A key this server issued (or a forged one: it is checked against the state).
    Issued(SyncKey),
    /// Anything else: can never match a state.
    Unknown,
}

/// A server-issued sync key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncKey {
    /// Fixed for the life of one state.
    pub epoch: u32,
    /// Advances with every answer that carries changes.
    pub n: u32,
}

impl SyncKey {
    /// The first key of a new state.
    pub fn first(seed: &str) -> SyncKey {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        SyncKey {
            epoch: fnv(format!("{seed}\n{nanos}").as_bytes()),
            n: 1,
        }
    }

    /// The key after this one.
    pub fn next(self) -> SyncKey {
        SyncKey {
            epoch: self.epoch,
            n: self.n.wrapping_add(1).max(1),
        }
    }
}

impl fmt::Display for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{}", self.epoch, self.n)
    }
}

/// Parse what the client sent.
pub fn parse(s: &str) -> ClientKey {
    let s = s.trim();
    if s == "0" {
        return ClientKey::Initial;
    }
    let Some((e, n)) = s.split_once('-') else {
        return ClientKey::Unknown;
    };
    match (u32::from_str_radix(e, 16), n.parse::<u32>()) {
        (Ok(epoch), Ok(n)) if e.len() == 8 && n > 0 => ClientKey::Issued(SyncKey { epoch, n }),
        _ => ClientKey::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_forgeries_are_unknown() {
        let k = SyncKey {
            epoch: 0xdead_beef,
            n: 7,
        };
        assert_eq!(k.to_string(), "deadbeef-7");
        assert_eq!(parse("deadbeef-7"), ClientKey::Issued(k));
        assert_eq!(parse("0"), ClientKey::Initial);
        for bad in [
            "",
            "1",
            "-1",
            "deadbeef-",
            "deadbeef-0",
            "xyz-1",
            "beef-1",
            "deadbeef-99999999999",
        ] {
            assert_eq!(parse(bad), ClientKey::Unknown, "{bad}");
        }
        assert_eq!(k.next().n, 8);
        assert_eq!(k.next().epoch, k.epoch);
    }
}
