//! Header policy: typed headers are rewritten by the SIP writer; every other header must
//! be allow-listed; every line and the whole message are bounded.

use palisade_sip::{Header, Message};

use crate::{sha256, DropKind, Dropped, Policy, Refusal};

fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

pub(crate) fn apply(
    policy: &Policy,
    msg: &mut Message<'_>,
    raw: &[u8],
    dropped: &mut Vec<Dropped>,
) -> Result<(), Refusal> {
    let refuse = |status: u16, reason: String| Refusal {
        status,
        reason,
        sha256: sha256(raw),
    };
    msg.headers.retain(|h| match h {
        // Our own credentials end here: a callee must never see a caller's digest
        // response (it could be attacked offline).
        Header::ProxyAuthorization(c) => match (&policy.realm, c.get("realm")) {
            (Some(ours), Some(r)) => *ours != r,
            _ => true,
        },
        Header::Other { name, value } => {
            if policy.header_allowed(name) {
                return true;
            }
            let mut line = String::with_capacity(name.len() + value.len() + 2);
            line.push_str(name);
            line.push_str(": ");
            line.push_str(value);
            dropped.push(Dropped {
                what: DropKind::Header,
                name: bounded_name(name),
                sha256: sha256(line.as_bytes()),
            });
            false
        }
        _ => true,
    });
    // Control characters and line lengths are checked on the message as received (one
    // cheap scan instead of formatting every header again): the canonical form is derived
    // from it, so a control character can only come from there, and a canonical header
    // line is within a few bytes of the received one (a compact name written in full).
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = &raw[..head_end];
    let mut lines = head.split(|b| *b == b'\n').skip(1).peekable();
    while let Some(first) = lines.next() {
        // a logical line: the first physical line and its continuations (folding)
        let mut len = first.len();
        let mut ctl = first
            .strip_suffix(b"\r")
            .unwrap_or(first)
            .iter()
            .any(|b| is_ctl(*b));
        while let Some(next) = lines.peek() {
            if !next.starts_with(b" ") && !next.starts_with(b"\t") {
                break;
            }
            len += next.len();
            ctl |= next
                .strip_suffix(b"\r")
                .unwrap_or(next)
                .iter()
                .any(|b| is_ctl(*b));
            lines.next();
        }
        let name = || {
            let n = first.split(|b| *b == b':').next().unwrap_or(b"");
            let n = String::from_utf8_lossy(n);
            bounded_name(n.trim())
        };
        if len.saturating_sub(1) > policy.max_header_length {
            return Err(refuse(
                400,
                format!(
                    "{} header longer than shield.max_header_length ({})",
                    name(),
                    policy.max_header_length
                ),
            ));
        }
        if ctl {
            return Err(refuse(
                400,
                format!("control character in the {} header", name()),
            ));
        }
    }
    let total = head_end + 4 + msg.body.len();
    if total > policy.max_message_size {
        return Err(refuse(
            413,
            format!(
                "message larger than shield.max_message_size ({})",
                policy.max_message_size
            ),
        ));
    }
    Ok(())
}

/// A header name as reported: names are tokens (the parser checked), but bounded.
fn bounded_name(name: &str) -> String {
    name.chars().take(64).collect()
}
