//! Item ServerIds and attachment FileReferences as the device sees them.
//!
//! A connector's item id is used as the ServerId when it is short and printable (EAS limits
//! ServerIds to 64 characters); longer ids are replaced by `~` + a 16-hex-digit digest and the
//! mapping kept in kv (`iid/{user@domain}/{digest}`). FileReferences carry the item id and the
//! part id, base64url-encoded, so ItemOperations can fetch the part without state.

use base64::Engine as _;
use switchboard_sdk::{host::kv, Principal, Result};

use crate::provision::fnv;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn short_enough(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && !id.starts_with('~') && id.chars().all(|c| !c.is_control())
}

/// The ServerId for a connector item id (recording the mapping when one is needed).
pub fn server_id(who: &Principal, item_id: &str) -> Result<String> {
    if short_enough(item_id) {
        return Ok(item_id.to_string());
    }
    let rev: String = item_id.chars().rev().collect();
    let short = format!(
        "~{:08x}{:08x}",
        fnv(item_id.as_bytes()),
        fnv(rev.as_bytes())
    );
    let key = format!("iid/{}/{short}", who.address());
    if kv::get(&key)?.as_deref() != Some(item_id.as_bytes()) {
        kv::set(&key, item_id.as_bytes())?;
    }
    Ok(short)
}

/// The connector item id behind a ServerId; `None` for an unknown mapped id.
pub fn item_id(who: &Principal, server_id: &str) -> Result<Option<String>> {
    if !server_id.starts_with('~') {
        return Ok(Some(server_id.to_string()));
    }
    let key = format!("iid/{}/{server_id}", who.address());
    Ok(kv::get(&key)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// A FileReference for an attachment.
pub fn file_reference(item_id: &str, part_id: &str) -> String {
    format!("{}.{}", B64.encode(item_id), B64.encode(part_id))
}

/// The item and part ids of a FileReference.
pub fn parse_file_reference(r: &str) -> Option<(String, String)> {
    let (i, p) = r.split_once('.')?;
    let i = String::from_utf8(B64.decode(i).ok()?).ok()?;
    let p = String::from_utf8(B64.decode(p).ok()?).ok()?;
    Some((i, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::mock::MockHost;

    #[test]
    fn long_ids_are_mapped_and_file_references_round_trip() {
        let who = Principal::parse("a@b.c").unwrap();
        MockHost::new().run(|| {
            assert_eq!(server_id(&who, "INBOX-17").unwrap(), "INBOX-17");
            let long = "x".repeat(100);
            let s = server_id(&who, &long).unwrap();
            assert!(s.starts_with('~') && s.len() == 17);
            assert_eq!(item_id(&who, &s).unwrap(), Some(long));
            assert_eq!(item_id(&who, "~0000000000000000").unwrap(), None);
        });
        let r = file_reference("INBOX/1:2", "1.2");
        assert_eq!(
            parse_file_reference(&r),
            Some(("INBOX/1:2".into(), "1.2".into()))
        );
        assert_eq!(parse_file_reference("nope"), None);
        assert_eq!(parse_file_reference("!!.??"), None);
    }
}
