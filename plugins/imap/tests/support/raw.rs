//! A deliberately plain, blocking IMAP client for the tests' side of the story: seeding
//! messages and changing the mailbox directly on the server (APPEND, STORE, EXPUNGE, MOVE).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One logged-in session.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Raw {
    /// Connect and log in as `user` (full address) with `password`.
    pub fn login(port: u16, user: &str, password: &str) -> Raw {
        let mut raw = Raw::connect(port);
        raw.ok(&format!("LOGIN \"{user}\" \"{password}\""));
        raw
    }

    /// Connect without logging in.
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut raw = Raw {
            reader: BufReader::new(stream),
            writer,
            tag: 0,
        };
        let mut greeting = String::new();
        raw.reader.read_line(&mut greeting).expect("greeting");
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        raw
    }

    /// Run a command; all response lines, the tagged one last.
    pub fn cmd(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("R{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .expect("write");
        self.read_until(&tag)
    }

    fn read_until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read");
            assert!(n > 0, "server closed; so far: {lines:?}");
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line.trim_end().to_string());
            if done {
                return lines;
            }
        }
    }

    /// Run a command that must succeed.
    pub fn ok(&mut self, command: &str) -> Vec<String> {
        let lines = self.cmd(command);
        let last = lines.last().cloned().unwrap_or_default();
        assert!(
            last.split(' ').nth(1) == Some("OK"),
            "{command} failed: {lines:?}"
        );
        lines
    }

    /// APPEND a message (LITERAL+); returns the new UID from APPENDUID.
    pub fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> u32 {
        self.tag += 1;
        let tag = format!("R{}", self.tag);
        self.writer
            .write_all(
                format!(
                    "{tag} APPEND \"{mailbox}\" ({flags}) {{{}+}}\r\n",
                    message.len()
                )
                .as_bytes(),
            )
            .expect("write");
        self.writer.write_all(message).expect("write");
        self.writer.write_all(b"\r\n").expect("write");
        let lines = self.read_until(&tag);
        let last = lines.last().cloned().unwrap_or_default();
        let uid = last
            .split("[APPENDUID ")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .and_then(|r| r.split(' ').nth(1))
            .and_then(|u| u.parse().ok());
        uid.unwrap_or_else(|| panic!("APPEND failed: {lines:?}"))
    }
}

/// A small but real MIME message: text body plus one base64 attachment.
pub fn message(subject: &str, from: &str, attachment: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: alice@example.com\r\nSubject: {subject}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{}@test>\r\nMIME-Version: 1.0\r\n",
        subject.replace(' ', ".")
    );
    match attachment {
        None => m.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHello, this is {subject}.\r\n"
        )),
        Some((name, data)) => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(data);
            let mut wrapped = String::new();
            for chunk in b64.as_bytes().chunks(76) {
                wrapped.push_str(std::str::from_utf8(chunk).unwrap_or(""));
                wrapped.push_str("\r\n");
            }
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, this is {subject}.\r\n--b1\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}--b1--\r\n"
            ));
        }
    }
    m.into_bytes()
}
