//! The `outbound` capability: TCP (optionally TLS) connections for connectors, only to
//! `host:port` pairs that both the manifest asks for and the admin grants in
//! `plugins.<name>.outbound`. Connections belong to the plugin (not to one call), so a
//! connector can keep a pool of IMAP sessions across requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_sdk::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most connections one plugin may hold open.
pub const MAX_CONNECTIONS: usize = 256;
/// Largest single read handed to a plugin.
pub const MAX_READ: u32 = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `host:port` a plugin may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Host name or address, compared case-insensitively.
    pub host: String,
    /// Port.
    pub port: u16,
}

#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// The connections of one plugin.
#[derive(Debug, Default)]
pub struct Connections {
    grants: Vec<Grant>,
    next: AtomicU32,
    open: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<Stream>>>>,
}

impl Connections {
    /// A table allowing exactly `grants`.
    pub fn new(grants: Vec<Grant>) -> Connections {
        Connections {
            grants,
            next: AtomicU32::new(1),
            open: Mutex::default(),
        }
    }

    fn get(&self, conn: u32) -> Result<Arc<tokio::sync::Mutex<Stream>>, Error> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&conn)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no open connection {conn}")))
    }

    /// Whether `host:port` is granted.
    pub fn allowed(&self, host: &str, port: u16) -> bool {
        self.grants
            .iter()
            .any(|g| g.port == port && g.host.eq_ignore_ascii_case(host))
    }

    /// Open a connection.
    pub async fn connect(
        &self,
        plugin: &str,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<u32, Error> {
        if !self.allowed(host, port) {
            tracing::warn!(
                plugin,
                host,
                port,
                "outbound connection refused: not granted"
            );
            return Err(Error::Denied(format!(
                "{host}:{port} is not granted to plugin {plugin} (manifest capabilities.outbound and plugins.{plugin}.outbound)"
            )));
        }
        if self.open.lock().unwrap_or_else(|p| p.into_inner()).len() >= MAX_CONNECTIONS {
            return Err(Error::Quota(format!(
                "at most {MAX_CONNECTIONS} open connections per plugin"
            )));
        }
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| Error::Unavailable(format!("{host}:{port}: connect timed out")))?
            .map_err(|e| Error::Unavailable(format!("{host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = if tls {
            let name = rustls_pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| Error::Invalid(format!("{host}: not a TLS server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(client_config())
                .connect(name, tcp)
                .await
                .map_err(|e| Error::Unavailable(format!("{host}:{port}: TLS: {e}")))?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(tokio::sync::Mutex::new(stream)));
        Ok(id)
    }

    /// Read up to `max` bytes (empty: closed by the peer).
    pub async fn read(&self, conn: u32, max: u32) -> Result<Vec<u8>, Error> {
        let stream = self.get(conn)?;
        let mut stream = stream.lock().await;
        let mut buf = vec![0u8; max.clamp(1, MAX_READ) as usize];
        let n = match &mut *stream {
            Stream::Plain(s) => s.read(&mut buf).await,
            Stream::Tls(s) => s.read(&mut buf).await,
        }
        .map_err(|e| Error::Unavailable(format!("read: {e}")))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Write all of `data`.
    pub async fn write(&self, conn: u32, data: &[u8]) -> Result<(), Error> {
        let stream = self.get(conn)?;
        let mut stream = stream.lock().await;
        match &mut *stream {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => s.write_all(data).await,
        }
        .map_err(|e| Error::Unavailable(format!("write: {e}")))
    }

    /// Close (dropping the socket).
    pub fn close(&self, conn: u32) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conn);
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The rustls client config for outbound TLS: the public web PKI roots, ring.
pub(crate) fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn granted_loopback_echo_and_refusals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let conns = Connections::new(vec![Grant {
            host: "127.0.0.1".into(),
            port,
        }]);
        let id = conns.connect("p", "127.0.0.1", port, false).await.unwrap();
        conns.write(id, b"hello").await.unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            let chunk = conns.read(id, 16).await.unwrap();
            assert!(!chunk.is_empty());
            got.extend(chunk);
        }
        assert_eq!(got, b"hello");
        conns.close(id);
        assert!(matches!(conns.read(id, 1).await, Err(Error::NotFound(_))));

        let err = conns
            .connect("p", "127.0.0.2", port, false)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Denied(ref t) if t.contains("not granted")),
            "{err}"
        );
        let err = conns
            .connect("p", "127.0.0.1", port.wrapping_add(1), false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Denied(_)), "{err}");
        assert_eq!(conns.count(), 0);
    }
}
