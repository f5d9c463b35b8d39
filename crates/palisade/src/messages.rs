//! Every message that passes between the server's threads and tasks, in one place: what
//! the workers' queues carry ([`Inbound`]), what the workers hand to the storage thread
//! ([`StoreMsg`]) and the detection thread ([`DetectMsg`]), what the evidence thread is
//! given ([`EvidenceMsg`]) and what the webhook thread posts ([`Hook`]). A leaf: it names
//! the library crates' types and nothing of the server's.
use std::time::Instant;

use palisade_core::{Binding, Peer, Transmit, User};
use palisade_detect::{Observation, Restriction, Subject};
use palisade_shield::SecurityEvent;
use palisade_store::BindingOp;
use tokio::sync::{mpsc, oneshot};

/// What a worker's queue carries: messages for its shard of the core, from stream
/// connections, the extra UDP sockets, the other workers and the storage, detection and
/// evidence threads.
pub(crate) enum Inbound {
    Message {
        peer: Peer,
        bytes: Vec<u8>,
    },
    /// A datagram on the UDP socket of that index (beyond the first, read by tasks).
    Datagram {
        peer: Peer,
        bytes: Vec<u8>,
        socket: usize,
    },
    Opened {
        conn: u64,
        peer: Peer,
        tx: mpsc::Sender<Vec<u8>>,
        kill: oneshot::Sender<()>,
    },
    Closed {
        conn: u64,
    },
    Users(Vec<User>),
    /// A restriction from the detection thread.
    Restrict(Restriction),
    /// A restriction the operator lifted (`palisade unblock`), from the detection thread.
    Lift(Subject),
    /// A queued notification to deliver (from the detection thread).
    Notify {
        user: String,
        text: String,
    },
    /// Messages held until their evidence entries were durable (from the evidence
    /// thread).
    Release(Vec<Transmit>),
    /// A webhook notification whose entry is durable: for the webhook thread.
    Webhook(Hook),
    /// A message for a stream connection this shard owns (from another shard).
    Send(Transmit),
    /// A location change another shard made.
    Replica(Replica),
    /// A reloaded configuration's shield policy and parser limits (every shard).
    Policy(Box<(palisade_shield::Policy, palisade_sip::Limits)>),
}

impl Inbound {
    /// A copy of a message that goes to every shard.
    pub(crate) fn copy_for_broadcast(&self) -> Option<Inbound> {
        Some(match self {
            Inbound::Closed { conn } => Inbound::Closed { conn: *conn },
            Inbound::Users(u) => Inbound::Users(u.clone()),
            Inbound::Restrict(r) => Inbound::Restrict(r.clone()),
            Inbound::Lift(s) => Inbound::Lift(s.clone()),
            Inbound::Policy(p) => Inbound::Policy(p.clone()),
            _ => return None,
        })
    }
}

/// A change of the location one shard made, for the others.
pub(crate) enum Replica {
    /// The binding, and its contact as the saving shard parsed it (`None`: parsed by
    /// the receiver).
    Saved(Box<(Binding, Option<palisade_sip::Uri<'static>>)>),
    Removed {
        aor: String,
        contact: String,
    },
}

/// What the core thread hands to the storage thread.
// (a binding row goes by value: boxing it would cost an allocation per REGISTER on the
// worker, for a queue whose slots are few and reused)
#[allow(clippy::large_enum_variant)]
pub(crate) enum StoreMsg {
    Binding(BindingOp),
    /// One security event (with its Unix time) for `<data_dir>/security-events.jsonl`;
    /// formatted on the storage thread, off the packet path.
    Security(Box<SecurityEvent>, i64),
}

/// What the detection thread is given.
pub(crate) enum DetectMsg {
    /// What one pass of the core loop observed: one message (and one wake-up of this
    /// thread) per batch, not per observation.
    Observe(Vec<Observation>),
    /// Notification delivery results from the core: (user, delivered to a device).
    Notified(String, bool),
    /// A webhook POST's result (from the webhook thread): user, HTTP status or error.
    Hooked(String, Result<u16, String>),
    /// A reloaded configuration's detection settings.
    Config(Box<palisade_detect::Config>),
}

/// A webhook notification to POST (the webhook thread does it, once its entry is
/// durable).
pub(crate) struct Hook {
    pub(crate) user: String,
    pub(crate) url: String,
    pub(crate) body: String,
}

/// An entry, the content it is about when that is to be kept (a refused message, for
/// the blob store), and what may happen only once both are durable (an answer to send,
/// a restriction to apply, a notification to deliver): the evidence thread hands that
/// back to the core thread after its commit.
pub(crate) struct EvidenceItem {
    pub(crate) entry: Vec<u8>,
    pub(crate) blob: Option<Vec<u8>>,
    pub(crate) then: Option<Inbound>,
    pub(crate) queued: Instant,
}

/// What the evidence thread is given.
pub(crate) enum EvidenceMsg {
    /// An entry to append.
    Entry(EvidenceItem),
    /// A witness's cosignature lines for the checkpoint of this size.
    Cosigned(u64, String),
    /// The server stops: commit, publish a last checkpoint and end (other holders of a
    /// sender, such as the admin listener's state, may outlive the workers).
    Close,
}
