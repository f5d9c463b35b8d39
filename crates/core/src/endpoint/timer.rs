//! Timers: what is armed (named after what it ends), the lazy heap that holds them, and
//! the sweep of per-client tables. Fires retransmissions and timeouts of RFC 3261 section
//! 17 (Timers A, B, E, F, G, H, I, J, K) and Timer C of section 16.6.

use super::*;

/// Timer C: RFC 3261 says more than three minutes.
pub(super) const TIMER_C: Duration = Duration::from_secs(181);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerWhat {
    ClientTimerC(String),
    ServerRetrans(TxnKey),
    ServerTimeout(TxnKey),
    ServerEnd(TxnKey),
    ClientRetrans(String),
    ClientTimeout(String),
    ClientEnd(String),
    Bindings(String),
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
            TimerWhat::ServerRetrans(k) | TimerWhat::ServerTimeout(k) | TimerWhat::ServerEnd(k) => {
                self.servers.contains_key(k)
            }
            TimerWhat::ClientTimerC(k)
            | TimerWhat::ClientRetrans(k)
            | TimerWhat::ClientTimeout(k)
            | TimerWhat::ClientEnd(k) => self.clients.contains_key(k),
            TimerWhat::Bindings(aor) => self.location.contains_key(aor),
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
            TimerWhat::ServerRetrans(k) => {
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
                self.arm(now + next, TimerWhat::ServerRetrans(k));
            }
            TimerWhat::ServerTimeout(k) => {
                if self
                    .servers
                    .get(&k)
                    .is_some_and(|t| t.state == SState::Completed)
                {
                    debug!(key = k, "no ACK for final response (Timer H)");
                    self.servers.remove(&k);
                }
            }
            TimerWhat::ServerEnd(k) => {
                self.servers.remove(&k);
            }
            TimerWhat::ClientRetrans(k) => {
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
                self.arm(now + next, TimerWhat::ClientRetrans(k));
            }
            TimerWhat::ClientTimeout(k) => {
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
            TimerWhat::ClientEnd(k) => {
                self.clients.remove(&k);
            }
            TimerWhat::ClientTimerC(k) => {
                let Some(c) = self.clients.get_mut(&k) else {
                    return;
                };
                match c.timer_c {
                    _ if c.done => {}
                    Some(at) if at > now => self.arm(at, TimerWhat::ClientTimerC(k)),
                    _ => {
                        c.expired = true;
                        debug!(
                            branch = k,
                            "Timer C: cancelling a branch that rang too long"
                        );
                        self.cancel_branch(now, &k);
                        self.arm(now + self.cfg.t1 * 64, TimerWhat::ClientTimeout(k));
                    }
                }
            }
            TimerWhat::Bindings(aor) => self.expire_bindings(now, &aor),
        }
    }
}
