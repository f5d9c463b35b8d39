//! The relay thread: every relay socket in one epoll set, read with `recvmmsg`; each
//! datagram checked by the sending party's stream and the call's gate, and what passes
//! sent unchanged from the other party's relay socket. No lock and no allocation per
//! packet. The anchors' commands arrive on a queue with a wake-up (an eventfd in the
//! epoll set): the relay takes them after every wait, before the packets that woke it,
//! so that the first packets after an answer are not held as if it had not come.
//! A stream cut for malformed packets becomes an evidence entry (its first offending
//! packet in the blob store) and an observation for the detection thread.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_detect::{MediaCut, Observation};
use palisade_media::{
    CallMedia, Component, Direction, EarlyMedia, EndReason, Expected, PortPair, Reason, Stream,
    StreamConfig, StreamEvent,
};
use tracing::{debug, info, warn};

use super::types::{Leg, MediaCmd, MediaStats, Shared};
use crate::clock::now_ms;
use crate::messages::DetectMsg;
use crate::serve::evidence::EvidenceTx;
use crate::serve::sys::{Epoll, RecvBatch, BATCH};

/// How long the relay waits for packets when its wake-up could not be watched (it
/// looks at its queue after every wait).
const PASS: i32 = 20;
/// How often the calls' media timeouts are looked at.
const TICK: Duration = Duration::from_millis(500);
/// The epoll token of the relay's wake-up (no socket's: slots stay far below).
const WAKE: u64 = u64::MAX;

/// One party's relay sockets on one media line.
struct Side {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    stream: Stream,
}

impl Side {
    fn socket(&self, c: Component) -> &UdpSocket {
        match (c, &self.rtcp) {
            (Component::Rtcp, Some(s)) => s,
            _ => &self.rtp,
        }
    }

    /// Where this party gets a packet of component `c`: the peer it latched to, else
    /// what it signalled.
    fn dest(&self, c: Component, mux: bool) -> Option<SocketAddr> {
        let c = if mux { Component::Rtp } else { c };
        self.stream.peer(c).or_else(|| {
            let e = self.stream.config().expected;
            match c {
                Component::Rtp => e.rtp,
                Component::Rtcp => e.rtcp.or_else(|| {
                    e.rtp
                        .and_then(|a| Some(SocketAddr::new(a.ip(), a.port().checked_add(1)?)))
                }),
            }
        })
    }
}

struct LegState {
    line: usize,
    mux: bool,
    pairs: Option<(PortPair, PortPair)>,
    /// Faces the caller (index 0) and the callee (index 1).
    sides: [Side; 2],
}

struct Call {
    id: String,
    /// The caller's authenticated account, if any.
    account: Option<String>,
    gate: CallMedia,
    legs: Vec<LegState>,
}

pub(super) struct Relay {
    shared: Arc<Shared>,
    rx: Receiver<MediaCmd>,
    early: EarlyMedia,
    timeout: Duration,
    stats: Arc<MediaStats>,
    evidence: Option<EvidenceTx>,
    detect: Option<SyncSender<DetectMsg>>,
    epoll: Epoll,
    calls: Vec<Option<Call>>,
    free: Vec<usize>,
    by_id: HashMap<String, usize>,
}

/// What the relay's loop keeps from one pass to the next.
struct Pass {
    ready: Vec<u64>,
    batch: RecvBatch,
    next_tick: Instant,
    /// The wake-up is watched (else the queue is looked at every [`PASS`] ms).
    woken: bool,
}

/// The epoll token of a socket: call slot, leg, side, component.
fn token(slot: usize, leg: usize, side: usize, c: Component) -> u64 {
    ((slot as u64) << 20)
        | ((leg as u64 & 0xffff) << 4)
        | ((side as u64 & 1) << 1)
        | u64::from(c == Component::Rtcp)
}

fn untoken(t: u64) -> (usize, usize, usize, Component) {
    let c = if t & 1 == 1 {
        Component::Rtcp
    } else {
        Component::Rtp
    };
    (
        (t >> 20) as usize,
        ((t >> 4) & 0xffff) as usize,
        ((t >> 1) & 1) as usize,
        c,
    )
}

impl Relay {
    pub(super) fn new(
        shared: Arc<Shared>,
        rx: Receiver<MediaCmd>,
        early: EarlyMedia,
        timeout: Duration,
        stats: Arc<MediaStats>,
        evidence: Option<EvidenceTx>,
        detect: Option<SyncSender<DetectMsg>>,
    ) -> anyhow::Result<Self> {
        Ok(Relay {
            shared,
            rx,
            early,
            timeout,
            stats,
            evidence,
            detect,
            epoll: Epoll::new()?,
            calls: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
        })
    }

    pub(super) fn run(mut self) {
        let mut p = self.prepare();
        while self.pass(&mut p) {}
        info!("media relay stopped");
    }

    /// Watches the wake-up; the state the passes keep.
    fn prepare(&mut self) -> Pass {
        let woken = match self.epoll.add(self.shared.relay.wake.as_raw_fd(), WAKE) {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "media relay: its wake-up could not be watched; it looks at its queue every {PASS} ms");
                false
            }
        };
        Pass {
            ready: Vec::new(),
            batch: RecvBatch::new(),
            next_tick: Instant::now(),
            woken,
        }
    }

    /// One wait and what it brought: the queued commands first, then the packets, then
    /// the timers when due; `false` once the relay is to stop.
    fn pass(&mut self, p: &mut Pass) -> bool {
        let wait = if p.woken {
            let left = p.next_tick.saturating_duration_since(Instant::now());
            i32::try_from(left.as_millis()).unwrap_or(PASS)
        } else {
            PASS
        };
        if let Err(e) = self.epoll.wait(&mut p.ready, wait) {
            warn!(error = %e, "media relay: epoll_wait failed");
            std::thread::sleep(Duration::from_millis(PASS as u64));
        }
        // The commands before the packets: an anchor queues "answered" (then wakes this
        // thread) before the 200 OK leaves, so the caller's first packets, ready in
        // this same wait, find the call answered. The wake-up is taken before the queue
        // is read: one that comes after is seen by the next wait. (The queue is read
        // after every wait, reported wake-up or not: a wait reports at most 256 fds.)
        if p.ready.contains(&WAKE) {
            self.shared.relay.wake.take();
        }
        if !self.commands() {
            return false;
        }
        let now = Instant::now();
        for t in p.ready.iter().copied().filter(|t| *t != WAKE) {
            self.readable(t, now, &mut p.batch);
        }
        if now >= p.next_tick {
            p.next_tick = now + TICK;
            self.tick(now);
        }
        true
    }

    /// Applies the queued commands; `false` once the relay is to stop.
    fn commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(MediaCmd::Stop) | Err(TryRecvError::Disconnected) => return false,
                Ok(cmd) => self.command(cmd),
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn command(&mut self, cmd: MediaCmd) {
        let now = Instant::now();
        match cmd {
            MediaCmd::Offer {
                call,
                account,
                legs,
            } => self.open(call, account, legs, now),
            MediaCmd::Expect {
                call,
                caller_side,
                lines,
            } => {
                let Some(c) = self.by_id.get(&call).and_then(|s| self.calls.get_mut(*s)) else {
                    return;
                };
                let Some(c) = c.as_mut() else { return };
                let side = usize::from(!caller_side);
                for (line, cfg) in lines {
                    if let Some(l) = c.legs.iter_mut().find(|l| l.line == line) {
                        if let Some(s) = l.sides.get_mut(side) {
                            s.stream.set_expected(cfg.expected);
                            s.stream.set_payload_types(cfg.rtp.payload_types);
                        }
                    }
                }
            }
            MediaCmd::Answered { call } => {
                if let Some(Some(c)) = self.by_id.get(&call).and_then(|s| self.calls.get_mut(*s)) {
                    c.gate.answer(now);
                }
            }
            MediaCmd::End { call } => self.close(&call, EndReason::Bye),
            MediaCmd::Stop => {}
        }
    }

    fn open(&mut self, id: String, account: Option<String>, legs: Vec<Leg>, now: Instant) {
        if self.by_id.contains_key(&id) {
            return;
        }
        let slot = self.free.pop().unwrap_or(self.calls.len());
        let mut states = Vec::new();
        for (k, leg) in legs.into_iter().enumerate() {
            // the callee's side: rules from the offer, its address from the answer
            let callee_cfg = StreamConfig {
                expected: Expected::default(),
                ..leg.caller
            };
            let state = LegState {
                line: leg.line,
                mux: leg.mux,
                pairs: Some((leg.caller_pair, leg.callee_pair)),
                sides: [
                    Side {
                        rtp: leg.caller_sockets.0,
                        rtcp: leg.caller_sockets.1,
                        stream: Stream::new(leg.caller, now),
                    },
                    Side {
                        rtp: leg.callee_sockets.0,
                        rtcp: leg.callee_sockets.1,
                        stream: Stream::new(callee_cfg, now),
                    },
                ],
            };
            for (side, s) in state.sides.iter().enumerate() {
                let mut socks = vec![(Component::Rtp, &s.rtp)];
                if let Some(r) = &s.rtcp {
                    socks.push((Component::Rtcp, r));
                }
                for (c, sock) in socks {
                    if let Err(e) = self.epoll.add(sock.as_raw_fd(), token(slot, k, side, c)) {
                        warn!(error = %e, call = %id, "media relay: a socket could not be watched");
                    }
                }
            }
            states.push(state);
        }
        let call = Call {
            id: id.clone(),
            account,
            gate: CallMedia::new(self.early, self.timeout),
            legs: states,
        };
        if slot == self.calls.len() {
            self.calls.push(Some(call));
        } else if let Some(s) = self.calls.get_mut(slot) {
            *s = Some(call);
        }
        self.by_id.insert(id, slot);
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&mut self, id: &str, reason: EndReason) {
        let Some(slot) = self.by_id.remove(id) else {
            return;
        };
        let Some(mut call) = self.calls.get_mut(slot).and_then(Option::take) else {
            return;
        };
        call.gate.end(reason);
        let mut pairs = Vec::new();
        for l in call.legs.iter_mut() {
            for s in &l.sides {
                self.epoll.remove(s.rtp.as_raw_fd());
                if let Some(r) = &s.rtcp {
                    self.epoll.remove(r.as_raw_fd());
                }
            }
            if let Some((a, b)) = l.pairs.take() {
                pairs.push(a);
                pairs.push(b);
            }
        }
        debug!(call = %call.id, ?reason, forwarded = call.gate.forwarded(Direction::CallerToCallee) + call.gate.forwarded(Direction::CalleeToCaller), "media relay: call closed");
        drop(call); // the sockets close here, before their ports go back
        if let Ok(mut pool) = self.shared.pool.lock() {
            for p in pairs {
                let _ = pool.release(p);
            }
        }
        self.free.push(slot);
        self.stats.calls.fetch_sub(1, Ordering::Relaxed);
    }

    fn readable(&mut self, t: u64, now: Instant, batch: &mut RecvBatch) {
        let (slot, leg, side, comp) = untoken(t);
        let Some(Some(call)) = self.calls.get_mut(slot) else {
            return;
        };
        let Some(l) = call.legs.get_mut(leg) else {
            return;
        };
        let fd = match l.sides.get(side) {
            Some(s) => s.socket(comp).as_raw_fd(),
            None => return,
        };
        let dir = if side == 0 {
            Direction::CallerToCallee
        } else {
            Direction::CalleeToCaller
        };
        // a bounded number of batches per readiness: one busy stream cannot starve
        // the others
        for _ in 0..4 {
            match batch.recv(fd) {
                Ok(_) => {}
                Err(_) => break,
            }
            for (from, bytes) in batch.datagrams() {
                let [a, b] = &mut l.sides;
                let (me, other) = if side == 0 { (a, b) } else { (b, a) };
                match me.stream.receive(now, comp, from, bytes) {
                    Ok(_) => {
                        if !call.gate.forward(now, dir) {
                            self.stats.held.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        match other.dest(comp, l.mux) {
                            Some(to) => {
                                if other.socket(comp).send_to(bytes, to).is_ok() {
                                    self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            None => {
                                self.stats.held.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(r) => {
                        let i = palisade_media::Reason::ALL
                            .iter()
                            .position(|x| *x == r.reason());
                        if let Some(c) = i.and_then(|i| self.stats.refused.get(i)) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            let [a, b] = &mut l.sides;
            let me = if side == 0 { a } else { b };
            while let Some(ev) = me.stream.poll_event() {
                match ev {
                    StreamEvent::Latched { component, peer } => {
                        debug!(call = %call.id, side, ?component, %peer, "media relay: latched");
                    }
                    StreamEvent::Cut => {
                        let account = if side == 0 {
                            call.account.as_deref()
                        } else {
                            None
                        };
                        let out = (&*self.stats, self.evidence.as_ref(), self.detect.as_ref());
                        report_cut(out, &call.id, account, side, &me.stream);
                    }
                }
            }
            if batch.datagrams().count() < BATCH {
                break;
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        let mut dead = Vec::new();
        for c in self.calls.iter_mut().flatten() {
            if c.gate.handle_timeout(now).is_some() {
                dead.push(c.id.clone());
            }
        }
        for id in dead {
            info!(call = %id, "media relay: no media for media.timeout_s; the call's ports are released");
            self.close(&id, EndReason::MediaTimeout);
        }
    }
}

/// A stream was cut: the metric, a security log line, a `media-cut` evidence entry (the
/// first offending packet, its first 256 bytes, goes to the blob store, named by its
/// SHA-256 in the entry) and an observation for the detection thread (never waited
/// for: when its queue is full the observation is counted and dropped).
fn report_cut(
    (stats, evidence, detect): (
        &MediaStats,
        Option<&EvidenceTx>,
        Option<&SyncSender<DetectMsg>>,
    ),
    call: &str,
    account: Option<&str>,
    side: usize,
    stream: &Stream,
) {
    stats.cut.fetch_add(1, Ordering::Relaxed);
    let sample = stream.sample();
    let bytes = sample.map(|s| s.bytes().to_vec()).unwrap_or_default();
    let why = sample.map(|s| s.refusal.reason().as_str()).unwrap_or("");
    let from = sample
        .map(|s| s.from)
        .or_else(|| stream.peer(Component::Rtp));
    let shown = from.map(|a| a.to_string()).unwrap_or_default();
    let party = if side == 0 { "caller" } else { "callee" };
    warn!(target: "palisade::security", call = %call, side = party, reason = why, from = %shown, "media stream cut: it kept sending malformed packets");
    let sha = hex::encode(palisade_shield::sha256(&bytes));
    let sample_sha256 = if bytes.is_empty() {
        String::new()
    } else {
        sha.clone()
    };
    if let Some(ev) = evidence {
        let kept = !bytes.is_empty() && ev.reserve_blob(bytes.len());
        let entry = crate::evidence::entry(
            "media-cut",
            now_ms(),
            vec![
                ("call_id", serde_json::json!(call)),
                ("side", serde_json::json!(party)),
                ("reason", serde_json::json!(why)),
                ("source", serde_json::json!(shown)),
                ("message_kept", serde_json::json!(kept)),
                ("message_sha256", serde_json::json!(sha)),
                ("message_bytes", serde_json::json!(bytes.len())),
            ],
        );
        let _ = ev.send_with(entry, kept.then_some(bytes), None);
    }
    let (Some(tx), Some(source)) = (detect, from) else {
        return;
    };
    let refused = stream.stats().refused.clone();
    let observation = Observation::MediaCut(MediaCut {
        at: now_ms(),
        call_id: call.to_string(),
        side: party.to_string(),
        account: account.unwrap_or_default().to_string(),
        source,
        reason: why.to_string(),
        // what the party itself sent wrong (not strangers' packets at its port)
        refused: refused.total().saturating_sub(refused.get(Reason::Source)),
        sample_sha256,
    });
    if let Err(TrySendError::Full(_)) = tx.try_send(DetectMsg::Observe(vec![observation])) {
        let n = stats.detect_dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            warn!(dropped = n, "media relay: the detection thread is behind; a cut stream's observation was dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::sync::Mutex;

    use palisade_media::{PayloadTypes, PortPool, RtpRules};

    use crate::serve::media::types::RelayQueue;
    use crate::serve::sys::EventFd;

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend([0u8; 160]);
        p
    }

    fn socket(nonblocking: bool) -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(nonblocking).unwrap();
        s
    }

    fn config(at: SocketAddr) -> StreamConfig {
        let mut rules = RtpRules::new(PayloadTypes::new(&[0]));
        rules.rtcp_mux = true;
        let expected = Expected {
            rtp: Some(at),
            rtcp: None,
            signalling: Some(at.ip()),
        };
        StreamConfig::new(rules, expected)
    }

    /// The race of an answer: the relay waits; "answered" is queued (and the relay woken)
    /// and the caller's first packet follows at once. The packet must find the call
    /// answered: taken before the commands, it would be held (the relay used to look at
    /// its queue only at the start of a pass).
    #[test]
    fn an_answer_queued_during_a_wait_is_applied_before_the_packets_that_follow_it() {
        let mut pool = PortPool::new("50000-50009".parse().unwrap()).unwrap();
        let (pa, pb) = (pool.allocate().unwrap(), pool.allocate().unwrap());
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            pool: Mutex::new(pool),
            relay: RelayQueue {
                tx: Mutex::new(tx),
                wake: EventFd::new().unwrap(),
            },
            advertise: [127, 0, 0, 1].into(),
            bind: [127, 0, 0, 1].into(),
            limits: palisade_sdp::Limits::default(),
        });
        let stats = Arc::new(MediaStats::new());
        let early = EarlyMedia::None;
        let timeout = Duration::from_secs(30);
        let mut r = Relay::new(
            shared.clone(),
            rx,
            early,
            timeout,
            stats.clone(),
            None,
            None,
        )
        .unwrap();
        let mut p = r.prepare();
        // the relay's sockets (facing the caller, the callee) and the two phones
        let (to_caller, to_callee) = (socket(true), socket(true));
        let relay_addr = to_caller.local_addr().unwrap();
        let (caller, callee) = (socket(false), socket(false));
        callee
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (caller_at, callee_at) = (caller.local_addr().unwrap(), callee.local_addr().unwrap());
        shared.relay.send(MediaCmd::Offer {
            call: "c".into(),
            account: None,
            legs: vec![Leg {
                line: 0,
                caller_pair: pa,
                callee_pair: pb,
                caller_sockets: (to_caller, None),
                callee_sockets: (to_callee, None),
                caller: config(caller_at),
                mux: true,
            }],
        });
        shared.relay.send(MediaCmd::Expect {
            call: "c".into(),
            caller_side: false,
            lines: vec![(0, config(callee_at))],
        });
        assert!(r.pass(&mut p));
        let held = || stats.held.load(Ordering::Relaxed);
        // before the answer: held
        caller.send_to(&rtp(1), relay_addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while held() == 0 && Instant::now() < deadline {
            assert!(r.pass(&mut p));
        }
        assert_eq!(held(), 1, "a packet before the answer is held");
        let answer = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                // (the relay is in its wait by then)
                std::thread::sleep(Duration::from_millis(100));
                shared.relay.send(MediaCmd::Answered { call: "c".into() });
                caller.send_to(&rtp(2), relay_addr).unwrap();
            })
        };
        let mut buf = [0u8; 512];
        let mut got = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.is_none() && Instant::now() < deadline {
            assert!(r.pass(&mut p));
            if let Ok((n, _)) = callee.recv_from(&mut buf) {
                got = Some(buf[..n].to_vec());
            }
        }
        answer.join().unwrap();
        assert_eq!(
            got,
            Some(rtp(2)),
            "the first packet after the answer went through"
        );
        assert_eq!(held(), 1, "and was not held");
        assert_eq!(stats.forwarded.load(Ordering::Relaxed), 1);
        // told to stop, the relay's loop ends
        shared.relay.send(MediaCmd::Stop);
        assert!(!r.pass(&mut p));
    }
}
