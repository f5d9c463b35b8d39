//! One worker thread: it runs one shard of the core (a [`Shell`] and its queue, see
//! [`Shard`]) and, when the server has a UDP listener, owns its own socket on the first
//! UDP address (`SO_REUSEPORT`: the kernel spreads senders over the workers' sockets).
//!
//! A pass of the loop takes the worker's queue (messages handed over by other threads),
//! fires due timers, sends what the core produced (one `sendmmsg` for the socket), and
//! then blocks in one `recvmmsg` that returns every datagram queued (up to
//! [`sys::BATCH`]). So a worker makes at most one receive call per datagram when the
//! queue is shallow and fewer when it is deep, and no readiness call (`epoll_wait`) or
//! empty read at all. The receive times out every [`WAKE_TICK`] (timers); other threads
//! interrupt it with a signal when they hand the worker something (see [`Waker`]).
//!
//! A datagram that another shard owns (by its Call-ID) is run on that shard by the
//! worker that received it when the owner sleeps in its receive and either this worker
//! received that datagram alone (it has nothing else to do: waking the owner would cost
//! a datagram sent and received, and a context switch, for a few microseconds of work)
//! or the owner has slept for a while ([`STEAL_IDLE`]: it is idle, not between two
//! datagrams of a busy stream, where waking it keeps both cores working). The shards are behind
//! one mutex each, held by their own worker while it is awake and taken by another
//! worker only with `try_lock` (never waited for), after the owner's queue so that order
//! holds. What it sends leaves in the receiving worker's batch. Otherwise (the owner is
//! awake, or just waking) the datagram goes on the owner's queue, which the owner reads
//! at its next pass. So a datagram crossing workers costs no wake-up (a datagram sent
//! and received) when the owner is idle, and no lock wait ever.

use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::balance::Balance;
use super::router::{Waker, WAKE_TICK};
use super::shell::Shell;
use super::sys;
use super::telemetry::PUBLISH_EVERY;
use crate::messages::Inbound;

/// Most queued messages taken in one pass (the socket is read between passes).
const QUEUE_PASS: usize = 1024;

/// How long a worker must have slept before another runs its shard for it. A worker
/// that sleeps only between the datagrams of a busy stream is woken instead, so that the
/// two cores work side by side; one that is idle is not woken at all.
const STEAL_IDLE: Duration = Duration::from_micros(100);

/// One shard: its core with everything around it, and its queue.
pub(super) struct Shard {
    pub(super) shell: Shell,
    pub(super) rx: Receiver<Inbound>,
}

/// Every shard, in shard order, each behind its mutex.
pub(super) type Shards = Arc<Vec<Mutex<Shard>>>;

pub(super) struct Worker {
    /// The shard this worker runs (its index in `shards`).
    pub(super) index: usize,
    pub(super) shards: Shards,
    pub(super) waker: Arc<Waker>,
    /// This worker's socket on the first UDP listening address.
    pub(super) socket: Option<Arc<std::net::UdpSocket>>,
    pub(super) stop: Arc<AtomicBool>,
}

/// A shard's lock. A panic while it was held (the core's own are contained and never
/// reach here) leaves the shard as it was; it goes on.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shells, once every worker has ended (for the final flush).
pub(super) fn into_shells(shards: Shards) -> Vec<Shell> {
    match Arc::try_unwrap(shards) {
        Ok(v) => v
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner).shell)
            .collect(),
        // (a worker still holds them: it did not end; nothing to flush from here)
        Err(_) => Vec::new(),
    }
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

/// Shards whose answers wait in this worker's batch: one bit per shard (modulo 64), set
/// when it ran a datagram for their sleeping owner, cleared when the batch is sent.
#[derive(Default)]
struct Ran(u64);

impl Ran {
    fn bit(shard: usize) -> u64 {
        1u64 << (shard % 64)
    }
}

/// A datagram this worker's socket received: handled here, on its sleeping owner's
/// shard (by this thread), or handed over to its owner's queue.
///
/// Once this worker ran a datagram on another shard, that shard's answers wait in this
/// worker's batch. If its owner wakes before the batch is sent, a later datagram of the
/// same batch for it goes to the owner's queue, and the owner could send its answer
/// first: a 200 relayed before the 180 that came in ahead of it (the SIPp harness counted
/// 1 to 3 such unexpected 180s per 20,000 calls with two workers). So the batch is sent
/// before such a hand-over.
fn dispatch(
    shards: &[Mutex<Shard>],
    shell: &mut Shell,
    now: Instant,
    from: std::net::SocketAddr,
    bytes: &[u8],
    alone: bool,
    ran: &mut Ran,
) {
    if shell.is_wake(from, bytes) {
        return;
    }
    // Gathered, every datagram comes here while the load is light and their owners are
    // idle: this worker runs them all, so it parses each one once, here, and the parse
    // gives the Call-ID (a scan of the raw head for it cost about 700 instructions per
    // datagram). Spread, a datagram for another shard is mostly handed over to its busy
    // owner, which parses it itself: the raw scan is cheaper than a parse thrown away.
    let gathered = shell.router.steer().is_some_and(|s| s.gathered());
    let (owner, parsed) = if shell.keeps_datagram(bytes) {
        (shell.index, None)
    } else {
        match gathered.then(|| shell.parse(bytes)).flatten() {
            Some(p) => (shell.owner_of_parsed(&p), Some(p)),
            // spread, or a parse that panicked (its shard parses it again and records
            // the panic)
            None => (shell.router.shards().of_message(bytes), None),
        }
    };
    if owner == shell.index {
        shell.take_here(now, from, bytes, 0, parsed);
        return;
    }
    let idle = if alone || gathered {
        Duration::ZERO
    } else {
        STEAL_IDLE
    };
    if let Some(waker) = shell
        .router
        .waker(owner)
        .filter(|w| w.idle_for(now, idle))
        .cloned()
    {
        let guard = match shards.get(owner).map(Mutex::try_lock) {
            Some(Ok(g)) => Some(g),
            Some(Err(TryLockError::Poisoned(p))) => Some(p.into_inner()),
            Some(Err(TryLockError::WouldBlock)) | None => None,
        };
        if let Some(mut g) = guard {
            let Shard { shell: other, rx } = &mut *g;
            // what was queued for it first (a message handed over earlier goes first;
            // counted before it is sent, so an empty count needs no look at the channel)
            if waker.queued() > 0 {
                let _ = take_queue(rx, &waker, other);
            }
            other.take_here(now, from, bytes, 0, parsed);
            other.gather();
            other.give_pending(shell);
            ran.0 |= Ran::bit(owner);
            return;
        }
    }
    if ran.0 & Ran::bit(owner) != 0 {
        shell.flush();
        ran.0 = 0;
    }
    shell.hand_over_datagram(owner, from, bytes, 0);
}

/// Publishes how many workers' sockets receive from the network (`gathered`: worker 0's
/// alone); returns it.
fn receiving(shell: &Shell, gathered: bool, workers: usize) -> usize {
    let n = if gathered { 1 } else { workers };
    shell
        .telemetry
        .udp_receiving
        .store(n as u64, Ordering::Relaxed);
    n
}

/// Worker 0, once a window: gathers or spreads the group's datagrams as the load asks.
/// `false` when the kernel refused the program: the group stays as it was, and is no
/// longer balanced.
fn rebalance(
    b: &mut Balance,
    now: Instant,
    shell: &Shell,
    shards: &[Mutex<Shard>],
    fd: std::os::fd::RawFd,
) -> bool {
    let asleep: Vec<u64> = (0..shards.len())
        .filter_map(|i| shell.router.waker(i).map(|w| w.asleep_us()))
        .collect();
    let cpu = || {
        (0..shards.len())
            .map(|i| shell.router.waker(i).and_then(|w| w.cpu_us()).unwrap_or(0))
            .collect()
    };
    let Some(gathered) = b.check(now, &asleep, cpu) else {
        return true;
    };
    let Some(steer) = shell.router.steer() else {
        return false;
    };
    if let Err(e) = sys::attach_steering(fd, gathered) {
        warn!(error = %e, gathered, "the kernel refused the workers' steering program; datagrams stay as they were");
        return false;
    }
    steer.gathered.store(gathered, Ordering::Relaxed);
    info!(
        workers = receiving(shell, gathered, shards.len()),
        "UDP datagrams {}",
        if gathered {
            "gathered on worker 0 (light load)"
        } else {
            "spread over the workers (load)"
        }
    );
    true
}

/// Runs the worker until `stop`; its shell stays in `shards` for the final flush.
pub(super) fn run(w: Worker) {
    let Worker {
        index,
        shards,
        waker,
        socket,
        stop,
    } = w;
    let Some(me) = shards.get(index) else {
        return;
    };
    waker.register();
    let mut batch = socket.as_ref().map(|_| sys::RecvBatch::new());
    // Worker 0 gathers or spreads the datagrams of the group (see `balance`).
    let mut balance = match (index, &socket) {
        (0, Some(_)) => {
            let g = lock(me);
            g.shell.router.steer().filter(|st| st.balanced).map(|st| {
                receiving(&g.shell, st.gathered(), shards.len());
                Balance::new(Instant::now(), shards.len())
            })
        }
        _ => None,
    };
    let mut recv_errors: u64 = 0;
    let mut next_chores = Instant::now();
    let mut carried: Option<Instant> = None;
    'run: while !stop.load(Ordering::Relaxed) {
        let mut g = lock(me);
        let Shard { shell, rx } = &mut *g;
        // 1. what other threads handed over (counted by each sender before it sends: an
        // empty count needs no look at the channel; a closed one is found before the
        // receive below)
        if waker.queued() > 0 && take_queue(rx, &waker, shell) {
            break 'run;
        }
        // 2. timers, 3. sends (at the time read when the receive returned: one clock read
        // per pass, not two)
        let now = carried.take().unwrap_or_else(Instant::now);
        if shell.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            shell.timeout(now);
        }
        shell.flush();
        shell.send_observed(now, false);
        if now >= next_chores {
            // The counters copied out for the admin listener and the once-a-minute log
            // lines, looked at four times a second, not on every pass (their clock reads
            // and comparisons cost about as much as the rest of an idle pass).
            next_chores = now + PUBLISH_EVERY;
            shell.shield_summary(false);
            shell.suppressed_events(false);
            shell.traffic_summary(false);
            shell.publish(now, waker.queued());
        }
        if let (Some(b), Some(sock)) = (balance.as_mut(), &socket) {
            if b.due(now) && !rebalance(b, now, shell, &shards, sock.as_raw_fd()) {
                balance = None;
            }
        }
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
                // (asleep, the shard is open to the other workers)
                drop(g);
                let r = batch.recv(sock.as_raw_fd());
                waker.woke();
                let mut g = lock(me);
                // (read once the shard is ours again: a worker that ran it meanwhile
                // gave it later times than any read before the lock)
                let now = Instant::now();
                waker.slept_until(now);
                let Shard { shell, rx } = &mut *g;
                match r {
                    Ok(n) => {
                        // What was queued before these datagrams arrived is applied
                        // first (a binding another shard saved before it answered the
                        // REGISTER must be here before a call to that phone).
                        let _ = take_queue(rx, &waker, shell);
                        let mut ran = Ran::default();
                        for (from, bytes) in batch.datagrams() {
                            dispatch(&shards, shell, now, from, bytes, n == 1, &mut ran);
                        }
                        carried = Some(now);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) =>
                    {
                        carried = Some(now);
                    }
                    Err(e) => {
                        recv_errors += 1;
                        if recv_errors.is_power_of_two() {
                            warn!(error = %e, errors = recv_errors, "UDP receive failed");
                        }
                        drop(g);
                        // an error that repeats must not spin the worker
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            _ => {
                // (without a socket of its own, no worker runs this shard but this one)
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
    let mut g = lock(me);
    let Shard { shell, rx } = &mut *g;
    while let Ok(m) = rx.try_recv() {
        shell.on_inbound(m);
    }
    shell.flush();
}
