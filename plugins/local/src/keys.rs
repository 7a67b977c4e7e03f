//! Where everything lives in the plugin's kv space. Keys sort bytewise; every mailbox is one
//! prefix, so mailboxes never see each other's keys.
//!
//! ```text
//! m/<address>/init                       standard folders created (marker)
//! m/<address>/nf                         last user folder number (u<N> ids)
//! m/<address>/nb                         last content blob number
//! m/<address>/f/<folder>                 folder record
//! m/<address>/c/<folder>                 the folder's change counter
//! m/<address>/l/<folder>/<seq:016x>      change log: item records, change markers, tombstones
//! m/<address>/b/<blob>/m                 content metadata (size, MIME part offsets, indexes)
//! m/<address>/b/<blob>/d<n:08x>          content chunk n (CHUNK bytes each)
//! ```

use switchboard_sdk::{Error, Principal, Result};

/// Longest mailbox address accepted (keys must stay under the host's 512-byte limit).
const MAX_ADDRESS: usize = 320;

/// The key prefix of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// `user@domain`, lowercased: also the `mailbox:` event key's subject.
    pub address: String,
    prefix: String,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c if c.is_control() => out.push_str(&format!("%{:02X}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out
}

impl Mailbox {
    /// The mailbox of `who`.
    pub fn of(who: &Principal) -> Result<Mailbox> {
        Mailbox::from_address(&who.address())
    }

    /// The mailbox of an address (`user@domain`).
    pub fn from_address(address: &str) -> Result<Mailbox> {
        let address = address.trim().to_lowercase();
        let ok = address
            .rsplit_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && !d.is_empty());
        if !ok || address.len() > MAX_ADDRESS {
            return Err(Error::Invalid(format!(
                "not a mailbox address: {address:?}"
            )));
        }
        let prefix = format!("m/{}/", escape(&address));
        Ok(Mailbox { address, prefix })
    }

    /// Standard folders created.
    pub fn init(&self) -> String {
        format!("{}init", self.prefix)
    }
    /// Last user folder number.
    pub fn next_folder(&self) -> String {
        format!("{}nf", self.prefix)
    }
    /// Last blob number.
    pub fn next_blob(&self) -> String {
        format!("{}nb", self.prefix)
    }
    /// All folder records.
    pub fn folders(&self) -> String {
        format!("{}f/", self.prefix)
    }
    /// One folder record.
    pub fn folder(&self, id: &str) -> String {
        format!("{}f/{id}", self.prefix)
    }
    /// A folder's change counter.
    pub fn counter(&self, folder: &str) -> String {
        format!("{}c/{folder}", self.prefix)
    }
    /// A folder's change log.
    pub fn log_prefix(&self, folder: &str) -> String {
        format!("{}l/{folder}/", self.prefix)
    }
    /// One change-log position.
    pub fn log(&self, folder: &str, seq: u64) -> String {
        format!("{}l/{folder}/{seq:016x}", self.prefix)
    }
    /// A blob's metadata.
    pub fn blob_meta(&self, blob: &str) -> String {
        format!("{}b/{blob}/m", self.prefix)
    }
    /// One chunk of a blob.
    pub fn chunk(&self, blob: &str, n: u64) -> String {
        format!("{}b/{blob}/d{n:08x}", self.prefix)
    }
}

/// The log position a log key stands for.
pub fn seq_of_log_key(key: &str) -> Option<u64> {
    let hex = key.rsplit('/').next()?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// A folder id is what this store issues: standard names or `u<N>`.
pub fn valid_folder_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 24
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Item ids are `<folder>.<seq>`: the folder and the log position of the item record.
pub fn item_id(folder: &str, seq: u64) -> String {
    format!("{folder}.{seq}")
}

/// Split an item id; `Error::NotFound` for anything this store did not issue.
pub fn parse_item_id(id: &str) -> Result<(String, u64)> {
    let bad = || {
        Error::NotFound(format!(
            "no item {:?}",
            id.chars().take(64).collect::<String>()
        ))
    };
    let (folder, seq) = id.rsplit_once('.').ok_or_else(bad)?;
    if !valid_folder_id(folder) || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    Ok((folder.to_string(), seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_and_ids_round_trip() {
        let m = Mailbox::from_address("A/b%@Example.COM").unwrap();
        assert_eq!(m.address, "a/b%@example.com");
        assert_eq!(m.folder("inbox"), "m/a%2Fb%25@example.com/f/inbox");
        assert_eq!(seq_of_log_key(&m.log("inbox", 300)), Some(300));
        assert_eq!(
            parse_item_id(&item_id("u3", 17)).unwrap(),
            ("u3".into(), 17)
        );
        for bad in [
            "",
            "inbox",
            "inbox.",
            ".3",
            "in/box.3",
            "inbox.-1",
            "inbox.99999999999999999999999",
        ] {
            assert!(parse_item_id(bad).is_err(), "{bad:?}");
        }
        assert!(Mailbox::from_address("nobody").is_err());
    }
}
