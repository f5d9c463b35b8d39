//! The admin listener (`[admin] listen`, loopback by default), on axum over the main
//! thread's runtime:
//!
//! - public: `/metrics` (Prometheus/OpenMetrics text), the dashboard at `/`, the OpenAPI
//!   description at `/api/openapi.json`, and the evidence log's tiles under
//!   `/evidence/` exactly as C2SP tlog-tiles lays them out (auditors and witnesses
//!   follow the log there);
//! - everything else under `/api/` needs `Authorization: Bearer <token>`, the token being
//!   the content of `[admin] token_file` (created with mode 0600 at first start). A
//!   missing or wrong token gets 401; a refused mutation (POST, DELETE) is also an
//!   evidence entry.
//!
//! The store is opened once, at start (on PostgreSQL: handles on the server's one pool);
//! its reads and writes run on the runtime's blocking pool, never on a worker.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router as Routes};
use palisade_store::{Lifted, Records, Storage};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::evidence::EvidenceTx;
use super::phone::PhoneSetup;
use super::telemetry::{prometheus_text, render, Telemetry};
use crate::block::{parse_duration, parse_subject, subject_text};
use crate::clock::{now_ms, unix_now};
use crate::datadir;
use crate::db::Db;

const DASHBOARD: &str = include_str!("../../assets/dashboard.html");
const OPENAPI: &str = include_str!("../../assets/openapi.json");

/// A configuration reload asked for through the API: the answer (what was applied, or
/// why the file was refused) comes back on the oneshot.
pub(crate) type ReloadRequest = oneshot::Sender<Result<Value, String>>;

/// What the handlers share.
#[derive(Clone)]
pub(super) struct Admin {
    telemetry: Arc<Telemetry>,
    registry: Arc<Registry>,
    token: Arc<String>,
    accounts: Arc<Mutex<Box<dyn Storage + Send>>>,
    records: Arc<Mutex<Box<dyn Records + Send>>>,
    log_dir: PathBuf,
    evidence: Option<EvidenceTx>,
    reload: mpsc::Sender<ReloadRequest>,
    version: &'static str,
}

/// The admin token: the first line of `path`, created (32 random bytes, hex, mode
/// 0600) when the file does not exist. An empty file is refused: it would let anyone in.
pub(super) fn token(path: &Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let t = t.lines().next().unwrap_or("").trim().to_string();
            if t.len() < 16 {
                anyhow::bail!(
                    "admin.token_file {}: the token must be at least 16 characters",
                    path.display()
                );
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes)
                .map_err(|e| anyhow::anyhow!("no random bytes for the admin token: {e}"))?;
            let t = hex::encode(bytes);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating admin.token_file {}", path.display()))?;
            writeln!(f, "{t}")?;
            f.sync_all()?;
            info!(path = %path.display(), "admin token created (mode 0600)");
            Ok(t)
        }
        Err(e) => Err(e).with_context(|| format!("reading admin.token_file {}", path.display())),
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

async fn authorize(
    State(a): State<Admin>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if given.is_some_and(|t| same(t.as_bytes(), a.token.as_bytes())) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if method != Method::GET && method != Method::HEAD {
        warn!(target: "palisade::security", %peer, %method, path, "admin API mutation refused: missing or wrong token");
        if let Some(ev) = &a.evidence {
            let _ = ev.send(
                crate::evidence::entry(
                    "admin-refused",
                    now_ms(),
                    vec![
                        ("method", json!(method.as_str())),
                        ("path", json!(path)),
                        ("peer", json!(peer.to_string())),
                        (
                            "reason",
                            json!(if given.is_some() {
                                "wrong token"
                            } else {
                                "no token"
                            }),
                        ),
                    ],
                ),
                None,
            );
        }
    }
    let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"palisade\""),
    );
    r
}

/// Runs `f` on the blocking pool; its error becomes a 500 with its text.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            datadir::error_text(&e),
        )),
        Err(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed",
        )),
    }
}

/// Runs `f` on the accounts and bindings, on the blocking pool (one request at a time:
/// the handle is one SQLite connection, or a handle on the server's PostgreSQL pool).
async fn with_accounts<T: Send + 'static>(
    a: &Admin,
    f: impl FnOnce(&mut dyn Storage) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let s = a.accounts.clone();
    // (a poisoned lock: a request panicked while holding it; the handle is still usable)
    blocking(move || f(&mut **s.lock().unwrap_or_else(|p| p.into_inner()))).await
}

/// Runs `f` on the records, findings and blocks, on the blocking pool.
async fn with_records<T: Send + 'static>(
    a: &Admin,
    f: impl FnOnce(&mut dyn Records) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let s = a.records.clone();
    blocking(move || f(&mut **s.lock().unwrap_or_else(|p| p.into_inner()))).await
}

fn pairs(v: &[(&str, u64)]) -> Value {
    Value::Object(v.iter().map(|(k, n)| (k.to_string(), json!(n))).collect())
}

async fn overview(State(a): State<Admin>) -> Response {
    let t = &a.telemetry;
    Json(json!({
        "version": a.version,
        "node": t.domain,
        "uptime_s": t.started.elapsed().as_secs(),
        "workers": t.shards.len(),
        "requests": pairs(&t.requests()),
        "responses": pairs(&t.responses()),
        "shield": pairs(&t.shield()),
        "registrations": t.registrations.load(Ordering::Relaxed),
        "calls_active": t.calls_active.load(Ordering::Relaxed),
        "transactions": t.transactions(),
        "findings": pairs(&t.findings()),
        "blocks_active": t.blocks_active.load(Ordering::Relaxed),
        "dropped": pairs(&t.dropped()),
        "queue_depth": pairs(&t.depths()),
        "evidence": {
            "enabled": t.evidence_enabled,
            "entries": t.evidence_entries.load(Ordering::Relaxed),
            "checkpoint_age_s": t.checkpoint_age_s(now_ms()),
        },
    }))
    .into_response()
}

/// OpenMetrics when the scraper asks for it, the Prometheus text format otherwise.
async fn metrics(State(a): State<Admin>, headers: HeaderMap) -> Response {
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let text = render(&a.registry);
    if open {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            prometheus_text(&text),
        )
            .into_response()
    }
}

async fn registrations(State(a): State<Admin>) -> Response {
    let rows = match with_accounts(&a, |s| {
        let now = unix_now();
        let rows = s.load_bindings(now)?;
        Ok((now, rows))
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return e,
    };
    let (now, rows) = rows;
    Json(
        rows.into_iter()
            .map(|b| {
                json!({
                    "aor": b.aor,
                    "contact": b.contact,
                    "expires_in": (b.expires - now).max(0),
                    "source": b.source,
                    "transport": b.transport,
                    "user_agent": b.user_agent,
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// The calls in progress: the detection thread, which knows them, lists them at its
/// next pass (within a quarter of a second) when asked; the answer waits for that list,
/// at most [`CALLS_WAIT`] (then it is the previous list).
async fn calls(State(a): State<Admin>) -> Response {
    let t = &a.telemetry;
    let before = t.calls_published.load(Ordering::Acquire);
    t.calls_wanted.store(true, Ordering::Release);
    let asked = std::time::Instant::now();
    while t.detecting.load(Ordering::Acquire)
        && t.calls_published.load(Ordering::Acquire) == before
        && asked.elapsed() < CALLS_WAIT
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = t.calls.lock().map(|c| c.clone()).unwrap_or_default();
    Json(calls).into_response()
}

/// How long `/api/calls` waits for a fresh list of the calls in progress.
const CALLS_WAIT: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn findings(State(a): State<Admin>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit: 1 to 1000");
    }
    let mut all = match with_records(&a, |r| Ok(r.findings(0)?)).await {
        Ok(f) => f,
        Err(e) => return e,
    };
    all.sort_by(|x, y| y.updated_at.cmp(&x.updated_at).then(y.id.cmp(&x.id)));
    Json(
        all.into_iter()
            .take(limit)
            .map(|f| {
                json!({
                    "id": f.id,
                    "kind": f.kind.as_str(),
                    "subject": subject_text(&f.subject),
                    "score": f.score,
                    "action": f.action.as_str(),
                    "detected_at": f.detected_at,
                    "updated_at": f.updated_at,
                    "accounts": f.accounts,
                    "summary": f.summary,
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn targets(State(a): State<Admin>) -> Response {
    let ts = match with_records(&a, |r| {
        let ts = r.targets(0)?;
        let notified: Vec<Option<String>> = ts
            .iter()
            .map(|t| {
                ["sip", "webhook"].iter().find_map(|ch| {
                    r.notification(&t.user, ch)
                        .ok()
                        .flatten()
                        .filter(|n| n.state == "sent")
                        .map(|n| format!("{ch}: {}", n.state))
                })
            })
            .collect();
        Ok((ts, notified))
    })
    .await
    {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (ts, notified) = ts;
    Json(
        ts.into_iter()
            .zip(notified)
            .map(|(t, n)| {
                json!({
                    "user": t.user,
                    "attempts": t.calls,
                    "rang": t.rang,
                    "callers": t.callers,
                    "findings": t.findings.iter().map(|f| format!("F{f}")).collect::<Vec<_>>(),
                    "first_call": t.first_call,
                    "last_call": t.last_call,
                    "notified": n,
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

fn block_json(b: &palisade_store::Block) -> Value {
    json!({
        "id": b.id,
        "subject": subject_text(&b.subject),
        "until": b.until,
        "per_minute": b.per_minute,
        "by": b.by,
        "finding": b.finding,
        "reason": b.reason,
        "created": b.created,
    })
}

async fn blocks(State(a): State<Admin>) -> Response {
    match with_records(&a, |r| Ok(r.blocks(now_ms())?)).await {
        Ok(bs) => Json(bs.iter().map(block_json).collect::<Vec<_>>()).into_response(),
        Err(e) => e,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBlock {
    subject: String,
    #[serde(rename = "for")]
    duration: String,
    reason: String,
}

async fn add_block(State(a): State<Admin>, body: axum::body::Bytes) -> Response {
    let nb: NewBlock = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let subject = match parse_subject(&nb.subject) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("subject: {e}")),
    };
    let for_ms = match parse_duration(&nb.duration) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("for: {e}")),
    };
    if nb.reason.trim().is_empty() || nb.reason.len() > 500 {
        return error(StatusCode::BAD_REQUEST, "reason: 1 to 500 characters");
    }
    let reason = nb.reason.trim().to_string();
    match with_records(&a, move |r| {
        let now = now_ms();
        let (b, _) = r.add_block(&subject, now.saturating_add(for_ms), &reason, now)?;
        Ok(b)
    })
    .await
    {
        Ok(b) => {
            info!(target: "palisade::security", block = b.id, subject = %subject_text(&b.subject), "block added through the admin API");
            (StatusCode::CREATED, Json(block_json(&b))).into_response()
        }
        Err(e) => e,
    }
}

async fn lift_block(State(a): State<Admin>, UrlPath(id): UrlPath<i64>) -> Response {
    match with_records(&a, move |r| Ok(r.lift_block(id, now_ms())?)).await {
        Ok(Lifted::Lifted(b)) => {
            info!(target: "palisade::security", block = b.id, "block lifted through the admin API");
            Json(block_json(&b)).into_response()
        }
        Ok(Lifted::Ended(_)) => error(StatusCode::NOT_FOUND, format!("restriction {id} has ended")),
        Ok(Lifted::Unknown) => error(StatusCode::NOT_FOUND, format!("no restriction {id}")),
        Err(e) => e,
    }
}

async fn users(State(a): State<Admin>) -> Response {
    match with_accounts(&a, |s| Ok((s.list_users(None)?, s.protections(None)?)))
    .await
    {
        Ok((users, protected)) => Json(
            users
                .iter()
                .map(|u| {
                    json!({
                        "name": u.name,
                        "domain": u.domain,
                        "created": u.created,
                        "protected": protected.iter().any(|p| p.name == u.name && p.domain == u.domain),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => e,
    }
}

async fn reload(State(a): State<Admin>) -> Response {
    let (tx, rx) = oneshot::channel();
    if a.reload.send(tx).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    match rx.await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"),
    }
}

async fn evidence_status(State(a): State<Admin>) -> Response {
    let t = &a.telemetry;
    let checkpoint = tokio::fs::read_to_string(a.log_dir.join("checkpoint"))
        .await
        .ok();
    let origin = checkpoint
        .as_deref()
        .and_then(|c| c.lines().next())
        .map(str::to_string);
    Json(json!({
        "enabled": t.evidence_enabled,
        "origin": origin,
        "entries": t.evidence_entries.load(Ordering::Relaxed),
        "checkpoint_age_s": t.checkpoint_age_s(now_ms()),
        "checkpoint": checkpoint,
    }))
    .into_response()
}

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

async fn tile(State(a): State<Admin>, UrlPath(p): UrlPath<String>) -> Response {
    if !servable(&p) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match tokio::fs::read(a.log_dir.join(&p)).await {
        Ok(b) => {
            let full = p.starts_with("tile/") && !p.contains(".p/");
            let ctype = if p == "checkpoint" {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            let cache = if full {
                "public, max-age=31536000, immutable"
            } else {
                "no-store"
            };
            (
                [
                    (header::CONTENT_TYPE, ctype),
                    (header::CACHE_CONTROL, cache),
                ],
                b,
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            "not found\n",
        )
            .into_response(),
    }
}

/// The listener's routes over `state`, and the softphone's.
pub(super) fn routes(state: Admin, phone: &PhoneSetup) -> Routes {
    let api = Routes::new()
        .route("/api/overview", get(overview))
        .route("/api/registrations", get(registrations))
        .route("/api/calls", get(calls))
        .route("/api/findings", get(findings))
        .route("/api/targets", get(targets))
        .route("/api/blocks", get(blocks).post(add_block))
        .route("/api/blocks/{id}", delete(lift_block))
        .route("/api/users", get(users))
        .route("/api/reload", post(reload))
        .route("/api/evidence", get(evidence_status))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Routes::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    DASHBOARD,
                )
            }),
        )
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/metrics", get(metrics))
        .route("/evidence/{*path}", get(tile))
        .merge(api)
        .with_state(state)
        .merge(super::phone::routes(phone))
}

/// What the listener needs besides its address.
pub(super) struct AdminSetup {
    pub(super) telemetry: Arc<Telemetry>,
    pub(super) token: String,
    pub(super) data_dir: PathBuf,
    /// The server's store, opened once for the listener's handles.
    pub(super) db: Db,
    pub(super) evidence: Option<EvidenceTx>,
    pub(super) reload: mpsc::Sender<ReloadRequest>,
    pub(super) phone: PhoneSetup,
}

/// Binds the listener and serves on the runtime; `Ok(None)` when the default address
/// is taken (logged) or the listener is off.
pub(super) async fn start(listen: &str, setup: AdminSetup) -> anyhow::Result<Option<SocketAddr>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let l = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) if listen == crate::config::DEFAULT_ADMIN => {
            warn!(addr = listen, error = %e, "admin listener not started: its default address is taken (set admin.listen)");
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("binding admin.listen {listen}")),
    };
    let addr = l.local_addr()?;
    let registry = Arc::new(setup.telemetry.registry());
    let state = Admin {
        telemetry: setup.telemetry,
        registry,
        token: Arc::new(setup.token),
        accounts: Arc::new(Mutex::new(setup.db.storage()?)),
        records: Arc::new(Mutex::new(setup.db.records()?)),
        log_dir: crate::evidence::log_dir(&setup.data_dir),
        evidence: setup.evidence,
        reload: setup.reload,
        version: env!("CARGO_PKG_VERSION"),
    };
    info!(addr = %addr, "admin listener: dashboard at /, metrics at /metrics, API at /api/, the evidence log at /evidence/, a softphone at /phone");
    let app = routes(state, &setup.phone).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(l, app).await {
            warn!(error = %e, "admin listener stopped");
        }
    });
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tlog_tiles_grammar_is_served() {
        for ok in [
            "checkpoint",
            "tile/0/000",
            "tile/1/x001/234",
            "tile/entries/000",
            "tile/0/000.p/12",
            "tile/entries/x001/002.p/255",
        ] {
            assert!(servable(ok), "{ok}");
        }
        for bad in [
            "",
            "../evidence.key",
            "tile/0/../../evidence.key",
            "tile/0/00",
            "tile/0/0000",
            "tile/abc/000",
            "tile/0/000.p/",
            "tile/0/000.p/1234",
            "tile/0/y001/000",
            "blobs/abc",
            "origin",
        ] {
            assert!(!servable(bad), "{bad}");
        }
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(same(b"abcdef", b"abcdef"));
        assert!(!same(b"abcdef", b"abcdeg"));
        assert!(!same(b"abcdef", b"abcde"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn a_token_file_is_created_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("palisade-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("admin.token");
        let t = token(&p).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(token(&p).unwrap(), t, "read back, not replaced");
        std::fs::write(&p, "short\n").unwrap();
        assert!(token(&p).is_err(), "a short token is refused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
