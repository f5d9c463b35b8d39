//! The stateful proxy (RFC 3261 sections 16.3-16.6): route decisions, loop detection,
//! Record-Route with the dialog token, our Via, forwarding on client transactions, and
//! stateless forwarding of ACK and in-dialog requests.

use super::*;

pub(super) const MAGIC: &str = "z9hG4bK";

pub(super) const OUR_BRANCH: &str = "z9hG4bKpal";
pub(super) struct Target {
    pub(super) ruri: Option<Uri<'static>>,
    pub(super) dest: Peer,
    pub(super) path: Vec<String>,
}

pub(super) fn uri_string(u: &Uri<'_>) -> String {
    // (room for a usual contact: no regrowth while it is written)
    let mut s = String::with_capacity(64);
    u.write(&mut s);
    s
}

impl Endpoint {
    pub(super) fn route(
        &mut self,
        now: Instant,
        from: Peer,
        msg: &mut Message<'_>,
        raw: &[u8],
    ) -> Decision {
        let method = msg.method().cloned().unwrap_or(Method::Options);
        // Loop detection (RFC 3261 section 16.3 step 4).
        if msg.vias().any(|v| self.via_is_us(v)) {
            let mine = format!("{OUR_BRANCH}{:08x}.", self.loop_hash(msg));
            if msg
                .vias()
                .any(|v| self.via_is_us(v) && v.branch().is_some_and(|b| b.starts_with(&mine)))
            {
                return Decision::Reply(482, "Loop Detected", vec![]);
            }
        }
        let (popped, flow, ws_flow) = self.pop_own_routes(msg);
        let ruri = msg.request_uri().cloned();
        let Some(ruri) = ruri else {
            return Decision::Reply(400, "Bad Request", vec![]);
        };
        let next_route = msg.routes().next().map(|r| r.uri.clone());
        let to_us = self.uri_targets_us(&ruri);
        let self_addressed =
            self.uri_is_us(&ruri) && ruri.as_sip().is_some_and(|s| s.user.is_none());

        if self_addressed && next_route.is_none() {
            return match method {
                Method::Options => Decision::Reply(
                    200,
                    "OK",
                    vec![
                        Header::Allow(vec![
                            Method::Invite,
                            Method::Ack,
                            Method::Cancel,
                            Method::Bye,
                            Method::Options,
                            Method::Register,
                            Method::Message,
                            Method::Update,
                            Method::Info,
                            Method::Prack,
                        ]),
                        Header::Other {
                            name: Cow::Borrowed("Accept"),
                            value: Cow::Borrowed("application/sdp"),
                        },
                    ],
                ),
                Method::Register => self.register(now, from, msg),
                _ => Decision::Reply(
                    405,
                    "Method Not Allowed",
                    vec![Header::Allow(vec![Method::Options, Method::Register])],
                ),
            };
        }
        if msg.max_forwards() == Some(0) {
            return Decision::Reply(483, "Too Many Hops", vec![]);
        }
        if let Err(r) = sanity::check_request(msg) {
            let extra = if r.unsupported.is_empty() {
                vec![]
            } else {
                vec![Header::Other {
                    name: Cow::Borrowed("Unsupported"),
                    value: Cow::Owned(r.unsupported.join(", ")),
                }]
            };
            return Decision::Reply(r.status, r.reason, extra);
        }
        if method == Method::Register {
            if to_us {
                return self.register(now, from, msg);
            }
            return Decision::Reply(403, "Forbidden: not a domain of this registrar", vec![]);
        }
        if let Some(flow) = flow {
            // (the Request-URI is the binding's contact: the same rule as for a
            // binding held here)
            let dest = self.contact_or_source(&ruri, flow);
            // Another node of the cluster routes a request toward a binding this node
            // holds (its Route carried our flow token, which only this node can make):
            // that node authenticated the caller and applied the callee's protection;
            // this one sends the request on the flow the phone registered from.
            let initial = msg.to().and_then(|t| t.tag()).is_none();
            return Decision::Forward(
                vec![Target {
                    ruri: None,
                    dest,
                    path: vec![],
                }],
                initial,
            );
        }
        let in_dialog = msg.to().and_then(|t| t.tag()).is_some();
        if in_dialog {
            let local_user = to_us && ruri.as_sip().is_some_and(|s| s.user.is_some());
            if popped == 0 && !local_user {
                // Every dialog through this proxy has its Record-Route: a request that
                // claims a dialog but did not come through us would use the proxy as a
                // relay toward any address (a device behind it, say).
                return Decision::Reply(
                    403,
                    "Forbidden: in-dialog request not routed through this proxy",
                    vec![],
                );
            }
            if popped == 0 && local_user {
                // A To tag does not make a caller allowed: a made-up "dialog" is an
                // initial request for the protection rules.
                if let Some(d) = self.protected_refusal(now, from, msg, raw, &ruri, None) {
                    return d;
                }
            }
            if let Some(dest) = ws_flow {
                // the Record-Route entry facing a WebSocket client named its connection
                // (RFC 5626 section 5.3 style): its `.invalid` contact is reached there
                return Decision::Forward(
                    vec![Target {
                        ruri: None,
                        dest,
                        path: vec![],
                    }],
                    false,
                );
            }
            // Requests inside a dialog follow the route set the dialog established.
            if let Some(r) = next_route {
                return self.to_next_hop(
                    &r,
                    false,
                    (503, "Service Unavailable: next hop is not an IP address"),
                );
            }
            if to_us && ruri.as_sip().is_some_and(|s| s.user.is_some()) {
                return self.lookup(&ruri, false);
            }
            return self.to_next_hop(
                &ruri,
                false,
                (404, "Not Found: no route to the Request-URI"),
            );
        }
        // Out of dialog: who is calling?
        let caller_local = msg.from().is_some_and(|f| self.uri_targets_us(&f.uri));
        let mut authenticated = None;
        if caller_local && self.cfg.authenticate_requests {
            match self.check_auth(now, msg, true, None) {
                Ok(a) => authenticated = Some(a),
                Err(d) => return d,
            }
        }
        if let Some(Authenticated::Now(account)) = &authenticated {
            if matches!(method, Method::Invite | Method::Message) {
                let account = account.clone();
                if let Some(d) = self.caller_refusal(now, &account) {
                    return d;
                }
            }
        }
        if let Some(r) = next_route {
            if authenticated.is_none() && !to_us {
                return Decision::Reply(403, "Forbidden: relaying denied", vec![]);
            }
            return self.to_next_hop(
                &r,
                true,
                (503, "Service Unavailable: next hop is not an IP address"),
            );
        }
        if to_us {
            if let Some(d) =
                self.protected_refusal(now, from, msg, raw, &ruri, authenticated.as_ref())
            {
                return d;
            }
            let d = self.lookup(&ruri, true);
            if authenticated.is_none() && matches!(d, Decision::Reply(404, ..)) {
                // An unauthenticated request for a user we do not have: probing.
                let user = ruri
                    .as_sip()
                    .and_then(|s| s.user.as_deref())
                    .unwrap_or("")
                    .to_string();
                let ua = user_agent(msg).to_string();
                self.probe(now, palisade_detect::ProbeKind::UnknownUser, user, &ua);
            }
            return d;
        }
        if authenticated.is_none() {
            return Decision::Reply(403, "Forbidden: relaying denied", vec![]);
        }
        self.to_next_hop(&ruri, true, (404, "Not Found: no route to the Request-URI"))
    }

    /// Forwards to the host a URI names (a Route entry or the Request-URI), or refuses
    /// with `unreachable` when that host is not an IP address (no DNS yet).
    pub(super) fn to_next_hop(
        &self,
        uri: &Uri<'_>,
        record_route: bool,
        unreachable: (u16, &'static str),
    ) -> Decision {
        match self.resolve(uri) {
            Some(dest) => Decision::Forward(
                vec![Target {
                    ruri: None,
                    dest,
                    path: vec![],
                }],
                record_route,
            ),
            None => Decision::Reply(unreachable.0, unreachable.1, vec![]),
        }
    }

    pub(super) fn lookup(&mut self, ruri: &Uri<'_>, record_route: bool) -> Decision {
        let Some(user) = super::registrar::user_of_uri(ruri) else {
            return Decision::Reply(404, "Not Found", vec![]);
        };
        let now_live: Vec<Target> = {
            let mut b: Vec<&Located> = self.with_aor(&user, |aor| {
                self.dir
                    .location
                    .get(aor)
                    .map(|v| v.iter().collect())
                    .unwrap_or_default()
            });
            b.sort_by_key(|x| std::cmp::Reverse(x.q));
            b.into_iter()
                .map(|b| Target {
                    ruri: Some(b.uri.clone()),
                    dest: self.binding_dest(b),
                    path: b.path.clone(),
                })
                .collect()
        };
        if now_live.is_empty() {
            if self.dir.users.contains_key(user.as_ref()) {
                return Decision::Reply(480, "Temporarily Unavailable", vec![]);
            }
            return Decision::Reply(404, "Not Found", vec![]);
        }
        Decision::Forward(now_live, record_route)
    }

    pub(super) fn loop_hash(&self, m: &Message<'_>) -> u32 {
        let mut h = super::transaction::keyed(self.salt);
        m.request_uri().hash(&mut h);
        m.call_id().hash(&mut h);
        m.from().and_then(|f| f.tag()).hash(&mut h);
        m.cseq().map(|c| c.seq).hash(&mut h);
        h.finish() as u32
    }

    pub(super) fn new_branch(&mut self, lh: u32) -> String {
        self.tx.seq += 1;
        let u = hash64(&[&self.tx.seq.to_be_bytes()], self.salt) as u32;
        // the same text as `format!("{OUR_BRANCH}{lh:08x}.{u:08x}{:x}", seq)`, without
        // the formatter (one branch per forwarded request)
        let mut b = String::with_capacity(OUR_BRANCH.len() + 34);
        b.push_str(OUR_BRANCH);
        crate::mac::push_hex_u64(&mut b, u64::from(lh), 8);
        b.push('.');
        crate::mac::push_hex_u64(&mut b, u64::from(u), 8);
        crate::mac::push_hex_u64(&mut b, self.tx.seq, 1);
        b
    }

    pub(super) fn our_via(&self, transport: Transport, branch: String) -> Option<Header<'static>> {
        let local = self.local(transport)?;
        let host = Host::from(local.ip());
        Some(Header::Via(Via {
            transport: Cow::Borrowed(transport.via_name()),
            host,
            port: Some(local.port()),
            params: vec![Param::new("branch", Some(Cow::Owned(branch)))],
        }))
    }

    /// The dialog token our Record-Route carries (`pal=`): 16 hex digits of a MAC
    /// (SipHash-2-4, `crate::mac`) of the Call-ID under a key derived from the route
    /// key. An in-dialog request counts as routed through this proxy only when a Route
    /// naming us carries the token of its Call-ID, so that nobody can relay a made-up
    /// "dialog" request through Palisade by writing our address in a Route header.
    pub(super) fn dialog_token(&self, call_id: &str) -> String {
        let mut t = String::with_capacity(16);
        // (the tag's bytes in order: its big-endian reading)
        let tag = u64::from_be_bytes(self.dialog_mac.tag64(call_id.as_bytes()));
        crate::mac::push_hex_u64(&mut t, tag, 16);
        t
    }

    /// Our Record-Route entry toward a peer on `transport`. Toward a WebSocket peer it
    /// also names the peer's connection (`ws=`, a flow token), since nothing else in
    /// the dialog can reach it; see [`Endpoint::pop_own_routes`].
    pub(super) fn record_route(
        &self,
        transport: Transport,
        call_id: &str,
        ws_peer: Option<Peer>,
    ) -> Option<Header<'static>> {
        let local = self.local(transport)?;
        let host = Host::from(local.ip());
        let mut params = vec![];
        if transport != Transport::Udp {
            params.push(Param::new(
                "transport",
                Some(Cow::Borrowed(transport.param())),
            ));
        }
        params.push(Param::new("lr", None));
        params.push(Param::new(
            "pal",
            Some(Cow::Owned(self.dialog_token(call_id))),
        ));
        if let Some(p) = ws_peer.filter(|p| p.transport.websocket() && p.conn.is_some()) {
            params.push(Param::new("ws", Some(Cow::Owned(self.flows.token(&p)))));
        }
        Some(Header::RecordRoute(NameAddr {
            display: None,
            uri: Uri::Sip(palisade_sip::SipUri {
                secure: transport == Transport::Tls,
                user: None,
                password: None,
                host,
                port: Some(local.port()),
                params,
                headers: vec![],
            }),
            params: vec![],
        }))
    }

    pub(super) fn forward(
        &mut self,
        now: Instant,
        key: TxnKey,
        mut msg: Message<'_>,
        targets: Vec<Target>,
        record_route: bool,
    ) {
        let invite = msg.method() == Some(&Method::Invite);
        let source = self.tx.servers.get(&key).map(|t| t.source);
        let inbound = source.map_or(Transport::Udp, |p| p.transport);
        if invite {
            let trying = self.build_response(&msg, 100, "Trying", vec![]);
            self.send_on_server(now, key, 100, trying, Made::Here);
        }
        if self.media.is_some() {
            let source = self.tx.servers.get(&key).map(|t| t.source);
            if let (true, Some(source)) = (invite, source) {
                if let Err(reason) = self.anchor_offer(&mut msg, &source) {
                    let warn = vec![Header::Other {
                        name: Cow::Borrowed("Warning"),
                        value: Cow::Owned(format!("399 palisade \"{reason}\"")),
                    }];
                    self.reply(now, key, &msg, 503, "Service Unavailable", warn);
                    return;
                }
            } else if msg.method() == Some(&Method::Bye) {
                if let (Some(m), Some(c)) = (self.media.as_mut(), msg.call_id()) {
                    m.ended(c);
                }
            }
        }
        // Max-Forwards: decrement, or add it for RFC 2543 peers.
        match msg.headers.iter_mut().find_map(|h| match h {
            Header::MaxForwards(m) => Some(m),
            _ => None,
        }) {
            Some(m) => *m = m.saturating_sub(1),
            None => {
                let at = msg
                    .headers
                    .iter()
                    .rposition(|h| matches!(h, Header::Via(_)))
                    .map_or(0, |i| i + 1);
                msg.headers.insert(at, Header::MaxForwards(69));
            }
        }
        let lh = self.loop_hash(&msg);
        let mut branches = Vec::new();
        // The last target takes the message itself instead of a copy (the usual call has
        // one), unless no branch can be made toward it (no listener for its transport):
        // then the message is kept for the 480.
        let last = targets.len().saturating_sub(1);
        let mut msg = Some(msg);
        for (i, t) in targets.into_iter().enumerate() {
            let take = i == last && self.local(t.dest.transport).is_some();
            let mut m = match (take, msg.take()) {
                (true, Some(m)) => m,
                (_, Some(m)) => {
                    let copy = m.clone();
                    msg = Some(m);
                    copy
                }
                (_, None) => continue,
            };
            if let Some(r) = t.ruri {
                if let StartLine::Request { uri, .. } = &mut m.start {
                    *uri = r;
                }
            }
            let route_at = m
                .headers
                .iter()
                .position(|h| matches!(h, Header::Route(_)))
                .unwrap_or(m.headers.len());
            for (i, p) in t.path.iter().enumerate() {
                if let Ok(u) = parse_uri(p, &self.cfg.limits) {
                    m.headers.insert(
                        route_at + i,
                        Header::Route(NameAddr {
                            display: None,
                            uri: u,
                            params: vec![],
                        }),
                    );
                }
            }
            if record_route {
                let rr_at = m
                    .headers
                    .iter()
                    .position(|h| matches!(h, Header::RecordRoute(_)))
                    .unwrap_or(m.headers.len());
                let mut rrs = Vec::new();
                let call_id = m.call_id().unwrap_or("").to_string();
                if let Some(h) = self.record_route(t.dest.transport, &call_id, Some(t.dest)) {
                    rrs.push(h);
                }
                // one entry per side when bridging transports, and when either side is
                // a WebSocket client (each entry names its side's connection)
                if t.dest.transport != inbound || inbound.websocket() {
                    if let Some(h) = self.record_route(inbound, &call_id, source) {
                        rrs.push(h);
                    }
                }
                for (i, h) in rrs.into_iter().enumerate() {
                    m.headers.insert(rr_at + i, h);
                }
            }
            let branch = self.new_branch(lh);
            let Some(via) = self.our_via(t.dest.transport, branch.clone()) else {
                continue;
            };
            m.headers.insert(0, via);
            let bytes = m.to_bytes();
            self.stats.forwarded += 1;
            let ck = ClientKey::request(branch);
            self.start_client(now, t.dest, ck.clone(), bytes, invite, Some(key));
            branches.push(ck);
        }
        if branches.is_empty() {
            if let Some(msg) = &msg {
                self.reply(now, key, msg, 480, "Temporarily Unavailable", vec![]);
            }
            return;
        }
        if let Some(s) = self.tx.servers.get_mut(&key) {
            s.branches = branches;
        }
    }

    /// Sends a request on a new client transaction (Timer A/E retransmission, B/F
    /// timeout).
    pub(super) fn start_client(
        &mut self,
        now: Instant,
        dest: Peer,
        key: ClientKey,
        bytes: Vec<u8>,
        invite: bool,
        server: Option<TxnKey>,
    ) {
        self.tx.clients.insert(
            key.clone(),
            ClientTxn {
                invite,
                state: CState::Trying,
                dest,
                request: bytes.clone(),
                server,
                interval: self.cfg.t1,
                provisional: false,
                cancel_pending: false,
                done: false,
                timer_c: None,
                expired: false,
                slots: Slots::default(),
            },
        );
        if !dest.transport.reliable() {
            self.tx
                .arm_after(now, self.cfg.t1, TimerWhat::AorE(key.clone()));
        }
        self.tx
            .arm_after(now, self.cfg.t1 * 64, TimerWhat::BorF(key));
        self.send(dest, bytes);
    }

    /// Loose routing (RFC 3261 section 16.4): remove the top Route entries that name
    /// this server.
    /// Removes the Route entries at the top that name this server and returns how many
    /// of them carried this dialog's token (see [`Endpoint::dialog_token`]): only those
    /// show that the request follows a Record-Route this server inserted.
    /// Removes the Route entries that name this proxy from the top of the route set.
    /// Returns how many of them carried this proxy's dialog token for the Call-ID, the
    /// flow of a valid `flow=` token among them (a request another cluster node sends
    /// toward a binding this node holds), and the WebSocket connection the last of them
    /// names (`ws=`, see [`Endpoint::record_route`]) when that entry also carries the
    /// dialog token: the entry facing the next hop, so a dialog peer can reach the
    /// browser only inside the dialog it was given the entry for.
    pub(super) fn pop_own_routes(
        &self,
        msg: &mut Message<'_>,
    ) -> (usize, Option<Peer>, Option<Peer>) {
        // Computed only when a Route names us (most requests carry none).
        let mut token: Option<String> = None;
        let mut popped = 0;
        let mut flow = None;
        let mut ws_flow = None;
        while let Some(idx) = msg
            .headers
            .iter()
            .position(|h| matches!(h, Header::Route(_)))
        {
            match msg.headers.get(idx) {
                Some(Header::Route(r)) if self.uri_is_us(&r.uri) => {
                    let signed = r
                        .uri
                        .as_sip()
                        .and_then(|s| s.param("pal"))
                        .and_then(|p| p.value.as_deref())
                        .is_some_and(|v| {
                            let t = token.get_or_insert_with(|| {
                                self.dialog_token(msg.call_id().unwrap_or(""))
                            });
                            crate::auth::ct_eq(v.as_bytes(), t.as_bytes())
                        });
                    if let Some(t) = r
                        .uri
                        .as_sip()
                        .and_then(|s| s.param("flow"))
                        .and_then(|p| p.value.as_deref())
                    {
                        flow = flow.or_else(|| self.flows.peer(t));
                    }
                    ws_flow = r
                        .uri
                        .as_sip()
                        .and_then(|s| s.param("ws"))
                        .and_then(|p| p.value.as_deref())
                        .filter(|_| signed)
                        .and_then(|t| self.flows.peer(t))
                        .filter(|p| p.transport.websocket());
                    msg.headers.remove(idx);
                    popped += usize::from(signed);
                }
                _ => break,
            }
        }
        (popped, flow, ws_flow)
    }

    /// An INVITE's SDP offer through the media relay: its body replaced by the relay's
    /// when the relay anchors it; `Err` when the relay has no room.
    pub(super) fn anchor_offer(
        &mut self,
        msg: &mut Message<'_>,
        from: &Peer,
    ) -> Result<(), String> {
        if msg.body.is_empty()
            || !msg
                .content_type()
                .is_some_and(|t| t.is("application", "sdp"))
        {
            return Ok(());
        }
        let (Some(media), Some(call_id)) = (self.media.as_mut(), msg.call_id()) else {
            return Ok(());
        };
        let account = match &self.handling.authenticated {
            Some(Authenticated::Now(a)) => Some(a.as_str()),
            _ => None,
        };
        if let Some(body) = media.offer(call_id, from, account, &msg.body)? {
            msg.body = Cow::Owned(body);
        }
        Ok(())
    }

    /// ACK for a 2xx and other requests relayed without a transaction.
    pub(super) fn forward_stateless(&mut self, from: Peer, mut msg: Message<'_>, raw: &[u8]) {
        let (popped, _, ws_flow) = self.pop_own_routes(&mut msg);
        let next = msg
            .routes()
            .next()
            .map(|r| r.uri.clone())
            .or_else(|| msg.request_uri().cloned());
        let Some(next) = next else { return };
        let local_user =
            matches!(&next, Uri::Sip(s) if s.user.is_some() && self.uri_targets_us(&next));
        let protected_callee = || {
            !self.dir.protected.is_empty()
                && super::registrar::user_of_uri(&next)
                    .is_some_and(|u| self.dir.protected.contains_key(u.as_ref()))
        };
        if popped == 0 && (!local_user || protected_callee()) {
            // Not routed through us (see `route`): not relayed.
            debug!(peer = %from.addr, call_id = msg.call_id().unwrap_or(""), "ACK not relayed: it did not come through this proxy's Record-Route");
            return;
        }
        let dest = if ws_flow.is_some() {
            ws_flow
        } else if self.uri_is_us(&next) || local_user {
            // addressed to a local user: the location service knows where
            match super::registrar::user_of_uri(&next).and_then(|user| {
                self.with_aor(&user, |aor| {
                    self.dir
                        .location
                        .get(aor)
                        .and_then(|l| l.first())
                        .map(|b| (self.binding_dest(b), b.uri.clone()))
                })
            }) {
                Some((d, u)) => {
                    if let StartLine::Request { uri, .. } = &mut msg.start {
                        *uri = u;
                    }
                    Some(d)
                }
                None => None,
            }
        } else {
            self.resolve(&next)
        };
        let Some(dest) = dest else {
            debug!(peer = %from.addr, "stateless request without a resolvable next hop dropped");
            return;
        };
        if let Err(r) = self.shield(from, &mut msg, raw) {
            // An ACK cannot be answered: it is not relayed, and the decision is recorded.
            self.stats.shield_answers_refused += 1;
            debug!(peer = %from.addr, call_id = msg.call_id().unwrap_or(""), reason = %r.reason, "ACK not relayed: refused by the shield");
            self.security(EventKind::AckRefused, from, &msg, r.reason, None, r.sha256);
            return;
        }
        match msg.headers.iter_mut().find_map(|h| match h {
            Header::MaxForwards(m) => Some(m),
            _ => None,
        }) {
            Some(0) => return,
            Some(m) => *m -= 1,
            None => {}
        }
        let top = msg.top_via().and_then(|v| v.branch()).unwrap_or("");
        let top_hash = hash64(&[top.as_bytes()], self.salt);
        // the same text as `format!("{OUR_BRANCH}{lh:08x}.s{top_hash:x}")`, without the
        // formatter (one branch per relayed ACK of a 2xx)
        let mut branch = String::with_capacity(OUR_BRANCH.len() + 26);
        branch.push_str(OUR_BRANCH);
        crate::mac::push_hex_u64(&mut branch, u64::from(self.loop_hash(&msg)), 8);
        branch.push_str(".s");
        crate::mac::push_hex_u64(&mut branch, top_hash, 1);
        let Some(via) = self.our_via(dest.transport, branch) else {
            return;
        };
        msg.headers.insert(0, via);
        self.send(dest, msg.to_bytes());
    }
}
