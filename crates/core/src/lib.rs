//! # palisade-core: the sans-IO SIP core
//!
//! The RFC 3261 transaction layer (section 17), the registrar (section 10, RFC 3327
//! Path), digest authentication (section 22, RFC 8760) and the stateful proxy
//! (section 16), as one state machine: [`Endpoint`]. It is fed with
//! `handle_datagram(now, from, bytes)` and `handle_timeout(now)`, and drained with
//! `poll_transmit()`, `poll_timeout()` and `poll_event()`.
//!
//! Why sans-IO: nothing here touches a socket, a clock or a database, so transaction
//! timers, retransmissions and races are tested deterministically with a simulated clock
//! and byte strings, and the shell that owns the sockets stays thin (as `quinn-proto`
//! does for QUIC). Storage happens through [`Event`]s the shell persists, and state is
//! restored at start-up with [`Endpoint::restore_binding`] and [`Endpoint::set_users`].

mod algorithms;
mod auth;
mod endpoint;
mod flow;
mod mac;
mod media;
mod ratelimit;
mod shard;
mod sweep;
mod types;

pub use auth::{Algorithm, Credential};
pub use endpoint::{
    is_keepalive, method_slot, salvaged_answer_parses, Endpoint, Stats, METHOD_LABELS,
};
pub use flow::FlowKey;
pub use media::MediaAnchor;
pub use shard::{call_id_of, Shards};
pub use sweep::{FullSweep, FULL_SWEEP_EVERY};
pub use types::*;

/// A hash table for keys that come from the network (account names, addresses of
/// record, source addresses, device ids): aHash under keys drawn from the OS for each
/// table (`runtime-rng`), so that nobody can aim collisions at one bucket, at a
/// fraction of the cost of std's SipHash. (Tables keyed by values this process already
/// hashed with a secret use those values as they are, `endpoint::transaction::TxnMap`.)
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
