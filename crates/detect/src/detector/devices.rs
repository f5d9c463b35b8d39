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
            self.reg_seen_oldest = self.reg_seen_oldest.min(at);
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
            (Sent::Register, r.fingerprint, 0),
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
        d.new_accounts.push_back((at, r.account, id));
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
        // (remade at every new account of a farm: written without `core::fmt`)
        let mut summary = String::with_capacity(96);
        push_dec(&mut summary, distinct as u64);
        summary.push_str(" accounts created recently were first seen from this ");
        summary.push_str(subject.kind());
        summary.push_str(" within ");
        push_dec(&mut summary, cfg.window_s);
        summary.push_str(" s");
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
            // context alone: an alert, whatever the configuration says
            Response {
                action: ActionKind::Alert,
                ..cfg.farm_response
            },
        );
    }

    /// Compares what a client writes (wire fingerprint; for calls also the SDP habits
    /// of its offer, 0 for none) with the profile of the family it claims, whatever the
    /// account's age: shipped fingerprints, and what accounts in good standing taught
    /// with the same request (a call is judged on what calls taught).
    pub(super) fn imitation(
        &mut self,
        account: &str,
        ua: &str,
        (sent, fp, sdp): (Sent, u64, u64),
        at: Millis,
        ev: Evidence,
    ) {
        let cfg = self.cfg.imitation;
        if !cfg.enabled {
            return;
        }
        let Some(family) = crate::fingerprint::family_key(ua) else {
            return;
        };
        let who = self.id(account);
        if !self.standing.contains(&who) && !self.is_new(account, at) {
            self.earn_standing(account);
        }
        let standing = self.standing.contains(&who);
        if !standing && !self.restricted.contains(&who) {
            // remembered until the account earns standing (or forever, for a campaign)
            let full = self.unvetted.len() >= self.cfg.max_subjects;
            if let Some(seen) = match self.unvetted.get_mut(&who) {
                Some(v) => Some(v),
                None if !full => Some(self.unvetted.entry(who).or_default()),
                None => None,
            } {
                let there = seen
                    .iter()
                    .any(|(f, w, a, b)| *f == family && *w == sent && *a == fp && *b == sdp);
                if seen.len() < 8 && !there {
                    seen.push((family, sent, fp, sdp));
                }
            }
        }
        let p = if standing {
            match self.profile(family) {
                Some(p) => {
                    p.learn(who, sent, fp, sdp);
                    p
                }
                None => return,
            }
        } else {
            match self.profiles.get_mut(&family) {
                Some(p) => p,
                None => return,
            }
        };
        let min = cfg.learn_min_accounts.max(1);
        let learned = match sent {
            Sent::Register => &p.learned,
            Sent::Invite => &p.learned_calls,
        };
        let known = p.shipped.contains(&fp) || learned.get(&fp).is_some_and(|s| s.len() >= min);
        let sdp_known = sdp == 0
            || p.sdp.get(&sdp).is_some_and(|s| s.len() >= min)
            || !p.sdp.values().any(|s| s.len() >= min);
        if known && sdp_known {
            return; // (the common case, decided without looking at the whole profile)
        }
        let has_profile = !p.shipped.is_empty() || learned.values().any(|s| s.len() >= min);
        if (known || !has_profile) && sdp_known {
            return;
        }
        let n = p.shipped.len() + learned.values().filter(|s| s.len() >= min).count();
        let family = ua_family(ua);
        let summary = if known || !has_profile {
            format!("claims to be {family} but writes its offers unlike the known {family} clients")
        } else {
            format!(
                "claims to be {family} but writes SIP unlike any of the {n} known {family} fingerprints"
            )
        };
        if !self.imitators.contains(account) && self.imitators.len() < self.cfg.max_subjects {
            self.imitators.insert(account.to_string());
            // (suspect now: its window is read again at its next finished attempt)
            let key = self.id(account);
            if let Some(a) = self.accounts.get_mut(&key) {
                a.unassessed = usize::MAX;
            }
        }
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

    /// The profile of the family `key`, made when missing (at most 1024 families).
    pub(super) fn profile(&mut self, key: u64) -> Option<&mut Profile> {
        let full = self.profiles.len() >= 1024;
        match self.profiles.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if full => None,
            std::collections::hash_map::Entry::Vacant(e) => Some(e.insert(Profile::default())),
        }
    }
}

impl Profile {
    /// An account in good standing (`who`, by `Detector::id`) taught the family that its
    /// clients write `fp` in the request `sent` (and offers with habits `sdp`, unless 0).
    pub(super) fn learn(&mut self, who: u64, sent: Sent, fp: u64, sdp: u64) {
        let learned = match sent {
            Sent::Register => &mut self.learned,
            Sent::Invite => &mut self.learned_calls,
        };
        add_to(learned, fp, who);
        if sdp != 0 {
            add_to(&mut self.sdp, sdp, who);
        }
    }
}

/// `n` in decimal, as `Display` writes it (without `core::fmt`).
pub(super) fn push_dec(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `who` joins the accounts that use `key` (both bounded).
fn add_to(map: &mut HashMap<u64, HashSet<u64>>, key: u64, who: u64) {
    if let Some(s) = map.get_mut(&key) {
        if s.len() < PROFILE_CAP {
            s.insert(who);
        }
    } else if map.len() < PROFILE_CAP {
        map.insert(key, HashSet::from_iter([who]));
    }
}

#[cfg(test)]
mod push_dec_tests {
    #[test]
    fn writes_as_display() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            1234,
            3600,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut s = String::from("x");
            super::push_dec(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }
}
