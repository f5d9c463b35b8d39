//! The transaction layer (RFC 3261 section 17): server and client transaction state,
//! their keys, local answers on a server transaction, CANCEL matching and the end of a
//! server transaction when its branches are done.

use super::*;

/// A server transaction's identity (RFC 3261 section 17.2.3), hashed with a per-boot
/// salt: no string is built or stored per request.
pub(super) type TxnKey = u64;
pub(super) const SERVER_NAME: &str = "Palisade/0.1";

/// A [`TxnKey`] is already the output of a hash keyed with the per-boot salt (nobody
/// outside can aim keys at one bucket), so the tables keyed by it use it as it is
/// instead of hashing it again.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys are hashed with it; any other input is folded in all the same
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A table keyed by [`TxnKey`].
pub(super) type TxnMap<V> =
    std::collections::HashMap<TxnKey, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The transaction layer's state (RFC 3261 section 17): server and client
/// transactions, the records of non-INVITE requests answered here (so that a
/// retransmission gets the same answer until Timer J), and the timer queue with the
/// counter that orders it (also used for branch ids).
pub(super) struct Transactions {
    pub(super) servers: TxnMap<ServerTxn>,
    pub(super) clients: ClientMap<ClientTxn>,
    pub(super) timers: TimerQueue,
    pub(super) seq: u64,
    pub(super) answered: TxnMap<Answered>,
    pub(super) answered_q: VecDeque<(Instant, u64)>,
}

/// A client transaction's identity: the branch of the request this proxy sent, and
/// whether it is the CANCEL of that branch (a CANCEL carries the branch of the request
/// it cancels, RFC 3261 section 9.1, and is a transaction of its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ClientKey {
    pub(super) branch: String,
    pub(super) cancel: bool,
}

impl ClientKey {
    /// The transaction of a request sent with this branch.
    pub(super) fn request(branch: String) -> Self {
        ClientKey {
            branch,
            cancel: false,
        }
    }

    /// The transaction of the CANCEL of this one.
    pub(super) fn cancel_of(&self) -> Self {
        ClientKey {
            branch: self.branch.clone(),
            cancel: true,
        }
    }
}

/// A table keyed by [`ClientKey`]: the keys are branches this server made, but lookups
/// take branches from the network's responses, so the table's hash is keyed per process
/// all the same ([`crate::Map`]; aHash, at a third of the cost of FNV-1a a byte at a
/// time over a branch).
pub(super) type ClientMap<V> = crate::Map<ClientKey, V>;

/// Who made a response sent on a server transaction: this server (an answer to the
/// request's sender, held to the answer budget when that sender is unproven), or the
/// callee (relayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Here,
    Relayed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CState {
    Trying,
    Proceeding,
    Completed,
}

pub(super) struct ServerTxn {
    pub(super) invite: bool,
    pub(super) state: SState,
    pub(super) source: Peer,
    pub(super) request: Vec<u8>,
    pub(super) last: Option<Vec<u8>>,
    pub(super) retrans: Duration,
    pub(super) branches: Vec<ClientKey>,
    pub(super) best: Option<(u16, Vec<u8>)>,
    pub(super) cancelled: bool,
    pub(super) final_sent: bool,
    /// A recorded call (see `observe`): 1 when its responses are to be reported, 2 once
    /// it rang; 0 otherwise and after its final response.
    pub(super) call: u8,
    /// Its timers (G, H, I/J).
    pub(super) slots: Slots,
}

impl ServerTxn {
    pub(super) fn new(invite: bool, source: Peer, request: Vec<u8>, t1: Duration) -> Self {
        ServerTxn {
            invite,
            state: SState::Proceeding,
            source,
            request,
            last: None,
            retrans: t1,
            branches: Vec::new(),
            best: None,
            cancelled: false,
            final_sent: false,
            call: 0,
            slots: Slots::default(),
        }
    }
}

/// What is remembered of a non-INVITE request answered locally.
pub(super) struct Answered {
    /// It carried valid credentials: a retransmission is not checked again (its nonce
    /// count would look like a replay).
    pub(super) authed: bool,
}

pub(super) struct ClientTxn {
    pub(super) invite: bool,
    pub(super) state: CState,
    pub(super) dest: Peer,
    pub(super) request: Vec<u8>,
    pub(super) server: Option<TxnKey>,
    pub(super) interval: Duration,
    pub(super) provisional: bool,
    pub(super) cancel_pending: bool,
    pub(super) done: bool,
    /// Timer C (RFC 3261 section 16.6 step 11): when a ringing INVITE branch gives up.
    /// `None` until the first provisional; each provisional pushes it back.
    pub(super) timer_c: Option<Instant>,
    /// Timer C fired and the branch was cancelled: if the callee does not answer the
    /// CANCEL either, the branch ends with a 408 after 64*T1.
    pub(super) expired: bool,
    /// Its timers (C, A/E, B/F, D/K).
    pub(super) slots: Slots,
}

/// A fast hasher (aHash) keyed by `salt` (per boot), for transaction keys, branches
/// and loop detection: values that only this process compares, never stored or sent as
/// proof (the nonces and dialog tokens have a MAC, `crate::mac`). Its keys come from
/// the salt, so an attacker who does not know it cannot aim collisions at our tables.
pub(super) fn keyed(salt: u64) -> impl Hasher {
    use std::hash::BuildHasher as _;
    ahash::RandomState::with_seeds(
        salt,
        salt ^ 0x9e37_79b9_7f4a_7c15,
        salt.rotate_left(32) ^ 0x6a09_e667_f3bc_c908,
        !salt,
    )
    .build_hasher()
}

pub(super) fn hash64(parts: &[&[u8]], salt: u64) -> u64 {
    let mut h = keyed(salt);
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// Key of the server transaction a request belongs to (RFC 3261 section 17.2.3); with
/// `as_invite`, the key of the INVITE an ACK or CANCEL refers to.
pub(super) fn server_key(m: &Message<'_>, as_invite: bool, salt: u64) -> TxnKey {
    let method = if as_invite {
        "INVITE"
    } else {
        m.method().map(|m| m.as_str()).unwrap_or("")
    };
    let mut h = keyed(salt);
    let via = m.top_via();
    let branch = via.and_then(|v| v.branch()).unwrap_or("");
    if let Some(v) = via {
        v.host.hash(&mut h);
        v.port.hash(&mut h);
    }
    branch.hash(&mut h);
    method.hash(&mut h);
    if !branch.starts_with(MAGIC) {
        // RFC 2543 peers: match on the request's identity as well.
        m.call_id().hash(&mut h);
        m.cseq().map(|c| c.seq).hash(&mut h);
        m.from().and_then(|f| f.tag()).hash(&mut h);
    }
    h.finish()
}

impl Endpoint {
    pub(super) fn build_response(
        &self,
        req: &Message<'_>,
        status: u16,
        reason: &str,
        extra: Vec<Header<'_>>,
    ) -> Vec<u8> {
        // Written straight into the datagram: the copied headers are re-emitted in
        // canonical form from the parsed request, never cloned into a second message.
        let mut out = String::with_capacity(512);
        out.push_str("SIP/2.0 ");
        palisade_sip::push_num(&mut out, u64::from(status));
        out.push(' ');
        out.push_str(reason);
        out.push_str("\r\n");
        for h in &req.headers {
            match h {
                Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                    h.write(&mut out)
                }
                Header::To(t) => {
                    h.write(&mut out);
                    if status > 100 && t.tag().is_none() {
                        // the line ends in CRLF: the tag goes before it, after the
                        // header's parameters
                        out.truncate(out.len().saturating_sub(2));
                        out.push_str(";tag=");
                        out.push_str(&self.to_tag(req));
                        out.push_str("\r\n");
                    }
                }
                Header::RecordRoute(_) if (101..300).contains(&status) => h.write(&mut out),
                _ => {}
            }
        }
        for h in &extra {
            h.write(&mut out);
        }
        out.push_str("Server: ");
        out.push_str(SERVER_NAME);
        out.push_str("\r\nContent-Length: 0\r\n\r\n");
        out.into_bytes()
    }

    /// Sends a locally generated response on a server transaction.
    pub(super) fn reply(
        &mut self,
        now: Instant,
        key: TxnKey,
        req: &Message<'_>,
        status: u16,
        reason: &str,
        extra: Vec<Header<'_>>,
    ) {
        let bytes = self.build_response(req, status, reason, extra);
        self.send_on_server(now, key, status, bytes, Made::Here);
    }

    /// Sends a response (local or relayed) upstream and moves the server transaction on.
    pub(super) fn send_on_server(
        &mut self,
        now: Instant,
        key: TxnKey,
        status: u16,
        bytes: Vec<u8>,
        made: Made,
    ) {
        let (t1, t2) = (self.cfg.t1, self.cfg.t1 * 64);
        let Some(t) = self.tx.servers.get_mut(&key) else {
            return;
        };
        let to = t.source;
        let reliable = to.transport.reliable();
        let mut arm = Vec::new();
        let report = match t.call {
            1 | 2 if status >= 200 => {
                t.call = 0;
                true
            }
            1 if (180..190).contains(&status) => {
                t.call = 2;
                true
            }
            _ => false,
        };
        if status >= 200 {
            t.final_sent = true;
            t.last = Some(bytes.clone());
            if t.invite && status < 300 {
                // RFC 6026 Accepted: absorb INVITE retransmissions, relay further 2xx.
                // Its timer (L) runs from the first 2xx; a later 2xx does not restart it.
                if t.state != SState::Accepted {
                    arm.push((t2, TimerWhat::IorJ(key)));
                }
                t.state = SState::Accepted;
                t.last = None;
            } else if t.invite {
                t.state = SState::Completed;
                if !reliable {
                    arm.push((t1, TimerWhat::G(key)));
                }
                arm.push((t2, TimerWhat::H(key)));
                // the call did not happen (a 408 of ours, a 487 after CANCEL, a refusal):
                // whatever the relay holds for it goes
                if let (Some(m), Some(c)) = (self.media.as_mut(), crate::call_id_of(&t.request)) {
                    m.ended(&String::from_utf8_lossy(c));
                }
            } else {
                t.state = SState::Completed;
                arm.push((
                    if reliable { Duration::ZERO } else { t2 },
                    TimerWhat::IorJ(key),
                ));
            }
            // The request was kept to build a final response here (408, 487, a refused
            // branch's answer); there is one now, and the transaction lives on only to
            // absorb retransmissions (up to 32 s): its memory goes. (A later branch's
            // non-2xx is not relayed once a final response is out, see `branch_final`.)
            t.request = Vec::new();
        } else if t.state == SState::Proceeding {
            t.last = Some(bytes.clone());
        }
        for (delay, w) in arm {
            self.tx.arm_after(now, delay, w);
        }
        if report {
            let at = self.unix_ms(now);
            self.observe(palisade_detect::Observation::CallStatus { key, at, status });
        }
        match made {
            Made::Here => self.send_answer(to, bytes),
            Made::Relayed => {
                self.stats.response_sent(status);
                self.send(to, bytes)
            }
        }
    }

    // ---------------------------------------------------------------- forwarding

    pub(super) fn on_cancel(&mut self, now: Instant, from: Peer, msg: &Message<'_>, key: TxnKey) {
        let ikey = server_key(msg, true, self.salt);
        self.tx
            .servers
            .insert(key, ServerTxn::new(false, from, Vec::new(), self.cfg.t1));
        let Some(inv) = self.tx.servers.get_mut(&ikey) else {
            self.reply(
                now,
                key,
                msg,
                481,
                "Call/Transaction Does Not Exist",
                vec![],
            );
            return;
        };
        let pending = !inv.final_sent;
        if pending {
            inv.cancelled = true;
        }
        let branches = inv.branches.clone();
        self.reply(now, key, msg, 200, "OK", vec![]);
        debug!(
            call_id = msg.call_id().unwrap_or(""),
            branches = branches.len(),
            "cancel"
        );
        if pending {
            for b in branches {
                self.cancel_branch(now, &b);
            }
        }
    }

    pub(super) fn cancel_branch(&mut self, now: Instant, branch: &ClientKey) {
        let Some(c) = self.tx.clients.get_mut(branch) else {
            return;
        };
        if c.done || !c.invite {
            return;
        }
        if !c.provisional {
            c.cancel_pending = true;
            return;
        }
        c.cancel_pending = false;
        let dest = c.dest;
        let Some(cancel) = build_cancel_or_ack(&c.request, None, &self.cfg.limits) else {
            return;
        };
        self.start_client(now, dest, branch.cancel_of(), cancel, false, None);
    }

    /// RFC 3261 section 16.7: collect finals, relay 2xx and 6xx at once, the best of the
    /// rest when every branch has answered.
    pub(super) fn branch_final(&mut self, now: Instant, skey: TxnKey, status: u16, bytes: Vec<u8>) {
        let Some(s) = self.tx.servers.get_mut(&skey) else {
            return;
        };
        if status < 300 {
            let first = !s.final_sent;
            // Only a forked request has other branches to cancel: the common call (one
            // branch, the one answering) takes no copy.
            let others = if first && s.branches.len() > 1 {
                s.branches.clone()
            } else {
                Vec::new()
            };
            if s.final_sent && s.invite {
                // additional 2xx from another branch: relay it too
                let to = s.source;
                self.send(to, bytes);
            } else {
                self.send_on_server(now, skey, status, bytes, Made::Relayed);
            }
            if first {
                for b in others {
                    self.cancel_branch(now, &b);
                }
            }
            return;
        }
        if s.final_sent {
            return;
        }
        let better = match &s.best {
            None => true,
            Some((b, _)) => rank(status) < rank(*b),
        };
        if better {
            s.best = Some((status, bytes));
        }
        if status >= 600 {
            let others = s.branches.clone();
            for b in others {
                self.cancel_branch(now, &b);
            }
        }
        self.maybe_finish(now, skey);
    }

    pub(super) fn maybe_finish(&mut self, now: Instant, skey: TxnKey) {
        let Some(s) = self.tx.servers.get(&skey) else {
            return;
        };
        if s.final_sent {
            return;
        }
        let open = s
            .branches
            .iter()
            .any(|b| self.tx.clients.get(b).is_some_and(|c| !c.done));
        let best_is_6xx = s.best.as_ref().is_some_and(|(b, _)| *b >= 600);
        if open && !best_is_6xx {
            return;
        }
        let Some(s) = self.tx.servers.get_mut(&skey) else {
            return;
        };
        match s.best.take() {
            Some((status, bytes)) => self.send_on_server(now, skey, status, bytes, Made::Relayed),
            None => {
                let req = s.request.clone();
                if let Ok(m) = parse_datagram(&req, &self.cfg.limits) {
                    self.reply(now, skey, &m, 408, "Request Timeout", vec![]);
                }
            }
        }
    }

    // ---------------------------------------------------------------- timers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, branch: &str, host: &str) -> Message<'static> {
        let raw = format!(
            "{method} sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch={branch}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        parse_datagram(raw.as_bytes(), &Limits::default())
            .unwrap()
            .into_owned()
    }

    /// RFC 3261 section 17.2.3: branch, sent-by and method identify a server
    /// transaction; a CANCEL or an ACK of a non-2xx matches the INVITE's when keyed as
    /// an INVITE.
    #[test]
    fn server_keys() {
        let inv = server_key(&req("INVITE", "z9hG4bK1", "192.0.2.1:5060"), false, 7);
        assert_eq!(
            inv,
            server_key(&req("INVITE", "z9hG4bK1", "192.0.2.1:5060"), false, 7)
        );
        assert_ne!(
            inv,
            server_key(&req("INVITE", "z9hG4bK2", "192.0.2.1:5060"), false, 7)
        );
        assert_ne!(
            inv,
            server_key(&req("INVITE", "z9hG4bK1", "192.0.2.2:5060"), false, 7)
        );
        let cancel = req("CANCEL", "z9hG4bK1", "192.0.2.1:5060");
        assert_ne!(inv, server_key(&cancel, false, 7));
        assert_eq!(inv, server_key(&cancel, true, 7));
        // another salt (another boot), other keys
        assert_ne!(
            inv,
            server_key(&req("INVITE", "z9hG4bK1", "192.0.2.1:5060"), false, 8)
        );
    }
}
