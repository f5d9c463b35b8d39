//! WebSocket transports (RFC 7118, `ws:` and `wss:` listeners): the HTTP upgrade
//! (subprotocol `sip` required, `Origin` checked against `[ws] origins`), then one SIP
//! message per text or binary frame in each direction. A connection is a stream
//! connection like a TCP one for the rest of the server: its task announces it to the
//! shard that owns it (`Inbound::Opened`), hands each message over, writes what the core
//! sends through the same bounded queue, and reports `Inbound::Closed` at the end (the
//! core then drops the bindings made over it: nothing else reaches a browser).
//!
//! Bounds: a frame and a message are at most `limits.max_message_size` (a larger one
//! closes the connection with 1009, "message too big", before its payload is read);
//! the handshake must complete within [`HANDSHAKE_TIMEOUT`]; a connection without a
//! frame for `tcp.idle_timeout` is closed, and the server pings every
//! `[ws] ping_interval` so that a live browser (which answers pings by itself) stays
//! connected between its registrations; connections count toward
//! `tcp.max_connections`. A frame of CRLFs is an RFC 5626 keep-alive: a double CRLF
//! gets a single CRLF back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use palisade_core::{Peer, Transport};
use palisade_sip::Limits;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use super::router::Router;
use super::stream::CONN_QUEUE;
use crate::messages::Inbound;

/// Time a client has to complete the TLS handshake and the HTTP upgrade.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from a connection at once (the library's default is 128 KiB a
/// connection).
const READ_BUFFER: usize = 8192;

/// The subprotocol of RFC 7118 section 4.
const SUBPROTOCOL: &str = "sip";

/// What every connection of one `ws:`/`wss:` listener shares.
#[derive(Clone)]
pub(super) struct WsSetup {
    pub(super) transport: Transport,
    pub(super) inbound: Router,
    pub(super) next_conn: Arc<AtomicUsize>,
    /// Live stream connections (TCP, TLS, WS, WSS together) and their bound.
    pub(super) live: Arc<AtomicUsize>,
    pub(super) max_conns: usize,
    pub(super) idle: Duration,
    pub(super) ping: Duration,
    pub(super) limits: Limits,
    /// `[ws] origins`: empty admits any page.
    pub(super) origins: Arc<Vec<String>>,
    /// For `wss:`.
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Accepts connections on `listener` for as long as the server runs.
pub(super) fn spawn_listener(listener: TcpListener, setup: WsSetup) {
    tokio::spawn(async move {
        let (mut refused, mut failed) = (0u64, 0u64);
        loop {
            let (sock, addr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    failed += 1;
                    if failed.is_power_of_two() {
                        warn!(error = %e, failures = failed, "accept failed; backing off 100 ms");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if setup.live.load(Ordering::Relaxed) >= setup.max_conns {
                refused += 1;
                if refused.is_power_of_two() {
                    warn!(peer = %addr, max = setup.max_conns, refused, "WebSocket connection refused: tcp.max_connections reached");
                }
                continue;
            }
            let _ = sock.set_nodelay(true);
            let setup = setup.clone();
            let counted = Counted::new(setup.live.clone());
            tokio::spawn(async move {
                accept(sock, addr, &setup).await;
                drop(counted);
            });
        }
    });
}

/// One live connection in the shared count, however its task ends.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(live: Arc<AtomicUsize>) -> Counted {
        live.fetch_add(1, Ordering::Relaxed);
        Counted(live)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept(sock: TcpStream, addr: SocketAddr, setup: &WsSetup) {
    match &setup.tls {
        None => upgrade(sock, addr, setup).await,
        Some(a) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(sock)).await {
            Ok(Ok(s)) => upgrade(s, addr, setup).await,
            _ => debug!(peer = %addr, "TLS handshake failed (wss:)"),
        },
    }
}

/// Why an upgrade request is refused, as its HTTP answer.
fn refusal((status, reason): (StatusCode, &str)) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(format!("{reason}\r\n")));
    *r.status_mut() = status;
    r
}

/// The RFC 7118 checks on the upgrade request: the `sip` subprotocol (400 without it:
/// this endpoint speaks nothing else), and the page's `Origin` when `[ws] origins` is
/// set (403, RFC 6455 section 4.2.2). A request without `Origin` does not come from a
/// browser page, and a non-browser client can write any Origin it likes: the list
/// keeps other sites' pages from using a visitor's browser, not programs, out.
pub(super) fn check_upgrade(
    req: &Request,
    origins: &[String],
) -> Result<(), (StatusCode, &'static str)> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offered {
        return Err((
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol: sip is required (RFC 7118)",
        ));
    }
    if !origins.is_empty() {
        if let Some(o) = req.headers().get("origin") {
            let o = o.to_str().unwrap_or_default().trim_end_matches('/');
            if !origins
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(o))
            {
                return Err((StatusCode::FORBIDDEN, "Origin not allowed ([ws] origins)"));
            }
        }
    }
    Ok(())
}

async fn upgrade<S>(stream: S, addr: SocketAddr, setup: &WsSetup)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let max = setup.limits.max_message_size;
    // (the library's defaults buffer 128 KiB each way per connection; one message per
    // frame, each written at once, needs far less; it asserts that the write buffer's
    // bound exceeds its target, so both are set)
    let config = WebSocketConfig::default()
        .max_frame_size(Some(max))
        .max_message_size(Some(max))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        // what the core sends waits in the connection's queue, not here
        .max_write_buffer_size(max.saturating_mul(4).max(1 << 16));
    let origins = setup.origins.clone();
    // (the library's callback type: its error is the HTTP answer itself)
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, mut resp: Response| {
        check_upgrade(req, &origins).map_err(|e| {
            debug!(peer = %addr, status = e.0.as_u16(), reason = e.1, path = %req.uri(), "WebSocket upgrade refused");
            refusal(e)
        })?;
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(resp)
    };
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            debug!(peer = %addr, error = %e, "WebSocket handshake failed");
            return;
        }
        Err(_) => {
            debug!(peer = %addr, "WebSocket handshake did not complete in time");
            return;
        }
    };
    let owner = setup.inbound.owner_of_addr(&addr);
    let conn = setup.inbound.conn_id(&setup.next_conn, owner);
    let peer = Peer {
        transport: setup.transport,
        addr,
        conn: Some(conn),
    };
    run(ws, conn, peer, setup).await;
}

/// Frames the server itself sends (pings, keep-alive answers, the closing frame).
enum Control {
    Frame(Message),
    Close(CloseCode, &'static str),
}

async fn run<S>(ws: tokio_tungstenite::WebSocketStream<S>, conn: u64, peer: Peer, setup: &WsSetup)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut frames) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CONN_QUEUE);
    let (ctl, mut ctl_rx) = mpsc::channel::<Control>(8);
    let (kill_tx, mut kill) = oneshot::channel::<()>();
    let inbound = setup.inbound.clone();
    if inbound
        .send(Inbound::Opened {
            conn,
            peer,
            tx: tx.clone(),
            kill: kill_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        loop {
            // (the server's own frames first: a closing frame queued before the shell
            // let go of the connection's queue must still leave, with its code)
            let frame = tokio::select! {
                biased;
                c = ctl_rx.recv() => match c {
                    Some(Control::Frame(m)) => m,
                    Some(Control::Close(code, reason)) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                        break;
                    }
                    None => break,
                },
                b = rx.recv() => match b {
                    // RFC 7118 section 5.1: a text frame for UTF-8, binary otherwise
                    Some(b) => match String::from_utf8(b) {
                        Ok(s) => Message::Text(s.into()),
                        Err(e) => Message::Binary(e.into_bytes().into()),
                    },
                    None => match ctl_rx.try_recv() {
                        Ok(Control::Close(code, reason)) => {
                            let _ = sink
                                .send(Message::Close(Some(CloseFrame {
                                    code,
                                    reason: reason.into(),
                                })))
                                .await;
                            break;
                        }
                        _ => break,
                    },
                },
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut ping = tokio::time::interval(setup.ping);
    // (the first tick is immediate)
    ping.tick().await;
    // the last frame of any kind (a pong too): idle is counted from it, across pings
    let mut heard = tokio::time::Instant::now();
    loop {
        let left = setup.idle.saturating_sub(heard.elapsed());
        let next = tokio::select! {
            n = tokio::time::timeout(left, frames.next()) => n,
            _ = ping.tick() => {
                let _ = ctl.try_send(Control::Frame(Message::Ping(Vec::new().into())));
                continue;
            }
            _ = &mut kill => {
                debug!(peer = %peer.addr, "WebSocket connection closed by the server");
                let _ = ctl.try_send(Control::Close(CloseCode::Away, "closed by the server"));
                break;
            }
        };
        if matches!(next, Ok(Some(Ok(_)))) {
            heard = tokio::time::Instant::now();
        }
        let bytes: Vec<u8> = match next {
            Err(_) => {
                debug!(peer = %peer.addr, "closing idle WebSocket connection");
                let _ = ctl.try_send(Control::Close(CloseCode::Away, "idle"));
                break;
            }
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Err(WsError::Capacity(e)))) => {
                debug!(peer = %peer.addr, error = %e, "WebSocket frame over limits.max_message_size; closing");
                let _ = ctl.try_send(Control::Close(
                    CloseCode::Size,
                    "frame over limits.max_message_size",
                ));
                break;
            }
            Ok(Some(Err(e))) => {
                debug!(peer = %peer.addr, error = %e, "WebSocket protocol error; closing");
                let _ = ctl.try_send(Control::Close(CloseCode::Protocol, "protocol error"));
                break;
            }
            Ok(Some(Ok(Message::Text(t)))) => t.as_str().as_bytes().to_vec(),
            Ok(Some(Ok(Message::Binary(b)))) => b.to_vec(),
            // pongs (and pings, answered by the library) only show the peer is alive
            Ok(Some(Ok(_))) => continue,
        };
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            // RFC 5626 section 4.4.1 keep-alive over a stream: CRLFCRLF gets CRLF
            if bytes.len() >= 4 {
                let _ = tx.try_send(b"\r\n".to_vec());
            }
            continue;
        }
        if inbound
            .send(Inbound::Message { peer, bytes })
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = inbound.send(Inbound::Closed { conn }).await;
    drop((tx, ctl));
    // the closing frame (if any) gets a moment to leave
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
