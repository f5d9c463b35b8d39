//! The location table's copies and closings: bindings restored at start-up or copied
//! from other shards, and what a closed stream connection takes with it.
use palisade_sip::{parse_uri, Uri};
use tracing::warn;

use super::{Endpoint, Located, TimerWhat};
use crate::types::{Binding, Event};

impl Endpoint {
    /// Restores a binding loaded from storage at start-up.
    /// A binding whose contact does not parse under the configured limits (a database
    /// edited by hand, or limits lowered since) is not restored.
    pub fn restore_binding(&mut self, b: Binding) {
        self.put_binding(b, false);
    }

    /// A binding another shard saved (or restored at start-up): this core uses it to
    /// route requests, replacing its copy of the same contact, but reports nothing about
    /// it (the shard that saved it reports its changes and its expiry to the shell).
    pub fn apply_binding(&mut self, b: Binding) {
        self.put_binding(b, true);
    }

    /// [`Endpoint::apply_binding`] with the contact already parsed (see
    /// [`Endpoint::contact_uri`]): a replica need not parse what the shard that saved
    /// it parsed already.
    pub fn apply_binding_parsed(&mut self, b: Binding, uri: Uri<'static>) {
        self.locate(b, uri, true);
    }

    /// The parsed contact of a binding this core holds (a copy for another shard).
    pub fn contact_uri(&self, aor: &str, contact: &str) -> Option<Uri<'static>> {
        self.dir
            .location
            .get(aor)?
            .iter()
            .find(|l| l.binding.contact == contact)
            .map(|l| l.uri.clone())
    }

    /// A binding another shard removed (REGISTER with expires 0, or a replacement).
    pub fn apply_binding_removed(&mut self, aor: &str, contact: &str) {
        if let Some(list) = self.dir.location.get_mut(aor) {
            list.retain(|l| l.binding.contact != contact);
            if list.is_empty() {
                self.dir.location.remove(aor);
            }
        }
    }

    fn put_binding(&mut self, b: Binding, replica: bool) {
        let uri = match parse_uri(&b.contact, &self.cfg.limits) {
            Ok(u) => u.into_owned(),
            Err(e) => {
                warn!(aor = %b.aor, contact = %b.contact, error = %e, "stored binding not restored: its contact does not parse");
                return;
            }
        };
        self.locate(b, uri, replica);
    }

    fn locate(&mut self, b: Binding, uri: Uri<'static>, replica: bool) {
        let at = b.expires_at;
        let aor = b.aor.clone();
        if let Some(conn) = b.source.conn.filter(|_| b.source.transport.websocket()) {
            self.note_ws_binding(conn, &aor);
        }
        let list = self.dir.location.entry(aor.clone()).or_default();
        let l = Located {
            binding: b,
            uri,
            replica,
        };
        match list
            .iter_mut()
            .find(|x| x.binding.contact == l.binding.contact)
        {
            Some(slot) => *slot = l,
            None => list.push(l),
        }
        self.tx.arm(at, TimerWhat::BindingExpiry(aor));
    }

    /// The shell reports a closed stream connection. A binding made over a WebSocket
    /// connection is removed with it: nothing else reaches a browser (its contact is an
    /// `.invalid` name, and a server cannot open a WebSocket toward it), so it must not
    /// take calls that would wait for Timer B. Every shard hears of the closing and drops
    /// its copies; the shard that made the binding reports the removal.
    pub fn connection_closed(&mut self, conn: u64) {
        for key in self.conn_aliases.remove(&conn).unwrap_or_default() {
            // (unless a newer connection took the alias over)
            if self.aliases.get(&key) == Some(&conn) {
                self.aliases.remove(&key);
            }
        }
        let dead = |l: &Located| {
            l.binding.source.conn == Some(conn) && l.binding.source.transport.websocket()
        };
        let mut removed = Vec::new();
        for aor in self.ws_aors.remove(&conn).unwrap_or_default() {
            let Some(list) = self.dir.location.get_mut(&aor) else {
                continue;
            };
            for l in list.iter().filter(|l| dead(l) && !l.replica) {
                removed.push(Event::BindingRemoved {
                    aor: l.binding.aor.clone(),
                    contact: l.binding.contact.clone(),
                });
            }
            list.retain(|l| !dead(l));
            if list.is_empty() {
                self.dir.location.remove(&aor);
            }
        }
        self.events.extend(removed);
    }

    /// Notes that `aor` has a binding made over WebSocket connection `conn` (see
    /// `ws_aors`).
    pub(super) fn note_ws_binding(&mut self, conn: u64, aor: &str) {
        let aors = self.ws_aors.entry(conn).or_default();
        if !aors.iter().any(|a| a == aor) {
            aors.push(aor.to_string());
        }
    }
}
