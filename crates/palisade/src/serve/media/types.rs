//! What the relay's parts share (a leaf: the anchors, the relay thread and the metrics
//! read it, it reads none of them).

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Sender;
use std::sync::Mutex;

use palisade_media::{PortPair, PortPool, StreamConfig};

use crate::serve::sys::EventFd;

/// The relay thread's queue and its wake-up: an eventfd in the relay's epoll set, so
/// that a command (an answer above all) is taken at once, before the packets that
/// follow it, not at the relay's next pass.
pub(crate) struct RelayQueue {
    pub(crate) tx: Mutex<Sender<MediaCmd>>,
    pub(crate) wake: EventFd,
}

impl RelayQueue {
    /// Queues a command, then wakes the relay (in that order: once awake, it finds the
    /// command).
    pub(crate) fn send(&self, cmd: MediaCmd) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(cmd);
        }
        self.wake.wake();
    }
}

/// What the anchors of all shards share: the port pool (locked once per offer and per
/// release, never per packet) and the relay thread's queue.
pub(crate) struct Shared {
    pub(crate) pool: Mutex<PortPool>,
    pub(crate) relay: RelayQueue,
    /// Written in the SDP.
    pub(crate) advertise: IpAddr,
    /// Where the relay's sockets are bound.
    pub(crate) bind: IpAddr,
    pub(crate) limits: palisade_sdp::Limits,
}

/// One anchored media line of a new call: its ports, their sockets (bound already),
/// and the caller's stream rules.
pub(crate) struct Leg {
    pub(crate) line: usize,
    pub(crate) caller_pair: PortPair,
    pub(crate) callee_pair: PortPair,
    pub(crate) caller_sockets: (UdpSocket, Option<UdpSocket>),
    pub(crate) callee_sockets: (UdpSocket, Option<UdpSocket>),
    pub(crate) caller: StreamConfig,
    pub(crate) mux: bool,
}

/// What the anchors tell the relay thread.
pub(crate) enum MediaCmd {
    /// A new call's legs, and the account the caller authenticated as (`None`: not
    /// authenticated), to name in a finding about the caller's media.
    Offer {
        call: String,
        account: Option<String>,
        legs: Vec<Leg>,
    },
    /// Where one side of a call now is, per media line (an answer, a new offer).
    Expect {
        call: String,
        caller_side: bool,
        lines: Vec<(usize, StreamConfig)>,
    },
    /// The call was answered: media flows both ways.
    Answered { call: String },
    /// The call is over: sockets closed, ports back to the pool.
    End { call: String },
    /// The server stops: the relay thread ends (and lets go of its queues).
    Stop,
}

/// The relay's counters, for `/metrics` (written by the relay thread only).
#[derive(Default)]
pub(crate) struct MediaStats {
    pub(crate) forwarded: AtomicU64,
    /// Valid packets held back (before the answer, or toward a party not yet known).
    pub(crate) held: AtomicU64,
    /// Refused packets by reason (`palisade_media::Reason::ALL` order).
    pub(crate) refused: Vec<AtomicU64>,
    pub(crate) calls: AtomicU64,
    pub(crate) cut: AtomicU64,
    /// Observations of cut streams the detection thread's full queue did not take.
    pub(crate) detect_dropped: AtomicU64,
}

impl MediaStats {
    pub(crate) fn new() -> Self {
        MediaStats {
            refused: palisade_media::Reason::ALL
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            ..MediaStats::default()
        }
    }
}
