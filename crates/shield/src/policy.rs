//! The policy: what may reach a device, with the defaults an operator gets when the
//! configuration says nothing. Every bound has a config key (`shield.<field>`) and the
//! refusal it causes names that key.

/// What to do with an SDP attribute that is not on the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownAttribute {
    /// Remove it from the forwarded description (and report it).
    Drop,
    /// Refuse the whole offer with 488.
    Refuse,
}

/// What the shield does with a text header (or display name) on its way to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextAction {
    /// Removed (display names: the name-addr keeps its URI).
    Drop,
    /// Forwarded as received (still bounded by `shield.max_header_length`).
    Keep,
    /// Reduced to letters, digits, spaces and `.,-_'()` (for User-Agent and Server: the
    /// first product token, `name/version`), at most `shield.text.max_length` characters.
    Rewrite,
}

impl TextAction {
    /// `drop`, `keep` or `rewrite`.
    pub fn parse(s: &str) -> Option<TextAction> {
        Some(match s {
            "drop" => TextAction::Drop,
            "keep" => TextAction::Keep,
            "rewrite" => TextAction::Rewrite,
            _ => return None,
        })
    }
}

/// `shield.text.*`: the SIP fields that reach a device as free text. Applied to requests
/// toward callees and responses toward callers alike, and not reported one by one (they
/// are routine on every call, like the `s=` rewrite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPolicy {
    /// Display names of From, To and Contact (default `rewrite`: phones show them).
    pub display_name: TextAction,
    /// User-Agent (default `drop`: the callee needs no description of the caller's
    /// software; the server reads it before the shield runs).
    pub user_agent: TextAction,
    /// Server (default `drop`).
    pub server: TextAction,
    /// Subject (default `drop`).
    pub subject: TextAction,
    /// Organization (default `drop`).
    pub organization: TextAction,
    /// Call-Info (default `drop`: a device fetches its URLs; `rewrite` is not offered).
    pub call_info: TextAction,
    /// `shield.text.max_length` (default 32): longest rewritten text, in characters.
    pub max_length: usize,
}

impl Default for TextPolicy {
    fn default() -> Self {
        TextPolicy {
            display_name: TextAction::Rewrite,
            user_agent: TextAction::Drop,
            server: TextAction::Drop,
            subject: TextAction::Drop,
            organization: TextAction::Drop,
            call_info: TextAction::Drop,
            max_length: 32,
        }
    }
}

/// The shield's configuration: what may pass, and every bound (see each field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `shield.enabled` (default true). Off, messages are forwarded as the core always
    /// did: canonical SIP, but bodies and unknown headers untouched. Meant for measuring
    /// the shield's cost, not for production.
    pub enabled: bool,
    /// Bounds of the SDP parser (`sdp.*` keys).
    pub sdp_limits: palisade_sdp::Limits,
    /// `shield.sdp_attributes`: attribute names that may reach a device (a set: it is
    /// consulted for every attribute of every offer).
    pub sdp_attributes: NameSet,
    /// `shield.unknown_attributes`: `drop` (default) or `refuse`.
    pub unknown_attributes: UnknownAttribute,
    /// `shield.unknown_codecs`: an `rtpmap` outside the codec registry (or at a clock
    /// rate its codec does not use) is removed with its format (`drop`, default) or
    /// refuses the offer (`refuse`).
    pub unknown_codecs: UnknownAttribute,
    /// `shield.max_attribute_length` (default 256): longest `name:value` of one attribute.
    pub max_attribute_length: usize,
    /// `shield.max_sdp_text` (default 64): longest session name (`s=`) and origin user name.
    pub max_sdp_text: usize,
    /// `shield.headers`: header names (besides the ones Palisade types itself) that may be
    /// forwarded. Everything else is dropped.
    pub headers: Vec<String>,
    /// `shield.max_header_length` (default 1024): longest forwarded header line.
    pub max_header_length: usize,
    /// `shield.max_message_size` (default 24576): largest forwarded message.
    pub max_message_size: usize,
    /// `shield.body_types`: content types besides SDP that non-offer requests (MESSAGE,
    /// INFO, NOTIFY, ...) may carry, forwarded only as text.
    pub body_types: Vec<String>,
    /// `shield.max_text_body` (default 4096): largest such text body.
    pub max_text_body: usize,
    /// `shield.multipart_types`: content types allowed as parts of `multipart/mixed`.
    pub multipart_types: Vec<String>,
    /// `shield.max_parts` (default 4).
    pub max_parts: usize,
    /// `shield.text.*`.
    pub text: TextPolicy,
    /// `shield.max_residual_bytes` (default 384): an offer (a request with a body toward a
    /// callee) whose sender-chosen content ([`crate::Residual`]) is larger is refused
    /// with 488.
    pub max_residual_bytes: u64,
    /// Key of the identifier rewrites (`msid`, `cname`, `o=` session id): the core derives
    /// it from its persisted route key so rewrites survive restarts.
    pub rewrite_key: [u8; 32],
    /// The digest realm of this server: our own Proxy-Authorization credentials are
    /// removed before forwarding, so a callee never sees a caller's digest response.
    pub realm: Option<String>,
}

/// FNV-1a: the allow-list is fixed at start-up and only looked up (never grown from the
/// network), so a fast non-keyed hash is safe here, and SipHash showed in profiles.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A set of names looked up per attribute.
pub type NameSet = std::collections::HashSet<String, std::hash::BuildHasherDefault<NameHasher>>;

/// Attribute names real phones and browsers use (RFC 8866, 8839, 8842, 8843, 8122,
/// 4568, 5576, 8285, 8830, 8851, 8853, 8841, 4145, 5888, 3605, 4585, 5761, 8858, 3611,
/// 7866, 6189, 6236).
pub const DEFAULT_SDP_ATTRIBUTES: &[&str] = &[
    "rtpmap",
    "fmtp",
    "ptime",
    "maxptime",
    "sendrecv",
    "sendonly",
    "recvonly",
    "inactive",
    "rtcp",
    "rtcp-mux",
    "rtcp-rsize",
    "rtcp-fb",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "candidate",
    "end-of-candidates",
    "fingerprint",
    "setup",
    "mid",
    "group",
    "msid",
    "msid-semantic",
    "ssrc",
    "ssrc-group",
    "extmap",
    "extmap-allow-mixed",
    "crypto",
    "label",
    "framerate",
    "content",
    "sctp-port",
    "max-message-size",
    "rid",
    "simulcast",
    "silenceSupp",
    "connection",
    "tcap",
    "pcfg",
    "acfg",
    "rtcp-xr",
    "record",
    "zrtp-hash",
    "bundle-only",
    "rtcp-mux-only",
    "imageattr",
    "sctpmap",
];

/// Headers a call needs besides the typed ones, each harmless as a token or URI the
/// device does not fetch. Not on it by default, and why: Alert-Info and Call-Info (a
/// device fetches the URL: ringtone and picture exploits), Subject, Organization,
/// Reply-To, Error-Info (free text or URLs: side channels), Identity (RFC 8224 headers
/// are verified by the server, not forwarded blindly), P-Asserted-Identity (RFC 3325
/// section 5: an identity asserted by a caller outside the trust domain is removed, or a
/// caller could claim to be anyone). Subject, Organization and Call-Info follow
/// `shield.text.*` instead of this list.
pub const DEFAULT_HEADERS: &[&str] = &[
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Allow-Events",
    "Content-Disposition",
    "Event",
    "MIME-Version",
    "Min-SE",
    "Privacy",
    "Priority",
    "RAck",
    "Reason",
    "Refer-To",
    "Referred-By",
    "Replaces",
    "Retry-After",
    "RSeq",
    "Session-Expires",
    "Subscription-State",
    "Timestamp",
    "Unsupported",
    "Authentication-Info",
];

/// Bodies that MESSAGE, INFO, NOTIFY and the like may carry (as text only): instant
/// messages and typing indications (RFC 3428, 3994, 3862), DTMF, REFER progress
/// (RFC 3515), message waiting (RFC 3842), presence and dialog state (RFC 3863, 4235).
pub const DEFAULT_BODY_TYPES: &[&str] = &[
    "text/plain",
    "application/im-iscomposing+xml",
    "message/cpim",
    "application/dtmf-relay",
    "application/dtmf",
    "message/sipfrag",
    "application/simple-message-summary",
    "application/pidf+xml",
    "application/dialog-info+xml",
];

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            sdp_limits: palisade_sdp::Limits::default(),
            sdp_attributes: DEFAULT_SDP_ATTRIBUTES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            unknown_attributes: UnknownAttribute::Drop,
            unknown_codecs: UnknownAttribute::Drop,
            max_attribute_length: 256,
            max_sdp_text: 64,
            headers: DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect(),
            max_header_length: 1024,
            max_message_size: 24_576,
            body_types: DEFAULT_BODY_TYPES.iter().map(|s| s.to_string()).collect(),
            max_text_body: 4096,
            multipart_types: vec!["application/sdp".into()],
            max_parts: 4,
            text: TextPolicy::default(),
            max_residual_bytes: 384,
            rewrite_key: [0; 32],
            realm: None,
        }
    }
}

impl Policy {
    pub(crate) fn header_allowed(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
    pub(crate) fn attribute_allowed(&self, name: &str) -> bool {
        self.sdp_attributes.contains(name)
    }
}
