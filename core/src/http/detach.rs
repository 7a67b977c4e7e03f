//! Parked requests wait outside hyper.
//!
//! An ActiveSync Ping may wait an hour for a change, and a server holds one per idle phone.
//! While hyper serves a connection with a request in flight it keeps two 8 KiB buffers (the
//! header write buffer it allocates with every connection, and the read buffer it reserves to
//! notice the client leaving); neither size can be configured, and together they are more
//! than the whole memory budget of a parked Ping. So a frontend that parks a request hands
//! the rest of the request to the connection ([`Detacher::detach`]): hyper answers a
//! placeholder that never reaches the client (the connection's IO, [`ConnIo`], swallows it
//! and reports the connection closed), gives the socket back, and is dropped with its
//! buffers. The connection then waits holding only the socket and the parked future
//! ([`wait_parked`], which still notices the client leaving), writes the real response
//! itself ([`write_response`]) and gives the socket, with any bytes the client sent
//! meanwhile, to a fresh hyper connection for the next request.
//!
//! Only HTTP/1.1 keep-alive requests whose body has been read whole may detach, and only
//! when hyper has no earlier output still waiting for the socket (it would be lost with the
//! placeholder); otherwise the frontend waits inline as before.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::body::Body;

/// A request's answer, still to come.
pub type Pending = BoxFuture<'static, Response<Body>>;

/// What one connection's hyper side and its request handlers share.
#[derive(Default)]
pub struct DetachState {
    /// Set by [`Detacher::detach`]: from then on writes, flushes and the shutdown go nowhere
    /// (they are hyper's placeholder answer).
    swallow: AtomicBool,
    /// The last write to the socket was refused (the client reads slowly): hyper still holds
    /// output, so the connection may not be taken from it now.
    blocked: AtomicBool,
    /// The detached request's answer.
    pending: Mutex<Option<Pending>>,
}

impl std::fmt::Debug for DetachState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachState")
            .field("swallow", &self.swallow.load(Ordering::Relaxed))
            .field("blocked", &self.blocked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DetachState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The detached request's answer, if a request detached.
    pub fn take_pending(&self) -> Option<Pending> {
        self.lock().take()
    }
}

/// Marks hyper's placeholder answer for a detached request.
#[derive(Debug, Clone, Copy)]
pub struct Placeholder;

/// Lets a frontend hand a parked request to its connection. Given only with requests that
/// may detach (see [`Detacher::for_request`]).
#[derive(Clone)]
pub struct Detacher {
    state: Arc<DetachState>,
}

impl std::fmt::Debug for Detacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detacher").finish_non_exhaustive()
    }
}

impl Detacher {
    /// A detacher for `req` on the connection sharing `state`, if the request may detach:
    /// HTTP/1.1 and keep-alive (an HTTP/1.0 or `Connection: close` request ends its
    /// connection anyway, so hyper may as well answer it).
    pub fn for_request<B>(state: &Arc<DetachState>, req: &Request<B>) -> Option<Detacher> {
        let closes = req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v, "close"));
        (req.version() == Version::HTTP_11 && !closes).then(|| Detacher {
            state: state.clone(),
        })
    }

    /// Hand the rest of the request (`answer`) to the connection. Returns the placeholder the
    /// handler must give hyper, or `answer` back when the connection cannot take it now
    /// (hyper still has output for the socket), in which case the handler awaits it itself.
    /// The request's body must have been read whole.
    pub fn detach(&self, answer: Pending) -> Result<Response<Body>, Pending> {
        if self.state.blocked.load(Ordering::Acquire) {
            return Err(answer);
        }
        *self.state.lock() = Some(answer);
        self.state.swallow.store(true, Ordering::Release);
        let mut r = Response::new(super::body::full(Bytes::new()));
        // `close` makes hyper end the connection once the placeholder is "written", without
        // reading further, so the socket comes back with nothing lost.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r.extensions_mut().insert(Placeholder);
        Ok(r)
    }

    /// Wrap the detached answer (to record it when it is done): `f` gets the future and
    /// returns the one the connection will await. Does nothing if nothing detached.
    pub fn wrap_pending(&self, f: impl FnOnce(Pending) -> Pending) {
        let mut slot = self.state.lock();
        if let Some(p) = slot.take() {
            *slot = Some(f(p));
        }
    }
}

/// Whether the comma-separated header value `v` contains `token` (case-insensitive).
fn has_token(v: &HeaderValue, token: &str) -> bool {
    v.to_str()
        .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        .unwrap_or(false)
}

/// The IO under hyper: the socket, plus bytes read from it earlier that hyper has not seen,
/// plus the switch that swallows hyper's placeholder answer.
#[derive(Debug)]
pub struct ConnIo<S> {
    inner: S,
    prefix: Bytes,
    state: Arc<DetachState>,
}

impl<S> ConnIo<S> {
    /// Wrap a fresh connection.
    pub fn new(inner: S, state: Arc<DetachState>) -> ConnIo<S> {
        ConnIo {
            inner,
            prefix: Bytes::new(),
            state,
        }
    }

    /// Back from hyper after a detach: `read_ahead` (what hyper had read and not used) comes
    /// before anything still unread in the prefix; writes reach the socket again.
    pub fn reclaim(&mut self, read_ahead: Bytes) {
        if !read_ahead.is_empty() {
            let mut joined = BytesMut::with_capacity(read_ahead.len() + self.prefix.len());
            joined.extend_from_slice(&read_ahead);
            joined.extend_from_slice(&self.prefix);
            self.prefix = joined.freeze();
        }
        self.state.swallow.store(false, Ordering::Release);
        self.state.blocked.store(false, Ordering::Release);
    }

    fn swallowing(&self) -> bool {
        self.state.swallow.load(Ordering::Acquire)
    }

    fn note_write<T>(&self, r: &Poll<io::Result<T>>) {
        self.state.blocked.store(r.is_pending(), Ordering::Release);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.prefix.is_empty() {
            let n = me.prefix.len().min(buf.remaining());
            buf.put_slice(&me.prefix[..n]);
            me.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.swallowing() {
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut me.inner).poll_write(cx, buf);
        me.note_write(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.swallowing() {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let r = Pin::new(&mut me.inner).poll_write_vectored(cx, bufs);
        me.note_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.swallowing() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.swallowing() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// At most this many bytes a client may send while its request is parked (a pipelined next
/// request); beyond it the connection stops reading until the answer is out.
const MAX_READ_AHEAD: usize = 64 * 1024;

/// Wait for a detached request's answer while watching the socket: `None` if the client
/// closed the connection (or it failed) first — the answer is then dropped, which ends the
/// wait it stood for. Bytes the client sends meanwhile are kept for the next request. Output
/// a TLS layer still buffers is flushed first.
pub async fn wait_parked<S>(io: &mut ConnIo<S>, mut answer: Pending) -> Option<Response<Body>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut flushed = false;
    let mut read_ahead: Option<BytesMut> = None;
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = answer.poll_unpin(cx) {
            return Poll::Ready(Some(r));
        }
        if !flushed {
            match Pin::new(&mut io.inner).poll_flush(cx) {
                Poll::Ready(Ok(())) => flushed = true,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        loop {
            let held = io.prefix.len() + read_ahead.as_ref().map_or(0, |b| b.len());
            if held >= MAX_READ_AHEAD {
                return Poll::Pending;
            }
            // On the stack: a parked connection keeps no read buffer.
            let mut chunk = [0u8; 512];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut io.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(None),
                Poll::Ready(Ok(())) => read_ahead
                    .get_or_insert_with(BytesMut::new)
                    .extend_from_slice(rb.filled()),
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    if let Some(more) = read_ahead {
        let mut joined = BytesMut::with_capacity(io.prefix.len() + more.len());
        joined.extend_from_slice(&io.prefix);
        joined.extend_from_slice(&more);
        io.prefix = joined.freeze();
    }
    response
}

/// Write `resp` as an HTTP/1.1 response on `io`: `Content-Length` when the body's length is
/// known, chunked otherwise, no body for 1xx/204/304, and a `Date`. `Ok(false)` when the
/// response ends the connection (`Connection: close`).
pub async fn write_response<W>(io: &mut W, resp: Response<Body>) -> io::Result<bool>
where
    W: AsyncWrite + Unpin,
{
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let bodyless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let exact = body.size_hint().exact();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut keep_alive = true;
    for (name, value) in &parts.headers {
        // Framing is ours to say.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONNECTION && has_token(value, "close") {
            keep_alive = false;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        head.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let chunked = !bodyless && exact.is_none();
    match exact {
        _ if bodyless => {}
        Some(n) => head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    head.extend_from_slice(b"\r\n");
    if bodyless {
        io.write_all(&head).await?;
        io.flush().await?;
        return Ok(keep_alive);
    }
    let mut written = 0u64;
    let mut out = head;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| io::Error::other(format!("response body failed: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not sent
        };
        if data.is_empty() {
            continue;
        }
        written += data.len() as u64;
        if chunked {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&data);
        }
        // Small answers (a Ping's) go out in one write; big ones chunk by chunk.
        if out.len() >= 16 * 1024 {
            io.write_all(&out).await?;
            out.clear();
        }
    }
    if exact.is_some_and(|n| n != written) {
        return Err(io::Error::other(format!(
            "response body had {written} bytes, not the {} it declared",
            exact.unwrap_or(0)
        )));
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    io.write_all(&out).await?;
    io.flush().await?;
    Ok(keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::{full, text};
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use tokio::io::AsyncReadExt;

    fn boxed<F>(answer: F) -> Pending
    where
        F: std::future::Future<Output = Response<Body>> + Send + 'static,
    {
        answer.boxed()
    }

    async fn written(resp: Response<Body>) -> (String, bool) {
        let mut out = Vec::new();
        let keep = write_response(&mut out, resp).await.unwrap();
        let s = String::from_utf8(out).unwrap();
        // The date varies; check it is there and drop it.
        let date = s.lines().find(|l| l.starts_with("date: ")).unwrap();
        assert!(date.ends_with(" GMT"), "{date}");
        (s.replace(&format!("{date}\r\n"), ""), keep)
    }

    #[tokio::test]
    async fn a_known_length_body_gets_content_length() {
        let mut r = text(StatusCode::OK, "hello");
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let (s, keep) = written(r).await;
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 5\r\n\r\nhello"
        );
        assert!(keep);
    }

    #[tokio::test]
    async fn a_streamed_body_is_chunked_and_close_is_reported() {
        let frames = futures_util::stream::iter(vec![
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from("ab"))),
            Ok(Frame::data(Bytes::new())),
            Ok(Frame::data(Bytes::from("0123456789abcdef"))),
        ]);
        let mut r = Response::new(StreamBody::new(frames).boxed());
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Close"));
        let (s, keep) = written(r).await;
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nconnection: Close\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
        );
        assert!(!keep);
    }

    #[tokio::test]
    async fn no_content_has_no_body_framing() {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        let (s, _) = written(r).await;
        assert_eq!(s, "HTTP/1.1 204 No Content\r\n\r\n");
    }

    #[tokio::test]
    async fn a_body_shorter_than_declared_is_an_error() {
        let frames = futures_util::stream::iter(vec![Ok::<
            _,
            Box<dyn std::error::Error + Send + Sync>,
        >(Frame::data(Bytes::from("ab")))]);
        // A body whose size hint claims more than it yields.
        struct Liar<B>(B);
        impl<B: hyper::body::Body + Unpin> hyper::body::Body for Liar<B> {
            type Data = B::Data;
            type Error = B::Error;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
                Pin::new(&mut self.0).poll_frame(cx)
            }
            fn size_hint(&self) -> hyper::body::SizeHint {
                hyper::body::SizeHint::with_exact(10)
            }
        }
        let r = Response::new(Liar(StreamBody::new(frames)).boxed());
        let err = write_response(&mut Vec::new(), r).await.unwrap_err();
        assert!(err.to_string().contains("had 2 bytes, not the 10"), "{err}");
    }

    #[test]
    fn only_http11_keep_alive_requests_may_detach() {
        let state = Arc::new(DetachState::default());
        let req = |version, conn: Option<&str>| {
            let mut b = Request::builder().version(version).uri("/x");
            if let Some(c) = conn {
                b = b.header(header::CONNECTION, c);
            }
            b.body(()).unwrap()
        };
        assert!(Detacher::for_request(&state, &req(Version::HTTP_11, None)).is_some());
        assert!(
            Detacher::for_request(&state, &req(Version::HTTP_11, Some("keep-alive"))).is_some()
        );
        assert!(Detacher::for_request(&state, &req(Version::HTTP_11, Some("TE, close"))).is_none());
        assert!(Detacher::for_request(&state, &req(Version::HTTP_10, None)).is_none());
    }

    #[tokio::test]
    async fn a_detached_connection_swallows_hyper_output_and_keeps_read_ahead() {
        let state = Arc::new(DetachState::default());
        let (client, server) = tokio::io::duplex(64);
        let mut io = ConnIo::new(server, state.clone());
        let d = Detacher::for_request(&state, &Request::new(())).unwrap();
        let Ok(placeholder) = d.detach(boxed(async { text(StatusCode::OK, "later") })) else {
            panic!("the detach was refused");
        };
        assert!(placeholder.extensions().get::<Placeholder>().is_some());
        // hyper's placeholder goes nowhere.
        io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        io.shutdown().await.unwrap();
        io.reclaim(Bytes::from_static(b"GET /next"));
        let answer = state.take_pending().unwrap();
        let resp = wait_parked(&mut io, answer).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // Writes reach the socket again, and hyper would read the read-ahead first.
        io.write_all(b"X").await.unwrap();
        let mut rest = Vec::new();
        let mut next = [0u8; 9];
        io.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"GET /next");
        drop(io);
        let mut client = client;
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"X");
    }

    #[tokio::test]
    async fn a_client_that_leaves_ends_the_wait() {
        let state = Arc::new(DetachState::default());
        let (client, server) = tokio::io::duplex(64);
        let mut io = ConnIo::new(server, state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let answer = boxed(async move {
            let _ = rx.await;
            text(StatusCode::OK, "never")
        });
        drop(client);
        assert!(wait_parked(&mut io, answer).await.is_none());
        // The answer future was dropped with the wait.
        assert!(tx.is_closed());
    }

    #[tokio::test]
    async fn bytes_sent_while_parked_are_kept_for_the_next_request() {
        let state = Arc::new(DetachState::default());
        let (mut client, server) = tokio::io::duplex(4096);
        let mut io = ConnIo::new(server, state);
        io.reclaim(Bytes::from_static(b"A"));
        client.write_all(b"POST /pipelined").await.unwrap();
        // Ready on its second poll: the first lets the wait read what the client sent.
        let answer = boxed(async {
            tokio::task::yield_now().await;
            text(StatusCode::OK, "now")
        });
        assert!(wait_parked(&mut io, answer).await.is_some());
        assert_eq!(&io.prefix[..], b"APOST /pipelined");
    }

    #[tokio::test]
    async fn blocked_output_refuses_the_detach() {
        let state = Arc::new(DetachState::default());
        // A one-byte pipe: the second write cannot go through.
        let (_client, server) = tokio::io::duplex(1);
        let mut io = ConnIo::new(server, state.clone());
        io.write_all(b"a").await.unwrap();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_write(&mut cx, b"b").is_pending());
        let d = Detacher::for_request(&state, &Request::new(())).unwrap();
        assert!(d
            .detach(boxed(async { text(StatusCode::OK, "x") }))
            .is_err());
        assert!(state.take_pending().is_none());
    }
}
