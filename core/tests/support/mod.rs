//! Test support: an in-process server on ephemeral loopback ports with its own temp data
//! directory, and a minimal HTTP/1.1 client over TLS that trusts the server's generated
//! certificate. Hand-written requests let tests control keep-alive and send broken input.
#![allow(dead_code)]

#[allow(dead_code)]
pub mod plugins;
pub mod sip;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use switchboard_core::config::{load, ConfigSource};
use switchboard_core::server::{start, RunningServer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A TLS client that trusts exactly the certificate in `cert` (the server's generated one).
pub fn connector_trusting(cert: &std::path::Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

pub const USER: &str = "alice@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestServer {
    pub running: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

/// Config with every listener on 127.0.0.1:0; `extra` is appended (later keys win only if
/// they are in sections not already present, so tests pass whole sections).
pub fn base_config(data_dir: &std::path::Path, extra: &str) -> String {
    let mut sections = BTreeMap::new();
    sections.insert(
        "server",
        format!(
            "data_dir = {:?}\ndemo_user = false\nshutdown_grace_secs = 2",
            data_dir.display().to_string()
        ),
    );
    sections.insert(
        "http",
        "https = [\"127.0.0.1:0\"]\nplain = [\"127.0.0.1:0\"]".to_string(),
    );
    sections.insert("admin", "listen = \"127.0.0.1:0\"".to_string());
    // ActiveSync and SIP IM are on by default (embedded components, compiled at start);
    // tests that do not exercise them leave them off so each test process does not compile
    // them. EAS and SIP tests pass their own `[frontends.*]` and `[plugins.*]` sections (see
    // tests/eas_interop.rs, tests/sip_im.rs).
    sections.insert("frontends.eas", "enabled = false".to_string());
    sections.insert("plugins.eas", "enabled = false".to_string());
    sections.insert("frontends.sip", "enabled = false".to_string());
    sections.insert("plugins.sip", "enabled = false".to_string());
    sections.insert(
        "sip",
        "udp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]".to_string(),
    );
    let mut out = String::new();
    let mut overridden = Vec::new();
    for block in extra.split("\n[").filter(|b| !b.trim().is_empty()) {
        let block = block.trim_start_matches('[');
        let name = block.split(']').next().unwrap_or("").to_string();
        overridden.push(name.clone());
        out.push_str(&format!("[{block}\n"));
    }
    for (name, body) in sections {
        if !overridden.iter().any(|o| o == name) {
            out.push_str(&format!("[{name}]\n{body}\n"));
        }
    }
    out
}

/// Write `base_config(data, extra)` to `config_path`, start the server in this process, and
/// add example.com with [`USER`] (display name "Alice Example").
pub async fn start_server(
    config_path: &std::path::Path,
    data: &std::path::Path,
    extra: &str,
) -> anyhow::Result<RunningServer> {
    std::fs::write(config_path, base_config(data, extra))?;
    let settings = load(&ConfigSource {
        path: Some(config_path.to_path_buf()),
        env: BTreeMap::new(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = start(settings).await?;
    let storage = &running.shared.storage;
    storage.add_domain("example.com").await?;
    storage
        .add_user(USER, PASSWORD, Some("Alice Example"))
        .await?;
    Ok(running)
}

impl TestServer {
    pub async fn start(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("switchboard.toml");
        let running = start_server(&config_path, &dir.path().join("data"), extra)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        TestServer {
            running: Some(running),
            dir,
            config_path,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.running.as_ref().unwrap()
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.server().addrs.https[0]
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.server().addrs.http[0]
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server().addrs.admin.unwrap()
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            &self.config_path,
            base_config(&self.dir.path().join("data"), extra),
        )
        .unwrap();
    }

    pub fn connector(&self) -> TlsConnector {
        connector_trusting(&self.dir.path().join("data/tls/cert.pem"))
    }

    pub async fn tls_connect(&self, addr: SocketAddr) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        self.connector()
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    pub async fn https(&self) -> Conn<TlsStream<TcpStream>> {
        Conn::new(self.tls_connect(self.https_addr()).await)
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection speaking HTTP/1.1 by hand.
pub struct Conn<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S) -> Self {
        Self {
            io: BufReader::new(io),
        }
    }

    /// Write bytes; a server that already closed the connection is not an error here (tests
    /// judge by what can be read back).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let io = self.io.get_mut();
        if io.write_all(bytes).await.is_ok() {
            let _ = io.flush().await;
        }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes).await;
        self.read_response()
            .await
            .expect("server closed the connection instead of answering")
    }

    /// Read one response; `None` if the server closed the connection first.
    pub async fn read_response(&mut self) -> Option<Response> {
        let mut status_line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(30), self.io.read_line(&mut status_line))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.io.read_line(&mut line).await.ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let mut size = String::new();
                self.io.read_line(&mut size).await.ok()?;
                let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
                let mut chunk = vec![0; size + 2];
                self.io.read_exact(&mut chunk).await.ok()?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            self.io.read_exact(&mut body).await.ok()?;
            body
        };
        Some(Response {
            status,
            headers,
            body,
        })
    }

    /// True if the server closes the connection within `within` (reads until EOF).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut sink = Vec::new();
        matches!(
            tokio::time::timeout(within, self.io.read_to_end(&mut sink)).await,
            Ok(Ok(_)) | Ok(Err(_))
        )
    }
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub const AUTODISCOVER_REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;

/// Plain-HTTP request to the admin listener.
pub async fn admin(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut c = Conn::new(TcpStream::connect(addr).await.unwrap());
    c.request(method, path, &[], b"").await
}

/// `program` from PATH. A real peer the test cannot run without: a missing one fails the test
/// with the Debian package to install (`.ci/run` installs them all) rather than skipping it.
pub fn required_tool(program: &str, debian_package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{program} not found on PATH: install the Debian package {debian_package} \
                 (.ci/run does)"
            )
        })
}
