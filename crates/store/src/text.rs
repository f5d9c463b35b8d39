//! How numbers and addresses are written into rows, without `core::fmt`: a record's
//! source address and fingerprint are written for every registration and call, and
//! `SocketAddr`'s `Display` (padding support, one `fmt` call per octet) cost more than
//! the rest of the row's binding. Also the JSON lists of a finding's row (its accounts
//! and evidence), rewritten whole while a farm grows.

use std::net::SocketAddr;

use palisade_detect::Evidence;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `{v:016x}`: 16 lower-case hex digits, big-endian.
pub fn hex16(v: u64) -> String {
    let mut s = String::with_capacity(16);
    for shift in (0..16).rev() {
        let d = (v >> (shift * 4)) & 15;
        s.push(char::from(DIGITS.get(d as usize).copied().unwrap_or(b'0')));
    }
    s
}

/// `n` in decimal, as `Display` writes it (without `core::fmt`).
pub(crate) fn push_dec(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// The address as `SocketAddr`'s `Display` writes it (`192.0.2.1:5060`, `[2001:db8::1]:5060`).
pub fn addr_text(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => {
            let mut s = String::with_capacity(21);
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_dec(&mut s, o);
            }
            s.push(':');
            push_dec(&mut s, v4.port());
            s
        }
        SocketAddr::V6(_) => a.to_string(),
    }
}

/// `[{"call":1},{"registration":2},{"event":"..."}]`, written directly (a finding with a
/// thousand records is rewritten every second while it grows; building a JSON value
/// tree for it cost more than the rest of its row).
pub(crate) fn evidence_json(e: &[Evidence]) -> String {
    let mut s = String::with_capacity(2 + e.len() * 24);
    s.push('[');
    for (i, e) in e.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // (numbers without `core::fmt`: a thousand of them per rewrite)
        match e {
            Evidence::Call(id) => {
                s.push_str("{\"call\":");
                crate::text::push_dec(&mut s, *id);
                s.push('}');
            }
            Evidence::Registration(id) => {
                s.push_str("{\"registration\":");
                crate::text::push_dec(&mut s, *id);
                s.push('}');
            }
            Evidence::Event(t) => {
                s.push_str("{\"event\":");
                json_str(&mut s, t);
                s.push('}');
            }
        }
    }
    s.push(']');
    s
}

/// `t` as a JSON string, as serde_json writes it: most account names and texts need
/// no escape and are copied as they are; the others go through serde_json.
fn json_str(out: &mut String, t: &str) {
    if t.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(t);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(t).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// `["a","b"]`, as `serde_json::to_string` writes a list of names (a farm's thousand
/// accounts are rewritten whenever it grows).
pub(crate) fn names_json(names: &[String]) -> String {
    let mut s = String::with_capacity(2 + names.iter().map(|n| n.len() + 3).sum::<usize>());
    s.push('[');
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        json_str(&mut s, n);
    }
    s.push(']');
    s
}

pub(crate) fn evidence_of(s: &str) -> Vec<Evidence> {
    let Ok(serde_json::Value::Array(v)) = serde_json::from_str::<serde_json::Value>(s) else {
        return Vec::new();
    };
    v.iter()
        .filter_map(|x| {
            if let Some(id) = x.get("call").and_then(|i| i.as_u64()) {
                Some(Evidence::Call(id))
            } else if let Some(id) = x.get("registration").and_then(|i| i.as_u64()) {
                Some(Evidence::Registration(id))
            } else {
                x.get("event")
                    .and_then(|t| t.as_str())
                    .map(|t| Evidence::Event(t.to_string()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_written_as_serde_json_would_and_reads_back() {
        let e = vec![
            Evidence::Call(1),
            Evidence::Registration(22),
            Evidence::Event("refused \"x\"\n\u{1}".into()),
        ];
        let ours = evidence_json(&e);
        let theirs = serde_json::Value::Array(vec![
            serde_json::json!({ "call": 1 }),
            serde_json::json!({ "registration": 22 }),
            serde_json::json!({ "event": "refused \"x\"\n\u{1}" }),
        ])
        .to_string();
        assert_eq!(ours, theirs);
        assert_eq!(evidence_of(&ours), e);
        assert_eq!(evidence_json(&[]), "[]");
        for names in [
            vec![],
            vec!["alice".to_string()],
            vec![
                "a\"b".into(),
                "c\\d".into(),
                "\u{1f}x\n".into(),
                "\u{e9}\u{7f}/".into(),
                String::new(),
            ],
        ] {
            assert_eq!(names_json(&names), serde_json::to_string(&names).unwrap());
        }
        for n in [0, 7, 10, 999, 1000, u64::MAX] {
            assert_eq!(
                evidence_json(&[Evidence::Call(n), Evidence::Registration(n)]),
                format!("[{{\"call\":{n}}},{{\"registration\":{n}}}]")
            );
        }
    }

    #[test]
    fn as_display_writes_them() {
        for a in [
            "192.0.2.1:5060",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.0.100.9:10",
            "[2001:db8::1]:5060",
            "[::ffff:1.2.3.4]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(addr_text(&a), a.to_string());
        }
        for v in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(hex16(v), format!("{v:016x}"));
        }
    }
}
