//! # palisade-sdp: session descriptions, strictly
//!
//! The "call settings" of a call offer are SDP (RFC 8866). This crate parses them into a
//! typed model and writes them back in one canonical form, so that what reaches a callee
//! is re-emitted from the model and never the caller's bytes. It is strict on purpose:
//! unknown type letters refuse the description (RFC 8866 section 5), every attribute
//! the model knows is checked against its own grammar, and every dimension is bounded
//! by a named [`Limits`] value whose error names it. Attributes it does not know are
//! kept as [`Attribute::Other`] so that policy (the shield) decides about them.

mod attr;
mod model;
mod parse;
mod scan;

pub use attr::{Attribute, Candidate, Direction};
pub use model::{Bandwidth, Connection, Media, Origin, Session, Timing};
pub use parse::{parse, Limits, SdpError};
pub use scan::ip;
