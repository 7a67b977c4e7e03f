//! Sending: SMTP submission with STARTTLS (or implicit TLS) and AUTH through `mail-send`,
//! with the DATA phase streamed by us from the staged upload so a large message never sits
//! in memory whole. Sans-IO helpers (header block, recipients, Bcc removal, dot-stuffing) are
//! unit-tested.
//!
//! The envelope sender is always the principal's own address (never taken from the message);
//! recipients are the To, Cc and Bcc addresses of the header block, and the Bcc header is
//! removed from what is transmitted (the copy kept in Sent keeps it).

use std::time::Duration;

use mail_send::SmtpClientBuilder;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{ImapError, Result};
use crate::tls::Mode;

/// Largest header block accepted (the part before the first empty line).
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// Where and how to submit.
#[derive(Clone)]
pub struct SmtpTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Security.
    pub tls: Mode,
    /// CA file, as for IMAP.
    pub ca_file: Option<String>,
    /// AUTH login.
    pub login: String,
    /// AUTH password (never logged).
    pub password: String,
    /// Per step.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// Length of the header block including the empty line that ends it; `None` when `buf`
/// does not contain the end of the headers yet.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// To, Cc and Bcc addresses of a header block, deduplicated (case-insensitively), in order.
pub fn recipients(headers: &[u8]) -> Vec<String> {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(headers) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for list in [msg.to(), msg.cc(), msg.bcc()].into_iter().flatten() {
        for a in list.iter() {
            if let Some(addr) = a.address() {
                let addr = addr.trim();
                if addr.contains('@')
                    && !addr.contains(['<', '>', '\r', '\n', ' '])
                    && !out.iter().any(|o| o.eq_ignore_ascii_case(addr))
                {
                    out.push(addr.to_string());
                }
            }
        }
    }
    out
}

/// SMTP transparency across chunk boundaries: a `.` at the start of a line is doubled, bare
/// LF becomes CRLF, and [`DotStuffer::finish`] ends the data with `CRLF . CRLF`.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    line_start: bool,
    last_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            line_start: true,
            last_cr: false,
        }
    }
}

impl DotStuffer {
    /// Transform one chunk.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 8);
        for &b in input {
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            if b == b'.' && self.line_start {
                out.push(b'.');
            }
            out.push(b);
            self.line_start = b == b'\n';
            self.last_cr = b == b'\r';
        }
    }

    /// The end-of-data marker (with a line break first if the content did not end in one).
    pub fn finish(&self) -> &'static [u8] {
        if self.line_start {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        }
    }
}

fn smtp_err(t: &SmtpTarget, e: mail_send::Error) -> ImapError {
    let addr = format!("{}:{}", t.host, t.port);
    match e {
        mail_send::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ImapError::Unreachable { addr, source: e }
        }
        mail_send::Error::Io(e) => ImapError::Lost {
            addr,
            reason: e.to_string(),
        },
        mail_send::Error::Timeout => ImapError::Timeout {
            addr,
            secs: t.timeout.as_secs(),
        },
        mail_send::Error::AuthenticationFailed(_) | mail_send::Error::Auth(_) => {
            ImapError::Denied {
                addr,
                login: t.login.clone(),
            }
        }
        mail_send::Error::Tls(e) => ImapError::Tls {
            addr,
            reason: e.to_string(),
        },
        mail_send::Error::MissingStartTls => ImapError::Tls {
            addr,
            reason: "the server does not offer STARTTLS".into(),
        },
        other => ImapError::No {
            command: "SMTP".into(),
            text: other.to_string(),
        },
    }
}

/// Submit: envelope `from` → `rcpts`, content = `headers` (Bcc already removed) followed by
/// the body chunks `next_chunk` delivers (None at the end).
pub async fn submit<F, Fut>(
    t: &SmtpTarget,
    from: &str,
    rcpts: &[String],
    headers: &[u8],
    next_chunk: F,
) -> Result<()>
where
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Option<Vec<u8>>> + Send,
{
    if rcpts.is_empty() {
        return Err(ImapError::Invalid(
            "the message names no recipients (To, Cc, Bcc)".into(),
        ));
    }
    let connector = crate::tls::connector(t.ca_file.as_deref())?;
    let builder = SmtpClientBuilder::new_with_tls_connector(t.host.as_str(), t.port, connector)
        .implicit_tls(t.tls == Mode::Implicit)
        .helo_host("switchboard")
        .timeout(t.timeout)
        .credentials((t.login.as_str(), t.password.as_str()));
    match t.tls {
        Mode::None => {
            let mut c = builder.connect_plain().await.map_err(|e| smtp_err(t, e))?;
            transfer(t, &mut c, from, rcpts, headers, next_chunk).await
        }
        _ => {
            let mut c = builder.connect().await.map_err(|e| smtp_err(t, e))?;
            transfer(t, &mut c, from, rcpts, headers, next_chunk).await
        }
    }
}

async fn transfer<S, F, Fut>(
    t: &SmtpTarget,
    c: &mut mail_send::SmtpClient<S>,
    from: &str,
    rcpts: &[String],
    headers: &[u8],
    mut next_chunk: F,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Option<Vec<u8>>> + Send,
{
    let no_params = mail_send::smtp::message::Parameters::default();
    c.mail_from(from, &no_params)
        .await
        .map_err(|e| smtp_err(t, e))?;
    for r in rcpts {
        c.rcpt_to(r, &no_params).await.map_err(|e| smtp_err(t, e))?;
    }
    let reply = c.cmd(b"DATA\r\n").await.map_err(|e| smtp_err(t, e))?;
    if reply.code != 354 {
        return Err(ImapError::No {
            command: "DATA".into(),
            text: format!("{} {}", reply.code, reply.message),
        });
    }
    let addr = format!("{}:{}", t.host, t.port);
    let io = |e: std::io::Error| ImapError::Lost {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let mut stuffer = DotStuffer::default();
    let mut out = Vec::new();
    stuffer.push(headers, &mut out);
    c.stream.write_all(&out).await.map_err(io)?;
    while let Some(chunk) = next_chunk().await {
        out.clear();
        stuffer.push(&chunk, &mut out);
        tokio::time::timeout(t.timeout, c.stream.write_all(&out))
            .await
            .map_err(|_| ImapError::Timeout {
                addr: addr.clone(),
                secs: t.timeout.as_secs(),
            })?
            .map_err(io)?;
    }
    c.stream.write_all(stuffer.finish()).await.map_err(io)?;
    c.stream.flush().await.map_err(io)?;
    let reply = c.read().await.map_err(|e| smtp_err(t, e))?;
    if !(200..300).contains(&reply.code) {
        return Err(ImapError::No {
            command: "DATA".into(),
            text: format!("{} {}", reply.code, reply.message),
        });
    }
    let _ = c.cmd(b"QUIT\r\n").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_block_end() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), Some(8));
        assert_eq!(header_end(b"A: b\n\nbody"), Some(6));
        assert_eq!(header_end(b"A: b\r\n"), None);
    }

    #[test]
    fn recipients_from_to_cc_bcc() {
        let h = b"From: Alice <alice@example.com>\r\nTo: \"Bob, B.\" <bob@example.com>, carol@example.com\r\nCc: team: dave@example.com, Erin <erin@example.com>;\r\nBcc: secret@example.com,\r\n BOB@example.com\r\nSubject: x\r\n\r\n";
        assert_eq!(
            recipients(h),
            [
                "bob@example.com",
                "carol@example.com",
                "dave@example.com",
                "erin@example.com",
                "secret@example.com"
            ]
        );
        assert!(recipients(b"Subject: none\r\n\r\n").is_empty());
    }

    #[test]
    fn dot_stuffing_across_chunks() {
        let mut s = DotStuffer::default();
        let mut out = Vec::new();
        s.push(b".start\r\nline\r", &mut out);
        s.push(b"\n.dot\nbare", &mut out);
        out.extend_from_slice(s.finish());
        assert_eq!(out, b"..start\r\nline\r\n..dot\r\nbare\r\n.\r\n");
        let mut s = DotStuffer::default();
        let mut out = Vec::new();
        s.push(b"done\r\n", &mut out);
        assert_eq!(s.finish(), b".\r\n");
    }
}
