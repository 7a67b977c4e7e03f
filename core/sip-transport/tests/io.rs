//! The IO loops over real sockets on 127.0.0.1 (and an in-memory duplex stream standing in for
//! a TLS stream, to show the loop is generic over its IO).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use bytes::Bytes;
use switchboard_sip_transport::framing::{error_response, peek_head, Frame, Limits, StreamFramer};
use switchboard_sip_transport::{
    serve_stream, serve_udp, FlowId, Flows, Inbound, SendError, SipHandler, Transport,
    TransportConfig,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};

/// Generous bound for anything that should happen "soon"; never a tight timing assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// Answers every request `200 OK` (via `error_response`), after waiting for a permit from
/// `gate` if there is one, and reports each message it sees.
struct Recorder {
    seen: mpsc::UnboundedSender<Inbound>,
    gate: Option<Arc<Semaphore>>,
}

#[async_trait]
impl SipHandler for Recorder {
    async fn on_message(&self, inbound: Inbound) -> Option<Bytes> {
        let _ = self.seen.send(inbound.clone());
        if let Some(gate) = &self.gate {
            gate.acquire().await.ok()?.forget();
        }
        error_response(&inbound.message, 200, "OK").map(Bytes::from)
    }
}

fn recorder() -> (Arc<dyn SipHandler>, mpsc::UnboundedReceiver<Inbound>) {
    let (seen, rx) = mpsc::unbounded_channel();
    (Arc::new(Recorder { seen, gate: None }), rx)
}

fn request(method: &str, call_id: &str, cseq: u32, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-{call_id}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a-{call_id}\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\
         \r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn cfg() -> TransportConfig {
    TransportConfig {
        limits: Limits {
            max_message_bytes: 4000,
            ..Limits::default()
        },
        ..TransportConfig::default()
    }
}

async fn soon<F: std::future::Future>(what: &str, fut: F) -> Result<F::Output> {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .with_context(|| format!("timed out waiting for {what}"))
}

/// Reads the next frame the server sends.
async fn next_frame(
    stream: &mut (impl AsyncRead + Unpin),
    framer: &mut StreamFramer,
) -> Result<Frame> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = framer.next_frame()? {
            return Ok(frame);
        }
        let n = soon("a frame", stream.read(&mut buf)).await??;
        if n == 0 {
            bail!("connection closed before a complete frame");
        }
        framer.push(&buf[..n]);
    }
}

async fn next_message(
    stream: &mut (impl AsyncRead + Unpin),
    framer: &mut StreamFramer,
) -> Result<Bytes> {
    match next_frame(stream, framer).await? {
        Frame::Message(m) => Ok(m),
        other => bail!("expected a message, got {other:?}"),
    }
}

fn assert_answers(response: &[u8], status: u16, call_id: &str, cseq: &str) {
    let head = peek_head(response).expect("response parses");
    assert_eq!(
        head.status,
        Some(status),
        "{}",
        String::from_utf8_lossy(response)
    );
    assert_eq!(head.call_id, [call_id]);
    assert_eq!(head.cseq, [cseq]);
}

async fn read_to_end(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut all = Vec::new();
    soon("the connection to close", stream.read_to_end(&mut all)).await??;
    Ok(all)
}

/// Waits until `flows` holds `n` flows.
async fn flows_become(flows: &Flows, n: usize) -> Result<()> {
    soon(&format!("{n} open flows"), async {
        while flows.len() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// UDP

struct UdpServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn udp_server(cfg: TransportConfig, handler: Arc<dyn SipHandler>) -> Result<UdpServer> {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let addr = socket.local_addr()?;
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(serve_udp(socket, cfg, handler, rx));
    Ok(UdpServer { addr, stop, task })
}

async fn udp_client(server: SocketAddr) -> Result<UdpSocket> {
    let client = UdpSocket::bind("127.0.0.1:0").await?;
    client.connect(server).await?;
    Ok(client)
}

async fn recv(client: &UdpSocket) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    let n = soon("a datagram", client.recv(&mut buf)).await??;
    buf.truncate(n);
    Ok(buf)
}

#[tokio::test]
async fn udp_handler_replies_and_keepalives_are_ignored() -> Result<()> {
    let (handler, mut seen) = recorder();
    let server = udp_server(cfg(), handler).await?;
    let client = udp_client(server.addr).await?;

    client.send(b"\r\n\r\n").await?;
    client.send(&request("OPTIONS", "udp-1", 1, "")).await?;
    let reply = recv(&client).await?;
    assert_answers(&reply, 200, "udp-1", "1 OPTIONS");

    let inbound = seen.recv().await.context("handler saw the message")?;
    assert_eq!(inbound.transport, Transport::Udp);
    assert_eq!(inbound.peer, client.local_addr()?);
    assert_eq!(inbound.local, server.addr);
    assert_eq!(
        &inbound.message[..],
        &request("OPTIONS", "udp-1", 1, "")[..]
    );
    assert!(
        seen.try_recv().is_err(),
        "the keep-alive reached the handler"
    );

    server.stop.send(true)?;
    soon("serve_udp to stop", server.task).await??;
    Ok(())
}

#[tokio::test]
async fn udp_oversize_datagram_gets_513_with_the_request_headers() -> Result<()> {
    let (handler, mut seen) = recorder();
    let server = udp_server(cfg(), handler).await?;
    let client = udp_client(server.addr).await?;

    client
        .send(&request("MESSAGE", "udp-big", 7, &"x".repeat(5000)))
        .await?;
    let reply = recv(&client).await?;
    assert_answers(&reply, 513, "udp-big", "7 MESSAGE");
    let head = peek_head(&reply).expect("parses");
    assert_eq!(
        head.via,
        ["SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-udp-big-7"]
    );
    assert!(
        seen.try_recv().is_err(),
        "the oversize message reached the handler"
    );

    // Garbage gets nothing; the socket keeps serving.
    client.send(&vec![b'#'; 5000]).await?;
    client.send(&request("OPTIONS", "udp-after", 1, "")).await?;
    assert_answers(&recv(&client).await?, 200, "udp-after", "1 OPTIONS");
    Ok(())
}

#[tokio::test]
async fn udp_content_length_longer_than_the_datagram_gets_400() -> Result<()> {
    let (handler, _seen) = recorder();
    let server = udp_server(cfg(), handler).await?;
    let client = udp_client(server.addr).await?;
    let mut short = request("MESSAGE", "udp-short", 3, "hello");
    short.truncate(short.len() - 2);
    client.send(&short).await?;
    assert_answers(&recv(&client).await?, 400, "udp-short", "3 MESSAGE");
    Ok(())
}

#[tokio::test]
async fn udp_overload_answers_503_instead_of_queueing() -> Result<()> {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let handler = Arc::new(Recorder {
        seen: seen_tx,
        gate: Some(gate.clone()),
    });
    let server = udp_server(
        TransportConfig {
            max_inflight_per_socket: 1,
            ..cfg()
        },
        handler,
    )
    .await?;
    let client = udp_client(server.addr).await?;

    client.send(&request("MESSAGE", "slow", 1, "a")).await?;
    soon("the first message to reach the handler", seen.recv())
        .await?
        .context("handler gone")?;
    client.send(&request("MESSAGE", "refused", 1, "b")).await?;
    assert_answers(&recv(&client).await?, 503, "refused", "1 MESSAGE");

    gate.add_permits(1);
    assert_answers(&recv(&client).await?, 200, "slow", "1 MESSAGE");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TCP

struct TcpServer {
    addr: SocketAddr,
    flows: Flows,
    _stop: watch::Sender<bool>,
}

async fn tcp_server(cfg: TransportConfig, handler: Arc<dyn SipHandler>) -> Result<TcpServer> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let flows = Flows::new();
    let (stop, rx) = watch::channel(false);
    let f = flows.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(serve_stream(
                stream,
                peer,
                addr,
                Transport::Tcp,
                cfg,
                handler.clone(),
                f.clone(),
                rx.clone(),
            ));
        }
    });
    Ok(TcpServer {
        addr,
        flows,
        _stop: stop,
    })
}

#[tokio::test]
async fn tcp_pipelined_messages_get_replies_in_order() -> Result<()> {
    let (handler, mut seen) = recorder();
    let server = tcp_server(cfg(), handler).await?;
    let mut client = TcpStream::connect(server.addr).await?;

    let mut both = request("MESSAGE", "pipe", 1, "first");
    both.extend(request("MESSAGE", "pipe", 2, "second"));
    client.write_all(&both).await?;

    let mut framer = StreamFramer::new(Limits::default());
    assert_answers(
        &next_message(&mut client, &mut framer).await?,
        200,
        "pipe",
        "1 MESSAGE",
    );
    assert_answers(
        &next_message(&mut client, &mut framer).await?,
        200,
        "pipe",
        "2 MESSAGE",
    );

    let first = seen.recv().await.context("first")?;
    let second = seen.recv().await.context("second")?;
    assert_eq!(first.transport, Transport::Tcp);
    assert_eq!(first.peer, client.local_addr()?);
    assert_eq!(first.flow, second.flow, "same connection, same flow");
    assert!(first.message.ends_with(b"\r\n\r\nfirst"));
    assert!(second.message.ends_with(b"\r\n\r\nsecond"));
    Ok(())
}

#[tokio::test]
async fn tcp_ping_gets_pong() -> Result<()> {
    let (handler, _seen) = recorder();
    let server = tcp_server(cfg(), handler).await?;
    let mut client = TcpStream::connect(server.addr).await?;
    client.write_all(b"\r\n\r\n").await?;
    let mut pong = [0u8; 2];
    soon("the pong", client.read_exact(&mut pong)).await??;
    assert_eq!(&pong, b"\r\n");
    // The connection stays usable.
    client
        .write_all(&request("OPTIONS", "after-ping", 1, ""))
        .await?;
    let mut framer = StreamFramer::new(Limits::default());
    assert_answers(
        &next_message(&mut client, &mut framer).await?,
        200,
        "after-ping",
        "1 OPTIONS",
    );
    Ok(())
}

#[tokio::test]
async fn tcp_oversize_message_gets_513_then_close() -> Result<()> {
    let (handler, mut seen) = recorder();
    let server = tcp_server(cfg(), handler).await?;
    let mut client = TcpStream::connect(server.addr).await?;
    // The whole 100 kB body is sent, as a real client would: the server must still get its
    // response through rather than reset the connection with unread data.
    client
        .write_all(&request("MESSAGE", "tcp-big", 4, &"x".repeat(100_000)))
        .await?;
    let all = read_to_end(&mut client).await?;
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(&all);
    let Some(Frame::Message(response)) = framer.next_frame()? else {
        bail!("no response in {all:?}")
    };
    assert_answers(&response, 513, "tcp-big", "4 MESSAGE");
    assert_eq!(framer.next_frame()?, None, "nothing after the 513");
    assert!(seen.try_recv().is_err());
    flows_become(&server.flows, 0).await
}

#[tokio::test]
async fn tcp_message_without_content_length_gets_400_then_close() -> Result<()> {
    let (handler, _seen) = recorder();
    let server = tcp_server(cfg(), handler).await?;
    let mut client = TcpStream::connect(server.addr).await?;
    let text = String::from_utf8(request("MESSAGE", "no-cl", 9, "hi"))?;
    let without = text.replace("Content-Length: 2\r\n", "");
    client.write_all(without.as_bytes()).await?;
    let all = read_to_end(&mut client).await?;
    assert_answers(&all, 400, "no-cl", "9 MESSAGE");
    Ok(())
}

#[tokio::test]
async fn tcp_idle_connection_is_closed() -> Result<()> {
    let (handler, _seen) = recorder();
    let cfg = TransportConfig {
        idle_timeout: Duration::from_millis(200),
        ..cfg()
    };
    let server = tcp_server(cfg, handler).await?;
    let mut client = TcpStream::connect(server.addr).await?;
    flows_become(&server.flows, 1).await?;
    let started = std::time::Instant::now();
    let all = read_to_end(&mut client).await?;
    assert!(all.is_empty(), "unexpected bytes {all:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "closed before the idle timeout"
    );
    flows_become(&server.flows, 0).await
}

#[tokio::test]
async fn flows_send_reaches_an_open_connection_and_the_flow_goes_away_on_disconnect() -> Result<()>
{
    let (handler, mut seen) = recorder();
    let server = tcp_server(cfg(), handler).await?;
    let mut client = TcpStream::connect(server.addr).await?;
    let mut framer = StreamFramer::new(Limits::default());

    client.write_all(&request("REGISTER", "reg", 1, "")).await?;
    assert_answers(
        &next_message(&mut client, &mut framer).await?,
        200,
        "reg",
        "1 REGISTER",
    );
    let flow = seen.recv().await.context("register")?.flow;
    assert_eq!(server.flows.len(), 1);
    let info = server.flows.info(flow).context("flow info")?;
    assert_eq!(
        (info.transport, info.peer, info.local),
        (Transport::Tcp, client.local_addr()?, server.addr)
    );

    let out_of_band = Bytes::from(request("MESSAGE", "to-client", 1, "hello from the server"));
    server.flows.send(flow, out_of_band.clone())?;
    assert_eq!(next_message(&mut client, &mut framer).await?, out_of_band);

    drop(client);
    flows_become(&server.flows, 0).await?;
    assert_eq!(
        server.flows.send(flow, out_of_band),
        Err(SendError::UnknownFlow(flow))
    );
    assert_eq!(
        server.flows.send(FlowId(u64::MAX), Bytes::new()),
        Err(SendError::UnknownFlow(FlowId(u64::MAX)))
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Any stream IO (an in-memory duplex stands in for TLS)

#[tokio::test]
async fn a_peer_that_stops_reading_fills_the_queue_and_is_dropped() -> Result<()> {
    let (handler, mut seen) = recorder();
    let (mut client, server_side) = tokio::io::duplex(256);
    let flows = Flows::new();
    let (_stop, rx) = watch::channel(false);
    let cfg = TransportConfig {
        outbound_queue: 2,
        write_timeout: Duration::from_millis(300),
        ..cfg()
    };
    let peer: SocketAddr = "192.0.2.10:5061".parse()?;
    let local: SocketAddr = "192.0.2.1:5061".parse()?;
    let task = tokio::spawn(serve_stream(
        server_side,
        peer,
        local,
        Transport::Tls,
        cfg,
        handler,
        flows.clone(),
        rx,
    ));

    client
        .write_all(&request("REGISTER", "slow-reader", 1, ""))
        .await?;
    let inbound = soon("the register", seen.recv())
        .await?
        .context("handler gone")?;
    assert_eq!(
        (inbound.transport, inbound.peer, inbound.local),
        (Transport::Tls, peer, local)
    );

    // The client never reads: the 256-byte pipe fills, then the 2-message queue.
    let big = Bytes::from(request("MESSAGE", "push", 1, &"y".repeat(1000)));
    let mut refused = None;
    for _ in 0..100 {
        match flows.send(inbound.flow, big.clone()) {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(SendError::QueueFull {
            flow: inbound.flow,
            capacity: 2
        })
    );

    // The stalled write times out and the connection ends.
    soon("the connection to end", task).await??;
    assert!(flows.is_empty());
    Ok(())
}

#[tokio::test]
async fn shutdown_ends_a_stream_connection() -> Result<()> {
    let (handler, _seen) = recorder();
    let (mut client, server_side) = tokio::io::duplex(4096);
    let (stop, rx) = watch::channel(false);
    let flows = Flows::new();
    let addr: SocketAddr = "127.0.0.1:5060".parse()?;
    let task = tokio::spawn(serve_stream(
        server_side,
        addr,
        addr,
        Transport::Tcp,
        cfg(),
        handler,
        flows.clone(),
        rx,
    ));
    flows_become(&flows, 1).await?;
    stop.send(true)?;
    soon("serve_stream to stop", task).await??;
    assert!(flows.is_empty());
    let mut rest = Vec::new();
    soon("EOF", client.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty());
    Ok(())
}
