//! Starting and stopping the server: storage, first snapshot, credential chain, listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use switchboard_auth::throttle::{Throttle, ThrottleConfig};
use switchboard_auth::{Authenticator, CredentialSource, NonceManager};
use switchboard_sip_transport::{Flows, SipHandler};
use switchboard_storage::{Storage, StorageError};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Listener, Settings};
use crate::credentials::{DbAuditSink, LocalUsers};
use crate::directory_auth::DirectoryUsers;
use crate::plugins::PluginRuntime;
use crate::readiness::Readiness;
use crate::sip::{SipDispatch, StreamDialer};
use crate::state::{ReloadError, Shared, Snapshot};
use crate::tls::TlsError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("server.data_dir: cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Storage(#[from] StorageError),
    /// TLS material is unusable.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// A plugin could not be loaded.
    #[error("{0}")]
    Plugins(#[from] crate::config::ConfigErrors),
    /// A listen address could not be bound.
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind {
        /// Config key of the listener.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why (often: address in use, or a privileged port).
        source: std::io::Error,
    },
}

/// Addresses actually bound (port 0 in config becomes the port the OS chose).
#[derive(Debug, Clone, Default)]
pub struct BoundAddrs {
    /// HTTPS.
    pub https: Vec<SocketAddr>,
    /// Plain HTTP.
    pub http: Vec<SocketAddr>,
    /// Admin.
    pub admin: Option<SocketAddr>,
    /// SIP over UDP.
    pub sip_udp: Vec<SocketAddr>,
    /// SIP over TCP.
    pub sip_tcp: Vec<SocketAddr>,
    /// SIP over TLS.
    pub sip_tls: Vec<SocketAddr>,
}

/// Credentials of the demo user created on first start.
#[derive(Debug, Clone)]
pub struct DemoUser {
    /// `demo@example.com`
    pub address: String,
    /// Random password.
    pub password: String,
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// Shared state (reload, storage).
    pub shared: Arc<Shared>,
    /// Bound addresses.
    pub addrs: BoundAddrs,
    /// Set when this start created the demo user.
    pub demo_user: Option<DemoUser>,
    /// Open SIP stream flows.
    pub sip_flows: Flows,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RunningServer {
    /// Stop accepting, let in-flight requests finish (up to `server.shutdown_grace_secs`).
    pub async fn shutdown(self) {
        let grace = Duration::from_secs(
            self.shared
                .current()
                .settings
                .config
                .server
                .shutdown_grace_secs,
        );
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }

    /// A token that is cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Open (and migrate) the database named by `settings`, creating the data directory.
pub async fn open_storage(settings: &Settings) -> Result<Storage, StartError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let storage = Storage::connect(
        &settings.database_url,
        settings.config.database.max_connections,
    )
    .await?;
    let applied = storage.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }
    Ok(storage)
}

/// Start everything configured in `settings`.
pub async fn start(settings: Settings) -> Result<RunningServer, StartError> {
    raise_fd_limit();
    let readiness = Readiness::default();
    for latch in ["storage", "listeners"] {
        readiness.register(latch);
    }
    let storage = open_storage(&settings).await?;
    readiness.release("storage");
    let demo_user = if settings.config.server.demo_user {
        ensure_demo_user(&storage).await?
    } else {
        None
    };

    let auth_cfg = settings.config.auth.clone();
    let plugin_runtime = Arc::new(PluginRuntime::new(&settings, storage.clone()));
    let snapshot = Snapshot::build(settings, 1, &plugin_runtime)
        .await
        .map_err(|e| match e {
            ReloadError::Config(c) => StartError::Plugins(c),
            ReloadError::Tls(t) => StartError::Tls(t),
        })?;
    let throttle = Throttle::new(ThrottleConfig {
        max_failures_per_user: auth_cfg.throttle.max_failures_per_user,
        max_failures_per_address: auth_cfg.throttle.max_failures_per_address,
        window: Duration::from_secs(auth_cfg.throttle.window_secs),
        lockout: Duration::from_secs(auth_cfg.throttle.lockout_secs),
        max_tracked: auth_cfg.throttle.max_tracked,
    });
    let mut secret = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut secret);
    let nonces = NonceManager::new(secret, Duration::from_secs(auth_cfg.nonce_ttl_secs));
    // Local users first, then the directory connector routed for the login's domain.
    let directories = Arc::new(DirectoryUsers::new(storage.clone()));
    let sources: Vec<Arc<dyn CredentialSource>> = vec![
        Arc::new(LocalUsers::new(storage.clone())),
        directories.clone(),
    ];
    let auth = Arc::new(Authenticator::new(
        sources,
        throttle,
        nonces,
        Arc::new(DbAuditSink::spawn(storage.clone())),
    ));
    for name in snapshot.settings.enabled_frontends() {
        readiness.release(&format!("frontend:{name}"));
    }
    let settings = snapshot.settings.clone();
    let shared = Arc::new(Shared::new(
        snapshot,
        storage,
        auth,
        readiness.clone(),
        plugin_runtime,
    ));
    directories.attach(&shared);

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut addrs = BoundAddrs::default();
    let http_limit = Arc::new(Semaphore::new(settings.config.http.max_connections));
    let sip_limit = Arc::new(Semaphore::new(settings.config.sip.max_connections));
    let sip_handler: Arc<dyn SipHandler> = Arc::new(SipDispatch::new(shared.clone()));
    // The flow table lives in the plugin runtime: it outlives reloads, and the SIP frontend
    // sends on it (`sip-transport`).
    let flows = shared.plugin_runtime.sip.flows().clone();
    shared
        .plugin_runtime
        .sip
        .set_dialer(Arc::new(StreamDialer::new(
            &shared,
            &sip_handler,
            flows.clone(),
            sip_limit.clone(),
            &shutdown,
            tracker.clone(),
        )));

    // SIP frontends check Digest credentials against the same chain (`sip-auth`).
    shared.plugin_runtime.sip.set_auth(shared.auth.clone());

    // Bind everything before serving anything, so a bad address fails the start cleanly.
    let mut tcp = Vec::new();
    for (kind, addr) in &settings.listeners {
        if *kind == Listener::SipUdp {
            continue;
        }
        let key = listener_key(*kind);
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                key,
                addr: *addr,
                source,
            })?;
        let bound = l.local_addr().unwrap_or(*addr);
        match kind {
            Listener::Https => addrs.https.push(bound),
            Listener::Http => addrs.http.push(bound),
            Listener::Admin => addrs.admin = Some(bound),
            Listener::SipTcp => addrs.sip_tcp.push(bound),
            Listener::SipTls => addrs.sip_tls.push(bound),
            Listener::SipUdp => {}
        }
        tcp.push((*kind, l));
    }
    let mut udp = Vec::new();
    for addr in settings.addrs(Listener::SipUdp) {
        let s = bind_udp(addr).map_err(|source| StartError::Bind {
            key: "sip.udp",
            addr,
            source,
        })?;
        addrs.sip_udp.push(s.local_addr().unwrap_or(addr));
        let s = Arc::new(s);
        shared.plugin_runtime.sip.add_udp(s.clone());
        udp.push(s);
    }

    for (kind, l) in tcp {
        let (shared, token, tr) = (shared.clone(), shutdown.clone(), tracker.clone());
        match kind {
            Listener::Https | Listener::Http => {
                let secure = kind == Listener::Https;
                let limit = http_limit.clone();
                tracker.spawn(crate::http::server::serve_listener(
                    l, secure, shared, limit, token, tr,
                ));
            }
            Listener::Admin => {
                tracker.spawn(crate::admin::serve(l, shared, token, tr));
            }
            Listener::SipTcp | Listener::SipTls => {
                let tls = kind == Listener::SipTls;
                let (h, f, lim) = (sip_handler.clone(), flows.clone(), sip_limit.clone());
                tracker.spawn(crate::sip::serve_stream_listener(
                    l, tls, shared, h, f, lim, token, tr,
                ));
            }
            Listener::SipUdp => {}
        }
    }
    for s in udp {
        tracker.spawn(crate::sip::serve_udp_socket(
            s,
            shared.clone(),
            sip_handler.clone(),
            shutdown.clone(),
        ));
    }
    readiness.release("listeners");
    tracing::info!(
        https = ?addrs.https, http = ?addrs.http, admin = ?addrs.admin,
        sip_udp = ?addrs.sip_udp, sip_tcp = ?addrs.sip_tcp, sip_tls = ?addrs.sip_tls,
        frontends = ?settings.enabled_frontends(),
        "switchboard is listening"
    );
    Ok(RunningServer {
        shared,
        addrs,
        demo_user,
        sip_flows: flows,
        shutdown,
        tracker,
    })
}

fn listener_key(kind: Listener) -> &'static str {
    match kind {
        Listener::Https => "http.https",
        Listener::Http => "http.plain",
        Listener::Admin => "admin.listen",
        Listener::SipUdp => "sip.udp",
        Listener::SipTcp => "sip.tcp",
        Listener::SipTls => "sip.tls",
    }
}

/// The demo domain and user created when the database has no users at all.
pub const DEMO_ADDRESS: &str = "demo@example.com";

async fn ensure_demo_user(storage: &Storage) -> Result<Option<DemoUser>, StartError> {
    if storage.count_users().await? > 0 {
        return Ok(None);
    }
    if storage.domain("example.com").await?.is_none() {
        storage.add_domain("example.com").await?;
    }
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
    storage
        .add_user(DEMO_ADDRESS, &password, Some("Demo User"))
        .await?;
    Ok(Some(DemoUser {
        address: DEMO_ADDRESS.into(),
        password,
    }))
}

/// Each idle connection is a file descriptor: lift the soft limit to the hard one.
fn raise_fd_limit() {
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_err() {
            tracing::debug!(soft, hard, "could not raise the open-file limit");
        }
    }
}

/// Receive buffer asked for on SIP UDP sockets (the kernel caps it at `net.core.rmem_max`).
/// The default (about 200 KiB) holds some 40 ms of traffic at 7,000 messages/s: a scheduling
/// hiccup on a busy machine then drops datagrams, which clients retransmit only after 500 ms.
const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// A SIP UDP socket with a large receive buffer.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}
