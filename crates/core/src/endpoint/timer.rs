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

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Timer {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) what: TimerWhat,
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
        let live = self.servers.len() + self.clients.len() + self.location.len();
        if self.timers.len() > 2 * live + 4096 {
            let timers = std::mem::take(&mut self.timers);
            self.timers = timers
                .into_iter()
                .filter(|Reverse(t)| self.timer_is_live(&t.what))
                .collect();
        }
    }

    pub(super) fn timer_is_live(&self, w: &TimerWhat) -> bool {
        match w {
            TimerWhat::G(k) | TimerWhat::H(k) | TimerWhat::IorJ(k) => self.servers.contains_key(k),
            TimerWhat::C(k) | TimerWhat::AorE(k) | TimerWhat::BorF(k) | TimerWhat::DorK(k) => {
                self.clients.contains_key(k)
            }
            TimerWhat::BindingExpiry(aor) => self.location.contains_key(aor),
        }
    }

    pub(super) fn arm(&mut self, at: Instant, what: TimerWhat) {
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            at,
            seq: self.seq,
            what,
        }));
    }

    pub(super) fn fire(&mut self, now: Instant, what: TimerWhat) {
        match what {
            TimerWhat::G(k) => {
                let t2 = self.cfg.t2;
                let Some(t) = self.servers.get_mut(&k) else {
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
                self.arm(now + next, TimerWhat::G(k));
            }
            TimerWhat::H(k) => {
                if self
                    .servers
                    .get(&k)
                    .is_some_and(|t| t.state == SState::Completed)
                {
                    debug!(key = k, "no ACK for final response (Timer H)");
                    self.servers.remove(&k);
                }
            }
            TimerWhat::IorJ(k) => {
                self.servers.remove(&k);
            }
            TimerWhat::AorE(k) => {
                let t2 = self.cfg.t2;
                let Some(c) = self.clients.get_mut(&k) else {
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
                self.arm(now + next, TimerWhat::AorE(k));
            }
            TimerWhat::BorF(k) => {
                let Some(c) = self.clients.get_mut(&k) else {
                    return;
                };
                if c.done || (c.invite && c.state == CState::Proceeding && !c.expired) {
                    // Timer B only runs until a provisional; a ringing INVITE waits for
                    // the callee or a CANCEL.
                    return;
                }
                c.done = true;
                let server = c.server;
                self.clients.remove(&k);
                if let Some(s) = server {
                    self.maybe_finish(now, s);
                }
            }
            TimerWhat::DorK(k) => {
                self.clients.remove(&k);
            }
            TimerWhat::C(k) => {
                let Some(c) = self.clients.get_mut(&k) else {
                    return;
                };
                match c.timer_c {
                    _ if c.done => {}
                    Some(at) if at > now => self.arm(at, TimerWhat::C(k)),
                    _ => {
                        c.expired = true;
                        debug!(
                            branch = %k.branch,
                            "Timer C: cancelling a branch that rang too long"
                        );
                        self.cancel_branch(now, &k);
                        self.arm(now + self.cfg.t1 * 64, TimerWhat::BorF(k));
                    }
                }
            }
            TimerWhat::BindingExpiry(aor) => self.expire_bindings(now, &aor),
        }
    }
}
