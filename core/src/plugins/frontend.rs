//! The HTTP side of plugin frontends: turns a hyper request into the SDK's request, runs the
//! plugin, holds parked requests in the event hub (no plugin instance while they wait), and
//! streams mailstore items named in the response from the connector in bounded chunks.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use switchboard_sdk::abi::{MailCall, MailReply};
use switchboard_sdk::http::{BodyPart, ItemRef, Outcome, Request};
use switchboard_sdk::{Error, Principal};

use super::caps::credentials::UserSecret;
use super::caps::events::WaitOutcome;
use super::caps::request_body::RequestBody;
use super::caps::staging::Staging;
use super::caps::Routes;
use super::set::PluginSet;
use super::{Fault, Plugin};
use crate::http::body::{self, Body};
use crate::http::router::{HttpFrontend, RequestContext};

/// Body bytes handed to the plugin inline; the rest is read through `request-body`.
pub const INLINE_BODY: usize = 64 * 1024;
/// Chunk size when streaming items (a multiple of 3 so base64 chunks concatenate cleanly).
pub const STREAM_CHUNK: u32 = 3 * 64 * 1024;
/// How often one request may park again after being resumed.
const MAX_RESUMES: u32 = 16;

/// A plugin serving HTTP paths.
#[derive(Debug)]
pub struct PluginFrontend {
    name: String,
    plugin: Arc<Plugin>,
    set: Arc<PluginSet>,
    hub: Arc<super::caps::events::EventHub>,
}

impl PluginFrontend {
    /// Serve `[frontends.<name>]` with `plugin`.
    pub fn new(
        name: &str,
        plugin: Arc<Plugin>,
        set: Arc<PluginSet>,
        hub: Arc<super::caps::events::EventHub>,
    ) -> PluginFrontend {
        PluginFrontend {
            name: name.to_string(),
            plugin,
            set,
            hub,
        }
    }
}

fn fault_response(plugin: &str, fault: &Fault) -> Response<Body> {
    let status = match fault {
        Fault::Disabled | Fault::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Fault::Deadline => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    body::text(status, format!("plugin {plugin} {}\n", fault.kind_text()))
}

impl Fault {
    /// What a client may be told (no plugin internals).
    fn kind_text(&self) -> &'static str {
        match self {
            Fault::Disabled => "is disabled",
            Fault::Busy => "is busy, try again",
            Fault::Deadline => "took too long",
            Fault::Memory => "ran out of memory",
            _ => "failed",
        }
    }
}

async fn read_inline(body: &mut Incoming, limit: u64) -> Result<(Vec<u8>, bool), Response<Body>> {
    let mut buf = Vec::new();
    while buf.len() < INLINE_BODY {
        match body.frame().await {
            None => return Ok((buf, true)),
            Some(Err(e)) => return Err(body::BodyError::Read(e.to_string()).response()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if buf.len() as u64 > limit {
                        return Err(body::BodyError::TooLarge { limit }.response());
                    }
                }
            }
        }
    }
    Ok((buf, false))
}

impl HttpFrontend for PluginFrontend {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(
        &self,
        req: http::Request<Incoming>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Response<Body>> {
        let plugin = self.plugin.clone();
        let set = self.set.clone();
        let hub = self.hub.clone();
        // The plugin call and response futures are boxed: a parked request (an idle phone's
        // Ping, for hours) keeps this future alive, and inline they would make every parked
        // request carry their size (7.6 KiB instead of 1.5 KiB).
        async move {
            let limit = ctx.snapshot.settings.config.http.max_body_bytes;
            let (parts, mut incoming) = req.into_parts();
            if let Some(len) = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            {
                if len > limit {
                    return body::BodyError::TooLarge { limit }.response();
                }
            }
            let (inline, complete) = match read_inline(&mut incoming, limit).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let principal = ctx
                .identity
                .as_ref()
                .and_then(|id| Principal::parse(&id.address));
            let request = Request {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or("").to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                principal: principal.clone(),
                peer: ctx.peer.to_string(),
                body_complete: complete,
                body: inline,
            };
            // Not held while the request may be parked.
            drop(parts);
            let rest = (!complete).then(|| {
                RequestBody::new(
                    Some(incoming),
                    Bytes::new(),
                    limit.saturating_sub(request.body.len() as u64),
                )
            });
            let secret = ctx.secret.clone();
            // Only a request whose body was read whole may leave hyper.
            let detach = ctx.detach.clone().filter(|_| complete);
            // The context is not kept while the request may be parked.
            drop(ctx);
            let outcome =
                Box::pin(plugin.http_handle(Some(set.routes()), rest, request, secret.clone()))
                    .await;
            let parks = matches!(outcome, Ok(Outcome::Park(_)));
            let settle = Settle {
                plugin,
                set,
                hub,
                principal,
                secret,
            };
            let answer = settle.run(outcome).boxed();
            let answer = match detach {
                Some(d) if parks => match d.detach(answer) {
                    Ok(placeholder) => return placeholder,
                    Err(answer) => answer,
                },
                _ => answer,
            };
            answer.await
        }
        .boxed()
    }
}

/// What answering a plugin's outcome needs: parking, resuming, streaming items.
struct Settle {
    plugin: Arc<Plugin>,
    set: Arc<PluginSet>,
    hub: Arc<super::caps::events::EventHub>,
    principal: Option<Principal>,
    secret: Option<UserSecret>,
}

impl Settle {
    /// The response for `outcome`: a reply at once, or a park until an event, a newer wait of
    /// the same group or the timeout, then the resumed plugin's reply.
    async fn run(self, mut outcome: Result<Outcome, Fault>) -> Response<Body> {
        let mut resumes = 0;
        loop {
            match outcome {
                Err(fault) => return fault_response(self.plugin.name(), &fault),
                Ok(Outcome::Reply(resp)) => {
                    return Box::pin(respond(
                        resp,
                        self.principal,
                        Items {
                            set: self.set,
                            secret: self.secret,
                        },
                    ))
                    .await
                }
                Ok(Outcome::Park(park)) => {
                    let timeout = Duration::from_millis(park.timeout_ms.into());
                    match self
                        .hub
                        .wait(&park.watch, timeout, park.group.as_deref())
                        .await
                    {
                        WaitOutcome::Fired(keys) if resumes < MAX_RESUMES => {
                            resumes += 1;
                            outcome = Box::pin(self.plugin.http_resume(
                                Some(self.set.routes()),
                                self.principal.clone(),
                                park.state,
                                keys,
                                self.secret.clone(),
                            ))
                            .await;
                        }
                        _ => {
                            let items = Items {
                                set: self.set,
                                secret: self.secret,
                            };
                            return Box::pin(respond(park.on_timeout, self.principal, items)).await;
                        }
                    }
                }
            }
        }
    }
}

/// Build the hyper response: literal parts in memory, items streamed from the connector.
async fn respond(
    resp: switchboard_sdk::http::Response,
    principal: Option<Principal>,
    items: Items,
) -> Response<Body> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    for (name, value) in &resp.headers {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(n), Ok(v)) => builder = builder.header(n, v),
            _ => tracing::warn!(header = %name, "plugin sent an invalid header; dropped"),
        }
    }
    // A frontend may stream only the mailbox of the user it answers for.
    for part in &resp.body {
        if let BodyPart::Item(r) | BodyPart::ItemBase64(r) = part {
            let allowed = principal.as_ref().is_some_and(|p| {
                p.user.eq_ignore_ascii_case(&r.who.user)
                    && p.domain.eq_ignore_ascii_case(&r.who.domain)
            });
            if !allowed {
                tracing::error!("plugin response streams another user's item; refused");
                return body::text(StatusCode::INTERNAL_SERVER_ERROR, "plugin failed\n");
            }
        }
    }
    // Probe each item before the status line goes out, so a missing or forbidden item gets
    // a clear error response instead of a connection cut mid-body. The first item's probe
    // fetches its first chunk, which streaming then starts from (no second round trip for the
    // common one-item response); later items are probed with an empty range, keeping what is
    // held before streaming to one chunk.
    let mut first: Option<switchboard_sdk::Chunk> = None;
    for part in &resp.body {
        if let BodyPart::Item(r) | BodyPart::ItemBase64(r) = part {
            let max = if first.is_none() { STREAM_CHUNK } else { 0 };
            match items.fetch(r, 0, max).await {
                Ok(chunk) if first.is_none() => first = Some(chunk),
                Ok(_) => {}
                Err(e) => {
                    let status = match e {
                        Error::NotFound(_) => StatusCode::NOT_FOUND,
                        Error::Invalid(_) => StatusCode::BAD_REQUEST,
                        Error::Denied(_) => StatusCode::FORBIDDEN,
                        _ => StatusCode::BAD_GATEWAY,
                    };
                    return body::text(status, format!("{e}\n"));
                }
            }
        }
    }
    let all_bytes = resp.body.iter().all(|p| matches!(p, BodyPart::Bytes(_)));
    let body = if all_bytes {
        let mut buf = BytesMut::new();
        for part in resp.body {
            if let BodyPart::Bytes(b) = part {
                buf.extend_from_slice(&b);
            }
        }
        body::full(buf.freeze())
    } else {
        stream_body(resp.body, first, items)
    };
    builder
        .body(body)
        .unwrap_or_else(|_| body::text(StatusCode::INTERNAL_SERVER_ERROR, "plugin failed\n"))
}

type Chunk = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// Fetches stage nothing.
fn no_staging() -> Arc<Staging> {
    Arc::new(Staging::new(0))
}

/// A body fed by a task that fetches item chunks one at a time; the channel holds at most two
/// chunks, so memory stays bounded whatever the item size.
fn stream_body(
    parts: Vec<BodyPart>,
    mut first: Option<switchboard_sdk::Chunk>,
    items: Items,
) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(2);
    tokio::spawn(async move {
        for part in parts {
            let (item, b64) = match part {
                BodyPart::Bytes(b) => {
                    if tx.send(Ok(Frame::data(Bytes::from(b)))).await.is_err() {
                        return;
                    }
                    continue;
                }
                BodyPart::Item(r) => (r, false),
                BodyPart::ItemBase64(r) => (r, true),
            };
            if let Err(e) = stream_item(&item, b64, first.take(), &items, &tx).await {
                tracing::error!(item = %item.item_id, "streaming an item failed: {e}");
                let _ = tx.send(Err(Box::new(e))).await;
                return;
            }
        }
    });
    StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))).boxed()
}

/// Where a response's items are fetched from: the connector routing of the request's
/// plugin set, with the request's login for connectors granted `pass_password`.
struct Items {
    set: Arc<PluginSet>,
    secret: Option<UserSecret>,
}

impl Items {
    /// One `fetch` of `item`.
    async fn fetch(
        &self,
        item: &ItemRef,
        offset: u64,
        max: u32,
    ) -> Result<switchboard_sdk::Chunk, Error> {
        let reply = self
            .set
            .mail(
                MailCall::Fetch {
                    who: item.who.clone(),
                    item_id: item.item_id.clone(),
                    part_id: item.part_id.clone(),
                    offset,
                    max,
                },
                no_staging(),
                self.secret.clone(),
            )
            .await?;
        match reply {
            MailReply::Chunk(chunk) => Ok(chunk),
            _ => Err(Error::Internal(
                "connector answered fetch with the wrong reply".into(),
            )),
        }
    }
}

/// Stream one item, starting from `first` (its chunk at offset 0) when already fetched.
async fn stream_item(
    item: &ItemRef,
    b64: bool,
    mut first: Option<switchboard_sdk::Chunk>,
    items: &Items,
    tx: &tokio::sync::mpsc::Sender<Chunk>,
) -> Result<(), Error> {
    let mut offset = 0u64;
    // base64 must be cut at multiples of 3 input bytes to concatenate; carry the rest over.
    let mut carry: Vec<u8> = Vec::new();
    let flush = |carry: &mut Vec<u8>, all: bool| -> Bytes {
        let usable = if all {
            carry.len()
        } else {
            carry.len() - carry.len() % 3
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(&carry[..usable]);
        carry.drain(..usable);
        Bytes::from(encoded)
    };
    loop {
        let chunk = match first.take() {
            Some(chunk) => chunk,
            None => items.fetch(item, offset, STREAM_CHUNK).await?,
        };
        let done = chunk.data.is_empty() || offset + chunk.data.len() as u64 >= chunk.total;
        offset += chunk.data.len() as u64;
        let data = if b64 {
            carry.extend_from_slice(&chunk.data);
            flush(&mut carry, done)
        } else {
            Bytes::from(chunk.data)
        };
        if !data.is_empty() && tx.send(Ok(Frame::data(data))).await.is_err() {
            return Ok(()); // client went away
        }
        if done {
            return Ok(());
        }
    }
}
