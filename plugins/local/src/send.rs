//! Delivery between mailboxes of this store. There is no SMTP relay here: a message with any
//! recipient this store does not serve is refused as a whole, before anything is delivered.
//!
//! Which addresses are local: those in the sender's own domain (the core routed the call
//! here because this store serves it) and in the domains of the `local_domains` setting.
//! A local recipient's mailbox is created on first delivery, like on first login. Each
//! recipient gets their own copy (without the `Bcc` header) in their Inbox, and a `mailbox:`
//! event; the sender's copy (with `Bcc`) goes to Sent Items when asked. Should storing fail
//! midway (quota, database), recipients delivered before the failure keep their copy and the
//! error names who did not get one; sending again would deliver those twice.

use std::collections::BTreeSet;

use mail_parser::{Address, MessageParser};
use switchboard_sdk::host::{self, staging::Upload};
use switchboard_sdk::{Error, ItemClass, Principal, Result};

use crate::folders;
use crate::items;
use crate::keys::Mailbox;
use crate::store::{Prefixed, Source};

/// Most header bytes read to find the recipients.
const HEADER_CAP: u64 = 256 * 1024;

/// The header block of a staged message: its bytes and where the body starts.
fn header_of(upload: &Upload) -> Result<(Vec<u8>, u64)> {
    let mut buf = Vec::new();
    while (buf.len() as u64) < HEADER_CAP {
        let piece = Source::read(upload, buf.len() as u64, 64 * 1024)?;
        if piece.is_empty() {
            break;
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&piece);
        if let Some(end) = header_end(&buf, from) {
            buf.truncate(end);
            return Ok((buf, end as u64));
        }
    }
    Err(Error::Invalid(
        "the message has no header block (or one over 256 KiB)".into(),
    ))
}

fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

fn addresses<'a>(all: impl Iterator<Item = &'a Address<'a>>, out: &mut BTreeSet<String>) {
    for a in all {
        for addr in a.iter() {
            if let Some(x) = addr.address() {
                out.insert(x.trim().to_lowercase());
            }
        }
    }
}

/// The recipients (To, Cc, Bcc) of a header block, lowercased and deduplicated.
pub fn recipients(header: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(m) = MessageParser::new().parse_headers(header) {
        addresses(m.all_to(), &mut out);
        addresses(m.all_cc(), &mut out);
        addresses(m.all_bcc(), &mut out);
    }
    out
}

/// Whether this store delivers to `domain`.
fn is_local(sender: &Principal, domain: &str) -> bool {
    if domain.eq_ignore_ascii_case(&sender.domain) {
        return true;
    }
    host::config::get("local_domains").is_some_and(|list| {
        list.split(',')
            .any(|d| d.trim().eq_ignore_ascii_case(domain))
    })
}

/// Deliver a staged message; see the module docs.
pub fn send(who: &Principal, upload: Upload, save_copy: bool) -> Result<()> {
    let sender = Mailbox::of(who)?;
    let (header, body_start) = header_of(&upload)?;
    let rcpts = recipients(&header);
    if rcpts.is_empty() {
        return Err(Error::Invalid(
            "the message names no recipients (To, Cc, Bcc)".into(),
        ));
    }
    let foreign: Vec<&String> = rcpts
        .iter()
        .filter(|r| match r.rsplit_once('@') {
            Some((u, d)) => u.is_empty() || !is_local(who, d),
            None => true,
        })
        .collect();
    if !foreign.is_empty() {
        let list: Vec<&str> = foreign.iter().map(|s| s.as_str()).collect();
        return Err(Error::Unavailable(format!(
            "nothing was sent: the local store delivers only to its own domains and has no relay for {}",
            list.join(", ")
        )));
    }
    let mailboxes = rcpts
        .iter()
        .map(|r| Mailbox::from_address(r))
        .collect::<Result<Vec<_>>>()?;
    let stripped = switchboard_sdk::mail::without_bcc(&header);
    let copy = Prefixed {
        prefix: &stripped,
        upload,
        skip: body_start,
    };
    let mut delivered = Vec::new();
    for mb in &mailboxes {
        let result = folders::ensure(mb).and_then(|()| {
            let stored = items::store_content(mb, ItemClass::Email, &copy)?;
            items::add_stored(mb, "inbox", stored, false)
        });
        if let Err(e) = result {
            let missed: Vec<&str> = mailboxes[delivered.len()..]
                .iter()
                .map(|m| m.address.as_str())
                .collect();
            return Err(Error::Unavailable(format!(
                "delivery stopped ({e}); delivered to: {}; not delivered to: {}",
                if delivered.is_empty() {
                    "nobody".to_string()
                } else {
                    delivered.join(", ")
                },
                missed.join(", ")
            )));
        }
        delivered.push(mb.address.clone());
    }
    if save_copy {
        folders::ensure(&sender)?;
        let stored = items::store_content(&sender, ItemClass::Email, &upload)?;
        items::add_stored(&sender, "sent", stored, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_is_removed_with_its_continuation_lines() {
        let h = b"From: a@x\r\nBcc: b@x,\r\n c@x\r\nTo: d@x\r\nbcc: e@x\r\n\r\n";
        assert_eq!(
            switchboard_sdk::mail::without_bcc(h),
            b"From: a@x\r\nTo: d@x\r\n\r\n"
        );
        let r = recipients(h);
        assert_eq!(
            r.into_iter().collect::<Vec<_>>(),
            ["b@x", "c@x", "d@x", "e@x"]
        );
    }

    #[test]
    fn header_end_in_either_line_ending() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody", 0), Some(8));
        assert_eq!(header_end(b"A: b\n\nbody", 0), Some(6));
        assert_eq!(header_end(b"A: b\r\n", 0), None);
    }
}
