//! A loopback TCP proxy in front of an HTTP server that records each connection's request
//! line and `Depth` header (`PROPFIND /a/cal/ 0`), so tests can check how many DAV requests
//! an operation costs. The connector opens one connection per DAV request, so each recorded
//! line is one request. Plain threads: the connector tests are synchronous.

use super::proxy::{RecordingProxy, Records};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

/// Start one in front of `127.0.0.1:upstream`.
pub fn start(upstream: u16) -> RecordingProxy {
    RecordingProxy::start(upstream, forward)
}

fn forward(mut client: TcpStream, mut server: TcpStream, seen: Records) {
    // Read the header block (bounded), record it, then pass everything through.
    let mut head = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let mut entry = format!(
        "{} {}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    for l in lines.take_while(|l| !l.is_empty()) {
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("depth") {
                entry.push(' ');
                entry.push_str(v.trim());
            }
        }
    }
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    if server.write_all(&head).is_err() {
        return;
    }
    let (Ok(mut down_from), Ok(mut down_to)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut down_from, &mut down_to);
        let _ = down_to.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut client, &mut server);
    let _ = server.shutdown(Shutdown::Write);
}
