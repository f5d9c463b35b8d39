//! The detectors that look at calls and messages: ring-and-cancel sweeps (any account)
//! and new accounts calling strangers; and standing, the behaviour that vouches for an
//! account (it lets the account teach the imitation detector its client's habits).
//!
//! # Scoring: behaviour decides, context only weighs
//!
//! Both detectors look at one account's attempts (calls and MESSAGEs) in the sweep
//! window and restrict it only on behaviour:
//!
//! - **breadth**: at least `sweep.min_callees` distinct callees (any account), or at
//!   least `new_accounts.min_strangers` distinct callees it never had a call with
//!   (an account created or first seen less than `new_for_s` ago: newness lowers the
//!   breadth needed, it never suffices);
//! - **no answer**: at most `sweep.max_answer_ratio` of the finished attempts answered;
//! - **a sweep's pattern**: at least `sweep.min_short_ratio` of them cancelled before
//!   answer or after a short ring (or, for a text, sent with no reply) — or, standing in
//!   for that pattern, behaviour that is suspect by itself: a current imitation finding
//!   on the account, or a shield / protected-user refusal of it in the window;
//! - **no counter-evidence**: fewer than `sweep.max_callback_ratio` of the callees called
//!   or wrote back (reciprocity), and the answered calls do not talk for
//!   `counter_talk_s` on average while the answer ratio is borderline.
//!
//! The score is `breadth × (1 − answer ratio) × pattern × (1 − callback ratio)`, where
//! breadth is the callees over twice the threshold (capped at 1). A caller with a high
//! fan-out that is answered (a call centre) fails "no answer" and is never restricted,
//! whatever its age, network or client. Farms (many new accounts from one network or
//! device) rest on context alone: always an alert that names no targets.
//!
//! Standing: an account is in good standing once it is established (older than
//! `new_for_s`), or once it has had a call answered — as caller or callee — while no
//! restricting finding names it. Only accounts in standing teach a family's profile.

use super::*;

/// The counts of one account's attempts in the window (all, or to strangers only).
#[derive(Default)]
struct Tally {
    done: usize,
    distinct: usize,
    answered: usize,
    short: usize,
    called_back: usize,
    talk_sum_ms: Millis,
    talks: usize,
}

/// An account's window is assessed again once this share of it (1/16) finished since
/// the last assessment (see `finish`).
pub(super) const ASSESS_EVERY_SHARE: usize = 16;

impl Tally {
    /// Over the attempts since `since` (newest first: the window is the deque's tail).
    fn of(calls: &VecDeque<Summary>, strangers_only: bool, since: Millis) -> Tally {
        let mut t = Tally::default();
        // (sized once for the window: no growth while counting)
        let mut callees = HashSet::with_capacity_and_hasher(calls.len(), Default::default());
        let mut back = HashSet::default();
        for s in calls
            .iter()
            .rev()
            .take_while(|s| s.at >= since)
            .filter(|s| s.done && (s.stranger || !strangers_only))
        {
            t.done += 1;
            callees.insert(s.callee);
            if s.called_back {
                back.insert(s.callee);
            }
            t.answered += usize::from(s.answered);
            t.short += usize::from(s.short);
            if let Some(ms) = s.talk_ms {
                t.talk_sum_ms += ms;
                t.talks += 1;
            }
        }
        t.distinct = callees.len();
        t.called_back = back.len();
        t
    }
}

impl Detector {
    pub(super) fn call_start(&mut self, c: CallStart) {
        let id = self.next_call;
        self.next_call += 1;
        let rec = CallRecord {
            id,
            call_id: c.call_id,
            caller: c.caller,
            callee: c.callee,
            source: c.source,
            transport: c.transport,
            user_agent: c.user_agent,
            fingerprint: c.fingerprint,
            sdp: c.sdp,
            invite_at: c.at,
            ringing_at: None,
            answered_at: None,
            final_at: c.blocked.then_some(c.at),
            ended_at: None,
            status: c.blocked.then_some(403),
            blocked: c.blocked,
            message: c.message,
        };
        if c.blocked {
            // final at once; other calls are written at their final response, at the
            // BYE, or as they are when forgotten or at shutdown (`flush_in_progress`)
            self.out.push(Output::Call(rec));
            return;
        }
        if !c.message {
            // (a MESSAGE is not fingerprinted: profiles are of REGISTERs and INVITEs)
            self.imitation(
                &rec.caller,
                &rec.user_agent,
                (Sent::Invite, rec.fingerprint, rec.sdp),
                c.at,
                Evidence::Call(id),
            );
        }
        self.track_start(&rec, c.at);
        if c.message {
            // A text is done once sent on: written now, assessed now.
            self.finish(&rec, c.at, false, true);
            self.out.push(Output::Call(rec));
            return;
        }
        if self.live.len() < self.cfg.max_subjects {
            self.live.insert(c.key, rec);
        } else {
            self.overflow += 1;
            self.out.push(Output::Call(rec)); // not followed: written as it is
        }
    }

    /// The attempt joins its caller's window; a call back to anyone who called this
    /// caller is their counter-evidence.
    fn track_start(&mut self, rec: &CallRecord, at: Millis) {
        let p = pair(&rec.caller, &rec.callee);
        let known = self.pairs.contains(&p);
        let room = self.pairs.len() < self.cfg.max_subjects.saturating_mul(4);
        if !known && room {
            self.pairs.insert(p);
        }
        // Reciprocity: the callee had called this caller (within its window). Only a
        // pair that had a call before can have one to mark: while the set has room
        // every pair is noted (it never shrinks), so a pair it lacks never called, and
        // the callee's window (up to `WINDOW_CAP` attempts: a trunk's) is not walked.
        if known || !room {
            if let Some(b) = self.accounts.get_mut(&self.id(&rec.callee)) {
                self.reciprocity_walks += 1;
                let me = h(&rec.caller);
                for s in b.calls.iter_mut().filter(|s| s.callee == me) {
                    s.called_back = true;
                }
            }
        }
        if !(self.cfg.sweep.enabled || self.cfg.new_accounts.enabled) {
            return;
        }
        let window = secs(self.cfg.sweep.window_s.max(self.cfg.new_accounts.window_s));
        let callee = h(&rec.callee);
        let Some(a) = self.account(&rec.caller, at) else {
            return;
        };
        a.calls.push_back(Summary {
            at,
            id: rec.id,
            callee,
            stranger: !known,
            done: false,
            answered: false,
            short: false,
            talk_ms: None,
            called_back: false,
        });
        trim(&mut a.calls, |s| s.at, at - window);
    }

    pub(super) fn call_status(&mut self, key: u64, at: Millis, status: u16) {
        let Some(rec) = self.live.get_mut(&key) else {
            return;
        };
        if (180..=189).contains(&status) {
            rec.ringing_at.get_or_insert(at);
            return;
        }
        if status < 200 {
            return;
        }
        let Some(mut rec) = self.live.remove(&key) else {
            return;
        };
        rec.status = Some(status);
        let answered = (200..300).contains(&status);
        if answered {
            rec.answered_at = Some(at);
        } else {
            rec.final_at = Some(at);
        }
        let short = rec.status == Some(487)
            && rec
                .ring_ms()
                .is_none_or(|r| r <= self.cfg.sweep.short_ring_ms);
        self.finish(&rec, at, answered, short);
        // An answered call is written once, at its BYE (or when forgotten, or at
        // shutdown); any other at its final response.
        if answered && self.answered.len() < self.cfg.max_subjects {
            self.answered.insert(rec.call_id.clone(), rec);
        } else {
            self.out.push(Output::Call(rec));
        }
    }

    pub(super) fn call_end(&mut self, call_id: &str, at: Millis) {
        let Some(mut rec) = self.answered.remove(call_id) else {
            return;
        };
        rec.ended_at = Some(at);
        let talk = rec.talk_ms();
        if let Some(a) = self.accounts.get_mut(&self.id(&rec.caller)) {
            if let Some(s) = a.calls.iter_mut().rev().find(|s| s.id == rec.id) {
                s.talk_ms = talk;
            }
        }
        self.out.push(Output::Call(rec));
    }

    /// An attempt has its outcome: standing, then both detectors.
    fn finish(&mut self, rec: &CallRecord, at: Millis, answered: bool, short: bool) {
        if answered {
            self.earn_standing(&rec.caller);
            self.earn_standing(&rec.callee);
        }
        let who = self.id(&rec.caller);
        let Some(a) = self.accounts.get_mut(&who) else {
            return;
        };
        let mut stranger = false;
        if let Some(s) = a.calls.iter_mut().rev().find(|s| s.id == rec.id) {
            s.done = true;
            s.answered = answered;
            s.short = short;
            stranger = s.stranger;
        }
        // (too few attempts kept to reach either breadth: nothing to assess)
        let kept = a.calls.len();
        let (sweep, new) = (self.cfg.sweep, self.cfg.new_accounts);
        if !(sweep.enabled && kept >= sweep.min_callees || new.enabled && kept >= new.min_strangers)
        {
            return;
        }
        // An assessment reads the whole window: once per attempt, an account that calls
        // all the time (a PBX's trunk: thousands in the window) cost the detectors
        // hundreds of thousands of instructions per call. It is assessed again once a
        // sixteenth of its window has finished since the last time, every attempt while
        // it has fewer than 32: a constant share of the window read per attempt, and a
        // pattern noticed at most that many attempts late. One that turns suspect in
        // itself (an imitation, refused offers) is assessed at its next attempt. An
        // account already found keeps that schedule too (an account found but only
        // alerted on may go on calling thousands of times: read whole at every attempt,
        // its window made the detectors' cost per call grow with it); in between, each
        // attempt joins its finding's evidence without a read of the window, and a
        // restriction of it that ran out is applied again at once (`extend_findings`).
        a.unassessed = a.unassessed.saturating_add(1);
        let due = a.unassessed >= (kept / self.assess_share.max(1)).max(1);
        let now = due || (a.found && self.extend_findings(rec, at, stranger));
        if !now {
            return;
        }
        if let Some(a) = self.accounts.get_mut(&who) {
            a.unassessed = 0;
        }
        if sweep.enabled && kept >= sweep.min_callees {
            self.assess(rec, at, false);
        }
        if new.enabled && kept >= new.min_strangers && self.is_new(&rec.caller, at) {
            self.assess(rec, at, true);
        }
    }

    /// A found caller's attempt between assessments: it joins the evidence of the
    /// caller's current sweep and strangers findings (a strangers finding only when the
    /// callee was a stranger and the caller is still new), without a read of the window
    /// (the score and summary are those of the last assessment until the next). Whether
    /// the caller must be assessed now: one of those findings restricts and its
    /// restriction ran out (the assessment applies it again, as before). With no
    /// current finding left, the account is back on the schedule of any other.
    fn extend_findings(&mut self, rec: &CallRecord, at: Millis, stranger: bool) -> bool {
        let subject = Subject::Account(rec.caller.clone());
        let mut current = false;
        let mut lapsed = false;
        // (as an assessment would count the attempt: a detector switched off by a reload
        // adds nothing, and the strangers detector looks only at new accounts)
        let (sweep, new) = (self.cfg.sweep, self.cfg.new_accounts);
        let strangers = new.enabled && stranger && self.is_new(&rec.caller, at);
        for (kind, resp, counts) in [
            (FindingKind::Sweep, sweep.response, sweep.enabled),
            (FindingKind::Strangers, new.strangers_response, strangers),
        ] {
            let Some(a) = self.active.get_mut(&(kind, subject.clone())) else {
                continue;
            };
            current = true;
            if resp.action != ActionKind::Alert && a.f.detected_at + secs(resp.duration_s) <= at {
                lapsed = true;
                continue;
            }
            if !counts {
                continue;
            }
            let e = Evidence::Call(rec.id);
            a.f.updated_at = at;
            a.dirty = true;
            if a.f.records.len() < MAX_EVIDENCE && a.records.insert(h(&e)) {
                a.f.records.push(e);
                a.lists_dirty = true;
            }
        }
        if !current {
            if let Some(a) = self.accounts.get_mut(&self.id(&rec.caller)) {
                a.found = false;
            }
        }
        lapsed
    }

    /// The behavioural test (see the module documentation) over the caller's window:
    /// all its attempts (`sweep`), or those to strangers (`strangers`).
    fn assess(&mut self, rec: &CallRecord, at: Millis, strangers: bool) {
        let cfg = self.cfg.sweep;
        let (window_s, min) = if strangers {
            let n = self.cfg.new_accounts;
            (n.window_s, n.min_strangers)
        } else {
            (cfg.window_s, cfg.min_callees)
        };
        let since = at - secs(window_s);
        self.assessments += 1;
        let Some(a) = self.accounts.get(&self.id(&rec.caller)) else {
            return;
        };
        let t = Tally::of(&a.calls, strangers, since);
        if t.distinct < min.max(1) || t.done == 0 {
            return;
        }
        let asr = t.answered as f64 / t.done as f64;
        let short_ratio = t.short as f64 / t.done as f64;
        let suspect =
            self.imitators.contains(&rec.caller) || a.refusals.back().is_some_and(|r| r.0 >= since);
        let pattern = if suspect { 1.0 } else { short_ratio };
        let callback = t.called_back as f64 / t.distinct as f64;
        let acd_s = if t.talks == 0 {
            0.0
        } else {
            t.talk_sum_ms as f64 / t.talks as f64 / 1000.0
        };
        // Long conversations on a fair share of the calls (at least half the ratio
        // allowed) clear an account too.
        let talked = t.answered > 0
            && acd_s >= cfg.counter_talk_s as f64
            && asr * 2.0 > cfg.max_answer_ratio;
        if asr > cfg.max_answer_ratio
            || pattern < cfg.min_short_ratio
            || callback >= cfg.max_callback_ratio
            || talked
        {
            return;
        }
        let first = a
            .calls
            .iter()
            .find(|s| s.at >= since && s.done && (s.stranger || !strangers))
            .map_or(at, |s| s.at);
        let breadth = (t.distinct as f64 / (2 * min.max(1)) as f64).min(1.0);
        let score = (breadth * (1.0 - asr) * pattern * (1.0 - callback)).clamp(0.0, 1.0);
        let what = if rec.message { "texts" } else { "calls" };
        let why = if suspect && short_ratio < cfg.min_short_ratio {
            "; the account imitates a client or had offers refused"
        } else {
            ""
        };
        let (kind, resp, summary) = if strangers {
            (
                FindingKind::Strangers,
                self.cfg.new_accounts.strangers_response,
                format!(
                    "account created recently: {} {what} to {} users it never had a call with, within {} s: {:.0}% answered, {:.0}% cancelled or unanswered, {:.0}% called back{why}",
                    t.done, t.distinct, window_s, asr * 100.0, short_ratio * 100.0, callback * 100.0
                ),
            )
        } else {
            (
                FindingKind::Sweep,
                cfg.response,
                format!(
                    "{} {what} to {} distinct users in {} s: {:.0}% answered, {:.0}% cancelled before answer or after a short ring, {:.0}% called back{why}",
                    t.done, t.distinct, window_s, asr * 100.0, short_ratio * 100.0, callback * 100.0
                ),
            )
        };
        let (caller, newest) = (rec.caller.clone(), rec.id);
        if let Some(a) = self.accounts.get_mut(&self.id(&caller)) {
            a.found = true;
        }
        if resp.action != ActionKind::Alert && !self.restricted.contains(&self.id(&caller)) {
            self.lose_standing(&caller); // once: updates of the finding change nothing here
        }
        self.raise(
            kind,
            Subject::Account(caller.clone()),
            (first, at),
            score,
            move |d, update| {
                // The attempts it rests on: those of the window that count.
                let evidence = match d.accounts.get(&d.id(&caller)) {
                    Some(a) if !update => a
                        .calls
                        .iter()
                        .filter(|s| s.at >= since && s.done && (s.stranger || !strangers))
                        .map(|s| Evidence::Call(s.id))
                        .collect(),
                    _ => vec![Evidence::Call(newest)],
                };
                (vec![caller], evidence)
            },
            summary,
            resp,
        );
    }

    /// `account` behaved in a way that vouches for it: what it was seen to write joins
    /// the profiles of the families it claimed.
    pub(super) fn earn_standing(&mut self, account: &str) {
        let who = self.id(account);
        if self.standing.contains(&who) || self.restricted.contains(&who) {
            return;
        }
        if self.standing.len() < self.cfg.max_subjects {
            self.standing.insert(who);
        }
        for (family, sent, fp, sdp) in self.unvetted.remove(&who).unwrap_or_default() {
            if let Some(p) = self.profile(family) {
                p.learn(who, sent, fp, sdp);
            }
        }
    }

    /// A restricting finding names `account`: it teaches nothing from now on, and what
    /// it taught is forgotten.
    pub(super) fn lose_standing(&mut self, account: &str) {
        let who = self.id(account);
        self.standing.remove(&who);
        self.unvetted.remove(&who);
        if self.restricted.len() < self.cfg.max_subjects {
            self.restricted.insert(who);
        }
        for p in self.profiles.values_mut() {
            for s in (p.learned.values_mut())
                .chain(p.learned_calls.values_mut())
                .chain(p.sdp.values_mut())
            {
                s.remove(&who);
            }
        }
    }
}
