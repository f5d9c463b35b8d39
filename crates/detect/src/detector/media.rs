//! The media-abuse detector: media streams the relay cut because their party kept
//! sending malformed packets, per account (an authenticated caller's own stream) or per
//! source network (anyone else: a callee, an unauthenticated caller).
//!
//! A cut is strong evidence by itself (the relay cuts only after more than its cut
//! rule's strikes, from the stream's own peer), so by default one cut is a finding and
//! the subject is blocked for an hour (`[detect.media]`).

use super::*;

/// One cut as a subject's window remembers it: when, what the finding says about it,
/// and the call record it happened in (when the detector has it).
pub(super) struct Cut {
    at: Millis,
    desc: String,
    call: Option<u64>,
}

impl Detector {
    pub(super) fn media_cut(&mut self, c: MediaCut) {
        let cfg = self.cfg.media;
        if !cfg.enabled {
            return;
        }
        let at = c.at;
        let since = at - secs(cfg.window_s);
        let caller_side = c.side == "caller";
        // The call record it belongs to (answered calls are kept by Call-ID; one still
        // ringing is looked for among the calls in progress: cuts are rare). Named as
        // evidence only for the caller's own stream: its callee was the target.
        let call = self
            .answered
            .get(&c.call_id)
            .or_else(|| self.live.values().find(|r| r.call_id == c.call_id))
            .map(|r| r.id)
            .filter(|_| caller_side);
        let sample = if c.sample_sha256.is_empty() {
            "no sample kept".to_string()
        } else {
            format!("first offending packet sha256 {}", c.sample_sha256)
        };
        let desc = format!(
            "{} media stream cut: call {} ({} side) from {}: {}, {} packets refused; {sample} (evidence entry media-cut)",
            crate::rfc3339(at),
            c.call_id,
            c.side,
            c.source,
            c.reason,
            c.refused,
        );
        let cut = Cut { at, desc, call };
        let account = if caller_side {
            c.account
        } else {
            String::new()
        };
        let subject = if account.is_empty() {
            let net = Network::of(c.source.ip());
            let Some(n) = self.network(net, at) else {
                return;
            };
            n.cuts.push_back(cut);
            trim(&mut n.cuts, |x| x.at, since);
            Subject::Network(net)
        } else {
            let Some(a) = self.account(&account, at) else {
                return;
            };
            a.cuts.push_back(cut);
            trim(&mut a.cuts, |x| x.at, since);
            Subject::Account(account.clone())
        };
        let Some(list) = self.cuts_of(&subject) else {
            return;
        };
        let n = list.len();
        if n < cfg.min_cuts.max(1) {
            return;
        }
        let first = list.front().map_or(at, |x| x.at);
        let summary = format!(
            "{n} media stream(s) cut for malformed packets within {} s; the last: call {} ({} side), {}",
            cfg.window_s, c.call_id, c.side, c.reason
        );
        // (a restricted account teaches the client profiles nothing, as after a sweep)
        let restricts = cfg.response.action != ActionKind::Alert;
        if restricts && !account.is_empty() && !self.restricted.contains(&self.id(&account)) {
            self.lose_standing(&account);
        }
        let of = subject.clone();
        let evidence = move |d: &Self, update: bool| {
            let ev = d.cuts_of(&of).map_or_else(Vec::new, |l| {
                let skip = if update { l.len().saturating_sub(1) } else { 0 };
                l.iter()
                    .skip(skip)
                    .flat_map(|x| {
                        let call = x.call.map(Evidence::Call);
                        std::iter::once(Evidence::Event(x.desc.clone())).chain(call)
                    })
                    .collect()
            });
            let accounts = if account.is_empty() {
                vec![]
            } else {
                vec![account]
            };
            (accounts, ev)
        };
        self.raise(
            FindingKind::MediaAbuse,
            subject,
            (first, at),
            1.0,
            evidence,
            summary,
            cfg.response,
        );
    }

    /// The cuts in the window of an account or network, oldest first.
    fn cuts_of(&self, s: &Subject) -> Option<&VecDeque<Cut>> {
        match s {
            Subject::Account(a) => self.accounts.get(&self.id(a)).map(|x| &x.cuts),
            Subject::Network(n) => self.networks.get(n).map(|x| &x.cuts),
            Subject::Device(_) => None,
        }
    }
}
