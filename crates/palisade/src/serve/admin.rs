//! The admin HTTP listener (loopback by default): read-only HTTP/1.1 `GET`/`HEAD` of
//! the evidence log exactly as C2SP tlog-tiles lays it out, so that auditors and
//! witnesses can follow it: `/evidence/checkpoint`, `/evidence/tile/<L>/<N>[.p/<W>]`,
//! `/evidence/tile/entries/<N>[.p/<W>]`. Nothing else is served; paths outside that
//! grammar get 404. A few dozen lines over tokio instead of a web framework: the
//! listener serves static files and nothing else yet.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::config::DEFAULT_ADMIN;
use crate::evidence::log_dir;

/// Whether `path` (after `/evidence/`) is a checkpoint or a tile of the layout.
fn servable(path: &str) -> bool {
    if path == "checkpoint" {
        return true;
    }
    let Some(rest) = path.strip_prefix("tile/") else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('/').collect();
    // level (a number) or "entries"
    let Some(first) = parts.first() else {
        return false;
    };
    if *first != "entries" && !(first.len() <= 2 && first.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    parts.remove(0);
    // optional partial suffix: "<last>.p/<W>"
    if let [.., last_dir, w] = parts.as_slice() {
        if let Some(n) = last_dir.strip_suffix(".p") {
            if !(w.len() <= 3 && !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())) {
                return false;
            }
            let len = parts.len();
            parts.truncate(len - 1);
            if let Some(l) = parts.last_mut() {
                *l = n;
            }
        }
    }
    let Some((last, dirs)) = parts.split_last() else {
        return false;
    };
    last.len() == 3
        && last.bytes().all(|b| b.is_ascii_digit())
        && dirs.iter().all(|d| {
            d.len() == 4 && d.starts_with('x') && d.bytes().skip(1).all(|b| b.is_ascii_digit())
        })
}

async fn answer(mut s: TcpStream, root: PathBuf) {
    let (r, mut w) = s.split();
    let mut lines = tokio::io::BufReader::new(r).take(8192).lines();
    let Ok(Some(request)) = lines.next_line().await else {
        return;
    };
    // drain the headers
    while let Ok(Some(l)) = lines.next_line().await {
        if l.is_empty() {
            break;
        }
    }
    let mut words = request.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let head = method == "HEAD";
    let reply = if method != "GET" && !head {
        (
            405,
            "text/plain",
            b"method not allowed\n".to_vec(),
            "no-store",
        )
    } else {
        match target.strip_prefix("/evidence/").filter(|p| servable(p)) {
            // small files (a tile is 8 KiB, a bundle 256 entries) from the page cache
            Some(p) => match std::fs::read(root.join(p)) {
                Ok(b) => {
                    let full = p.starts_with("tile/") && !p.contains(".p/");
                    let ctype = if p == "checkpoint" {
                        "text/plain; charset=utf-8"
                    } else {
                        "application/octet-stream"
                    };
                    (
                        200,
                        ctype,
                        b,
                        if full {
                            "public, max-age=31536000, immutable"
                        } else {
                            "no-store"
                        },
                    )
                }
                Err(_) => (404, "text/plain", b"not found\n".to_vec(), "no-store"),
            },
            None => (404, "text/plain", b"not found\n".to_vec(), "no-store"),
        }
    };
    let (code, ctype, body, cache) = reply;
    let phrase = match code {
        200 => "OK",
        405 => "Method Not Allowed",
        _ => "Not Found",
    };
    let header = format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: {cache}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(header.as_bytes()).await;
    if !head {
        let _ = w.write_all(&body).await;
    }
    let _ = w.shutdown().await;
}

/// Binds the listener and serves on the runtime; `Ok(None)` when the default address
/// is taken (logged) or the listener is off.
pub(super) async fn start(listen: &str, data_dir: &Path) -> anyhow::Result<Option<SocketAddr>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let l = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) if listen == DEFAULT_ADMIN => {
            warn!(addr = listen, error = %e, "admin listener not started: its default address is taken (set admin.listen)");
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("binding admin.listen {listen}")),
    };
    let addr = l.local_addr()?;
    let root = log_dir(data_dir);
    info!(addr = %addr, "admin listener: the evidence log at /evidence/");
    tokio::spawn(async move {
        let live = Arc::new(AtomicUsize::new(0));
        loop {
            let Ok((s, _)) = l.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if live.load(Ordering::Relaxed) >= 64 {
                continue; // bounded: an admin listener is for a few auditors
            }
            live.fetch_add(1, Ordering::Relaxed);
            let (root, live) = (root.clone(), live.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), answer(s, root)).await;
                live.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_tlog_tiles_grammar_is_served() {
        for ok in [
            "checkpoint",
            "tile/0/000",
            "tile/1/x001/234",
            "tile/0/003.p/232",
            "tile/entries/x001/x234/067",
            "tile/entries/005.p/2",
        ] {
            assert!(super::servable(ok), "{ok}");
        }
        for bad in [
            "../palisade.db",
            "tile/../../evidence.key",
            "tile/0/00",
            "tile/a/000",
            "journal",
            "origin",
            "tile/0/000.p/",
            "tile/0/000.p/1/2",
            "tile/0/y001/000",
            "checkpoint/x",
        ] {
            assert!(!super::servable(bad), "{bad}");
        }
    }
}
