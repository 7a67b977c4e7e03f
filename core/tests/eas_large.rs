//! Issue 5: a 50 MB attachment syncs over ActiveSync without the server holding it in memory.
//!
//! The real `switchboard` binary runs as its own process (so its peak RSS, `VmHWM`, is the
//! server's alone); the message is imported with `switchboard mail import` before the server
//! starts. After a warm-up (FolderSync, Sync of the Inbox finding the message and its
//! attachment) the test records the peak, then fetches the attachment with ItemOperations
//! (inline base64 and the multipart form) and the whole MIME message with a Sync Fetch. The
//! client streams each answer, discarding it while it counts and hashes the payload, and the
//! server's peak must not grow by anything like the size of the attachment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use base64::Engine as _;
use md5::{Digest, Md5};
use switchboard_wbxml::tags::{
    airsync as a, airsyncbase as asb, folderhierarchy as fh, itemoperations as io,
};
use switchboard_wbxml::{decode, element, Element, Tag};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const USER: &str = "ann@example.org";
/// The attachment's decoded size: 50 MB.
const ATTACHMENT: usize = 50_000_000;
/// How much the server's peak RSS may grow while serving it: half its size. Holding the
/// attachment once (raw) would be 48 MiB; as base64 in a WBXML document, 64 MiB and more.
const MAX_GROWTH_KIB: u64 = 25 * 1024;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn switchboard(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("SWITCHBOARD_CONFIG")
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD__") {
            c.env_remove(k);
        }
    }
    c
}

fn run(dir: &Path, args: &[&str]) -> Result<String> {
    let out = switchboard(dir).args(args).output()?;
    ensure!(
        out.status.success(),
        "switchboard {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// xorshift64*: cheap bytes that do not compress, so no layer can shrink them.
struct Prng(u64);
impl Prng {
    fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Write the message (a short text body and the attachment as 76-column base64) to `path`,
/// a megabyte at a time; the attachment's MD5.
fn write_message(path: &Path) -> Result<[u8; 16]> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        f,
        "From: Bob <bob@example.com>\r\nTo: {USER}\r\nSubject: The big file\r\n\
         Date: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <big@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0undary\"\r\n\r\n\
         --b0undary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Here is the file you asked for.\r\n\r\n\
         --b0undary\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n\
         Content-Disposition: attachment; filename=\"big.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )?;
    let mut rng = Prng(0x9E37_79B9_7F4A_7C15);
    let mut hash = Md5::new();
    // 57 input bytes make one 76-character line; 18396 lines per block.
    let mut block = vec![0u8; 57 * 18396];
    let mut left = ATTACHMENT;
    while left > 0 {
        let n = left.min(block.len());
        rng.fill(&mut block[..n]);
        hash.update(&block[..n]);
        for line in block[..n].chunks(57) {
            f.write_all(
                base64::engine::general_purpose::STANDARD
                    .encode(line)
                    .as_bytes(),
            )?;
            f.write_all(b"\r\n")?;
        }
        left -= n;
    }
    f.write_all(b"--b0undary--\r\n")?;
    f.flush()?;
    Ok(hash.finalize().into())
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmHWM` (peak RSS) and `VmRSS` of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("empty field")?
            .parse()?)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// An HTTP/1.1 response body read as it arrives (Content-Length or chunked), never whole.
struct BodyReader {
    r: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk (or the whole body).
    left: u64,
    done: bool,
}

impl BodyReader {
    /// The next piece of the body, `None` at its end.
    fn next<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>> {
        if self.done {
            return Ok(None);
        }
        if self.left == 0 {
            if !self.chunked {
                self.done = true;
                return Ok(None);
            }
            let mut line = String::new();
            self.r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16)
                .with_context(|| format!("bad chunk size line {line:?}"))?;
            if self.left == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    self.r.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(None);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.r.read(&mut buf[..want])?;
        ensure!(n > 0, "connection closed mid-body");
        self.left -= n as u64;
        if self.chunked && self.left == 0 {
            let mut crlf = [0u8; 2];
            self.r.read_exact(&mut crlf)?;
        }
        Ok(Some(&buf[..n]))
    }
}

/// Status, headers (lower-case names) and the body still to read.
type Answer = (u16, Vec<(String, String)>, BodyReader);

struct Phone {
    port: u16,
    auth: String,
}

impl Phone {
    /// POST an ActiveSync command; the status, headers and a streaming body.
    fn post(&self, cmd: &str, body: &[u8], extra: &[(&str, &str)]) -> Result<Answer> {
        let s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut req = format!(
            "POST /Microsoft-Server-ActiveSync?Cmd={cmd}&User={USER}&DeviceId=BIGFILE01&DeviceType=SmartPhone HTTP/1.1\r\n\
             Host: 127.0.0.1\r\nConnection: close\r\nAuthorization: {}\r\n\
             MS-ASProtocolVersion: 14.1\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n\
             User-Agent: switchboard-test/1.0\r\nContent-Length: {}\r\n",
            self.auth,
            body.len()
        );
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut w = s.try_clone()?;
        w.write_all(req.as_bytes())?;
        w.write_all(body)?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("bad status line {line:?}"))?
            .parse()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |n: &str| headers.iter().find(|h| h.0 == n).map(|h| h.1.as_str());
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let left = match header("content-length") {
            Some(n) if !chunked => n.parse()?,
            _ => 0,
        };
        let reader = BodyReader {
            r,
            chunked,
            left,
            done: false,
        };
        Ok((status, headers, reader))
    }

    /// A small command: the whole answer decoded.
    fn cmd(&self, cmd: &str, doc: &Element) -> Result<Element> {
        let (status, _, mut body) = self.post(cmd, &doc.to_wbxml()?, &[])?;
        let mut all = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(piece) = body.next(&mut buf)? {
            all.extend_from_slice(piece);
            ensure!(all.len() < 4 << 20, "{cmd}: answer unexpectedly large");
        }
        ensure!(
            status == 200,
            "{cmd}: HTTP {status}: {}",
            String::from_utf8_lossy(&all)
        );
        Ok(decode(&all)?)
    }

    /// A command whose answer carries one big `Data` string: that string goes to `sink`
    /// piece by piece; the rest of the document is decoded (the string replaced by "X").
    fn streamed(
        &self,
        cmd: &str,
        doc: &Element,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(Element, u64)> {
        let (status, _, mut body) = self.post(cmd, &doc.to_wbxml()?, &[])?;
        ensure!(status == 200, "{cmd}: HTTP {status}");
        let mut split = Splitter::default();
        let mut wire = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(piece) = body.next(&mut buf)? {
            wire += piece.len() as u64;
            split.feed(piece, sink)?;
        }
        ensure!(split.finished(), "{cmd}: the WBXML document ended early");
        Ok((decode(&split.skeleton)?, wire))
    }
}

/// A streaming WBXML tokenizer that copies the document into `skeleton` except the text of
/// `Data` elements (AirSyncBase or ItemOperations), which goes to a sink as it arrives.
/// Supports what ActiveSync servers send: header `03 01 6A 00`, no attributes.
#[derive(Default)]
struct Splitter {
    skeleton: Vec<u8>,
    header: usize,
    page: u8,
    stack: Vec<Option<Tag>>,
    state: State,
    started: bool,
}

#[derive(Default, PartialEq)]
enum State {
    #[default]
    Token,
    SwitchPage,
    /// Inline string; `true`: streamed to the sink.
    Str(bool),
    OpaqueLen(u32),
    Opaque(bool, u32),
}

impl Splitter {
    fn is_data(&self) -> bool {
        matches!(self.stack.last(), Some(Some(t)) if *t == asb::Data || *t == io::Data)
    }

    fn feed(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        while !input.is_empty() {
            if self.header < 4 {
                let b = input[0];
                ensure!(
                    b == switchboard_wbxml::HEADER[self.header],
                    "unexpected WBXML header byte {b:#x}"
                );
                self.skeleton.push(b);
                self.header += 1;
                input = &input[1..];
                continue;
            }
            match self.state {
                State::Str(streamed) => {
                    let end = input.iter().position(|&b| b == 0);
                    let text = &input[..end.unwrap_or(input.len())];
                    if streamed {
                        sink(text);
                    } else {
                        self.skeleton.extend_from_slice(text);
                        ensure!(self.skeleton.len() < 4 << 20, "skeleton too large");
                    }
                    match end {
                        Some(at) => {
                            self.skeleton.push(0);
                            self.state = State::Token;
                            input = &input[at + 1..];
                        }
                        None => input = &[],
                    }
                }
                State::SwitchPage => {
                    self.page = input[0];
                    self.skeleton.push(input[0]);
                    self.state = State::Token;
                    input = &input[1..];
                }
                State::OpaqueLen(n) => {
                    let b = input[0];
                    input = &input[1..];
                    let n = (n << 7) | u32::from(b & 0x7F);
                    if b & 0x80 != 0 {
                        self.state = State::OpaqueLen(n);
                        continue;
                    }
                    let streamed = self.is_data();
                    // The skeleton gets a one-byte opaque in place of a streamed one.
                    let len = if streamed { 1 } else { n };
                    let mut mb = vec![(len & 0x7F) as u8];
                    let mut rest = len >> 7;
                    while rest > 0 {
                        mb.insert(0, 0x80 | (rest & 0x7F) as u8);
                        rest >>= 7;
                    }
                    self.skeleton.extend_from_slice(&mb);
                    if streamed {
                        self.skeleton.push(b'X');
                    }
                    self.state = if n == 0 {
                        State::Token
                    } else {
                        State::Opaque(streamed, n)
                    };
                }
                State::Opaque(streamed, n) => {
                    let take = input.len().min(n as usize);
                    if streamed {
                        sink(&input[..take]);
                    } else {
                        self.skeleton.extend_from_slice(&input[..take]);
                    }
                    input = &input[take..];
                    let left = n - take as u32;
                    self.state = if left == 0 {
                        State::Token
                    } else {
                        State::Opaque(streamed, left)
                    };
                }
                State::Token => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        0x00 => {
                            self.skeleton.push(b);
                            self.state = State::SwitchPage;
                        }
                        0x01 => {
                            self.skeleton.push(b);
                            ensure!(self.stack.pop().is_some(), "END without an element");
                        }
                        0x03 => {
                            self.skeleton.push(b);
                            let streamed = self.is_data();
                            if streamed {
                                self.skeleton.push(b'X');
                            }
                            self.state = State::Str(streamed);
                        }
                        0xC3 => {
                            self.skeleton.push(b);
                            self.state = State::OpaqueLen(0);
                        }
                        _ => {
                            ensure!(b & 0x80 == 0, "WBXML attributes are not expected");
                            self.skeleton.push(b);
                            self.started = true;
                            if b & 0x40 != 0 {
                                self.stack.push(Tag::from_token(self.page, b & 0x3F));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.started && self.stack.is_empty() && self.state == State::Token
    }
}

/// Decodes base64 as it arrives (any split), hashing and counting the bytes.
struct Base64Sink {
    carry: Vec<u8>,
    hash: Md5,
    bytes: u64,
    bad: bool,
}

impl Base64Sink {
    fn new() -> Base64Sink {
        Base64Sink {
            carry: Vec::new(),
            hash: Md5::new(),
            bytes: 0,
            bad: false,
        }
    }

    fn feed(&mut self, text: &[u8]) {
        self.carry
            .extend(text.iter().filter(|b| !b.is_ascii_whitespace()));
        let usable = self.carry.len() - self.carry.len() % 4;
        self.decode(usable);
    }

    fn decode(&mut self, n: usize) {
        match base64::engine::general_purpose::STANDARD.decode(&self.carry[..n]) {
            Ok(raw) => {
                self.hash.update(&raw);
                self.bytes += raw.len() as u64;
            }
            Err(_) => self.bad = true,
        }
        self.carry.drain(..n);
    }

    fn finish(mut self) -> (u64, [u8; 16], bool) {
        let n = self.carry.len();
        self.decode(n);
        (self.bytes, self.hash.finalize().into(), self.bad)
    }
}

#[test]
fn a_50_mb_attachment_is_streamed_not_held() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let (http, admin) = (free_port(), free_port());
    std::fs::write(
        root.join("switchboard.toml"),
        format!(
            "[server]\ndemo_user = false\ndata_dir = \"data\"\n\
             [http]\nhttps = []\nplain = [\"127.0.0.1:{http}\"]\nmax_body_bytes = 134217728\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [sip]\nudp = []\ntcp = []\ntls = []\n\
             [plugins.eas]\nsettings = {{ require_provisioning = false }}\n"
        ),
    )?;
    let eml = root.join("big.eml");
    let want_md5 = write_message(&eml)?;
    let eml_size = std::fs::metadata(&eml)?.len();
    let mut eml_hash = Md5::new();
    {
        let mut f = std::fs::File::open(&eml)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            eml_hash.update(&buf[..n]);
        }
    }
    let eml_md5: [u8; 16] = eml_hash.finalize().into();

    run(root, &["domain", "add", "example.org"])?;
    let added = run(root, &["user", "add", USER])?;
    let password = added
        .trim()
        .rsplit(' ')
        .next()
        .context("no password in `user add` output")?
        .to_string();
    let imported = run(root, &["mail", "import", "--user", USER, "big.eml"])?;
    ensure!(imported.contains("imported 1 of 1"), "{imported}");
    std::fs::remove_file(&eml)?;

    let child = switchboard(root)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let server = Server(child);
    let pid = server.0.id();
    let phone = Phone {
        port: http,
        auth: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
        ),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let folders = loop {
        match phone.cmd(
            "FolderSync",
            &element!(fh::FolderSync[element!(fh::SyncKey = "0")]),
        ) {
            Ok(d) => break d,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e.context("the server never answered FolderSync")),
        }
    };
    let (start_hwm, _) = memory_kib(pid)?;

    // Warm-up: find the Inbox, the message and its attachment.
    let inbox = folders
        .child("Changes")
        .context("no Changes")?
        .children_named("Add")
        .find(|f| f.child_text("Type") == Some("2"))
        .and_then(|f| f.child_text("ServerId"))
        .context("no Inbox")?
        .to_string();
    let sync = |key: &str, extra: Vec<Element>| -> Result<Element> {
        let mut col = element!(a::Collection [
            element!(a::SyncKey = key),
            element!(a::CollectionId = inbox.as_str()),
        ]);
        for e in extra {
            col.push(e);
        }
        phone.cmd("Sync", &element!(a::Sync[element!(a::Collections[col])]))
    };
    let collection = |d: &Element| -> Result<Element> {
        d.child("Collections")
            .and_then(|c| c.child("Collection"))
            .cloned()
            .with_context(|| format!("no Collection in {d}"))
    };
    let first = collection(&sync("0", vec![])?)?;
    let key = first
        .child_text("SyncKey")
        .context("no SyncKey")?
        .to_string();
    let page = collection(&sync(
        &key,
        vec![
            element!(a::WindowSize = "5"),
            element!(a::Options [
                element!(a::FilterType = "0"),
                element!(asb::BodyPreference [
                    element!(asb::Type = "1"),
                    element!(asb::TruncationSize = "500"),
                ]),
            ]),
        ],
    )?)?;
    let key = page
        .child_text("SyncKey")
        .context("no SyncKey")?
        .to_string();
    let add = page
        .child("Commands")
        .and_then(|c| c.children_named("Add").next())
        .with_context(|| format!("the message was not synced: {page}"))?;
    let server_id = add
        .child_text("ServerId")
        .context("no ServerId")?
        .to_string();
    let attachment = add
        .child("ApplicationData")
        .and_then(|d| d.child("Attachments"))
        .and_then(|x| x.child("Attachment"))
        .with_context(|| format!("no attachment in {add}"))?;
    assert_eq!(attachment.child_text("DisplayName"), Some("big.bin"));
    let fref = attachment
        .child_text("FileReference")
        .context("no FileReference")?
        .to_string();
    let (warm_hwm, warm_rss) = memory_kib(pid)?;
    println!(
        "server peak RSS: {start_hwm} KiB after start, {warm_hwm} KiB after the warm-up \
         (RSS {warm_rss} KiB); message {eml_size} bytes, attachment {ATTACHMENT} bytes"
    );

    // 1. ItemOperations Fetch of the attachment, inline base64 in the WBXML.
    let fetch = element!(
        io::ItemOperations[element!(io::Fetch [
            element!(io::Store = "Mailbox"),
            element!(asb::FileReference = fref.as_str()),
        ])]
    );
    let mut b64 = Base64Sink::new();
    let (doc, wire) = phone.streamed("ItemOperations", &fetch, &mut |t| b64.feed(t))?;
    let (got, md5, bad) = b64.finish();
    let props = doc
        .child("Response")
        .and_then(|r| r.child("Fetch"))
        .with_context(|| format!("no Fetch in {doc}"))?;
    assert_eq!(props.child_text("Status"), Some("1"), "{doc}");
    let total = props
        .child("Properties")
        .and_then(|p| p.child_text("Total"));
    assert_eq!(total, Some(ATTACHMENT.to_string().as_str()));
    assert!(!bad, "the streamed base64 did not decode");
    assert_eq!(got, ATTACHMENT as u64);
    assert_eq!(md5, want_md5, "the attachment arrived changed");
    let (hwm, rss) = memory_kib(pid)?;
    println!(
        "ItemOperations Fetch (base64): {wire} bytes received, {got} decoded; peak RSS \
         {hwm} KiB (+{} KiB), RSS {rss} KiB",
        hwm - warm_hwm
    );

    // 2. The same in the multipart form: the attachment raw after the document.
    let (status, headers, mut body) = phone.post(
        "ItemOperations",
        &fetch.to_wbxml()?,
        &[("MS-ASAcceptMultiPart", "T")],
    )?;
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|h| h.0 == "content-type" && h.1 == "application/vnd.ms-sync.multipart"),
        "{headers:?}"
    );
    let mut head = Vec::new();
    let mut table: Option<Vec<(u64, u64)>> = None;
    let mut at = 0u64;
    let (mut raw_hash, mut raw_bytes) = (Md5::new(), 0u64);
    let mut doc_bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(piece) = body.next(&mut buf)? {
        let mut piece = piece;
        // The part table: a count, then (offset, length) pairs, little-endian u32s.
        if table.is_none() {
            let need = |h: &[u8]| {
                if h.len() < 4 {
                    4
                } else {
                    4 + 8 * u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize
                }
            };
            while table.is_none() && !piece.is_empty() {
                let take = (need(&head) - head.len()).min(piece.len());
                head.extend_from_slice(&piece[..take]);
                piece = &piece[take..];
                at += take as u64;
                if head.len() >= 4 && head.len() == need(&head) {
                    let word = |i: usize| {
                        u64::from(u32::from_le_bytes([
                            head[i],
                            head[i + 1],
                            head[i + 2],
                            head[i + 3],
                        ]))
                    };
                    let n = word(0) as usize;
                    ensure!(n == 2, "expected two parts, got {n}");
                    table = Some((0..n).map(|i| (word(4 + 8 * i), word(8 + 8 * i))).collect());
                }
            }
        }
        let Some(parts) = &table else { continue };
        let (doc_part, att_part) = (parts[0], parts[1]);
        // Route each byte range of this piece to the document or the attachment.
        let mut rest = piece;
        while !rest.is_empty() {
            if at < doc_part.0 + doc_part.1 {
                let take = ((doc_part.0 + doc_part.1 - at) as usize).min(rest.len());
                doc_bytes.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                at += take as u64;
            } else {
                ensure!(at >= att_part.0, "gap between parts");
                raw_hash.update(rest);
                raw_bytes += rest.len() as u64;
                at += rest.len() as u64;
                rest = &[];
            }
        }
    }
    let parts = table.context("no part table")?;
    let doc = decode(&doc_bytes)?;
    let part = doc
        .child("Response")
        .and_then(|r| r.child("Fetch"))
        .and_then(|f| f.child("Properties"))
        .and_then(|p| p.child_text("Part"));
    assert_eq!(part, Some("1"), "{doc}");
    assert_eq!(parts[1].1, ATTACHMENT as u64);
    assert_eq!(raw_bytes, ATTACHMENT as u64);
    assert_eq!(
        <[u8; 16]>::from(raw_hash.finalize()),
        want_md5,
        "the multipart attachment arrived changed"
    );
    let (hwm2, rss) = memory_kib(pid)?;
    println!(
        "ItemOperations Fetch (multipart): {at} bytes received; peak RSS {hwm2} KiB \
         (+{} KiB over the warm-up), RSS {rss} KiB",
        hwm2 - warm_hwm
    );

    // 3. A Sync Fetch of the whole message as MIME, untruncated.
    let sync_fetch = element!(
        a::Sync[element!(
            a::Collections[element!(a::Collection [
                element!(a::SyncKey = key.as_str()),
                element!(a::CollectionId = inbox.as_str()),
                element!(a::GetChanges = "0"),
                element!(a::Options [element!(asb::BodyPreference [element!(asb::Type = "4")])]),
                element!(a::Commands [element!(a::Fetch [element!(a::ServerId = server_id.as_str())])]),
            ])]
        )]
    );
    let (mut mime_hash, mut mime_bytes) = (Md5::new(), 0u64);
    let (doc, wire) = phone.streamed("Sync", &sync_fetch, &mut |t| {
        mime_hash.update(t);
        mime_bytes += t.len() as u64;
    })?;
    let fetched = doc
        .child("Collections")
        .and_then(|c| c.child("Collection"))
        .and_then(|c| c.child("Responses"))
        .and_then(|r| r.child("Fetch"))
        .with_context(|| format!("no Fetch response in {doc}"))?;
    assert_eq!(fetched.child_text("Status"), Some("1"), "{doc}");
    let body_el = fetched
        .child("ApplicationData")
        .and_then(|d| d.child("Body"))
        .with_context(|| format!("no Body in {doc}"))?;
    assert_eq!(body_el.child_text("Type"), Some("4"));
    assert!(body_el.child("Truncated").is_none(), "{doc}");
    assert_eq!(mime_bytes, eml_size, "the MIME message arrived cut");
    assert_eq!(
        <[u8; 16]>::from(mime_hash.finalize()),
        eml_md5,
        "the MIME message arrived changed"
    );
    let (hwm3, rss) = memory_kib(pid)?;
    println!(
        "Sync Fetch (MIME): {wire} bytes received, {mime_bytes} of message; peak RSS {hwm3} \
         KiB (+{} KiB over the warm-up), RSS {rss} KiB",
        hwm3 - warm_hwm
    );

    let growth = hwm3 - warm_hwm;
    assert!(
        growth < MAX_GROWTH_KIB,
        "the server's peak RSS grew by {growth} KiB serving a {ATTACHMENT}-byte attachment"
    );
    drop(server);
    Ok(())
}
