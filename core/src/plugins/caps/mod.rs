//! Host capabilities: what plugins may ask of the server, one module per capability, and the
//! per-call context that carries who is asking. The WebAssembly linker and the native
//! callback both end up in [`CallCtx`], so a capability is written and tested once.

pub mod credentials;
pub mod events;
pub mod kv;
pub mod kv_memory;
pub mod outbound;
pub mod request_body;
pub mod sip;
pub mod sip_retransmit;
pub mod staging;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use switchboard_sdk::abi::{encode, DirectoryCall, DirectoryReply, HostCall, MailCall, MailReply};
use switchboard_sdk::types::Level;
use switchboard_sdk::{Error, Principal};

use self::events::EventHub;
use self::kv::Kv;
use self::outbound::Connections;
use self::request_body::RequestBody;
use self::staging::Staging;
use crate::plugins::manifest::World;

/// Where mailstore and directory calls go: the plugin set of the current snapshot, which
/// knows which connector serves which domain.
pub trait Routes: Send + Sync + std::fmt::Debug {
    /// Run a mailstore call on the connector for `call.who()`'s domain; staged uploads the
    /// call names live in `staging` (the calling request's), and `secret` is who logged in
    /// on the request (see [`credentials`]).
    fn mail(
        &self,
        call: MailCall,
        staging: Arc<Staging>,
        secret: Option<credentials::UserSecret>,
    ) -> BoxFuture<'static, Result<MailReply, Error>>;
    /// Run a directory call on the connector for its domain.
    fn directory(&self, call: DirectoryCall) -> BoxFuture<'static, Result<DirectoryReply, Error>>;
}

/// What one loaded plugin may do; fixed when it is loaded.
pub struct PluginInfo {
    /// `[plugins.<name>]`
    pub name: String,
    /// Its world.
    pub world: World,
    /// Its kv space.
    pub kv: Kv,
    /// Event topics it may publish.
    pub event_topics: Vec<String>,
    /// Its outbound connections.
    pub conns: Connections,
    /// Granted directories (name → host path).
    pub dirs: BTreeMap<String, PathBuf>,
    /// Its settings as text.
    pub settings: BTreeMap<String, String>,
    /// Per-domain overrides of `settings` (lowercased domain → key → value).
    pub domain_settings: BTreeMap<String, BTreeMap<String, String>>,
    /// May ask for the user's password (`credentials.password`).
    pub pass_password: bool,
    /// Most bytes one request may stage (`http.max_body_bytes`).
    pub upload_limit: u64,
}

// By hand: settings may hold resolved secrets (`env:`/`file:` values such as bind passwords),
// so debug output names the keys only.
impl std::fmt::Debug for PluginInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInfo")
            .field("name", &self.name)
            .field("world", &self.world)
            .field("kv", &self.kv)
            .field("event_topics", &self.event_topics)
            .field("conns", &self.conns)
            .field("dirs", &self.dirs)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field(
                "domain_settings",
                &self
                    .domain_settings
                    .iter()
                    .map(|(d, t)| (d, t.keys().collect::<Vec<_>>()))
                    .collect::<Vec<_>>(),
            )
            .field("pass_password", &self.pass_password)
            .field("upload_limit", &self.upload_limit)
            .finish()
    }
}

/// Everything a host call needs to know about the call it is part of.
#[derive(Debug, Clone)]
pub struct CallCtx {
    /// The plugin making the call.
    pub info: Arc<PluginInfo>,
    /// The event hub.
    pub hub: Arc<EventHub>,
    /// Connector routing of the snapshot the request runs under.
    pub routes: Option<Arc<dyn Routes>>,
    /// The user the call acts for.
    pub principal: Option<Principal>,
    /// The rest of the HTTP request body, if any.
    pub body: Option<Arc<tokio::sync::Mutex<RequestBody>>>,
    /// Uploads staged during this request (shared with the connectors it calls).
    pub staging: Arc<Staging>,
    /// The core's SIP sockets (SIP frontends on a running server only).
    pub sip: Option<Arc<sip::SipSockets>>,
    /// Who logged in on this request and with what password (HTTP Basic requests only);
    /// passed on to mail connectors granted `pass_password`.
    pub secret: Option<credentials::UserSecret>,
}

/// The same user (case-insensitive, as addresses are).
pub(crate) fn same_principal(a: &Principal, b: &Principal) -> bool {
    a.user.eq_ignore_ascii_case(&b.user) && a.domain.eq_ignore_ascii_case(&b.domain)
}

impl CallCtx {
    /// `log.write`
    pub fn log(&self, level: Level, message: &str) {
        let plugin = self.info.name.as_str();
        // Plugins write what they like; keep one line and a sane length in the server log.
        let message: String = message.chars().take(4096).collect();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    /// `config.get`: the setting for the domain of the user the call is about when the admin
    /// set one (`domain_settings`), else the plugin's.
    pub fn config(&self, key: &str) -> Option<String> {
        self.principal
            .as_ref()
            .and_then(|p| {
                self.info
                    .domain_settings
                    .get(&p.domain.to_ascii_lowercase())
            })
            .and_then(|t| t.get(key))
            .or_else(|| self.info.settings.get(key))
            .cloned()
    }

    /// `credentials.password`: the password `who` logged in with on this request, for a mail
    /// connector granted `pass_password`; none otherwise (another user, no Basic login, not
    /// granted).
    pub fn password(&self, who: &Principal) -> Option<String> {
        if self.info.world != World::MailConnector || !self.info.pass_password {
            return None;
        }
        self.secret
            .as_ref()
            .and_then(|s| s.password_for(who))
            .map(str::to_string)
    }

    /// `events.publish`
    pub fn publish(&self, key: &str) -> Result<(), Error> {
        events::check_topic(&self.info.name, &self.info.event_topics, key)?;
        self.hub.publish(key);
        Ok(())
    }

    fn routes(&self) -> Result<&Arc<dyn Routes>, Error> {
        self.routes
            .as_ref()
            .ok_or_else(|| Error::Unavailable("no connector routing in this context".into()))
    }

    /// A mailstore import: only frontends, only for the principal of the request.
    pub async fn mail(&self, call: MailCall) -> Result<MailReply, Error> {
        if self.info.world != World::HttpFrontend {
            return Err(Error::Denied(format!(
                "the {} world does not import the mailstore",
                self.info.world
            )));
        }
        match &self.principal {
            Some(p) if same_principal(p, call.who()) => {}
            Some(p) => {
                return Err(Error::Denied(format!(
                    "a request of {} cannot reach the mailbox of {}",
                    p.address(),
                    call.who().address()
                )))
            }
            None => {
                return Err(Error::Denied(
                    "mailbox access needs an authenticated request".into(),
                ))
            }
        }
        self.routes()?
            .mail(call, self.staging.clone(), self.secret.clone())
            .await
    }

    /// The staging area, for the worlds that import it.
    pub fn staging(&self) -> Result<&Staging, Error> {
        match self.info.world {
            World::HttpFrontend | World::MailConnector => Ok(&self.staging),
            w => Err(Error::Denied(format!(
                "the {w} world does not import staging"
            ))),
        }
    }

    /// A directory import: frontends only; searches stay within the principal's domain.
    pub async fn directory(&self, call: DirectoryCall) -> Result<DirectoryReply, Error> {
        if !matches!(self.info.world, World::HttpFrontend | World::SipFrontend) {
            return Err(Error::Denied(format!(
                "the {} world does not import the directory",
                self.info.world
            )));
        }
        if let Some(p) = &self.principal {
            match &call {
                DirectoryCall::Search { domain, .. } if !p.domain.eq_ignore_ascii_case(domain) => {
                    return Err(Error::Denied(format!(
                        "{} may only search the directory of {}",
                        p.address(),
                        p.domain
                    )))
                }
                // A request of one user must not become a password oracle for others.
                DirectoryCall::Authenticate { who, .. } if !same_principal(p, who) => {
                    return Err(Error::Denied(format!(
                        "a request of {} cannot check the password of {}",
                        p.address(),
                        who.address()
                    )))
                }
                _ => {}
            }
        }
        self.routes()?.directory(call).await
    }

    /// `request-body.read`
    pub async fn read_body(&self, max: u32) -> Result<Vec<u8>, Error> {
        match &self.body {
            Some(body) => body.lock().await.read(max).await,
            None => Ok(Vec::new()),
        }
    }

    /// `outbound.connect`
    pub async fn connect(&self, host: &str, port: u16, tls: bool) -> Result<u32, Error> {
        if !self.info.world.has_outbound() {
            return Err(Error::Denied(format!(
                "the {} world has no outbound connections",
                self.info.world
            )));
        }
        self.info
            .conns
            .connect(&self.info.name, host, port, tls)
            .await
    }

    /// The `sip-transport` import: SIP frontends only, and only on a server with SIP sockets.
    pub fn sip(&self) -> Result<&sip::SipSockets, Error> {
        if self.info.world != World::SipFrontend {
            return Err(Error::Denied(format!(
                "the {} world does not import sip-transport",
                self.info.world
            )));
        }
        self.sip.as_deref().ok_or_else(sip_unavailable)
    }

    /// `sip-transport.send-to` (`how`: [`sip::Sent::Request`]) and `relay-to`
    /// ([`sip::Sent::Relay`]).
    pub async fn sip_send(
        &self,
        transport: &str,
        target: &str,
        message: &[u8],
        how: sip::Sent,
    ) -> Result<(), Error> {
        self.sip()?.send(transport, target, message, how).await
    }

    /// `sip-auth.verify-digest` (SIP frontends only).
    pub async fn sip_verify_digest(
        &self,
        method: &str,
        authorization: &str,
        realm: &str,
        source: &str,
    ) -> Result<Option<Principal>, Error> {
        self.sip()?
            .verify_digest(method, authorization, realm, source)
            .await
    }

    /// `sip-auth.challenge` (SIP frontends only; empty elsewhere).
    pub fn sip_challenge(&self, realm: &str, stale: bool) -> String {
        self.sip()
            .map(|s| s.challenge(realm, stale))
            .unwrap_or_default()
    }

    /// Where granted directory `name` is on the host (native plugins).
    pub fn dir(&self, name: &str) -> Option<String> {
        self.info.dirs.get(name).map(|p| p.display().to_string())
    }

    /// Answer a postcard-encoded host call from a native plugin, encoding the result as
    /// [`HostCall`] documents.
    pub async fn dispatch(&self, call: HostCall) -> Vec<u8> {
        let kv = &self.info.kv;
        match call {
            HostCall::Log { level, message } => {
                self.log(level, &message);
                encode(&())
            }
            HostCall::ConfigGet { key } => encode(&self.config(&key)),
            HostCall::KvGet { key } => encode(&kv.get(&key).await),
            HostCall::KvSet { key, value } => encode(&kv.set(&key, &value).await),
            HostCall::KvDelete { key } => encode(&kv.delete(&key).await),
            HostCall::KvScan {
                prefix,
                after,
                limit,
            } => encode(&kv.scan(&prefix, after.as_deref(), limit).await),
            HostCall::KvCompareAndSwap { key, expected, new } => encode(
                &kv.compare_and_swap(&key, expected.as_deref(), new.as_deref())
                    .await,
            ),
            HostCall::KvCommit { checks, writes } => encode(&kv.commit(&checks, &writes).await),
            HostCall::EventsPublish { key } => encode(&self.publish(&key)),
            HostCall::CredentialsPassword { who } => encode(&self.password(&who)),
            HostCall::EventsPublisher => encode(&Some(
                events::Notifier::for_plugin(&self.hub, &self.info.name, &self.info.event_topics)
                    .abi_pair(),
            )),
            HostCall::Mail(call) => encode(&self.mail(call).await),
            HostCall::Directory(call) => encode(&self.directory(call).await),
            HostCall::OutboundConnect { host, port, tls } => {
                encode(&self.connect(&host, port, tls).await)
            }
            HostCall::OutboundRead { conn, max } => encode(&self.info.conns.read(conn, max).await),
            HostCall::OutboundWrite { conn, data } => {
                encode(&self.info.conns.write(conn, &data).await)
            }
            HostCall::OutboundClose { conn } => {
                self.info.conns.close(conn);
                encode(&())
            }
            HostCall::RequestBodyRead { max } => encode(&self.read_body(max).await),
            HostCall::SipSendFlow { flow, message } => {
                encode(&self.sip().and_then(|s| s.send_flow(flow, &message)))
            }
            HostCall::SipSendTo {
                transport,
                target,
                message,
            } => encode(
                &self
                    .sip_send(&transport, &target, &message, sip::Sent::Request)
                    .await,
            ),
            HostCall::SipRelayTo {
                transport,
                target,
                message,
            } => encode(
                &self
                    .sip_send(&transport, &target, &message, sip::Sent::Relay)
                    .await,
            ),
            HostCall::SipVerifyDigest {
                method,
                authorization,
                realm,
                source,
            } => encode(
                &self
                    .sip_verify_digest(&method, &authorization, &realm, &source)
                    .await,
            ),
            HostCall::SipChallenge { realm, stale } => encode(&self.sip_challenge(&realm, stale)),
            HostCall::FilesDir { name } => encode(&self.dir(&name)),
            HostCall::StagingCreate => encode(&self.staging().and_then(|s| s.create())),
            HostCall::StagingAppend { upload, data } => {
                encode(&self.staging().and_then(|s| s.append(upload, &data)))
            }
            HostCall::StagingRead {
                upload,
                offset,
                max,
            } => encode(&self.staging().and_then(|s| s.read(upload, offset, max))),
            HostCall::StagingSize { upload } => {
                encode(&self.staging().and_then(|s| s.size(upload)))
            }
        }
    }
}

/// What `sip-transport` calls answer where there are no SIP sockets (e.g. `plugin verify`).
pub fn sip_unavailable() -> Error {
    Error::Unavailable("no SIP sockets in this context (only a running server has them)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ctx(world: World) -> (tempfile::TempDir, CallCtx) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let storage = switchboard_storage::Storage::connect(&url, 1)
            .await
            .unwrap();
        storage.migrate().await.unwrap();
        let info = Arc::new(PluginInfo {
            name: "p".into(),
            world,
            kv: Kv::new(storage, "p", 1024),
            event_topics: vec!["mailbox".into()],
            conns: Connections::new(vec![]),
            dirs: BTreeMap::new(),
            settings: BTreeMap::new(),
            domain_settings: BTreeMap::new(),
            pass_password: false,
            upload_limit: 1024,
        });
        let c = CallCtx {
            info,
            hub: Arc::new(EventHub::new()),
            routes: None,
            principal: Principal::parse("alice@example.com"),
            body: None,
            staging: Arc::new(Staging::new(1024)),
            sip: None,
            secret: None,
        };
        (dir, c)
    }

    fn denied(r: Result<impl std::fmt::Debug, Error>, contains: &str) {
        match r {
            Err(Error::Denied(t)) => assert!(t.contains(contains), "{t}"),
            other => panic!("expected denied ({contains}), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn debug_output_names_settings_but_not_their_values() {
        let (_d, c) = ctx(World::MailConnector).await;
        let mut info = PluginInfo {
            name: c.info.name.clone(),
            world: c.info.world,
            kv: c.info.kv.clone(),
            event_topics: vec![],
            conns: Connections::new(vec![]),
            dirs: BTreeMap::new(),
            settings: BTreeMap::new(),
            domain_settings: BTreeMap::new(),
            pass_password: false,
            upload_limit: 1,
        };
        info.settings
            .insert("bind_password".into(), "s3cret-from-env".into());
        let shown = format!("{info:?}");
        assert!(shown.contains("bind_password"), "{shown}");
        assert!(!shown.contains("s3cret-from-env"), "{shown}");
    }

    #[tokio::test]
    async fn domain_settings_and_the_users_password_follow_the_principal() {
        let (_d, c) = ctx(World::MailConnector).await;
        let info = |pass_password: bool| {
            Arc::new(PluginInfo {
                name: c.info.name.clone(),
                world: c.info.world,
                kv: c.info.kv.clone(),
                event_topics: vec![],
                conns: Connections::new(vec![]),
                dirs: BTreeMap::new(),
                settings: BTreeMap::from([("host".into(), "imap.a.example".into())]),
                domain_settings: BTreeMap::from([(
                    "b.example".into(),
                    BTreeMap::from([("host".to_string(), "imap.b.example".to_string())]),
                )]),
                pass_password,
                upload_limit: 1,
            })
        };
        let alice_a = Principal::parse("alice@a.example").unwrap();
        let bob_b = Principal::parse("bob@B.Example").unwrap();
        let call = |info: &Arc<PluginInfo>, who: &Principal| CallCtx {
            info: info.clone(),
            principal: Some(who.clone()),
            secret: Some(credentials::UserSecret::new(who.clone(), "pw")),
            ..c.clone()
        };
        let plain = info(false);
        assert_eq!(
            call(&plain, &alice_a).config("host").as_deref(),
            Some("imap.a.example")
        );
        assert_eq!(
            call(&plain, &bob_b).config("host").as_deref(),
            Some("imap.b.example")
        );
        // Not granted: no password, whoever asks.
        assert_eq!(call(&plain, &alice_a).password(&alice_a), None);
        let granted = info(true);
        assert_eq!(
            call(&granted, &alice_a).password(&alice_a).as_deref(),
            Some("pw")
        );
        // Never another user's.
        assert_eq!(call(&granted, &alice_a).password(&bob_b), None);
    }

    #[tokio::test]
    async fn frontends_act_only_for_their_user() {
        let (_d, c) = ctx(World::HttpFrontend).await;
        let bob = Principal::parse("bob@example.com").unwrap();
        denied(
            c.mail(MailCall::ListFolders { who: bob.clone() }).await,
            "cannot reach the mailbox of bob@example.com",
        );
        denied(
            c.directory(DirectoryCall::Authenticate {
                who: bob,
                password: "x".into(),
            })
            .await,
            "cannot check the password of bob@example.com",
        );
        denied(
            c.directory(DirectoryCall::Search {
                domain: "other.example".into(),
                query: "a".into(),
                max: 5,
            })
            .await,
            "may only search the directory of example.com",
        );
        // Allowed calls pass the checks and reach routing (none in this context).
        let own = MailCall::ListFolders {
            who: Principal::parse("Alice@Example.com").unwrap(),
        };
        assert!(matches!(c.mail(own).await, Err(Error::Unavailable(_))));
        denied(
            c.publish("presence:alice@example.com"),
            "topic \"presence\" is not in its manifest",
        );
        c.publish("mailbox:alice@example.com/inbox").unwrap();
        denied(
            c.connect("127.0.0.1", 993, false).await,
            "has no outbound connections",
        );
    }

    #[tokio::test]
    async fn worlds_limit_what_a_plugin_imports() {
        let (_d, c) = ctx(World::MailConnector).await;
        denied(
            c.mail(MailCall::ListFolders {
                who: c.principal.clone().unwrap(),
            })
            .await,
            "does not import the mailstore",
        );
        denied(
            c.directory(DirectoryCall::Search {
                domain: "example.com".into(),
                query: "a".into(),
                max: 1,
            })
            .await,
            "does not import the directory",
        );
        assert!(c.staging().is_ok());
        let (_d, c) = ctx(World::DirectoryConnector).await;
        denied(c.staging().map(|_| ()), "does not import staging");
    }
}
