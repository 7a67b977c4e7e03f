//! Folders as the device sees them: short ServerIds for the connector's folder ids (which may
//! be long IMAP paths) and the EAS folder `Type` of each folder kind.
//!
//! The id map is per user (all devices see the same ids) in kv key `fid/{user@domain}`; it
//! only grows (ids are never reused, so a device holding an old id can never hit another
//! folder).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_sdk::{host::kv, Folder, FolderKind, Principal, Result};

/// EAS folder types ([MS-ASCMD] 2.2.3.186.3).
pub mod kind {
    /// User-created folder (generic).
    pub const GENERIC: u8 = 1;
    /// Default Inbox.
    pub const INBOX: u8 = 2;
    /// Default Drafts.
    pub const DRAFTS: u8 = 3;
    /// Default Deleted Items.
    pub const DELETED: u8 = 4;
    /// Default Sent Items.
    pub const SENT: u8 = 5;
    /// Default Outbox.
    pub const OUTBOX: u8 = 6;
    /// Default Tasks.
    pub const TASKS: u8 = 7;
    /// Default Calendar.
    pub const CALENDAR: u8 = 8;
    /// Default Contacts.
    pub const CONTACTS: u8 = 9;
    /// Default Notes.
    pub const NOTES: u8 = 10;
    /// User-created mail folder.
    pub const USER_MAIL: u8 = 12;
    /// User-created calendar.
    pub const USER_CALENDAR: u8 = 13;
    /// User-created contacts.
    pub const USER_CONTACTS: u8 = 14;
    /// User-created tasks.
    pub const USER_TASKS: u8 = 15;
    /// User-created notes.
    pub const USER_NOTES: u8 = 17;
}

/// The EAS type of a folder kind. Junk has no default type in EAS: it is a mail folder.
pub fn eas_type(k: FolderKind) -> u8 {
    match k {
        FolderKind::Inbox => kind::INBOX,
        FolderKind::Drafts => kind::DRAFTS,
        FolderKind::Deleted => kind::DELETED,
        FolderKind::Sent => kind::SENT,
        FolderKind::Outbox => kind::OUTBOX,
        FolderKind::Tasks => kind::TASKS,
        FolderKind::Calendar => kind::CALENDAR,
        FolderKind::Contacts => kind::CONTACTS,
        FolderKind::Notes => kind::NOTES,
        FolderKind::Junk | FolderKind::UserMail => kind::USER_MAIL,
        FolderKind::UserCalendar => kind::USER_CALENDAR,
        FolderKind::UserContacts => kind::USER_CONTACTS,
        FolderKind::UserTasks => kind::USER_TASKS,
        FolderKind::UserNotes => kind::USER_NOTES,
    }
}

/// The user folder of the same class, for a second folder of a default kind (EAS allows one
/// default folder per type).
pub fn demote(t: u8) -> u8 {
    match t {
        kind::CALENDAR => kind::USER_CALENDAR,
        kind::CONTACTS => kind::USER_CONTACTS,
        kind::TASKS => kind::USER_TASKS,
        kind::NOTES => kind::USER_NOTES,
        kind::INBOX | kind::DRAFTS | kind::DELETED | kind::SENT | kind::OUTBOX => kind::USER_MAIL,
        t => t,
    }
}

/// The folder kind a client asks for in FolderCreate; `None` for types a client may not
/// create (defaults, 18, 19).
pub fn kind_for_create(t: u8) -> Option<FolderKind> {
    Some(match t {
        kind::GENERIC | kind::USER_MAIL => FolderKind::UserMail,
        kind::USER_CALENDAR => FolderKind::UserCalendar,
        kind::USER_CONTACTS => FolderKind::UserContacts,
        kind::USER_TASKS => FolderKind::UserTasks,
        kind::USER_NOTES => FolderKind::UserNotes,
        _ => return None,
    })
}

/// Whether a type is a default (system) folder that clients may not rename or delete.
pub fn is_default(t: u8) -> bool {
    (kind::INBOX..=kind::NOTES).contains(&t)
}

/// The class of items a folder type holds, as Sync's `Class` names it.
pub fn class_of(t: u8) -> &'static str {
    match t {
        kind::CALENDAR | kind::USER_CALENDAR => "Calendar",
        kind::CONTACTS | kind::USER_CONTACTS => "Contacts",
        kind::TASKS | kind::USER_TASKS => "Tasks",
        kind::NOTES | kind::USER_NOTES => "Notes",
        _ => "Email",
    }
}

/// One folder as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFolder {
    /// Short ServerId.
    pub id: String,
    /// Short ServerId of the parent, `"0"` at the top.
    pub parent: String,
    /// Display name.
    pub name: String,
    /// EAS type.
    #[serde(rename = "t")]
    pub kind: u8,
}

/// The user's id map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// Last short id handed out.
    pub last: u32,
    /// Connector id → short id.
    pub ids: BTreeMap<String, String>,
}

impl IdMap {
    /// The connector id behind a short id.
    pub fn connector_id(&self, short: &str) -> Option<&str> {
        self.ids
            .iter()
            .find(|(_, s)| s.as_str() == short)
            .map(|(c, _)| c.as_str())
    }
}

fn map_key(who: &Principal) -> String {
    format!("fid/{}", who.address())
}

/// The id map, extended (atomically, retried on races) with short ids for `folders`.
pub fn id_map(who: &Principal, folders: &[Folder]) -> Result<IdMap> {
    let key = map_key(who);
    loop {
        let raw = kv::get(&key)?;
        let mut map: IdMap = raw
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let mut grew = false;
        for f in folders {
            if !map.ids.contains_key(&f.id) {
                map.last += 1;
                map.ids.insert(f.id.clone(), map.last.to_string());
                grew = true;
            }
        }
        if !grew {
            return Ok(map);
        }
        let bytes = serde_json::to_vec(&map)
            .map_err(|e| switchboard_sdk::Error::Internal(e.to_string()))?;
        if kv::compare_and_swap(&key, raw.as_deref(), Some(&bytes))? {
            return Ok(map);
        }
    }
}

/// The device's view of the mailbox: every folder with its short id, parent and EAS type,
/// one default folder per type, sorted so parents come before children.
pub fn device_view(folders: &[Folder], map: &IdMap) -> Vec<DeviceFolder> {
    let short = |id: &str| map.ids.get(id).cloned();
    let mut seen_default = std::collections::HashSet::new();
    let mut out: Vec<DeviceFolder> = Vec::with_capacity(folders.len());
    for f in folders {
        let Some(id) = short(&f.id) else { continue };
        let mut t = eas_type(f.kind);
        if is_default(t) && !seen_default.insert(t) {
            t = demote(t);
        }
        let parent = if f.parent_id.is_empty() {
            "0".to_string()
        } else {
            short(&f.parent_id).unwrap_or_else(|| "0".into())
        };
        out.push(DeviceFolder {
            id,
            parent,
            name: f.name.clone(),
            kind: t,
        });
    }
    order_parents_first(out)
}

/// Parents before children (a folder whose parent is missing counts as top level).
fn order_parents_first(mut folders: Vec<DeviceFolder>) -> Vec<DeviceFolder> {
    let ids: std::collections::HashSet<String> = folders.iter().map(|f| f.id.clone()).collect();
    for f in &mut folders {
        if f.parent != "0" && !ids.contains(&f.parent) {
            f.parent = "0".into();
        }
    }
    let mut placed = std::collections::HashSet::from(["0".to_string()]);
    let mut out = Vec::with_capacity(folders.len());
    let mut rest = folders;
    while !rest.is_empty() {
        let before = rest.len();
        let (ready, later): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|f| placed.contains(&f.parent));
        for f in ready {
            placed.insert(f.id.clone());
            out.push(f);
        }
        rest = later;
        if rest.len() == before {
            // A cycle: cut it, put the rest at the top.
            for mut f in rest.drain(..) {
                f.parent = "0".into();
                out.push(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: &str, parent: &str, kind: FolderKind) -> Folder {
        Folder {
            id: id.into(),
            parent_id: parent.into(),
            name: id.into(),
            kind,
        }
    }

    #[test]
    fn types_defaults_and_order() {
        let folders = vec![
            f("INBOX/child", "INBOX", FolderKind::UserMail),
            f("INBOX", "", FolderKind::Inbox),
            f("Other Inbox", "", FolderKind::Inbox),
            f("Junk", "", FolderKind::Junk),
            f("Cal", "", FolderKind::Calendar),
            f("orphan", "gone", FolderKind::UserContacts),
        ];
        let mut map = IdMap::default();
        for x in &folders {
            map.last += 1;
            map.ids.insert(x.id.clone(), map.last.to_string());
        }
        let view = device_view(&folders, &map);
        let by = |id: &str| view.iter().position(|d| map.ids[id] == d.id).unwrap();
        assert!(by("INBOX") < by("INBOX/child"));
        assert_eq!(view[by("INBOX")].kind, kind::INBOX);
        assert_eq!(view[by("Other Inbox")].kind, kind::USER_MAIL);
        assert_eq!(view[by("Junk")].kind, kind::USER_MAIL);
        assert_eq!(view[by("Cal")].kind, kind::CALENDAR);
        assert_eq!(view[by("orphan")].parent, "0");
        assert_eq!(view[by("INBOX/child")].parent, map.ids["INBOX"]);
        assert_eq!(class_of(kind::USER_CONTACTS), "Contacts");
        assert_eq!(kind_for_create(12), Some(FolderKind::UserMail));
        assert_eq!(kind_for_create(2), None);
    }
}
