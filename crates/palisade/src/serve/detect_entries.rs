//! The evidence entries of call and registration records (`evidence.records = "all"`),
//! written field by field.

use crate::evidence::EntryWriter;

/// With `evidence.records = "all"`: a call record as an entry (keys in sorted order,
/// as [`entry`] writes them).
pub(super) fn call_entry(c: &palisade_detect::CallRecord) -> Vec<u8> {
    let mut w = EntryWriter::new();
    w.opt_time("answered", c.answered_at);
    w.num("call", c.id);
    w.str("call_id", &c.call_id);
    w.str("callee", &c.callee);
    w.str("caller", &c.caller);
    w.opt_time("ended", c.ended_at);
    w.opt_time("final", c.final_at);
    w.str("fingerprint", &palisade_store::hex16(c.fingerprint));
    w.str("kind", "call");
    w.str("outcome", c.outcome());
    w.opt_time("ringing", c.ringing_at);
    w.str("source", &palisade_store::addr_text(&c.source));
    w.opt_num("status", c.status.map(u64::from));
    w.opt_time("time", Some(c.invite_at));
    w.str("transport", c.transport);
    w.str("user_agent", &c.user_agent);
    w.finish()
}

/// With `evidence.records = "all"`: a registration record as an entry.
pub(super) fn registration_entry(r: &palisade_detect::RegistrationRecord) -> Vec<u8> {
    let mut w = EntryWriter::new();
    w.str("account", &r.account);
    w.str("fingerprint", &palisade_store::hex16(r.fingerprint));
    w.str("kind", "registration");
    w.num("registration", r.id);
    w.str("source", &palisade_store::addr_text(&r.source));
    w.opt_time("time", Some(r.at));
    w.str("transport", r.transport);
    w.str("user_agent", &r.user_agent);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::entry;
    use palisade_detect::{CallRecord, RegistrationRecord};
    use serde_json::json;

    /// The entries as they were made before [`EntryWriter`]: a JSON value tree
    /// through [`entry`], the reference the direct writing must match byte for byte.
    fn call_reference(c: &CallRecord) -> Vec<u8> {
        let t = |m: Option<i64>| json!(m.map(palisade_detect::rfc3339));
        entry(
            "call",
            c.invite_at,
            vec![
                ("call", json!(c.id)),
                ("call_id", json!(c.call_id)),
                ("caller", json!(c.caller)),
                ("callee", json!(c.callee)),
                ("source", json!(c.source.to_string())),
                ("transport", json!(c.transport)),
                ("user_agent", json!(c.user_agent)),
                ("fingerprint", json!(format!("{:016x}", c.fingerprint))),
                ("ringing", t(c.ringing_at)),
                ("answered", t(c.answered_at)),
                ("final", t(c.final_at)),
                ("ended", t(c.ended_at)),
                ("status", json!(c.status)),
                ("outcome", json!(c.outcome())),
            ],
        )
    }

    fn registration_reference(r: &RegistrationRecord) -> Vec<u8> {
        entry(
            "registration",
            r.at,
            vec![
                ("registration", json!(r.id)),
                ("account", json!(r.account)),
                ("source", json!(r.source.to_string())),
                ("transport", json!(r.transport)),
                ("user_agent", json!(r.user_agent)),
                ("fingerprint", json!(format!("{:016x}", r.fingerprint))),
            ],
        )
    }

    #[test]
    fn record_entries_are_written_as_the_value_tree_wrote_them() {
        let texts = [
            String::new(),
            "alice".to_string(),
            "Zoë \"the\" caller\\".to_string(),
            "tab\there\nnewline\u{1}\u{7f}".to_string(),
            "ü".repeat(1500), // 3,000 bytes, 1,500 characters: kept whole
            "é".repeat(3000), // cut to 2,048 characters
            "x".repeat(2049), // cut to 2,048
            "😀".repeat(600), // 2,400 bytes, 600 characters
        ];
        let sources = ["192.0.2.7:5060", "[2001:db8::1]:5061", "0.0.0.0:0"];
        let times = [None, Some(0), Some(1_800_000_000_123), Some(-1)];
        let mut n = 0u64;
        for (i, text) in texts.iter().enumerate() {
            for (j, source) in sources.iter().enumerate() {
                let status = [None, Some(200), Some(487), Some(404), Some(603)][(i + j) % 5];
                let c = CallRecord {
                    id: n * 7919,
                    call_id: format!("{text}@host"),
                    caller: text.clone(),
                    callee: texts[(i + 1) % texts.len()].clone(),
                    source: source.parse().unwrap(),
                    transport: ["udp", "tcp", "tls"][j],
                    user_agent: texts[(i + 2) % texts.len()].clone(),
                    fingerprint: u64::MAX / (n + 1),
                    sdp: n,
                    invite_at: 1_800_000_000_000 + n as i64,
                    ringing_at: times[i % 4],
                    answered_at: times[(i + 1) % 4],
                    final_at: times[(i + 2) % 4],
                    ended_at: times[(i + 3) % 4],
                    status,
                    blocked: i == 3,
                    message: j == 2,
                };
                assert_eq!(
                    String::from_utf8_lossy(&call_entry(&c)),
                    String::from_utf8_lossy(&call_reference(&c)),
                    "call entry {i}/{j}"
                );
                let r = RegistrationRecord {
                    id: n,
                    at: -5 + n as i64 * 1_000_003,
                    account: text.clone(),
                    source: source.parse().unwrap(),
                    transport: ["udp", "tcp", "ws"][j],
                    user_agent: texts[(i + 3) % texts.len()].clone(),
                    fingerprint: n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    first_seen: 0,
                };
                assert_eq!(
                    String::from_utf8_lossy(&registration_entry(&r)),
                    String::from_utf8_lossy(&registration_reference(&r)),
                    "registration entry {i}/{j}"
                );
                n += 1;
            }
        }
    }
}
