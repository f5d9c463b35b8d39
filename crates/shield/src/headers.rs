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
    let mut line = String::with_capacity(256);
    let mut total = 64 + msg.body.len();
    if let Some(u) = msg.request_uri() {
        u.write(&mut line);
        total += line.len();
    }
    for h in &msg.headers {
        line.clear();
        h.write(&mut line);
        let text = line.strip_suffix("\r\n").unwrap_or(&line);
        if text.len() > policy.max_header_length {
            return Err(refuse(
                400,
                format!(
                    "{} header longer than shield.max_header_length ({})",
                    h.name(),
                    policy.max_header_length
                ),
            ));
        }
        if text.bytes().any(is_ctl) {
            return Err(refuse(
                400,
                format!("control character in the {} header", h.name()),
            ));
        }
        total += line.len();
    }
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
