//! `palisade inspect`: one message in, one verdict out.
use palisade_sip::{parse_datagram, sanity, Limits, Message, StartLine};
use serde_json::{json, Value};

pub enum Outcome {
    Accept {
        kind: &'static str,
        method: Option<String>,
        code: Option<u16>,
        call_id: Option<String>,
        canonical: Vec<u8>,
    },
    Reject {
        /// `None` for a response: a server drops a bad response and answers nothing.
        status: Option<u16>,
        reason: String,
        offset: Option<usize>,
        header: Option<String>,
    },
}

pub struct Report {
    pub file: String,
    pub outcome: Outcome,
}

pub fn inspect(file: &str, bytes: &[u8], limits: &Limits) -> Report {
    let outcome = match parse_datagram(bytes, limits) {
        Err(e) => Outcome::Reject {
            status: (!e.is_response).then(|| e.status()),
            reason: e.kind.to_string(),
            offset: Some(e.offset),
            header: e.header.clone(),
        },
        Ok(m) => match sanity::check_request(&m) {
            Err(r) => Outcome::Reject {
                status: Some(r.status),
                reason: if r.unsupported.is_empty() {
                    r.reason.to_string()
                } else {
                    format!("{} ({})", r.reason, r.unsupported.join(", "))
                },
                offset: None,
                header: None,
            },
            Ok(()) => accepted(&m),
        },
    };
    Report {
        file: file.to_string(),
        outcome,
    }
}

fn accepted(m: &Message<'_>) -> Outcome {
    let (kind, method, code) = match &m.start {
        StartLine::Request { method, .. } => ("request", Some(method.as_str().to_string()), None),
        StartLine::Response { code, .. } => ("response", None, Some(*code)),
    };
    Outcome::Accept {
        kind,
        method,
        code,
        call_id: m.call_id().map(str::to_string),
        canonical: m.to_bytes(),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        483 => "Too Many Hops",
        505 => "Version Not Supported",
        _ => "",
    }
}

impl Report {
    pub fn accepted(&self) -> bool {
        matches!(self.outcome, Outcome::Accept { .. })
    }

    pub fn to_json(&self) -> Value {
        match &self.outcome {
            Outcome::Accept {
                kind,
                method,
                code,
                call_id,
                canonical,
            } => json!({
                "file": self.file,
                "verdict": "accept",
                "status": Value::Null,
                "reason": Value::Null,
                "kind": kind,
                "method": method,
                "code": code,
                "call_id": call_id,
                "canonical": String::from_utf8_lossy(canonical),
                "canonical_is_utf8": std::str::from_utf8(canonical).is_ok(),
            }),
            Outcome::Reject {
                status,
                reason,
                offset,
                header,
            } => json!({
                "file": self.file,
                "verdict": "reject",
                "status": status,
                "action": if status.is_some() { "answer" } else { "drop" },
                "reason": reason,
                "offset": offset,
                "header": header,
            }),
        }
    }

    pub fn to_text(&self) -> String {
        match &self.outcome {
            Outcome::Accept {
                kind,
                method,
                code,
                call_id,
                canonical,
            } => {
                let what = match (method, code) {
                    (Some(m), _) => m.clone(),
                    (None, Some(c)) => c.to_string(),
                    _ => String::new(),
                };
                format!(
                    "{}: accept {kind} {what} Call-ID {}\n{}\n",
                    self.file,
                    call_id.as_deref().unwrap_or("-"),
                    String::from_utf8_lossy(canonical)
                )
            }
            Outcome::Reject {
                status,
                reason,
                offset,
                header,
            } => {
                let answer = match status {
                    Some(s) => format!("{s} {}", reason_phrase(*s)),
                    None => "dropped (malformed response)".to_string(),
                };
                let at = offset.map(|o| format!(" at byte {o}")).unwrap_or_default();
                let h = header
                    .as_deref()
                    .map(|h| format!(" in {h}"))
                    .unwrap_or_default();
                format!("{}: reject {answer}: {reason}{h}{at}\n", self.file)
            }
        }
    }
}
