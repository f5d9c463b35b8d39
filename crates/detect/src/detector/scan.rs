//! The detectors that look at probing and refusals, per source network: scanner
//! signatures, user enumeration, password guessing, floods, repeated refusals.

use super::*;

impl Detector {
    pub(super) fn probe(&mut self, p: Probe) {
        let cfg = self.cfg.scan;
        if !cfg.enabled {
            return;
        }
        let net = Network::of(p.source.ip());
        let at = p.at;
        let desc = format!(
            "{} {} from {} ({})",
            p.kind.as_str(),
            p.user,
            p.source,
            p.user_agent
        );
        let Some(n) = self.network(net, at) else {
            return;
        };
        n.probes.push_back((at, p.kind, h(&p.user), desc.clone()));
        trim(&mut n.probes, |x| x.0, at - secs(cfg.window_s));
        let first = n.probes.front().map_or(at, |x| x.0);
        let users: HashSet<u64> = n
            .probes
            .iter()
            .filter(|x| matches!(x.1, ProbeKind::UnknownUser | ProbeKind::AuthFailed))
            .map(|x| x.2)
            .collect();
        let fails = n
            .probes
            .iter()
            .filter(|x| x.1 == ProbeKind::AuthFailed)
            .count();
        let floods = n.probes.iter().filter(|x| x.1 == ProbeKind::Flood).count();
        // The evidence: the probes of the window (at most the last 100; an update only
        // the newest), built only when a finding is raised.
        let recent = move |d: &Self, update: bool| {
            let ev = d.networks.get(&net).map_or_else(Vec::new, |n| {
                let take = if update { 1 } else { 100 };
                let skip = n.probes.len().saturating_sub(take);
                n.probes
                    .iter()
                    .skip(skip)
                    .map(|x| Evidence::Event(format!("{} {}", crate::rfc3339(x.0), x.3)))
                    .collect()
            });
            (Vec::new(), ev)
        };
        let subject = Subject::Network(net);
        if p.kind == ProbeKind::Scanner {
            let summary = format!("known scanner signature: {}", p.user_agent);
            self.raise(
                FindingKind::Scanner,
                subject.clone(),
                (at, at),
                1.0,
                move |_, _| (Vec::new(), vec![Evidence::Event(desc)]),
                summary,
                cfg.response,
            );
        }
        if users.len() >= cfg.min_users {
            let summary = format!(
                "{} distinct user names probed (unknown or failed) within {} s",
                users.len(),
                cfg.window_s
            );
            let score = (users.len() as f64 / (2 * cfg.min_users.max(1)) as f64).min(1.0);
            self.raise(
                FindingKind::Enumeration,
                subject.clone(),
                (first, at),
                score,
                recent,
                summary,
                cfg.response,
            );
        }
        if fails >= cfg.min_auth_failures {
            let summary = format!("{fails} authentication failures within {} s", cfg.window_s);
            let score = (fails as f64 / (2 * cfg.min_auth_failures.max(1)) as f64).min(1.0);
            self.raise(
                FindingKind::PasswordGuessing,
                subject.clone(),
                (first, at),
                score,
                recent,
                summary,
                cfg.response,
            );
        }
        if floods >= cfg.min_floods {
            let summary = format!(
                "spent its answer budget {floods} times within {} s",
                cfg.window_s
            );
            self.raise(
                FindingKind::Flood,
                subject,
                (first, at),
                0.5,
                recent,
                summary,
                cfg.flood_response,
            );
        }
    }

    pub(super) fn refused(
        &mut self,
        at: Millis,
        source: std::net::SocketAddr,
        account: String,
        kind: String,
    ) {
        let cfg = self.cfg.refusals;
        if !cfg.enabled {
            return;
        }
        let since = at - secs(cfg.window_s);
        let desc = format!("{} {kind} from {source} ({account})", crate::rfc3339(at));
        let subject = if account.is_empty() {
            let net = Network::of(source.ip());
            let Some(n) = self.network(net, at) else {
                return;
            };
            n.refusals.push_back((at, desc));
            trim(&mut n.refusals, |x| x.0, since);
            Subject::Network(net)
        } else {
            let Some(a) = self.account(&account, at) else {
                return;
            };
            a.refusals.push_back((at, desc));
            trim(&mut a.refusals, |x| x.0, since);
            // (suspect now: its window is read again at its next finished attempt)
            a.unassessed = usize::MAX;
            Subject::Account(account.clone())
        };
        let Some(list) = self.refusals_of(&subject) else {
            return;
        };
        if list.len() < cfg.min_refusals {
            return;
        }
        let first = list.front().map_or(at, |x| x.0);
        let summary = format!("{} refusals within {} s", list.len(), cfg.window_s);
        let score = (list.len() as f64 / (2 * cfg.min_refusals.max(1)) as f64).min(1.0);
        let of = subject.clone();
        let evidence = move |d: &Self, update: bool| {
            let ev = d.refusals_of(&of).map_or_else(Vec::new, |l| {
                let skip = if update { l.len().saturating_sub(1) } else { 0 };
                l.iter()
                    .skip(skip)
                    .map(|x| Evidence::Event(x.1.clone()))
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
            FindingKind::Refusals,
            subject,
            (first, at),
            score,
            evidence,
            summary,
            cfg.response,
        );
    }

    /// The refusals in the window of an account or network, oldest first.
    fn refusals_of(&self, s: &Subject) -> Option<&VecDeque<(Millis, String)>> {
        match s {
            Subject::Account(a) => self.accounts.get(&self.id(a)).map(|x| &x.refusals),
            Subject::Network(n) => self.networks.get(n).map(|x| &x.refusals),
            Subject::Device(_) => None,
        }
    }
}
