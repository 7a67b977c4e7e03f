//! The Scalix / standards connector: a `mail-connector` plugin for Scalix and any
//! standards-based mail store, over IMAP, SMTP submission and CalDAV/CardDAV.
//!
//! **Native only, trusted code.** The plugin opens its own TCP connections from a tokio
//! runtime of its own (connection pools and timeouts outlive a single call), which the
//! WebAssembly sandbox cannot offer; so it is built and loaded as a native library, with no
//! sandbox — like every native plugin, it runs with the server's rights.
//!
//! How IMAP maps onto the mailstore interface:
//!
//! - **Folders** are IMAP mailboxes; the id is the wire name (modified UTF-7), the display
//!   name its decoded last segment. Kinds come from SPECIAL-USE (`\Sent`, `\Drafts`,
//!   `\Trash`, `\Junk`) and, failing that, from well-known top-level names (`Sent Items`,
//!   `Deleted Items`, …, as Scalix names them); each kind goes to one folder only.
//! - **Items** are messages: id `{UIDVALIDITY}.{UID}.{folder id}`.
//! - **Sync** tokens encode UIDVALIDITY, HIGHESTMODSEQ and the highest UID handed out, plus a
//!   hash naming the record of known UIDs and flags kept in kv (see [`state`]). With
//!   CONDSTORE, flag changes come from `CHANGEDSINCE`; with QRESYNC, deletions from
//!   `VANISHED`; without them the connector lists UIDs and flags and diffs against the
//!   record. Pages are replay-safe. **When UIDVALIDITY changes** (the server rebuilt the
//!   mailbox) every id the client holds is void: sync answers `conflict`, and the frontend
//!   starts over from no state (a full resync, as EAS does for an invalid SyncKey).
//! - **Fetch** reads `BODY.PEEK[]<offset.max>` (whole message) or, per MIME part number from
//!   BODYSTRUCTURE, `BINARY.PEEK[part]<offset.max>` (decoded; encoded without BINARY), never
//!   more than one bounded chunk in memory.
//! - **Changes** are UID STORE / UID MOVE (COPY + STORE + UID EXPUNGE without MOVE) / UID
//!   EXPUNGE, and APPEND streamed from the staged upload.
//!
//! - **Send** goes out by SMTP submission ([`smtp`]), DATA streamed from the staged upload, a
//!   copy APPENDed to Sent.
//! - **Calendars, tasks and contacts** come from the store's CalDAV/CardDAV server when
//!   `dav_url` is set ([`dav`]): folder and item ids `dav:{path}`, the same replay-safe sync.
//! - **Events**: changes made through the connector publish `mailbox:{user@domain}/{folder}`
//!   so parked EAS Pings wake.
//!
//! Credentials: see [`settings`] (a service account with Dovecot's master-user syntax by
//! default). Passwords are never logged or put into error texts.

pub mod dav;
pub mod decode;
pub mod error;
pub mod imap;
pub mod mapping;
pub mod runtime;
pub mod settings;
pub mod smtp;
pub mod state;
pub mod tls;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::{
    host, Change, Chunk, Error, Folder, FolderKind, ItemClass, ItemSummary, MailConnector,
    Principal, Result, SyncPage,
};

use crate::error::ImapError;
use crate::imap::frame;
use crate::imap::pool::{self, OpFuture};
use crate::imap::{Session, Target};
#[cfg(test)]
use crate::mapping::Flags;
use crate::mapping::MessageMeta;
use crate::settings::Settings;
use crate::state::{Delta, Known, ServerView, Token};

/// The plugin.
#[derive(Debug)]
pub struct Imap;

/// Largest chunk one fetch returns, whatever the caller asks (bounds memory per call).
const MAX_CHUNK: u32 = 4 * 1024 * 1024;
/// Sync records always kept per folder and user (the newest ones).
const KEEP_SETS: usize = 8;
/// Older records stay while used within this long (another device's state)…
const KEEP_AGE_SECS: u64 = 14 * 86_400;
/// … up to this many per folder and user; beyond, older tokens answer `conflict`.
const MAX_SETS: usize = 64;
/// How stale a record's last-use time may get before a touch rewrites it (far below
/// [`KEEP_AGE_SECS`]).
const TOUCH_SLACK_SECS: u64 = 600;

fn setup(who: &Principal) -> Result<(Settings, Target)> {
    let s = Settings::load()?;
    let t = s.target(who)?;
    Ok((s, t))
}

/// Run an operation on a pooled connection of `t`, on the connector runtime.
fn with_session<T, F>(s: &Settings, t: Target, retry: bool, op: F) -> Result<T>
where
    T: Send + 'static,
    F: for<'a> FnMut(&'a mut Session) -> OpFuture<'a, T> + Send + 'static,
{
    let max = s.max_connections;
    Ok(runtime::block(async move {
        pool::global().run(&t, max, retry, op).await
    })?)
}

fn summary(uid_validity: u32, folder: &str, m: &MessageMeta) -> ItemSummary {
    ItemSummary {
        id: mapping::item_id(uid_validity, m.uid, folder),
        folder_id: folder.to_string(),
        class: ItemClass::Email,
        size: m.size,
        timestamp_ms: m.timestamp_ms,
        subject: m.subject.clone(),
        sender: m.sender.clone(),
        read: m.flags.seen,
        flagged: m.flags.flagged,
        attachments: m.attachments.clone(),
    }
}

fn parse_item(id: &str) -> Result<(u32, u32, String)> {
    mapping::parse_item_id(id)
        .map(|(uv, uid, f)| (uv, uid, f.to_string()))
        .ok_or_else(|| Error::Invalid(format!("bad item id {id:?}")))
}

fn folder_ok(id: &str) -> Result<()> {
    if id.is_empty() || frame::quoted(id).is_none() {
        return Err(Error::Invalid(format!("bad folder id {id:?}")));
    }
    Ok(())
}

/// Folders from LIST, with parents, display names and unique kinds.
pub fn folders_from_list(entries: &[imap::session::ListEntry]) -> Vec<Folder> {
    let names: std::collections::HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut sorted: Vec<&imap::session::ListEntry> = entries
        .iter()
        .filter(|e| !e.attributes.iter().any(|a| a == "\\nonexistent"))
        .collect();
    sorted.sort_by_key(|e| (!e.name.eq_ignore_ascii_case("INBOX"), e.name.clone()));
    let mut taken = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in sorted {
        let (parent, leaf) = match e.delimiter.and_then(|d| e.name.rsplit_once(d)) {
            Some((p, l)) if names.contains(p) => (p.to_string(), l.to_string()),
            _ => (String::new(), e.name.clone()),
        };
        let top = parent.is_empty() || parent.eq_ignore_ascii_case("INBOX");
        let mut kind = mapping::folder_kind(&e.name, top, &e.attributes);
        if kind != FolderKind::UserMail && !taken.insert(kind) {
            kind = FolderKind::UserMail;
        }
        out.push(Folder {
            id: e.name.clone(),
            parent_id: parent,
            name: mapping::mutf7_decode(&leaf),
            kind,
        });
    }
    out
}

// ---- known-set records in kv ----
//
// `k/{address}/{len}:{folder}/{hash}`: a record of known UIDs and flags (state::Known);
// `ki/{address}/{len}:{folder}`: the newest record hashes of that folder, oldest first.
// The length prefix keeps one folder's prefix from matching another's ("A" vs "A/B").

fn folder_key(who: &Principal, folder: &str) -> String {
    format!("{}/{}:{folder}", who.address(), folder.len())
}

fn set_key(who: &Principal, folder: &str, hash: &[u8; 8]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("k/{}/{hex}", folder_key(who, folder))
}

fn load_known(who: &Principal, folder: &str, t: &Token) -> Result<Known> {
    Known::decode(&load_record(who, folder, &t.set_hash)?)
        .ok_or_else(|| Error::Internal(format!("corrupt sync record for {folder:?}")))
}

/// The sync record a token names; `conflict` when it is gone (evicted or never made).
pub(crate) fn load_record(who: &Principal, folder: &str, hash: &[u8; 8]) -> Result<Vec<u8>> {
    host::kv::get(&set_key(who, folder, hash))?.ok_or_else(|| {
        Error::Conflict("sync state expired or unknown; sync again from no state".into())
    })
}

fn save_known(who: &Principal, folder: &str, known: &Known) -> Result<[u8; 8]> {
    save_record(who, folder, &known.encode())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Store a record (content-addressed) and note it in the folder's index; see
/// [`touch_record`].
pub(crate) fn save_record(who: &Principal, folder: &str, bytes: &[u8]) -> Result<[u8; 8]> {
    let hash = Known::hash(bytes);
    let key = set_key(who, folder, &hash);
    if host::kv::get(&key)?.is_none() {
        host::kv::set(&key, bytes)?;
    }
    touch_record(who, folder, &hash)?;
    Ok(hash)
}

/// Mark a record as just used and evict old ones: the newest [`KEEP_SETS`] always stay,
/// others while used within [`KEEP_AGE_SECS`], at most [`MAX_SETS`] per folder and user.
/// Index entries: 8-byte hash + 8-byte seconds, big-endian.
pub(crate) fn touch_record(who: &Principal, folder: &str, hash: &[u8; 8]) -> Result<()> {
    let index_key = format!("ki/{}", folder_key(who, folder));
    let now = now_secs();
    for _ in 0..5 {
        let old = host::kv::get(&index_key)?;
        let mut entries: Vec<([u8; 8], u64)> = old
            .as_deref()
            .unwrap_or(&[])
            .chunks_exact(16)
            .filter_map(|c| {
                let h: [u8; 8] = c[..8].try_into().ok()?;
                let t = u64::from_be_bytes(c[8..].try_into().ok()?);
                Some((h, t))
            })
            .collect();
        // Already the most recently used record, marked a moment ago: nothing to write. An
        // unchanged Sync would otherwise commit (an fsync) the same index again every time;
        // ages only matter in days.
        if entries
            .last()
            .is_some_and(|(h, t)| h == hash && now.saturating_sub(*t) < TOUCH_SLACK_SECS)
        {
            return Ok(());
        }
        entries.retain(|(h, _)| h != hash);
        entries.push((*hash, now));
        let (kept, evicted) = state::evict(&entries, now, KEEP_SETS, KEEP_AGE_SECS, MAX_SETS);
        let mut new = Vec::with_capacity(kept.len() * 16);
        for (h, t) in &kept {
            new.extend_from_slice(h);
            new.extend_from_slice(&t.to_be_bytes());
        }
        let mut commit = host::Commit::new().check(&index_key, old.as_deref());
        commit = commit.set(&index_key, &new);
        for h in &evicted {
            commit = commit.delete(&set_key(who, folder, h));
        }
        if host::kv::commit(&commit)? {
            break;
        }
    }
    Ok(())
}

// ---- sync ----

struct SyncOutcome {
    changes: Vec<Change>,
    known: Known,
    uid_validity: u32,
    modseq: u64,
    last_uid: u32,
    more: bool,
    unchanged: bool,
}

async fn sync_io(
    s: &mut Session,
    folder: &str,
    token: Option<Token>,
    mut known: Known,
    max: usize,
) -> Result<SyncOutcome, ImapError> {
    let sel = s.select(folder, false, true).await?;
    if let Some(t) = token {
        if t.uid_validity != sel.uid_validity {
            return Err(ImapError::Conflict(format!(
                "UIDVALIDITY of {folder:?} changed; sync again from no state"
            )));
        }
    }
    let base = token.map(|t| t.modseq).unwrap_or(0);
    let mut last = token.map(|t| t.last_uid).unwrap_or(0);
    let hms = sel.highest_modseq;
    let mut out = SyncOutcome {
        changes: Vec::new(),
        known: Known::default(),
        uid_validity: sel.uid_validity,
        modseq: base,
        last_uid: last,
        more: false,
        unchanged: false,
    };
    if token.is_some() && base != 0 && hms == Some(base) {
        out.unchanged = true;
        out.known = known;
        return Ok(out);
    }
    let mut view = ServerView::default();
    if sel.exists == 0 {
        view.gone = known.0.keys().copied().collect();
    } else if let (Some(_), true) = (hms, base != 0) {
        if last > 0 {
            let (flags, vanished) = s.uid_flags(&format!("1:{last}"), Some(base)).await?;
            view.flags = flags.iter().map(|f| (f.uid, f.flags)).collect();
            if s.qresync() {
                view.gone = vanished;
            } else {
                let present = s.uid_search(format!("UID 1:{last}").as_bytes()).await?;
                let present: std::collections::HashSet<u32> = present.into_iter().collect();
                view.gone = known
                    .0
                    .keys()
                    .copied()
                    .filter(|u| !present.contains(u))
                    .collect();
            }
        }
        // UIDNEXT from the EXAMINE just sent says whether anything arrived above the last UID
        // handed out; the search is a round trip on every changed Sync otherwise. Mail
        // arriving after the EXAMINE has a modseq above the one this token records, so the
        // next Sync finds it.
        let nothing_new = sel.uid_next != 0 && sel.uid_next <= last.saturating_add(1);
        if !nothing_new {
            view.new = s
                .uid_search(format!("UID {}:*", last + 1).as_bytes())
                .await?
                .into_iter()
                .filter(|&u| u > last)
                .collect();
        }
    } else {
        let (flags, _) = s.uid_flags("1:*", None).await?;
        let present: std::collections::HashSet<u32> = flags.iter().map(|f| f.uid).collect();
        view.gone = known
            .0
            .keys()
            .copied()
            .filter(|u| !present.contains(u))
            .collect();
        view.new = flags
            .iter()
            .map(|f| f.uid)
            .filter(|u| !known.0.contains_key(u))
            .collect();
        view.flags = flags.iter().map(|f| (f.uid, f.flags)).collect();
    }
    let (page, more) = state::plan(&known, &view, max);
    let wanted: Vec<u32> = page
        .iter()
        .filter_map(|d| match d {
            Delta::Added(u) | Delta::Changed(u, _) => Some(*u),
            Delta::Deleted(_) => None,
        })
        .collect();
    let metas: HashMap<u32, MessageMeta> = if wanted.is_empty() {
        HashMap::new()
    } else {
        s.uid_meta(&frame::uid_set(&wanted))
            .await?
            .into_iter()
            .map(|m| (m.uid, m))
            .collect()
    };
    for d in page {
        match d {
            Delta::Deleted(u) => {
                known.0.remove(&u);
                out.changes.push(Change::Deleted(mapping::item_id(
                    sel.uid_validity,
                    u,
                    folder,
                )));
            }
            Delta::Changed(u, _) => {
                if let Some(m) = metas.get(&u) {
                    known.0.insert(u, m.flags);
                    out.changes
                        .push(Change::Changed(summary(sel.uid_validity, folder, m)));
                }
            }
            Delta::Added(u) => {
                last = last.max(u);
                if let Some(m) = metas.get(&u) {
                    known.0.insert(u, m.flags);
                    out.changes
                        .push(Change::Added(summary(sel.uid_validity, folder, m)));
                }
            }
        }
    }
    out.more = more;
    out.last_uid = last;
    out.modseq = if more { base } else { hms.unwrap_or(0) };
    out.known = known;
    Ok(out)
}

// ---- the other operations' IO ----

/// Raw (transfer-encoded) bytes of a part.
async fn raw_part(
    s: &mut Session,
    uid: u32,
    section: &str,
    offset: u64,
    max: u64,
    id: &str,
) -> Result<Vec<u8>, ImapError> {
    let max = u32::try_from(max).unwrap_or(u32::MAX);
    s.fetch_chunk(uid, section, offset, max)
        .await?
        .map(|(data, _)| data)
        .ok_or_else(|| ImapError::NoItem(id.to_string()))
}

/// A decoded range of a part from a server without BINARY (see [`decode`]).
async fn fetch_part_without_binary(
    s: &mut Session,
    uid: u32,
    section: &str,
    offset: u64,
    max: u32,
    id: &str,
) -> Result<(Vec<u8>, u64), ImapError> {
    use decode::{Base64Stream, Encoding, Layout, QpStream};
    let (encoding, octets) = s
        .part_info(uid, section)
        .await?
        .ok_or_else(|| ImapError::NoItem(format!("{id} part {section}")))?;
    let max64 = u64::from(max);
    if encoding == Encoding::Identity {
        let data = raw_part(s, uid, section, offset, max64, id).await?;
        return Ok((data, octets));
    }
    if encoding == Encoding::Base64 {
        let head = raw_part(s, uid, section, 0, 400, id).await?;
        let tail = raw_part(s, uid, section, octets.saturating_sub(8), 8, id).await?;
        let tail: Vec<u8> = tail
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let padding = tail.iter().rev().take_while(|&&b| b == b'=').count() as u64;
        if let Some(layout) = Layout::detect(&head, octets) {
            let total = layout.decoded_len(padding);
            let (start, n, skip) = layout.range(offset, max64);
            if n == 0 {
                return Ok((Vec::new(), total));
            }
            let raw = raw_part(s, uid, section, start, n, id).await?;
            if raw.len() as u64 == n && layout.fits(start, &raw) {
                let mut out = Vec::new();
                Base64Stream::default().push(&raw, &mut out);
                let data = out
                    .into_iter()
                    .skip(skip as usize)
                    .take(max as usize)
                    .collect();
                return Ok((data, total));
            }
        }
    }
    // Irregular layout or quoted-printable: decode from the start, keeping only the range.
    const STEP: u64 = 256 * 1024;
    let mut b64 = Base64Stream::default();
    let mut qp = QpStream::default();
    let mut decoded_at = 0u64;
    let mut data = Vec::new();
    let mut at = 0u64;
    let mut out = Vec::new();
    loop {
        let raw = raw_part(s, uid, section, at, STEP, id).await?;
        let last = raw.is_empty() || at + raw.len() as u64 >= octets;
        at += raw.len() as u64;
        out.clear();
        match encoding {
            Encoding::Base64 => b64.push(&raw, &mut out),
            _ => {
                qp.push(&raw, &mut out);
                if last {
                    qp.finish(&mut out);
                }
            }
        }
        let chunk_start = decoded_at;
        decoded_at += out.len() as u64;
        if data.len() < max as usize && decoded_at > offset {
            let from = offset.saturating_sub(chunk_start) as usize;
            let want = max as usize - data.len();
            data.extend(out.iter().skip(from).take(want));
        }
        if last {
            return Ok((data, decoded_at));
        }
    }
}

/// Select `folder` and check the item's UIDVALIDITY and existence.
async fn locate(
    s: &mut Session,
    folder: &str,
    uv: u32,
    uid: u32,
    writable: bool,
    id: &str,
) -> Result<(), ImapError> {
    let sel = s.select(folder, writable, false).await?;
    if sel.uid_validity != uv {
        return Err(ImapError::NoItem(id.to_string()));
    }
    let (flags, _) = s.uid_flags(&uid.to_string(), None).await?;
    if !flags.iter().any(|f| f.uid == uid) {
        return Err(ImapError::NoItem(id.to_string()));
    }
    Ok(())
}

fn search_criteria(s: &Session, query: &str) -> Result<Vec<u8>, ImapError> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(b"ALL".to_vec());
    }
    if let Some(q) = frame::quoted(query) {
        return Ok(format!("TEXT {q}").into_bytes());
    }
    if query.contains(['\r', '\n', '\0']) {
        return Err(ImapError::Invalid("search text with line breaks".into()));
    }
    if !s.has("LITERAL+") {
        return Err(ImapError::Unsupported(
            "LITERAL+ (for non-ASCII search text)",
        ));
    }
    let mut c = format!("CHARSET UTF-8 TEXT {{{}+}}\r\n", query.len()).into_bytes();
    c.extend_from_slice(query.as_bytes());
    Ok(c)
}

/// Tell parked requests (EAS Ping) that a folder (`Some`) or the folder list (`None`)
/// changed through this connector: `mailbox:{user@domain}/{folder id}` or
/// `mailbox:{user@domain}`. Changes made on the IMAP server by other clients are announced
/// by the watch a parked Ping starts ([`watch`]).
fn announce(who: &Principal, folder: Option<&str>) {
    let key = match folder {
        Some(f) => switchboard_sdk::mail::folder_event(who, f),
        None => switchboard_sdk::mail::hierarchy_event(who),
    };
    if let Err(e) = host::events::publish(&key) {
        host::log::warn(&format!("publishing {key}: {e}"));
    }
}

/// The IMAP mailboxes only (no DAV round trip), for internal lookups.
fn mail_folders(who: &Principal) -> Result<Vec<Folder>> {
    let (s, t) = setup(who)?;
    let entries = with_session(&s, t, true, |sess| Box::pin(sess.list()))?;
    Ok(folders_from_list(&entries))
}

/// The DAV folder id holding a DAV item id.
fn dav_folder_of(item_id: &str) -> String {
    match item_id.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => item_id.to_string(),
    }
}

/// A folder name a client may give: non-empty, no control characters, no delimiter.
fn check_name(name: &str, delimiter: char) -> Result<String, ImapError> {
    if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == delimiter) {
        return Err(ImapError::Invalid(format!("bad folder name {name:?}")));
    }
    Ok(mapping::mutf7_encode(name))
}

fn quoted_folder(id: &str) -> Result<String, ImapError> {
    frame::quoted(id).ok_or_else(|| ImapError::Invalid(format!("bad folder id {id:?}")))
}

/// NO answers to CREATE/RENAME: an existing name is a conflict, anything else as it is.
fn name_conflict(e: ImapError, name: &str) -> ImapError {
    match e {
        ImapError::No { text, .. }
            if text.to_ascii_lowercase().contains("exists") || text.contains("ALREADYEXISTS") =>
        {
            ImapError::Conflict(format!("a folder {name:?} already exists"))
        }
        other => other,
    }
}

fn user_kind(kind: FolderKind) -> FolderKind {
    match kind {
        FolderKind::UserCalendar
        | FolderKind::UserContacts
        | FolderKind::UserTasks
        | FolderKind::UserNotes => kind,
        _ => FolderKind::UserMail,
    }
}

impl MailConnector for Imap {
    fn watch(who: &Principal, folder_ids: &[String], timeout_ms: u32) -> Result<()> {
        let s = Settings::load()?;
        if s.max_watchers == 0 {
            return Ok(());
        }
        let folders: Vec<String> = folder_ids
            .iter()
            .filter(|f| !f.starts_with(dav::PREFIX) && folder_ok(f).is_ok())
            .cloned()
            .collect();
        if folders.is_empty() {
            return Ok(());
        }
        let Some(publisher) = host::events::publisher() else {
            host::log::warn(
                "imap: the host offers no background publisher; folders are not watched",
            );
            return Ok(());
        };
        let plan = watch::Plan {
            idle: s.idle,
            poll: s.watch_poll,
            max: s.max_watchers,
        };
        let timeout = std::time::Duration::from_millis(timeout_ms.into());
        if watch::start(who, s.target(who)?, &folders, timeout, plan, publisher)?
            == watch::Started::Full
        {
            host::log::warn(&format!(
                "imap: {} users are watched already (max_watchers); {}'s Ping waits for its timeout",
                s.max_watchers,
                who.address()
            ));
        }
        Ok(())
    }

    fn create_folder(
        who: &Principal,
        parent_id: &str,
        name: &str,
        kind: FolderKind,
    ) -> Result<Folder> {
        if !parent_id.is_empty() {
            folder_ok(parent_id)?;
        }
        let (s, t) = setup(who)?;
        let (parent, name_s) = (parent_id.to_string(), name.to_string());
        let id = with_session(&s, t, false, move |sess| {
            let (parent, name) = (parent.clone(), name_s.clone());
            Box::pin(async move {
                let delim = sess.delimiter().await?;
                let leaf = check_name(&name, delim)?;
                let id = if parent.is_empty() {
                    leaf
                } else {
                    format!("{parent}{delim}{leaf}")
                };
                let q = quoted_folder(&id)?;
                sess.command(&format!("CREATE {q}"))
                    .await
                    .map_err(|e| name_conflict(e, &name))?;
                let _ = sess.command(&format!("SUBSCRIBE {q}")).await;
                Ok(id)
            })
        })?;
        announce(who, None);
        Ok(Folder {
            id,
            parent_id: parent_id.to_string(),
            name: name.to_string(),
            kind: user_kind(kind),
        })
    }

    fn update_folder(who: &Principal, id: &str, parent_id: &str, name: &str) -> Result<Folder> {
        folder_ok(id)?;
        if !parent_id.is_empty() {
            folder_ok(parent_id)?;
        }
        if id.eq_ignore_ascii_case("INBOX") {
            return Err(Error::Denied("INBOX cannot be renamed or moved".into()));
        }
        let (s, t) = setup(who)?;
        let (old, parent, name_s) = (id.to_string(), parent_id.to_string(), name.to_string());
        let new_id = with_session(&s, t, false, move |sess| {
            let (old, parent, name) = (old.clone(), parent.clone(), name_s.clone());
            Box::pin(async move {
                let delim = sess.delimiter().await?;
                let leaf = check_name(&name, delim)?;
                let new = if parent.is_empty() {
                    leaf
                } else {
                    format!("{parent}{delim}{leaf}")
                };
                if new == old {
                    return Ok(new);
                }
                sess.unselect().await?;
                sess.command(&format!(
                    "RENAME {} {}",
                    quoted_folder(&old)?,
                    quoted_folder(&new)?
                ))
                .await
                .map_err(|e| match name_conflict(e, &name) {
                    ImapError::No { .. } => ImapError::NoMailbox(old.clone()),
                    other => other,
                })?;
                let _ = sess
                    .command(&format!("SUBSCRIBE {}", quoted_folder(&new)?))
                    .await;
                Ok(new)
            })
        })?;
        let kind = mail_folders(who)?
            .into_iter()
            .find(|f| f.id == new_id)
            .map(|f| f.kind)
            .unwrap_or(FolderKind::UserMail);
        announce(who, None);
        Ok(Folder {
            id: new_id,
            parent_id: parent_id.to_string(),
            name: name.to_string(),
            kind,
        })
    }

    fn delete_folder(who: &Principal, id: &str) -> Result<()> {
        folder_ok(id)?;
        if id.eq_ignore_ascii_case("INBOX") {
            return Err(Error::Denied("INBOX cannot be deleted".into()));
        }
        // Children first, deepest first (servers refuse to delete a folder with children).
        let all = mail_folders(who)?;
        let mut doomed = vec![id.to_string()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                all.iter()
                    .filter(|f| f.parent_id == parent)
                    .map(|f| f.id.clone()),
            );
            i += 1;
        }
        doomed.reverse();
        let (s, t) = setup(who)?;
        let target = id.to_string();
        with_session(&s, t, false, move |sess| {
            let (doomed, target) = (doomed.clone(), target.clone());
            Box::pin(async move {
                sess.unselect().await?;
                for f in &doomed {
                    let q = quoted_folder(f)?;
                    let _ = sess.command(&format!("UNSUBSCRIBE {q}")).await;
                    match sess.command(&format!("DELETE {q}")).await {
                        Ok(_) => {}
                        Err(ImapError::No { .. }) if f == &target => {
                            return Err(ImapError::NoMailbox(target.clone()))
                        }
                        Err(ImapError::No { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        })?;
        announce(who, None);
        Ok(())
    }

    fn replace_item(who: &Principal, item_id: &str, content: Upload) -> Result<ItemSummary> {
        if let Some(path) = dav::path_of(item_id) {
            let item = dav::store::replace(who, path, &content)?;
            announce(who, Some(&dav_folder_of(item_id)));
            return Ok(item);
        }
        // IMAP messages are immutable: store the new version, then remove the old one.
        let (uv, uid, folder) = parse_item(item_id)?;
        let (s, t) = setup(who)?;
        let id = item_id.to_string();
        let f2 = folder.clone();
        let flags = with_session(&s, t.clone(), true, move |sess| {
            let (folder, id) = (f2.clone(), id.clone());
            Box::pin(async move {
                locate(sess, &folder, uv, uid, false, &id).await?;
                let (flags, _) = sess.uid_flags(&uid.to_string(), None).await?;
                Ok(flags.first().map(|f| f.flags).unwrap_or_default())
            })
        })?;
        let mut imap_flags = Vec::new();
        if flags.seen {
            imap_flags.push("\\Seen");
        }
        if flags.flagged {
            imap_flags.push("\\Flagged");
        }
        let new = Self::create_item_with_flags(who, &folder, &content, &imap_flags.join(" "))?;
        Self::delete_item(who, item_id)?;
        Ok(new)
    }

    fn list_folders(who: &Principal) -> Result<Vec<Folder>> {
        let mut folders = mail_folders(who)?;
        // Calendars and address books come from the DAV server, when one is configured; mail
        // stays usable when it is down.
        match dav::store::list_folders(who) {
            Ok(more) => folders.extend(more),
            Err(e) => host::log::warn(&format!(
                "CalDAV/CardDAV folders of {} left out: {e}",
                who.address()
            )),
        }
        Ok(folders)
    }

    fn sync(who: &Principal, folder_id: &str, state: Option<&str>, max: u32) -> Result<SyncPage> {
        if let Some(path) = dav::path_of(folder_id) {
            return dav::store::sync(who, folder_id, path, state, max);
        }
        folder_ok(folder_id)?;
        let token = match state {
            None => None,
            Some(s) => Some(
                Token::decode(s).ok_or_else(|| Error::Invalid(format!("bad sync state {s:?}")))?,
            ),
        };
        let known = match &token {
            Some(t) => load_known(who, folder_id, t)?,
            None => Known::default(),
        };
        let (s, t) = setup(who)?;
        let folder = folder_id.to_string();
        let max = if max == 0 { 100 } else { max as usize };
        let out = with_session(&s, t, true, move |sess| {
            let folder = folder.clone();
            let known = known.clone();
            Box::pin(async move { sync_io(sess, &folder, token, known, max).await })
        })?;
        if out.unchanged {
            if let (Some(t), Some(state), false) = (&token, state, out.more) {
                touch_record(who, folder_id, &t.set_hash)?;
                return Ok(SyncPage {
                    changes: Vec::new(),
                    state: state.to_string(),
                    more: false,
                });
            }
        }
        let set_hash = save_known(who, folder_id, &out.known)?;
        let token = Token {
            uid_validity: out.uid_validity,
            modseq: out.modseq,
            last_uid: out.last_uid,
            set_hash,
        };
        Ok(SyncPage {
            changes: out.changes,
            state: token.encode(),
            more: out.more,
        })
    }

    fn fetch(
        who: &Principal,
        item_id: &str,
        part_id: Option<&str>,
        offset: u64,
        max: u32,
    ) -> Result<Chunk> {
        if let Some(path) = dav::path_of(item_id) {
            if part_id.is_some() {
                return Err(Error::NotFound(
                    "calendar and contact items have no parts".into(),
                ));
            }
            return dav::store::fetch(who, path, offset, max.min(MAX_CHUNK));
        }
        let (uv, uid, folder) = parse_item(item_id)?;
        let section = match part_id {
            None => String::new(),
            Some(p) if mapping::valid_part(p) => p.to_string(),
            Some(p) => return Err(Error::Invalid(format!("bad part id {p:?}"))),
        };
        let max = max.min(MAX_CHUNK);
        let (s, t) = setup(who)?;
        let id = item_id.to_string();
        let (data, total) = with_session(&s, t, true, move |sess| {
            let (folder, section, id) = (folder.clone(), section.clone(), id.clone());
            Box::pin(async move {
                let sel = sess.select(&folder, false, false).await?;
                if sel.uid_validity != uv {
                    return Err(ImapError::NoItem(id));
                }
                if !section.is_empty() && !sess.has("BINARY") {
                    return fetch_part_without_binary(sess, uid, &section, offset, max, &id).await;
                }
                sess.fetch_chunk(uid, &section, offset, max)
                    .await?
                    .ok_or(ImapError::NoItem(id))
            })
        })?;
        Ok(Chunk { data, total })
    }

    fn set_flags(
        who: &Principal,
        item_id: &str,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<()> {
        if dav::path_of(item_id).is_some() {
            return Err(Error::Denied(
                "calendar and contact items have no read or follow-up flags".into(),
            ));
        }
        let (uv, uid, folder) = parse_item(item_id)?;
        let mut stores = Vec::new();
        for (value, flag) in [(read, "\\Seen"), (flagged, "\\Flagged")] {
            match value {
                Some(true) => stores.push(format!("+FLAGS.SILENT ({flag})")),
                Some(false) => stores.push(format!("-FLAGS.SILENT ({flag})")),
                None => {}
            }
        }
        if stores.is_empty() {
            return Ok(());
        }
        let (s, t) = setup(who)?;
        let id = item_id.to_string();
        let folder_s = folder.clone();
        with_session(&s, t, true, move |sess| {
            let (folder, id, stores) = (folder.clone(), id.clone(), stores.clone());
            Box::pin(async move {
                locate(sess, &folder, uv, uid, true, &id).await?;
                for st in &stores {
                    sess.uid_store(&uid.to_string(), st).await?;
                }
                Ok(())
            })
        })?;
        announce(who, Some(&folder_s));
        Ok(())
    }

    fn move_item(who: &Principal, item_id: &str, to_folder_id: &str) -> Result<String> {
        if dav::path_of(item_id).is_some() || dav::path_of(to_folder_id).is_some() {
            return Err(Error::Denied(
                "moving calendar and contact items is not supported yet".into(),
            ));
        }
        let (uv, uid, folder) = parse_item(item_id)?;
        folder_ok(to_folder_id)?;
        if folder == to_folder_id {
            return Ok(item_id.to_string());
        }
        let (s, t) = setup(who)?;
        let (id, to) = (item_id.to_string(), to_folder_id.to_string());
        let from = folder.clone();
        let new_id = with_session(&s, t, false, move |sess| {
            let (folder, id, to) = (folder.clone(), id.clone(), to.clone());
            Box::pin(async move {
                locate(sess, &folder, uv, uid, true, &id).await?;
                match sess.uid_move(&uid.to_string(), &to).await {
                    Ok((Some(new_uv), uids)) if uids.len() == 1 => {
                        Ok(mapping::item_id(new_uv, uids[0], &to))
                    }
                    Ok(_) => Err(ImapError::Unsupported(
                        "UIDPLUS (the moved item's new id is unknown)",
                    )),
                    Err(ImapError::No { text, .. }) if text.contains("TRYCREATE") => {
                        Err(ImapError::NoMailbox(to))
                    }
                    Err(ImapError::No { .. }) => Err(ImapError::NoMailbox(to)),
                    Err(e) => Err(e),
                }
            })
        })?;
        announce(who, Some(&from));
        announce(who, Some(to_folder_id));
        Ok(new_id)
    }

    fn delete_item(who: &Principal, item_id: &str) -> Result<()> {
        if let Some(path) = dav::path_of(item_id) {
            dav::store::delete(who, path)?;
            announce(who, Some(&dav_folder_of(item_id)));
            return Ok(());
        }
        let (uv, uid, folder) = parse_item(item_id)?;
        let (s, t) = setup(who)?;
        let id = item_id.to_string();
        let folder_s = folder.clone();
        with_session(&s, t, true, move |sess| {
            let (folder, id) = (folder.clone(), id.clone());
            Box::pin(async move {
                locate(sess, &folder, uv, uid, true, &id).await?;
                sess.uid_delete(&uid.to_string()).await
            })
        })?;
        announce(who, Some(&folder_s));
        Ok(())
    }

    fn create_item(who: &Principal, folder_id: &str, content: Upload) -> Result<ItemSummary> {
        if let Some(path) = dav::path_of(folder_id) {
            let item = dav::store::create(who, folder_id, path, &content)?;
            announce(who, Some(folder_id));
            return Ok(item);
        }
        Self::create_item_with_flags(who, folder_id, &content, "")
    }

    fn send(who: &Principal, mime: Upload, save_copy: bool) -> Result<()> {
        send_message(who, &mime, save_copy)
    }

    fn search(
        who: &Principal,
        folder_id: Option<&str>,
        query: &str,
        max: u32,
    ) -> Result<Vec<ItemSummary>> {
        let folders: Vec<String> = match folder_id {
            Some(f) => {
                folder_ok(f)?;
                vec![f.to_string()]
            }
            None => mail_folders(who)?
                .into_iter()
                .map(|f| f.id)
                .filter(|id| dav::path_of(id).is_none())
                .collect(),
        };
        if folders.iter().any(|f| dav::path_of(f).is_some()) {
            return Ok(Vec::new()); // search covers mail only
        }
        let (s, t) = setup(who)?;
        let max = (max.max(1) as usize).min(1000);
        let query = query.to_string();
        let mut found = with_session(&s, t, true, move |sess| {
            let (folders, query) = (folders.clone(), query.clone());
            Box::pin(async move {
                let mut out = Vec::new();
                let criteria = search_criteria(sess, &query)?;
                for folder in &folders {
                    let sel = match sess.select(folder, false, true).await {
                        Ok(sel) => sel,
                        Err(ImapError::NoMailbox(_)) if folders.len() > 1 => continue,
                        Err(e) => return Err(e),
                    };
                    if sel.exists == 0 {
                        continue;
                    }
                    let mut uids = sess.uid_search(&criteria).await?;
                    uids.reverse();
                    uids.truncate(max);
                    if uids.is_empty() {
                        continue;
                    }
                    for m in sess.uid_meta(&frame::uid_set(&uids)).await? {
                        out.push(summary(sel.uid_validity, folder, &m));
                    }
                }
                Ok(out)
            })
        })?;
        found.sort_by(|a, b| b.timestamp_ms.cmp(&a.timestamp_ms).then(b.id.cmp(&a.id)));
        found.truncate(max);
        Ok(found)
    }
}

impl Imap {
    /// APPEND a staged item with the given flags and return its summary.
    fn create_item_with_flags(
        who: &Principal,
        folder_id: &str,
        content: &Upload,
        flags: &str,
    ) -> Result<ItemSummary> {
        folder_ok(folder_id)?;
        let (s, t) = setup(who)?;
        let (uv, uid) = append_upload(&s, t.clone(), folder_id, flags, content)?;
        let folder = folder_id.to_string();
        let metas = with_session(&s, t, true, move |sess| {
            let folder = folder.clone();
            Box::pin(async move {
                sess.select(&folder, false, true).await?;
                sess.uid_meta(&uid.to_string()).await
            })
        })?;
        let m = metas
            .into_iter()
            .find(|m| m.uid == uid)
            .ok_or_else(|| Error::NotFound(format!("new item {uid} in {folder_id:?}")))?;
        announce(who, Some(folder_id));
        Ok(summary(uv, folder_id, &m))
    }
}

/// Chunks of a staged upload on their way from the calling thread (where staging reads must
/// happen) to the connector runtime (which writes them to a server).
#[derive(Clone)]
struct ChunkSource(Arc<Mutex<std::sync::mpsc::Receiver<Vec<u8>>>>);

impl ChunkSource {
    /// The next chunk; `None` at the end (or when the reader gave up).
    async fn next(&self) -> Option<Vec<u8>> {
        let rx = self.0.clone();
        tokio::task::spawn_blocking(move || rx.lock().ok().and_then(|r| r.recv().ok()))
            .await
            .ok()
            .flatten()
    }
}

/// Start `start` (which gets the chunk source and spawns the network side), then feed it the
/// upload from `offset` in 64 KiB chunks on this thread, and wait for its result.
fn stream_upload<T: Send + 'static>(
    content: &Upload,
    offset: u64,
    start: impl FnOnce(
        ChunkSource,
    ) -> Result<std::sync::mpsc::Receiver<Result<T, ImapError>>, ImapError>,
) -> Result<T> {
    const CHUNK: u32 = 64 * 1024;
    let size = content.size()?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    let result = start(ChunkSource(Arc::new(Mutex::new(rx))))?;
    let mut at = offset;
    let mut read_error = None;
    while at < size {
        match content.read(at, CHUNK) {
            Ok(chunk) if chunk.is_empty() => break,
            Ok(chunk) => {
                at += chunk.len() as u64;
                if tx.send(chunk).is_err() {
                    break;
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let out = runtime::wait(result);
    if let Some(e) = read_error {
        return Err(e);
    }
    Ok(out?)
}

/// APPEND a staged upload; returns (UIDVALIDITY, UID).
fn append_upload(
    s: &Settings,
    t: Target,
    folder: &str,
    flags: &str,
    content: &Upload,
) -> Result<(u32, u32)> {
    let size = content.size()?;
    let (folder, flags) = (folder.to_string(), flags.to_string());
    let max = s.max_connections;
    let appended = stream_upload(content, 0, move |source| {
        runtime::spawn(async move {
            pool::global()
                .run(&t, max, false, move |sess| {
                    let (folder, flags, source) = (folder.clone(), flags.clone(), source.clone());
                    Box::pin(async move {
                        sess.append(&folder, &flags, size, move || {
                            let source = source.clone();
                            async move { source.next().await }
                        })
                        .await
                    })
                })
                .await
        })
    })?;
    appended.ok_or_else(|| ImapError::Unsupported("UIDPLUS (APPENDUID)").into())
}

/// Read the header block of a staged message (bounded by [`smtp::MAX_HEADER_BYTES`]).
fn read_headers(content: &Upload) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = smtp::header_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > smtp::MAX_HEADER_BYTES {
            return Err(Error::Invalid("message header block too large".into()));
        }
        let chunk = content.read(buf.len() as u64, 16 * 1024)?;
        if chunk.is_empty() {
            return Err(Error::Invalid("message has no body separator".into()));
        }
        buf.extend_from_slice(&chunk);
    }
}

fn send_message(who: &Principal, mime: &Upload, save_copy: bool) -> Result<()> {
    let settings = Settings::load()?;
    let headers = read_headers(mime)?;
    let rcpts = smtp::recipients(&headers);
    if rcpts.is_empty() {
        return Err(Error::Invalid(
            "the message names no recipients (To, Cc, Bcc)".into(),
        ));
    }
    let transmitted = switchboard_sdk::mail::without_bcc(&headers);
    let target = settings.smtp_target(who)?;
    let from = who.address();
    stream_upload(mime, headers.len() as u64, move |source| {
        runtime::spawn(async move {
            smtp::submit(&target, &from, &rcpts, &transmitted, move || {
                let source = source.clone();
                async move { source.next().await }
            })
            .await
        })
    })?;
    if save_copy {
        // The message is on its way; failing to keep a copy must not make the client send it
        // again, so this only logs.
        let saved = mail_folders(who).and_then(|folders| {
            let sent = folders
                .iter()
                .find(|f| f.kind == FolderKind::Sent)
                .map(|f| f.id.clone())
                .unwrap_or_else(|| "Sent".to_string());
            append_upload(&settings, settings.target(who)?, &sent, "\\Seen", mime)?;
            announce(who, Some(&sent));
            Ok(())
        });
        if let Err(e) = saved {
            host::log::warn(&format!(
                "sent a message for {} but could not keep a copy in Sent: {e}",
                who.address()
            ));
        }
    }
    Ok(())
}

switchboard_sdk::export_native!(mail_connector: Imap);

/// Whatever a server, a client or a stored record hands these functions, they answer without
/// panicking, and the codecs round-trip.
#[cfg(test)]
mod no_panics {
    use super::*;
    use proptest::prelude::*;

    fn frame_of(data: Vec<u8>, cut: usize) -> frame::Frame {
        let cut = cut.min(data.len());
        let lit = cut..data.len();
        frame::Frame {
            data,
            literals: vec![lit],
        }
    }

    proptest! {
        #[test]
        fn parsers_take_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
            let text = String::from_utf8_lossy(&data).into_owned();
            let _ = Token::decode(&text);
            // Bounded by MAX_KNOWN, but a corrupt run can still ask for millions of UIDs:
            // keep the generated records to a size a debug build decodes quickly.
            if data.len() < 8 || data.iter().take(8).all(|b| b & 0x80 == 0) {
                let _ = Known::decode(&data);
            }
            let _ = mapping::decode_words(&data);
            let _ = mapping::mutf7_decode(&text);
            let _ = mapping::internal_date_ms(&text);
            let _ = mapping::parse_item_id(&text);
            let _ = frame::literal_len(&data);
            let _ = frame::search(&text);
            let _ = frame::capabilities(&text);
            let _ = frame::parse_uid_set(&text);
            let f = frame_of(data.clone(), cut);
            let _ = frame::parse_done(&f, "S1");
            let _ = frame::section_chunk(&f, "RFC822.SIZE ");
            let _ = f.text();
            let _ = smtp::recipients(&data);
            let _ = switchboard_sdk::mail::without_bcc(&data);
            let _ = smtp::header_end(&data);
            let mut out = Vec::new();
            decode::Base64Stream::default().push(&data, &mut out);
            let mut qp = decode::QpStream::default();
            qp.push(&data, &mut out);
            qp.finish(&mut out);
            if let Ok((_, imap_proto::Response::Fetch(_, attrs))) = imap_proto::parser::parse_response(&data) {
                let _ = mapping::meta_from_fetch(&attrs);
            }
        }

        #[test]
        fn codecs_round_trip(
            name in "\\PC{0,20}",
            uids in proptest::collection::btree_map(1u32..5000, 0u8..4, 0..200),
            uv in any::<u32>(), modseq in any::<u64>(), last in any::<u32>(), hash in any::<[u8; 8]>(),
        ) {
            prop_assert_eq!(mapping::mutf7_decode(&mapping::mutf7_encode(&name)), name.clone());
            let known = Known(uids.into_iter().map(|(u, b)| (u, Flags::from_bits(b))).collect());
            prop_assert_eq!(Known::decode(&known.encode()), Some(known));
            let t = Token { uid_validity: uv, modseq, last_uid: last, set_hash: hash };
            let s = t.encode();
            prop_assert!(s.len() <= 64);
            prop_assert_eq!(Token::decode(&s), Some(t));
        }
    }
}

#[cfg(test)]
mod records {
    use super::*;
    use switchboard_sdk::mock::MockHost;

    fn index(entries: &[([u8; 8], u64)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|(h, t)| h.iter().copied().chain(t.to_be_bytes()))
            .collect()
    }

    #[test]
    fn touching_the_newest_record_again_writes_only_when_its_time_is_stale() {
        let host = MockHost::new();
        let who = Principal::parse("alice@example.com").unwrap();
        let index_key = format!("ki/{}", folder_key(&who, "INBOX"));
        let (a, b) = ([1u8; 8], [2u8; 8]);
        let now = now_secs();
        host.run(|| {
            // `b` is the newest, used five minutes ago: an unchanged Sync leaves the index alone.
            let fresh = index(&[(a, now - 900), (b, now - 300)]);
            host::kv::set(&index_key, &fresh).unwrap();
            touch_record(&who, "INBOX", &b).unwrap();
            assert_eq!(host::kv::get(&index_key).unwrap().unwrap(), fresh);

            // Touching the older record moves it to the end with the current time.
            touch_record(&who, "INBOX", &a).unwrap();
            let moved = host::kv::get(&index_key).unwrap().unwrap();
            assert_eq!(&moved[..8], &b);
            assert_eq!(&moved[16..24], &a);
            let t = u64::from_be_bytes(moved[24..32].try_into().unwrap());
            assert!(t >= now, "{t} < {now}");

            // The newest record, but marked long ago: its time is renewed.
            let stale = index(&[(a, now - 5000), (b, now - 3000)]);
            host::kv::set(&index_key, &stale).unwrap();
            touch_record(&who, "INBOX", &b).unwrap();
            let renewed = host::kv::get(&index_key).unwrap().unwrap();
            assert_eq!(&renewed[16..24], &b);
            let t = u64::from_be_bytes(renewed[24..32].try_into().unwrap());
            assert!(t >= now, "{t} < {now}");
        });
    }
}
