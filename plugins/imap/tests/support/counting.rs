//! A loopback TCP proxy in front of an IMAP server that records every command a client sends
//! (`UID FETCH 1:3 (UID FLAGS) (CHANGEDSINCE 7 VANISHED)` without its tag), so tests can
//! check how many round trips an operation costs. Plain threads: the connector tests are
//! synchronous.

use super::proxy::{RecordingProxy, Records};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

/// Start one in front of `127.0.0.1:upstream`.
pub fn start(upstream: u16) -> RecordingProxy {
    RecordingProxy::start(upstream, forward)
}

fn forward(client: TcpStream, server: TcpStream, seen: Records) {
    let (Ok(mut down_from), Ok(mut down_to)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut down_from, &mut down_to);
        let _ = down_to.shutdown(Shutdown::Write);
    });
    let (mut from, mut to) = (client, server);
    let mut line = Vec::new();
    // Bytes of a literal still to pass before the command's line goes on.
    let mut skip = 0usize;
    let mut continuing = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            if skip > 0 {
                let k = skip.min(data.len());
                skip -= k;
                data = &data[k..];
                continue;
            }
            let Some(end) = data.iter().position(|b| *b == b'\n') else {
                line.extend_from_slice(data);
                break;
            };
            line.extend_from_slice(&data[..=end]);
            data = &data[end + 1..];
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            line.clear();
            if !continuing {
                if let Some((_tag, command)) = text.split_once(' ') {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(command.to_string());
                }
            }
            let literal = text
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
            continuing = literal.is_some();
            skip = literal.unwrap_or(0);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
