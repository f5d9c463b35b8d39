//! `palisade inspect`: one message in, one verdict out: the message layer (parser,
//! sanity checks) and then the shield, exactly as the proxy applies them.
use palisade_shield::{Dropped, Policy, Residual};
use palisade_sip::{parse_datagram, sanity, ErrorKind, Limits, Message, StartLine};
use serde_json::{json, Value};

pub(crate) enum Outcome {
    Accept {
        kind: &'static str,
        method: Option<String>,
        code: Option<u16>,
        call_id: Option<String>,
        /// What the next hop receives (before routing headers change).
        canonical: Vec<u8>,
        /// What the shield removed.
        dropped: Vec<Dropped>,
        /// What its sender could still choose in the forwarded message (`None` with
        /// `--message-only`).
        residual: Option<Residual>,
    },
    Reject {
        /// `None` for a response: a server drops a bad response and answers nothing.
        status: Option<u16>,
        reason: String,
        offset: Option<usize>,
        header: Option<String>,
        /// `answer` (a request refused with `status`), `drop` (a malformed response),
        /// or, for a response the shield refused: `strip-body` (a provisional relayed
        /// without its body), `replace-502` (a 2xx replaced by 502 toward the caller),
        /// `replace` (a final replaced by a bare one with the same status).
        action: &'static str,
        /// SHA-256 of the refused content (shield refusals only).
        sha256: Option<[u8; 32]>,
    },
}

pub(crate) struct Report {
    pub(crate) file: String,
    pub(crate) outcome: Outcome,
}

/// `policy: None` shows the message layer alone (`--message-only`).
pub(crate) fn inspect(
    file: &str,
    bytes: &[u8],
    limits: &Limits,
    policy: Option<&Policy>,
) -> Report {
    let outcome = match parse_datagram(bytes, limits) {
        Err(e) => Outcome::Reject {
            status: (!e.is_response).then(|| e.status()),
            reason: match bare_lf(bytes, &e.kind) {
                Some(_) => "bare LF line end: SIP needs CRLF line endings (\\r\\n), so no empty line ends the header section; convert the file (unix2dos, or sed 's/$/\\r/')".to_string(),
                None => e.kind.to_string(),
            },
            offset: Some(bare_lf(bytes, &e.kind).unwrap_or(e.offset)),
            header: e.header.clone(),
            action: if e.is_response { "drop" } else { "answer" },
            sha256: None,
        },
        Ok(mut m) => match sanity::check_request(&m) {
            Err(r) => Outcome::Reject {
                status: Some(r.status),
                reason: if r.unsupported.is_empty() {
                    r.reason.to_string()
                } else {
                    format!("{} ({})", r.reason, r.unsupported.join(", "))
                },
                offset: None,
                header: None,
                action: "answer",
                sha256: None,
            },
            Ok(()) => match policy {
                None => accepted(&m, vec![], None),
                Some(p) => match palisade_shield::apply_measured(p, &mut m, bytes) {
                    Ok(v) => accepted(&m, v.dropped, Some(v.residual)),
                    Err(r) => {
                        // the proxy's own rule for a refused answer
                        let (status, action) = match m.status() {
                            None => (Some(r.status), "answer"),
                            Some(s) => {
                                (None, palisade_shield::RefusedAnswer::for_status(s).as_str())
                            }
                        };
                        Outcome::Reject {
                            status,
                            reason: r.reason,
                            offset: None,
                            header: None,
                            action,
                            sha256: Some(r.sha256),
                        }
                    }
                },
            },
        },
    };
    Report {
        file: file.to_string(),
        outcome,
    }
}

/// Where the first bare LF line end is, when a header section did not end for want of
/// CRLF line ends (a file saved with LF, the usual way to write one by hand).
fn bare_lf(bytes: &[u8], kind: &ErrorKind) -> Option<usize> {
    if *kind != ErrorKind::NoHeaderEnd {
        return None;
    }
    (0..bytes.len())
        .find(|&i| bytes.get(i) == Some(&b'\n') && (i == 0 || bytes.get(i - 1) != Some(&b'\r')))
}

fn accepted(m: &Message<'_>, dropped: Vec<Dropped>, residual: Option<Residual>) -> Outcome {
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
        dropped,
        residual,
    }
}

impl Report {
    pub(crate) fn accepted(&self) -> bool {
        matches!(self.outcome, Outcome::Accept { .. })
    }

    pub(crate) fn to_json(&self) -> Value {
        match &self.outcome {
            Outcome::Accept {
                kind,
                method,
                code,
                call_id,
                canonical,
                dropped,
                residual,
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
                "dropped": dropped.iter().map(|d| json!({
                    "what": d.what.as_str(),
                    "name": d.name,
                    "sha256": hex::encode(d.sha256),
                })).collect::<Vec<_>>(),
                "residual_bytes": residual.as_ref().map(Residual::bytes),
                "residual": residual.as_ref().map(|r| r.fields()
                    .map(|(f, b)| (f.to_string(), Value::from(b)))
                    .collect::<serde_json::Map<_, _>>()),
            }),
            Outcome::Reject {
                status,
                reason,
                offset,
                header,
                action,
                sha256,
            } => json!({
                "file": self.file,
                "verdict": "reject",
                "status": status,
                "action": action,
                "reason": reason,
                "offset": offset,
                "header": header,
                "sha256": sha256.as_ref().map(hex::encode),
            }),
        }
    }

    pub(crate) fn to_text(&self) -> String {
        match &self.outcome {
            Outcome::Accept {
                kind,
                method,
                code,
                call_id,
                canonical,
                dropped,
                residual,
            } => {
                let removed: String = dropped
                    .iter()
                    .map(|d| format!("  dropped {} {}\n", d.what.as_str(), d.name))
                    .collect();
                let what = match (method, code) {
                    (Some(m), _) => m.clone(),
                    (None, Some(c)) => c.to_string(),
                    _ => String::new(),
                };
                let res = residual
                    .as_ref()
                    .map(|r| {
                        let parts: Vec<String> =
                            r.fields().map(|(f, b)| format!("{f} {b}")).collect();
                        format!(
                            "  residual {} bytes the sender chose: {}\n",
                            r.bytes(),
                            parts.join(", ")
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{}: accept {kind} {what} Call-ID {}\n{removed}{res}{}\n",
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
                action,
                ..
            } => {
                let answer = match (status, *action) {
                    (Some(s), _) => format!("{s} {}", palisade_sip::reason_phrase(*s)),
                    (None, "drop") => "dropped (malformed response)".to_string(),
                    (None, "strip-body") => "relayed without its body".to_string(),
                    (None, "replace-502") => "replaced by 502 toward the caller".to_string(),
                    (None, _) => "replaced by a bare response".to_string(),
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
