//! The detectors: per-subject sliding windows over the observations, findings and the
//! restrictions they lead to. See the crate documentation for what each one looks for.

use std::collections::VecDeque;

/// The detector's tables: aHash with per-process random keys (the keys are account and
/// user names and numbers from the network; SipHash was a third of the detector's
/// instructions per call, and every table is bounded by `max_subjects`).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
type HashSet<K> = std::collections::HashSet<K, ahash::RandomState>;
use std::hash::{Hash, Hasher};

use crate::config::*;
use crate::fingerprint::ua_family;
use crate::model::*;

/// An attempt (call or message) as the call detectors remember it, from its start.
struct Summary {
    at: Millis,
    id: u64,
    callee: u64,
    /// The caller and callee had no call before (either direction).
    stranger: bool,
    /// A final answer came (a message is done when it is sent).
    done: bool,
    answered: bool,
    /// Cancelled before answer or after a short ring; a message (no conversation).
    short: bool,
    talk_ms: Option<Millis>,
    /// The callee has called (or written to) the caller since.
    called_back: bool,
}

#[derive(Default)]
struct AccountState {
    last: Millis,
    /// The account's attempts in the longest of the call detectors' windows.
    calls: VecDeque<Summary>,
    /// Attempts finished since the call detectors last assessed the account (see
    /// `calls.rs`, `finish`).
    unassessed: usize,
    /// A call detector found it: every attempt is assessed (its finding's evidence
    /// stays whole).
    found: bool,
    refusals: VecDeque<(Millis, String)>,
    cuts: VecDeque<media::Cut>,
}

#[derive(Default)]
struct NetState {
    last: Millis,
    probes: VecDeque<(Millis, ProbeKind, u64, String)>,
    new_accounts: VecDeque<(Millis, String, u64)>,
    refusals: VecDeque<(Millis, String)>,
    cuts: VecDeque<media::Cut>,
}

#[derive(Default)]
struct DeviceState {
    last: Millis,
    new_accounts: VecDeque<(Millis, String, u64)>,
}

#[derive(Default)]
struct Profile {
    /// Shipped fingerprints (`dist/profiles.toml`): of either request.
    shipped: HashSet<u64>,
    /// Fingerprint of a REGISTER -> the accounts (by `Detector::id`) in good standing
    /// that sent it.
    learned: HashMap<u64, HashSet<u64>>,
    /// The same for INVITEs. Learned apart: a stack may order its headers one way in a
    /// REGISTER and another in an INVITE (SIPp's two scenario files do), and a call must
    /// not be judged on what only registrations taught, or the family's first callers
    /// would be taken for imitations of it.
    learned_calls: HashMap<u64, HashSet<u64>>,
    /// How the family's offers are written (SDP habits), learned like `learned`.
    sdp: HashMap<u64, HashSet<u64>>,
}

/// Which request a fingerprint was taken from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Sent {
    Register,
    Invite,
}

/// Most entries in one subject's window (older ones are dropped first).
const WINDOW_CAP: usize = 4096;
/// Most fingerprints learned per family, and accounts remembered per fingerprint.
const PROFILE_CAP: usize = 64;
/// How long a finding stays current (updated rather than raised again).
const FINDING_TTL: Millis = 86_400_000;
/// How often a finding that keeps growing is written out again (its first version is
/// written when it is raised, and the last at shutdown).
const FINDING_WRITE_EVERY: Millis = 5_000;
/// Calls without a final answer, and answered calls without a BYE, are forgotten after
/// this long (their record stays as last written).
const CALL_TTL: Millis = 6 * 3_600_000;

fn h(v: impl Hash) -> u64 {
    // Fixed keys: the values hashed come from authenticated accounts and user names;
    // the maps they key are bounded in size, so collisions cost accuracy, not memory.
    // (FNV-1a, the fingerprints' hash: fixed, so values hash alike across restarts)
    let mut f = crate::fingerprint::Fnv::new();
    v.hash(&mut f);
    f.finish()
}

fn pair(a: &str, b: &str) -> u64 {
    if a <= b {
        h((a, b))
    } else {
        h((b, a))
    }
}

fn trim<T>(q: &mut VecDeque<T>, at: impl Fn(&T) -> Millis, since: Millis) {
    while q.front().is_some_and(|x| at(x) < since) || q.len() > WINDOW_CAP {
        q.pop_front();
    }
}

fn secs(s: u64) -> Millis {
    (s as Millis).saturating_mul(1000)
}

/// The detectors and the records they assemble (see the crate documentation).
pub struct Detector {
    cfg: Config,
    next_call: u64,
    next_reg: u64,
    next_finding: u64,
    live: HashMap<u64, CallRecord>,
    answered: HashMap<String, CallRecord>,
    /// By account (its `h`).
    accounts: HashMap<u64, AccountState>,
    networks: HashMap<Network, NetState>,
    devices: HashMap<u64, DeviceState>,
    created: HashMap<String, Millis>,
    first_seen: HashMap<String, Millis>,
    reg_seen: HashMap<u64, (Millis, Millis)>,
    /// At most the oldest `last` in `reg_seen` (`Millis::MAX` when it is empty): the
    /// tick looks through it only when something may have expired.
    reg_seen_oldest: Millis,
    pairs: HashSet<u64>,
    /// By family (the key of `fingerprint::family_key`).
    profiles: HashMap<u64, Profile>,
    /// Accounts whose behaviour vouches for them (see `calls.rs`): they teach profiles.
    standing: HashSet<u64>,
    /// What accounts without standing were seen to write: (family key, request,
    /// fingerprint, SDP habits), learned once they earn standing.
    unvetted: HashMap<u64, Vec<(u64, Sent, u64, u64)>>,
    /// Accounts named by a current imitation finding (behavioural evidence).
    imitators: HashSet<String>,
    /// Accounts under a current restricting finding (they teach nothing).
    restricted: HashSet<u64>,
    active: HashMap<(FindingKind, Subject), Active>,
    /// Keys of the per-account state (`Detector::id`): random per detector, so that no
    /// account name can be chosen to share another's state (standing above all).
    ids: ahash::RandomState,
    /// When updated findings were last written out (see [`FINDING_WRITE_EVERY`]).
    findings_written: Millis,
    out: Vec<Output>,
    /// Observations not fully tracked because a table was at `max_subjects`.
    pub overflow: u64,
    /// Windows the call detectors read (`calls.rs`, `assess`), since start.
    pub assessments: u64,
    /// Windows walked to mark calls returned (`calls.rs`, `track_start`), since start.
    pub reciprocity_walks: u64,
    /// The share of its window after which an account is assessed again
    /// ([`calls::ASSESS_EVERY_SHARE`]; the tests compare with every attempt).
    assess_share: usize,
}

impl Detector {
    /// A detector; `next_ids` are the first free (call, registration, finding) numbers
    /// of the store.
    pub fn new(cfg: Config, next_ids: (u64, u64, u64)) -> Self {
        Detector {
            cfg,
            next_call: next_ids.0.max(1),
            next_reg: next_ids.1.max(1),
            next_finding: next_ids.2.max(1),
            live: HashMap::default(),
            answered: HashMap::default(),
            accounts: HashMap::default(),
            networks: HashMap::default(),
            devices: HashMap::default(),
            created: HashMap::default(),
            first_seen: HashMap::default(),
            reg_seen: HashMap::default(),
            reg_seen_oldest: Millis::MAX,
            pairs: HashSet::default(),
            profiles: HashMap::default(),
            standing: HashSet::default(),
            unvetted: HashMap::default(),
            imitators: HashSet::default(),
            restricted: HashSet::default(),
            active: HashMap::default(),
            ids: ahash::RandomState::new(),
            findings_written: Millis::MIN,
            out: Vec::new(),
            overflow: 0,
            assessments: 0,
            reciprocity_walks: 0,
            assess_share: calls::ASSESS_EVERY_SHARE,
        }
    }

    /// Replaces the thresholds, windows and responses (a configuration reload); what
    /// the detectors remember is kept.
    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Tells when each account was created (Unix ms); replaces what was known.
    pub fn set_accounts(&mut self, created: impl IntoIterator<Item = (String, Millis)>) {
        self.created = created.into_iter().collect();
        // every account is first seen once: room for them all (bounded as the map is)
        let more = self
            .created
            .len()
            .min(self.cfg.max_subjects)
            .saturating_sub(self.first_seen.len());
        self.first_seen.reserve(more);
    }

    /// Restores from the store: an account's first registration.
    pub fn restore_first_seen(&mut self, account: String, at: Millis) {
        if self.first_seen.len() < self.cfg.max_subjects {
            let e = self.first_seen.entry(account).or_insert(at);
            *e = (*e).min(at);
        }
    }

    /// Restores from the store: `a` and `b` had a call (either direction).
    pub fn restore_pair(&mut self, a: &str, b: &str) {
        if self.pairs.len() < self.cfg.max_subjects.saturating_mul(4) {
            self.pairs.insert(pair(a, b));
        }
    }

    /// Restores from the store: a current finding (updated instead of raised again).
    pub fn restore_finding(&mut self, f: Finding) {
        self.active
            .insert((f.kind, f.subject.clone()), Active::new(f, false));
    }

    /// A fingerprint shipped in the profiles file for a User-Agent family.
    pub fn add_profile(&mut self, family: &str, fingerprint: u64) {
        if let Some(key) = crate::fingerprint::family_key(family) {
            self.profiles
                .entry(key)
                .or_default()
                .shipped
                .insert(fingerprint);
        }
    }

    /// What the detector has for the store and the core since the last call.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.drain(..)
    }

    /// Subjects tracked: (accounts, networks, devices, calls in progress or awaiting
    /// their BYE, active findings).
    pub fn tracked(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.accounts.len(),
            self.networks.len(),
            self.devices.len(),
            self.live.len() + self.answered.len(),
            self.active.len(),
        )
    }

    fn is_new(&self, account: &str, now: Millis) -> bool {
        let new_for = secs(self.cfg.new_accounts.new_for_s);
        match self.created.get(account) {
            Some(&c) => now - c < new_for,
            None => self
                .first_seen
                .get(account)
                .is_none_or(|&f| now - f < new_for),
        }
    }

    /// Takes one observation.
    pub fn observe(&mut self, o: Observation) {
        match o {
            Observation::CallStart(c) => self.call_start(c),
            Observation::CallStatus { key, at, status } => self.call_status(key, at, status),
            Observation::CallEnd { call_id, at } => self.call_end(&call_id, at),
            Observation::Registered(r) => self.registered(r),
            Observation::Probe(p) => self.probe(p),
            Observation::Refused {
                at,
                source,
                account,
                kind,
            } => self.refused(at, source, account, kind),
            Observation::MediaCut(c) => self.media_cut(c),
        }
    }

    /// The calls in progress: attempts without a final response yet, then answered
    /// calls not yet ended (observed calls only: an authenticated caller to a local
    /// user).
    pub fn calls_in_progress(&self) -> impl Iterator<Item = &CallRecord> {
        self.live
            .values()
            .filter(|c| c.status.is_none() && !c.message)
            .chain(self.answered.values())
    }

    /// Outputs the calls still in progress, and the answered calls not yet ended, as
    /// they are (at shutdown).
    pub fn flush_in_progress(&mut self) {
        self.write_dirty_findings();
        let out = &mut self.out;
        out.extend(self.live.values().cloned().map(Output::Call));
        out.extend(self.answered.values().cloned().map(Output::Call));
    }

    fn write_dirty_findings(&mut self) {
        for a in self.active.values_mut() {
            if std::mem::take(&mut a.dirty) {
                self.out.push(if std::mem::take(&mut a.lists_dirty) {
                    Output::Finding(a.f.clone())
                } else {
                    Output::FindingUpdate(FindingUpdate {
                        id: a.f.id,
                        score: a.f.score,
                        updated_at: a.f.updated_at,
                        action: a.f.action,
                        summary: a.f.summary.clone(),
                    })
                });
            }
        }
    }

    /// Time passes: evicts what is idle, writes updated findings.
    pub fn tick(&mut self, now: Millis) {
        let longest = [
            self.cfg.sweep.window_s,
            self.cfg.new_accounts.window_s,
            self.cfg.scan.window_s,
            self.cfg.refusals.window_s,
            self.cfg.media.window_s,
        ]
        .into_iter()
        .max()
        .unwrap_or(3600);
        let idle = now - secs(longest);
        self.accounts.retain(|_, a| a.last >= idle);
        self.networks.retain(|_, n| n.last >= idle);
        self.devices.retain(|_, d| d.last >= idle);
        let stale = now - CALL_TTL;
        let out = &mut self.out;
        self.live.retain(|_, c| {
            let keep = c.invite_at >= stale;
            if !keep {
                out.push(Output::Call(c.clone()));
            }
            keep
        });
        self.answered.retain(|_, c| {
            let keep = c.answered_at.unwrap_or(c.invite_at) >= stale;
            if !keep {
                out.push(Output::Call(c.clone()));
            }
            keep
        });
        let forgotten = now - 86_400_000;
        if self.reg_seen_oldest < forgotten {
            let mut oldest = Millis::MAX;
            self.reg_seen.retain(|_, (last, _)| {
                let keep = *last >= forgotten;
                if keep {
                    oldest = oldest.min(*last);
                }
                keep
            });
            self.reg_seen_oldest = oldest;
        }
        self.active
            .retain(|_, a| a.f.updated_at >= now - FINDING_TTL);
        // A growing finding (a farm of a thousand accounts) is rewritten whole: at most
        // every FINDING_WRITE_EVERY, not at every tick.
        if now.saturating_sub(self.findings_written) >= FINDING_WRITE_EVERY {
            self.findings_written = now;
            self.write_dirty_findings();
        }
    }

    fn account(&mut self, name: &str, at: Millis) -> Option<&mut AccountState> {
        let full = self.accounts.len() >= self.cfg.max_subjects;
        let a = match self.accounts.entry(self.id(name)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(_) if full => {
                self.overflow += 1;
                return None;
            }
            std::collections::hash_map::Entry::Vacant(e) => e.insert(AccountState::default()),
        };
        a.last = a.last.max(at);
        Some(a)
    }

    /// The key of `account`'s state (standing, restriction, what it wrote unvetted, its
    /// calls): a keyed hash, unlike `h` (whose collisions cost only accuracy).
    fn id(&self, account: &str) -> u64 {
        self.ids.hash_one(account)
    }

    fn network(&mut self, n: Network, at: Millis) -> Option<&mut NetState> {
        if !self.networks.contains_key(&n) && self.networks.len() >= self.cfg.max_subjects {
            self.overflow += 1;
            return None;
        }
        let s = self.networks.entry(n).or_default();
        s.last = s.last.max(at);
        Some(s)
    }

    /// Records a finding, or adds to the current one about the same subject (`build`
    /// gives the accounts and records it names; told `true` for an update, it may give
    /// only the newest of each, last); a new
    /// finding (or one whose restriction has run out) with a response other than
    /// `alert` yields a restriction.
    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        kind: FindingKind,
        subject: Subject,
        (first, at): (Millis, Millis),
        score: f64,
        build: impl FnOnce(&Self, bool) -> (Vec<String>, Vec<Evidence>),
        summary: String,
        resp: Response,
    ) {
        let key = (kind, subject.clone());
        let until = at + secs(resp.duration_s);
        let restrict = |id: u64| Restriction {
            subject: subject.clone(),
            until,
            per_minute: (resp.action == ActionKind::Limit).then_some(resp.limit_per_minute),
            finding: id,
        };
        // An update needs only what is new since the last observation (the newest
        // account and record, last in the lists `build` makes); a new finding all of it.
        // An update of a finding whose lists are full adds nothing: not built at all
        // (a farm past MAX_EVIDENCE accounts still grows by one at every registration).
        let (exists, full) = match self.active.get(&key) {
            Some(a) => (
                true,
                a.f.accounts.len() >= MAX_EVIDENCE && a.f.records.len() >= MAX_EVIDENCE,
            ),
            None => (false, false),
        };
        let (accounts, evidence) = if full {
            (Vec::new(), Vec::new())
        } else {
            build(self, exists)
        };
        if let Some(Active {
            f,
            dirty,
            lists_dirty,
            accounts: seen_accounts,
            records: seen_records,
        }) = self.active.get_mut(&key)
        {
            f.score = f.score.max(score);
            f.updated_at = at;
            f.summary = summary;
            // (what the finding lists is looked up by hash, not searched: an update
            // costs the same with one account as with MAX_EVIDENCE)
            for a in accounts {
                if f.accounts.len() < MAX_EVIDENCE && seen_accounts.insert(h(&a)) {
                    f.accounts.push(a);
                    *lists_dirty = true;
                }
            }
            for e in evidence {
                if f.records.len() < MAX_EVIDENCE && seen_records.insert(h(&e)) {
                    f.records.push(e);
                    *lists_dirty = true;
                }
            }
            *dirty = true;
            // A restriction that ran out while the subject went on is applied again.
            let expired = f.detected_at + secs(resp.duration_s) <= at;
            if resp.action != ActionKind::Alert && expired {
                f.detected_at = at;
                let r = restrict(f.id);
                self.out.push(Output::Finding(f.clone()));
                *dirty = false;
                *lists_dirty = false;
                self.out.push(Output::Restrict(r));
            }
            return;
        }
        let id = self.next_finding;
        self.next_finding += 1;
        let mut accounts = accounts;
        accounts.truncate(MAX_EVIDENCE);
        let mut records = evidence;
        records.truncate(MAX_EVIDENCE);
        let f = Finding {
            id,
            kind,
            subject: subject.clone(),
            score,
            first_seen: first,
            detected_at: at,
            updated_at: at,
            action: resp.action,
            accounts,
            records,
            summary,
        };
        self.out.push(Output::Finding(f.clone()));
        if resp.action != ActionKind::Alert {
            self.out.push(Output::Restrict(restrict(id)));
        }
        self.active.insert(key, Active::new(f, false));
    }
}

/// A current finding, with the hashes of the accounts and records it lists (so that an
/// update does not search the lists).
struct Active {
    f: Finding,
    /// Changed since it was last written out.
    dirty: bool,
    /// Its lists changed since it was last written out whole (otherwise a change is
    /// written as a [`FindingUpdate`]).
    lists_dirty: bool,
    accounts: HashSet<u64>,
    records: HashSet<u64>,
}

impl Active {
    fn new(f: Finding, dirty: bool) -> Self {
        let accounts = f.accounts.iter().map(h).collect();
        let records = f.records.iter().map(h).collect();
        Active {
            f,
            dirty,
            lists_dirty: false,
            accounts,
            records,
        }
    }
}

mod calls;
mod devices;
mod media;
mod scan;

#[cfg(test)]
mod tests;
