//! The shell's side exits: what the core reports besides what it sends. Bindings go to
//! the storage thread (and to the other shards), observations to the detection thread in
//! batches, security events to the log, `security-events.jsonl` and the evidence log (the
//! answer to a refused message waits until its entries are durable); and at most once a
//! minute, the totals lines.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palisade_core::Event;
use palisade_store::BindingOp;
use tracing::{debug, info, warn};

use super::budget::EVENT_RATE;
use super::evidence::security_entry;
use super::persist::to_row;
use super::shell::Shell;
use super::telemetry::{Telemetry, PUBLISH_EVERY};
use crate::clock::unix_now;
use crate::messages::{DetectMsg, Inbound, Replica, StoreMsg};

/// Observations are handed to the detection thread this many at a time, or once the
/// oldest has waited `OBSERVE_WAIT` (detection runs that much later; the core's own
/// restrictions do not wait for it).
const OBSERVE_BATCH: usize = 512;
const OBSERVE_WAIT: Duration = Duration::from_millis(20);

impl Shell {
    /// Records, once a minute, how many security events each source had over its budget.
    pub(super) fn suppressed_events(&mut self, force: bool) {
        if !force && self.event_budget.reported.elapsed() < Duration::from_secs(60) {
            return;
        }
        self.event_budget.reported = Instant::now();
        for (source, n) in self.event_budget.take_suppressed() {
            warn!(target: "palisade::security", source, suppressed = n, "security events over the per-source budget were counted, not recorded one by one");
            let e = palisade_shield::SecurityEvent {
                kind: palisade_shield::EventKind::EventsSuppressed,
                method: String::new(),
                caller: String::new(),
                callee: String::new(),
                source,
                call_id: String::new(),
                reason: format!(
                    "{n} security events from this address were not recorded one by one (over {EVENT_RATE}/s)"
                ),
                status: None,
                sha256: [0; 32],
            };
            // (not an evidence entry: the evidence log has every one of these events)
            self.store.send(StoreMsg::Security(Box::new(e), unix_now()));
        }
    }

    /// Copies the core's counters out for the admin listener, at most every
    /// `PUBLISH_EVERY` (relaxed stores into this shard's own counters).
    pub(super) fn publish(&mut self, now: Instant, queued: usize) {
        if now.saturating_duration_since(self.published.0) < PUBLISH_EVERY {
            return;
        }
        self.published.0 = now;
        let Some(c) = self.telemetry.shards.get(self.index) else {
            return;
        };
        let st = &self.endpoint.stats;
        let copy = |to: &[AtomicU64], from: &[u64]| {
            for (t, f) in to.iter().zip(from) {
                t.store(*f, Ordering::Relaxed);
            }
        };
        copy(&c.requests, &st.requests_by_method);
        copy(&c.responses, &st.responses_by_class);
        copy(&c.shield, &st.security_by_kind);
        let (servers, clients) = self.endpoint.transaction_count();
        c.transactions
            .store((servers + clients) as u64, Ordering::Relaxed);
        c.queued.store(queued as u64, Ordering::Relaxed);
        c.store_held
            .store(self.store.held() as u64, Ordering::Relaxed);
        let dropped = [
            ("shard", self.handoff_dropped),
            ("store", self.store.shed),
            ("detect", self.detect_dropped),
        ];
        for (q, n) in dropped {
            if let Some(d) = c.dropped.get(Telemetry::queue(q)) {
                d.store(n, Ordering::Relaxed);
            }
        }
        if let (Some(h), Some(d)) = (&self.hep, c.dropped.get(Telemetry::queue("hep"))) {
            // one sender for all shards: shard 0 reports it
            if self.index == 0 {
                d.store(h.dropped(), Ordering::Relaxed);
            }
        }
        // Every shard holds every binding: shard 0 counts them, once a second (a walk
        // over the location table).
        if self.index == 0
            && now.saturating_duration_since(self.published.1) >= Duration::from_secs(1)
        {
            self.published.1 = now;
            self.telemetry
                .registrations
                .store(self.endpoint.bindings().count() as u64, Ordering::Relaxed);
        }
    }

    /// One log line with the traffic counters, at most once a minute and only when they
    /// changed (and at shutdown): per-request lines are at debug, so that a flood costs
    /// counters, not log lines.
    pub(super) fn traffic_summary(&mut self, force: bool) {
        let st = &self.endpoint.stats;
        let (servers, clients) = self.endpoint.transaction_count();
        let digest = st.requests
            + st.responses
            + st.malformed
            + st.answers_rate_limited
            + st.answers_too_large
            + st.overloaded
            + st.panics
            + self.slow_peers_closed
            + self.handoff_dropped;
        if digest == self.traffic.1
            || (!force && self.traffic.0.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        info!(
            shard = self.index,
            requests = st.requests,
            responses = st.responses,
            malformed = st.malformed,
            challenges = st.challenges,
            auth_failures = st.auth_failures,
            forwarded = st.forwarded,
            answers_rate_limited = st.answers_rate_limited,
            answers_too_large = st.answers_too_large,
            overloaded = st.overloaded,
            panics = st.panics,
            slow_peers_closed = self.slow_peers_closed,
            connections = self.conns.len(),
            server_transactions = servers,
            client_transactions = clients,
            store_held = self.store.held(),
            store_shed = self.store.shed,
            handoff_dropped = self.handoff_dropped,
            "traffic totals"
        );
        self.traffic = (Instant::now(), digest);
    }

    /// One log line with the shield's counters, at most once a minute and only when they
    /// changed (and at shutdown).
    pub(super) fn shield_summary(&mut self, force: bool) {
        let st = &self.endpoint.stats;
        let total = st.shield_refused
            + st.shield_answers_refused
            + st.shield_dropped
            + st.protected_refused;
        if total == self.summary.1 || (!force && self.summary.0.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        info!(
            target: "palisade::security",
            shard = self.index,
            refused = st.shield_refused,
            answers_refused = st.shield_answers_refused,
            dropped = st.shield_dropped,
            protected_refused = st.protected_refused,
            "shield totals"
        );
        self.summary = (Instant::now(), total);
    }

    /// Takes the core's events: bindings to the store, security events to the log and
    /// the evidence log, observations to the detectors.
    pub(super) fn process_events(&mut self) {
        self.process_events_only();
        if !self.entries.is_empty() {
            self.send_entries(None);
        }
        if self.store.held() > 0 {
            self.store.flush();
        }
    }

    fn process_events_only(&mut self) {
        while let Some(ev) = self.endpoint.poll_event() {
            let op = match ev {
                Event::BindingSaved(b) => {
                    let now = Instant::now();
                    let others = self.router.count().saturating_sub(1);
                    if others > 0 {
                        // (the parsed contact is copied for all but the last shard, which
                        // takes it)
                        let mut uri = self.endpoint.contact_uri(&b.aor, &b.contact);
                        let mut left = others;
                        self.router.replicate(self.index, || {
                            left = left.saturating_sub(1);
                            let u = if left == 0 { uri.take() } else { uri.clone() };
                            Replica::Saved(Box::new((b.clone(), u)))
                        });
                    }
                    let (node, flow) = match super::cluster::node() {
                        Some(n) => (n, self.endpoint.flow_token(&b.source)),
                        None => ("", String::new()),
                    };
                    BindingOp::Save(to_row(b, now, node, flow))
                }
                Event::BindingRemoved { aor, contact } => {
                    self.router.replicate(self.index, || Replica::Removed {
                        aor: aor.clone(),
                        contact: contact.clone(),
                    });
                    BindingOp::Remove {
                        aor,
                        contact,
                        node: super::cluster::node().unwrap_or("").to_string(),
                    }
                }
                Event::Observation(o) => {
                    if self.detect_tx.is_some() {
                        self.observed.push(o);
                    }
                    continue;
                }
                Event::Notified { user, delivered } => {
                    self.send_detector(DetectMsg::Notified(user, delivered));
                    continue;
                }
                Event::Security(e) => {
                    self.on_security(e, Instant::now());
                    continue;
                }
            };
            self.store.send(StoreMsg::Binding(op));
        }
        // (a full batch goes at once; the wait is checked by the worker's pass, which
        // has the time: no clock read per message here)
        if self.observed.len() >= OBSERVE_BATCH {
            self.hand_observed();
        }
    }

    fn hand_observed(&mut self) {
        self.observed_since = None;
        // (the next batch starts with room for as many: no growth observation by
        // observation)
        let room = self.observed.len().min(OBSERVE_BATCH);
        let batch = std::mem::replace(&mut self.observed, Vec::with_capacity(room));
        self.send_detector(DetectMsg::Observe(batch));
    }

    /// Hands the observations gathered to the detection thread: in batches of
    /// `OBSERVE_BATCH`, or once the oldest has waited `OBSERVE_WAIT` (one wake-up of that
    /// thread per batch, not per pass of this loop), or when `force`d. `now` is the
    /// time of the caller's pass (the wait counts from the first pass that saw them).
    pub(super) fn send_observed(&mut self, now: Instant, force: bool) {
        if self.observed.is_empty() {
            return;
        }
        let since = *self.observed_since.get_or_insert(now);
        if force
            || self.observed.len() >= OBSERVE_BATCH
            || now.saturating_duration_since(since) >= OBSERVE_WAIT
        {
            self.hand_observed();
        }
    }

    /// Sends the evidence entries of the events just taken; `then` (the transmits of a
    /// refused message) rides with the last one and comes back when it is durable.
    fn send_entries(&mut self, then: Option<Vec<palisade_core::Transmit>>) {
        let entries = std::mem::take(&mut self.entries);
        let Some(ev) = &self.evidence else {
            if let Some(t) = then {
                self.released.extend(t);
            }
            return;
        };
        let n = entries.len();
        let mut then = then.map(Inbound::Release);
        for (i, (e, blob)) in entries.into_iter().enumerate() {
            let effect = if i + 1 == n { then.take() } else { None };
            if let Err(Some(Inbound::Release(t))) = ev.send_with(e, blob, effect) {
                // the log is behind: the answer is not held back (counted and logged)
                self.released.extend(t);
            }
        }
        if let Some(Inbound::Release(t)) = then {
            self.released.extend(t);
        }
    }

    /// After a message whose handling refused something: its events are taken now and
    /// whatever the core wants to send (the refusal) waits until their entries are
    /// durable in the evidence log.
    pub(super) fn hold_until_durable(&mut self) {
        self.process_events_only();
        let mut held = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            held.push(t);
        }
        self.send_entries(Some(held));
    }

    /// Hands a message to the detection thread without ever waiting for it: when its
    /// queue is full the message is counted and dropped (the core must not
    /// slow down because the detectors are behind).
    pub(super) fn send_detector(&mut self, m: DetectMsg) {
        let Some(tx) = &self.detect_tx else { return };
        if let Err(std::sync::mpsc::TrySendError::Full(_)) = tx.try_send(m) {
            self.detect_dropped += 1;
            if self.detect_dropped.is_power_of_two() && self.warn_budget.allow() {
                warn!(
                    dropped = self.detect_dropped,
                    "the detection thread is behind; observations dropped"
                );
            }
        }
    }

    /// A security event from the core: an observation for the detectors (refusals), an
    /// entry in the evidence log, a line in the log (within budgets) and a line in
    /// `security-events.jsonl`.
    fn on_security(&mut self, e: palisade_shield::SecurityEvent, now: Instant) {
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
            sha256 = %hex::encode(e.sha256),
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
