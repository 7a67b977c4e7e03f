//! Socket plumbing shared by every listener: accepting with shutdown, and TLS handshakes
//! under a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The next connection, or `None` once `shutdown` fires. Accept errors (EMFILE when out of
/// file descriptors…) are logged and retried after a pause instead of spinning.
pub async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    name: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "{name}: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Complete a TLS handshake within `deadline`; failures are counted and logged at debug
/// (scanners and broken clients are routine, not errors).
pub async fn tls_handshake(
    config: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    peer: SocketAddr,
    deadline: Duration,
    name: &'static str,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(deadline, TlsAcceptor::from(config).accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            metrics::counter!("tls_handshake_failures_total", "listener" => name, "reason" => "error").increment(1);
            tracing::debug!(%peer, error = %e, "{name}: TLS handshake failed");
            None
        }
        Err(_) => {
            metrics::counter!("tls_handshake_failures_total", "listener" => name, "reason" => "timeout").increment(1);
            tracing::debug!(%peer, "{name}: TLS handshake timed out");
            None
        }
    }
}
