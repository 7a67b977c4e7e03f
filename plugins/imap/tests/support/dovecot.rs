//! A throwaway Dovecot: its own `dovecot.conf`, runtime, state, log and maildirs in a temp
//! directory, IMAP (and LMTP) on a free loopback port, started as a child process (`dovecot
//! -F`) and stopped when dropped.
//!
//! Users (passwd-file, plain passwords): `alice@example.com`, `bob@example.com`,
//! `alice@scalix.test` and `bob@scalix.test`, all with `secret`; master user `switchboard` /
//! `mastersecret` (log in as `alice@example.com*switchboard`). Mail is stored as maildir under
//! the temp directory; LMTP listens on a unix socket ([`Dovecot::lmtp_socket`]) for delivery.
//!
//! Also included by the core's end-to-end tests (`core/tests/eas_imap.rs`), so it depends only
//! on crates both have (`tempfile`, `rcgen`).
//!
//! When the tests run as root, mail is owned by `nobody` (Dovecot refuses UID 0 for mail
//! access) and Dovecot's own unprivileged users (`dovenull`, `dovecot`, created by the Debian
//! package) run its login and internal processes; otherwise everything runs as the current
//! user.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Password of the test users.
pub const PASSWORD: &str = "secret";
/// Dovecot master user (`user*master` logins).
pub const MASTER_USER: &str = "switchboard";
/// Its password.
pub const MASTER_PASSWORD: &str = "mastersecret";

/// A running Dovecot. Stopped (SIGTERM, then SIGKILL) on drop.
pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// IMAP port on 127.0.0.1 (plain, STARTTLS offered).
    pub port: u16,
    /// IMAPS port on 127.0.0.1 (implicit TLS).
    pub tls_port: u16,
}

fn dovecot_binary() -> PathBuf {
    for p in ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("dovecot")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Start `dovecot -F` with the config in `root` and wait for its greeting on `port`.
fn launch(root: &Path, port: u16) -> Result<Child, String> {
    let log = || std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default();
    let mut child = Command::new(dovecot_binary())
        .arg("-F")
        .arg("-c")
        .arg(root.join("dovecot.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start dovecot (apt-get install dovecot-imapd dovecot-lmtpd): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            // Wait for the greeting: the listener may be bound before login processes run.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 64];
            if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                return Ok(child);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("dovecot exited ({status}): {err}\n{}", log()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("dovecot did not answer on port {port}:\n{}", log()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// All processes below `root` (from /proc), children first found first.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

impl Dovecot {
    /// Start a fresh server with empty mailboxes (INBOX, Drafts, Sent, Trash, Junk, Archive).
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// A server that announces only IMAP4rev1 basics after login (no CONDSTORE, QRESYNC,
    /// MOVE, BINARY, SPECIAL-USE, LIST-EXTENDED, ENABLE): how older stores such as Scalix
    /// look to the connector.
    pub fn start_minimal() -> Dovecot {
        Dovecot::start_with("imap_capability = IMAP4rev1 SASL-IR LITERAL+ UIDPLUS IDLE\n")
    }

    /// Start with extra `dovecot.conf` lines.
    pub fn start_with(extra: &str) -> Dovecot {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let me = std::fs::metadata(root).expect("stat temp dir");
        let (uid, gid, login_user, internal_user) = if me.uid() == 0 {
            // Mail may not be accessed as root: hand the maildirs to nobody.
            std::os::unix::fs::chown(root.join("mail"), Some(65534), Some(65534))
                .expect("chown mail dir");
            (65534, 65534, "dovenull".to_string(), "dovecot".to_string())
        } else {
            let name = String::from_utf8(
                Command::new("id")
                    .arg("-un")
                    .output()
                    .expect("id -un")
                    .stdout,
            )
            .expect("user name")
            .trim()
            .to_string();
            (me.uid(), me.gid(), name.clone(), name)
        };
        std::fs::write(
            root.join("users"),
            [
                "alice@example.com",
                "bob@example.com",
                "alice@scalix.test",
                "bob@scalix.test",
            ]
            .iter()
            .map(|u| format!("{u}:{{PLAIN}}{PASSWORD}\n"))
            .collect::<String>(),
        )
        .expect("users");
        std::fs::write(
            root.join("masters"),
            format!("{MASTER_USER}:{{PLAIN}}{MASTER_PASSWORD}\n"),
        )
        .expect("masters");
        // A certificate for 127.0.0.1 and localhost; tests trust it through `ca_file`.
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .expect("generate certificate");
        std::fs::write(root.join("cert.pem"), cert.cert.pem()).expect("cert.pem");
        std::fs::write(root.join("key.pem"), cert.signing_key.serialize_pem()).expect("key.pem");
        // A port picked free may be taken by a parallel test before Dovecot binds it: then
        // try again with other ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let tls_port = free_port();
            let r = root.display();
            let conf = format!(
                r#"# throwaway test server
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_master_user_separator = *
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{r}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/users
}}
passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = scheme=PLAIN {r}/masters
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/mail/%u
}}
{extra}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = subscribe
  }}
}}
"#
            );
            std::fs::write(root.join("dovecot.conf"), conf).expect("dovecot.conf");
            match launch(root, port) {
                Ok(child) => {
                    return Dovecot {
                        dir,
                        child: Some(child),
                        port,
                        tls_port,
                    }
                }
                Err(e) if attempt < 5 => eprintln!("dovecot did not start, retrying: {e}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The server certificate (PEM), to trust as a CA.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    /// The LMTP socket: deliver mail into a user's INBOX as an MTA would.
    pub fn lmtp_socket(&self) -> PathBuf {
        self.dir.path().join("run/lmtp")
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn run(&mut self) {
        match launch(self.dir.path(), self.port) {
            Ok(child) => self.child = Some(child),
            Err(e) => panic!("{e}"),
        }
    }

    /// Stop the server (SIGTERM; SIGKILL if it lingers) and wait until it has exited; its
    /// IMAP processes (which may outlive the master for a moment) are killed too, so open
    /// connections drop as they would when a machine goes down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let family = descendants(child.id());
            signal(child.id(), "-TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            for pid in family {
                signal(pid, "-KILL");
            }
        }
    }

    /// Stop and start again on the same port with the same mail (a server restart).
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
