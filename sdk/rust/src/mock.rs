//! An in-memory host for unit-testing plugins without a server (feature `mock`, native
//! target). It answers every [`crate::host`] call: kv in a map, events and logs recorded,
//! config from what the test sets, mailstore and directory calls routed to a connector type
//! of your choice, outbound connections refused.
//!
//! ```
//! use switchboard_sdk::{mock::MockHost, host::kv};
//!
//! let host = MockHost::new().with_config("greeting", "hello");
//! host.run(|| {
//!     kv::set("visits", b"1").unwrap();
//!     assert_eq!(switchboard_sdk::host::config::get("greeting").as_deref(), Some("hello"));
//! });
//! assert_eq!(host.kv_get("visits"), Some(b"1".to_vec()));
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::abi::{encode, DirectoryCall, DirectoryReply, HostCall, MailCall, MailReply};
use crate::native::{with_host, HostApi};
use crate::types::{Error, Level, Result};

type MailFn = Box<dyn Fn(MailCall) -> Result<MailReply>>;
type DirectoryFn = Box<dyn Fn(DirectoryCall) -> Result<DirectoryReply>>;
type DigestFn = Box<dyn Fn(&DigestCheck<'_>) -> Result<Option<crate::Principal>>>;

/// One `sip-auth.verify-digest` call, as a verifier given to
/// [`MockHost::with_digest_verifier`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct DigestCheck<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The `Authorization` / `Proxy-Authorization` value.
    pub authorization: &'a str,
    /// The realm the plugin expects.
    pub realm: &'a str,
    /// The peer's IP address.
    pub source: &'a str,
}

#[derive(Default)]
struct State {
    kv: BTreeMap<String, Vec<u8>>,
    config: BTreeMap<String, String>,
    events: Vec<String>,
    logs: Vec<(Level, String)>,
    body: VecDeque<u8>,
    dirs: BTreeMap<String, String>,
    staged: Vec<Vec<u8>>,
    sip_sent: Vec<(String, Vec<u8>)>,
    /// Indices into `sip_sent` of the messages sent with `relay-to`.
    sip_relayed: Vec<usize>,
    challenges: u64,
}

#[derive(Default)]
struct Inner {
    state: RefCell<State>,
    // Published through a background `Publisher` (any thread, after the call).
    background: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    mail: Option<(MailFn, MockHost)>,
    directory: Option<(DirectoryFn, MockHost)>,
    digest: Option<DigestFn>,
}

/// The mock host. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct MockHost {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for MockHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockHost").finish_non_exhaustive()
    }
}

impl MockHost {
    /// An empty host.
    pub fn new() -> MockHost {
        MockHost::default()
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> MockHost {
        let inner = Rc::get_mut(&mut self.inner)
            .expect("configure the MockHost before cloning or running it");
        f(inner);
        self
    }

    /// Set a config value the plugin reads with [`crate::host::config::get`].
    pub fn with_config(self, key: &str, value: &str) -> MockHost {
        self.inner
            .state
            .borrow_mut()
            .config
            .insert(key.into(), value.into());
        self
    }

    /// The password `who` logged in with, as [`crate::host::credentials::password`] answers
    /// it (a connector the admin granted `pass_password`).
    pub fn with_password(self, who: &str, password: &str) -> MockHost {
        self.with_config(&format!("password:{}", who.to_lowercase()), password)
    }

    /// Grant directory `name` at `path` (see [`crate::host::files::dir`]).
    pub fn with_dir(self, name: &str, path: &std::path::Path) -> MockHost {
        self.inner
            .state
            .borrow_mut()
            .dirs
            .insert(name.into(), path.display().to_string());
        self
    }

    /// Bytes that [`crate::host::request_body::read`] hands out.
    pub fn with_request_body(self, body: &[u8]) -> MockHost {
        self.inner.state.borrow_mut().body.extend(body);
        self
    }

    /// Route mailstore calls to connector `T`, which runs against its own mock host
    /// (`connector_host`), as it would in the server with its own kv namespace.
    pub fn with_mail_connector<T: crate::MailConnector + 'static>(
        self,
        connector_host: MockHost,
    ) -> MockHost {
        self.edit(|inner| {
            inner.mail = Some((
                Box::new(|call| crate::dispatch_mail::<T>(call)),
                connector_host,
            ))
        })
    }

    /// Route directory calls to connector `T`, with its own mock host.
    pub fn with_directory_connector<T: crate::DirectoryConnector + 'static>(
        self,
        connector_host: MockHost,
    ) -> MockHost {
        self.edit(|inner| {
            inner.directory = Some((
                Box::new(|call| crate::dispatch_directory::<T>(call)),
                connector_host,
            ))
        })
    }

    /// Answer `sip-auth.verify-digest` with `f` (without one it is `unavailable`).
    /// `sip-auth.challenge` answers `Digest realm="R", nonce="mock-nonce-N", algorithm=MD5,
    /// qop="auth"` (N counts challenges), with `, stale=true` when asked.
    pub fn with_digest_verifier(
        self,
        f: impl Fn(&DigestCheck<'_>) -> Result<Option<crate::Principal>> + 'static,
    ) -> MockHost {
        self.edit(|inner| inner.digest = Some(Box::new(f)))
    }

    /// Run `f` with this host answering host calls.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        with_host(Rc::new(self.clone()), f)
    }

    /// Call an HTTP frontend's `handle` under this host.
    pub fn handle<T: crate::HttpFrontend>(
        &self,
        req: crate::http::Request,
    ) -> crate::http::Outcome {
        self.run(|| T::handle(req))
    }

    /// Call an HTTP frontend's `resume` under this host.
    pub fn resume<T: crate::HttpFrontend>(
        &self,
        state: Vec<u8>,
        fired: Vec<String>,
    ) -> crate::http::Outcome {
        self.run(|| T::resume(state, fired))
    }

    /// A stored kv value.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.state.borrow().kv.get(key).cloned()
    }

    /// Every event key published so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.inner.state.borrow().events.clone()
    }

    /// Every event key published so far through a background
    /// [`crate::host::events::Publisher`], in order.
    pub fn background_events(&self) -> Vec<String> {
        self.inner
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.inner.state.borrow().logs.clone()
    }

    /// SIP messages sent so far, with their destination (`flow:N` or `transport:target`).
    pub fn sip_sent(&self) -> Vec<(String, Vec<u8>)> {
        self.inner.state.borrow().sip_sent.clone()
    }

    /// Whether the `n`-th message of [`MockHost::sip_sent`] went out with `relay-to` (its
    /// `2xx` answer is the host's) rather than `send-to` or `send-flow`.
    pub fn sip_relayed(&self, n: usize) -> bool {
        self.inner.state.borrow().sip_relayed.contains(&n)
    }
}

impl HostApi for MockHost {
    fn call(&self, call: HostCall) -> Vec<u8> {
        let mut st = self.inner.state.borrow_mut();
        match call {
            HostCall::Log { level, message } => {
                st.logs.push((level, message));
                encode(&())
            }
            HostCall::ConfigGet { key } => encode(&st.config.get(&key).cloned()),
            HostCall::KvGet { key } => encode(&Ok::<_, Error>(st.kv.get(&key).cloned())),
            HostCall::KvSet { key, value } => {
                st.kv.insert(key, value);
                encode(&Ok::<_, Error>(()))
            }
            HostCall::KvDelete { key } => encode(&Ok::<_, Error>(st.kv.remove(&key).is_some())),
            HostCall::KvScan {
                prefix,
                after,
                limit,
            } => {
                let rows: Vec<(String, Vec<u8>)> = st
                    .kv
                    .range(after.clone().unwrap_or_else(|| prefix.clone())..)
                    .filter(|(k, _)| Some(*k) != after.as_ref())
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .take(limit as usize)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                encode(&Ok::<_, Error>(rows))
            }
            HostCall::KvCompareAndSwap { key, expected, new } => {
                let swapped = st.kv.get(&key) == expected.as_ref();
                if swapped {
                    match new {
                        Some(v) => st.kv.insert(key, v),
                        None => st.kv.remove(&key),
                    };
                }
                encode(&Ok::<_, Error>(swapped))
            }
            HostCall::KvCommit { checks, writes } => {
                let holds = checks.iter().all(|(k, v)| st.kv.get(k) == v.as_ref());
                if holds {
                    for (k, v) in writes {
                        match v {
                            Some(v) => st.kv.insert(k, v),
                            None => st.kv.remove(&k),
                        };
                    }
                }
                encode(&Ok::<_, Error>(holds))
            }
            HostCall::EventsPublish { key } => {
                st.events.push(key);
                encode(&Ok::<_, Error>(()))
            }
            HostCall::CredentialsPassword { who } => {
                let key = format!("password:{}", who.address().to_lowercase());
                encode(&st.config.get(&key).cloned())
            }
            HostCall::EventsPublisher => {
                // Leaked on purpose: a publisher may outlive the call and the test (a
                // plugin's background task); one small box per request is nothing in a test.
                let sink = Box::leak(Box::new(self.inner.background.clone()));
                let notifier = sink as *const _ as usize as u64;
                let publish = mock_publish as crate::abi::PublishFn as usize as u64;
                encode(&Some((notifier, publish)))
            }
            HostCall::Mail(call) => {
                // Both sides of one request share its staging area, as in the server.
                let staged = st.staged.clone();
                drop(st);
                let reply = match &self.inner.mail {
                    Some((f, host)) => {
                        host.inner.state.borrow_mut().staged = staged;
                        host.run(|| f(call))
                    }
                    None => Err(Error::Unavailable(
                        "no mail connector in this MockHost".into(),
                    )),
                };
                encode(&reply)
            }
            HostCall::Directory(call) => {
                drop(st);
                let reply = match &self.inner.directory {
                    Some((f, host)) => host.run(|| f(call)),
                    None => Err(Error::Unavailable(
                        "no directory connector in this MockHost".into(),
                    )),
                };
                encode(&reply)
            }
            HostCall::OutboundConnect { host, port, .. } => encode(&Err::<u32, _>(Error::Denied(
                format!("the mock host grants no outbound connections ({host}:{port})"),
            ))),
            HostCall::OutboundRead { .. } | HostCall::OutboundWrite { .. } => {
                encode(&Err::<(), _>(Error::NotFound("no such connection".into())))
            }
            HostCall::OutboundClose { .. } => encode(&()),
            HostCall::RequestBodyRead { max } => {
                let n = (max as usize).min(st.body.len());
                let chunk: Vec<u8> = st.body.drain(..n).collect();
                encode(&Ok::<_, Error>(chunk))
            }
            HostCall::FilesDir { name } => encode(&st.dirs.get(&name).cloned()),
            HostCall::StagingCreate => {
                st.staged.push(Vec::new());
                encode(&Ok::<u32, Error>(st.staged.len() as u32 - 1))
            }
            HostCall::StagingAppend { upload, data } => match st.staged.get_mut(upload as usize) {
                Some(buf) => {
                    buf.extend_from_slice(&data);
                    encode(&Ok::<(), Error>(()))
                }
                None => encode(&Err::<(), _>(Error::NotFound(format!(
                    "no upload {upload}"
                )))),
            },
            HostCall::StagingRead {
                upload,
                offset,
                max,
            } => match st.staged.get(upload as usize) {
                Some(buf) => {
                    let start = (offset as usize).min(buf.len());
                    let end = start.saturating_add(max as usize).min(buf.len());
                    encode(&Ok::<Vec<u8>, Error>(buf[start..end].to_vec()))
                }
                None => encode(&Err::<Vec<u8>, _>(Error::NotFound(format!(
                    "no upload {upload}"
                )))),
            },
            HostCall::StagingSize { upload } => match st.staged.get(upload as usize) {
                Some(buf) => encode(&Ok::<u64, Error>(buf.len() as u64)),
                None => encode(&Err::<u64, _>(Error::NotFound(format!(
                    "no upload {upload}"
                )))),
            },
            HostCall::SipSendFlow { flow, message } => {
                st.sip_sent.push((format!("flow:{flow}"), message));
                encode(&Ok::<_, Error>(()))
            }
            HostCall::SipSendTo {
                transport,
                target,
                message,
            } => {
                st.sip_sent.push((format!("{transport}:{target}"), message));
                encode(&Ok::<_, Error>(()))
            }
            HostCall::SipRelayTo {
                transport,
                target,
                message,
            } => {
                let n = st.sip_sent.len();
                st.sip_relayed.push(n);
                st.sip_sent.push((format!("{transport}:{target}"), message));
                encode(&Ok::<_, Error>(()))
            }
            HostCall::SipVerifyDigest {
                method,
                authorization,
                realm,
                source,
            } => {
                drop(st);
                let check = DigestCheck {
                    method: &method,
                    authorization: &authorization,
                    realm: &realm,
                    source: &source,
                };
                let verdict = match &self.inner.digest {
                    Some(f) => f(&check),
                    None => Err(Error::Unavailable(
                        "no digest verifier in this MockHost".into(),
                    )),
                };
                encode(&verdict)
            }
            HostCall::SipChallenge { realm, stale } => {
                st.challenges += 1;
                let mut c = format!(
                    "Digest realm=\"{realm}\", nonce=\"mock-nonce-{}\", algorithm=MD5, qop=\"auth\"",
                    st.challenges
                );
                if stale {
                    c.push_str(", stale=true");
                }
                encode(&c)
            }
        }
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn mock_publish(
    notifier: *const std::ffi::c_void,
    key: *const u8,
    len: usize,
) -> u32 {
    // SAFETY: `notifier` is the leaked sink handed out for `EventsPublisher`, and the plugin
    // passes a live buffer of `len` bytes.
    let (sink, bytes) = unsafe {
        (
            &*(notifier as *const std::sync::Arc<std::sync::Mutex<Vec<String>>>),
            std::slice::from_raw_parts(key, len),
        )
    };
    match std::str::from_utf8(bytes) {
        Ok(k) => {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(k.to_string());
            0
        }
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::kv;

    #[test]
    fn kv_scan_and_cas_behave_like_the_server() {
        let host = MockHost::new();
        host.run(|| {
            for k in ["a/1", "a/2", "a/3", "b/1"] {
                kv::set(k, k.as_bytes()).unwrap();
            }
            let keys =
                |rows: Vec<(String, Vec<u8>)>| rows.into_iter().map(|r| r.0).collect::<Vec<_>>();
            assert_eq!(
                keys(kv::scan("a/", None, 10).unwrap()),
                ["a/1", "a/2", "a/3"]
            );
            assert_eq!(keys(kv::scan("a/", Some("a/1"), 1).unwrap()), ["a/2"]);
            assert!(!kv::compare_and_swap("a/1", Some(b"x"), Some(b"y")).unwrap());
            assert!(kv::compare_and_swap("a/1", Some(b"a/1"), None).unwrap());
            assert!(kv::compare_and_swap("new", None, Some(b"v")).unwrap());
        });
        assert_eq!(host.kv_get("a/1"), None);
        assert_eq!(host.kv_get("new"), Some(b"v".to_vec()));
    }

    #[test]
    fn host_calls_outside_a_host_fail_cleanly() {
        let err = kv::get("x").unwrap_err();
        assert!(
            matches!(err, Error::Internal(ref t) if t.contains("no host")),
            "{err}"
        );
    }

    #[test]
    fn outbound_is_denied() {
        let err = MockHost::new()
            .run(|| crate::host::outbound::connect("imap.example.com", 993, true))
            .unwrap_err();
        assert!(matches!(err, Error::Denied(_)), "{err}");
    }
}
