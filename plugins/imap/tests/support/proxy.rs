//! A loopback TCP proxy that hands each connection, with its upstream, to a recording
//! `forward` function; what it records is taken with [`RecordingProxy::take`]. The IMAP
//! command counter (`counting`) and the DAV request log (`http_log`) are its two users.
//! Plain threads: the connector tests are synchronous.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What a proxy's `forward` appends to.
pub type Records = Arc<Mutex<Vec<String>>>;

/// The proxy; it lives as long as the test process (its threads end with their connections).
pub struct RecordingProxy {
    pub port: u16,
    records: Records,
}

impl RecordingProxy {
    /// Listen on 127.0.0.1 and forward every connection to `127.0.0.1:upstream` through
    /// `forward(client, server, records)`, one thread per connection.
    pub fn start(upstream: u16, forward: fn(TcpStream, TcpStream, Records)) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let records: Records = Arc::new(Mutex::new(Vec::new()));
        let seen = records.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let seen = seen.clone();
                std::thread::spawn(move || forward(client, server, seen));
            }
        });
        RecordingProxy { port, records }
    }

    /// What was recorded since the last call, oldest first.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
