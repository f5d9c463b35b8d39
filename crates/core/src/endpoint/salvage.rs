//! Answers to messages that do not parse: a 400 or 505 salvaged from the bytes that can
//! be read (RFC 3261 section 8.2 and 16.3).

use super::*;

/// `msg` with the protocol version of every Via line read as `SIP/2.0`: a 505 answers
/// a client that speaks another version and echoes its Via (RFC 4475 `badvers`); this
/// is how such an answer is checked as well-formed.
pub(super) fn via_as_sip_2_0(msg: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(msg)
        .split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((n, v)) if n.trim().eq_ignore_ascii_case("via") || n.trim() == "v" => {
                match v
                    .trim_start()
                    .strip_prefix("SIP/")
                    .and_then(|r| r.split_once('/'))
                {
                    Some((_, rest)) => format!("Via: SIP/2.0/{rest}"),
                    None => l.to_string(),
                }
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

pub(super) fn bad_request_salvage(bytes: &[u8], e: &ParseError) -> Option<Vec<u8>> {
    // Answer a malformed request only if the lines a response needs are themselves clean.
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(bytes.get(..head_end).unwrap_or_default()).ok()?;
    if head
        .bytes()
        .any(|b| (b < 0x20 && b != b'\r' && b != b'\n' && b != b'\t') || b == 0x7f)
    {
        return None;
    }
    let mut lines = String::new();
    let mut have = [false; 5]; // Via, From, To, Call-ID, CSeq
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        let n = name.trim().to_ascii_lowercase();
        let idx = match n.as_str() {
            "via" | "v" => 0,
            "from" | "f" => 1,
            "to" | "t" => 2,
            "call-id" | "i" => 3,
            "cseq" => 4,
            _ => continue,
        };
        match have.get_mut(idx) {
            // Every Via; only the first From/To/Call-ID/CSeq (a repeated one, as in
            // RFC 4475 `multi01`, is the error itself).
            Some(h) if !*h || idx == 0 => *h = true,
            _ => continue,
        }
        lines.push_str(line);
        lines.push_str("\r\n");
    }
    // Via (where to send) and CSeq (what to match) are the minimum; RFC 4475 `insuf`
    // expects a 400 even when To, From and Call-ID are missing.
    if !(have[0] && have[4]) {
        return None;
    }
    let reason = e.to_string().replace(['"', '\\'], "'");
    let answer = format!(
        "SIP/2.0 {} {}\r\n{lines}Warning: 399 palisade \"{reason}\"\r\nServer: {SERVER_NAME}\r\nContent-Length: 0\r\n\r\n",
        e.status(),
        e.reason_phrase()
    )
    .into_bytes();
    // The copied lines are the sender's: when one of them is itself malformed, the
    // answer would be too, and nothing malformed leaves this server.
    salvaged_answer_parses(&answer).then_some(answer)
}

/// Whether an answer made from a malformed request's own lines is well-formed, given
/// what such an answer may lack: the From, To or Call-ID the request did not have
/// (RFC 4475 `insuf` is answered without them) and a Via in another SIP version (the
/// 505 to RFC 4475 `badvers` echoes it). Everything else must parse.
pub fn salvaged_answer_parses(answer: &[u8]) -> bool {
    let mut check = via_as_sip_2_0(answer);
    let text = String::from_utf8_lossy(&check).into_owned();
    let has = |names: &[&str]| {
        text.split("\r\n").skip(1).any(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| names.iter().any(|x| n.trim().eq_ignore_ascii_case(x)))
        })
    };
    let mut fill = String::new();
    for (names, line) in [
        (&["from", "f"][..], "From: <sip:check@invalid>;tag=c\r\n"),
        (&["to", "t"][..], "To: <sip:check@invalid>\r\n"),
        (&["call-id", "i"][..], "Call-ID: check\r\n"),
    ] {
        if !has(names) {
            fill.push_str(line);
        }
    }
    let head_len = check.len().saturating_sub(2);
    check.splice(head_len..head_len, fill.bytes());
    parse_datagram(&check, &Limits::default()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_400_keeps_every_via_and_the_first_identity_lines() {
        let raw = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nTo: <sip:c@x>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let e = parse_datagram(raw, &Limits::default()).unwrap_err();
        let a = bad_request_salvage(raw, &e).unwrap();
        let text = String::from_utf8(a.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 400 "), "{text}");
        assert_eq!(text.matches("\r\nVia: ").count(), 2);
        assert_eq!(text.matches("\r\nTo: ").count(), 1, "{text}");
        assert!(salvaged_answer_parses(&a));
    }

    #[test]
    fn no_answer_when_the_needed_lines_are_missing_or_dirty() {
        // Via and CSeq are the minimum (RFC 4475 `insuf` is answered without Call-ID)
        let raw = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n";
        let e = parse_datagram(raw, &Limits::default()).unwrap_err();
        assert!(bad_request_salvage(raw, &e).is_none(), "no CSeq");
        let raw = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\x07\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        if let Err(e) = parse_datagram(raw, &Limits::default()) {
            assert!(bad_request_salvage(raw, &e).is_none(), "control byte");
        }
    }
}
