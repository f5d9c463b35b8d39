//! The guard: calls into the shield, turns its verdicts into security events, refuses
//! calls to protected users, and contains panics.

use super::*;

pub(super) fn protected_phrase(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        603 => "Decline",
        _ => "Refused",
    }
}

/// `Warning: 399 palisade "reason"` (RFC 3261 section 20.43).
pub(super) fn warning(reason: &str) -> Header<'static> {
    Header::Warning(palisade_sip::Warning {
        code: 399,
        agent: Cow::Borrowed("palisade"),
        text: Cow::Owned(reason.replace(['"', '\\'], "'")),
    })
}

impl Endpoint {
    /// The shell reports that handling `bytes` from `from` panicked (and was contained).
    /// Counts it, records a security event with the message's SHA-256, and answers 500
    /// when the message is a request that can still be answered: on its server
    /// transaction when one exists without a final response, else statelessly.
    pub fn record_panic(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        self.stats.panics += 1;
        self.handling = Handling::default();
        let sha256 = palisade_shield::sha256(bytes);
        let Ok(msg) = parse_datagram(bytes, &self.cfg.limits) else {
            let ev = SecurityEvent {
                kind: EventKind::Panic,
                method: String::new(),
                caller: String::new(),
                callee: String::new(),
                source: peer_text(from),
                call_id: String::new(),
                reason: "panic while handling an unparsable message".into(),
                status: None,
                sha256,
            };
            self.events.push_back(Event::Security(ev));
            return;
        };
        let answer = msg.is_request() && msg.method() != Some(&Method::Ack);
        self.security(
            EventKind::Panic,
            from,
            &msg,
            "panic while handling this message; answered 500".into(),
            answer.then_some(500),
            sha256,
        );
        if !answer {
            return;
        }
        let key = server_key(&msg, false, self.salt);
        match self.tx.servers.get(&key) {
            Some(t) if !t.final_sent => {
                self.reply(now, key, &msg, 500, "Server Internal Error", vec![]);
            }
            Some(_) => {}
            None => {
                let b = self.build_response(&msg, 500, "Server Internal Error", vec![]);
                self.stats.response_sent(500);
                self.send(from, b);
            }
        }
    }

    /// Applies the shield to a message about to be forwarded; removed items become
    /// security events.
    pub(super) fn shield(
        &mut self,
        from: Peer,
        msg: &mut Message<'_>,
        raw: &[u8],
    ) -> Result<(), Refusal> {
        let dropped = palisade_shield::apply(&self.cfg.shield, msg, raw)?;
        for d in dropped {
            self.stats.shield_dropped += 1;
            self.security(
                EventKind::Dropped(d.what),
                from,
                msg,
                format!("{} {} not allowed by policy", d.what.as_str(), d.name),
                None,
                d.sha256,
            );
        }
        Ok(())
    }

    pub(super) fn security(
        &mut self,
        kind: EventKind,
        from: Peer,
        msg: &Message<'_>,
        reason: String,
        status: Option<u16>,
        sha256: [u8; 32],
    ) {
        let method = msg
            .method()
            .or_else(|| msg.cseq().map(|c| &c.method))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        if let Some(n) = self.stats.security_by_kind.get_mut(kind.slot()) {
            *n += 1;
        }
        let ev = SecurityEvent {
            kind,
            method,
            caller: palisade_shield::aor(msg.from()),
            callee: palisade_shield::aor(msg.to()),
            source: peer_text(from),
            call_id: msg.call_id().unwrap_or("").to_string(),
            reason,
            status,
            sha256,
        };
        self.events.push_back(Event::Security(ev));
    }

    /// A protected callee's devices are reached only by callers on its allow-list (or,
    /// when configured, with an account older than the minimum age). The caller's
    /// identity counts only when it authenticated (or authentication of requests is
    /// off): a From header alone is not evidence.
    pub(super) fn protected_refusal(
        &mut self,
        now: Instant,
        from: Peer,
        msg: &Message<'_>,
        raw: &[u8],
        ruri: &Uri<'_>,
        authenticated: Option<&Authenticated>,
    ) -> Option<Decision> {
        if self.dir.protected.is_empty() {
            return None;
        }
        let callee = super::registrar::user_of_uri(ruri)?;
        let allow = self.dir.protected.get(callee.as_ref())?;
        let trusted = authenticated.is_some() || !self.cfg.authenticate_requests;
        let caller = msg
            .from()
            .and_then(|f| match &f.uri {
                Uri::Sip(s) if self.host_is_us(&s.host) => s.user.as_deref().map(str::to_string),
                _ => None,
            })
            .filter(|_| trusted);
        if let Some(c) = &caller {
            let full = format!("{c}@{}", self.cfg.domain);
            if *c == callee || allow.iter().any(|a| *a == *c || *a == full) {
                return None;
            }
            if let (Some(min), Some(created), Some(unix)) = (
                self.cfg.protected_min_age,
                self.dir.created.get(c),
                self.unix_now(now),
            ) {
                if unix - created >= min.as_secs() as i64 {
                    return None;
                }
            }
        }
        self.stats.protected_refused += 1;
        let status = self.cfg.protected_status;
        let reason = if caller.is_some() {
            "callee is protected: caller not on its allow-list"
        } else {
            "callee is protected: caller not authenticated as a local account"
        };
        self.security(
            EventKind::ProtectedRefused,
            from,
            msg,
            reason.into(),
            Some(status),
            palisade_shield::sha256(raw),
        );
        Some(Decision::Reply(status, protected_phrase(status), vec![]))
    }
}
