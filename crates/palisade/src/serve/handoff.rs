//! The core's hand-off to the storage thread: it never waits. A message that does not
//! fit the storage queue waits in a backlog (in order) and is offered again on every pass
//! of the core loop; past `STORE_BACKLOG` messages the newest are shed, counted and
//! logged. The storage thread in turn never waits on the core (see `persist.rs`), so
//! there is no wait cycle between them.

use std::collections::VecDeque;
use std::sync::mpsc::{SyncSender, TrySendError};

use tracing::warn;

use crate::messages::StoreMsg;

/// Most messages held back while the storage thread is behind (beyond its own queue).
pub(super) const STORE_BACKLOG: usize = 262_144;

pub(super) struct StoreHandoff {
    tx: SyncSender<StoreMsg>,
    backlog: VecDeque<StoreMsg>,
    cap: usize,
    /// Messages shed because the backlog was full.
    pub(super) shed: u64,
}

impl StoreHandoff {
    pub(super) fn new(tx: SyncSender<StoreMsg>) -> Self {
        Self::with_cap(tx, STORE_BACKLOG)
    }

    fn with_cap(tx: SyncSender<StoreMsg>, cap: usize) -> Self {
        StoreHandoff {
            tx,
            backlog: VecDeque::new(),
            cap,
            shed: 0,
        }
    }

    /// Hands `m` on, or holds it (in order behind what is held), or sheds it.
    pub(super) fn send(&mut self, m: StoreMsg) {
        if self.backlog.is_empty() {
            match self.tx.try_send(m) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(m)) => self.hold(m),
            }
        } else {
            self.hold(m);
        }
    }

    fn hold(&mut self, m: StoreMsg) {
        if self.backlog.len() >= self.cap {
            self.shed += 1;
            if self.shed.is_power_of_two() {
                warn!(
                    shed = self.shed,
                    held = self.backlog.len(),
                    "the storage thread is behind; messages for it shed (bindings not persisted)"
                );
            }
            return;
        }
        self.backlog.push_back(m);
    }

    /// Offers what is held again (each pass of the core loop); never waits.
    pub(super) fn flush(&mut self) {
        while let Some(m) = self.backlog.pop_front() {
            match self.tx.try_send(m) {
                Ok(()) => {}
                Err(TrySendError::Full(m)) => {
                    self.backlog.push_front(m);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    /// At shutdown, once nothing else needs the core: everything held goes to the
    /// storage thread, waiting for room (it is draining and no longer waits on anyone).
    pub(super) fn finish(&mut self) {
        while let Some(m) = self.backlog.pop_front() {
            if self.tx.send(m).is_err() {
                break;
            }
        }
    }

    /// Messages held now.
    pub(super) fn held(&self) -> usize {
        self.backlog.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_store::BindingOp;

    fn op(n: usize) -> StoreMsg {
        StoreMsg::Binding(BindingOp::Remove {
            aor: format!("u{n}@example.com"),
            contact: String::new(),
            node: String::new(),
        })
    }

    fn aor(m: StoreMsg) -> String {
        match m {
            StoreMsg::Binding(BindingOp::Remove { aor, .. }) => aor,
            _ => String::new(),
        }
    }

    #[test]
    fn a_full_queue_never_blocks_keeps_order_and_sheds_past_the_backlog() {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let mut h = StoreHandoff::with_cap(tx, 3);
        for n in 0..7 {
            h.send(op(n)); // would block from the third on, with a blocking send
        }
        assert_eq!((h.held(), h.shed), (3, 2), "2 queued, 3 held, 2 shed");
        // the storage thread takes two; the next pass hands on two more, in order
        let got: Vec<String> = rx.try_iter().map(aor).collect();
        assert_eq!(got, ["u0@example.com", "u1@example.com"]);
        h.flush();
        assert_eq!(h.held(), 1);
        let got: Vec<String> = rx.try_iter().map(aor).collect();
        assert_eq!(got, ["u2@example.com", "u3@example.com"]);
        // a new message goes behind what is still held
        h.send(op(9));
        assert_eq!(h.held(), 2);
        // at shutdown everything held is handed on (the receiver drains meanwhile)
        let reader = std::thread::spawn(move || rx.iter().map(aor).collect::<Vec<_>>());
        h.finish();
        drop(h);
        assert_eq!(reader.join().unwrap(), ["u4@example.com", "u9@example.com"]);
    }
}
