//! The core's side of a media relay: what it tells the shell about a call's session
//! descriptions and its life, so that the shell can anchor the media (allocate relay
//! ports, rewrite the addresses in the offer and the answer, hold media until the answer,
//! release the ports at the end). The core stays sans-IO: it calls this trait at four
//! points of a call and uses the bodies it gets back.

use crate::types::Peer;

/// A media relay, as the core sees it (implemented by the shell).
pub trait MediaAnchor: Send {
    /// An INVITE's offer (the shield's canonical SDP) on its way toward the callee, from
    /// `offerer` (the INVITE's transport source), whose credentials proved `account`
    /// (`None`: not authenticated, or a retransmission). `Ok(Some(body))`: send this
    /// body instead (the media is anchored); `Ok(None)`: send the offer as it is
    /// (nothing to anchor: no RTP, ICE media passed through, the relay off);
    /// `Err(reason)`: the relay has no room for the call (the core answers 503 with the
    /// reason).
    fn offer(
        &mut self,
        call_id: &str,
        offerer: &Peer,
        account: Option<&str>,
        sdp: &[u8],
    ) -> Result<Option<Vec<u8>>, String>;
    /// An answer (the SDP of a 1xx or 2xx to the INVITE) on its way back, from
    /// `answerer` (the response's transport source): the body to send instead, or
    /// `None` to leave it.
    fn answer(&mut self, call_id: &str, answerer: &Peer, sdp: &[u8]) -> Option<Vec<u8>>;
    /// A 2xx to the INVITE went back toward the caller: media may flow both ways.
    fn answered(&mut self, call_id: &str);
    /// The call is over (a BYE, a final failure of its INVITE, a CANCEL's 487): its
    /// media stops and its ports go back to the pool. Unknown calls are ignored.
    fn ended(&mut self, call_id: &str);
}
