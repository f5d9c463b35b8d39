//! A small bounded pool of connections: at most `max` open at once, a checkout waits for
//! a free one up to a timeout, then fails with an error that names the limit.
//!
//! Written here rather than taken from r2d2: what the store needs is a mutex, a condition
//! variable and a counter, while r2d2 brings a scheduler thread per pool and three crates
//! of its own. Generic over the connection so that its logic is tested without a server.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::StoreError;

/// How a pool makes and checks its connections.
pub(crate) trait Manage: Send + Sync {
    /// The connection.
    type Conn: Send;
    /// Opens a new connection.
    fn connect(&self) -> Result<Self::Conn, StoreError>;
    /// Whether an idle connection can be handed out again (`idle`: for how long it was).
    fn usable(&self, conn: &mut Self::Conn, idle: Duration) -> bool;
    /// Whether a connection just used can go back to the pool.
    fn reusable(&self, conn: &Self::Conn) -> bool;
}

/// What a pool holds at a moment (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// The bound (`[store] max_connections`).
    pub max: usize,
    /// Connections open: checked out or idle.
    pub open: usize,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Checkouts waiting for a connection.
    pub waiting: usize,
}

struct State<C> {
    /// Idle connections with the moment each was returned; the most recent last.
    idle: Vec<(C, Instant)>,
    /// Connections open (idle, checked out, or being connected).
    open: usize,
    waiting: usize,
}

pub(crate) struct Pool<M: Manage> {
    manager: M,
    max: usize,
    timeout: Duration,
    state: Mutex<State<M::Conn>>,
    freed: Condvar,
}

/// Gives a checked-out connection's place back if the code using it unwinds.
struct Slot<'p, M: Manage> {
    pool: &'p Pool<M>,
    armed: bool,
}

impl<M: Manage> Drop for Slot<'_, M> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.release_slot();
        }
    }
}

impl<M: Manage> Pool<M> {
    /// A pool of at most `max` connections (at least one); a checkout waits `timeout`.
    pub(crate) fn new(manager: M, max: usize, timeout: Duration) -> Self {
        Pool {
            manager,
            max: max.max(1),
            timeout,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// A poisoned lock means a thread panicked while holding it; the state it guards
    /// (a list and two counters) is updated in single steps, so it is still consistent.
    fn lock(&self) -> MutexGuard<'_, State<M::Conn>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The manager (for a connection outside the pool).
    pub(crate) fn manager(&self) -> &M {
        &self.manager
    }

    pub(crate) fn status(&self) -> PoolStatus {
        let s = self.lock();
        PoolStatus {
            max: self.max,
            open: s.open,
            idle: s.idle.len(),
            waiting: s.waiting,
        }
    }

    /// Runs `f` on a connection: an idle one, a new one while fewer than `max` are open,
    /// or one returned within the timeout (otherwise [`StoreError::PoolTimeout`]). The
    /// connection goes back to the pool afterwards, unless the manager finds it broken.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut M::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.checkout()?;
        let mut slot = Slot {
            pool: self,
            armed: true,
        };
        let out = f(&mut conn);
        slot.armed = false;
        if self.manager.reusable(&conn) {
            let mut s = self.lock();
            s.idle.push((conn, Instant::now()));
            drop(s);
            self.freed.notify_one();
        } else {
            drop(conn);
            self.release_slot();
        }
        out
    }

    fn checkout(&self) -> Result<M::Conn, StoreError> {
        // (a timeout too long to add to the clock: no deadline)
        let deadline = Instant::now().checked_add(self.timeout);
        let mut s = self.lock();
        loop {
            while let Some((mut conn, since)) = s.idle.pop() {
                // checked without the lock: a check may be a round trip to the server
                drop(s);
                if self.manager.usable(&mut conn, since.elapsed()) {
                    return Ok(conn);
                }
                drop(conn);
                s = self.lock();
                s.open = s.open.saturating_sub(1);
            }
            if s.open < self.max {
                s.open += 1;
                drop(s);
                return self.manager.connect().inspect_err(|_| self.release_slot());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(StoreError::PoolTimeout {
                    max: self.max,
                    waited_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
            s.waiting += 1;
            s = match deadline {
                Some(d) => {
                    self.freed
                        .wait_timeout(s, d.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.freed.wait(s).unwrap_or_else(|p| p.into_inner()),
            };
            s.waiting = s.waiting.saturating_sub(1);
        }
    }

    /// A connection closed (or never made): its place is free for a waiter.
    fn release_slot(&self) {
        let mut s = self.lock();
        s.open = s.open.saturating_sub(1);
        drop(s);
        self.freed.notify_one();
    }
}

impl<M: Manage> Drop for Pool<M> {
    /// Closes the idle connections on a thread of its own: the synchronous client closes
    /// a connection by running the runtime it keeps inside, which cannot start on a
    /// thread that drives an async runtime (and panics there). The last handle on a store
    /// may well be dropped on such a thread (the server's main thread, at shutdown or
    /// when its start fails); a new thread never drives one.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut idle = Some(std::mem::take(&mut state.idle));
        if idle.as_ref().is_none_or(Vec::is_empty) {
            return;
        }
        std::thread::scope(|s| {
            let closing = &mut idle;
            // (the thread is joined at the end of the scope)
            let _ = std::thread::Builder::new()
                .name("palisade-pg-close".into())
                .spawn_scoped(s, move || drop(closing.take()));
        });
        // No thread could be made: the sockets stay open until the process ends rather
        // than risk the panic.
        std::mem::forget(idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;

    #[derive(Default)]
    struct Fake {
        made: AtomicUsize,
        refuse: AtomicBool,
        stale: AtomicBool,
        broken: AtomicBool,
    }

    impl Manage for &'static Fake {
        type Conn = usize;
        fn connect(&self) -> Result<usize, StoreError> {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(StoreError::Config("refused".into()));
            }
            Ok(self.made.fetch_add(1, Ordering::SeqCst))
        }
        fn usable(&self, _: &mut usize, _: Duration) -> bool {
            !self.stale.load(Ordering::SeqCst)
        }
        fn reusable(&self, _: &usize) -> bool {
            !self.broken.load(Ordering::SeqCst)
        }
    }

    fn fake() -> &'static Fake {
        Box::leak(Box::default())
    }

    fn wait_for(pool: &Pool<&'static Fake>, f: impl Fn(PoolStatus) -> bool) {
        for _ in 0..2000 {
            if f(pool.status()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("pool never reached the state: {:?}", pool.status());
    }

    /// Holds a connection on a thread of `s` until the returned sender is dropped;
    /// the first receiver says which connection it got.
    fn hold<'s>(
        s: &'s std::thread::Scope<'s, '_>,
        pool: &'s Pool<&'static Fake>,
    ) -> (mpsc::Receiver<usize>, mpsc::Sender<()>) {
        let (got_tx, got) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        s.spawn(move || {
            pool.with(|c| {
                got_tx.send(*c).unwrap();
                let _ = release_rx.recv();
                Ok(())
            })
            .unwrap()
        });
        (got, release)
    }

    #[test]
    fn reuses_idle_connections_and_never_opens_more_than_max() {
        let m = fake();
        let pool = Pool::new(m, 2, Duration::from_secs(30));
        std::thread::scope(|s| {
            let (a, release_a) = hold(s, &pool);
            let (b, _release_b) = hold(s, &pool);
            let mut got = [a.recv().unwrap(), b.recv().unwrap()];
            got.sort_unstable();
            assert_eq!(got, [0, 1]);
            let third = s.spawn(|| pool.with(|c| Ok(*c)).unwrap());
            wait_for(&pool, |st| st.waiting == 1);
            assert_eq!(pool.status().open, 2);
            drop(release_a);
            third.join().unwrap();
        });
        assert_eq!(
            pool.status(),
            PoolStatus {
                max: 2,
                open: 2,
                idle: 2,
                waiting: 0
            }
        );
        assert_eq!(m.made.load(Ordering::SeqCst), 2, "the waiter reused one");
    }

    #[test]
    fn a_checkout_times_out_naming_the_limit() {
        let pool = Pool::new(fake(), 1, Duration::from_millis(50));
        std::thread::scope(|s| {
            let (a, _release) = hold(s, &pool);
            a.recv().unwrap();
            let e = pool.with(|_| Ok(())).unwrap_err();
            assert!(matches!(e, StoreError::PoolTimeout { max: 1, .. }), "{e}");
            assert!(e.to_string().contains("max_connections"), "{e}");
            assert_eq!(pool.status().waiting, 0);
        });
    }

    #[test]
    fn broken_stale_and_failed_connections_free_their_place() {
        let m = fake();
        let pool = Pool::new(m, 1, Duration::from_millis(50));
        pool.with(|_| Ok(())).unwrap();
        assert_eq!(pool.status().idle, 1);
        // the idle one is unusable: closed, and a new one made in its place
        m.stale.store(true, Ordering::SeqCst);
        assert_eq!(pool.with(|c| Ok(*c)).unwrap(), 1);
        m.stale.store(false, Ordering::SeqCst);
        // one that broke in use is not returned
        m.broken.store(true, Ordering::SeqCst);
        pool.with(|_| Ok(())).unwrap();
        assert_eq!(pool.status().open, 0);
        m.broken.store(false, Ordering::SeqCst);
        m.refuse.store(true, Ordering::SeqCst);
        assert!(matches!(pool.with(|_| Ok(())), Err(StoreError::Config(_))));
        assert_eq!(pool.status().open, 0, "a failed connect frees its place");
        m.refuse.store(false, Ordering::SeqCst);
        // an error of the work itself keeps the connection
        assert!(pool
            .with(|_| Err::<(), _>(StoreError::Config("x".into())))
            .is_err());
        assert_eq!((pool.status().open, pool.status().idle), (1, 1));
    }

    #[test]
    fn a_panic_while_checked_out_frees_the_place() {
        let pool = Pool::new(fake(), 1, Duration::from_millis(50));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.with(|_| -> Result<(), StoreError> { panic!("boom") })
        }));
        assert!(r.is_err());
        assert_eq!(pool.status().open, 0);
        assert!(pool.with(|_| Ok(())).is_ok());
    }
}
