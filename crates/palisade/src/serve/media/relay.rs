//! The relay thread: every relay socket in one epoll set, read with `recvmmsg`; each
//! datagram checked by the sending party's stream and the call's gate, and what passes
//! sent unchanged from the other party's relay socket. No lock and no allocation per
//! packet; the anchors' commands arrive on a queue looked at every pass.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_media::{
    CallMedia, Component, Direction, EarlyMedia, EndReason, Expected, PortPair, Stream,
    StreamConfig, StreamEvent,
};
use tracing::{debug, info, warn};

use super::types::{Leg, MediaCmd, MediaStats, Shared};
use crate::clock::now_ms;
use crate::serve::evidence::EvidenceTx;
use crate::serve::sys::{Epoll, RecvBatch, BATCH};

/// How long the relay waits for packets before it looks at its queue and timers.
const PASS: i32 = 20;

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
    epoll: Epoll,
    calls: Vec<Option<Call>>,
    free: Vec<usize>,
    by_id: HashMap<String, usize>,
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
    ) -> anyhow::Result<Self> {
        Ok(Relay {
            shared,
            rx,
            early,
            timeout,
            stats,
            evidence,
            epoll: Epoll::new()?,
            calls: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
        })
    }

    pub(super) fn run(mut self) {
        let mut ready = Vec::new();
        let mut batch = RecvBatch::new();
        let mut next_tick = Instant::now();
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(cmd) => self.command(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        info!("media relay stopped");
                        return;
                    }
                }
            }
            if let Err(e) = self.epoll.wait(&mut ready, PASS) {
                warn!(error = %e, "media relay: epoll_wait failed");
                std::thread::sleep(Duration::from_millis(PASS as u64));
            }
            let now = Instant::now();
            for t in ready.iter().copied() {
                self.readable(t, now, &mut batch);
            }
            if now >= next_tick {
                next_tick = now + Duration::from_millis(500);
                self.tick(now);
            }
        }
    }

    fn command(&mut self, cmd: MediaCmd) {
        let now = Instant::now();
        match cmd {
            MediaCmd::Offer { call, legs } => self.open(call, legs, now),
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
        }
    }

    fn open(&mut self, id: String, legs: Vec<Leg>, now: Instant) {
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
                        self.stats.cut.fetch_add(1, Ordering::Relaxed);
                        let sample = me.stream.sample();
                        let bytes = sample.map(|s| s.bytes().to_vec()).unwrap_or_default();
                        let why = sample.map(|s| s.refusal.reason().as_str()).unwrap_or("");
                        let from = sample.map(|s| s.from.to_string()).unwrap_or_default();
                        let party = if side == 0 { "caller" } else { "callee" };
                        warn!(target: "palisade::security", call = %call.id, side = party, reason = why, from = %from, "media stream cut: it kept sending malformed packets");
                        if let Some(ev) = &self.evidence {
                            // the first offending packet (its first 256 bytes) goes to
                            // the blob store, named by its SHA-256 in the entry
                            let kept = !bytes.is_empty() && ev.reserve_blob(bytes.len());
                            let sha = hex::encode(palisade_shield::sha256(&bytes));
                            let entry = crate::evidence::entry(
                                "media-cut",
                                now_ms(),
                                vec![
                                    ("call_id", serde_json::json!(call.id)),
                                    ("side", serde_json::json!(party)),
                                    ("reason", serde_json::json!(why)),
                                    ("source", serde_json::json!(from)),
                                    ("message_kept", serde_json::json!(kept)),
                                    ("message_sha256", serde_json::json!(sha)),
                                    ("message_bytes", serde_json::json!(bytes.len())),
                                ],
                            );
                            let _ = ev.send_with(entry, kept.then_some(bytes), None);
                        }
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
