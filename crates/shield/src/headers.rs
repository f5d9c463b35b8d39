//! Header policy: typed headers are rewritten by the SIP writer; every other header must
//! be allow-listed; every line and the whole message are bounded.

use palisade_sip::{Header, Message};

use std::borrow::Cow;

use crate::{sha256, DropKind, Dropped, Policy, Refusal, TextAction};

/// The headers `shield.text.*` decides about besides User-Agent and Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextHeader {
    Subject,
    Organization,
    CallInfo,
}

pub(crate) fn text_header(name: &str) -> Option<TextHeader> {
    if name.eq_ignore_ascii_case("Subject") || name == "s" {
        Some(TextHeader::Subject)
    } else if name.eq_ignore_ascii_case("Organization") {
        Some(TextHeader::Organization)
    } else if name.eq_ignore_ascii_case("Call-Info") {
        Some(TextHeader::CallInfo)
    } else {
        None
    }
}

/// Letters, digits, spaces and `.,-_'()`, single-spaced, at most `max` characters.
pub(crate) fn rewrite_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut n = 0;
    let mut space = false;
    for c in s.chars() {
        if n >= max {
            break;
        }
        if c.is_alphanumeric() || ".,-_'()".contains(c) {
            if space && !out.is_empty() {
                // a space only with room for the character after it: the result never
                // ends in a space (it must be a fixed point, found by the shield fuzz
                // target)
                if n + 1 >= max {
                    break;
                }
                out.push(' ');
                n += 1;
            }
            space = false;
            out.push(c);
            n += 1;
        } else if c == ' ' || c == '\t' {
            space = true;
        }
    }
    out
}

/// Whether `rewrite_text(s, max)` would return `s` unchanged (and `s` is not empty).
fn is_rewritten(s: &str, max: usize) -> bool {
    !s.is_empty()
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.contains("  ")
        && s.chars().count() <= max
        && s.chars()
            .all(|c| c == ' ' || c.is_alphanumeric() || ".,-_'()".contains(c))
}

/// The first product token of a User-Agent or Server value (`name/version`), reduced to
/// `[A-Za-z0-9.-_/]`.
fn rewrite_product(s: &str, max: usize) -> String {
    s.split(' ')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-/".contains(*c))
        .take(max)
        .collect()
}

fn text_action(policy: &Policy, h: &Header<'_>) -> Option<TextAction> {
    let t = &policy.text;
    match h {
        Header::UserAgent(_) => Some(t.user_agent),
        Header::Server(_) => Some(t.server),
        Header::Other { name, .. } => text_header(name).map(|k| match k {
            TextHeader::Subject => t.subject,
            TextHeader::Organization => t.organization,
            TextHeader::CallInfo => t.call_info,
        }),
        _ => None,
    }
}

/// `shield.text.*` on one message.
fn text(policy: &Policy, msg: &mut Message<'_>) {
    let max = policy.text.max_length;
    msg.headers.retain_mut(|h| {
        if let Some(action) = text_action(policy, h) {
            return match action {
                TextAction::Drop => false,
                TextAction::Keep => true,
                TextAction::Rewrite => {
                    let v = match h {
                        Header::UserAgent(v) | Header::Server(v) => {
                            let r = rewrite_product(v, max);
                            *v = Cow::Owned(r);
                            v
                        }
                        Header::Other { value, .. } => {
                            let r = rewrite_text(value, max);
                            *value = Cow::Owned(r);
                            value
                        }
                        _ => return true,
                    };
                    !v.is_empty()
                }
            };
        }
        if let Header::From(na)
        | Header::To(na)
        | Header::Contact(palisade_sip::Contact::Addr(na)) = h
        {
            match policy.text.display_name {
                TextAction::Keep => {}
                TextAction::Drop => na.display = None,
                TextAction::Rewrite => {
                    // Most display names are already in the rewritten form: kept as
                    // they are, without a copy.
                    if let Some(d) = na.display.as_deref().filter(|d| !is_rewritten(d, max)) {
                        let r = rewrite_text(d, max);
                        na.display = (!r.is_empty()).then_some(Cow::Owned(r));
                    }
                }
            }
        }
        true
    });
}

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
    text(policy, msg);
    msg.headers.retain(|h| match h {
        // Our own credentials end here: a callee must never see a caller's digest
        // response (it could be attacked offline).
        Header::ProxyAuthorization(c) => match (&policy.realm, c.get("realm")) {
            (Some(ours), Some(r)) => *ours != r,
            _ => true,
        },
        Header::Other { name, value } => {
            if policy.header_allowed(name) || text_header(name).is_some() {
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
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let head = raw.get(..head_end).unwrap_or_default();
    // One branch-free pass for control characters (vectorises), the names only when
    // something is wrong.
    let ctl = head.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20) & (b != b'\r') & (b != b'\n') & (b != b'\t')) | (b == 0x7f)
    });
    let mut prev_start: Option<usize> = None; // start of the current logical line
                                              // How much longer the current header can be once written canonically: a compact
                                              // name becomes its full name (at most 19 letters, `d` = Request-Disposition) and
                                              // `Name:value` gets its space. The bound applies to what is forwarded, so that the
                                              // forwarded form passes the shield again (found by the shield fuzz target).
    let mut growth = 0usize;
    let mut start = 0usize;
    let mut bad: Option<(usize, &'static str)> = None;
    // No line can be longer than the whole head: without a control character there is
    // nothing to look for line by line (the common case, one comparison).
    let scan = ctl || head.len() + 19 > policy.max_header_length;
    let bounds = memchr::memchr_iter(b'\n', head)
        .chain(std::iter::once(head.len()))
        .take_while(|_| scan);
    for end in bounds {
        let line = head.get(start..end).unwrap_or_default();
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        let logical = match (folded, prev_start) {
            (true, Some(p)) => p,
            _ => start,
        };
        if start > 0 {
            // (the start line is not a header)
            if !folded {
                let name_len = line
                    .iter()
                    .position(|&b| b == b':')
                    .map_or(0, |c| line.get(..c).map_or(0, |n| n.trim_ascii().len()));
                growth = 1 + if name_len == 1 { 18 } else { 0 };
            }
            if end - logical + growth > policy.max_header_length + 1 {
                bad = Some((logical, "long"));
                break;
            }
            if ctl && line.iter().any(|&b| is_ctl(b) && b != b'\r') {
                bad = Some((logical, "ctl"));
                break;
            }
            prev_start = Some(logical);
        }
        start = end + 1;
        if start > head.len() {
            break;
        }
    }
    if let Some((at, what)) = bad {
        let n = head
            .get(at..)
            .unwrap_or_default()
            .split(|b| *b == b':')
            .next()
            .unwrap_or(b"");
        let name = bounded_name(String::from_utf8_lossy(n).trim());
        return Err(match what {
            "long" => refuse(
                400,
                format!(
                    "{name} header longer than shield.max_header_length ({})",
                    policy.max_header_length
                ),
            ),
            _ => refuse(400, format!("control character in the {name} header")),
        });
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

#[cfg(test)]
mod tests {
    #[test]
    fn rewrite_text_never_ends_in_a_space() {
        let r = super::rewrite_text("Content-Type: atel:pplication/sdpJ[ Rosenberg", 32);
        assert!(!r.ends_with(' '), "{r:?}");
        assert_eq!(super::rewrite_text(&r, 32), r, "a fixed point");
        assert_eq!(super::rewrite_text("ab cd", 3), "ab");
        assert_eq!(super::rewrite_text("ab cd", 4), "ab c");
    }

    use super::{is_rewritten, rewrite_text};

    #[test]
    fn the_rewrite_fast_path_agrees_with_the_rewrite() {
        for s in [
            "Alice",
            "Alice Smith",
            "Ålice Ünicode",
            " Alice",
            "Alice  Smith",
            "Al\"ice",
            "<script>",
            "O'Brien (home)",
            "a-very-long-display-name-over-thirty-two-characters",
            "",
        ] {
            // an empty display name is always rewritten (it is removed)
            let same = !s.is_empty() && rewrite_text(s, 32) == s;
            assert_eq!(is_rewritten(s, 32), same, "{s:?}");
        }
    }
}
