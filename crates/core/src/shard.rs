//! Which shard owns a message: the shell runs several [`crate::Endpoint`]s (one per
//! worker thread), and every message of one transaction or dialog must reach the same
//! one, whichever socket or connection received it. All of a dialog's messages carry
//! the same Call-ID (RFC 3261 section 8.1.1.4), and so do a transaction's responses, its
//! ACK and its CANCEL, so the owner is a keyed hash of the Call-ID's bytes.
//!
//! The key comes from the per-boot secret: a sender cannot choose Call-IDs that all land
//! on one shard without knowing it. The same [`Shards`] value (same secret, same count)
//! is used by every thread that routes messages and by each core for the Call-IDs it
//! originates itself (notifications), so that their answers come back to it.

use std::hash::{BuildHasher, Hasher};

/// The routing of messages to shards: `count` shards, keyed from the per-boot secret.
#[derive(Debug, Clone)]
pub struct Shards {
    key: ahash::RandomState,
    count: usize,
}

impl Shards {
    /// `count` shards (at least one) keyed from `secret`.
    pub fn new(secret: &[u8; 32], count: usize) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            if let Some(s) = secret.get(i * 8..i * 8 + 8) {
                w.copy_from_slice(s);
            }
            // distinct from the words the core's other keyed hashes start from
            u64::from_le_bytes(w) ^ 0x5348_4152_4453_2121
        };
        Shards {
            key: ahash::RandomState::with_seeds(word(3), word(2), word(1), word(0)),
            count: count.max(1),
        }
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The shard that owns the dialog or transaction with this Call-ID.
    pub fn of_call_id(&self, call_id: &[u8]) -> usize {
        if self.count == 1 {
            return 0;
        }
        let mut h = self.key.build_hasher();
        h.write(call_id);
        (h.finish() % self.count as u64) as usize
    }

    /// The shard that owns a raw message: by its Call-ID header; a message without one
    /// (it will be refused or dropped as malformed) goes to shard 0.
    pub fn of_message(&self, bytes: &[u8]) -> usize {
        if self.count == 1 {
            return 0;
        }
        call_id_of(bytes).map_or(0, |c| self.of_call_id(c))
    }
}

/// The value of the first Call-ID header (or its compact form `i`) in the head of a raw
/// message, without its surrounding whitespace; `None` when there is none before the
/// blank line. This is a routing scan, not validation: the core parses and checks the
/// message fully on its shard. The value is the header's first line (a folded Call-ID is
/// malformed and refused there, whichever shard sees it).
pub fn call_id_of(bytes: &[u8]) -> Option<&[u8]> {
    let mut rest = bytes;
    // skip the start line
    let first = memchr::memchr(b'\n', rest)?;
    rest = rest.get(first + 1..)?;
    loop {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..end)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the head
        }
        // The name starts the line, then optional whitespace and the colon: the line is
        // matched against the two names in place (other headers starting with `C`,
        // Contact, CSeq and Content-*, are passed over at their second letter).
        let after_name = match line.first() {
            Some(b'c' | b'C') => line
                .get(..7)
                .filter(|n| n.eq_ignore_ascii_case(b"call-id"))
                .and_then(|_| line.get(7..)),
            Some(b'i' | b'I') => line.get(1..),
            _ => None,
        };
        if let Some(value) = after_name
            .map(<[u8]>::trim_ascii_start)
            .and_then(|r| r.strip_prefix(b":"))
        {
            return Some(value.trim_ascii());
        }
        rest = rest.get(end + 1..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_id_is_found_in_its_long_and_compact_forms() {
        let long = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID:  abc@h \r\nCSeq: 1 INVITE\r\n\r\nCall-ID: body";
        assert_eq!(call_id_of(long), Some(&b"abc@h"[..]));
        let compact = b"SIP/2.0 200 OK\r\ni:abc@h\r\n\r\n";
        assert_eq!(call_id_of(compact), Some(&b"abc@h"[..]));
        let lower = b"BYE sip:b@x SIP/2.0\ncall-id\t: abc@h\n\n";
        assert_eq!(call_id_of(lower), Some(&b"abc@h"[..]));
        // not in the head: a Call-ID line in the body does not count
        assert_eq!(
            call_id_of(b"BYE sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\n\r\nCall-ID: x\r\n"),
            None
        );
        assert_eq!(call_id_of(b""), None);
        assert_eq!(call_id_of(b"no newline at all"), None);
        // a header whose name merely starts like it is another header
        assert_eq!(
            call_id_of(b"X sip:a SIP/2.0\r\nCall-Info: <x>\r\nid: 2\r\n\r\n"),
            None
        );
    }

    /// The scan as it was before names were matched in place: the first colon of a
    /// line that starts like one of the names, and the name before it.
    fn by_colon(bytes: &[u8]) -> Option<&[u8]> {
        let mut rest = bytes;
        let first = memchr::memchr(b'\n', rest)?;
        rest = rest.get(first + 1..)?;
        loop {
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = rest.get(..end)?;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                return None;
            }
            let could_be = matches!(line.first(), Some(b'c' | b'C' | b'i' | b'I'));
            if let Some(colon) = could_be.then(|| memchr::memchr(b':', line)).flatten() {
                let name = line.get(..colon)?.trim_ascii_end();
                if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
                    return line.get(colon + 1..).map(<[u8]>::trim_ascii);
                }
            }
            rest = rest.get(end + 1..)?;
        }
    }

    #[test]
    fn matching_names_in_place_finds_what_the_colon_scan_found() {
        let names = [
            "Call-ID",
            "call-id",
            "CALL-ID",
            "Call-Id ",
            "Call-ID\t",
            "Call-IDx",
            "Call-I",
            "Call-Info",
            "i",
            "I",
            "i ",
            "id",
            "Contact",
            "CSeq",
            "c",
            "C",
            "",
            " Call-ID",
            "Call-ID \r",
            "Call",
        ];
        let values = [": a@h", ":b", " : c ", "", "x: y", ":", " :\t", "::d"];
        for n in names {
            for v in values {
                for before in ["", "Via: x\r\n", "Contact: <sip:a@b>\r\nCSeq: 1 A\r\n"] {
                    for end in ["\r\n\r\n", "\n\n", "\r\n", ""] {
                        let m = format!("X sip:a SIP/2.0\r\n{before}{n}{v}{end}i: later");
                        assert_eq!(call_id_of(m.as_bytes()), by_colon(m.as_bytes()), "{m:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_message_of_a_dialog_goes_to_one_shard_and_shards_are_all_used() {
        let secret = [7u8; 32];
        let s = Shards::new(&secret, 4);
        let invite = b"INVITE sip:b@x SIP/2.0\r\nCall-ID: dlg-1@h\r\n\r\n";
        let ok = b"SIP/2.0 200 OK\r\ni: dlg-1@h\r\n\r\n";
        let bye = b"BYE sip:a@y SIP/2.0\r\ncall-id:dlg-1@h\r\n\r\n";
        let owner = s.of_message(invite);
        assert_eq!(s.of_message(ok), owner);
        assert_eq!(s.of_message(bye), owner);
        let mut seen = [0usize; 4];
        for i in 0..400 {
            let id = format!("call-{i}@host");
            let n = s.of_call_id(id.as_bytes());
            assert!(n < 4);
            if let Some(c) = seen.get_mut(n) {
                *c += 1;
            }
        }
        // a keyed hash spreads 400 Call-IDs over 4 shards (each gets a fair share)
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
        // one shard: everything is shard 0, without hashing
        assert_eq!(Shards::new(&secret, 1).of_message(invite), 0);
        assert_eq!(Shards::new(&secret, 0).count(), 1);
        // another secret routes differently (the key matters)
        let other = Shards::new(&[9u8; 32], 4);
        let differs = (0..64).any(|i| {
            let id = format!("c{i}");
            other.of_call_id(id.as_bytes()) != s.of_call_id(id.as_bytes())
        });
        assert!(differs);
    }

    /// The worker that receives a datagram may route it by the Call-ID its parse found
    /// (gathered) or by this raw scan (spread, and every other thread): both must name
    /// the same shard for every message that parses, or a dialog would be split.
    #[test]
    fn the_scan_finds_the_call_id_the_parser_finds() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus");
        let limits = palisade_sip::Limits::default();
        let mut messages = Vec::new();
        for sub in ["rfc4475", "rfc5118"] {
            let mut files: Vec<_> = std::fs::read_dir(dir.join(sub))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            messages.extend(files.iter().map(|p| std::fs::read(p).unwrap()));
        }
        assert!(messages.len() >= 50, "the corpus is there");
        // and the forms a phone may send: compact, lower case, space before the colon
        let base = "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        for line in [
            "Call-ID: a@b",
            "i:a@b",
            "call-id \t:  a@b  ",
            "CALL-ID:a",
            "I : x.y",
        ] {
            messages.push(base.replace("{}", line).into_bytes());
        }
        let mut parsed = 0;
        for m in &messages {
            if let Ok(msg) = palisade_sip::parse_datagram(m, &limits) {
                parsed += 1;
                assert_eq!(
                    call_id_of(m),
                    msg.call_id().map(str::as_bytes),
                    "{}",
                    String::from_utf8_lossy(m)
                );
            }
        }
        assert!(parsed >= 20, "{parsed} messages parsed");
    }
}
