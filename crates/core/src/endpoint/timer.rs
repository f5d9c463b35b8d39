//! Timers: what is armed (named after what it ends), the lazy heap that holds them, and
//! the sweep of per-client tables. Fires retransmissions and timeouts of RFC 3261 section
//! 17 (Timers A, B, E, F, G, H, I, J, K) and Timer C of section 16.6.

use super::*;

/// Timer C: RFC 3261 says more than three minutes.
pub(super) const TIMER_C: Duration = Duration::from_secs(181);

/// What a timer ends, named after RFC 3261's timers (section 17, table 4; section
/// 16.6 for C). Server transactions are keyed by [`TxnKey`], client transactions by
/// their branch. A timer whose transaction has ended finds nothing when it fires and is
/// dropped then, or by the sweep.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerWhat {
    /// Timer C (16.6 step 11): a ringing INVITE branch gives up (cancelled, then 408).
    C(ClientKey),
    /// Timer G (17.2.1): retransmit an INVITE server transaction's final response over
    /// UDP until the ACK (T1, doubling to T2).
    G(TxnKey),
    /// Timer H (17.2.1): stop waiting for that ACK (64*T1).
    H(TxnKey),
    /// Timer I (17.2.1, after the ACK, T4) or Timer J (17.2.2, non-INVITE completed,
    /// 64*T1 over UDP): the server transaction ends.
    IorJ(TxnKey),
    /// Timer A (17.1.1.2, INVITE) or E (17.1.2.2, non-INVITE): retransmit the request
    /// over UDP.
    AorE(ClientKey),
    /// Timer B (INVITE, until a provisional) or F (non-INVITE): the client transaction
    /// times out (64*T1).
    BorF(ClientKey),
    /// Timer D (17.1.1.2, 32 s over UDP) or K (17.1.2.2, T4): the completed client
    /// transaction ends.
    DorK(ClientKey),
    /// A binding of this address of record expires (section 10.3).
    BindingExpiry(String),
}

impl TimerWhat {
    /// The slot of this timer in its transaction's [`Slots`] (`None`: a binding's).
    fn slot(&self) -> Option<usize> {
        match self {
            TimerWhat::G(_) | TimerWhat::C(_) => Some(0),
            TimerWhat::H(_) | TimerWhat::AorE(_) => Some(1),
            TimerWhat::IorJ(_) | TimerWhat::BorF(_) => Some(2),
            TimerWhat::DorK(_) => Some(3),
            TimerWhat::BindingExpiry(_) => None,
        }
    }
}

/// A transaction's timer table (as quinn-proto keeps one per connection): one slot per
/// RFC timer that applies to it, holding the sequence number of the armed instance.
/// Arming a timer replaces its slot; a queued timer fires only while its slot still
/// holds it, so a timer is cancelled by clearing its slot, and all of a transaction's
/// timers are cancelled when the transaction ends. The queue below is only the index
/// of due times; entries cancelled this way are skipped when they come due and
/// compacted by the sweep.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Slots([Option<u64>; 4]);

#[derive(Debug)]
pub(super) struct Timer {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) what: TimerWhat,
}

/// The queue of due times. Nearly every timer is armed a fixed delay after the
/// current instant (T1, 64*T1, T4, Timer C, ...), so it goes to the lane of its delay:
/// a first-in first-out queue that is in due order by itself (the core's clock does not
/// go back; an entry that would break a lane's order goes to the heap instead). Timers
/// armed for a given instant (a binding's expiry), and delays beyond [`LANES`] distinct
/// ones, go to a binary heap. What comes due next is the earliest of the lanes' fronts
/// and the heap's top: arming and popping cost a few comparisons instead of a walk of
/// the heap (tens of thousands of entries at a few hundred calls per second).
///
/// Entries are small (when, arming order, slot) over a slab of what each timer ends;
/// the slab's slots are reused, so arming allocates nothing once warm. Times are kept
/// as nanoseconds since `base` (a year before the queue was made): one integer
/// comparison instead of an `Instant`'s two fields.
pub(super) struct TimerQueue {
    lanes: Vec<(Duration, VecDeque<Due>)>,
    heap: std::collections::BinaryHeap<Due>,
    slab: Vec<Option<TimerWhat>>,
    free: Vec<usize>,
    base: Instant,
    /// The last instant converted and its ticks: the timers armed for one message and
    /// the ones popped in one `handle_timeout` share their `now`.
    last: Option<(Instant, u64)>,
    /// The earliest entry and where it is, kept as entries come and go: the shell asks
    /// when the next timer is due after every pass, and a walk of every lane's front
    /// for it cost more than arming.
    first: Option<(Head, Due)>,
}

/// Distinct delays that get a lane of their own.
const LANES: usize = 8;

/// Where the earliest entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Lane(usize),
    Heap,
}

/// A queued timer: due `at` (nanoseconds since the queue's base), armed `seq`-th, what
/// it ends in slot `slot` of the slab. Ordered earliest first (the heap's top), then
/// first armed (`seq` is unique, so `slot` never decides).
#[derive(Debug, Clone, Copy)]
struct Due {
    at: u64,
    seq: u64,
    slot: usize,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // reversed: `BinaryHeap` is a max-heap
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

/// How far before its creation the queue counts time from: a timer armed for an
/// instant before that (a binding restored long expired) is due at once all the same.
const BASE_BEFORE: Duration = Duration::from_secs(365 * 24 * 3600);

impl TimerQueue {
    pub(super) fn with_capacity(n: usize, now: Instant) -> Self {
        TimerQueue {
            lanes: Vec::with_capacity(LANES),
            heap: std::collections::BinaryHeap::with_capacity(n),
            slab: Vec::with_capacity(n),
            free: Vec::new(),
            base: now.checked_sub(BASE_BEFORE).unwrap_or(now),
            last: None,
            first: None,
        }
    }

    /// `at` as nanoseconds since the base (0 before it; the largest value 584 years
    /// after it).
    fn ticks(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// [`TimerQueue::ticks`] of the current instant (remembered).
    fn ticks_now(&mut self, now: Instant) -> u64 {
        match self.last {
            Some((at, t)) if at == now => t,
            _ => {
                let t = self.ticks(now);
                self.last = Some((now, t));
                t
            }
        }
    }

    /// Queues `t`; `after` is the current instant and how long after it `t` is due,
    /// when it was armed that way (then it goes to that delay's lane).
    pub(super) fn push(&mut self, t: Timer, after: Option<(Instant, Duration)>) {
        let free = self.free.pop();
        let slot = match free.and_then(|i| Some((i, self.slab.get_mut(i)?))) {
            Some((i, s)) => {
                *s = Some(t.what);
                i
            }
            None => {
                self.slab.push(Some(t.what));
                self.slab.len() - 1
            }
        };
        let at = match after {
            // (`now` at or after the base: the sum is exact)
            Some((now, delay)) => match self.ticks_now(now) {
                0 => self.ticks(t.at),
                n => n.saturating_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX)),
            },
            None => self.ticks(t.at),
        };
        let d = Due {
            at,
            seq: t.seq,
            slot,
        };
        if let Some((_, delay)) = after {
            let lane = match self.lanes.iter().position(|(l, _)| *l == delay) {
                Some(i) => Some(i),
                None if self.lanes.len() < LANES => {
                    self.lanes.push((delay, VecDeque::new()));
                    Some(self.lanes.len() - 1)
                }
                None => None,
            };
            // (`seq` only grows: a lane stays in order when `at` does not go back)
            let fits = |q: &VecDeque<Due>| q.back().is_none_or(|b| b.at <= d.at);
            if let Some((i, (_, q))) = lane
                .and_then(|i| Some((i, self.lanes.get_mut(i)?)))
                .filter(|(_, (_, q))| fits(q))
            {
                q.push_back(d);
                // (behind the lane's front unless the lane was empty: then it is that
                // front, and the earliest entry if it is earlier than the earliest)
                self.note_pushed(Head::Lane(i), d);
                return;
            }
        }
        self.heap.push(d);
        self.note_pushed(Head::Heap, d);
    }

    /// `d`, just queued at `at`, is the earliest entry if it is earlier than the one
    /// that was (`Due` orders the earliest as the greatest): it is then also the front
    /// of its lane or the heap's top.
    fn note_pushed(&mut self, at: Head, d: Due) {
        if self.first.is_none_or(|(_, b)| d > b) {
            self.first = Some((at, d));
        }
    }

    /// The earliest entry and where it is.
    fn head(&self) -> Option<(Head, Due)> {
        self.first
    }

    /// [`TimerQueue::head`] found by looking at the heap's top and every lane's front
    /// (after an entry left).
    fn scan(&self) -> Option<(Head, Due)> {
        let mut best = self.heap.peek().map(|d| (Head::Heap, *d));
        for (i, (_, q)) in self.lanes.iter().enumerate() {
            if let Some(d) = q.front() {
                // (`Due` orders the earliest as the greatest)
                if best.is_none_or(|(_, b)| *d > b) {
                    best = Some((Head::Lane(i), *d));
                }
            }
        }
        best
    }

    /// When the earliest queued timer is due.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.head()
            .map(|(_, d)| self.base + Duration::from_nanos(d.at))
    }

    /// Takes the earliest timer if it is due at `now`: its arming order and what it
    /// ends.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(u64, TimerWhat)> {
        let now = self.ticks_now(now);
        loop {
            let (head, Due { seq, slot, .. }) = self.head().filter(|(_, d)| d.at <= now)?;
            match head {
                Head::Heap => {
                    self.heap.pop();
                }
                Head::Lane(i) => {
                    if let Some((_, q)) = self.lanes.get_mut(i) {
                        q.pop_front();
                    }
                }
            }
            self.first = self.scan();
            let what = self.slab.get_mut(slot).and_then(Option::take);
            self.free.push(slot);
            if let Some(what) = what {
                return Some((seq, what));
            }
        }
    }

    /// Entries queued (live and cancelled alike).
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.lanes.iter().map(|(_, q)| q.len()).sum::<usize>()
    }

    /// Keeps the timers for which `keep(order, what)` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u64, &TimerWhat) -> bool) {
        let (slab, free) = (&mut self.slab, &mut self.free);
        let mut live = |d: &Due| {
            let live = slab
                .get(d.slot)
                .and_then(Option::as_ref)
                .is_some_and(|w| keep(d.seq, w));
            if !live {
                if let Some(s) = slab.get_mut(d.slot) {
                    *s = None;
                }
                free.push(d.slot);
            }
            live
        };
        // (a lane keeps its order)
        for (_, q) in &mut self.lanes {
            q.retain(&mut live);
        }
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(live);
        self.heap = entries.into();
        self.first = self.scan();
    }
}

/// How often the nonce counts, answer budgets and stale timers are swept.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl Endpoint {
    /// Sweeps the per-client tables: nonce counts of expired nonces, idle answer
    /// budgets, and timer entries whose transaction or binding is gone.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.auth.sweep(now);
        self.budget.sweep(now);
        self.algos.sweep(now);
        let live = self.tx.servers.len() + self.tx.clients.len() + self.dir.location.len();
        if self.tx.timers.len() > 2 * live + 4096 {
            let empty = TimerQueue::with_capacity(0, now);
            let mut timers = std::mem::replace(&mut self.tx.timers, empty);
            timers.retain(|seq, what| self.timer_is_live(seq, what));
            self.tx.timers = timers;
        }
    }

    /// Whether a queued timer is still armed: its transaction exists and its slot holds
    /// this instance (a binding's timer: the binding exists).
    pub(super) fn timer_is_live(&self, seq: u64, what: &TimerWhat) -> bool {
        let slots = match what {
            TimerWhat::G(k) | TimerWhat::H(k) | TimerWhat::IorJ(k) => {
                self.tx.servers.get(k).map(|x| x.slots)
            }
            TimerWhat::C(k) | TimerWhat::AorE(k) | TimerWhat::BorF(k) | TimerWhat::DorK(k) => {
                self.tx.clients.get(k).map(|c| c.slots)
            }
            TimerWhat::BindingExpiry(aor) => return self.dir.location.contains_key(aor),
        };
        let slot = what
            .slot()
            .and_then(|i| slots.and_then(|s| s.0.get(i).copied()));
        slot == Some(Some(seq))
    }

    /// Pops the next due timer that is still armed, clearing its slot.
    pub(super) fn next_due(&mut self, now: Instant) -> Option<TimerWhat> {
        while let Some((seq, what)) = self.tx.timers.pop_due(now) {
            let live = match what.slot() {
                // (one lookup: the slot is compared and cleared in place)
                Some(i) => self
                    .tx
                    .slots_mut(&what)
                    .and_then(|s| s.0.get_mut(i))
                    .filter(|slot| **slot == Some(seq))
                    .map(|slot| *slot = None)
                    .is_some(),
                None => self.timer_is_live(seq, &what),
            };
            if live {
                return Some(what);
            }
            // cancelled
        }
        None
    }

    pub(super) fn fire(&mut self, now: Instant, what: TimerWhat) {
        match what {
            TimerWhat::G(k) => {
                let t2 = self.cfg.t2;
                let Some(t) = self.tx.servers.get_mut(&k) else {
                    return;
                };
                if t.state != SState::Completed {
                    return;
                }
                t.retrans = (t.retrans * 2).min(t2);
                let next = t.retrans;
                if let Some(b) = t.last.clone() {
                    let to = t.source;
                    self.send(to, b);
                }
                self.tx.arm_after(now, next, TimerWhat::G(k));
            }
            TimerWhat::H(k) => {
                if self
                    .tx
                    .servers
                    .get(&k)
                    .is_some_and(|t| t.state == SState::Completed)
                {
                    debug!(key = k, "no ACK for final response (Timer H)");
                    self.tx.servers.remove(&k);
                }
            }
            TimerWhat::IorJ(k) => {
                self.tx.servers.remove(&k);
            }
            TimerWhat::AorE(k) => {
                let t2 = self.cfg.t2;
                let Some(c) = self.tx.clients.get_mut(&k) else {
                    return;
                };
                let active = matches!(
                    (c.invite, c.state),
                    (true, CState::Trying) | (false, CState::Trying | CState::Proceeding)
                );
                if !active || c.done {
                    return;
                }
                c.interval = if c.invite {
                    c.interval * 2
                } else {
                    (c.interval * 2).min(t2)
                };
                let next = c.interval;
                let (d, b) = (c.dest, c.request.clone());
                self.send(d, b);
                self.tx.arm_after(now, next, TimerWhat::AorE(k));
            }
            TimerWhat::BorF(k) => {
                let Some(c) = self.tx.clients.get_mut(&k) else {
                    return;
                };
                if c.done || (c.invite && c.state == CState::Proceeding && !c.expired) {
                    // Timer B only runs until a provisional; a ringing INVITE waits for
                    // the callee or a CANCEL.
                    return;
                }
                c.done = true;
                let server = c.server;
                self.tx.clients.remove(&k);
                match server {
                    Some(s) => self.maybe_finish(now, s),
                    None => self.originated_done(&k.branch, false),
                }
            }
            TimerWhat::DorK(k) => {
                self.tx.clients.remove(&k);
            }
            TimerWhat::C(k) => {
                let Some(c) = self.tx.clients.get_mut(&k) else {
                    return;
                };
                match c.timer_c {
                    _ if c.done => {}
                    Some(at) if at > now => self.tx.arm(at, TimerWhat::C(k)),
                    _ => {
                        c.expired = true;
                        debug!(
                            branch = %k.branch,
                            "Timer C: cancelling a branch that rang too long"
                        );
                        self.cancel_branch(now, &k);
                        self.tx.arm_after(now, self.cfg.t1 * 64, TimerWhat::BorF(k));
                    }
                }
            }
            TimerWhat::BindingExpiry(aor) => self.expire_bindings(now, &aor),
        }
    }
}

impl Transactions {
    /// The slots of the transaction a timer belongs to.
    fn slots_mut(&mut self, w: &TimerWhat) -> Option<&mut Slots> {
        match w {
            TimerWhat::G(k) | TimerWhat::H(k) | TimerWhat::IorJ(k) => {
                self.servers.get_mut(k).map(|t| &mut t.slots)
            }
            TimerWhat::C(k) | TimerWhat::AorE(k) | TimerWhat::BorF(k) | TimerWhat::DorK(k) => {
                self.clients.get_mut(k).map(|c| &mut c.slots)
            }
            TimerWhat::BindingExpiry(_) => None,
        }
    }

    /// Arms a timer, replacing the armed instance of the same timer of its transaction.
    pub(super) fn arm(&mut self, at: Instant, what: TimerWhat) {
        self.arm_timer(at, None, what);
    }

    /// [`Transactions::arm`] for `delay` after `now`.
    pub(super) fn arm_after(&mut self, now: Instant, delay: Duration, what: TimerWhat) {
        self.arm_timer(now + delay, Some((now, delay)), what);
    }

    fn arm_timer(&mut self, at: Instant, after: Option<(Instant, Duration)>, what: TimerWhat) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(i) = what.slot() {
            if let Some(slot) = self.slots_mut(&what).and_then(|s| s.0.get_mut(i)) {
                *slot = Some(seq);
            }
        }
        self.timers.push(Timer { at, seq, what }, after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The earliest entry kept as timers are armed, taken and swept is the one a look at
    /// every lane's front and the heap's top finds, and timers come out in due order.
    #[test]
    fn the_earliest_entry_kept_is_the_one_found_by_looking() {
        let start = Instant::now();
        let mut q = TimerQueue::with_capacity(16, start);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        // (ten delays: two more than the lanes, so that some go to the heap)
        let delays: Vec<Duration> = (1..=10).map(|k| Duration::from_millis(k * 37)).collect();
        let (mut seq, mut now, mut popped, mut last) = (0u64, start, 0, 0);
        for _ in 0..5_000 {
            match rand(10) {
                0..=5 => {
                    seq += 1;
                    let what = TimerWhat::BindingExpiry(seq.to_string());
                    if rand(4) == 0 {
                        // armed for an instant (a binding's expiry): the heap
                        let at = now + Duration::from_millis(rand(500));
                        q.push(Timer { at, seq, what }, None);
                    } else {
                        let delay = delays[rand(10) as usize];
                        q.push(
                            Timer {
                                at: now + delay,
                                seq,
                                what,
                            },
                            Some((now, delay)),
                        );
                    }
                }
                6..=8 => {
                    now += Duration::from_millis(rand(60));
                    loop {
                        let earliest = q.head();
                        let Some((s, _)) = q.pop_due(now) else {
                            break;
                        };
                        // (no entry is cancelled here: the sweep takes them out)
                        let (_, d) = earliest.expect("a timer was taken from a queue");
                        assert_eq!(d.seq, s, "the earliest entry was taken");
                        assert!(d.at >= last, "in due order");
                        last = d.at;
                        popped += 1;
                    }
                    // every timer due was taken
                    let ticks = q.ticks(now);
                    assert!(q.head().is_none_or(|(_, d)| d.at > ticks));
                }
                _ => q.retain(|s, _| s % 3 != 0),
            }
            assert_eq!(q.head(), q.scan(), "after {seq} armed, {popped} taken");
        }
        assert!(popped > 500 && seq > 2_000, "{popped} taken of {seq}");
    }
}
