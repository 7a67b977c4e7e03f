//! One IMAP connection: framing on top of tokio, tagged commands with timeouts, and the
//! commands the connector needs. Responses are parsed with `imap-proto` (FETCH, LIST) or by
//! the small scanners in [`super::frame`] (status codes, SEARCH, chunks).

use std::time::{Duration, Instant};

use base64::Engine;
use imap_proto::types::{AttributeValue, MailboxDatum, NameAttribute, Response};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::frame::{self, Frame, Status};
use crate::error::{ImapError, Result};
use crate::mapping::{self, Flags, MessageMeta};
use crate::tls::{self, Mode};

/// A byte stream an IMAP session runs over (plain TCP today; TLS plugs in here).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where and how to connect and log in.
#[derive(Clone)]
pub struct Target {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Login name (e.g. `alice@example.com*master`).
    pub login: String,
    /// Password of the login. Never logged or shown in errors.
    pub password: String,
    /// Limit for connecting and for each command.
    pub timeout: Duration,
    /// Largest response accepted (bytes).
    pub max_response: usize,
    /// Use CONDSTORE/QRESYNC when the server offers them.
    pub condstore: bool,
    /// Plain, STARTTLS or implicit TLS.
    pub tls: crate::tls::Mode,
    /// PEM file of trusted CAs instead of the public roots.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("login", &self.login)
            .field("tls", &self.tls)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Target {
    /// `host:port` for messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A mailbox from LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Wire name (modified UTF-7).
    pub name: String,
    /// Hierarchy delimiter, if any.
    pub delimiter: Option<char>,
    /// Attributes, lower-cased with backslash (`\sent`, `\noselect`).
    pub attributes: Vec<String>,
}

/// What SELECT/EXAMINE told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Selected {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT (0 when the server did not say).
    pub uid_next: u32,
    /// Messages.
    pub exists: u32,
    /// HIGHESTMODSEQ when CONDSTORE is on for this mailbox.
    pub highest_modseq: Option<u64>,
}

/// Flags (and modseq) of one message from a flags-only FETCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidFlags {
    /// UID.
    pub uid: u32,
    /// Seen / flagged.
    pub flags: Flags,
}

/// One logged-in IMAP connection.
pub struct Session {
    io: BufReader<Box<dyn Io>>,
    addr: String,
    tag: u32,
    caps: Vec<String>,
    timeout: Duration,
    max_response: usize,
    selected: Option<(String, bool, Selected)>,
    condstore: bool,
    qresync: bool,
    /// When the session last finished a command (pool housekeeping).
    pub last_used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.addr)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

fn lost(addr: &str, e: impl std::fmt::Display) -> ImapError {
    ImapError::Lost {
        addr: addr.to_string(),
        reason: e.to_string(),
    }
}

impl Session {
    /// Connect, read the greeting, log in, and enable QRESYNC/CONDSTORE when wanted.
    pub async fn open(t: &Target) -> Result<Session> {
        let addr = t.addr();
        let stream =
            match tokio::time::timeout(t.timeout, TcpStream::connect((t.host.as_str(), t.port)))
                .await
            {
                Err(_) => {
                    return Err(ImapError::Timeout {
                        addr,
                        secs: t.timeout.as_secs(),
                    })
                }
                Ok(Err(source)) => return Err(ImapError::Unreachable { addr, source }),
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
        let mut io: Box<dyn Io> = Box::new(stream);
        let timeout = |addr: &str| ImapError::Timeout {
            addr: addr.to_string(),
            secs: t.timeout.as_secs(),
        };
        if t.tls == Mode::Implicit {
            io = tokio::time::timeout(
                t.timeout,
                tls::wrap(io, &t.host, &addr, t.ca_file.as_deref()),
            )
            .await
            .map_err(|_| timeout(&addr))??;
        }
        let mut s = Session {
            io: BufReader::with_capacity(64 * 1024, io),
            addr,
            tag: 0,
            caps: Vec::new(),
            timeout: t.timeout,
            max_response: t.max_response,
            selected: None,
            condstore: false,
            qresync: false,
            last_used: Instant::now(),
        };
        let greeting = s.timed(|s| Box::pin(s.read_frame())).await?;
        let text = greeting.text();
        if !text.to_ascii_uppercase().starts_with("* OK") {
            return Err(lost(&s.addr, format!("greeting: {}", text.trim_end())));
        }
        if let Some(caps) = frame::capabilities(&text) {
            s.caps = caps;
        }
        if s.caps.is_empty() {
            s.capability().await?;
        }
        if t.tls == Mode::StartTls {
            s.starttls(t).await?;
        }
        s.login(&t.login, &t.password).await?;
        if t.condstore {
            if s.has("QRESYNC") && s.has("ENABLE") {
                s.command("ENABLE QRESYNC").await?;
                s.qresync = true;
                s.condstore = true;
            } else if s.has("CONDSTORE") {
                // CONDSTORE is enabled by the first SELECT … (CONDSTORE).
                s.condstore = true;
            }
        }
        Ok(s)
    }

    /// Upgrade with STARTTLS; refuses servers that do not offer it (no silent plaintext).
    async fn starttls(&mut self, t: &Target) -> Result<()> {
        if !self.has("STARTTLS") {
            return Err(ImapError::Tls {
                addr: self.addr.clone(),
                reason: "the server does not offer STARTTLS".into(),
            });
        }
        self.command("STARTTLS").await?;
        if !self.io.buffer().is_empty() {
            // Bytes sent before the handshake would be trusted after it (CVE-2011-0411 class).
            return Err(ImapError::Tls {
                addr: self.addr.clone(),
                reason: "unexpected data after STARTTLS".into(),
            });
        }
        let placeholder: Box<dyn Io> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.io, BufReader::new(placeholder)).into_inner();
        let secured = tokio::time::timeout(
            self.timeout,
            tls::wrap(plain, &t.host, &self.addr, t.ca_file.as_deref()),
        )
        .await
        .map_err(|_| ImapError::Timeout {
            addr: self.addr.clone(),
            secs: self.timeout.as_secs(),
        })??;
        self.io = BufReader::with_capacity(64 * 1024, secured);
        self.caps.clear();
        self.capability().await
    }

    /// Has the server announced capability `cap` (upper-case)?
    pub fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }

    /// CONDSTORE in use on this connection.
    pub fn condstore(&self) -> bool {
        self.condstore
    }

    /// QRESYNC in use on this connection.
    pub fn qresync(&self) -> bool {
        self.qresync
    }

    async fn timed<'a, T>(
        &'a mut self,
        f: impl FnOnce(
            &'a mut Session,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>,
    ) -> Result<T> {
        let (addr, secs, limit) = (self.addr.clone(), self.timeout.as_secs(), self.timeout);
        match tokio::time::timeout(limit, f(self)).await {
            Ok(r) => r,
            Err(_) => Err(ImapError::Timeout { addr, secs }),
        }
    }

    /// Read one complete response (lines plus literals).
    async fn read_frame(&mut self) -> Result<Frame> {
        let mut f = Frame::default();
        loop {
            let limit = self.max_response.saturating_sub(f.data.len()) as u64 + 1;
            let before = f.data.len();
            let n = (&mut self.io)
                .take(limit)
                .read_until(b'\n', &mut f.data)
                .await
                .map_err(|e| lost(&self.addr, e))?;
            if n == 0 {
                return Err(lost(&self.addr, "connection closed by the server"));
            }
            if f.data.len() > self.max_response {
                return Err(ImapError::TooLarge(self.max_response));
            }
            if !f.data.ends_with(b"\n") {
                return Err(lost(&self.addr, "connection closed mid-line"));
            }
            match frame::literal_len(&f.data[before..]) {
                None => return Ok(f),
                Some(len) => {
                    if f.data.len() + len > self.max_response {
                        return Err(ImapError::TooLarge(self.max_response));
                    }
                    let start = f.data.len();
                    f.data.resize(start + len, 0);
                    self.io
                        .read_exact(&mut f.data[start..])
                        .await
                        .map_err(|e| lost(&self.addr, e))?;
                    f.literals.push(start..start + len);
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let addr = self.addr.clone();
        let io = self.io.get_mut();
        io.write_all(bytes).await.map_err(|e| lost(&addr, e))?;
        io.flush().await.map_err(|e| lost(&addr, e))
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("S{}", self.tag)
    }

    /// Collect untagged responses until `tag` completes.
    async fn collect(&mut self, tag: &str) -> Result<(Vec<Frame>, frame::Done)> {
        let mut untagged = Vec::new();
        loop {
            let f = self.read_frame().await?;
            if let Some(done) = frame::parse_done(&f, tag) {
                return Ok((untagged, done));
            }
            if f.text().to_ascii_uppercase().starts_with("* BYE") {
                return Err(lost(&self.addr, f.text().trim_end()));
            }
            untagged.push(f);
        }
    }

    /// Send a command (bytes after the tag, without CRLF) and collect its responses; NO and
    /// BAD become errors naming the command verb.
    pub async fn command_bytes(&mut self, cmd: &[u8]) -> Result<(Vec<Frame>, frame::Done)> {
        let tag = self.next_tag();
        let mut line = Vec::with_capacity(cmd.len() + tag.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(cmd);
        line.extend_from_slice(b"\r\n");
        let verb =
            String::from_utf8_lossy(cmd.split(|&b| b == b' ').next().unwrap_or(b"")).into_owned();
        let r = self
            .timed(move |s| {
                Box::pin(async move {
                    s.write(&line).await?;
                    s.collect(&tag).await
                })
            })
            .await?;
        self.last_used = Instant::now();
        match r.1.status {
            Status::Ok => Ok(r),
            Status::No => Err(ImapError::No {
                command: verb,
                text: match r.1.code {
                    Some(code) => format!("[{code}] {}", r.1.text),
                    None => r.1.text,
                },
            }),
            Status::Bad => Err(ImapError::Bad {
                command: verb,
                text: r.1.text,
            }),
        }
    }

    /// [`Self::command_bytes`] for text commands.
    pub async fn command(&mut self, cmd: &str) -> Result<(Vec<Frame>, frame::Done)> {
        self.command_bytes(cmd.as_bytes()).await
    }

    /// CAPABILITY.
    pub async fn capability(&mut self) -> Result<()> {
        let (frames, _) = self.command("CAPABILITY").await?;
        for f in frames {
            if let Some(c) = frame::capabilities(&f.text()) {
                self.caps = c;
            }
        }
        Ok(())
    }

    /// AUTHENTICATE PLAIN when offered (with SASL-IR if possible), else LOGIN. A refusal is
    /// [`ImapError::Denied`].
    async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let denied = |addr: &str| ImapError::Denied {
            addr: addr.to_string(),
            login: user.to_string(),
        };
        let result = if self.has("AUTH=PLAIN") {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            if self.has("SASL-IR") {
                self.command(&format!("AUTHENTICATE PLAIN {token}")).await
            } else {
                let tag = self.next_tag();
                let first = format!("{tag} AUTHENTICATE PLAIN\r\n");
                let second = format!("{token}\r\n");
                let r = self
                    .timed(move |s| {
                        Box::pin(async move {
                            s.write(first.as_bytes()).await?;
                            let f = s.read_frame().await?;
                            if !f.is_continuation() {
                                return Ok((Vec::new(), frame::parse_done(&f, &tag)));
                            }
                            s.write(second.as_bytes()).await?;
                            let (frames, done) = s.collect(&tag).await?;
                            Ok((frames, Some(done)))
                        })
                    })
                    .await?;
                match r.1 {
                    Some(done) if done.status == Status::Ok => Ok((r.0, done)),
                    Some(done) => Err(ImapError::No {
                        command: "AUTHENTICATE".into(),
                        text: done.text,
                    }),
                    None => Err(ImapError::Protocol("no answer to AUTHENTICATE".into())),
                }
            }
        } else {
            let (u, p) = match (frame::quoted(user), frame::quoted(password)) {
                (Some(u), Some(p)) => (u, p),
                _ => return Err(denied(&self.addr)),
            };
            self.command(&format!("LOGIN {u} {p}")).await
        };
        match result {
            Ok((_, done)) => {
                match done.code.as_deref().and_then(frame::capabilities) {
                    Some(caps) => self.caps = caps,
                    None => self.capability().await?,
                }
                Ok(())
            }
            // RFC 5530: a refusal for load or limits is not a wrong password.
            Err(ImapError::No { text, .. })
                if [
                    "[UNAVAILABLE]",
                    "[LIMIT]",
                    "[SERVERBUG]",
                    "[INUSE]",
                    "[OVERQUOTA]",
                ]
                .iter()
                .any(|c| text.to_ascii_uppercase().starts_with(c)) =>
            {
                Err(ImapError::Refused {
                    addr: self.addr.clone(),
                    text,
                })
            }
            Err(ImapError::No { .. }) | Err(ImapError::Bad { .. }) => Err(denied(&self.addr)),
            Err(e) => Err(e),
        }
    }

    /// All mailboxes, with SPECIAL-USE attributes when the server has them.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>> {
        let cmd = if self.has("SPECIAL-USE") && self.has("LIST-EXTENDED") {
            "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
        } else {
            "LIST \"\" \"*\""
        };
        let (frames, _) = self.command(cmd).await?;
        let mut out = Vec::new();
        for f in frames {
            if let Ok((
                _,
                Response::MailboxData(MailboxDatum::List {
                    name_attributes,
                    delimiter,
                    name,
                }),
            )) = imap_proto::parser::parse_response(&f.data)
            {
                out.push(ListEntry {
                    name: name.into_owned(),
                    delimiter: delimiter.and_then(|d| d.chars().next()),
                    attributes: name_attributes.iter().map(attribute_name).collect(),
                });
            }
        }
        Ok(out)
    }

    /// The hierarchy delimiter of the personal namespace (`LIST "" ""`), `/` if none is named.
    pub async fn delimiter(&mut self) -> Result<char> {
        let (frames, _) = self.command("LIST \"\" \"\"").await?;
        for f in frames {
            if let Ok((_, Response::MailboxData(MailboxDatum::List { delimiter, .. }))) =
                imap_proto::parser::parse_response(&f.data)
            {
                if let Some(d) = delimiter.and_then(|d| d.chars().next()) {
                    return Ok(d);
                }
            }
        }
        Ok('/')
    }

    /// Leave the selected mailbox without expunging (before renaming or deleting it).
    pub async fn unselect(&mut self) -> Result<()> {
        if self.selected.is_none() {
            return Ok(());
        }
        self.selected = None;
        if self.has("UNSELECT") {
            self.command("UNSELECT").await.map(drop)
        } else {
            // EXAMINE leaves the old mailbox without CLOSE's expunge.
            self.command("EXAMINE INBOX").await.map(drop)
        }
    }

    /// SELECT (`writable`) or EXAMINE a mailbox; reuses the current selection when it is the
    /// same mailbox in a sufficient mode, unless `fresh`.
    pub async fn select(&mut self, mailbox: &str, writable: bool, fresh: bool) -> Result<Selected> {
        // A selection is reused only while the connection is busy (a fetch streaming chunks);
        // after a pause, SELECT again so UIDVALIDITY and the like are current.
        let recent = self.last_used.elapsed() < Duration::from_secs(30);
        if let Some((name, rw, sel)) = &self.selected {
            if !fresh && recent && name == mailbox && (*rw || !writable) {
                return Ok(*sel);
            }
        }
        let q = frame::quoted(mailbox)
            .ok_or_else(|| ImapError::Invalid(format!("bad folder id {mailbox:?}")))?;
        let verb = if writable { "SELECT" } else { "EXAMINE" };
        let opt = if self.condstore && !self.qresync {
            " (CONDSTORE)"
        } else {
            ""
        };
        self.selected = None;
        let (frames, done) = match self.command(&format!("{verb} {q}{opt}")).await {
            Ok(r) => r,
            Err(ImapError::No { .. }) => return Err(ImapError::NoMailbox(mailbox.to_string())),
            Err(e) => return Err(e),
        };
        let mut sel = Selected::default();
        let mut nomodseq = false;
        for f in &frames {
            let text = f.text();
            if let Some(v) = frame::number_after(&text, "[UIDVALIDITY ") {
                sel.uid_validity = v as u32;
            }
            if let Some(v) = frame::number_after(&text, "[UIDNEXT ") {
                sel.uid_next = v as u32;
            }
            if let Some(v) = frame::number_after(&text, "[HIGHESTMODSEQ ") {
                sel.highest_modseq = Some(v);
            }
            if text.to_ascii_uppercase().contains("[NOMODSEQ]") {
                nomodseq = true;
            }
            if let Some(n) = frame::exists(&text) {
                sel.exists = n;
            }
        }
        if nomodseq || !self.condstore {
            sel.highest_modseq = None;
        }
        let _ = done;
        self.selected = Some((mailbox.to_string(), writable, sel));
        Ok(sel)
    }

    /// UID SEARCH with raw criteria; UIDs ascending.
    pub async fn uid_search(&mut self, criteria: &[u8]) -> Result<Vec<u32>> {
        let mut cmd = b"UID SEARCH ".to_vec();
        cmd.extend_from_slice(criteria);
        let (frames, _) = self.command_bytes(&cmd).await?;
        let mut out = Vec::new();
        for f in frames {
            if let Some(uids) = frame::search(&f.text()) {
                out.extend(uids);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Flags of the messages in `set`, only those changed since `changed_since` when given;
    /// with QRESYNC also the UIDs in `set` expunged since then (VANISHED).
    pub async fn uid_flags(
        &mut self,
        set: &str,
        changed_since: Option<u64>,
    ) -> Result<(Vec<UidFlags>, Vec<u32>)> {
        let modifier = match changed_since {
            Some(m) if self.qresync => format!(" (CHANGEDSINCE {m} VANISHED)"),
            Some(m) => format!(" (CHANGEDSINCE {m})"),
            None => String::new(),
        };
        let (frames, _) = self
            .command(&format!("UID FETCH {set} (UID FLAGS){modifier}"))
            .await?;
        let mut flags = Vec::new();
        let mut vanished = Vec::new();
        for f in frames {
            match imap_proto::parser::parse_response(&f.data) {
                Ok((_, Response::Fetch(_, attrs))) => {
                    let mut uid = None;
                    let mut fl = Flags::default();
                    for a in &attrs {
                        match a {
                            AttributeValue::Uid(u) => uid = Some(*u),
                            AttributeValue::Flags(v) => fl = Flags::from_imap(v),
                            _ => {}
                        }
                    }
                    if let Some(uid) = uid {
                        flags.push(UidFlags { uid, flags: fl });
                    }
                }
                Ok((_, Response::Vanished { uids, .. })) => {
                    for r in uids {
                        if r.end() - r.start() > 10_000_000 {
                            continue;
                        }
                        vanished.extend(r);
                    }
                }
                _ => {}
            }
        }
        Ok((flags, vanished))
    }

    /// Everything a summary needs for the messages in `set`.
    pub async fn uid_meta(&mut self, set: &str) -> Result<Vec<MessageMeta>> {
        let (frames, _) = self
            .command(&format!(
                "UID FETCH {set} (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)"
            ))
            .await?;
        let mut out = Vec::new();
        for f in frames {
            if let Ok((_, Response::Fetch(_, attrs))) = imap_proto::parser::parse_response(&f.data)
            {
                if let Some(m) = mapping::meta_from_fetch(&attrs) {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }

    /// Up to `max` bytes from `offset` of a message (`section` empty) or of one MIME part,
    /// with the total size. Parts come decoded when the server has BINARY.
    pub async fn fetch_chunk(
        &mut self,
        uid: u32,
        section: &str,
        offset: u64,
        max: u32,
    ) -> Result<Option<(Vec<u8>, u64)>> {
        let binary = !section.is_empty() && self.has("BINARY");
        let (size_key, items) = if section.is_empty() {
            (
                "RFC822.SIZE ".to_string(),
                format!("RFC822.SIZE BODY.PEEK[]<{offset}.{max}>"),
            )
        } else if binary {
            (
                format!("BINARY.SIZE[{section}] "),
                format!("BINARY.SIZE[{section}] BINARY.PEEK[{section}]<{offset}.{max}>"),
            )
        } else {
            (
                String::new(),
                format!("BODY.PEEK[{section}]<{offset}.{max}>"),
            )
        };
        let items = if max == 0 {
            items
                .split(' ')
                .filter(|i| i.contains(".SIZE"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            items
        };
        let items = if items.is_empty() {
            format!("BODY.PEEK[{section}]<{offset}.1>")
        } else {
            items
        };
        let (frames, _) = self
            .command(&format!("UID FETCH {uid} (UID {items})"))
            .await?;
        for f in &frames {
            let text = f.text();
            let is_ours = frame::number_after(&text, "UID ") == Some(u64::from(uid));
            if !is_ours {
                continue;
            }
            if max == 0 {
                if let Some(total) = frame::number_after(&text, &size_key) {
                    return Ok(Some((Vec::new(), total)));
                }
            }
            if let Some((data, total)) = frame::section_chunk(f, &size_key) {
                let data = if max == 0 { Vec::new() } else { data };
                return Ok(Some((data, total.unwrap_or(0))));
            }
        }
        Ok(None)
    }

    /// Transfer encoding and encoded size of one MIME part, from BODYSTRUCTURE.
    pub async fn part_info(
        &mut self,
        uid: u32,
        section: &str,
    ) -> Result<Option<(crate::decode::Encoding, u64)>> {
        let (frames, _) = self
            .command(&format!("UID FETCH {uid} (UID BODYSTRUCTURE)"))
            .await?;
        for f in frames {
            if let Ok((_, Response::Fetch(_, attrs))) = imap_proto::parser::parse_response(&f.data)
            {
                let ours = attrs
                    .iter()
                    .any(|a| matches!(a, AttributeValue::Uid(u) if *u == uid));
                for a in &attrs {
                    if let (true, AttributeValue::BodyStructure(b)) = (ours, a) {
                        return Ok(mapping::find_part(b, section));
                    }
                }
            }
        }
        Ok(None)
    }

    /// UID STORE (`+FLAGS.SILENT (\Seen)` and the like).
    pub async fn uid_store(&mut self, set: &str, what: &str) -> Result<()> {
        self.command(&format!("UID STORE {set} {what}"))
            .await
            .map(drop)
    }

    /// Move messages; the new UIDs from COPYUID when the server reports them. Falls back to
    /// COPY + STORE \Deleted + UID EXPUNGE without MOVE (UIDPLUS needed for the expunge).
    pub async fn uid_move(&mut self, set: &str, to: &str) -> Result<(Option<u32>, Vec<u32>)> {
        let q =
            frame::quoted(to).ok_or_else(|| ImapError::Invalid(format!("bad folder id {to:?}")))?;
        let codes = if self.has("MOVE") {
            let (frames, done) = self.command(&format!("UID MOVE {set} {q}")).await?;
            let mut codes: Vec<String> = frames.iter().map(Frame::text).collect();
            codes.extend(done.code.map(|c| format!("[{c}]")));
            codes
        } else {
            if !self.has("UIDPLUS") {
                return Err(ImapError::Unsupported("MOVE or UIDPLUS"));
            }
            let (_, done) = self.command(&format!("UID COPY {set} {q}")).await?;
            self.uid_store(set, "+FLAGS.SILENT (\\Deleted)").await?;
            self.command(&format!("UID EXPUNGE {set}")).await?;
            done.code.map(|c| format!("[{c}]")).into_iter().collect()
        };
        for c in codes {
            if let Some(at) = c.to_ascii_uppercase().find("[COPYUID ") {
                let rest = &c[at + 9..];
                let rest = rest.split(']').next().unwrap_or("");
                let mut parts = rest.split(' ');
                let uv = parts.next().and_then(|v| v.parse().ok());
                let _src = parts.next();
                let dst = parts.next().and_then(frame::parse_uid_set);
                if let Some(dst) = dst {
                    return Ok((uv, dst));
                }
            }
        }
        Ok((None, Vec::new()))
    }

    /// Flag \Deleted and expunge just these UIDs (UIDPLUS), or all \Deleted without it.
    pub async fn uid_delete(&mut self, set: &str) -> Result<()> {
        self.uid_store(set, "+FLAGS.SILENT (\\Deleted)").await?;
        if self.has("UIDPLUS") {
            self.command(&format!("UID EXPUNGE {set}")).await.map(drop)
        } else {
            Err(ImapError::Unsupported(
                "UIDPLUS (the item is marked \\Deleted)",
            ))
        }
    }

    /// APPEND `size` bytes delivered by `next_chunk` (None at the end); returns
    /// (UIDVALIDITY, UID) from APPENDUID when the server reports it.
    pub async fn append<F, Fut>(
        &mut self,
        mailbox: &str,
        flags: &str,
        size: u64,
        mut next_chunk: F,
    ) -> Result<Option<(u32, u32)>>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Option<Vec<u8>>> + Send,
    {
        let q = frame::quoted(mailbox)
            .ok_or_else(|| ImapError::Invalid(format!("bad folder id {mailbox:?}")))?;
        self.selected = None;
        let tag = self.next_tag();
        let plus = self.has("LITERAL+");
        let head = format!(
            "{tag} APPEND {q} ({flags}) {{{size}{}}}\r\n",
            if plus { "+" } else { "" }
        );
        let addr = self.addr.clone();
        let timeout = self.timeout;
        self.write(head.as_bytes()).await?;
        if !plus {
            let f = tokio::time::timeout(timeout, self.read_frame())
                .await
                .map_err(|_| ImapError::Timeout {
                    addr: addr.clone(),
                    secs: timeout.as_secs(),
                })??;
            if !f.is_continuation() {
                return Err(ImapError::No {
                    command: "APPEND".into(),
                    text: f.text().trim_end().to_string(),
                });
            }
        }
        let mut sent = 0u64;
        while sent < size {
            let chunk = next_chunk()
                .await
                .ok_or_else(|| lost(&addr, "upload ended early"))?;
            if chunk.is_empty() {
                return Err(lost(&addr, "upload ended early"));
            }
            let take = (size - sent).min(chunk.len() as u64) as usize;
            tokio::time::timeout(timeout, self.write(&chunk[..take]))
                .await
                .map_err(|_| ImapError::Timeout {
                    addr: addr.clone(),
                    secs: timeout.as_secs(),
                })??;
            sent += take as u64;
        }
        self.write(b"\r\n").await?;
        let (_, done) = self
            .timed(move |s| Box::pin(async move { s.collect(&tag).await }))
            .await?;
        self.last_used = Instant::now();
        if done.status != Status::Ok {
            return Err(ImapError::No {
                command: "APPEND".into(),
                text: done.text,
            });
        }
        Ok(done.code.and_then(|c| {
            let mut p = c.split(' ');
            if !p.next()?.eq_ignore_ascii_case("APPENDUID") {
                return None;
            }
            Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
        }))
    }

    /// NOOP: a cheap liveness check for pooled connections.
    pub async fn noop(&mut self) -> Result<()> {
        self.command("NOOP").await.map(drop)
    }

    /// NOOP, reporting whether the server announced a change in the selected mailbox (the
    /// poll for servers without IDLE).
    pub async fn noop_changed(&mut self) -> Result<bool> {
        let (frames, _) = self.command("NOOP").await?;
        Ok(frames.iter().any(|f| frame::is_change(&f.text())))
    }

    /// STATUS of a mailbox that is not selected: its counters as the server prints them
    /// (`MESSAGES 3 UIDNEXT 9 …`), to compare with an earlier answer. HIGHESTMODSEQ is asked
    /// for when CONDSTORE is on, so flag changes show too.
    pub async fn status(&mut self, mailbox: &str) -> Result<String> {
        let q = frame::quoted(mailbox)
            .ok_or_else(|| ImapError::Invalid(format!("bad folder id {mailbox:?}")))?;
        let items = if self.condstore {
            "MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ"
        } else {
            "MESSAGES UIDNEXT UIDVALIDITY UNSEEN"
        };
        let (frames, _) = match self.command(&format!("STATUS {q} ({items})")).await {
            Ok(r) => r,
            Err(ImapError::No { .. }) => return Err(ImapError::NoMailbox(mailbox.to_string())),
            Err(e) => return Err(e),
        };
        Ok(frames
            .iter()
            .map(|f| f.text())
            .find(|t| t.to_ascii_uppercase().starts_with("* STATUS "))
            .and_then(|t| t.rfind('(').map(|i| t[i..].trim_end().to_string()))
            .unwrap_or_default())
    }

    /// IDLE (RFC 2177) on the selected mailbox until the server reports a change (see
    /// [`frame::is_change`]), `max` passes, or `stop` is notified; then DONE. Returns whether
    /// a change was reported. Waiting for the server's next line uses `fill_buf`, which
    /// reads nothing when the wait is cut short, so no response is ever half consumed.
    pub async fn idle(&mut self, max: Duration, stop: &tokio::sync::Notify) -> Result<bool> {
        let tag = self.next_tag();
        let line = format!("{tag} IDLE\r\n");
        let t = tag.clone();
        let mut changed = self
            .timed(move |s| {
                Box::pin(async move {
                    s.write(line.as_bytes()).await?;
                    let mut changed = false;
                    loop {
                        let f = s.read_frame().await?;
                        if f.is_continuation() {
                            return Ok(changed);
                        }
                        if let Some(done) = frame::parse_done(&f, &t) {
                            return Err(ImapError::Bad {
                                command: "IDLE".into(),
                                text: done.text,
                            });
                        }
                        changed |= frame::is_change(&f.text());
                    }
                })
            })
            .await?;
        let deadline = Instant::now() + max;
        while !changed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let io = &mut self.io;
            let ready = tokio::select! {
                r = tokio::time::timeout(left, async { io.fill_buf().await.map(|b| b.is_empty()) }) => r,
                _ = stop.notified() => break,
            };
            match ready {
                Err(_) => break,
                Ok(Err(e)) => return Err(lost(&self.addr, e)),
                Ok(Ok(true)) => return Err(lost(&self.addr, "connection closed by the server")),
                Ok(Ok(false)) => {}
            }
            let f = self.timed(|s| Box::pin(s.read_frame())).await?;
            let text = f.text();
            if text.to_ascii_uppercase().starts_with("* BYE") {
                return Err(lost(&self.addr, text.trim_end()));
            }
            changed = frame::is_change(&text);
        }
        let (frames, done) = self
            .timed(move |s| {
                Box::pin(async move {
                    s.write(b"DONE\r\n").await?;
                    s.collect(&tag).await
                })
            })
            .await?;
        self.last_used = Instant::now();
        if done.status != Status::Ok {
            return Err(ImapError::Bad {
                command: "IDLE".into(),
                text: done.text,
            });
        }
        Ok(changed || frames.iter().any(|f| frame::is_change(&f.text())))
    }

    /// LOGOUT, ignoring errors.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.command("LOGOUT")).await;
    }
}

fn attribute_name(a: &NameAttribute<'_>) -> String {
    match a {
        NameAttribute::NoInferiors => "\\noinferiors".into(),
        NameAttribute::NoSelect => "\\noselect".into(),
        NameAttribute::Marked => "\\marked".into(),
        NameAttribute::Unmarked => "\\unmarked".into(),
        NameAttribute::All => "\\all".into(),
        NameAttribute::Archive => "\\archive".into(),
        NameAttribute::Drafts => "\\drafts".into(),
        NameAttribute::Flagged => "\\flagged".into(),
        NameAttribute::Junk => "\\junk".into(),
        NameAttribute::Sent => "\\sent".into(),
        NameAttribute::Trash => "\\trash".into(),
        NameAttribute::Extension(e) => e.to_ascii_lowercase(),
        _ => String::new(),
    }
}
