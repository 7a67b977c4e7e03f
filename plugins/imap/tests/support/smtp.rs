//! A real SMTP server to submit to: aiosmtpd (Debian's `python3-aiosmtpd`) run by
//! `smtp_sink.py` on a free loopback port, with STARTTLS (a generated certificate) and AUTH,
//! recording what it accepts and optionally relaying it over LMTP into a Dovecot (so the
//! recipient finds it in the INBOX). Stopped when dropped.
//!
//! The script is embedded and written to the temp directory, so this file also works when
//! included from another crate's tests (`core/tests/eas_imap.rs`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One accepted message.
#[derive(Debug)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TOs.
    pub rcpt: Vec<String>,
    /// AUTH login used.
    pub login: Option<String>,
    /// Was the session under TLS?
    pub tls: bool,
    /// The message as transmitted (after un-dot-stuffing).
    pub data: Vec<u8>,
}

/// The running sink.
pub struct SmtpSink {
    dir: tempfile::TempDir,
    child: Child,
    /// Port on 127.0.0.1.
    pub port: u16,
}

impl SmtpSink {
    /// Start with the one login it accepts.
    pub fn start(login: &str, password: &str) -> SmtpSink {
        SmtpSink::start_relaying(login, password, None)
    }

    /// Like [`SmtpSink::start`]; every accepted message is also delivered over LMTP to the
    /// unix socket `lmtp` (a Dovecot's [`lmtp_socket`](super::dovecot::Dovecot::lmtp_socket))
    /// before the sink answers 250.
    pub fn start_relaying(login: &str, password: &str, lmtp: Option<&Path>) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("smtp_sink.py");
        std::fs::write(&script, include_str!("smtp_sink.py")).expect("smtp_sink.py");
        let cert =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
        std::fs::create_dir_all(dir.path().join("out")).expect("out dir");
        // Retry with another port if a parallel test took the one picked.
        for attempt in 1.. {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            // Debian's interpreter, where python3-aiosmtpd is installed.
            let python = if std::path::Path::new("/usr/bin/python3").exists() {
                "/usr/bin/python3"
            } else {
                "python3"
            };
            let mut child = Command::new(python)
                .arg(&script)
                .arg(port.to_string())
                .arg(dir.path().join("cert.pem"))
                .arg(dir.path().join("key.pem"))
                .arg(dir.path().join("out"))
                .arg(login)
                .arg(password)
                .args(lmtp.map(|p| p.as_os_str()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the SMTP sink (apt-get install python3-aiosmtpd)");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("stdout");
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.trim() == "ready" {
                return SmtpSink { dir, child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(attempt < 5, "SMTP sink did not start");
        }
        unreachable!("the loop returns or panics")
    }

    /// The certificate to trust.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    /// Messages accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let out = self.dir.path().join("out");
        let mut all = Vec::new();
        for n in 1.. {
            let Ok(meta) = std::fs::read_to_string(out.join(format!("{n}.json"))) else {
                break;
            };
            let data = std::fs::read(out.join(format!("{n}.eml"))).expect("eml");
            // Tiny field extraction; the sink writes flat JSON.
            let field = |name: &str| -> Option<String> {
                let at = meta.find(&format!("\"{name}\": "))? + name.len() + 4;
                let rest = &meta[at..];
                if rest.starts_with("null") {
                    return None;
                }
                let rest = rest.strip_prefix('"')?;
                Some(rest[..rest.find('"')?].to_string())
            };
            let rcpt_at = meta.find("\"rcpt\": [").expect("rcpt") + 9;
            let rcpt = meta[rcpt_at..meta[rcpt_at..].find(']').expect("]") + rcpt_at]
                .split(',')
                .map(|r| r.trim().trim_matches('"').to_string())
                .filter(|r| !r.is_empty())
                .collect();
            all.push(Received {
                from: field("from").unwrap_or_default(),
                rcpt,
                login: field("login"),
                tls: meta.contains("\"tls\": true"),
                data,
            });
        }
        all
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
