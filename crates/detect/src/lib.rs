//! # palisade-detect: see a campaign while it runs
//!
//! The core reports what happens to calls and registrations as [`Observation`]s (cheap
//! values, made on its thread); the server's detection thread feeds them to a
//! [`Detector`], which assembles them into [`CallRecord`]s and [`RegistrationRecord`]s
//! for the store and runs the detectors over them. A detector that fires produces a
//! [`Finding`] (kind, subject, score, the records it rests on) and, when its configured
//! response is not `alert`, a [`Restriction`] that the core applies to later requests.
//!
//! Detectors (see [`Config`] for every threshold and window):
//! - **ring-and-cancel sweep** (`sweep`): an account whose calls (and texts) reach many
//!   distinct callees, mostly cancelled before answer or after a short ring, with no
//!   counter-evidence (answers, talk, callees calling back): a call centre is answered
//!   most of the time and is never restricted;
//! - **new account calling strangers** (`strangers`): the same behavioural test over the
//!   calls of an account created recently to users it never had a call with; newness
//!   only lowers the breadth needed (see `detector/calls.rs` for the scoring);
//! - **account farm** (`farm`): many new accounts first seen from one network (/24, /64)
//!   or one device fingerprint in a short time — context, so always an alert;
//! - **imitation** (`imitation`): a client that claims a User-Agent family whose known
//!   wire fingerprints ([`fingerprint`]) and offer habits do not include its own, whatever
//!   its account's age (profiles are shipped, or learned from accounts in good standing);
//! - **scanners** (`scanner`, `enumeration`, `password-guessing`, `flood`): known scanner
//!   signatures, many user names probed, authentication failures, answer-budget floods,
//!   per source network;
//! - **repeated refusals** (`refusals`): shield or protected-user refusals from one
//!   account or network;
//! - **media abuse** (`media`): media streams the relay cut for malformed packets, by
//!   the caller's account when the cut stream was an authenticated caller's, else by
//!   the source's network.
//!
//! Subjects are an account, a device fingerprint or a source network, never a single IP
//! address. All state is bounded ([`Config::max_subjects`]) and driven by the times in
//! the observations (Unix milliseconds): no clock, no I/O, deterministic in tests.

mod config;
mod detector;
pub mod fingerprint;
mod model;
mod scanner;
mod time;

pub use config::*;
pub use detector::Detector;
pub use fingerprint::{
    fingerprint, fingerprint_unfolded, scanner_signature, sdp_habits, ua_family, ScannerMemo,
};
pub use model::*;
pub use time::{parse_time, rfc3339};
