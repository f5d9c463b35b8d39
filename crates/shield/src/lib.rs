//! # palisade-shield: nothing reaches a device that the server did not understand
//!
//! The 2019 attack this project answers hid code in the *call settings* of call offers and
//! let the signalling servers carry it to phones that never answered. This crate is the
//! answer at the message level: before the proxy forwards a request or relays a response,
//! [`apply`] rebuilds it from the typed model.
//!
//! - The body must be SDP (or `multipart/mixed` whose every part is allowed; or, outside
//!   call offers, a short text body of an allowed type). Anything else is refused with
//!   415, an unknown `Content-Encoding` with 415.
//! - SDP is parsed strictly ([`palisade_sdp`]) and **re-emitted from the model**:
//!   attributes outside the allow-list are dropped (or the offer refused), free-text lines
//!   that carry nothing a device needs (`i= u= e= p= k=`) are dropped, and any grammar or
//!   bound failure refuses the offer with 488 and the reason.
//! - Headers: the ones Palisade types are rewritten canonically by the SIP writer; every
//!   other header is dropped unless allow-listed; each header line and the whole message
//!   are bounded; control characters (legal inside quoted strings) are refused.
//!
//! It does no I/O and keeps no state: the core calls it, and turns what it reports
//! ([`Dropped`] items, a [`Refusal`]) into SIP answers and [`SecurityEvent`]s.

mod body;
mod codecs;
mod headers;
mod policy;
mod residual;
mod typed;
mod vocab;

use palisade_sip::{Message, Method};

pub use policy::{
    NameHasher, NameSet, Policy, TextAction, TextPolicy, UnknownAttribute, DEFAULT_BODY_TYPES,
    DEFAULT_HEADERS, DEFAULT_SDP_ATTRIBUTES,
};
pub use residual::{Residual, FIELD_NAMES as RESIDUAL_FIELDS};
pub use typed::{MAX_ICE_PWD, MAX_ICE_UFRAG, MAX_MID};

/// Something removed from a forwarded message: what kind, its name, and the SHA-256 of
/// the removed bytes (the evidence that lets the content be matched later without keeping
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// What kind of thing was removed.
    pub what: DropKind,
    /// Its name (the header's, the attribute's, or the SDP line's type letter).
    pub name: String,
    /// SHA-256 of the removed bytes.
    pub sha256: [u8; 32],
}

/// What a [`Dropped`] item was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// A header outside the allow-list.
    Header,
    /// An SDP attribute outside the allow-list.
    Attribute,
    /// An SDP free-text line (`i= u= e= p= k=`).
    SdpLine,
}

impl DropKind {
    /// Its name in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::Header => "header",
            DropKind::Attribute => "sdp-attribute",
            DropKind::SdpLine => "sdp-line",
        }
    }
}

/// Why a message may not be forwarded: the SIP status for the sender, a reason naming the
/// rule or bound (never echoing the offending bytes), and the SHA-256 of the refused
/// content (the body when the body was refused, else the whole message as received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The SIP status to answer with.
    pub status: u16,
    /// What was wrong, naming the rule or bound.
    pub reason: String,
    /// SHA-256 of the refused content.
    pub sha256: [u8; 32],
}

impl Refusal {
    /// The reason phrase for the status line.
    pub fn phrase(&self) -> &'static str {
        palisade_sip::reason_phrase(self.status)
    }

    /// Extra headers the answer should carry (RFC 3261 21.4.13: a 415 lists what is
    /// accepted).
    pub fn answer_headers(&self) -> &'static [(&'static str, &'static str)] {
        if self.status == 415 {
            &[
                ("Accept", "application/sdp, multipart/mixed"),
                ("Accept-Encoding", "identity"),
            ]
        } else {
            &[]
        }
    }
}

/// What becomes of a response whose body the shield refuses: one rule for the proxy and
/// for `palisade inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedAnswer {
    /// A provisional is relayed without its body (or not at all, if even that is
    /// refused).
    StripBody,
    /// A 2xx is replaced by 502 toward the caller, and the callee's dialog is ended.
    Replace502,
    /// A final >= 300 is replaced by a response with the same status built by the
    /// server.
    ReplaceSameStatus,
}

impl RefusedAnswer {
    /// What is done with a refused answer of this status.
    pub fn for_status(status: u16) -> RefusedAnswer {
        match status {
            0..=199 => RefusedAnswer::StripBody,
            200..=299 => RefusedAnswer::Replace502,
            _ => RefusedAnswer::ReplaceSameStatus,
        }
    }

    /// The name `inspect --json` shows (`action`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedAnswer::StripBody => "strip-body",
            RefusedAnswer::Replace502 => "replace-502",
            RefusedAnswer::ReplaceSameStatus => "replace",
        }
    }
}

/// What kind of shield decision a [`SecurityEvent`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A request refused (415/488/400/413) before any branch was created.
    OfferRefused,
    /// A response's body refused: a provisional is relayed without it, a 2xx is replaced
    /// by 502 toward the caller and the callee's dialog is ended.
    AnswerRefused,
    /// An ACK carrying a refused body was not relayed.
    AckRefused,
    /// Something removed from a forwarded message.
    Dropped(DropKind),
    /// A call to a protected user from a caller not on the allow-list.
    ProtectedRefused,
    /// Handling a message panicked; the panic was contained and the message dropped
    /// (answered 500 when it was a request).
    Panic,
    /// Events from one source address over its recording budget were counted, not
    /// recorded one by one (`reason` says how many).
    EventsSuppressed,
}

impl EventKind {
    /// Every kind's label, in the order of [`EventKind::slot`] (a metric's label set).
    pub const LABELS: [&'static str; 9] = [
        "offer-refused",
        "answer-refused",
        "ack-refused",
        "header-dropped",
        "sdp-attribute-dropped",
        "sdp-line-dropped",
        "protected-user-refused",
        "panic-contained",
        "events-suppressed",
    ];

    /// This kind's index in [`EventKind::LABELS`].
    pub fn slot(self) -> usize {
        match self {
            EventKind::OfferRefused => 0,
            EventKind::AnswerRefused => 1,
            EventKind::AckRefused => 2,
            EventKind::Dropped(DropKind::Header) => 3,
            EventKind::Dropped(DropKind::Attribute) => 4,
            EventKind::Dropped(DropKind::SdpLine) => 5,
            EventKind::ProtectedRefused => 6,
            EventKind::Panic => 7,
            EventKind::EventsSuppressed => 8,
        }
    }

    /// Its name in events, logs and evidence entries (`offer-refused`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OfferRefused => "offer-refused",
            EventKind::AnswerRefused => "answer-refused",
            EventKind::AckRefused => "ack-refused",
            EventKind::Dropped(DropKind::Header) => "header-dropped",
            EventKind::Dropped(DropKind::Attribute) => "sdp-attribute-dropped",
            EventKind::Dropped(DropKind::SdpLine) => "sdp-line-dropped",
            EventKind::ProtectedRefused => "protected-user-refused",
            EventKind::Panic => "panic-contained",
            EventKind::EventsSuppressed => "events-suppressed",
        }
    }
}

/// One shield decision, in the form the campaign detectors and the evidence log consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// What was decided.
    pub kind: EventKind,
    /// Method of the request, or of the CSeq for a response.
    pub method: String,
    /// `user@host` of From.
    pub caller: String,
    /// `user@host` of To.
    pub callee: String,
    /// Source `transport:ip:port`.
    pub source: String,
    /// Call-ID of the message.
    pub call_id: String,
    /// What was refused or dropped, naming the rule or bound.
    pub reason: String,
    /// SIP status sent because of it, if any.
    pub status: Option<u16>,
    /// SHA-256 of the content the decision was about.
    pub sha256: [u8; 32],
}

impl SecurityEvent {
    /// The event as one JSON object (one line of `security-events.jsonl`), with its
    /// Unix time: `time`, `kind`, `method`, `caller`, `callee`, `source`, `call_id`,
    /// `reason`, `status`, `sha256`.
    pub fn to_json(&self, unix: i64) -> String {
        // Written by hand: serde_json's `json!` builds a map per event, and under an
        // attack every call can carry an event.
        fn field(out: &mut String, key: &str, v: &str) {
            out.push('"');
            out.push_str(key);
            out.push_str("\":\"");
            for c in v.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => {
                        let _ =
                            std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
                    }
                    c => out.push(c),
                }
            }
            out.push_str("\",");
        }
        let mut out = String::with_capacity(320);
        out.push_str("{\"time\":");
        out.push_str(&unix.to_string());
        out.push(',');
        field(&mut out, "kind", self.kind.as_str());
        field(&mut out, "method", &self.method);
        field(&mut out, "caller", &self.caller);
        field(&mut out, "callee", &self.callee);
        field(&mut out, "source", &self.source);
        field(&mut out, "call_id", &self.call_id);
        field(&mut out, "reason", &self.reason);
        out.push_str("\"status\":");
        match self.status {
            Some(s) => out.push_str(&s.to_string()),
            None => out.push_str("null"),
        }
        out.push_str(",\"sha256\":\"");
        palisade_sip::push_hex(&mut out, &self.sha256);
        out.push_str("\"}");
        out
    }
}

/// SHA-256, the digest every event carries.
pub fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(b).into()
}

/// Removes a message's body and the headers that describe it (Content-Type,
/// Content-Encoding, Content-Disposition).
pub fn strip_body(m: &mut Message<'_>) {
    m.body = std::borrow::Cow::Borrowed(&[]);
    m.headers.retain(|h| match h {
        palisade_sip::Header::ContentType(_) | palisade_sip::Header::ContentEncoding(_) => false,
        palisade_sip::Header::Other { name, .. } => {
            !name.eq_ignore_ascii_case("Content-Disposition")
        }
        _ => true,
    });
}

/// Whether the body of this message is (part of) an offer/answer exchange: INVITE,
/// UPDATE, PRACK and ACK requests and their responses.
fn is_offer_answer(msg: &Message<'_>) -> bool {
    let m = match msg.method() {
        Some(m) => m,
        None => match msg.cseq() {
            Some(c) => &c.method,
            None => return false,
        },
    };
    matches!(
        m,
        Method::Invite | Method::Ack | Method::Prack | Method::Update
    )
}

/// Applies the policy to a message about to be forwarded toward a user (a request
/// toward a callee, or a response toward a caller). On success the message has been
/// rewritten in place (canonical body, allowed headers only) and the removed items are
/// returned; on refusal the message must not be forwarded at all.
///
/// `raw` is the message as received; its hash is the evidence of a refusal that is not
/// about the body.
pub fn apply(policy: &Policy, msg: &mut Message<'_>, raw: &[u8]) -> Result<Vec<Dropped>, Refusal> {
    run(policy, msg, raw, false).map(|v| v.dropped)
}

/// What [`apply_measured`] reports about a message it let through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// What was removed.
    pub dropped: Vec<Dropped>,
    /// What its sender could still choose in what is forwarded.
    pub residual: Residual,
}

/// [`apply`], also reporting the residual channel of the forwarded message. A request
/// carrying an offer whose residual is above `shield.max_residual_bytes` is refused
/// (488).
pub fn apply_measured(
    policy: &Policy,
    msg: &mut Message<'_>,
    raw: &[u8],
) -> Result<Verdict, Refusal> {
    run(policy, msg, raw, true)
}

/// [`apply_measured`]; without `measure`, the headers' share of the residual is counted
/// only where the bound on it applies (an offer in a request), since [`apply`] reports
/// no figure: a response, an ACK or a BYE is not counted at all.
fn run(
    policy: &Policy,
    msg: &mut Message<'_>,
    raw: &[u8],
    measure: bool,
) -> Result<Verdict, Refusal> {
    let mut v = Verdict::default();
    if !policy.enabled {
        return Ok(v);
    }
    let offer = is_offer_answer(msg);
    body::apply(policy, msg, offer, &mut v.dropped, &mut v.residual)?;
    headers::apply(policy, msg, raw, &mut v.dropped)?;
    let bounded = offer && msg.is_request() && !msg.body.is_empty();
    if measure || bounded {
        v.residual.headers(msg);
    }
    if bounded {
        let n = v.residual.bytes();
        if n > policy.max_residual_bytes {
            return Err(Refusal {
                status: 488,
                reason: format!(
                    "offer carries {n} bytes its sender chose, more than shield.max_residual_bytes ({})",
                    policy.max_residual_bytes
                ),
                sha256: sha256(&msg.body),
            });
        }
    }
    Ok(v)
}

/// Helper for callers building events: `user@host` of a From/To URI.
pub fn aor(na: Option<&palisade_sip::NameAddr<'_>>) -> String {
    match na.map(|n| &n.uri) {
        Some(palisade_sip::Uri::Sip(s)) => {
            let mut out = String::with_capacity(48);
            if let Some(u) = &s.user {
                out.push_str(u);
                out.push('@');
            }
            s.host.write(&mut out);
            out
        }
        Some(palisade_sip::Uri::Tel(t)) => format!("tel:{}", t.number),
        Some(_) => "other-uri".into(),
        None => String::new(),
    }
}

#[cfg(test)]
mod event_labels {
    use super::{DropKind, EventKind};

    #[test]
    fn every_kind_has_its_own_slot_and_its_label_there() {
        let all = [
            EventKind::OfferRefused,
            EventKind::AnswerRefused,
            EventKind::AckRefused,
            EventKind::Dropped(DropKind::Header),
            EventKind::Dropped(DropKind::Attribute),
            EventKind::Dropped(DropKind::SdpLine),
            EventKind::ProtectedRefused,
            EventKind::Panic,
            EventKind::EventsSuppressed,
        ];
        assert_eq!(all.len(), EventKind::LABELS.len());
        for k in all {
            assert_eq!(EventKind::LABELS.get(k.slot()), Some(&k.as_str()));
        }
    }
}
