//! Work for the shards: each worker thread owns one core (`server.workers` of them) and
//! a bounded queue; the [`Router`] puts each message on the queue of the shard that owns
//! it (by Call-ID, see [`palisade_core::Shards`]) and wakes that worker when it sleeps in
//! its socket's receive.
//!
//! What goes where:
//! - SIP messages from stream connections and extra UDP sockets: the Call-ID's shard.
//! - Accounts, restrictions, lifted restrictions, closed connections: every shard.
//! - A binding one shard saved or removed: every other shard (see
//!   [`palisade_core::Endpoint::apply_binding`]).
//! - A send on a stream connection: the shard that owns the connection (its id modulo
//!   the shard count); a new connection to an address: the shard [`Router::owner_of_addr`].
//! - Notifications, released answers, webhooks: shard 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use palisade_core::{Binding, Shards};
use tokio::sync::mpsc::error::TrySendError as TokioTrySendError;

use super::{sys, Inbound};

/// One worker's wake-up: its kernel thread id, and whether it is (about to be) blocked
/// in its socket's receive, where only a signal reaches it.
#[derive(Default)]
pub(super) struct Waker {
    tid: AtomicI32,
    sleeping: AtomicBool,
}

impl Waker {
    /// Called by the worker itself, once, from its own thread.
    pub(super) fn register(&self) {
        self.tid.store(sys::thread_id(), Ordering::Release);
    }

    /// The worker is about to block in its receive (it checks its queue after this).
    pub(super) fn sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// The worker is awake.
    pub(super) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Interrupts the worker's receive if it sleeps there (one signal per sleep). A
    /// signal that lands between the worker's last look at its queue and the receive is
    /// lost; the worker then sees the message at its receive timeout (`WAKE_TICK`).
    pub(super) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let tid = self.tid.load(Ordering::Acquire);
            if tid > 0 {
                sys::wake_thread(tid);
            }
        }
    }
}

/// The longest a sleeping worker waits in its receive before it looks at its timers
/// and its queue again.
pub(super) const WAKE_TICK: Duration = Duration::from_millis(10);

/// Messages waiting for one shard. When it is full, stream readers wait (the kernel's
/// flow control pushes back on their peer) and datagrams handed over by another worker
/// are dropped and counted (UDP senders retransmit).
pub(super) const SHARD_QUEUE: usize = 8192;

/// A change of the location one shard made, for the others.
pub(super) enum Replica {
    Saved(Box<Binding>),
    Removed { aor: String, contact: String },
}

/// A shard's end of its queue, and its wake-up.
pub(super) type ShardEnd = (Receiver<Inbound>, Arc<Waker>);

#[derive(Clone)]
pub(super) struct Router {
    shards: Shards,
    queues: Arc<Vec<(SyncSender<Inbound>, Arc<Waker>)>>,
}

impl Router {
    /// A router over `shards.count()` new queues; the receivers and wakers go to the
    /// workers, in shard order.
    pub(super) fn new(shards: Shards) -> (Router, Vec<ShardEnd>) {
        let mut queues = Vec::new();
        let mut ends = Vec::new();
        for _ in 0..shards.count() {
            let (tx, rx) = std::sync::mpsc::sync_channel(SHARD_QUEUE);
            let w = Arc::new(Waker::default());
            queues.push((tx, w.clone()));
            ends.push((rx, w));
        }
        (
            Router {
                shards,
                queues: Arc::new(queues),
            },
            ends,
        )
    }

    pub(super) fn shards(&self) -> &Shards {
        &self.shards
    }

    /// The shard that opens and owns stream connections to `addr`.
    pub(super) fn owner_of_addr(&self, addr: &SocketAddr) -> usize {
        let mut key = [0u8; 18];
        match addr {
            SocketAddr::V4(a) => {
                if let Some(k) = key.get_mut(..4) {
                    k.copy_from_slice(&a.ip().octets());
                }
            }
            SocketAddr::V6(a) => {
                if let Some(k) = key.get_mut(..16) {
                    k.copy_from_slice(&a.ip().octets());
                }
            }
        }
        if let Some(k) = key.get_mut(16..) {
            k.copy_from_slice(&addr.port().to_be_bytes());
        }
        self.shards.of_call_id(&key)
    }

    /// The shard that owns stream connection `conn` (ids are allocated so that this is
    /// the shard that holds it: see [`Router::conn_id`]).
    pub(super) fn owner_of_conn(&self, conn: u64) -> usize {
        (conn % self.shards.count() as u64) as usize
    }

    /// A new connection id owned by shard `owner`, from the shared counter `next`.
    pub(super) fn conn_id(&self, next: &std::sync::atomic::AtomicUsize, owner: usize) -> u64 {
        let n = next.fetch_add(1, Ordering::Relaxed) as u64;
        n * self.shards.count() as u64 + owner as u64
    }

    /// The shards a message goes to (see the module documentation).
    fn targets(&self, m: &Inbound) -> Target {
        match m {
            Inbound::Message { bytes, .. } | Inbound::Datagram { bytes, .. } => {
                Target::One(self.shards.of_message(bytes))
            }
            Inbound::Opened { conn, .. } => Target::One(self.owner_of_conn(*conn)),
            Inbound::Send(t) => Target::One(match t.to.conn {
                Some(c) => self.owner_of_conn(c),
                None => self.owner_of_addr(&t.to.addr),
            }),
            Inbound::Closed { .. }
            | Inbound::Users(_)
            | Inbound::Restrict(_)
            | Inbound::Lift(_) => Target::All,
            Inbound::Replica { .. }
            | Inbound::Notify { .. }
            | Inbound::Release(_)
            | Inbound::Webhook(_) => Target::One(0),
        }
    }

    fn queue(&self, i: usize) -> Option<&(SyncSender<Inbound>, Arc<Waker>)> {
        self.queues.get(i).or_else(|| self.queues.first())
    }

    /// Puts `m` on its shard's queue without waiting; `Full` gives it back. A message
    /// for every shard goes to each; it is `Full` only if no shard took it.
    pub(super) fn try_send(&self, m: Inbound) -> Result<(), TokioTrySendError<Inbound>> {
        match self.targets(&m) {
            Target::One(i) => self.try_send_to(i, m),
            Target::All => {
                let n = self.queues.len();
                let mut taken = false;
                for i in 1..n {
                    if let Some(copy) = m.copy_for_broadcast() {
                        taken |= self.try_send_to(i, copy).is_ok();
                    }
                }
                match self.try_send_to(0, m) {
                    Ok(()) => Ok(()),
                    Err(e) if taken => {
                        drop(e);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Puts `m` on shard `i`'s queue without waiting and wakes its worker.
    pub(super) fn try_send_to(
        &self,
        i: usize,
        m: Inbound,
    ) -> Result<(), TokioTrySendError<Inbound>> {
        let Some((tx, waker)) = self.queue(i) else {
            return Err(TokioTrySendError::Closed(m));
        };
        match tx.try_send(m) {
            Ok(()) => {
                waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(m)) => {
                waker.wake();
                Err(TokioTrySendError::Full(m))
            }
            Err(TrySendError::Disconnected(m)) => Err(TokioTrySendError::Closed(m)),
        }
    }

    /// Every shard but `except` gets a copy of a location change.
    pub(super) fn replicate(&self, except: usize, r: &Replica) {
        for i in 0..self.queues.len() {
            if i == except {
                continue;
            }
            let m = match r {
                Replica::Saved(b) => Inbound::Replica(Replica::Saved(b.clone())),
                Replica::Removed { aor, contact } => Inbound::Replica(Replica::Removed {
                    aor: aor.clone(),
                    contact: contact.clone(),
                }),
            };
            // Blocking here could deadlock two workers that feed each other; a full
            // queue means that shard is far behind: its copy of this change is lost
            // until the binding is refreshed (counted by the caller's log line).
            let _ = self.try_send_to(i, m);
        }
    }

    /// Waits until the message's shard(s) took it (threads other than the workers: the
    /// storage, detection and evidence threads). `Err` once the workers have stopped.
    pub(super) fn blocking_send(&self, mut m: Inbound) -> Result<(), ()> {
        let started = std::time::Instant::now();
        loop {
            match self.try_send(m) {
                Ok(()) => return Ok(()),
                Err(TokioTrySendError::Closed(_)) => return Err(()),
                Err(TokioTrySendError::Full(back)) => {
                    if started.elapsed() > Duration::from_secs(60) {
                        return Err(());
                    }
                    m = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Waits (asynchronously: a stream connection's task) until the shard took it.
    pub(super) async fn send(&self, mut m: Inbound) -> Result<(), ()> {
        loop {
            match self.try_send(m) {
                Ok(()) => return Ok(()),
                Err(TokioTrySendError::Closed(_)) => return Err(()),
                Err(TokioTrySendError::Full(back)) => {
                    m = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

enum Target {
    One(usize),
    All,
}

impl Inbound {
    /// A copy of a message that goes to every shard.
    fn copy_for_broadcast(&self) -> Option<Inbound> {
        Some(match self {
            Inbound::Closed { conn } => Inbound::Closed { conn: *conn },
            Inbound::Users(u) => Inbound::Users(u.clone()),
            Inbound::Restrict(r) => Inbound::Restrict(r.clone()),
            Inbound::Lift(s) => Inbound::Lift(s.clone()),
            _ => return None,
        })
    }
}
