//! The detectors' configuration (`[detect]` in the server's file): per detector its
//! thresholds, window and response.

use serde::Deserialize;

use crate::model::ActionKind;

/// One detector's response.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Response {
    /// `alert`, `rate-limit` or `block`.
    pub action: ActionKind,
    /// How long a block or limit lasts (seconds).
    pub duration_s: u64,
    /// Calls a minute under `rate-limit`.
    pub limit_per_minute: u32,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            action: ActionKind::Alert,
            duration_s: 3600,
            limit_per_minute: 2,
        }
    }
}

fn response(action: ActionKind, duration_s: u64) -> Response {
    Response {
        action,
        duration_s,
        ..Response::default()
    }
}

/// Thresholds of the sweep detector.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SweepConfig {
    /// On or off.
    pub enabled: bool,
    /// Window (seconds) over an account's finished calls.
    pub window_s: u64,
    /// Distinct callees in the window at and above which it may fire.
    pub min_callees: usize,
    /// Answer ratio (answered / finished) at or below which it may fire.
    pub max_answer_ratio: f64,
    /// Share of calls cancelled before answer (or after a short ring) at and above
    /// which it may fire.
    pub min_short_ratio: f64,
    /// A cancel after at most this much ringing (ms) is "short".
    pub short_ring_ms: i64,
    /// Mean talk time (s) of answered calls at and above which a borderline answer
    /// ratio (up to twice `max_answer_ratio`) counts as legitimate.
    pub counter_talk_s: u64,
    /// Share of the distinct callees who called (or wrote) back at and above which the
    /// account is not restricted (reciprocity is counter-evidence).
    pub max_callback_ratio: f64,
    /// Response.
    pub response: Response,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            enabled: true,
            window_s: 600,
            min_callees: 20,
            max_answer_ratio: 0.2,
            min_short_ratio: 0.5,
            short_ring_ms: 15_000,
            counter_talk_s: 30,
            max_callback_ratio: 0.2,
            response: response(ActionKind::Block, 3600),
        }
    }
}

/// Thresholds of the new-account detectors (farm and strangers).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewAccountConfig {
    /// On or off.
    pub enabled: bool,
    /// An account created (or, when its creation time is unknown, first seen) less than
    /// this long ago (seconds) is new.
    pub new_for_s: u64,
    /// Window (seconds).
    pub window_s: u64,
    /// Farm: new accounts first seen from one network or device in the window.
    pub min_accounts: usize,
    /// Strangers: distinct users a new account called in the window that it had no
    /// call with before, in either direction (and whose calls look like a sweep: the
    /// behavioural test of [`SweepConfig`] applies to them).
    pub min_strangers: usize,
    /// Response to a farm: always taken as `alert` (a farm is context, not behaviour:
    /// another action here is ignored; only the duration is used).
    pub farm_response: Response,
    /// Response to a new account calling strangers.
    pub strangers_response: Response,
}

impl Default for NewAccountConfig {
    fn default() -> Self {
        NewAccountConfig {
            enabled: true,
            new_for_s: 7 * 86_400,
            window_s: 3600,
            min_accounts: 5,
            min_strangers: 10,
            farm_response: response(ActionKind::Alert, 3600),
            strangers_response: Response {
                action: ActionKind::Limit,
                duration_s: 3600,
                limit_per_minute: 2,
            },
        }
    }
}

/// Thresholds of the imitation detector.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImitationConfig {
    /// On or off.
    pub enabled: bool,
    /// A fingerprint joins a family's learned profile once this many established (not
    /// new) accounts claiming the family used it.
    pub learn_min_accounts: usize,
    /// Response.
    pub response: Response,
}

impl Default for ImitationConfig {
    fn default() -> Self {
        ImitationConfig {
            enabled: true,
            learn_min_accounts: 3,
            response: response(ActionKind::Alert, 3600),
        }
    }
}

/// Thresholds of the scanner detectors.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// On or off.
    pub enabled: bool,
    /// Window (seconds).
    pub window_s: u64,
    /// Distinct unknown or failed user names from one network in the window.
    pub min_users: usize,
    /// Authentication failures from one network in the window.
    pub min_auth_failures: usize,
    /// Answer-budget floods (at most one per source and 10 s) from one network.
    pub min_floods: usize,
    /// Response to a scanner signature, an enumeration or password guessing.
    pub response: Response,
    /// Response to a flood (the core already stops answering it).
    pub flood_response: Response,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            window_s: 60,
            min_users: 10,
            min_auth_failures: 20,
            min_floods: 3,
            response: response(ActionKind::Block, 600),
            flood_response: response(ActionKind::Alert, 3600),
        }
    }
}

/// Thresholds of the refusal detector.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefusalConfig {
    /// On or off.
    pub enabled: bool,
    /// Window (seconds).
    pub window_s: u64,
    /// Refusals of one account or network in the window.
    pub min_refusals: usize,
    /// Response.
    pub response: Response,
}

impl Default for RefusalConfig {
    fn default() -> Self {
        RefusalConfig {
            enabled: true,
            window_s: 600,
            min_refusals: 5,
            response: response(ActionKind::Alert, 3600),
        }
    }
}

/// Thresholds of the media-abuse detector.
///
/// One cut is enough by default: the relay cuts a stream only after more than 50
/// malformed packets within 10 s from the party the stream latched to (or the address
/// it signalled), which no working phone does; the relay's own cut already stopped that
/// call's stream, and the finding restricts the sender's later calls.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// On or off.
    pub enabled: bool,
    /// Window (seconds).
    pub window_s: u64,
    /// Cut streams of one account or network in the window.
    pub min_cuts: usize,
    /// Response.
    pub response: Response,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            enabled: true,
            window_s: 3600,
            min_cuts: 1,
            response: response(ActionKind::Block, 3600),
        }
    }
}

/// The detectors' configuration (`[detect]` in the server's file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Detection on (the default) or off (no records either).
    pub enabled: bool,
    /// Days of call and registration records kept in the store.
    pub retention_days: u64,
    /// Most subjects (accounts, devices, networks, calls in progress) tracked at once;
    /// the least recently active are evicted beyond it.
    pub max_subjects: usize,
    /// Ring-and-cancel sweeps.
    pub sweep: SweepConfig,
    /// New-account farms and new accounts calling strangers.
    pub new_accounts: NewAccountConfig,
    /// Imitation clients.
    pub imitation: ImitationConfig,
    /// Scanners and floods.
    pub scan: ScanConfig,
    /// Repeated refusals.
    pub refusals: RefusalConfig,
    /// Media streams cut by the relay.
    pub media: MediaConfig,
    /// A TOML file of known fingerprints per User-Agent family (`family = ["16 hex
    /// digits", ...]`), read by the server at start in addition to the profiles it
    /// ships (captured from the real clients of its test suite).
    pub profiles: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            retention_days: 90,
            max_subjects: 100_000,
            sweep: SweepConfig::default(),
            new_accounts: NewAccountConfig::default(),
            imitation: ImitationConfig::default(),
            scan: ScanConfig::default(),
            refusals: RefusalConfig::default(),
            media: MediaConfig::default(),
            profiles: None,
        }
    }
}
