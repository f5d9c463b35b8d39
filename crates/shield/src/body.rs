//! Body policy: which bodies may travel, and the canonical form they travel in.
use std::borrow::Cow;

use palisade_sdp::Attribute;
use palisade_sip::{Header, MediaType, Message};

use crate::{
    codecs, sha256, typed, vocab, DropKind, Dropped, Policy, Refusal, Residual, UnknownAttribute,
};

/// The boundary of every multipart body Palisade writes. It cannot occur inside a part:
/// canonical SDP lines start with `<letter>=`, and text parts are checked for it.
const BOUNDARY: &str = "palisade-part";

pub(crate) struct Refuse<'b> {
    pub(crate) body: &'b [u8],
}

impl Refuse<'_> {
    pub(crate) fn with(&self, status: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
            sha256: sha256(self.body),
        }
    }
}

/// What a body is, after the policy has looked at it.
enum Kind {
    Sdp,
    Multipart,
    Text,
}

fn content_disposition<'m>(msg: &'m Message<'_>) -> Option<&'m str> {
    msg.headers.iter().find_map(|h| match h {
        Header::Other { name, value } if name.eq_ignore_ascii_case("Content-Disposition") => {
            Some(value.as_ref())
        }
        _ => None,
    })
}

/// Checks a Content-Disposition value against the allowed disposition types and returns
/// its canonical form (`type[;handling=required|optional]`).
fn disposition(value: &str, allowed: &[&str], r: &Refuse<'_>) -> Result<String, Refusal> {
    let mut parts = value.split(';');
    let t = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if !allowed.contains(&t.as_str()) {
        return Err(r.with(
            415,
            format!(
                "Content-Disposition {} not allowed here (allowed: {})",
                if t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    t.as_str()
                } else {
                    "(unknown)"
                },
                allowed.join(", ")
            ),
        ));
    }
    let mut out = t;
    for p in parts {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        let (n, v) = (n.trim(), v.trim().to_ascii_lowercase());
        if n.eq_ignore_ascii_case("handling") && (v == "required" || v == "optional") {
            out.push_str(";handling=");
            out.push_str(&v);
        } else {
            return Err(r.with(415, "Content-Disposition parameter not allowed"));
        }
    }
    Ok(out)
}

fn type_name(ct: &MediaType<'_>) -> String {
    format!(
        "{}/{}",
        ct.mtype.to_ascii_lowercase(),
        ct.subtype.to_ascii_lowercase()
    )
}

pub(crate) fn apply(
    policy: &Policy,
    msg: &mut Message<'_>,
    offer: bool,
    dropped: &mut Vec<Dropped>,
    residual: &mut Residual,
) -> Result<(), Refusal> {
    let r = Refuse { body: &msg.body };
    for h in &msg.headers {
        if let Header::ContentEncoding(list) = h {
            if list.iter().any(|e| !e.eq_ignore_ascii_case("identity")) {
                return Err(r.with(
                    415,
                    "Content-Encoding not accepted (identity only): a compressed body cannot be inspected",
                ));
            }
        }
    }
    if msg.body.is_empty() {
        // Nothing to describe: Content-Type and Content-Disposition would only be a side
        // channel.
        crate::strip_body(msg);
        return Ok(());
    }
    let Some(ct) = msg.content_type() else {
        return Err(r.with(415, "body without Content-Type"));
    };
    let kind = if ct.is("application", "sdp") {
        Kind::Sdp
    } else if ct.is("multipart", "mixed") {
        Kind::Multipart
    } else if !offer && policy.body_types.iter().any(|t| *t == type_name(ct)) {
        Kind::Text
    } else {
        let what = if offer {
            "an offer or answer must be application/sdp or multipart/mixed"
        } else {
            "not in shield.body_types"
        };
        return Err(r.with(
            415,
            format!("Content-Type {} not allowed: {what}", type_name(ct)),
        ));
    };
    let disp = content_disposition(msg);
    let cx = Cx {
        call_id: msg.call_id().unwrap_or(""),
        residual,
    };
    let (body, new_ct, new_disp) = match kind {
        Kind::Sdp => {
            let d = match disp {
                Some(v) => Some(disposition(v, &["session", "early-session"], &r)?),
                None => None,
            };
            let body = sdp(policy, &msg.body, dropped, &r, cx)?;
            (
                body,
                MediaType {
                    mtype: Cow::Borrowed("application"),
                    subtype: Cow::Borrowed("sdp"),
                    params: vec![],
                },
                d,
            )
        }
        Kind::Multipart => {
            let d = match disp {
                Some(v) => Some(disposition(v, &["session"], &r)?),
                None => None,
            };
            let body = multipart(policy, ct, &msg.body, offer, dropped, &r, cx)?;
            (
                body,
                MediaType {
                    mtype: Cow::Borrowed("multipart"),
                    subtype: Cow::Borrowed("mixed"),
                    params: vec![palisade_sip::Param::new(
                        "boundary",
                        Some(Cow::Borrowed(BOUNDARY)),
                    )],
                },
                d,
            )
        }
        Kind::Text => {
            let d = match disp {
                Some(v) => Some(disposition(v, &["render", "session"], &r)?),
                None => None,
            };
            text(policy, &msg.body, &r)?;
            cx.residual.text_body(&msg.body);
            let ct = MediaType {
                mtype: Cow::Owned(ct.mtype.to_ascii_lowercase()),
                subtype: Cow::Owned(ct.subtype.to_ascii_lowercase()),
                params: vec![],
            };
            (msg.body.to_vec(), ct, d)
        }
    };
    let mut ct_done = false;
    msg.headers.retain_mut(|h| match h {
        Header::ContentType(t) => {
            if ct_done {
                return false;
            }
            *t = new_ct.clone();
            ct_done = true;
            true
        }
        Header::ContentEncoding(_) => false,
        Header::Other { name, value } if name.eq_ignore_ascii_case("Content-Disposition") => {
            match &new_disp {
                Some(d) => {
                    *value = Cow::Owned(d.clone());
                    true
                }
                None => false,
            }
        }
        _ => true,
    });
    msg.body = Cow::Owned(body);
    Ok(())
}

/// A text body (outside offers): UTF-8, no control characters but tab and line ends,
/// bounded.
fn text(policy: &Policy, body: &[u8], r: &Refuse<'_>) -> Result<(), Refusal> {
    if body.len() > policy.max_text_body {
        return Err(r.with(
            413,
            format!(
                "text body larger than shield.max_text_body ({})",
                policy.max_text_body
            ),
        ));
    }
    let Ok(s) = std::str::from_utf8(body) else {
        return Err(r.with(415, "text body is not UTF-8"));
    };
    if s.bytes()
        .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f)
    {
        return Err(r.with(415, "control character in a text body"));
    }
    Ok(())
}

pub(crate) fn drop_item(dropped: &mut Vec<Dropped>, what: DropKind, name: &str, line: &str) {
    dropped.push(Dropped {
        what,
        name: name.chars().take(64).collect(),
        sha256: sha256(line.as_bytes()),
    });
}

/// What the SDP rewrite needs from the message around it, and where it counts.
struct Cx<'a> {
    call_id: &'a str,
    residual: &'a mut Residual,
}

/// Parses, filters and re-emits one session description.
fn sdp(
    policy: &Policy,
    body: &[u8],
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
    cx: Cx<'_>,
) -> Result<Vec<u8>, Refusal> {
    let mut s = palisade_sdp::parse(body, &policy.sdp_limits)
        .map_err(|e| r.with(488, format!("SDP line {}: {}", e.line, e.reason)))?;
    let max = policy.max_sdp_text;
    if s.name.len() > max {
        return Err(r.with(
            488,
            format!("SDP s= longer than shield.max_sdp_text ({max})"),
        ));
    }
    if s.origin.username.len() > max {
        return Err(r.with(
            488,
            format!("SDP o= user name longer than shield.max_sdp_text ({max})"),
        ));
    }
    // The session name and the origin's user name are free text no device needs
    // (RFC 8866 allows `-` for both): they are rewritten, not reported (every phone
    // writes something there). The origin's user name is the same `-` in every offer,
    // so a re-offer in the same dialog keeps a valid origin (RFC 3264 section 8).
    s.name = "-".into();
    s.origin.username = "-".into();
    // Free text and keys: nothing a device needs to set up media, so never carried.
    // (Phones send none: one look before any list of them is built.)
    let free_text = s.info.is_some()
        || s.uri.is_some()
        || !s.emails.is_empty()
        || !s.phones.is_empty()
        || s.key.is_some()
        || s.media.iter().any(|m| m.info.is_some() || m.key.is_some());
    if free_text {
        let mut lines: Vec<(char, Cow<'_, str>)> = Vec::new();
        lines.extend(s.info.take().map(|v| ('i', v)));
        lines.extend(s.uri.take().map(|v| ('u', v)));
        lines.extend(s.emails.drain(..).map(|v| ('e', v)));
        lines.extend(s.phones.drain(..).map(|v| ('p', v)));
        lines.extend(s.key.take().map(|v| ('k', v)));
        for m in &mut s.media {
            lines.extend(m.info.take().map(|v| ('i', v)));
            lines.extend(m.key.take().map(|v| ('k', v)));
        }
        for (t, v) in lines {
            drop_item(
                dropped,
                DropKind::SdpLine,
                &format!("{t}="),
                &format!("{t}={v}"),
            );
        }
    }
    filter_extmaps(&mut s.attributes, dropped);
    filter_attributes(policy, &mut s.attributes, dropped, r)?;
    for m in &mut s.media {
        filter_codecs(policy, m, dropped, r)?;
        filter_extmaps(&mut m.attributes, dropped);
        filter_attributes(policy, &mut m.attributes, dropped, r)?;
    }
    typed::check(&mut s, dropped, r)?;
    typed::rewrite(&mut s, &policy.rewrite_key, cx.call_id);
    cx.residual.sdp(&s);
    // Written once into a buffer of about its size (the canonical form of a phone's
    // offer is no longer than the offer, a few rewritten identifiers aside).
    let mut canonical = String::with_capacity(body.len() + 64);
    if s.write_canonical(&mut canonical) > policy.max_attribute_length {
        // (the scan finds the first attribute over the bound, for the reason)
        check_attribute_lengths(policy, &canonical, r)?;
    }
    Ok(canonical.into_bytes())
}

/// RTP header extensions outside the registry (see [`crate::codecs::EXTMAP_URIS`]) are
/// dropped with their id.
fn filter_extmaps(attrs: &mut Vec<Attribute>, dropped: &mut Vec<Dropped>) {
    if !attrs.iter().any(|a| matches!(a, Attribute::Extmap { .. })) {
        return;
    }
    attrs.retain(|a| match a {
        Attribute::Extmap { uri, .. } if !codecs::extmap_known(uri) => {
            let mut line = String::from("a=");
            a.write(&mut line);
            drop_item(dropped, DropKind::Attribute, "extmap", &line);
            false
        }
        _ => true,
    });
}

/// `f.parse::<u8>().ok()` (an optional `+`, then digits), without `FromStr`: payload
/// types are compared as numbers for every format of every media section.
pub(crate) fn pt_of(f: &str) -> Option<u8> {
    let digits = f.strip_prefix('+').unwrap_or(f);
    if digits.is_empty() {
        return None;
    }
    let mut n = 0u8;
    for b in digits.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(d)?;
    }
    Some(n)
}

/// The codec registry (see [`crate::codecs`]) on one media section.
fn filter_codecs<'a>(
    policy: &Policy,
    m: &mut palisade_sdp::Media<'a>,
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
    // Only RTP media have payload formats.
    if !m.proto.contains("RTP") {
        return Ok(());
    }
    // Payload types are numbers: compared as numbers, without a String per format.
    let mut unknown: Vec<u8> = Vec::new();
    // The codec of each payload type (its place in the registry, `NONE` when none):
    // that of its first rtpmap the registry knows, one lookup per rtpmap.
    const NONE: u8 = u8::MAX;
    let mut codec_of = [NONE; 256];
    for a in &m.attributes {
        if let Attribute::Rtpmap {
            pt,
            encoding,
            clock,
            ..
        } = a
        {
            let at = codecs::position(encoding);
            if !at
                .and_then(|i| codecs::CODECS.get(i))
                .is_some_and(|c| c.runs_at(*clock))
            {
                unknown.push(*pt);
            }
            if let (Some(slot), Some(i)) = (codec_of.get_mut(usize::from(*pt)), at) {
                if *slot == NONE {
                    *slot = u8::try_from(i).unwrap_or(NONE);
                }
            }
        }
    }
    if !unknown.is_empty() {
        if policy.unknown_codecs == UnknownAttribute::Refuse {
            let enc = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    Attribute::Rtpmap { pt, encoding, .. } if unknown.contains(pt) => {
                        Some(encoding.chars().take(32).collect::<String>())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            return Err(r.with(
                488,
                format!("SDP codec {enc} not in the codec registry (shield.unknown_codecs)"),
            ));
        }
        m.formats
            .retain(|f| !pt_of(f).is_some_and(|p| unknown.contains(&p)));
    }
    // Lines about a format the m= line does not list (any more) are removed: nothing
    // uses them, so they could only carry something else.
    let formats = &m.formats;
    let listed = |pt: &str| formats.iter().any(|f| f == pt);
    let listed_pt = |pt: u8| formats.iter().any(|f| pt_of(f) == Some(pt));
    let gone = |a: &Attribute<'_>| match a {
        Attribute::Rtpmap { pt, .. } => !listed_pt(*pt),
        Attribute::Fmtp { pt, .. } => !listed(pt),
        Attribute::RtcpFb { pt, .. } => pt != "*" && !listed(pt),
        _ => false,
    };
    // (one pass to see whether anything goes; the second only when something does)
    if m.attributes.iter().any(gone) {
        let mut removed = Vec::new();
        m.attributes.retain(|a| {
            let g = gone(a);
            if g {
                let mut line = String::from("a=");
                a.write(&mut line);
                removed.push((a.name().to_string(), line));
            }
            !g
        });
        for (name, line) in removed {
            drop_item(dropped, DropKind::Attribute, &name, &line);
        }
    }
    // Format parameters: each checked against its codec's table (name and typed value);
    // what is not in it is dropped, and the line when nothing is left.
    // (payload types whose fmtp lost every parameter: all their fmtp lines go)
    let mut emptied: Vec<Cow<'a, str>> = Vec::new();
    for i in 0..m.attributes.len() {
        let Some(Attribute::Fmtp { pt, .. }) = m.attributes.get(i) else {
            continue;
        };
        let num = pt_of(pt);
        // The first rtpmap of that payload type whose codec the registry knows (its
        // rtpmap lines are all still there: the fmtp's format is listed), else the
        // static payload type's registered encoding.
        let codec = num
            .and_then(|n| codec_of.get(usize::from(n)))
            .and_then(|i| codecs::CODECS.get(usize::from(*i)))
            .map(|c| c.name)
            .or_else(|| num.and_then(codecs::static_encoding));
        let spec = codec.and_then(vocab::params_of);
        let Some(Attribute::Fmtp { pt, params }) = m.attributes.get_mut(i) else {
            continue;
        };
        // Kept parameters move to the front, in order (a stable partition): a name
        // already kept is found there, without a list of the names seen.
        let mut kept = 0;
        for j in 0..params.len() {
            let Some((k, v)) = params.get(j) else {
                break;
            };
            let keep = match &spec {
                None => false,
                Some(vocab::Params::Events) => v.is_none() && vocab::events_ok(k),
                Some(vocab::Params::Redundancy) => v.is_none() && vocab::redundancy_ok(k),
                Some(vocab::Params::Named(table)) => {
                    table.iter().any(|(name, ty)| {
                        name.eq_ignore_ascii_case(k) && vocab::value_ok(*ty, v.as_deref())
                    }) && !params
                        .get(..kept)
                        .unwrap_or_default()
                        .iter()
                        .any(|(s, _)| s.eq_ignore_ascii_case(k))
                }
            };
            if keep {
                params.swap(kept, j);
                kept += 1;
            } else {
                let g = match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.to_string(),
                };
                drop_item(
                    dropped,
                    DropKind::Attribute,
                    "fmtp",
                    &format!("a=fmtp:{pt} {g}"),
                );
            }
        }
        params.truncate(kept);
        if params.is_empty() {
            emptied.push(pt.clone());
        }
    }
    if !emptied.is_empty() {
        m.attributes
            .retain(|a| !matches!(a, Attribute::Fmtp { pt, .. } if emptied.contains(pt)));
    }
    if m.formats.is_empty() && m.port == 0 {
        // A disabled stream keeps its place with a bare format number (RFC 3264
        // section 6: the m= line needs one) and nothing describing it.
        m.formats.push("0".into());
    }
    if m.formats.is_empty() {
        return Err(r.with(
            488,
            format!(
                "SDP m={}: no format left that the codec registry knows",
                m.media.chars().take(16).collect::<String>()
            ),
        ));
    }
    Ok(())
}

fn filter_attributes(
    policy: &Policy,
    attrs: &mut Vec<Attribute>,
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
    let mut err = None;
    // The last name found allowed (where its text is, and its length): a run of rtpmap
    // lines asks the set once. The same address and length are the same text, as the
    // attribute it belongs to is kept.
    let mut last: Option<(*const u8, usize)> = None;
    attrs.retain(|a| {
        if err.is_some() {
            return true;
        }
        let name = a.name();
        if last == Some((name.as_ptr(), name.len())) || policy.attribute_allowed(name) {
            last = Some((name.as_ptr(), name.len()));
            return true;
        }
        match policy.unknown_attributes {
            UnknownAttribute::Drop => {
                let mut line = String::from("a=");
                a.write(&mut line);
                drop_item(dropped, DropKind::Attribute, a.name(), &line);
                false
            }
            UnknownAttribute::Refuse => {
                err = Some(r.with(
                    488,
                    format!(
                        "SDP attribute {} not in shield.sdp_attributes",
                        a.name().chars().take(64).collect::<String>()
                    ),
                ));
                false
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `shield.max_attribute_length` on the canonical text (one pass, no per-attribute
/// formatting): the bound is on `name:value` as the callee would receive it.
fn check_attribute_lengths(
    policy: &Policy,
    canonical: &str,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
    let b = canonical.as_bytes();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', b) {
        let line = canonical
            .get(start..end.saturating_sub(1).max(start))
            .unwrap_or_default();
        start = end + 1;
        if let Some(a) = line.strip_prefix("a=") {
            if a.len() > policy.max_attribute_length {
                let name = a.split(':').next().unwrap_or("");
                return Err(r.with(
                    488,
                    format!(
                        "SDP attribute {} longer than shield.max_attribute_length ({})",
                        name.chars().take(64).collect::<String>(),
                        policy.max_attribute_length
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len())
        .find(|&i| hay.get(i..i + needle.len()).unwrap_or_default() == needle)
}

/// `multipart/mixed` (RFC 2046 section 5.1): every part must be of an allowed type, no
/// text outside the parts, no nesting; re-emitted with Palisade's own boundary and only
/// the part headers it understands.
fn multipart(
    policy: &Policy,
    ct: &MediaType<'_>,
    body: &[u8],
    offer: bool,
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
    cx: Cx<'_>,
) -> Result<Vec<u8>, Refusal> {
    let Cx { call_id, residual } = cx;
    let boundary = ct
        .params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("boundary"))
        .and_then(|p| p.value.as_deref())
        .map(|v| v.trim_matches('"'))
        .filter(|v| !v.is_empty() && v.len() <= 70)
        .ok_or_else(|| r.with(400, "multipart body without a valid boundary parameter"))?;
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // The body must start with the first delimiter: a preamble is a hiding place.
    if !body.starts_with(delim) {
        return Err(r.with(415, "multipart body has text before its first boundary"));
    }
    let mut pos = delim.len();
    let mut out = Vec::with_capacity(body.len());
    let mut parts = 0usize;
    let mut sdp_parts = 0usize;
    loop {
        if body.get(pos..).unwrap_or_default().starts_with(b"--") {
            // close delimiter; only a line end may follow (no epilogue)
            let rest = body.get(pos + 2..).unwrap_or_default();
            if !(rest.is_empty() || rest == b"\r\n") {
                return Err(r.with(415, "multipart body has text after its closing boundary"));
            }
            break;
        }
        if !body.get(pos..).unwrap_or_default().starts_with(b"\r\n") {
            return Err(r.with(400, "multipart boundary line not followed by CRLF"));
        }
        pos += 2;
        let mut next_delim = Vec::with_capacity(delim.len() + 2);
        next_delim.extend_from_slice(b"\r\n");
        next_delim.extend_from_slice(delim);
        let end = find(body, &next_delim, pos)
            .ok_or_else(|| r.with(400, "multipart body without a closing boundary"))?;
        let part = body.get(pos..end).unwrap_or_default();
        pos = end + next_delim.len();
        parts += 1;
        if parts > policy.max_parts {
            return Err(r.with(
                413,
                format!(
                    "more multipart parts than shield.max_parts ({})",
                    policy.max_parts
                ),
            ));
        }
        let (head, content) = match find(part, b"\r\n\r\n", 0) {
            Some(i) => (
                part.get(..i).unwrap_or_default(),
                part.get(i + 4..).unwrap_or_default(),
            ),
            None if part.starts_with(b"\r\n") => (
                part.get(..0).unwrap_or_default(),
                part.get(2..).unwrap_or_default(),
            ),
            None => {
                return Err(r.with(
                    400,
                    "multipart part without an empty line after its headers",
                ))
            }
        };
        let head = std::str::from_utf8(head)
            .map_err(|_| r.with(400, "multipart part headers are not UTF-8"))?;
        let mut ptype: Option<String> = None;
        let mut pdisp: Option<String> = None;
        for l in head.split("\r\n").filter(|l| !l.is_empty()) {
            let (n, v) = l
                .split_once(':')
                .ok_or_else(|| r.with(400, "malformed multipart part header"))?;
            let (n, v) = (n.trim(), v.trim());
            if n.eq_ignore_ascii_case("Content-Type") {
                let t = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if ptype.replace(t).is_some() {
                    return Err(r.with(400, "multipart part with two Content-Type headers"));
                }
            } else if n.eq_ignore_ascii_case("Content-Disposition") {
                pdisp = Some(v.to_string());
            } else if n.eq_ignore_ascii_case("Content-Transfer-Encoding")
                && matches!(v.to_ascii_lowercase().as_str(), "7bit" | "8bit" | "binary")
            {
            } else if n.eq_ignore_ascii_case("Content-ID")
                || n.eq_ignore_ascii_case("Content-Length")
            {
                // identifiers and lengths are recomputed or meaningless once re-emitted
            } else {
                return Err(r.with(
                    415,
                    "multipart part header not allowed (Content-Type, Content-Disposition, Content-Transfer-Encoding identity forms only)",
                ));
            }
        }
        let ptype = ptype.unwrap_or_else(|| "text/plain".into());
        if !policy
            .multipart_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&ptype))
        {
            return Err(r.with(
                415,
                format!(
                    "multipart part type {} not in shield.multipart_types",
                    if ptype.len() <= 64 {
                        ptype.as_str()
                    } else {
                        "(long)"
                    }
                ),
            ));
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(BOUNDARY.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(ptype.as_bytes());
        out.extend_from_slice(b"\r\n");
        let (canonical, allowed_disp): (Vec<u8>, &[&str]) = if ptype == "application/sdp" {
            sdp_parts += 1;
            (
                sdp(
                    policy,
                    content,
                    dropped,
                    r,
                    Cx {
                        call_id,
                        residual: &mut *residual,
                    },
                )?,
                &["session", "early-session"],
            )
        } else {
            text(policy, content, r)?;
            if find(content, format!("--{BOUNDARY}").as_bytes(), 0).is_some() {
                return Err(r.with(400, "multipart text part contains the boundary"));
            }
            (content.to_vec(), &["render", "session"])
        };
        if let Some(d) = pdisp {
            let d = disposition(&d, allowed_disp, r)?;
            out.extend_from_slice(b"Content-Disposition: ");
            out.extend_from_slice(d.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&canonical);
        out.extend_from_slice(b"\r\n");
    }
    if parts == 0 {
        return Err(r.with(400, "multipart body without parts"));
    }
    if offer && sdp_parts != 1 {
        return Err(r.with(
            415,
            "an offer or answer in multipart/mixed needs exactly one application/sdp part",
        ));
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(BOUNDARY.as_bytes());
    out.extend_from_slice(b"--\r\n");
    Ok(out)
}
