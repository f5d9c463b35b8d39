//! Hold until answer: whether a call's media may flow, and when it is dead.
//!
//! The decision is a pure function of the call's state, the packet's direction and the
//! operator's early-media policy ([`forwards`]); [`CallMedia`] keeps that state for one
//! call, counts what it forwarded and held, and watches for silence after the answer.
//! Before the answer nothing flows toward the callee, ever: a call that is never
//! answered (cancelled, refused, timed out) delivers no media packet to the callee.

use std::time::{Duration, Instant};

/// Default silence after which an answered call's media is dead (rtpengine and
/// rtpproxy default to 60 s as well).
pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(60);

/// The operator's early-media policy (`[media] early`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EarlyMedia {
    /// Nothing before the answer (`"none"`, the default).
    #[default]
    None,
    /// Ring-back tones and announcements from the callee before the answer
    /// (`"callee-to-caller"`); nothing from the caller.
    CalleeToCaller,
}

/// Which way a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the caller toward the callee.
    CallerToCallee,
    /// From the callee toward the caller.
    CalleeToCaller,
}

/// Why a call's media ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// BYE.
    Bye,
    /// CANCEL before the answer.
    Cancel,
    /// A final failure response.
    Failure,
    /// A signalling timeout (no answer in time).
    Timeout,
    /// No media for the media timeout after the answer.
    MediaTimeout,
}

/// A call's media state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Offered, not answered (provisional responses, early dialogs).
    Setup,
    /// Answered (2xx to the INVITE).
    Answered,
    /// Over.
    Ended(EndReason),
}

/// Whether a packet going `direction` may be forwarded in `state` under `early`.
pub fn forwards(state: CallState, direction: Direction, early: EarlyMedia) -> bool {
    match state {
        CallState::Setup => {
            early == EarlyMedia::CalleeToCaller && direction == Direction::CalleeToCaller
        }
        CallState::Answered => true,
        CallState::Ended(_) => false,
    }
}

/// Reported once by [`CallMedia::handle_timeout`] when an answered call's media died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaDead {
    /// The last forwarded packet, or the answer if nothing came after it.
    pub since: Instant,
}

/// One call's media gate.
#[derive(Clone, Debug)]
pub struct CallMedia {
    state: CallState,
    early: EarlyMedia,
    timeout: Duration,
    /// The answer, then the last forwarded packet.
    active: Option<Instant>,
    forwarded: [u64; 2],
    held: [u64; 2],
}

fn slot(direction: Direction) -> usize {
    match direction {
        Direction::CallerToCallee => 0,
        Direction::CalleeToCaller => 1,
    }
}

impl CallMedia {
    /// A call just offered.
    pub fn new(early: EarlyMedia, timeout: Duration) -> Self {
        Self {
            state: CallState::Setup,
            early,
            timeout,
            active: None,
            forwarded: [0; 2],
            held: [0; 2],
        }
    }

    /// The state.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// The call was answered (a second answer changes nothing; an ended call stays
    /// ended).
    pub fn answer(&mut self, now: Instant) {
        if self.state == CallState::Setup {
            self.state = CallState::Answered;
            self.active = Some(now);
        }
    }

    /// The call ended (the first reason is kept).
    pub fn end(&mut self, reason: EndReason) {
        if !matches!(self.state, CallState::Ended(_)) {
            self.state = CallState::Ended(reason);
        }
    }

    /// A new media timeout (e.g. a longer one while the call is on hold).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether an accepted packet going `direction` may be forwarded now; counts it
    /// either way and, after the answer, notes the activity.
    pub fn forward(&mut self, now: Instant, direction: Direction) -> bool {
        let pass = forwards(self.state, direction, self.early);
        let counters = if pass {
            &mut self.forwarded
        } else {
            &mut self.held
        };
        if let Some(n) = counters.get_mut(slot(direction)) {
            *n = n.saturating_add(1);
        }
        if pass && self.state == CallState::Answered {
            self.active = Some(now);
        }
        pass
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            CallState::Answered => self.active?.checked_add(self.timeout),
            _ => None,
        }
    }

    /// Ends the call's media if it has been silent for the timeout; reports it once.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<MediaDead> {
        let deadline = self.poll_timeout()?;
        if now < deadline {
            return None;
        }
        self.state = CallState::Ended(EndReason::MediaTimeout);
        Some(MediaDead {
            since: self.active.unwrap_or(now),
        })
    }

    /// Packets forwarded going `direction`.
    pub fn forwarded(&self, direction: Direction) -> u64 {
        self.forwarded.get(slot(direction)).copied().unwrap_or(0)
    }

    /// Packets held (not forwarded) going `direction`.
    pub fn held(&self, direction: Direction) -> u64 {
        self.held.get(slot(direction)).copied().unwrap_or(0)
    }
}
