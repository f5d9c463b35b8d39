//! The media relay (`[media]`): the anchors (one per shard, `anchor`) rewrite calls'
//! SDP toward relay ports and bind their sockets; one relay thread (`relay`) reads
//! every relay socket (epoll, `recvmmsg`), checks each datagram with `palisade_media`
//! (the party's stream: shape, latching, SSRC, budget; the call's gate: nothing before
//! the answer but the early media the operator allows), forwards what passes from the
//! other side's socket, and releases the ports at the call's end or media timeout.

use std::net::IpAddr;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_media::{EarlyMedia, PortPool};

use super::evidence::EvidenceTx;

mod anchor;
mod relay;
pub(crate) mod types;

pub(crate) use anchor::Anchor;
use types::{MediaStats, Shared};

/// The relay's settings from `[media]`.
pub(crate) struct Settings {
    pub(crate) pool: PortPool,
    pub(crate) advertise: IpAddr,
    pub(crate) bind: IpAddr,
    pub(crate) early: EarlyMedia,
    pub(crate) timeout: Duration,
    pub(crate) limits: palisade_sdp::Limits,
}

/// Starts the relay thread; the shared part the shards' anchors are made from.
pub(crate) fn start(
    s: Settings,
    stats: Arc<MediaStats>,
    evidence: Option<EvidenceTx>,
) -> anyhow::Result<Arc<Shared>> {
    let (tx, rx) = channel();
    let shared = Arc::new(Shared {
        pool: Mutex::new(s.pool),
        relay: Mutex::new(tx),
        advertise: s.advertise,
        bind: s.bind,
        limits: s.limits,
    });
    let r = relay::Relay::new(shared.clone(), rx, s.early, s.timeout, stats, evidence)?;
    std::thread::Builder::new()
        .name("palisade-media".into())
        .spawn(move || r.run())?;
    Ok(shared)
}
