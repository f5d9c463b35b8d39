//! Stream transports (TCP, TLS): one task per connection that frames messages off the
//! byte stream (bounded per message and in time), and writes what the core sends, with a
//! bounded queue per connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palisade_core::{Peer, Transport};
use palisade_sip::{frame_stream, Frame, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::router::Router;
use crate::messages::Inbound;

/// Messages waiting to be written to one stream connection. A peer that does not read
/// fills it, and is then disconnected (counted as `slow_peers_closed`).
pub(super) const CONN_QUEUE: usize = 256;

pub(super) struct Conn {
    pub(super) tx: mpsc::Sender<Vec<u8>>,
    /// Dropping or firing it makes the connection's task close the connection.
    pub(super) kill: oneshot::Sender<()>,
    pub(super) transport: Transport,
    pub(super) addr: SocketAddr,
}

/// Binds a stream listener (`tcp:`, `tls:`, `ws:`, `wss:`) and gives the TLS acceptor it
/// needs (`tls:` and `wss:`): loaded from `tls.cert` and `tls.key` the first time one is
/// needed and kept in `loaded` for the other listeners.
pub(super) async fn bind_stream(
    l: &crate::config::Listen,
    cfg: &crate::config::FileConfig,
    loaded: &mut Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<(Option<tokio_rustls::TlsAcceptor>, tokio::net::TcpListener)> {
    let acceptor = if matches!(l.transport, Transport::Tls | Transport::Wss) {
        if loaded.is_none() {
            let (Some(c), Some(k)) = (&cfg.tls.cert, &cfg.tls.key) else {
                anyhow::bail!(
                    "a {}: listener needs tls.cert and tls.key in the config",
                    l.transport.param()
                );
            };
            *loaded = Some(load_tls(c, k)?);
        }
        loaded.clone()
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(l.addr)
        .await
        .with_context(|| format!("binding {}:{}", l.transport.param(), l.addr))?;
    tracing::info!(transport = l.transport.param(), addr = %listener.local_addr()?, "listening");
    Ok((acceptor, listener))
}

pub(super) fn load_tls(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("tls.cert {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("tls.cert {}: not PEM", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("tls.key {}", key.display()))?,
    ))
    .with_context(|| format!("tls.key {}: not PEM", key.display()))?
    .with_context(|| format!("tls.key {}: no private key found", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Everything a stream connection's task owns besides the stream itself.
pub(super) struct ConnTask {
    pub(super) conn: u64,
    pub(super) peer: Peer,
    pub(super) inbound: Router,
    pub(super) rx: mpsc::Receiver<Vec<u8>>,
    pub(super) tx: mpsc::Sender<Vec<u8>>,
    pub(super) idle: Duration,
    /// Time to complete a started message.
    pub(super) message_timeout: Duration,
    pub(super) limits: Limits,
    /// Fired (or dropped) by the shell to close the connection.
    pub(super) kill: oneshot::Receiver<()>,
    /// For an accepted connection: the shell's end of `kill`, sent with `Opened`.
    pub(super) announce: Option<oneshot::Sender<()>>,
}

/// Reads framed messages from a stream connection and writes what the core sends.
pub(super) async fn run_conn<S>(stream: S, task: ConnTask)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let ConnTask {
        conn,
        peer,
        inbound,
        mut rx,
        tx,
        idle,
        message_timeout,
        limits,
        mut kill,
        announce,
    } = task;
    let (mut r, mut w) = tokio::io::split(stream);
    if let Some(k) = announce {
        let _ = inbound
            .send(Inbound::Opened {
                conn,
                peer,
                tx: tx.clone(),
                kill: k,
            })
            .await;
    }
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16384];
    // When the message now in `buf` began: a peer that starts a message must finish it
    // within `message_timeout` (a slow sender cannot hold a buffer for the idle time).
    let mut partial_since: Option<tokio::time::Instant> = None;
    'read: loop {
        let wait = match partial_since {
            Some(at) => message_timeout.saturating_sub(at.elapsed()).min(idle),
            None => idle,
        };
        let read = tokio::select! {
            r = tokio::time::timeout(wait, r.read(&mut chunk)) => r,
            _ = &mut kill => {
                debug!(peer = %peer.addr, "connection closed by the server");
                break;
            }
        };
        let n = match read {
            Err(_) if partial_since.is_some() => {
                debug!(peer = %peer.addr, "closing a connection whose message did not complete in tcp.message_timeout");
                break;
            }
            Err(_) => {
                debug!(peer = %peer.addr, "closing idle connection");
                break;
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut progressed = false;
        loop {
            match frame_stream(&buf, &limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { consumed }) => {
                    if consumed >= 4 {
                        let _ = tx.try_send(b"\r\n".to_vec()); // RFC 5626 pong
                    }
                    buf.drain(..consumed.min(buf.len()));
                    progressed = true;
                }
                Ok(Frame::Message { consumed, .. }) => {
                    progressed = true;
                    let bytes = buf.get(..consumed).unwrap_or_default().to_vec();
                    buf.drain(..consumed.min(buf.len()));
                    if inbound
                        .send(Inbound::Message { peer, bytes })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Err(e) => {
                    // The framing is lost: let the core answer what it can, then close.
                    debug!(peer = %peer.addr, error = %e, "stream framing error; closing connection");
                    let _ = inbound
                        .send(Inbound::Message {
                            peer,
                            bytes: std::mem::take(&mut buf),
                        })
                        .await;
                    break 'read;
                }
            }
        }
        partial_since = match (buf.is_empty(), partial_since) {
            (true, _) => None,
            (false, Some(at)) if !progressed => Some(at),
            (false, _) => Some(tokio::time::Instant::now()),
        };
    }
    let _ = inbound.send(Inbound::Closed { conn }).await;
    drop(tx);
    writer.abort();
}
