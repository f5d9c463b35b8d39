//! The detector's role in a cluster: exactly one node runs the campaign detectors (the
//! holder of the detector's advisory lock in PostgreSQL); the others hand what their
//! cores observe to it through the database's queue of observations. When the leader's
//! node dies (or loses its connection), its lock goes with its session and another node
//! takes the lead within [`TRY_EVERY`] (plus PostgreSQL noticing the dead connection),
//! rebuilding its detector from the records in the database.

use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use palisade_detect::Observation;
use palisade_store::{Leadership, PgStore};
use tracing::{error, info, warn};

/// How often a node that does not lead tries to take the lead, and the leader checks it
/// still holds it.
const TRY_EVERY: Duration = Duration::from_secs(2);
/// Observations taken from the queue at most per pass.
const TAKE: i64 = 5_000;
/// Observations kept for shipping while the database refuses them; beyond, dropped
/// (counted, logged).
const MAX_OUTBOX: usize = 100_000;

/// Whether this node runs the cluster's detector (for its heartbeat and status).
static LEADING: AtomicBool = AtomicBool::new(false);

/// Whether this node runs the cluster's detector now.
pub(super) fn leading_now() -> bool {
    LEADING.load(Ordering::Relaxed)
}

/// What changed at a [`Role::step`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing.
    Same,
    /// This node just took the lead: rebuild the detector from the records.
    Took,
    /// This node lost the lead (its lock's connection broke): stop detecting.
    Lost,
}

/// This node's part in the cluster's detection.
pub(super) struct Role {
    store: PgStore,
    node: String,
    /// Mixed into this node's transaction keys, so that calls of different nodes never
    /// share one at the detector.
    salt: u64,
    lead: Option<Leadership>,
    next_try: Instant,
    outbox: Vec<String>,
    dropped: u64,
    failing: bool,
}

impl Role {
    pub(super) fn new(store: PgStore, node: &str) -> Role {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        node.hash(&mut h);
        Role {
            store,
            node: node.to_string(),
            salt: h.finish() | 1,
            lead: None,
            next_try: Instant::now(),
            outbox: Vec::new(),
            dropped: 0,
            failing: false,
        }
    }

    pub(super) fn leading(&self) -> bool {
        self.lead.is_some()
    }

    fn trouble(&mut self, what: &str, e: &dyn std::fmt::Display) {
        if !self.failing {
            error!(error = %e, "cluster detection: {what} failed; retrying");
        }
        self.failing = true;
    }

    /// Takes or checks the lead (every [`TRY_EVERY`]), and ships what waits.
    pub(super) fn step(&mut self) -> Step {
        let mut step = Step::Same;
        if Instant::now() >= self.next_try {
            self.next_try = Instant::now() + TRY_EVERY;
            let held = self.lead.as_mut().map(|l| l.held(Duration::from_secs(2)));
            match held {
                Some(false) => {
                    warn!(node = %self.node, "cluster detection: the detector's lock is lost (its connection broke); another node takes over");
                    self.lead = None;
                    step = Step::Lost;
                }
                Some(true) => {}
                None => match self.store.lead() {
                    Ok(Some(l)) => {
                        info!(node = %self.node, "cluster detection: this node runs the cluster's detector");
                        self.lead = Some(l);
                        step = Step::Took;
                    }
                    Ok(None) => {}
                    Err(e) => self.trouble("taking the detector's lock", &e),
                },
            }
            LEADING.store(self.lead.is_some(), Ordering::Relaxed);
        }
        if self.lead.is_some() && !self.outbox.is_empty() {
            // what was queued here before this node led is detected here
            self.outbox.clear();
        }
        self.ship();
        step
    }

    /// An observation for the leader (this node does not lead).
    pub(super) fn forward(&mut self, mut o: Observation) {
        match &mut o {
            Observation::CallStart(c) => c.key ^= self.salt,
            Observation::CallStatus { key, .. } => *key ^= self.salt,
            _ => {}
        }
        match serde_json::to_string(&o) {
            Ok(s) if self.outbox.len() < MAX_OUTBOX => self.outbox.push(s),
            Ok(_) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    error!(
                        dropped = self.dropped,
                        "cluster detection: observations dropped, the database keeps refusing them"
                    );
                }
            }
            Err(e) => warn!(error = %e, "an observation could not be written"),
        }
    }

    fn ship(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        match self.store.ship_observations(&self.node, &self.outbox) {
            Ok(()) => {
                self.outbox.clear();
                if self.failing {
                    info!("cluster detection: the database takes observations again");
                    self.failing = false;
                }
            }
            Err(e) => self.trouble("handing observations to the detector", &e),
        }
    }

    /// The other nodes' observations waiting for this (leading) node.
    pub(super) fn take(&mut self) -> Vec<Observation> {
        if self.lead.is_none() {
            return vec![];
        }
        match self.store.take_observations(TAKE) {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|(node, body)| match serde_json::from_str(&body) {
                    Ok(o) => Some(o),
                    Err(e) => {
                        warn!(error = %e, node, "an observation from another node does not read; skipped");
                        None
                    }
                })
                .collect(),
            Err(e) => {
                self.trouble("taking the other nodes' observations", &e);
                vec![]
            }
        }
    }
}
