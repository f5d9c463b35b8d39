//! `palisade evidence witness`: a witness in its own process, with its own key. It
//! answers C2SP tlog-witness `POST /add-checkpoint` over plain HTTP, one request at a
//! time (so checking a checkpoint against the last one cosigned and recording it are
//! one step), and cosigns (C2SP tlog-cosignature, Ed25519) only checkpoints that
//! extend what it cosigned before.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use palisade_evidence::{Cosigner, NoteVerifier, Witness};

use crate::{clock, evidence, http};

/// Largest request body taken (a checkpoint with a few signatures and 63 proof lines is
/// far below it).
const MAX_BODY: usize = 64 * 1024;

/// Runs the witness (until killed); with `print_key`, prints its verifier key and
/// returns.
pub(crate) fn run(
    key: &Path,
    name: &str,
    log_keys: &[String],
    state: &Path,
    listen: &str,
    print_key: bool,
) -> anyhow::Result<()> {
    let seed = evidence::seed(key, true)?;
    let cosigner = Cosigner::new(name, &seed).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    if print_key {
        println!("{}", cosigner.verifier_key());
        return Ok(());
    }
    if log_keys.is_empty() {
        anyhow::bail!("give the verifier key of at least one log (--log-key)");
    }
    let logs = log_keys
        .iter()
        .map(|k| NoteVerifier::parse(k).map_err(|e| anyhow::anyhow!("--log-key {k}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(state).with_context(|| state.display().to_string())?;
    let witness = Witness::new(cosigner, logs, state);
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    eprintln!(
        "witness {} listening on http://{} (POST /add-checkpoint)",
        witness.verifier_key(),
        listener.local_addr()?
    );
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        let (status, ctype, body) = match read_request(&mut s) {
            Ok(body) => {
                let now = u64::try_from(clock::unix_now()).unwrap_or(0);
                match witness.add_checkpoint(&body, now) {
                    Ok(line) => {
                        let cp = body.split_once("\n\n").map_or("", |(_, n)| n);
                        let head: Vec<&str> = cp.lines().take(2).collect();
                        eprintln!("witness: cosigned {}", head.join(" size "));
                        (200, "text/plain; charset=utf-8", line)
                    }
                    Err(r) => {
                        eprintln!("witness: refused ({}): {}", r.status, r.body.trim());
                        let ctype = if r.status == 409 {
                            "text/x.tlog.size"
                        } else {
                            "text/plain; charset=utf-8"
                        };
                        (r.status, ctype, r.body)
                    }
                }
            }
            Err((status, why)) => (status, "text/plain; charset=utf-8", format!("{why}\n")),
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            413 => "Content Too Large",
            422 => "Unprocessable Content",
            _ => "Internal Server Error",
        };
        let _ = write!(
            s,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    Ok(())
}

/// The body of a `POST .../add-checkpoint`, or the status to answer.
fn read_request(s: &mut TcpStream) -> Result<String, (u16, &'static str)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 16 * 1024 {
            return Err((400, "request head too long"));
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return Err((400, "incomplete request")),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if !path.ends_with("/add-checkpoint") {
        return Err((404, "only /add-checkpoint is here"));
    }
    if method != "POST" {
        return Err((405, "add-checkpoint is a POST"));
    }
    let len = http::content_length(&head).ok_or((400, "a Content-Length is required"))?;
    if len > MAX_BODY {
        return Err((413, "body too large"));
    }
    let mut body = buf.get(head_end + 4..).unwrap_or_default().to_vec();
    while body.len() < len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return Err((400, "body shorter than its Content-Length")),
            Ok(n) => body.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    body.truncate(len);
    String::from_utf8(body).map_err(|_| (400, "the body is not UTF-8"))
}
