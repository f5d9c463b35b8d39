//! Digest authentication glue (RFC 3261 section 22, RFC 8760): checks credentials of
//! REGISTER and proxied requests and builds challenges, with the per-device algorithm
//! memory.

use super::*;

/// Who is being challenged (see [`Endpoint::challenge`]).
pub(super) struct Challenge<'a> {
    pub(super) proxy: bool,
    pub(super) device: u64,
    pub(super) ua: &'a str,
    pub(super) txn: TxnKey,
    pub(super) method: &'a str,
}

impl Endpoint {
    /// Digest check; `Err` carries the answer to send (challenge or refusal).
    pub(super) fn check_auth(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        proxy: bool,
        known_user: Option<&str>,
    ) -> Result<Authenticated, Decision> {
        if let Some(a) = &self.handling.authenticated {
            return Ok(a.clone());
        }
        // The claimed identity and the device (account, User-Agent, source address),
        // for the choice of the algorithm offered first (see `crate::algorithms`); the
        // registrar passes the user it has read from To already.
        let from_msg;
        let claimed_user = match known_user {
            Some(u) => u,
            None => {
                let claimed = if proxy { msg.from() } else { msg.to() };
                from_msg = claimed
                    .and_then(|n| super::registrar::user_of_uri(&n.uri))
                    .unwrap_or_default();
                from_msg.as_ref()
            }
        };
        let ua = msg
            .headers
            .iter()
            .find_map(|h| match h {
                Header::UserAgent(u) => Some(u.as_ref()),
                _ => None,
            })
            .unwrap_or("");
        let source = self.handling.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let device = crate::algorithms::device(claimed_user, ua, source);
        let txn = (self.handling.txn).unwrap_or_else(|| server_key(msg, false, self.salt));
        let method = msg.method().map(|m| m.as_str()).unwrap_or("");
        let ch = Challenge {
            proxy,
            device,
            ua,
            txn,
            method,
        };
        let creds: Option<&Credentials<'_>> = msg.headers.iter().find_map(|h| match (h, proxy) {
            (Header::ProxyAuthorization(c), true) | (Header::Authorization(c), false)
                if c.is_digest() && c.get("realm").as_deref() == Some(self.cfg.domain.as_str()) =>
            {
                Some(c)
            }
            _ => None,
        });
        let Some(c) = creds else {
            match self.algos.no_credentials(now, device, txn, method) {
                Some(Note::FellBackToMd5) => warn!(
                    account = %claimed_user,
                    user_agent = ua,
                    source = %source,
                    "a device did not answer a SHA-256-first digest challenge (it does not support RFC 8760); offering it MD5 only from now on"
                ),
                Some(Note::NeverAnswers) => warn!(
                    account = %claimed_user,
                    user_agent = ua,
                    source = %source,
                    "a device does not answer digest challenges at all (wrong realm or no password configured?)"
                ),
                None => {}
            }
            return Err(self.challenge_unless_restricted(now, &ch));
        };
        let [username, realm, nonce, uri, response, algorithm, qop, nc, cnonce] = c
            .get_all([
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "qop",
                "nc",
                "cnonce",
            ])
            .map(|v| v.unwrap_or(Cow::Borrowed("")));
        let d = DigestResponse {
            username: &username,
            realm: &realm,
            nonce: &nonce,
            uri: &uri,
            response: &response,
            algorithm: &algorithm,
            qop: &qop,
            nc: &nc,
            cnonce: &cnonce,
        };
        let used = crate::auth::Algorithm::parse(if algorithm.is_empty() {
            "MD5"
        } else {
            &algorithm
        });
        if used.is_some_and(|a| !self.cfg.algorithms.contains(&a)) {
            return Err(self.challenge_unless_restricted(now, &ch));
        }
        let cred = self.dir.users.get(username.as_ref());
        let verdict = self.auth.verify(now, method, &d, cred, &self.cfg.domain);
        let uri_ok = match self.cfg.digest_uri {
            DigestUriCheck::Off => true,
            DigestUriCheck::RequestUri | DigestUriCheck::RequestUriOrServer => {
                msg.request_uri().is_some_and(|r| r.is_written_as(&uri))
                    || (self.cfg.digest_uri == DigestUriCheck::RequestUriOrServer
                        && parse_uri(&uri, &self.cfg.limits).is_ok_and(|u| {
                            self.uri_is_us(&u) && u.as_sip().is_some_and(|s| s.user.is_none())
                        }))
            }
        };
        // The authenticated identity must be the one the request claims.
        if let Some(a) = used {
            let ok = matches!(verdict, Verdict::Ok) && uri_ok && claimed_user == username;
            self.algos.answered(now, device, a, ok);
        }
        match verdict {
            Verdict::Ok if uri_ok && claimed_user == username => {
                if let (Some((at, _)), Some(ip)) = (self.handling.datagram, self.handling.ip) {
                    // the nonce was sent to this address and came back: it is real
                    self.budget.proven(at, ip);
                }
                let a = Authenticated::Now(username.to_string());
                self.handling.authenticated = Some(a.clone());
                Ok(a)
            }
            Verdict::Ok => {
                self.stats.auth_failures += 1;
                let ua = ua.to_string();
                self.probe(
                    now,
                    palisade_detect::ProbeKind::AuthFailed,
                    claimed_user.to_string(),
                    &ua,
                );
                Err(Decision::Reply(403, "Forbidden", vec![]))
            }
            Verdict::Stale => Err(self.challenge(now, &ch, true)),
            Verdict::Fail(why) => {
                self.stats.auth_failures += 1;
                debug!(why, "authentication failed");
                let kind = if self.dir.users.contains_key(username.as_ref()) {
                    palisade_detect::ProbeKind::AuthFailed
                } else {
                    palisade_detect::ProbeKind::UnknownUser
                };
                let (user, ua) = (username.to_string(), ua.to_string());
                self.probe(now, kind, user, &ua);
                Err(Decision::Reply(403, "Forbidden", vec![]))
            }
        }
    }

    /// A fresh challenge, unless the request's source network is restricted (then only
    /// a correct password earns a `stale` challenge; see `Handling::network_restricted`).
    fn challenge_unless_restricted(&mut self, now: Instant, ch: &Challenge<'_>) -> Decision {
        if self.handling.network_restricted {
            return Decision::Reply(403, "Forbidden: blocked by campaign detection", vec![]);
        }
        self.challenge(now, ch, false)
    }

    pub(super) fn challenge(&mut self, now: Instant, ch: &Challenge<'_>, stale: bool) -> Decision {
        self.stats.challenges += 1;
        let proxy = ch.proxy;
        let nonce = self.auth.nonce(now);
        let order = self.algos.order(
            ch.device,
            ch.ua,
            &self.cfg.md5_only_user_agents,
            &self.cfg.algorithms,
        );
        let mut headers = Vec::with_capacity(order.len());
        if let Some(first) = order.first() {
            self.algos
                .challenged(now, ch.device, ch.txn, ch.method, *first);
        }
        let quoted = |v: &str| {
            let mut q = String::with_capacity(v.len() + 2);
            q.push('"');
            q.push_str(v);
            q.push('"');
            Some(Cow::Owned(q))
        };
        for a in order {
            let mut params = vec![
                Param::new("realm", quoted(&self.cfg.domain)),
                Param::new("nonce", quoted(&nonce)),
                Param::new("algorithm", Some(Cow::Borrowed(a.name()))),
                Param::new("qop", Some(Cow::Borrowed("\"auth\""))),
            ];
            if stale {
                params.push(Param::new("stale", Some(Cow::Borrowed("true"))));
            }
            let c = Credentials {
                scheme: Cow::Borrowed("Digest"),
                params,
            };
            headers.push(if proxy {
                Header::ProxyAuthenticate(c)
            } else {
                Header::WwwAuthenticate(c)
            });
        }
        if proxy {
            Decision::Reply(407, "Proxy Authentication Required", headers)
        } else {
            Decision::Reply(401, "Unauthorized", headers)
        }
    }

    // ---------------------------------------------------------------- registrar
}
