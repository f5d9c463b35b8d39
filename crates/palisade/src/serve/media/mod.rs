//! The media relay (`[media]`): the anchors (one per shard, `anchor`) rewrite calls'
//! SDP toward relay ports and bind their sockets; one relay thread (`relay`) reads
//! every relay socket (epoll, `recvmmsg`), checks each datagram with `palisade_media`
//! (the party's stream: shape, latching, SSRC, budget; the call's gate: nothing before
//! the answer but the early media the operator allows), forwards what passes from the
//! other side's socket, and releases the ports at the call's end or media timeout. A
//! stream it cuts for malformed packets is reported to the detection thread.

use std::net::IpAddr;
use std::sync::mpsc::{channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use palisade_media::{EarlyMedia, PortPool};

use super::evidence::EvidenceTx;
use crate::messages::DetectMsg;
use crate::serve::sys::EventFd;

mod anchor;
mod relay;
pub(crate) mod types;

pub(crate) use anchor::Anchor;
use types::{MediaCmd, MediaStats, RelayQueue, Shared};

/// The relay's settings from `[media]`.
pub(crate) struct Settings {
    pub(crate) pool: PortPool,
    pub(crate) advertise: IpAddr,
    pub(crate) bind: IpAddr,
    pub(crate) early: EarlyMedia,
    pub(crate) timeout: Duration,
    pub(crate) limits: palisade_sdp::Limits,
}

/// The running relay: what the shards' anchors are made from, and its thread.
pub(crate) struct Running {
    pub(crate) shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Ends the relay thread and waits for it (at shutdown: it holds a sender of the
    /// detection thread's queue, which ends once every sender is gone).
    pub(crate) fn stop(self) {
        self.shared.relay.send(MediaCmd::Stop);
        let _ = self.thread.join();
    }
}

/// Starts the relay thread.
pub(crate) fn start(
    s: Settings,
    stats: Arc<MediaStats>,
    evidence: Option<EvidenceTx>,
    detect: Option<SyncSender<DetectMsg>>,
) -> anyhow::Result<Running> {
    let (tx, rx) = channel();
    let shared = Arc::new(Shared {
        pool: Mutex::new(s.pool),
        relay: RelayQueue {
            tx: Mutex::new(tx),
            wake: EventFd::new()?,
        },
        advertise: s.advertise,
        bind: s.bind,
        limits: s.limits,
    });
    let r = relay::Relay::new(
        shared.clone(),
        rx,
        s.early,
        s.timeout,
        stats,
        evidence,
        detect,
    )?;
    let thread = std::thread::Builder::new()
        .name("palisade-media".into())
        .spawn(move || r.run())?;
    Ok(Running { shared, thread })
}
