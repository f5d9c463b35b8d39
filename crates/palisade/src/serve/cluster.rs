//! This server as one node of a cluster on PostgreSQL (`[cluster] node`): the cluster
//! thread beats the node's heartbeat, keeps the other nodes' bindings in the location of
//! every shard (LISTEN/NOTIFY, no query per packet), stops routing through a node whose
//! heartbeat stopped, and applies the restrictions (blocks) any node or the CLI made.
//!
//! A binding another node holds is routed through that node: its copy here has the
//! holding node's address as its source and, as its Path, a Route to that node carrying
//! the node's flow token (see `palisade_core::FlowKey`), so that the node sends the
//! request on the pinhole or connection the phone opened to it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use palisade_core::{Binding, Peer, Transport};
use palisade_detect::{Restriction, Subject};
use palisade_store::{
    BindingRow, ClusterChange, Listener, NodeJoin, PgStore, Records as _, Storage as _,
};
use tracing::{error, info, warn};

use super::router::Router;
use super::telemetry::Telemetry;
use crate::clock::{now_ms, unix_now};
use crate::messages::{Inbound, Replica};

static NODE: OnceLock<String> = OnceLock::new();

/// This node's name when it is part of a cluster.
pub(super) fn node() -> Option<&'static str> {
    NODE.get().map(String::as_str)
}

/// How often the node beats, reads the nodes table and the restrictions.
const BEAT: Duration = Duration::from_secs(1);
/// How often everything is read again, notifications or not (a copy a full shard queue
/// dropped is repaired by then).
const RESYNC: Duration = Duration::from_secs(30);

/// What the cluster thread needs.
pub(super) struct Setup {
    pub(super) store: PgStore,
    pub(super) name: String,
    /// This node's SIP address for the others (UDP), if it has one.
    pub(super) sip: Option<SocketAddr>,
    /// Its admin listener (where its evidence log is served), or empty.
    pub(super) admin: String,
    /// Its evidence log's verifier key, or empty.
    pub(super) evidence_key: String,
    pub(super) dead_after: Duration,
    pub(super) router: Router,
    pub(super) telemetry: Arc<Telemetry>,
}

impl Setup {
    fn joining<'a>(&'a self, sip: &'a str) -> NodeJoin<'a> {
        NodeJoin {
            name: &self.name,
            sip,
            admin: &self.admin,
            evidence_key: &self.evidence_key,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Joins the cluster (this node's row, with a fresh heartbeat) and starts the thread.
pub(super) fn start(s: Setup) -> anyhow::Result<()> {
    NODE.set(s.name.clone())
        .map_err(|_| anyhow::anyhow!("the cluster node is set twice"))?;
    let sip = s.sip.map(|a| a.to_string()).unwrap_or_default();
    if sip.is_empty() {
        warn!(node = %s.name, "this node has no UDP listener: other nodes cannot route calls for its phones through it");
    }
    // (on its own thread: the PostgreSQL client blocks, and cannot run on the runtime's)
    std::thread::Builder::new()
        .name("palisade-cluster".into())
        .spawn(move || {
            let mut failing = false;
            while let Err(e) = s.store.join(&s.joining(&sip)) {
                if !failing {
                    error!(error = %e, node = %s.name, "cluster: cannot join (PostgreSQL); retrying each second");
                    failing = true;
                }
                std::thread::sleep(BEAT);
            }
            info!(node = %s.name, %sip, "joined the cluster");
            Node::new(s).run()
        })?;
    Ok(())
}

struct Peer_ {
    sip: Option<SocketAddr>,
    alive: bool,
}

struct Node {
    s: Setup,
    listener: Option<Listener>,
    nodes: HashMap<String, Peer_>,
    /// Bindings held as copies of another node's, and that node.
    remote: HashMap<(String, String), String>,
    /// Restrictions in force, as last read.
    restrictions: BTreeMap<Subject, Restriction>,
    failing: bool,
}

impl Node {
    fn new(s: Setup) -> Node {
        Node {
            s,
            listener: None,
            nodes: HashMap::new(),
            remote: HashMap::new(),
            restrictions: BTreeMap::new(),
            failing: false,
        }
    }

    fn run(mut self) {
        let mut next_beat = Instant::now();
        let mut next_resync = Instant::now() + RESYNC;
        loop {
            if Instant::now() >= next_beat {
                next_beat = Instant::now() + BEAT;
                if let Err(e) = self.beat() {
                    self.trouble(&e.to_string());
                }
                if Instant::now() >= next_resync {
                    next_resync = Instant::now() + RESYNC;
                    self.resync();
                }
            }
            if self.listener.is_none() {
                match self.s.store.listener() {
                    Ok(l) => self.listener = Some(l),
                    Err(e) => {
                        self.trouble(&e.to_string());
                        std::thread::sleep(next_beat.saturating_duration_since(Instant::now()));
                        continue;
                    }
                }
            }
            let wait = next_beat.saturating_duration_since(Instant::now());
            let changes = match self.listener.as_mut().map(|l| l.wait(wait)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    self.listener = None;
                    self.trouble(&e.to_string());
                    continue;
                }
                None => continue,
            };
            let mut keys = Vec::new();
            for c in changes {
                match c {
                    ClusterChange::Resync => self.resync(),
                    ClusterChange::Settings => self.read_restrictions(),
                    ClusterChange::Binding { aor, contact } => keys.push((aor, contact)),
                }
            }
            if !keys.is_empty() {
                match self.s.store.bindings_named(&keys, unix_now()) {
                    Ok(rows) => {
                        let mut present = std::collections::HashSet::new();
                        for r in rows {
                            present.insert((r.aor.clone(), r.contact.clone()));
                            self.apply(r);
                        }
                        for k in keys.into_iter().filter(|k| !present.contains(k)) {
                            self.forget(k);
                        }
                    }
                    Err(e) => self.trouble(&e.to_string()),
                }
            }
        }
    }

    /// One line when the database starts failing, one when it works again.
    fn trouble(&mut self, e: &str) {
        if !self.failing {
            error!(error = %e, "cluster: PostgreSQL is unreachable; routing goes on with the location as it is, retrying each second");
        }
        self.failing = true;
    }

    fn recovered(&mut self) {
        if self.failing {
            info!("cluster: PostgreSQL reachable again");
            self.failing = false;
            self.resync();
        }
    }

    /// The heartbeat, and the other nodes' state.
    fn beat(&mut self) -> Result<(), palisade_store::StoreError> {
        let t = &self.s.telemetry;
        let load = serde_json::json!({
            "registrations": t.registrations.load(Ordering::Relaxed),
            "calls_active": t.calls_active.load(Ordering::Relaxed),
            "transactions": t.transactions(),
            "workers": t.shards.len(),
            "remote_bindings": self.remote.len(),
            "detector": super::detect_role::leading_now(),
        })
        .to_string();
        if !self.s.store.heartbeat(&self.s.name, &load)? {
            // an operator removed this node's row: it comes back
            let sip = self.s.sip.map(|a| a.to_string()).unwrap_or_default();
            self.s.store.join(&self.s.joining(&sip))?;
        }
        let rows = self.s.store.nodes(unix_now())?;
        // (right after an outage every heartbeat is old: no node is judged by it until
        // each had a beat's time to refresh its row)
        let judging = !self.failing;
        self.recovered();
        let dead_ms = i64::try_from(self.s.dead_after.as_millis()).unwrap_or(i64::MAX);
        let mut revived = false;
        let mut died = Vec::new();
        for r in rows {
            if r.name == self.s.name {
                continue;
            }
            let alive = r.age_ms <= dead_ms || (!judging && self.nodes.contains_key(&r.name));
            let sip = r.sip.parse().ok();
            match self.nodes.get(&r.name) {
                Some(p) if p.alive && !alive => {
                    warn!(node = %r.name, silent_ms = r.age_ms, "cluster: node stopped beating; its phones are unreachable until they register again (here or at another node) or it comes back");
                    died.push(r.name.clone());
                }
                Some(p) if !p.alive && alive => {
                    info!(node = %r.name, "cluster: node beats again");
                    revived = true;
                }
                None if alive => {
                    info!(node = %r.name, sip = %r.sip, "cluster: node seen");
                    revived = true;
                }
                _ => {}
            }
            if alive && sip.is_none() {
                warn!(node = %r.name, sip = %r.sip, "cluster: node has no usable SIP address; its phones cannot be reached from here");
            }
            self.nodes.insert(r.name, Peer_ { sip, alive });
        }
        for name in died {
            let keys: Vec<_> = self
                .remote
                .iter()
                .filter(|(_, n)| **n == name)
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                self.forget(k);
            }
        }
        if revived {
            self.resync();
        }
        self.read_restrictions();
        Ok(())
    }

    /// Reads every binding again: copies of the other nodes' are made or refreshed,
    /// copies whose row is gone are dropped.
    fn resync(&mut self) {
        let rows = match self.s.store.load_bindings(unix_now()) {
            Ok(r) => r,
            Err(e) => return self.trouble(&e.to_string()),
        };
        let mut present = std::collections::HashSet::new();
        for r in rows {
            present.insert((r.aor.clone(), r.contact.clone()));
            self.apply(r);
        }
        let gone: Vec<_> = self
            .remote
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            self.forget(k);
        }
    }

    /// A binding's current row.
    fn apply(&mut self, r: BindingRow) {
        let key = (r.aor.clone(), r.contact.clone());
        if r.node.is_empty() || r.node == self.s.name {
            // ours (saved by this node's registrar, which holds it)
            self.remote.remove(&key);
            return;
        }
        let via = self
            .nodes
            .get(&r.node)
            .filter(|p| p.alive)
            .and_then(|p| p.sip);
        let Some(via) = via else {
            self.forget(key);
            return;
        };
        let node = r.node.clone();
        let b = remote_binding(r, via);
        self.s
            .router
            .replicate(usize::MAX, || Replica::Saved(Box::new((b.clone(), None))));
        self.remote.insert(key, node);
    }

    /// Drops the copy of another node's binding (its row is gone, or its node died).
    fn forget(&mut self, key: (String, String)) {
        if self.remote.remove(&key).is_some() {
            let (aor, contact) = key;
            self.s.router.replicate(usize::MAX, || Replica::Removed {
                aor: aor.clone(),
                contact: contact.clone(),
            });
        }
    }

    /// Restrictions made anywhere in the cluster (a block by the CLI or any node's API,
    /// a detector's response) applied here; lifted ones lifted.
    fn read_restrictions(&mut self) {
        let now = match self.s.store.restrictions(now_ms()) {
            Ok(r) => r,
            Err(e) => return self.trouble(&e.to_string()),
        };
        // A rate limit is a cluster's: each of the n live nodes lets through its n-th
        // (rounded up), so that calls spread over the nodes meet about the limit, not n
        // times it.
        let live = 1 + self.nodes.values().filter(|p| p.alive).count() as u32;
        let now: BTreeMap<Subject, Restriction> = now
            .into_iter()
            .map(|mut r| {
                r.per_minute = r.per_minute.map(|n| n.div_ceil(live).max(1));
                (r.subject.clone(), r)
            })
            .collect();
        for (subject, r) in &now {
            if self.restrictions.get(subject) != Some(r) {
                let _ = self.s.router.try_send(Inbound::Restrict(r.clone()));
            }
        }
        for subject in self.restrictions.keys() {
            if !now.contains_key(subject) {
                let _ = self.s.router.try_send(Inbound::Lift(subject.clone()));
            }
        }
        self.restrictions = now;
    }
}

/// Another node's binding as this node routes it: to that node, with a Route carrying
/// its flow token, then the binding's own Path.
fn remote_binding(r: BindingRow, via: SocketAddr) -> Binding {
    let left = (r.expires - unix_now()).max(0) as u64;
    let mut path = vec![format!("sip:{via};lr;flow={}", r.flow)];
    path.extend(r.path.lines().filter(|s| !s.is_empty()).map(str::to_string));
    Binding {
        aor: r.aor,
        contact: r.contact,
        expires_at: Instant::now() + Duration::from_secs(left),
        q: r.q,
        call_id: r.call_id,
        cseq: r.cseq,
        path,
        source: Peer {
            transport: Transport::Udp,
            addr: via,
            conn: None,
        },
        user_agent: r.user_agent,
    }
}
