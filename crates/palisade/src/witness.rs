//! `palisade evidence witness`: a witness in its own process, with its own key. It
//! answers C2SP tlog-witness `POST <prefix>/add-checkpoint` over plain HTTP (axum), and
//! cosigns (C2SP tlog-cosignature, Ed25519) only checkpoints that extend what it
//! cosigned before. Checkpoints are taken one at a time (a lock around the witness),
//! so that checking a checkpoint against the last one cosigned and recording it are one
//! step.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use palisade_evidence::{Cosigner, NoteVerifier, Witness};

use crate::{clock, evidence};

/// Largest request body taken (a checkpoint with a few signatures and 63 proof lines is
/// far below it).
const MAX_BODY: usize = 64 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

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
    let vkey = witness.verifier_key();
    let app = Router::new()
        .fallback(add_checkpoint)
        .with_state(Arc::new(Mutex::new(witness)));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            eprintln!(
                "witness {vkey} listening on http://{} (POST /add-checkpoint)",
                listener.local_addr()?
            );
            axum::serve(listener, app).await?;
            Ok(())
        })
}

/// Every request: a `POST .../add-checkpoint` is checked and maybe cosigned, anything
/// else is refused with the status that says why.
async fn add_checkpoint(State(witness): State<Arc<Mutex<Witness>>>, req: Request) -> Response {
    let body = match read_body(req).await {
        Ok(b) => b,
        Err((status, why)) => return answer(status, TEXT, format!("{why}\n")),
    };
    let checked = tokio::task::spawn_blocking(move || {
        // a panic elsewhere leaves the witness's state on disk as it was: go on
        let w = witness.lock().unwrap_or_else(|p| p.into_inner());
        let now = u64::try_from(clock::unix_now()).unwrap_or(0);
        w.add_checkpoint(&body, now).map(|line| (line, body))
    })
    .await;
    match checked {
        Ok(Ok((line, body))) => {
            let cp = body.split_once("\n\n").map_or("", |(_, n)| n);
            let head: Vec<&str> = cp.lines().take(2).collect();
            eprintln!("witness: cosigned {}", head.join(" size "));
            answer(200, TEXT, line)
        }
        Ok(Err(r)) => {
            eprintln!("witness: refused ({}): {}", r.status, r.body.trim());
            let ctype = if r.status == 409 {
                "text/x.tlog.size"
            } else {
                TEXT
            };
            answer(r.status, ctype, r.body)
        }
        Err(e) => {
            eprintln!("witness: {e}");
            answer(500, TEXT, "internal error\n".into())
        }
    }
}

/// The body of a `POST .../add-checkpoint`, or the status to answer.
async fn read_body(req: Request) -> Result<String, (u16, &'static str)> {
    if !req.uri().path().ends_with("/add-checkpoint") {
        return Err((404, "only /add-checkpoint is here"));
    }
    if req.method() != Method::POST {
        return Err((405, "add-checkpoint is a POST"));
    }
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok())
        .ok_or((400, "a Content-Length is required"))?;
    if len > MAX_BODY {
        return Err((413, "body too large"));
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| (400, "body shorter than its Content-Length"))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| (400, "the body is not UTF-8"))
}

fn answer(status: u16, content_type: &'static str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        Body::from(body),
    )
        .into_response()
}
