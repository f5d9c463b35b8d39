//! Responses toward the caller (RFC 3261 section 16.7): choosing the best final response,
//! relaying provisionals and 2xx through the shield, and ending a dialog whose answer the
//! shield refused.

use super::*;

/// Preference among final responses (lower is better), after RFC 3261 section 16.7.
pub(super) fn rank(status: u16) -> u32 {
    let class = match status {
        600..=699 => 0,
        200..=299 => 1,
        401 | 407 | 415 | 420 | 484 => 2,
        300..=399 => 3,
        400..=499 => 4,
        _ => 5,
    };
    class * 1000 + u32::from(status)
}

/// CANCEL (no response given) or ACK for a non-2xx final (RFC 3261 sections 9.1 and
/// 17.1.1.3), built from the request a client transaction sent.
pub(super) fn build_cancel_or_ack(
    request: &[u8],
    response: Option<&Message<'_>>,
    limits: &palisade_sip::Limits,
) -> Option<Vec<u8>> {
    let req = parse_datagram(request, limits).ok()?;
    let method = if response.is_some() {
        Method::Ack
    } else {
        Method::Cancel
    };
    let mut headers = Vec::new();
    if let Some(v) = req.top_via() {
        headers.push(Header::Via(v.clone()));
    }
    for h in &req.headers {
        match h {
            Header::Route(_) | Header::From(_) | Header::CallId(_) => headers.push(h.clone()),
            Header::To(t) => {
                let to = response.and_then(|r| r.to()).unwrap_or(t);
                headers.push(Header::To(to.clone()));
            }
            Header::CSeq(c) => headers.push(Header::CSeq(CSeq {
                seq: c.seq,
                method: method.clone(),
            })),
            _ => {}
        }
    }
    headers.push(Header::MaxForwards(70));
    let m = Message {
        start: StartLine::Request {
            method,
            uri: req.request_uri()?.clone(),
        },
        headers,
        body: Cow::Borrowed(&[]),
        received: Default::default(),
    };
    Some(m.to_bytes())
}

impl Endpoint {
    /// A callee answered 2xx with content the shield refused: the caller gets a 502
    /// instead, so the dialog the callee believes in is acknowledged and ended here
    /// (ACK, then BYE on its own transaction), toward the hop the INVITE went to.
    pub(super) fn end_refused_dialog(&mut self, now: Instant, dest: Peer, resp: &Message<'_>) {
        let Some(target) = resp.contacts().find_map(|c| match c {
            Contact::Addr(na) => Some(na.uri.clone()),
            _ => None,
        }) else {
            return;
        };
        let Some(seq) = resp.cseq().map(|c| c.seq) else {
            return;
        };
        // Route set toward the callee: the Record-Route entries above ours, nearest
        // first (RFC 3261 section 12.1.2 seen from our position).
        let rrs: Vec<&NameAddr<'_>> = resp.record_routes().collect();
        let routes: Vec<Header<'_>> = match rrs.iter().position(|r| self.uri_is_us(&r.uri)) {
            Some(i) => rrs
                .get(..i)
                .unwrap_or_default()
                .iter()
                .rev()
                .map(|r| Header::Route((*r).clone()))
                .collect(),
            None => vec![],
        };
        for (method, seq) in [(Method::Ack, seq), (Method::Bye, seq.saturating_add(1))] {
            let branch = self.new_branch(0);
            let Some(via) = self.our_via(dest.transport, branch.clone()) else {
                return;
            };
            let mut headers = vec![via, Header::MaxForwards(70)];
            headers.extend(routes.iter().cloned());
            for h in &resp.headers {
                if matches!(h, Header::From(_) | Header::To(_) | Header::CallId(_)) {
                    headers.push(h.clone());
                }
            }
            headers.push(Header::CSeq(palisade_sip::CSeq {
                seq,
                method: method.clone(),
            }));
            headers.push(Header::Other {
                name: Cow::Borrowed("Reason"),
                value: Cow::Borrowed("SIP;cause=502;text=\"answer refused by policy\""),
            });
            let ack = method == Method::Ack;
            let m = Message {
                start: StartLine::Request {
                    method,
                    uri: target.clone(),
                },
                headers,
                body: Cow::Borrowed(&[]),
                received: Default::default(),
            };
            let bytes = m.to_bytes();
            if ack {
                self.send(dest, bytes);
            } else {
                self.start_client(now, dest, ClientKey::request(branch), bytes, false, None);
            }
        }
    }

    /// A response built here in place of a relayed one the shield refused.
    pub(super) fn local_answer(&self, skey: TxnKey, code: u16, reason: &str) -> Option<Vec<u8>> {
        let t = self.tx.servers.get(&skey)?;
        let m = parse_datagram(&t.request, &self.cfg.limits).ok()?;
        let phrase = match code {
            502 => "Bad Gateway",
            _ => "Response Refused By Policy",
        };
        Some(self.build_response(&m, code, phrase, vec![warning(reason)]))
    }

    /// A response to an INVITE on its way back, through the media relay: the answer in
    /// it rewritten (1xx, 2xx with SDP), the media opened (2xx) or the call's media ended
    /// (a final failure: the relay keeps nothing of a call that did not happen; with a
    /// forked INVITE a later 2xx of another branch anchors again).
    fn anchor_answer(&mut self, msg: &mut Message<'_>, from: &Peer, status: u16, refused: bool) {
        let Some(call_id) = msg.call_id().map(str::to_string) else {
            return;
        };
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if status >= 300 || (refused && status >= 200) {
            media.ended(&call_id);
            return;
        }
        let sdp = !msg.body.is_empty()
            && msg
                .content_type()
                .is_some_and(|t| t.is("application", "sdp"));
        if sdp && status > 100 {
            if let Some(body) = media.answer(&call_id, from, &msg.body) {
                msg.body = Cow::Owned(body);
            }
        }
        if (200..300).contains(&status) {
            media.answered(&call_id);
        }
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        from: Peer,
        mut msg: Message<'_>,
        raw: &[u8],
    ) {
        self.stats.responses += 1;
        let Some(status) = msg.status() else { return };
        let Some(top) = msg.top_via() else { return };
        if !self.via_is_us(top) {
            debug!(peer = %from.addr, "dropped response whose top Via is not ours");
            return;
        }
        let key = ClientKey {
            branch: top.branch().unwrap_or("").to_string(),
            cancel: msg.cseq().is_some_and(|c| c.method == Method::Cancel),
        };
        // Strip our Via for relaying.
        if let Some(i) = msg.headers.iter().position(|h| matches!(h, Header::Via(_))) {
            msg.headers.remove(i);
        }
        // The shield, toward the caller: a provisional loses a refused body (or is not
        // relayed), a refused final is replaced by one built here (a 2xx by 502).
        let mut relay_provisional = true;
        let mut replace: Option<(u16, String)> = None;
        if status > 100 {
            if let Err(r) = self.shield(from, &mut msg, raw) {
                self.stats.shield_answers_refused += 1;
                let action = match palisade_shield::RefusedAnswer::for_status(status) {
                    palisade_shield::RefusedAnswer::StripBody => {
                        palisade_shield::strip_body(&mut msg);
                        if self.shield(from, &mut msg, raw).is_ok() {
                            "provisional relayed without its body"
                        } else {
                            relay_provisional = false;
                            "provisional not relayed"
                        }
                    }
                    palisade_shield::RefusedAnswer::Replace502 => {
                        replace = Some((502, r.reason.clone()));
                        "replaced by 502 toward the caller; the callee's dialog is ended"
                    }
                    palisade_shield::RefusedAnswer::ReplaceSameStatus => {
                        replace = Some((status, r.reason.clone()));
                        "replaced by a response built by the server"
                    }
                };
                debug!(peer = %from.addr, status, call_id = msg.call_id().unwrap_or(""), reason = %r.reason, action, "response refused by the shield");
                self.security(
                    EventKind::AnswerRefused,
                    from,
                    &msg,
                    format!("{}; {action}", r.reason),
                    Some(status),
                    r.sha256,
                );
            }
        }
        if self.media.is_some() && msg.cseq().is_some_and(|c| c.method == Method::Invite) {
            self.anchor_answer(&mut msg, &from, status, replace.is_some());
        }
        let Some(c) = self.tx.clients.get_mut(&key) else {
            // No transaction (e.g. a 2xx retransmission after the INVITE transaction
            // ended): relay statelessly by the next Via. A 100 is hop-by-hop (RFC 3261
            // section 16.7 step 3) and never relayed; it was not shielded either.
            if replace.is_some() || !relay_provisional || status == 100 {
                return;
            }
            if let Some(dest) = msg.top_via().and_then(via_dest) {
                self.send(dest, msg.to_bytes());
            }
            return;
        };
        if status < 200 {
            if c.state == CState::Trying {
                c.state = CState::Proceeding;
                if !c.invite {
                    c.interval = self.cfg.t2;
                }
            }
            c.provisional = true;
            let first_c = c.invite && c.timer_c.is_none();
            if c.invite {
                c.timer_c = Some(now + TIMER_C);
            }
            let cancel_now = c.cancel_pending;
            let server = c.server;
            if first_c {
                self.tx.arm_after(now, TIMER_C, TimerWhat::C(key.clone()));
            }
            if cancel_now {
                self.cancel_branch(now, &key);
            }
            if status > 100 && relay_provisional {
                if let Some(s) = server {
                    if self.tx.servers.get(&s).is_some_and(|t| !t.final_sent) {
                        self.send_on_server(now, s, status, msg.to_bytes(), Made::Relayed);
                    }
                }
            }
            return;
        }
        // Final response.
        if c.done {
            if c.invite && status >= 300 {
                if let Some(ack) = build_cancel_or_ack(&c.request, Some(&msg), &self.cfg.limits) {
                    let d = c.dest;
                    self.send(d, ack);
                }
            }
            return;
        }
        c.done = true;
        c.state = CState::Completed;
        let dest = c.dest;
        let reliable = c.dest.transport.reliable();
        let server = c.server;
        let invite = c.invite;
        let ack = if c.invite && status >= 300 {
            build_cancel_or_ack(&c.request, Some(&msg), &self.cfg.limits).map(|a| (c.dest, a))
        } else {
            None
        };
        if let Some((d, a)) = ack {
            self.send(d, a);
        }
        let end = if (invite && status < 300) || reliable {
            Duration::ZERO
        } else if invite {
            Duration::from_secs(32)
        } else {
            self.cfg.t4
        };
        self.tx.arm_after(now, end, TimerWhat::DorK(key.clone()));
        let Some(s) = server else {
            self.originated_done(&key.branch, status < 300);
            return;
        };
        match replace {
            None => self.branch_final(now, s, status, msg.to_bytes()),
            Some((code, reason)) => {
                if invite && status < 300 {
                    self.end_refused_dialog(now, dest, &msg);
                }
                if let Some(b) = self.local_answer(s, code, &reason) {
                    self.branch_final(now, s, code, b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rank;

    /// RFC 3261 section 16.7 step 6: 6xx first, then 2xx, then the 4xx a caller can act
    /// on (401/407 credentials, 415, 420, 484), then 3xx, other 4xx, 5xx; lowest code
    /// within a class.
    #[test]
    fn best_response_order() {
        let mut codes = [503, 404, 302, 407, 200, 603, 486, 415, 500];
        codes.sort_by_key(|c| rank(*c));
        assert_eq!(codes, [603, 200, 407, 415, 302, 404, 486, 500, 503]);
    }
}
