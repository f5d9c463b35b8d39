//! `palisade serve`: the I/O shell around the sans-IO core. `server.workers` threads each
//! own one shard of the core and one UDP socket (`SO_REUSEPORT` on the first UDP
//! listening address), read with `recvmmsg` and answer with `sendmmsg`: no lock on the
//! per-packet path. Each message is handled by the shard that owns its Call-ID; the
//! worker that received it hands it over otherwise (see `router`). TCP/TLS connections,
//! extra UDP sockets, the admin listener and the signals are tasks on the main thread's
//! runtime; a storage thread writes bindings behind and watches for account changes.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use palisade_core::{Binding, Endpoint, Peer, Transport};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use self::budget::{EventBudget, LineBudget};
use self::detect::{detect_thread, webhook_thread, DETECT_QUEUE};
use self::handoff::StoreHandoff;
use self::keys::{random_secret, route_key};
use self::persist::{from_row, load, store_thread, Loaded};
pub(crate) use self::reload::ConfigSource;
use self::router::{Router, Steer};
use self::shell::{Shell, UdpOut};
use self::stream::{bind_stream, run_conn, ConnTask, CONN_QUEUE};
use self::telemetry::Telemetry;
use self::udp::{bind_udp, bind_worker_udp};
use crate::clock::{now_ms, unix_now};
use crate::config::{EvidenceRecords, FileConfig, Listen};
use crate::datadir;
use crate::db::Db;
use crate::messages::{DetectMsg, Hook, Inbound, StoreMsg};

mod admin;
mod balance;
mod budget;
mod cluster;
mod detect;
mod detect_entries;
mod detect_role;
mod evidence;
mod handoff;
mod keys;
mod media;
mod observe;
mod persist;
mod phone;
mod reload;
mod router;
mod shell;
mod stream;
mod sys;
mod telemetry;
mod udp;
mod witness;
mod worker;
mod ws;

/// Operations waiting for the storage thread; when it falls this far behind, the core
/// waits for it rather than dropping a binding or a security event.
const STORE_QUEUE: usize = 65_536;
/// Most worker threads (`server.workers`), whatever the machine says.
const MAX_WORKERS: usize = 64;

pub(crate) async fn run(
    mut cfg: FileConfig,
    listens: Vec<Listen>,
    source: ConfigSource,
) -> anyhow::Result<()> {
    let mut core_cfg = cfg.core(&listens)?;
    datadir::prepare(&cfg.server.data_dir)?;
    core_cfg.route_key = Some(route_key(&cfg.server.data_dir)?);
    if cfg.server.advertise.is_none() && listens.iter().any(|l| l.addr.ip().is_unspecified()) {
        warn!("listening on an unspecified address without server.advertise / --advertise: Via and Record-Route will say 127.0.0.1, which only local clients can reach");
    }
    let domain = core_cfg.domain.clone();
    let limits = core_cfg.limits.clone();
    let data_dir = cfg.server.data_dir.clone();
    let cfg_protected = cfg.shield.protected.clone();
    // One store for the process (on PostgreSQL one pool, `[store] max_connections`);
    // each thread below takes its handles from it. Loaded on the blocking pool: the
    // PostgreSQL client blocks, and cannot run on the runtime's thread.
    let loaded = {
        let (store, dir, dom) = (cfg.store.clone(), data_dir.clone(), domain.clone());
        let (prot, detect) = (cfg_protected.clone(), cfg.detect.clone());
        let enabled = cfg.detect.enabled;
        tokio::task::spawn_blocking(move || {
            load(&store, &dir, &dom, &prot, enabled.then_some(&detect))
        })
        .await
        .context("loading the store")??
    };
    let Loaded {
        db,
        users,
        bindings: restored,
        detector,
    } = loaded;
    let now = Instant::now();
    // A contained panic is logged by the shell with its context; the default hook's
    // stderr report is kept for the first ten and then for every power of two, so that
    // a flood of one bad input cannot turn into a flood of reports.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        static SEEN: AtomicU64 = AtomicU64::new(0);
        let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 10 || n.is_power_of_two() {
            report(info);
        }
    }));
    let secret = random_secret()
        .context("refusing to start without a per-boot secret from the operating system")?;
    let workers = match cfg.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(MAX_WORKERS);
    let telemetry = Arc::new(Telemetry::new(&domain, workers, cfg.evidence.enabled));
    let hep = crate::hep::HepSender::from_config(&cfg.hep)?.map(Arc::new);
    if let Some(h) = &hep {
        info!(collector = %h.collector(), "HEP capture on");
    }
    let mut endpoints: Vec<Endpoint> = (0..workers)
        .map(|i| {
            let mut c = core_cfg.clone();
            c.shard = (i, workers);
            // `server.max_transactions` bounds the server: each shard holds its share
            // (Call-IDs spread evenly over the shards).
            c.max_transactions = core_cfg.max_transactions.div_ceil(workers.max(1));
            Endpoint::new(c, secret, now)
        })
        .collect();
    info!(users = users.len(), bindings = restored.len(), workers, data_dir = %data_dir.display(), store = %db.shown(), domain, "state loaded");
    let no_users = users.is_empty();
    // (in a cluster, this node's own; the cluster thread adds the others' as copies)
    let restored: Vec<Binding> = restored
        .into_iter()
        .filter(|r| r.node.is_empty() || r.node == cfg.cluster.node)
        // (a WebSocket binding is reached only on its connection, gone with the restart)
        .filter(|r| !matches!(r.transport.as_str(), "ws" | "wss"))
        .filter_map(|r| from_row(r, now))
        .collect();
    for (i, endpoint) in endpoints.iter_mut().enumerate() {
        endpoint.set_unix_time_ms(now, now_ms());
        endpoint.set_users(users.clone());
        for b in &restored {
            // shard 0 reports their expiry; the others hold copies
            if i == 0 {
                endpoint.restore_binding(b.clone());
            } else {
                endpoint.apply_binding(b.clone());
            }
        }
    }
    drop(users);
    drop(restored);
    let detector = if let Some((d, restrictions)) = detector {
        let n = restrictions.len();
        for r in &restrictions {
            for endpoint in endpoints.iter_mut() {
                endpoint.restrict(r.clone());
            }
        }
        info!(restrictions = n, "campaign detection on");
        Some((d, restrictions))
    } else {
        info!("campaign detection off (detect.enabled = false)");
        None
    };

    sys::install_wake_handler().context("installing the workers' wake-up signal handler")?;
    let shards = endpoints
        .first()
        .map(|e| e.shards().clone())
        .context("no worker")?;
    let (inbound_tx, shard_ends) = Router::new(shards);
    let (store_tx, store_rx) = sync_channel::<StoreMsg>(STORE_QUEUE);
    let store_handle = {
        let (d, dom, itx) = (data_dir.clone(), domain.clone(), inbound_tx.clone());
        let db = db.clone();
        let window = cfg.store.commit_window();
        std::thread::Builder::new()
            .name("palisade-store".into())
            .spawn(move || store_thread(db, d, dom, cfg_protected, store_rx, itx, window))?
    };

    let mut evidence_key = String::new();
    let (evidence_tx, evidence_handle) = if cfg.evidence.enabled {
        let log = crate::evidence::LogSettings {
            data_dir: data_dir.clone(),
            domain: cfg.server.domain.clone(),
            origin: cfg.evidence.origin.clone(),
            key: cfg.evidence.key.clone(),
            node: cfg.cluster.node.clone(),
        };
        let (tx, h) = evidence::start(
            &log,
            cfg.evidence.blob_store_mb,
            Duration::from_millis(cfg.evidence.checkpoint_interval_ms.max(10)),
            &cfg.evidence.witnesses,
            inbound_tx.clone(),
            telemetry.clone(),
        )?;
        evidence_key = log.signer(false)?.verifier_key();
        let _ = tx.send(
            crate::evidence::entry(
                "server-start",
                unix_now().saturating_mul(1000),
                vec![
                    ("version", serde_json::json!(env!("CARGO_PKG_VERSION"))),
                    ("domain", serde_json::json!(domain)),
                ],
            ),
            None,
        );
        (Some(tx), Some(h))
    } else {
        (None, None)
    };
    // (before the media relay: a stream it cuts is reported to the detectors)
    let mut detect_handle = None;
    let detect_tx = match detector {
        Some((d, active)) => {
            let (tx, rx) = sync_channel::<DetectMsg>(DETECT_QUEUE);
            let (db, itx, etx) = (db.clone(), inbound_tx.clone(), evidence_tx.clone());
            let all = cfg.evidence.records == EvidenceRecords::All;
            let t = telemetry.clone();
            let node = cfg.cluster.node.clone();
            detect_handle = Some(
                std::thread::Builder::new()
                    .name("palisade-detect".into())
                    .spawn(move || detect_thread(db, d, rx, itx, etx, all, active, t, node))?,
            );
            Some(tx)
        }
        None => None,
    };
    let mut media_relay = None;
    if cfg.media.enabled {
        let range: palisade_media::PortRange = cfg
            .media
            .ports
            .parse()
            .map_err(|e| anyhow::anyhow!("media.ports {:?}: {e:?}", cfg.media.ports))?;
        let pool = palisade_media::PortPool::new(range)
            .map_err(|e| anyhow::anyhow!("media.ports {:?}: {e:?}", cfg.media.ports))?;
        let first = listens.first().map(|l| l.addr.ip());
        let bind = first.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let advertise = cfg
            .media
            .advertise
            .or(cfg.server.advertise)
            .or(first.filter(|ip| !ip.is_unspecified()))
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let capacity = pool.capacity();
        let running = media::start(
            media::Settings {
                pool,
                advertise,
                bind,
                early: if cfg.media.early == "callee-to-caller" {
                    palisade_media::EarlyMedia::CalleeToCaller
                } else {
                    palisade_media::EarlyMedia::None
                },
                timeout: Duration::from_secs(cfg.media.timeout_s.max(1)),
                limits: core_cfg.shield.sdp_limits.clone(),
            },
            telemetry.media.clone(),
            evidence_tx.clone(),
            detect_tx.clone(),
        )?;
        for e in endpoints.iter_mut() {
            e.set_media(Box::new(media::Anchor::new(running.shared.clone())));
        }
        media_relay = Some(running);
        info!(%advertise, %bind, pairs = capacity, early = %cfg.media.early, "media relay on");
    } else {
        info!("media relay off (media.enabled = false): media flows between the phones");
    }
    let (reload_tx, mut reload_rx) = mpsc::channel::<admin::ReloadRequest>(4);
    let mut admin_addr = None;
    if !cfg.admin.listen.is_empty() {
        let token_file = cfg
            .admin
            .token_file
            .clone()
            .unwrap_or_else(|| data_dir.join("admin.token"));
        admin_addr = admin::start(
            &cfg.admin.listen,
            admin::AdminSetup {
                telemetry: telemetry.clone(),
                token: admin::token(&token_file)?,
                data_dir: data_dir.clone(),
                db: db.clone(),
                evidence: evidence_tx.clone(),
                reload: reload_tx,
                phone: phone::PhoneSetup {
                    domain: domain.clone(),
                    // (an unspecified address without server.advertise: the page
                    // uses the host it came from)
                    listeners: listens
                        .iter()
                        .map(|l| match cfg.server.advertise {
                            Some(ip) => (l.transport, SocketAddr::new(ip, l.addr.port())),
                            None => (l.transport, l.addr),
                        })
                        .collect(),
                },
            },
        )
        .await?;
    } else {
        drop(reload_tx);
    }
    let webhook_tx = match &detect_tx {
        Some(results) => {
            let (tx, rx) = channel::<Hook>();
            let results = results.clone();
            std::thread::Builder::new()
                .name("palisade-webhook".into())
                .spawn(move || webhook_thread(rx, results))?;
            Some(tx)
        }
        None => None,
    };
    let idle = Duration::from_secs(cfg.tcp.idle_timeout.max(1));
    let message_timeout = Duration::from_secs(cfg.tcp.message_timeout.max(1));
    let max_conns = cfg.tcp.max_connections;
    let next_conn = Arc::new(AtomicUsize::new(1));
    let live = Arc::new(AtomicUsize::new(0));
    // The first UDP address: one socket per worker. Further UDP addresses: one socket
    // each, read by a task on this thread and shared by the workers for sending.
    let mut worker_udp: Vec<Arc<std::net::UdpSocket>> = Vec::new();
    let mut udp_addrs: Vec<SocketAddr> = Vec::new();
    let mut udp = Vec::new();
    let mut tls = None;
    for l in &listens {
        match l.transport {
            Transport::Udp if worker_udp.is_empty() => {
                // A plain bind first: it fails if anyone holds the address (another
                // server sharing it with SO_REUSEPORT included) and resolves port 0.
                let probe = std::net::UdpSocket::bind(l.addr)
                    .with_context(|| format!("binding udp:{}", l.addr))?;
                let addr = probe.local_addr()?;
                drop(probe);
                for _ in 0..workers {
                    let s = bind_worker_udp(addr, cfg.server.udp_buffer)
                        .with_context(|| format!("binding udp:{addr} (SO_REUSEPORT)"))?;
                    worker_udp.push(Arc::new(s));
                }
                info!(transport = "udp", %addr, sockets = workers, "listening");
                udp_addrs.push(addr);
                steer_on(&inbound_tx, &worker_udp, addr, cfg.server.udp_gather);
            }
            Transport::Udp => {
                let s = bind_udp(l.addr, cfg.server.udp_buffer)
                    .with_context(|| format!("binding udp:{}", l.addr))?;
                let addr = s.local_addr()?;
                info!(transport = "udp", %addr, "listening");
                udp.push(Arc::new(s));
                udp_addrs.push(addr);
            }
            Transport::Ws | Transport::Wss => {
                let (acceptor, listener) = bind_stream(l, &cfg, &mut tls).await?;
                ws::spawn_listener(
                    listener,
                    ws::WsSetup {
                        transport: l.transport,
                        inbound: inbound_tx.clone(),
                        next_conn: next_conn.clone(),
                        live: live.clone(),
                        max_conns,
                        idle,
                        ping: Duration::from_secs(cfg.ws.ping_interval.max(1)),
                        limits: limits.clone(),
                        origins: Arc::new(cfg.ws.origins.clone()),
                        tls: acceptor,
                    },
                );
            }
            Transport::Tcp | Transport::Tls => {
                let (acceptor, listener) = bind_stream(l, &cfg, &mut tls).await?;
                let (itx, nc, live, limits, transport) = (
                    inbound_tx.clone(),
                    next_conn.clone(),
                    live.clone(),
                    limits.clone(),
                    l.transport,
                );
                tokio::spawn(async move {
                    let mut refused: u64 = 0;
                    let mut failed: u64 = 0;
                    loop {
                        let (sock, addr) = match listener.accept().await {
                            Ok(x) => x,
                            Err(e) => {
                                // EMFILE, ENFILE, ENOBUFS: retrying at once would spin.
                                failed += 1;
                                if failed.is_power_of_two() {
                                    warn!(error = %e, failures = failed, "accept failed; backing off 100 ms");
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        };
                        if live.load(Ordering::Relaxed) >= max_conns {
                            refused += 1;
                            if refused.is_power_of_two() {
                                warn!(peer = %addr, max = max_conns, refused, "connection refused: tcp.max_connections reached");
                            }
                            continue;
                        }
                        let _ = sock.set_nodelay(true);
                        let conn = itx.conn_id(&nc, itx.owner_of_addr(&addr));
                        let peer = Peer {
                            transport,
                            addr,
                            conn: Some(conn),
                        };
                        let (tx, rx) = mpsc::channel(CONN_QUEUE);
                        let (kill, kill_rx) = oneshot::channel();
                        let (itx, live, limits, acceptor) =
                            (itx.clone(), live.clone(), limits.clone(), acceptor.clone());
                        live.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            let task = ConnTask {
                                conn,
                                peer,
                                inbound: itx,
                                rx,
                                tx,
                                idle,
                                message_timeout,
                                limits,
                                kill: kill_rx,
                                announce: Some(kill),
                            };
                            match acceptor {
                                None => run_conn(sock, task).await,
                                Some(a) => match tokio::time::timeout(
                                    Duration::from_secs(10),
                                    a.accept(sock),
                                )
                                .await
                                {
                                    Ok(Ok(s)) => run_conn(s, task).await,
                                    _ => debug!(peer = %addr, "TLS handshake failed"),
                                },
                            }
                            live.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        }
    }
    // Extra UDP sockets (beyond the first address) are read by tasks on this thread.
    for (k, s) in udp.iter().enumerate() {
        let (s, itx) = (s.clone(), inbound_tx.clone());
        let socket = k + 1;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, addr)) = s.recv_from(&mut buf).await {
                let _ = itx
                    .send(Inbound::Datagram {
                        peer: Peer {
                            transport: Transport::Udp,
                            addr,
                            conn: None,
                        },
                        bytes: buf.get(..n).unwrap_or_default().to_vec(),
                        socket,
                    })
                    .await;
            }
        });
    }
    if !cfg.cluster.node.is_empty() {
        let Db::Pg(store, _) = &db else {
            anyhow::bail!(
                "[cluster] node needs a PostgreSQL database the nodes share: set [store] url"
            );
        };
        let store = store.clone();
        let sip = udp_addrs.first().map(|a| match cfg.server.advertise {
            Some(ip) => SocketAddr::new(ip, a.port()),
            None if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
            None => *a,
        });
        cluster::start(cluster::Setup {
            store,
            name: cfg.cluster.node.clone(),
            sip,
            admin: admin_addr.map(|a| a.to_string()).unwrap_or_default(),
            evidence_key,
            dead_after: Duration::from_millis(cfg.cluster.dead_after_ms),
            router: inbound_tx.clone(),
            telemetry: telemetry.clone(),
        })?;
    }
    // What a newcomer needs to point a phone here, on standard output as well as in the
    // log (which may go to a file).
    let mut bound: Vec<String> = udp_addrs.iter().map(|a| format!("udp:{a}")).collect();
    bound.extend(
        listens
            .iter()
            .filter(|l| l.transport != Transport::Udp)
            .map(|l| format!("{}:{}", l.transport.param(), l.addr)),
    );
    let pg = match &db {
        Db::Pg(..) => format!(", accounts and records in {}", db.shown()),
        Db::Sqlite(_) => String::new(),
    };
    println!(
        "palisade: serving domain {domain} on {}; data in {}{pg}",
        bound.join(", "),
        data_dir.display()
    );
    println!(
        "palisade: a phone registers as sip:USER@{domain} with its password (README: \"Connect a phone\")"
    );
    if no_users {
        let at = match (&db, &source.path) {
            (Db::Pg(..), Some(file)) => format!("--config {}", file.display()),
            _ => format!("--data-dir {}", data_dir.display()),
        };
        println!(
            "palisade: there are no accounts yet; add the first one with\n    palisade user add alice --password secret {at}"
        );
        warn!(data_dir = %data_dir.display(), "no accounts yet: add one with `palisade user add NAME --password PASSWORD`");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    let (mut shards, mut starts) = (Vec::new(), Vec::new());
    for (index, (endpoint, (rx, waker))) in endpoints.into_iter().zip(shard_ends).enumerate() {
        let own = worker_udp.get(index).cloned();
        let mut socks: Vec<(UdpOut, SocketAddr)> = Vec::new();
        if let (Some(s), Some(&a)) = (&own, udp_addrs.first()) {
            socks.push((UdpOut::Own(s.clone()), a));
        }
        for (s, &a) in udp
            .iter()
            .zip(udp_addrs.iter().skip(usize::from(own.is_some())))
        {
            socks.push((UdpOut::Shared(s.clone()), a));
        }
        let shell = Shell {
            index,
            endpoint,
            udp: socks,
            pending: Vec::with_capacity(sys::BATCH),
            handoff_dropped: 0,
            rt: rt.clone(),
            udp_from: HashMap::new(),
            conns: HashMap::new(),
            by_addr: HashMap::new(),
            next_conn: next_conn.clone(),
            router: inbound_tx.clone(),
            store: StoreHandoff::new(store_tx.clone()),
            idle,
            message_timeout,
            limits: limits.clone(),
            summary: (Instant::now(), 0),
            traffic: (Instant::now(), 0),
            slow_peers_closed: 0,
            warn_budget: LineBudget::new(),
            event_budget: EventBudget {
                sources: HashMap::new(),
                reported: Instant::now(),
                full: palisade_core::FullSweep::default(),
            },
            detect_tx: detect_tx.clone(),
            detect_dropped: 0,
            observed: Vec::new(),
            observed_since: None,
            notify_from: cfg.notify.from_user.clone(),
            evidence: evidence_tx.clone(),
            entries: Vec::new(),
            refused_message: None,
            webhooks: webhook_tx.clone(),
            released: Vec::new(),
            telemetry: telemetry.clone(),
            published: (Instant::now(), Instant::now()),
            hep: hep.clone(),
        };
        shards.push(std::sync::Mutex::new(worker::Shard { shell, rx }));
        starts.push((waker, own));
    }
    let shards: worker::Shards = Arc::new(shards);
    for (index, (waker, socket)) in starts.into_iter().enumerate() {
        let w = worker::Worker {
            index,
            shards: shards.clone(),
            waker,
            socket,
            stop: stop.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("palisade-w{index}"))
                .spawn(move || worker::run(w))?,
        );
    }
    // kept for reloads (the detection settings); dropped before the threads are joined
    let detect_reload = detect_tx.clone();
    let evidence_reload = evidence_tx.clone();
    drop((store_tx, detect_tx, evidence_tx, webhook_tx, worker_udp));
    // The workers hold the only receivers: this thread keeps a sender for the tasks
    // it runs (stream connections, extra UDP sockets).
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut watch = tokio::time::interval(Duration::from_millis(200));
    let mut do_reload = |how: &str| {
        let r = reload::reload(&source, &mut cfg, &inbound_tx, detect_reload.as_ref());
        let fields = match &r {
            Ok(v) => {
                info!(how, result = %v, "configuration reloaded");
                vec![("how", serde_json::json!(how)), ("result", v.clone())]
            }
            Err(e) => {
                warn!(how, error = %e, "configuration reload refused; the running configuration stays");
                vec![
                    ("how", serde_json::json!(how)),
                    ("refused", serde_json::json!(e)),
                ]
            }
        };
        if let Some(ev) = &evidence_reload {
            let _ = ev.send(
                crate::evidence::entry("config-reload", unix_now().saturating_mul(1000), fields),
                None,
            );
        }
        r
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => { info!("shutting down (SIGINT)"); break; }
            _ = term.recv() => { info!("shutting down (SIGTERM)"); break; }
            _ = hup.recv() => { let _ = do_reload("SIGHUP"); }
            Some(reply) = reload_rx.recv() => { let _ = reply.send(do_reload("api")); }
            _ = watch.tick() => {
                if threads.iter().any(|t| t.is_finished()) {
                    error!("a worker thread ended; shutting down");
                    break;
                }
            }
        }
    }
    drop(detect_reload);
    drop(evidence_reload);
    stop.store(true, Ordering::Relaxed);
    inbound_tx.wake_all();
    for t in threads {
        if t.join().is_err() {
            error!("a worker thread panicked outside the core's containment");
        }
    }
    let mut shells = worker::into_shells(shards);
    let mut evidence_tx = None;
    for shell in shells.iter_mut() {
        shell.send_observed(Instant::now(), true);
        shell.shield_summary(true);
        shell.suppressed_events(true);
        shell.traffic_summary(true);
        if let Some(e) = shell.evidence.take() {
            evidence_tx = Some(e);
        }
    }
    // Nothing reads the shards' queues any more: a thread handing something to a core
    // (accounts reloaded, a restriction, a release) gets an error instead of waiting.
    drop(inbound_tx);
    // The storage thread writes every binding it was given (the workers' queues are
    // closed and drained) before it ends: nothing acknowledged is lost on SIGTERM.
    for shell in shells.iter_mut() {
        shell.store.finish();
        if shell.store.shed > 0 {
            warn!(
                shard = shell.index,
                shed = shell.store.shed,
                "messages for the storage thread were shed while it was behind"
            );
        }
    }
    // The cores' tables (the location, transactions, dialogs) are left to the process's
    // exit rather than freed one allocation at a time: the workers that made them are
    // gone, and freeing another thread's memory cost about 4k instructions per binding
    // (seconds for a million). Everything else of a shell (its queues' senders, which
    // end the other threads) is dropped as usual.
    for shell in shells {
        let Shell { endpoint, .. } = shell;
        std::mem::forget(endpoint);
    }
    let _ = store_handle.join();
    if let Some(m) = media_relay {
        m.stop();
    }
    if let Some(h) = detect_handle {
        let _ = h.join();
    }
    // Last: the stop entry, after everything the other threads had to record.
    if let (Some(tx), Some(h)) = (evidence_tx, evidence_handle) {
        let _ = tx.send(
            crate::evidence::entry("server-stop", unix_now().saturating_mul(1000), vec![]),
            None,
        );
        tx.close();
        drop(tx);
        let _ = h.join();
    }
    Ok(())
}

/// Turns on the steering of internal datagrams among the workers' sockets (see
/// `Steer`); without it (a kernel that refuses the program) hand-overs go
/// through the queues and wake-ups are signals.
fn steer_on(router: &Router, socks: &[Arc<std::net::UdpSocket>], local: SocketAddr, gather: bool) {
    use std::os::fd::AsRawFd as _;
    let (Some(first), true) = (socks.first(), socks.len() > 1) else {
        return;
    };
    // (gathered at first: a server starts idle; see `balance`)
    if let Err(e) = sys::attach_steering(first.as_raw_fd(), gather) {
        warn!(error = %e, "the kernel refused the workers' steering program; hand-overs go through queues");
        return;
    }
    let to = match local.ip() {
        std::net::IpAddr::V4(a) if a.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, local.port()))
        }
        std::net::IpAddr::V6(a) if a.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, local.port()))
        }
        _ => local,
    };
    let mut token = [0u8; 8];
    if getrandom::getrandom(&mut token).is_err() {
        return;
    }
    router.set_steer(Steer {
        to,
        local,
        token,
        socket: first.clone(),
        gathered: std::sync::atomic::AtomicBool::new(gather),
        balanced: gather,
    });
}
