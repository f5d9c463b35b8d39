//! # palisade-sip: the SIP message layer
//!
//! Everything Palisade knows about a SIP message comes through this crate. It turns bytes
//! into a typed [`Message`] and a [`Message`] back into one canonical byte form, and it
//! does nothing else: no sockets, no clocks, no storage.
//!
//! Why it is strict: Palisade stands between untrusted callers and the devices it serves,
//! so a byte that this crate did not understand must never be carried further. The parser
//! therefore follows the RFC 3261 section 25 grammar (with RFC 5118 for IPv6 and the
//! RFC 4475 torture cases as the yardstick), bounds every dimension of a message by a
//! named [`Limits`] value, and reports each refusal as a [`ParseError`] that carries the
//! byte offset, the header concerned and the SIP status code a server should answer.
//!
//! Why it borrows: a parsed [`Message`] borrows its text from the input buffer
//! (`Cow<'a, str>`), so parsing allocates only the vectors that hold headers and
//! parameters, not the strings. Messages that must outlive the buffer are turned into
//! `Message<'static>` with [`Message::into_owned`].
//!
//! Two entry points read bytes: [`parse_datagram`] for one message in one datagram
//! (octets beyond Content-Length are ignored, RFC 4475 `dblreq`) and [`frame_stream`],
//! the incremental framer for TCP and TLS. [`Message::to_bytes`] writes the canonical form;
//! its defining property, tested with generated messages, is
//! `parse(write(m)) == m` and `write(parse(write(m))) == write(m)`.

mod error;
mod header;
mod header_value;
mod host;
mod limits;
mod message;
mod names;
mod parse;
pub mod sanity;
mod scan;
mod status;
mod text;
mod uri;

pub use error::{ErrorKind, ParseError};
pub use header::{CSeq, Contact, Credentials, Header, MediaType, Method, NameAddr, Via, Warning};
pub use host::dotted_quad;
pub use limits::Limits;
pub use message::{Message, Received, StartLine};
pub use parse::{frame_stream, parse_datagram, Frame};
pub use scan::unescape_quoted;
pub use status::{reason_phrase, StatusCode};
pub use text::{push_hex, push_num};
pub use uri::{Host, Param, SipUri, TelUri, Uri};

/// Unescapes `%HH` sequences. Input that this crate parsed has only valid escapes; an
/// invalid one is kept literally rather than guessed at.
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, [u8]> {
    scan::percent_decode(s)
}

/// Parses a URI on its own (as stored in a binding or configured as a route).
pub fn parse_uri<'a>(s: &'a str, limits: &Limits) -> Result<Uri<'a>, ParseError> {
    uri::parse_uri(s, 0, limits)
}
