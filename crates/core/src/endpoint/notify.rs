//! Notifications to targeted users (`palisade notify targets`): a SIP MESSAGE
//! (RFC 3428) originated by the server to every registered device of a user, on its own
//! non-INVITE client transaction (Timer E retransmission, Timer F timeout). The shell
//! learns the outcome per user from [`Event::Notified`].

use super::*;

/// Notifications in flight: which user a client transaction's branch notifies, and per
/// user how many devices are still to answer and whether one accepted.
#[derive(Default)]
pub(super) struct Notifying {
    branches: crate::Map<String, String>,
    users: crate::Map<String, (usize, bool)>,
}

/// Most users being notified at once.
const MAX_NOTIFYING: usize = 10_000;

impl Endpoint {
    /// Sends `text` to every registered device of local user `user` in a MESSAGE from
    /// `sip:FROM_USER@domain`. `false` (nothing sent) when the user has no binding or is
    /// being notified already; the outcome comes later as [`Event::Notified`].
    pub fn notify(&mut self, now: Instant, user: &str, from_user: &str, text: &str) -> bool {
        if self.notifying.users.contains_key(user) || self.notifying.users.len() >= MAX_NOTIFYING {
            return false;
        }
        let aor = format!("{user}@{}", self.cfg.domain);
        let targets: Vec<(Peer, String, Vec<String>)> = self
            .dir
            .location
            .get(&aor)
            .into_iter()
            .flatten()
            .map(|b| (self.binding_dest(b), uri_string(&b.uri), b.path.clone()))
            .collect();
        let mut sent = 0;
        for (dest, ruri, path) in targets {
            let lh = hash64(&[ruri.as_bytes(), user.as_bytes()], self.salt) as u32;
            let branch = self.new_branch(lh);
            let Some(via) = self.our_via(dest.transport, branch.clone()) else {
                continue;
            };
            let mut via_line = String::new();
            via.write(&mut via_line);
            let tag = hash64(&[branch.as_bytes(), b"tag"], self.salt);
            let mut routes = String::new();
            for p in &path {
                routes.push_str("Route: <");
                routes.push_str(p);
                routes.push_str(">\r\n");
            }
            let domain = &self.cfg.domain;
            let body = text.as_bytes();
            // The answers come back to the shard that owns the Call-ID: one that hashes
            // to this core (one try in `count` succeeds; bounded all the same).
            let mut call_id = format!("{tag:016x}{lh:08x}@{domain}");
            for k in 0..1024u32 {
                if self.shards.of_call_id(call_id.as_bytes()) == self.cfg.shard.0 {
                    break;
                }
                call_id = format!("{tag:016x}{lh:08x}.{k}@{domain}");
            }
            let msg = format!(
                "MESSAGE {ruri} SIP/2.0\r\n{via_line}{routes}Max-Forwards: 70\r\nFrom: <sip:{from_user}@{domain}>;tag={tag:016x}\r\nTo: <sip:{aor}>\r\nCall-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let mut bytes = msg.into_bytes();
            bytes.extend_from_slice(body);
            self.notifying
                .branches
                .insert(branch.clone(), user.to_string());
            self.start_client(now, dest, ClientKey::request(branch), bytes, false, None);
            sent += 1;
        }
        if sent > 0 {
            self.notifying.users.insert(user.to_string(), (sent, false));
        }
        sent > 0
    }

    /// A client transaction the server originated ended (`ok`: a 2xx).
    pub(super) fn originated_done(&mut self, branch: &str, ok: bool) {
        let Some(user) = self.notifying.branches.remove(branch) else {
            return;
        };
        let Some((left, any)) = self.notifying.users.get_mut(&user) else {
            return;
        };
        *left = left.saturating_sub(1);
        *any |= ok;
        if *left == 0 {
            let delivered = *any;
            self.notifying.users.remove(&user);
            self.events.push_back(Event::Notified { user, delivered });
        }
    }
}
