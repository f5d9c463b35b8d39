//! Budgets for what the shell writes: security events per source address (a flood is
//! counted, not written line by line) and warning lines per minute.

use super::*;

/// Security events recorded per second from one source address, and the burst above
/// that: a flood of hostile offers from one place must not fill the disk one line per
/// datagram. What is over the budget is counted and recorded as one `events-suppressed`
/// event per source and minute.
pub(super) const EVENT_RATE: f64 = 50.0;
pub(super) const EVENT_BURST: f64 = 500.0;
/// Most sources with an event budget at once; beyond it, newcomers share one budget.
pub(super) const EVENT_SOURCES: usize = 65_536;

pub(super) struct EventBudget {
    pub(super) sources: HashMap<String, (f64, Instant, u64)>,
    /// When the suppressed counts were last recorded.
    pub(super) reported: Instant,
}

impl EventBudget {
    /// `source` is `transport:address:port`; the budget is per address.
    pub(super) fn allow(&mut self, source: &str, now: Instant) -> bool {
        let addr = source
            .split_once(':')
            .map(|(_, rest)| rest.rsplit_once(':').map_or(rest, |(a, _)| a))
            .unwrap_or(source);
        if !self.sources.contains_key(addr) && self.sources.len() >= EVENT_SOURCES {
            self.sources.retain(|_, (_, at, n)| {
                *n > 0 || now.duration_since(*at).as_secs_f64() < EVENT_BURST / EVENT_RATE
            });
        }
        let key = if self.sources.contains_key(addr) || self.sources.len() < EVENT_SOURCES {
            addr
        } else {
            "*"
        };
        if !self.sources.contains_key(key) {
            self.sources.insert(key.to_string(), (EVENT_BURST, now, 0));
        }
        let Some(e) = self.sources.get_mut(key) else {
            return true;
        };
        e.0 = (e.0 + now.duration_since(e.1).as_secs_f64() * EVENT_RATE).min(EVENT_BURST);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            true
        } else {
            e.2 += 1;
            false
        }
    }

    /// The sources that went over their budget since the last call, with the count.
    pub(super) fn take_suppressed(&mut self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (src, (_, _, n)) in self.sources.iter_mut() {
            if *n > 0 {
                out.push((src.clone(), std::mem::take(n)));
            }
        }
        out
    }
}

/// Warning lines per window that hostile traffic may cause.
pub(super) const WARN_LINES: u64 = 50;
pub(super) const WARN_WINDOW: Duration = Duration::from_secs(60);

/// At most `WARN_LINES` lines per `WARN_WINDOW`; counts what it suppresses.
pub(super) struct LineBudget {
    pub(super) window: Instant,
    pub(super) used: u64,
    pub(super) suppressed: u64,
}

impl LineBudget {
    pub(super) fn new() -> Self {
        LineBudget {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    pub(super) fn allow(&mut self) -> bool {
        if self.window.elapsed() >= WARN_WINDOW {
            if self.suppressed > 0 {
                warn!(
                    suppressed = self.suppressed,
                    window_s = WARN_WINDOW.as_secs(),
                    "warning lines suppressed (see the totals lines and security-events.jsonl)"
                );
            }
            self.window = Instant::now();
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < WARN_LINES {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

impl Shell {
    /// A security event from the core: an observation for the detectors (refusals), an
    /// entry in the evidence log, a line in the log (within budgets) and a line in
    /// `security-events.jsonl`.
    pub(super) fn on_security(&mut self, e: palisade_shield::SecurityEvent, now: Instant) {
        if matches!(
            e.kind,
            palisade_shield::EventKind::OfferRefused | palisade_shield::EventKind::ProtectedRefused
        ) && self.detect_tx.is_some()
        {
            if let Some(source) = e.source.split_once(':').and_then(|(_, a)| a.parse().ok()) {
                let domain = self.endpoint.config().domain.clone();
                let account = e
                    .caller
                    .strip_suffix(&format!("@{domain}"))
                    .unwrap_or("")
                    .to_string();
                let o = palisade_detect::Observation::Refused {
                    at: unix_now().saturating_mul(1000),
                    source,
                    account,
                    kind: e.kind.as_str().to_string(),
                };
                self.observed.push(o);
            }
        }
        // Every decision is an entry of the evidence log (what a client saw must be
        // there after any crash); the budget below bounds the text log, the event file
        // and the blob store: over it, the entry says the message was not kept.
        let within = self.event_budget.allow(&e.source, now);
        if let Some(ev) = &self.evidence {
            // the message a refusal was about goes to the blob store (removals of
            // unknown headers are routine: their hash is enough)
            let message = match (&self.refused_message, e.kind) {
                (_, palisade_shield::EventKind::Dropped(_)) | (None, _) => None,
                (Some(m), _) => Some(m),
            };
            let kept = message
                .filter(|m| within && ev.reserve_blob(m.len()))
                .cloned();
            let entry = security_entry(
                &e,
                unix_now().saturating_mul(1000),
                message.map(|m| (m.as_slice(), kept.is_some())),
            );
            self.entries.push((entry, kept));
        }
        if !within {
            return; // counted; summarised once a minute
        }
        let st = &self.endpoint.stats;
        let total = st.shield_refused
            + st.shield_answers_refused
            + st.shield_dropped
            + st.protected_refused;
        // Refusals are warnings; removals (an unknown header on every call
        // of some phone) are routine and logged at debug, counted in the
        // summary line and always written to the event file.
        let routine = matches!(e.kind, palisade_shield::EventKind::Dropped(_));
        if routine && !tracing::enabled!(target: "palisade::security", tracing::Level::DEBUG) {
            self.store.send(StoreMsg::Security(Box::new(e), unix_now()));
            return;
        }
        if e.kind == palisade_shield::EventKind::Panic {
            // already logged at error by `handle`
            self.store.send(StoreMsg::Security(Box::new(e), unix_now()));
            return;
        }
        macro_rules! security_line {
            ($lvl:ident) => {
        $lvl!(
            target: "palisade::security",
            kind = e.kind.as_str(),
            method = %e.method,
            caller = %e.caller,
            callee = %e.callee,
            source = %e.source,
            call_id = %e.call_id,
            status = e.status.unwrap_or(0),
            reason = %e.reason,
            sha256 = %palisade_shield::hex(&e.sha256),
            refused = st.shield_refused,
            answers_refused = st.shield_answers_refused,
            dropped = st.shield_dropped,
            protected_refused = st.protected_refused,
            total,
            "shield"
        )
            };
        }
        if routine {
            security_line!(debug);
        } else if self.warn_budget.allow() {
            security_line!(warn);
        }
        self.store.send(StoreMsg::Security(Box::new(e), unix_now()));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_budget_is_per_address_and_counts_what_it_suppresses() {
        let t = std::time::Instant::now();
        let mut b = super::EventBudget {
            sources: std::collections::HashMap::new(),
            reported: t,
        };
        let burst = super::EVENT_BURST as u64;
        let allowed = (0..burst + 100)
            .filter(|i| b.allow(&format!("udp:192.0.2.1:{}", 5000 + i), t))
            .count() as u64;
        assert_eq!(allowed, burst, "one budget for every port of an address");
        assert!(
            b.allow("udp:192.0.2.2:5060", t),
            "another address has its own"
        );
        assert!(b.allow("tcp:[2001:db8::1]:5060", t));
        assert_eq!(b.take_suppressed(), vec![("192.0.2.1".to_string(), 100)]);
        assert!(b.take_suppressed().is_empty());
        // the budget refills with time
        assert!(b.allow("udp:192.0.2.1:5000", t + std::time::Duration::from_secs(1)));
    }

    #[test]
    fn security_json_is_valid_json_whatever_the_text() {
        let e = palisade_shield::SecurityEvent {
            kind: palisade_shield::EventKind::OfferRefused,
            method: "INVITE".into(),
            caller: "a\"b\\c@x".into(),
            callee: "bob@example.com".into(),
            source: "udp:192.0.2.1:5060".into(),
            call_id: "c\u{1}d".into(),
            reason: "SDP line 3: \"quoted\"".into(),
            status: Some(488),
            sha256: [0xab; 32],
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json(42)).unwrap();
        assert_eq!(v["caller"], "a\"b\\c@x");
        assert_eq!(v["call_id"], "c\u{1}d");
        assert_eq!(v["status"], 488);
        assert_eq!(v["time"], 42);
        assert_eq!(v["kind"], "offer-refused");
        assert_eq!(v["sha256"], "ab".repeat(32));
    }
}
