//! TLS for the IMAP and SMTP connections (rustls with the ring provider): checked against the
//! Mozilla roots (webpki-roots), or against the admin's own CA file (`ca_file`, PEM) for
//! servers with an internal certificate.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::error::{ImapError, Result};
use crate::imap::session::Io;

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain TCP (loopback or trusted networks only).
    None,
    /// Plain TCP upgraded with STARTTLS before logging in; refused if the server lacks it.
    StartTls,
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
}

impl Mode {
    /// From a setting: `none`, `starttls`, `tls`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "plain" => Some(Mode::None),
            "starttls" => Some(Mode::StartTls),
            "tls" | "implicit" | "ssl" => Some(Mode::Implicit),
            _ => None,
        }
    }
}

fn config(ca_file: Option<&str>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ImapError::Config(format!("ca_file {path}: {e}")))?;
            for c in certs {
                let c = c.map_err(|e| ImapError::Config(format!("ca_file {path}: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| ImapError::Config(format!("ca_file {path}: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A connector trusting the public roots or `ca_file`.
pub fn connector(ca_file: Option<&str>) -> Result<TlsConnector> {
    Ok(TlsConnector::from(Arc::new(config(ca_file)?)))
}

/// Run the TLS handshake over `io`, checking the certificate against `host`.
pub async fn wrap(
    io: Box<dyn Io>,
    host: &str,
    addr: &str,
    ca_file: Option<&str>,
) -> Result<Box<dyn Io>> {
    let connector = connector(ca_file)?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| ImapError::Tls {
        addr: addr.to_string(),
        reason: format!("bad server name {host:?}: {e}"),
    })?;
    let stream = connector
        .connect(name, io)
        .await
        .map_err(|e| ImapError::Tls {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    Ok(Box::new(stream))
}
