//! The one HTTP client of the server: a plain-HTTP POST with short timeouts (webhook
//! notifications and witness submissions go to the operator's own network or loopback),
//! and the Content-Length of an HTTP head (also read by the witness's listener).
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};

/// POSTs `body` (JSON) to an `http://HOST:PORT/PATH` URL; the answer's status.
/// Plain HTTP only (a webhook on the operator's own network or loopback); 5 s timeouts.
pub(crate) fn post_json(url: &str, body: &str) -> anyhow::Result<u16> {
    post(url, "application/json", body).map(|(code, _)| code)
}

/// An HTTP answer that has its head and as many body bytes as its Content-Length says.
fn complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    content_length(&String::from_utf8_lossy(
        answer.get(..end).unwrap_or_default(),
    ))
    .is_some_and(|len| answer.len() >= end + 4 + len)
}

/// The Content-Length of an HTTP head (request or answer), if it has a valid one.
pub(crate) fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    })
}

/// POSTs `body` to an `http://HOST:PORT/PATH` URL (plain HTTP, 5 s timeouts, one
/// request per connection): the status and the body of the answer (at most 64 KiB).
pub(crate) fn post(url: &str, content_type: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url:?}: only http:// URLs are supported");
    };
    let (hostport, path) = match rest.find('/').and_then(|i| rest.split_at_checked(i)) {
        Some(parts) => parts,
        None => (rest, "/"),
    };
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("host {hostport}"))?
        .next()
        .with_context(|| format!("host {hostport}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {url}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let host = hostport
        .rsplit_once(':')
        .map_or(hostport.as_str(), |(h, _)| h);
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: palisade\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while answer.len() < 65_536 + 4096 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(buf.get(..n).unwrap_or_default());
                if complete(&answer) {
                    break;
                }
            }
            // the status line is enough when the peer keeps the connection open
            Err(_) if answer.windows(4).any(|w| w == b"\r\n\r\n") => break,
            Err(e) => return Err(e.into()),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .with_context(|| format!("{url}: not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Ok((code, body))
}
