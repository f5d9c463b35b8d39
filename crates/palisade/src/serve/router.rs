//! Work for the shards: each worker thread owns one core (`server.workers` of them) and
//! a bounded queue; the [`Router`] puts each message on the queue of the shard that owns
//! it (by Call-ID, see [`palisade_core::Shards`]) and wakes that worker when it sleeps in
//! its socket's receive.
//!
//! What goes where:
//! - SIP messages from stream connections and extra UDP sockets: the Call-ID's shard.
//! - Datagrams a worker's own socket received: the Call-ID's shard, except a REGISTER,
//!   which the receiving worker handles itself (see `Shell::take_datagram`).
//! - Accounts, restrictions, lifted restrictions, closed connections: every shard.
//! - A binding one shard saved or removed: every other shard (see
//!   [`palisade_core::Endpoint::apply_binding`]).
//! - A send on a stream connection: the shard that owns the connection (its id modulo
//!   the shard count); a new connection to an address: the shard [`Router::owner_of_addr`].
//! - Notifications, released answers, webhooks: shard 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use palisade_core::Shards;
use tokio::sync::mpsc::error::TrySendError as TokioTrySendError;

use super::sys;
use crate::messages::{Inbound, Replica};

/// One worker's wake-up: its kernel thread id, and whether it is (about to be) blocked
/// in its socket's receive, where only a signal reaches it.
#[derive(Default)]
pub(super) struct Waker {
    tid: AtomicI32,
    sleeping: AtomicBool,
    /// When it last went to sleep: microseconds since [`clock_epoch`].
    slept_at: AtomicU64,
    /// Its time asleep in its receive so far, in microseconds (the load measure of
    /// `balance`), added when a sleep ends.
    asleep_us: AtomicU64,
    /// Messages on the queue: added by the senders (one relaxed add each), taken off by
    /// the worker once per pass (the `palisade_queue_depth{queue="shard"}` gauge).
    queued: AtomicUsize,
}

impl Waker {
    /// Called by the worker itself, once, from its own thread.
    pub(super) fn register(&self) {
        self.tid.store(sys::thread_id(), Ordering::Release);
    }

    /// The worker is about to block in its receive (it checks its queue after this).
    pub(super) fn sleep(&self) {
        self.slept_at
            .store(micros(std::time::Instant::now()), Ordering::Relaxed);
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Whether the worker has slept in its receive for at least `d` at `now`: idle, not
    /// between two datagrams of a busy stream.
    /// (`d` zero, as while datagrams are gathered on one worker: asleep at all, without a
    /// clock to compare, once per datagram)
    pub(super) fn idle_for(&self, now: std::time::Instant, d: Duration) -> bool {
        self.sleeping.load(Ordering::SeqCst)
            && (d.is_zero()
                || micros(now).saturating_sub(self.slept_at.load(Ordering::Relaxed))
                    >= d.as_micros() as u64)
    }

    /// The worker is awake.
    pub(super) fn awake(&self) {
        self.woke();
        self.slept_until(std::time::Instant::now());
    }

    /// The worker is awake (the other workers leave its shard to it from now on); its
    /// sleep is counted by [`Waker::slept_until`], with a time it reads anyway.
    pub(super) fn woke(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Counts the sleep that ended at `now` (at most a lock's wait later than it did).
    pub(super) fn slept_until(&self, now: std::time::Instant) {
        let slept = micros(now).saturating_sub(self.slept_at.load(Ordering::Relaxed));
        self.asleep_us.fetch_add(slept, Ordering::Relaxed);
    }

    /// Its time asleep so far (µs).
    pub(super) fn asleep_us(&self) -> u64 {
        self.asleep_us.load(Ordering::Relaxed)
    }

    /// The CPU time its thread has used so far (µs; one system call), `None` before it
    /// registered or once it has ended.
    pub(super) fn cpu_us(&self) -> Option<u64> {
        match self.tid.load(Ordering::Acquire) {
            tid if tid > 0 => sys::thread_cpu_us(tid),
            _ => None,
        }
    }

    /// The worker took `n` messages off its queue.
    pub(super) fn taken(&self, n: usize) {
        if n > 0 {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Messages on the queue now.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// True once per sleep: the caller wakes the worker.
    fn take_sleep(&self) -> bool {
        self.sleeping.swap(false, Ordering::SeqCst)
    }

    /// Interrupts the worker's receive with a signal. One that lands between the
    /// worker's last look at its queue and the receive is lost; the worker then sees the
    /// message at its receive timeout (`WAKE_TICK`). Used only when the datagram
    /// wake-up (see [`Steer`]) is not available.
    fn signal(&self) {
        let tid = self.tid.load(Ordering::Acquire);
        if tid > 0 {
            sys::wake_thread(tid);
        }
    }
}

/// A process-wide origin for the workers' sleep times.
fn clock_epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn micros(t: std::time::Instant) -> u64 {
    t.saturating_duration_since(clock_epoch()).as_micros() as u64
}

/// The workers' sockets steer datagrams among themselves (see
/// [`sys::attach_steering`]): a worker asleep in its receive is woken by a small datagram
/// steered to its socket, sent in the waker's `sendmmsg` batch (or at once by a thread
/// that has none), rather than by a signal: a datagram waits in the socket, so no wake-up
/// is lost. What is handed over always goes through the owner's queue, one channel per
/// sender, so it keeps its order.
///
/// A wake-up datagram is a NUL byte, `W`, the target worker, a zero, and a per-boot
/// token. It is believed only with the token and from our own listening address (which
/// Linux does not accept as the source of a packet from the network); anything else that
/// starts with NUL is an ordinary (malformed) datagram.
pub(super) struct Steer {
    /// Where the workers' sockets listen (loopback for an unspecified address).
    pub(super) to: SocketAddr,
    /// Their address as bound.
    pub(super) local: SocketAddr,
    pub(super) token: [u8; 8],
    /// A socket of the group, for the wake-ups other threads send.
    pub(super) socket: Arc<std::net::UdpSocket>,
    /// Datagrams from the network all go to worker 0's socket (see `balance`); set by
    /// worker 0 alone, after it replaced the group's program.
    pub(super) gathered: AtomicBool,
    /// Worker 0 gathers and spreads as the load asks (`server.udp_gather`); otherwise
    /// always spread.
    pub(super) balanced: bool,
}

/// Bytes of a wake-up datagram.
const WAKE_LEN: usize = 12;

impl Steer {
    /// The wake-up datagram for worker `target`.
    fn wake(&self, target: usize) -> Vec<u8> {
        let mut w = Vec::with_capacity(WAKE_LEN);
        w.extend_from_slice(&[0, b'W', target as u8, 0]);
        w.extend_from_slice(&self.token);
        w
    }

    /// Whether datagrams from the network are gathered on worker 0's socket.
    pub(super) fn gathered(&self) -> bool {
        self.gathered.load(Ordering::Relaxed)
    }

    /// Whether a datagram that arrived from `from` is one of our wake-ups.
    pub(super) fn is_wake(&self, from: SocketAddr, bytes: &[u8]) -> bool {
        let ours = from.port() == self.local.port()
            && (from.ip() == self.local.ip()
                || (self.local.ip().is_unspecified() && from.ip().is_loopback()));
        ours && bytes.len() == WAKE_LEN
            && bytes.get(..2) == Some(&[0, b'W'][..])
            && bytes.get(4..12) == Some(&self.token[..])
    }
}

/// The longest a sleeping worker waits in its receive before it looks at its timers
/// and its queue again.
pub(super) const WAKE_TICK: Duration = Duration::from_millis(10);

/// Messages waiting for one shard. When it is full, stream readers wait (the kernel's
/// flow control pushes back on their peer) and datagrams handed over by another worker
/// are dropped and counted (UDP senders retransmit).
pub(super) const SHARD_QUEUE: usize = 8192;

/// A shard's end of its queue, and its wake-up.
pub(super) type ShardEnd = (Receiver<Inbound>, Arc<Waker>);

#[derive(Clone)]
pub(super) struct Router {
    shards: Shards,
    queues: Arc<Vec<(SyncSender<Inbound>, Arc<Waker>)>>,
    /// Set once the workers' sockets are bound; shared by every clone (the threads
    /// started before the sockets were bound wake workers the same way).
    steer: Arc<OnceLock<Steer>>,
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
                steer: Arc::new(OnceLock::new()),
            },
            ends,
        )
    }

    pub(super) fn shards(&self) -> &Shards {
        &self.shards
    }

    /// Turns on the workers' datagram steering, for this router and all its clones.
    pub(super) fn set_steer(&self, steer: Steer) {
        let _ = self.steer.set(steer);
    }

    pub(super) fn steer(&self) -> Option<&Steer> {
        self.steer.get()
    }

    /// Puts `m` on worker `i`'s queue without waking it; `Ok(Some(wake))` when it sleeps
    /// and must be woken with the datagram `wake` (sent in the caller's batch to the
    /// steering address); `Ok(None)` when it is awake (or was woken with a signal).
    pub(super) fn push_to(
        &self,
        i: usize,
        m: Inbound,
    ) -> Result<Option<Vec<u8>>, TokioTrySendError<Inbound>> {
        let Some((tx, waker)) = self.queue(i) else {
            return Err(TokioTrySendError::Closed(m));
        };
        enqueue(tx, waker, m)?;
        if !waker.take_sleep() {
            return Ok(None);
        }
        match self.steer() {
            Some(st) => Ok(Some(st.wake(i))),
            None => {
                waker.signal();
                Ok(None)
            }
        }
    }

    /// Wakes every worker that sleeps in its receive (shutdown).
    pub(super) fn wake_all(&self) {
        for (i, (_, w)) in self.queues.iter().enumerate() {
            self.wake(i, w);
        }
    }

    /// Wakes worker `i` if it sleeps in its receive.
    fn wake(&self, i: usize, waker: &Waker) {
        if !waker.take_sleep() {
            return;
        }
        match self.steer() {
            Some(st) => {
                if st.socket.send_to(&st.wake(i), st.to).is_err() {
                    waker.signal();
                }
            }
            None => waker.signal(),
        }
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
            | Inbound::Lift(_)
            | Inbound::Policy(_) => Target::All,
            Inbound::Replica { .. }
            | Inbound::Notify { .. }
            | Inbound::Release(_)
            | Inbound::Webhook(_) => Target::One(0),
        }
    }

    /// Worker `i`'s wake-up.
    pub(super) fn waker(&self, i: usize) -> Option<&Arc<Waker>> {
        self.queues.get(i).map(|(_, w)| w)
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
        let r = enqueue(tx, waker, m);
        // (also when full: the worker is then surely behind, never asleep for long)
        if !matches!(r, Err(TokioTrySendError::Closed(_))) {
            self.wake(i, waker);
        }
        r
    }

    /// How many shards there are.
    pub(super) fn count(&self) -> usize {
        self.queues.len()
    }

    /// Every shard but `except` gets a copy (made by `copy`) of a location change.
    pub(super) fn replicate(&self, except: usize, mut copy: impl FnMut() -> Replica) {
        for i in 0..self.queues.len() {
            if i == except {
                continue;
            }
            let m = Inbound::Replica(copy());
            // Not urgent: the worker takes it at its next pass (at the latest after
            // WAKE_TICK), without a wake-up of its own. Blocking here could deadlock
            // two workers that feed each other; a full queue means that shard is far
            // behind: its copy of this change is lost until the binding is refreshed.
            if let Some((tx, waker)) = self.queues.get(i) {
                let _ = enqueue(tx, waker, m);
            }
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

/// A non-blocking send, its errors in the form the callers use.
fn enqueue(
    tx: &SyncSender<Inbound>,
    waker: &Waker,
    m: Inbound,
) -> Result<(), TokioTrySendError<Inbound>> {
    // counted before the send, so that the worker's count never goes below zero
    waker.queued.fetch_add(1, Ordering::Relaxed);
    tx.try_send(m).map_err(|e| {
        waker.queued.fetch_sub(1, Ordering::Relaxed);
        match e {
            TrySendError::Full(m) => TokioTrySendError::Full(m),
            TrySendError::Disconnected(m) => TokioTrySendError::Closed(m),
        }
    })
}

enum Target {
    One(usize),
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steer(local: &str) -> Steer {
        let socket = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let local: SocketAddr = local.parse().unwrap();
        Steer {
            to: local,
            local,
            token: *b"8bytes!!",
            socket,
            gathered: AtomicBool::new(false),
            balanced: false,
        }
    }

    #[test]
    fn a_wake_up_is_believed_only_from_us_and_with_the_token() {
        let st = steer("127.0.0.1:5060");
        let us: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let w = st.wake(3);
        assert_eq!(w.get(2), Some(&3), "the steering byte names the target");
        assert!(st.is_wake(us, &w));
        // from anyone else, or with another token, or cut short, it is an ordinary
        // datagram
        assert!(!st.is_wake("192.0.2.1:5060".parse().unwrap(), &w));
        assert!(!st.is_wake("127.0.0.1:5061".parse().unwrap(), &w));
        let mut forged = w.clone();
        if let Some(b) = forged.get_mut(5) {
            *b ^= 1;
        }
        assert!(!st.is_wake(us, &forged));
        for n in 0..w.len() {
            assert!(!st.is_wake(us, w.get(..n).unwrap()), "{n}");
        }
        // an unspecified listening address: wake-ups come from loopback
        let any = steer("0.0.0.0:5060");
        let w = any.wake(0);
        assert!(any.is_wake("127.0.0.1:5060".parse().unwrap(), &w));
        assert!(!any.is_wake("192.0.2.1:5060".parse().unwrap(), &w));
    }
}
