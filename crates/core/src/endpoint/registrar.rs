//! The registrar (RFC 3261 section 10, RFC 3327 Path): REGISTER, the bindings of an
//! address of record and their expiry.

use super::*;

/// Who exists and where (RFC 3261 section 10's location service, with the accounts it
/// serves): what the registrar writes and the proxy, the authenticator and the guard
/// read.
pub(super) struct Directory {
    /// Accounts and their digest secrets.
    pub(super) users: crate::Map<String, Credential>,
    /// Bindings by address of record.
    pub(super) location: crate::Map<String, Vec<Located>>,
    /// Protected users and their allow-lists.
    pub(super) protected: crate::Map<String, Vec<String>>,
    /// Account creation times (Unix seconds), for the protected-user age rule.
    pub(super) created: crate::Map<String, i64>,
}

/// A binding in the location service, with its contact parsed once (the proxy routes
/// by it on every request; the [`Binding`] keeps the canonical text for storage).
#[derive(Debug, Clone)]
pub(super) struct Located {
    pub(super) binding: Binding,
    pub(super) uri: Uri<'static>,
    /// Saved by another shard (see [`Endpoint::apply_binding`]): its changes and expiry
    /// are that shard's to report.
    pub(super) replica: bool,
}

impl std::ops::Deref for Located {
    type Target = Binding;
    fn deref(&self) -> &Binding {
        &self.binding
    }
}

/// The user part of a SIP or SIPS URI, %-escapes decoded (borrowed when nothing is
/// escaped); `None` for another scheme or a URI without a user.
pub(super) fn user_of_uri<'u>(u: &'u Uri<'_>) -> Option<Cow<'u, str>> {
    let Uri::Sip(s) = u else { return None };
    let user = s.user.as_deref()?;
    Some(match palisade_sip::percent_decode(user) {
        // nothing escaped: the text as it is (already UTF-8)
        Cow::Borrowed(_) => Cow::Borrowed(user),
        Cow::Owned(decoded) => Cow::Owned(String::from_utf8_lossy(&decoded).into_owned()),
    })
}

impl Endpoint {
    pub(super) fn aor_of(&self, u: &Uri<'_>) -> Option<(String, String)> {
        let user = user_of_uri(u)?.into_owned();
        let mut aor = String::with_capacity(user.len() + 1 + self.cfg.domain.len());
        aor.push_str(&user);
        aor.push('@');
        aor.push_str(&self.cfg.domain);
        Some((aor, user))
    }

    /// `f` of the address of record of `user` (`user@domain`), written on the stack when
    /// it is short (the proxy looks one up on every call: no allocation for it).
    pub(super) fn with_aor<R>(&self, user: &str, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = [0u8; 128];
        let (u, d) = (user.as_bytes(), self.cfg.domain.as_bytes());
        let n = u.len() + 1 + d.len();
        if let Some((head, rest)) = buf
            .get_mut(..n)
            .and_then(|b| b.split_at_mut_checked(u.len()))
        {
            head.copy_from_slice(u);
            if let Some((at, tail)) = rest.split_first_mut() {
                *at = b'@';
                tail.copy_from_slice(d);
            }
            // (two texts and an ASCII byte: valid UTF-8)
            if let Ok(aor) = std::str::from_utf8(buf.get(..n).unwrap_or_default()) {
                return f(aor);
            }
        }
        f(&format!("{user}@{}", self.cfg.domain))
    }

    pub(super) fn register(&mut self, now: Instant, from: Peer, msg: &Message<'_>) -> Decision {
        let Some(to) = msg.to() else {
            return Decision::Reply(400, "Bad Request", vec![]);
        };
        let Some((aor, user)) = self.aor_of(&to.uri) else {
            return Decision::Reply(
                400,
                "Bad Request: the address of record must be a SIP or SIPS URI with a user",
                vec![],
            );
        };
        if !matches!(&to.uri, Uri::Sip(s) if self.host_is_us(&s.host)) {
            return Decision::Reply(403, "Forbidden: not a domain of this registrar", vec![]);
        }
        if self.cfg.authenticate_register {
            if let Err(d) = self.check_auth(now, msg, false, Some(&user)) {
                return d;
            }
        } else if !self.dir.users.contains_key(&user) {
            return Decision::Reply(404, "Not Found", vec![]);
        }
        let call_id = msg.call_id().unwrap_or("").to_string();
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        let header_expires = msg.expires();
        let contacts: Vec<&Contact<'_>> = msg.contacts().collect();
        let path: Vec<String> = msg
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Path(p) => Some(uri_string(&p.uri)),
                _ => None,
            })
            .collect();
        let ua = msg
            .headers
            .iter()
            .find_map(|h| match h {
                Header::UserAgent(u) => Some(u.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Decision::Reply(
                    400,
                    "Bad Request: Contact * needs Expires: 0 and no other Contact",
                    vec![],
                );
            }
            if let Some(list) = self.dir.location.remove(&aor) {
                for l in list {
                    self.events.push_back(Event::BindingRemoved {
                        aor: aor.clone(),
                        contact: l.binding.contact,
                    });
                }
            }
            info!(aor, "all bindings removed");
            return self.registered(now, &aor, msg);
        }
        // Validate everything before changing anything: no half-applied REGISTER.
        let mut updates = Vec::with_capacity(contacts.len());
        for c in &contacts {
            let Contact::Addr(na) = c else { continue };
            let expires = na
                .expires()
                .or(header_expires)
                .unwrap_or(self.cfg.default_expires);
            if expires != 0 && expires < self.cfg.min_expires {
                return Decision::Reply(
                    423,
                    "Interval Too Brief",
                    vec![Header::MinExpires(self.cfg.min_expires)],
                );
            }
            if !matches!(na.uri, Uri::Sip(_)) {
                return Decision::Reply(
                    400,
                    "Bad Request: Contact must be a SIP or SIPS URI",
                    vec![],
                );
            }
            updates.push((
                uri_string(&na.uri),
                na.uri.clone().into_owned(),
                expires.min(self.cfg.max_expires),
                na.q_millis().unwrap_or(1000),
            ));
        }
        let list = self.dir.location.entry(aor.clone()).or_default();
        let new_count = updates
            .iter()
            .filter(|(c, _, e, _)| *e > 0 && !list.iter().any(|b| &b.contact == c))
            .count();
        if list.len() + new_count > self.cfg.max_contacts {
            return Decision::Reply(
                403,
                "Forbidden: too many contacts for this address of record",
                vec![],
            );
        }
        let mut earliest = None;
        for (contact, uri, expires, q) in updates {
            let existing = list.iter().position(|b| b.contact == contact);
            if let Some(old) = existing.and_then(|i| list.get(i)) {
                if old.call_id == call_id && old.cseq >= cseq {
                    continue; // out of order (RFC 3261 section 10.3 step 7)
                }
            }
            if expires == 0 {
                if let Some(i) = existing {
                    let l = list.remove(i);
                    self.events.push_back(Event::BindingRemoved {
                        aor: aor.clone(),
                        contact: l.binding.contact,
                    });
                }
                continue;
            }
            let b = Binding {
                aor: aor.clone(),
                contact,
                expires_at: now + Duration::from_secs(expires.into()),
                q,
                call_id: call_id.clone(),
                cseq,
                path: path.clone(),
                source: from,
                user_agent: ua.clone(),
            };
            earliest = Some(earliest.map_or(b.expires_at, |e: Instant| e.min(b.expires_at)));
            self.events.push_back(Event::BindingSaved(b.clone()));
            let l = Located {
                binding: b,
                uri,
                replica: false,
            };
            match existing.and_then(|i| list.get_mut(i)) {
                Some(slot) => *slot = l,
                None => list.push(l),
            }
        }
        if list.is_empty() {
            self.dir.location.remove(&aor);
        }
        if let Some(conn) = from.conn.filter(|_| from.transport.websocket()) {
            self.note_ws_binding(conn, &aor);
        }
        if let Some(at) = earliest {
            self.tx.arm(at, TimerWhat::BindingExpiry(aor.clone()));
        }
        if self.cfg.observe {
            if let Some(source) = self.handling.source {
                let o = palisade_detect::Observation::Registered(palisade_detect::Registration {
                    at: self.unix_ms(now),
                    account: user,
                    source,
                    transport: self.handling.transport,
                    // (at most 128 characters)
                    user_agent: super::observe::first_chars(&ua, 128),
                    fingerprint: self.handling.fingerprint,
                });
                self.observe(o);
            }
        }
        self.registered(now, &aor, msg)
    }

    pub(super) fn registered(&self, now: Instant, aor: &str, msg: &Message<'_>) -> Decision {
        let located = self.dir.location.get(aor);
        let mut extra: Vec<Header<'static>> = Vec::with_capacity(located.map_or(0, Vec::len) + 1);
        for b in located.into_iter().flatten() {
            // (the binding's copy is owned already: a clone, no second walk)
            let uri = b.uri.clone();
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            let mut secs = String::with_capacity(10);
            palisade_sip::push_num(&mut secs, left);
            extra.push(Header::Contact(Contact::Addr(NameAddr {
                display: None,
                uri,
                params: vec![Param::new("expires", Some(Cow::Owned(secs)))],
            })));
        }
        for h in &msg.headers {
            if let Header::Path(p) = h {
                extra.push(Header::Path(p.clone().into_owned()));
            }
        }
        Decision::Reply(200, "OK", extra)
    }

    // ---------------------------------------------------------------- responses we generate

    pub(super) fn expire_bindings(&mut self, now: Instant, aor: &str) {
        let Some(list) = self.dir.location.get_mut(aor) else {
            return;
        };
        let mut gone = Vec::new();
        list.retain(|b| {
            if b.expires_at <= now {
                if !b.replica {
                    gone.push(b.contact.clone());
                }
                false
            } else {
                true
            }
        });
        let next = list.iter().map(|b| b.expires_at).min();
        if list.is_empty() {
            self.dir.location.remove(aor);
        }
        for contact in gone {
            info!(aor, contact, "binding expired");
            self.events.push_back(Event::BindingRemoved {
                aor: aor.to_string(),
                contact,
            });
        }
        if let Some(at) = next {
            self.tx.arm(at, TimerWhat::BindingExpiry(aor.to_string()));
        }
    }
}
