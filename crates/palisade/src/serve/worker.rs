//! One worker thread: it owns a shard of the core (a [`Shell`]) and, when the server has
//! a UDP listener, its own socket on the first UDP address (`SO_REUSEPORT`: the kernel
//! spreads senders over the workers' sockets).
//!
//! A pass of the loop takes the worker's queue (messages handed over by other threads),
//! fires due timers, sends what the core produced (one `sendmmsg` for the socket), and
//! then blocks in one `recvmmsg` that returns every datagram queued (up to
//! [`sys::BATCH`]). So a worker makes at most one receive call per datagram when the
//! queue is shallow and fewer when it is deep, and no readiness call (`epoll_wait`) or
//! empty read at all. The receive times out every [`WAKE_TICK`] (timers); other threads
//! interrupt it with a signal when they hand the worker something (see [`Waker`]).

use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::router::{Waker, WAKE_TICK};
use super::shell::Shell;
use super::sys;
use crate::messages::Inbound;

/// Most queued messages taken in one pass (the socket is read between passes).
const QUEUE_PASS: usize = 1024;

pub(super) struct Worker {
    pub(super) shell: Shell,
    pub(super) rx: Receiver<Inbound>,
    pub(super) waker: Arc<Waker>,
    /// This worker's socket on the first UDP listening address.
    pub(super) socket: Option<Arc<std::net::UdpSocket>>,
    pub(super) stop: Arc<AtomicBool>,
}

/// Takes up to [`QUEUE_PASS`] queued messages; `true` when the queue is closed.
fn take_queue(rx: &Receiver<Inbound>, waker: &Waker, shell: &mut Shell) -> bool {
    let mut taken = 0;
    let mut closed = false;
    for _ in 0..QUEUE_PASS {
        match rx.try_recv() {
            Ok(m) => {
                taken += 1;
                shell.on_inbound(m);
            }
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => {
                closed = true;
                break;
            }
        }
    }
    waker.taken(taken);
    closed
}

/// Runs the worker until `stop`; gives its shell back for the final flush.
pub(super) fn run(w: Worker) -> Shell {
    let Worker {
        mut shell,
        rx,
        waker,
        socket,
        stop,
    } = w;
    waker.register();
    let mut batch = socket.as_ref().map(|_| sys::RecvBatch::new());
    let mut recv_errors: u64 = 0;
    'run: while !stop.load(Ordering::Relaxed) {
        // 1. what other threads handed over
        if take_queue(&rx, &waker, &mut shell) {
            break 'run;
        }
        // 2. timers, 3. sends
        let now = Instant::now();
        if shell.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            shell.timeout(now);
        }
        shell.flush();
        shell.send_observed(false);
        shell.shield_summary(false);
        shell.suppressed_events(false);
        shell.traffic_summary(false);
        shell.publish(now, waker.queued());
        // 4. wait for datagrams (or the queue, without a socket)
        match (&socket, &mut batch) {
            (Some(sock), Some(batch)) => {
                waker.sleep();
                match rx.try_recv() {
                    Ok(m) => {
                        waker.awake();
                        waker.taken(1);
                        shell.on_inbound(m);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break 'run,
                    Err(TryRecvError::Empty) => {}
                }
                let r = batch.recv(sock.as_raw_fd());
                waker.awake();
                match r {
                    Ok(_) => {
                        // What was queued before these datagrams arrived is applied
                        // first (a binding another shard saved before it answered the
                        // REGISTER must be here before a call to that phone).
                        let _ = take_queue(&rx, &waker, &mut shell);
                        let now = Instant::now();
                        for (from, bytes) in batch.datagrams() {
                            shell.on_datagram(now, from, bytes, 0);
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        recv_errors += 1;
                        if recv_errors.is_power_of_two() {
                            warn!(error = %e, errors = recv_errors, "UDP receive failed");
                        }
                        // an error that repeats must not spin the worker
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            _ => {
                let wait = shell
                    .endpoint
                    .poll_timeout()
                    .map_or(WAKE_TICK, |t| t.saturating_duration_since(now))
                    .min(WAKE_TICK);
                match rx.recv_timeout(wait) {
                    Ok(m) => {
                        waker.taken(1);
                        shell.on_inbound(m);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break 'run,
                }
            }
        }
    }
    // what is still queued, then the last sends
    while let Ok(m) = rx.try_recv() {
        shell.on_inbound(m);
    }
    shell.flush();
    shell
}
