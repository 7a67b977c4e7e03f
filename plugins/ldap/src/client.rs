//! Talking to the directory server: a plugin-owned tokio runtime, pooled connections, and the
//! three operations (find a login's entry, bind as it, page through a search).
//!
//! This is native, trusted code: it opens its own TCP/TLS sockets with `ldap3` instead of
//! going through the host's `outbound` capability (which the sandboxed WebAssembly build
//! would need), so it is only ever built as a native library or linked into the server as a
//! built-in. Connections live in process statics, which is fine natively: one pool per
//! distinct configuration, a small number of idle connections each.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::settings::Settings;
use crate::LdapError;

/// LDAP result code `invalidCredentials` (RFC 4511 A.1).
const INVALID_CREDENTIALS: u32 = 49;
/// `sizeLimitExceeded`: the server stopped early; what came is still good.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// The plugin's own runtime: one worker drives the pooled connections' background tasks.
/// Calls from the host arrive on blocking threads and wait on a channel, never `block_on`,
/// so this works the same when the plugin is a separate `.so` (its own tokio copy) and when
/// it is linked into the server (sharing the server's tokio).
fn runtime() -> Result<&'static tokio::runtime::Runtime, LdapError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-ldap")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| LdapError::Internal(format!("cannot start the LDAP runtime: {e}")))
}

/// Run `fut` on the plugin's runtime and wait for it on this (blocking) thread.
pub fn run<T, F>(fut: F) -> Result<T, LdapError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, LdapError>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| LdapError::Internal("the LDAP task ended without an answer".into()))?
}

/// Idle connections of one configuration.
#[derive(Debug)]
pub struct Pool {
    settings: Arc<Settings>,
    /// Bound as the service account; shared (ldap3 multiplexes operations on one handle).
    service: Mutex<Vec<Ldap>>,
    /// For user binds: checked out exclusively, since a bind changes who the connection is.
    binds: Mutex<Vec<Ldap>>,
}

/// The pool for `settings` (one per distinct configuration, so a reload with new settings
/// gets fresh connections).
pub fn pool(settings: &Arc<Settings>) -> Arc<Pool> {
    static POOLS: OnceLock<Mutex<Vec<Arc<Pool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pools.iter().find(|p| *p.settings == **settings) {
        return p.clone();
    }
    // Old configurations' idle connections are dropped (and so closed) past a few.
    if pools.len() >= 4 {
        pools.remove(0);
    }
    let p = Arc::new(Pool {
        settings: settings.clone(),
        service: Mutex::new(Vec::new()),
        binds: Mutex::new(Vec::new()),
    });
    pools.push(p.clone());
    p
}

fn tls_config(s: &Settings) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let mut roots = rustls::RootCertStore::empty();
    match &s.endpoint.ca_file {
        Some(file) => {
            let bad = |why: String| LdapError::Setting {
                setting: "ca_file",
                message: format!("{}: {why}", file.display()),
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificates in it".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| LdapError::Internal(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Turn an `ldap3` error into ours, naming the server.
fn classify(s: &Settings, what: &str, e: ldap3::LdapError) -> LdapError {
    let host_port = s.endpoint.host_port.clone();
    match e {
        ldap3::LdapError::Io { source } => LdapError::Unreachable {
            host_port,
            message: format!("{what}: {source}"),
        },
        ldap3::LdapError::Timeout { .. } => LdapError::Unreachable {
            host_port,
            message: format!("{what}: no answer within {} ms", s.timeout.as_millis()),
        },
        ldap3::LdapError::LdapResult { result } => LdapError::Server {
            host_port,
            message: format!("{what}: {result}"),
        },
        other => LdapError::Server {
            host_port,
            message: format!("{what}: {other}"),
        },
    }
}

/// Bound `fut` by the configured timeout.
async fn timed<T>(
    s: &Settings,
    what: &str,
    fut: impl Future<Output = Result<T, ldap3::LdapError>>,
) -> Result<T, LdapError> {
    match tokio::time::timeout(s.timeout, fut).await {
        Ok(r) => r.map_err(|e| classify(s, what, e)),
        Err(_) => Err(LdapError::Unreachable {
            host_port: s.endpoint.host_port.clone(),
            message: format!("{what}: no answer within {} ms", s.timeout.as_millis()),
        }),
    }
}

/// Open a connection (TLS per the settings) and start its background driver.
async fn connect(s: &Settings) -> Result<Ldap, LdapError> {
    let mut cs = LdapConnSettings::new().set_conn_timeout(s.timeout);
    if s.endpoint.ldaps || s.endpoint.starttls {
        cs = cs
            .set_config(tls_config(s)?)
            .set_starttls(!s.endpoint.ldaps && s.endpoint.starttls);
    }
    let what = if s.endpoint.ldaps {
        "connecting (ldaps)"
    } else if s.endpoint.starttls {
        "connecting (StartTLS)"
    } else {
        "connecting"
    };
    let (conn, ldap) = timed(s, what, LdapConnAsync::with_settings(cs, &s.endpoint.url)).await?;
    tokio::spawn(async move {
        // Ends when the last handle is dropped or the server closes the connection.
        let _ = conn.drive().await;
    });
    Ok(ldap)
}

/// Bind as the service account (or stay anonymous when none is configured).
async fn service_connection(s: &Settings) -> Result<Ldap, LdapError> {
    let mut ldap = connect(s).await?;
    if !s.bind_dn.is_empty() {
        let res = timed(
            s,
            "binding as the service account",
            ldap.simple_bind(&s.bind_dn, &s.bind_password),
        )
        .await?;
        if res.rc == INVALID_CREDENTIALS {
            return Err(LdapError::Setting {
                setting: "bind_password",
                message: format!(
                    "the directory at {} refused the service account {:?} (invalidCredentials)",
                    s.endpoint.host_port, s.bind_dn
                ),
            });
        }
        if res.rc != 0 {
            return Err(LdapError::Server {
                host_port: s.endpoint.host_port.clone(),
                message: format!("binding as the service account {:?}: {res}", s.bind_dn),
            });
        }
    }
    Ok(ldap)
}

impl Pool {
    fn take_service(&self) -> Option<Ldap> {
        let mut v = self.service.lock().unwrap_or_else(|p| p.into_inner());
        v.iter_mut().position(|l| !l.is_closed()).map(|i| {
            // Keep the handle pooled (it is shared); hand out a clone.
            let l = v[i].clone();
            v.rotate_left(1);
            l
        })
    }

    fn keep_service(&self, ldap: Ldap) {
        let mut v = self.service.lock().unwrap_or_else(|p| p.into_inner());
        v.retain_mut(|l| !l.is_closed());
        if v.len() < self.settings.pool_size {
            v.push(ldap);
        }
    }

    /// Run `op` on a service connection; a pooled connection that turns out dead is replaced
    /// once.
    async fn with_service<T, F, Fut>(&self, op: F) -> Result<T, LdapError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, LdapError>>,
    {
        if let Some(ldap) = self.take_service() {
            match op(ldap).await {
                Err(LdapError::Unreachable { .. }) => {
                    // Stale (server restarted, idle timeout): drop it and retry fresh.
                    self.service
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain_mut(|l| !l.is_closed());
                }
                other => return other,
            }
        }
        let ldap = service_connection(&self.settings).await?;
        self.keep_service(ldap.clone());
        op(ldap).await
    }

    async fn take_bind(&self) -> Result<Ldap, LdapError> {
        let idle = {
            let mut v = self.binds.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(mut l) = v.pop() {
                if !l.is_closed() {
                    found = Some(l);
                    break;
                }
            }
            found
        };
        match idle {
            Some(l) => Ok(l),
            None => connect(&self.settings).await,
        }
    }

    fn keep_bind(&self, ldap: Ldap) {
        let mut v = self.binds.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < self.settings.pool_size {
            v.push(ldap);
        }
    }
}

/// Search for entries under the base DN (subtree), page by page with the simple paged
/// results control, until `limit` entries or the end. A search stopped early tells the
/// server to release its paging state (page size 0, RFC 2696).
async fn paged_search(
    s: &Settings,
    mut ldap: Ldap,
    filter: &str,
    attrs: &[String],
    limit: usize,
) -> Result<Vec<SearchEntry>, LdapError> {
    let mut out = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let page = s.page_size.min((limit - out.len()).max(1) as i32);
        let result = timed(
            s,
            "searching",
            ldap.with_controls(PagedResults {
                size: page,
                cookie: cookie.clone(),
            })
            .search(&s.base_dn, Scope::Subtree, filter, attrs.to_vec()),
        )
        .await?;
        let (entries, res) = (result.0, result.1);
        if res.rc != 0 && res.rc != SIZE_LIMIT_EXCEEDED {
            return Err(LdapError::Server {
                host_port: s.endpoint.host_port.clone(),
                message: format!("searching {:?} with {filter}: {res}", s.base_dn),
            });
        }
        out.extend(
            entries
                .into_iter()
                .filter(|e| !e.is_ref() && !e.is_intermediate())
                .map(SearchEntry::construct),
        );
        cookie = res
            .ctrls
            .iter()
            .find_map(|c| match c {
                Control(Some(ControlType::PagedResults), raw) => {
                    Some(raw.parse::<PagedResults>().cookie)
                }
                _ => None,
            })
            .unwrap_or_default();
        if cookie.is_empty() || res.rc == SIZE_LIMIT_EXCEEDED {
            break;
        }
        if out.len() >= limit {
            let _ = timed(
                s,
                "ending a paged search",
                ldap.with_controls(PagedResults { size: 0, cookie }).search(
                    &s.base_dn,
                    Scope::Subtree,
                    filter,
                    vec!["1.1"],
                ),
            )
            .await;
            break;
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// The entries matching `filter`, at most `limit`.
pub async fn search(
    pool: Arc<Pool>,
    filter: String,
    attrs: Vec<String>,
    limit: usize,
) -> Result<Vec<SearchEntry>, LdapError> {
    let s = pool.settings.clone();
    pool.with_service(|ldap| paged_search(&s, ldap, &filter, &attrs, limit))
        .await
}

/// Check `password` for the entry `dn` by binding as it on a connection of its own.
/// `Ok(false)` for invalidCredentials.
pub async fn bind_as(pool: Arc<Pool>, dn: String, password: String) -> Result<bool, LdapError> {
    let s = pool.settings.clone();
    let mut ldap = pool.take_bind().await?;
    let res = match timed(&s, "binding as the user", ldap.simple_bind(&dn, &password)).await {
        Ok(r) => r,
        Err(LdapError::Unreachable { .. }) => {
            // A stale pooled connection: one fresh try.
            ldap = connect(&s).await?;
            timed(&s, "binding as the user", ldap.simple_bind(&dn, &password)).await?
        }
        Err(e) => return Err(e),
    };
    match res.rc {
        0 => {
            pool.keep_bind(ldap);
            Ok(true)
        }
        INVALID_CREDENTIALS => {
            pool.keep_bind(ldap);
            Ok(false)
        }
        _ => Err(LdapError::Server {
            host_port: s.endpoint.host_port.clone(),
            message: format!("binding as {dn:?}: {res}"),
        }),
    }
}
