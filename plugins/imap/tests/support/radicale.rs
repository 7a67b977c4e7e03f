//! A throwaway Radicale (Debian's `radicale`, CalDAV + CardDAV) on a free loopback port:
//! htpasswd users `alice@example.com` and `alice@scalix.test` / `secret` and the service
//! account `switchboard` / `mastersecret`, which the rights file lets into every user's
//! collections. Stopped when dropped. `Radicale::http` talks raw HTTP/1.1 for the tests' side
//! of the story.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// The running server.
pub struct Radicale {
    _dir: tempfile::TempDir,
    child: Child,
    /// Port on 127.0.0.1.
    pub port: u16,
}

const RIGHTS: &str = "\
[service]
user: switchboard
collection: .*
permissions: RrWw

[owner]
user: .+
collection: {user}(/.*)?
permissions: RrWw

[root]
user: .+
collection:
permissions: R
";

impl Radicale {
    /// Start a server with no collections.
    pub fn start() -> Radicale {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::write(
            root.join("users"),
            "alice@example.com:secret\nalice@scalix.test:secret\nswitchboard:mastersecret\n",
        )
        .expect("users");
        std::fs::write(root.join("rights"), RIGHTS).expect("rights");
        for attempt in 1.. {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let config = format!(
                "[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = htpasswd\nhtpasswd_filename = {r}/users\nhtpasswd_encryption = plain\n[rights]\ntype = from_file\nfile = {r}/rights\n[storage]\nfilesystem_folder = {r}/collections\n[logging]\nlevel = warning\n",
                r = root.display()
            );
            std::fs::write(root.join("config"), config).expect("config");
            let binary = if std::path::Path::new("/usr/bin/radicale").exists() {
                "/usr/bin/radicale"
            } else {
                "radicale"
            };
            let mut child = Command::new(binary)
                .arg("--config")
                .arg(root.join("config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start radicale (apt-get install radicale)");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Radicale {
                        _dir: dir,
                        child,
                        port,
                    };
                }
                if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(attempt < 5, "radicale did not start");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// One raw HTTP request as `user`; the status code and body.
    pub fn http(
        &self,
        user: &str,
        password: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Basic {auth}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("write");
        s.write_all(body).expect("write body");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Forget every sync-token Radicale has handed out (its token history lives in
    /// `.Radicale.cache/sync-token/` beside each collection), as a server that expires old
    /// tokens would: a `sync-collection` from one of them is then refused (403
    /// `valid-sync-token`).
    pub fn forget_sync_tokens(&self) {
        fn walk(dir: &std::path::Path) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n == "sync-token") {
                        std::fs::remove_dir_all(&p).expect("remove sync tokens");
                    } else {
                        walk(&p);
                    }
                }
            }
        }
        walk(&self._dir.path().join("collections"));
    }

    /// As alice.
    pub fn alice(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        self.http("alice@example.com", "secret", method, path, headers, body)
            .0
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An event.
pub fn event(uid: &str, summary: &str) -> Vec<u8> {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261130T090000Z\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:{summary}\r\nORGANIZER:mailto:bob@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").into_bytes()
}

/// A contact.
pub fn card(uid: &str, name: &str) -> Vec<u8> {
    format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEMAIL:x@example.com\r\nEND:VCARD\r\n").into_bytes()
}
