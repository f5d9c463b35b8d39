//! What the campaign detectors need from the core: observations of calls,
//! registrations and probing requests (made only when `observe` is on, as plain values
//! handed to the shell), and the restrictions the detectors impose (checked here, on the
//! requests they apply to). The detectors themselves run off this thread
//! (`palisade_detect`).

use super::*;
use palisade_detect::{CallStart, Network, Observation, Probe, ProbeKind, Restriction, Subject};

/// One restriction as the core applies it.
struct Entry {
    /// Unix ms.
    until: i64,
    /// `None`: block. `Some((per_minute, tokens, at_ms))`: a token bucket.
    limit: Option<(u32, f64, i64)>,
    finding: u64,
}

/// Restrictions by subject (the detectors give them; they end by themselves).
#[derive(Default)]
pub(super) struct Restrictions {
    accounts: crate::Map<String, Entry>,
    devices: crate::Map<u64, Entry>,
    networks: crate::Map<Network, Entry>,
}

/// Most restrictions of each kind held at once.
const MAX_RESTRICTIONS: usize = 100_000;

/// Why a request is refused.
pub(super) struct Refused {
    pub(super) finding: u64,
    pub(super) limited: bool,
}

fn check(e: &mut Entry, now_ms: i64) -> Option<Refused> {
    if now_ms >= e.until {
        return None;
    }
    match &mut e.limit {
        None => Some(Refused {
            finding: e.finding,
            limited: false,
        }),
        Some((per_minute, tokens, at)) => {
            let rate = f64::from(*per_minute) / 60_000.0;
            *tokens = (*tokens + (now_ms - *at).max(0) as f64 * rate).min(f64::from(*per_minute));
            *at = now_ms;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                None
            } else {
                Some(Refused {
                    finding: e.finding,
                    limited: true,
                })
            }
        }
    }
}

impl Restrictions {
    pub(super) fn has_devices(&self) -> bool {
        !self.devices.is_empty()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.devices.is_empty() && self.networks.is_empty()
    }

    fn insert(&mut self, r: Restriction) {
        let e = Entry {
            until: r.until,
            limit: r.per_minute.map(|n| (n, f64::from(n), 0)),
            finding: r.finding,
        };
        match r.subject {
            Subject::Account(a) if self.accounts.len() < MAX_RESTRICTIONS => {
                self.accounts.insert(a, e);
            }
            Subject::Device(d) if self.devices.len() < MAX_RESTRICTIONS => {
                self.devices.insert(d, e);
            }
            Subject::Network(n) if self.networks.len() < MAX_RESTRICTIONS => {
                self.networks.insert(n, e);
            }
            _ => {}
        }
    }

    fn remove(&mut self, s: &Subject) {
        match s {
            Subject::Account(a) => {
                self.accounts.remove(a);
            }
            Subject::Device(d) => {
                self.devices.remove(d);
            }
            Subject::Network(n) => {
                self.networks.remove(n);
            }
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        self.accounts.retain(|_, e| e.until > now_ms);
        self.devices.retain(|_, e| e.until > now_ms);
        self.networks.retain(|_, e| e.until > now_ms);
    }

    /// A network restriction on `ip` (every request from it).
    pub(super) fn network(&mut self, ip: IpAddr, now_ms: i64) -> Option<Refused> {
        if self.networks.is_empty() {
            return None;
        }
        check(self.networks.get_mut(&Network::of(ip))?, now_ms)
    }

    /// An account or device restriction on a call.
    pub(super) fn caller(&mut self, account: &str, device: u64, now_ms: i64) -> Option<Refused> {
        if let Some(r) = self
            .accounts
            .get_mut(account)
            .and_then(|e| check(e, now_ms))
        {
            return Some(r);
        }
        check(self.devices.get_mut(&device)?, now_ms)
    }

    pub(super) fn len(&self) -> usize {
        self.accounts.len() + self.devices.len() + self.networks.len()
    }
}

/// The answer to a restricted request.
pub(super) fn refusal(r: &Refused) -> Decision {
    if r.limited {
        Decision::Reply(
            503,
            "Service Unavailable: call rate limited",
            vec![Header::Other {
                name: Cow::Borrowed("Retry-After"),
                value: Cow::Borrowed("60"),
            }],
        )
    } else {
        Decision::Reply(403, "Forbidden: blocked by campaign detection", vec![])
    }
}

/// The user part of a name-addr's SIP URI, as written (empty when none).
pub(super) fn user_of(n: Option<&NameAddr<'_>>) -> String {
    n.and_then(|n| n.uri.as_sip())
        .and_then(|s| s.user.as_deref())
        .map(|u| {
            if u.contains('%') {
                String::from_utf8_lossy(&palisade_sip::percent_decode(u)).into_owned()
            } else {
                // (nothing to decode: the text as it is)
                u.to_string()
            }
        })
        .unwrap_or_default()
}

pub(super) fn user_agent<'m>(msg: &'m Message<'_>) -> &'m str {
    msg.headers
        .iter()
        .find_map(|h| match h {
            Header::UserAgent(u) => Some(u.as_ref()),
            _ => None,
        })
        .unwrap_or("")
}

impl Endpoint {
    /// Applies a restriction from the detectors (replacing one on the same subject).
    pub fn restrict(&mut self, r: Restriction) {
        self.restrictions.insert(r);
    }

    /// Lifts the restriction on a subject.
    pub fn lift(&mut self, s: &Subject) {
        self.restrictions.remove(s);
    }

    /// Restrictions in force.
    pub fn restriction_count(&self) -> usize {
        self.restrictions.len()
    }

    pub(super) fn sweep_restrictions(&mut self, now: Instant) {
        let ms = self.unix_ms(now);
        self.restrictions.sweep(ms);
    }

    /// Unix milliseconds at `now` (0 before the shell told the core the time).
    pub(super) fn unix_ms(&self, now: Instant) -> i64 {
        self.unix_base.map_or(0, |(at, ms)| {
            ms.saturating_add(now.saturating_duration_since(at).as_millis() as i64)
        })
    }

    pub(super) fn observe(&mut self, o: Observation) {
        if self.cfg.observe {
            self.events.push_back(Event::Observation(o));
        }
    }

    /// A probing request from the message being handled.
    pub(super) fn probe(&mut self, now: Instant, kind: ProbeKind, user: String, ua: &str) {
        if !self.cfg.observe {
            return;
        }
        let Some(source) = self.handling.source else {
            return;
        };
        let o = Observation::Probe(Probe {
            at: self.unix_ms(now),
            source,
            kind,
            user,
            user_agent: first_chars(ua, 64),
        });
        self.observe(o);
    }

    /// Observations any request may give: the end of a call (BYE), a scanner's
    /// signature (User-Agent or From display name) on an out-of-dialog request.
    pub(super) fn watch(
        &mut self,
        now: Instant,
        method: &Method,
        initial: bool,
        msg: &Message<'_>,
    ) {
        if *method == Method::Bye {
            let o = Observation::CallEnd {
                call_id: msg.call_id().unwrap_or("").to_string(),
                at: self.unix_ms(now),
            };
            self.observe(o);
            return;
        }
        if !initial {
            return;
        }
        let ua = user_agent(msg);
        let display = msg.from().and_then(|f| f.display.as_deref()).unwrap_or("");
        if let Some(sig) = self
            .scanner_memo
            .signature(ua)
            .or_else(|| palisade_detect::scanner_signature(display))
        {
            let user = user_of(msg.to());
            let ua = if ua.is_empty() { sig } else { ua };
            let ua = ua.to_string();
            self.probe(now, ProbeKind::Scanner, user, &ua);
        }
    }

    /// The request's source network is restricted: every request from it is refused,
    /// except from an address that answered a digest challenge correctly in the last
    /// ten minutes (an office on the same /24 as a scanner keeps its service; a scanner
    /// cannot prove an address without a password). A request that carries credentials
    /// is not refused here: it is authenticated, served only if they verify (a correct
    /// password on a stale nonce gets its `stale` challenge), refused with 403 and no
    /// fresh challenge otherwise — a network restriction is a budget for
    /// unauthenticated traffic; authenticated traffic is restricted per account.
    pub(super) fn network_refusal(&mut self, now: Instant, ip: IpAddr) -> Option<Decision> {
        if self.restrictions.is_empty() || self.budget.is_proven(now, ip) {
            return None;
        }
        let ms = self.unix_ms(now);
        self.restrictions.network(ip, ms).map(|r| refusal(&r))
    }

    /// An authenticated caller's out-of-dialog INVITE: restricted?
    pub(super) fn caller_refusal(&mut self, now: Instant, account: &str) -> Option<Decision> {
        if self.restrictions.is_empty() {
            return None;
        }
        let ms = self.unix_ms(now);
        let device = self.handling.fingerprint;
        let r = self.restrictions.caller(account, device, ms)?;
        self.handling.blocked = Some(r.finding);
        Some(refusal(&r))
    }

    /// Records an authenticated caller's initial INVITE or MESSAGE and, when it was
    /// answered here, its final status (a MESSAGE is recorded once, when sent on or
    /// refused by a restriction). Returns whether later responses on its transaction are to be
    /// reported.
    pub(super) fn call_started(
        &mut self,
        now: Instant,
        key: TxnKey,
        msg: &Message<'_>,
        answered_here: Option<u16>,
    ) -> bool {
        if !self.cfg.observe {
            return false;
        }
        let Some(Authenticated::Now(caller)) = &self.handling.authenticated else {
            return false;
        };
        let Some(source) = self.handling.source else {
            return false;
        };
        let caller = caller.clone();
        let at = self.unix_ms(now);
        let body = msg.body.as_ref();
        let blocked = self.handling.blocked.is_some();
        // (as received: the shield drops the header from what it forwards by default)
        let user_agent =
            (self.handling.user_agent.take()).unwrap_or_else(|| first_chars(user_agent(msg), 128));
        self.observe(Observation::CallStart(CallStart {
            key,
            at,
            call_id: msg.call_id().unwrap_or("").to_string(),
            caller,
            callee: user_of(msg.to()),
            source,
            transport: self.handling.transport,
            user_agent,
            fingerprint: self.handling.fingerprint,
            // (as received: taken before the shield rewrote the body it forwards)
            sdp: (self.handling.sdp_habits)
                .unwrap_or_else(|| palisade_detect::sdp_habits(body, super::from_user(msg))),
            blocked,
            message: matches!(msg.method(), Some(Method::Message)),
        }));
        if blocked {
            return false;
        }
        if let Some(status) = answered_here {
            self.observe(Observation::CallStatus { key, at, status });
            return false;
        }
        true
    }
}

/// The first `n` characters of `s` (a User-Agent kept in a record is bounded), copied
/// whole when it is no longer (a byte count at least its character count).
pub(super) fn first_chars(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let end = s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    s.get(..end).unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::first_chars;

    #[test]
    fn first_chars_counts_characters_not_bytes() {
        assert_eq!(first_chars("SIPp/Linux", 64), "SIPp/Linux");
        assert_eq!(first_chars("abcdef", 3), "abc");
        // five two-byte characters: ten bytes, cut after three characters
        assert_eq!(first_chars("ééééé", 3), "ééé");
        assert_eq!(first_chars("ééééé", 5), "ééééé");
        assert_eq!(first_chars("", 0), "");
        let long: String = "ü".repeat(200);
        assert_eq!(first_chars(&long, 128).chars().count(), 128);
        assert_eq!(
            first_chars(&long, 128),
            long.chars().take(128).collect::<String>()
        );
    }
}
