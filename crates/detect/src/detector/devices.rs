//! The detectors that look at registrations: account farms (many new accounts first
//! seen from one network or device) and imitation clients (a claimed User-Agent family
//! whose known fingerprints do not include the client's).

use super::*;

impl Detector {
    pub(super) fn registered(&mut self, r: Registration) {
        let at = r.at;
        let first_time = !self.first_seen.contains_key(&r.account);
        if first_time && self.first_seen.len() < self.cfg.max_subjects {
            self.first_seen.insert(r.account.clone(), at);
        }
        let key = h((&r.account, r.fingerprint, r.source.ip()));
        let dev_key = h((&r.account, r.fingerprint));
        let first_dev = self.reg_seen.get(&dev_key).map_or(at, |&(_, first)| first);
        let due = self
            .reg_seen
            .get(&key)
            .is_none_or(|&(last, _)| at - last >= 3_600_000);
        if !due {
            return;
        }
        if self.reg_seen.len() < self.cfg.max_subjects.saturating_mul(2) {
            self.reg_seen.insert(key, (at, first_dev));
            self.reg_seen.entry(dev_key).or_insert((at, first_dev)).0 = at;
        }
        let id = self.next_reg;
        self.next_reg += 1;
        self.out.push(Output::Registration(RegistrationRecord {
            id,
            at,
            account: r.account.clone(),
            source: r.source,
            transport: r.transport,
            user_agent: r.user_agent.clone(),
            fingerprint: r.fingerprint,
            first_seen: first_dev,
        }));
        self.imitation(
            &r.account,
            &r.user_agent,
            r.fingerprint,
            at,
            Evidence::Registration(id),
        );
        let cfg = self.cfg.new_accounts;
        if !cfg.enabled || !first_time || !self.is_new(&r.account, at) {
            return;
        }
        let since = at - secs(cfg.window_s);
        let net = Network::of(r.source.ip());
        if let Some(n) = self.network(net, at) {
            n.new_accounts.push_back((at, r.account.clone(), id));
            trim(&mut n.new_accounts, |x| x.0, since);
            self.farm(Subject::Network(net), at);
        }
        if !self.devices.contains_key(&r.fingerprint) && self.devices.len() >= self.cfg.max_subjects
        {
            self.overflow += 1;
            return;
        }
        let d = self.devices.entry(r.fingerprint).or_default();
        d.last = at;
        d.new_accounts.push_back((at, r.account.clone(), id));
        trim(&mut d.new_accounts, |x| x.0, since);
        self.farm(Subject::Device(r.fingerprint), at);
    }

    /// The new accounts first seen from a network or device, oldest first.
    fn new_accounts_of(&self, s: &Subject) -> Option<&VecDeque<(Millis, String, u64)>> {
        match s {
            Subject::Network(n) => self.networks.get(n).map(|x| &x.new_accounts),
            Subject::Device(d) => self.devices.get(d).map(|x| &x.new_accounts),
            Subject::Account(_) => None,
        }
    }

    fn farm(&mut self, subject: Subject, at: Millis) {
        let cfg = self.cfg.new_accounts;
        let Some(list) = self.new_accounts_of(&subject) else {
            return;
        };
        // Each account is listed once: only its first registration ever is added.
        let distinct = list.len();
        if distinct < cfg.min_accounts {
            return;
        }
        let first = list.front().map_or(at, |x| x.0);
        let score = (distinct as f64 / (2 * cfg.min_accounts.max(1)) as f64).min(1.0);
        let summary = format!(
            "{distinct} accounts created recently were first seen from this {} within {} s",
            subject.kind(),
            cfg.window_s
        );
        let of = subject.clone();
        self.raise(
            FindingKind::Farm,
            subject,
            (first, at),
            score,
            move |d, update| {
                let Some(list) = d.new_accounts_of(&of) else {
                    return (vec![], vec![]);
                };
                // the newest registration is the last; accounts in first-seen order
                let take = if update { 1 } else { list.len() };
                let skip = list.len() - take;
                let accounts = list.iter().skip(skip).map(|x| x.1.clone()).collect();
                let evidence = list
                    .iter()
                    .skip(skip)
                    .map(|x| Evidence::Registration(x.2))
                    .collect();
                (accounts, evidence)
            },
            summary,
            cfg.farm_response,
        );
    }

    pub(super) fn imitation(&mut self, account: &str, ua: &str, fp: u64, at: Millis, ev: Evidence) {
        let cfg = self.cfg.imitation;
        if !cfg.enabled {
            return;
        }
        let family = ua_family(ua);
        if family.is_empty() {
            return;
        }
        let established = !self.is_new(account, at);
        if !self.profiles.contains_key(&family) && self.profiles.len() >= 1024 {
            return;
        }
        let p = self.profiles.entry(family.clone()).or_default();
        let min = cfg.learn_min_accounts.max(1);
        let known = p.shipped.contains(&fp) || p.learned.get(&fp).is_some_and(|s| s.len() >= min);
        let has_profile = !p.shipped.is_empty() || p.learned.values().any(|s| s.len() >= min);
        if established && (p.learned.contains_key(&fp) || p.learned.len() < PROFILE_CAP) {
            let s = p.learned.entry(fp).or_default();
            if s.len() < PROFILE_CAP {
                s.insert(account.to_string());
            }
        }
        if known || !has_profile {
            return;
        }
        let n = p.shipped.len() + p.learned.values().filter(|s| s.len() >= min).count();
        let summary = format!(
            "claims to be {family} but writes SIP unlike any of the {n} known {family} fingerprints"
        );
        self.raise(
            FindingKind::Imitation,
            Subject::Device(fp),
            (at, at),
            0.8,
            {
                let account = account.to_string();
                move |_, _| (vec![account], vec![ev])
            },
            summary,
            cfg.response,
        );
    }
}
