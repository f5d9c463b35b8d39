//! The residual channel: how many bytes of a forwarded message its sender could still
//! choose freely, field by field.
//!
//! Counted on the message as it leaves the shield (after every drop and rewrite), as
//! the information its sender-chosen values can carry:
//! - a value of free characters counts its length times the bits one character of its
//!   grammar can carry: decimal digit 3.32, hex digit 4, host-name character 5.21,
//!   ice-char or base64 6, token character 6.27, Call-ID word character 6.49, printable
//!   ASCII 6.57, a character beyond ASCII 17;
//! - an IPv4 address 32 bits, IPv6 128, a fingerprint its digest (SHA-256: 32 bytes);
//! - a word from a vocabulary the shield checks (a codec, an attribute name, an
//!   `rtcp-fb` type, an option tag it knows, ...) counts nothing, nor does anything the
//!   shield rewrote (`s=`, the `o=` user, session id and address, `msid` ids, `cname`)
//!   or computed (Content-Length, Content-Type).
//!
//! Not counted: which lines and words from the vocabularies a sender picks and in what
//! order (at most about one byte per line; `sdp.max_lines` bounds it). The Request-URI
//! is not counted either: the proxy replaces it with the callee's registered contact.
use palisade_sdp::{Attribute, Session};
use palisade_sip::{Contact, Header, Host, Message, NameAddr, Param, Uri};

/// Millibits per character of each grammar.
const DIGIT: u64 = 3322;
const HEX: u64 = 4000;
const HOST: u64 = 5210;
const ICE: u64 = 6000;
const TOKEN: u64 = 6270;
const WORD: u64 = 6490;
const TEXT: u64 = 6570;
const WIDE: u64 = 17_000;

/// The fields the figure is broken into (`inspect --json` and the README use these
/// names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    CallId,
    Tags,
    Via,
    FromTo,
    Contact,
    RouteSet,
    DisplayName,
    HeaderNumbers,
    OptionTags,
    TextHeaders,
    OtherHeaders,
    OriginVersion,
    Addresses,
    Ports,
    IceCredentials,
    Fingerprint,
    Candidates,
    Ssrc,
    Identifiers,
    CryptoKeys,
    FormatParameters,
    SdpNumbers,
    OtherAttributes,
    TextBody,
}

/// The names of the [`Field`]s, in their order (`inspect --json`, the README).
pub const FIELD_NAMES: [&str; 24] = [
    "call-id",
    "tags",
    "via",
    "from-to-uris",
    "contact",
    "route-set",
    "display-name",
    "header-numbers",
    "option-tags",
    "text-headers",
    "other-headers",
    "o-version",
    "addresses",
    "ports",
    "ice-credentials",
    "fingerprint",
    "candidates",
    "ssrc",
    "identifiers",
    "crypto-keys",
    "format-parameters",
    "sdp-numbers",
    "other-attributes",
    "text-body",
];

/// Sender-chosen information in one forwarded message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Residual {
    millibits: [u64; 24],
}

/// Counts one description: a value repeated as it was (the same ICE credentials and
/// fingerprint in every bundled section, the same `c=` address) carries nothing new and
/// counts once.
struct Sdp<'r, 's> {
    r: &'r mut Residual,
    /// The values remembered, the first [`SEEN_INLINE`] without an allocation (a
    /// phone's offer has one or two).
    seen: [(Field, &'s str); SEEN_INLINE],
    /// How many of `seen` are in use.
    inline: usize,
    /// The values remembered beyond those.
    more: Vec<(Field, &'s str)>,
}

const SEEN_INLINE: usize = 8;

/// Values remembered for the repeat rule (beyond, everything counts).
const SEEN_MAX: usize = 256;

impl<'s> Sdp<'_, 's> {
    /// Whether `v` is seen in field `f` for the first time (remembering it). Only the
    /// fields that repeat in real offers (ICE credentials, fingerprint, addresses) are
    /// remembered; the others always count.
    fn first(&mut self, f: Field, v: &'s str) -> bool {
        if !matches!(
            f,
            Field::IceCredentials | Field::Fingerprint | Field::Addresses
        ) {
            return true;
        }
        let inline = self.seen.get(..self.inline).unwrap_or_default();
        if inline
            .iter()
            .chain(&self.more)
            .any(|(g, w)| *g == f && *w == v)
        {
            return false;
        }
        if let Some(slot) = self.seen.get_mut(self.inline) {
            *slot = (f, v);
            self.inline += 1;
        } else if self.inline + self.more.len() < SEEN_MAX {
            self.more.push((f, v));
        }
        true
    }

    fn chars(&mut self, f: Field, v: &'s str, per_char: u64) {
        if self.first(f, v) {
            self.r.chars(f, v, per_char);
        }
    }

    fn number(&mut self, f: Field, n: u64, max_bits: u64) {
        self.r.number(f, n, max_bits);
    }

    fn add(&mut self, f: Field, mb: u64) {
        self.r.add(f, mb);
    }

    fn address(&mut self, a: &'s str) {
        if !self.first(Field::Addresses, a) {
            return;
        }
        match palisade_sdp::ip(a) {
            Some(std::net::IpAddr::V4(_)) => self.r.add(Field::Addresses, 32_000),
            Some(std::net::IpAddr::V6(_)) => self.r.add(Field::Addresses, 128_000),
            None => self.r.chars(Field::Addresses, a, HOST),
        }
    }
}

impl Residual {
    fn add(&mut self, f: Field, mb: u64) {
        if let Some(x) = self.millibits.get_mut(f as usize) {
            *x = x.saturating_add(mb);
        }
    }

    fn chars(&mut self, f: Field, s: &str, per_char: u64) {
        if s.is_ascii() {
            self.add(f, s.len() as u64 * per_char);
            return;
        }
        let wide = s.chars().filter(|c| !c.is_ascii()).count() as u64;
        let ascii = s.len() as u64
            - s.chars()
                .filter(|c| !c.is_ascii())
                .map(char::len_utf8)
                .sum::<usize>() as u64;
        self.add(f, ascii * per_char + wide * WIDE);
    }

    fn number(&mut self, f: Field, n: u64, max_bits: u64) {
        // (the decimal digits: a logarithm, not a division per digit)
        let digits = u64::from(n.checked_ilog10().unwrap_or(0)) + 1;
        self.add(f, (digits * DIGIT).min(max_bits * 1000));
    }

    /// The whole figure, in bytes (rounded up).
    pub fn bytes(&self) -> u64 {
        self.millibits.iter().sum::<u64>().div_ceil(8000)
    }

    /// Each field with what it contributes, in bytes (rounded up), in a fixed order;
    /// fields that contribute nothing are left out.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        FIELD_NAMES
            .iter()
            .zip(self.millibits.iter())
            .filter(|(_, mb)| **mb > 0)
            .map(|(n, mb)| (*n, mb.div_ceil(8000)))
    }

    /// Counts a text body (MESSAGE, INFO, ... outside offers): all of it is free text.
    pub(crate) fn text_body(&mut self, body: &[u8]) {
        let s = String::from_utf8_lossy(body);
        self.chars(Field::TextBody, &s, TEXT);
    }

    /// Counts the headers of a message about to be forwarded.
    pub(crate) fn headers(&mut self, msg: &Message<'_>) {
        for h in &msg.headers {
            match h {
                Header::Via(v) => {
                    self.host(Field::Via, &v.host, v.port);
                    for p in &v.params {
                        if p.name.eq_ignore_ascii_case("received")
                            || p.name.eq_ignore_ascii_case("rport")
                        {
                            // written by this server from the packet's source
                            continue;
                        }
                        self.param(Field::Via, p);
                    }
                }
                Header::From(na) | Header::To(na) => self.name_addr(Field::FromTo, na),
                Header::CallId(c) => self.chars(Field::CallId, c, WORD),
                Header::CSeq(c) => self.number(Field::HeaderNumbers, u64::from(c.seq), 32),
                Header::MaxForwards(n) => self.number(Field::HeaderNumbers, u64::from(*n), 8),
                Header::Expires(n) | Header::MinExpires(n) => {
                    self.number(Field::HeaderNumbers, u64::from(*n), 32)
                }
                Header::Contact(Contact::Addr(na)) => self.name_addr(Field::Contact, na),
                Header::Contact(Contact::Star) => {}
                Header::Route(na) | Header::RecordRoute(na) | Header::Path(na) => {
                    self.name_addr(Field::RouteSet, na)
                }
                Header::ContentType(_) | Header::ContentEncoding(_) => {}
                Header::Authorization(c)
                | Header::ProxyAuthorization(c)
                | Header::WwwAuthenticate(c)
                | Header::ProxyAuthenticate(c) => {
                    for p in &c.params {
                        self.param(Field::OtherHeaders, p);
                    }
                }
                Header::Allow(methods) => {
                    for m in methods {
                        if let palisade_sip::Method::Extension(x) = m {
                            self.chars(Field::OptionTags, x, TOKEN);
                        }
                    }
                }
                Header::Supported(tags) | Header::Require(tags) | Header::ProxyRequire(tags) => {
                    for t in tags {
                        if !OPTION_TAGS.iter().any(|k| k.eq_ignore_ascii_case(t)) {
                            self.chars(Field::OptionTags, t, TOKEN);
                        }
                    }
                }
                Header::UserAgent(t) | Header::Server(t) => self.chars(Field::TextHeaders, t, TEXT),
                Header::Warning(w) => {
                    self.number(Field::OtherHeaders, u64::from(w.code), 10);
                    self.chars(Field::OtherHeaders, &w.agent, TOKEN);
                    self.chars(Field::OtherHeaders, &w.text, TEXT);
                }
                Header::Date(_) => self.add(Field::HeaderNumbers, 32_000),
                Header::Other { name, value } => {
                    let f = if crate::headers::text_header(name).is_some() {
                        Field::TextHeaders
                    } else {
                        Field::OtherHeaders
                    };
                    self.chars(f, value, TEXT);
                }
            }
        }
    }

    fn host(&mut self, f: Field, h: &Host<'_>, port: Option<u16>) {
        match h {
            Host::V4(_) => self.add(f, 32_000),
            Host::V6(_) => self.add(f, 128_000),
            Host::Domain(d) => self.chars(f, d, HOST),
        }
        if let Some(p) = port {
            self.number(f, u64::from(p), 16);
        }
    }

    fn param(&mut self, f: Field, p: &Param<'_>) {
        if p.name.eq_ignore_ascii_case("tag") {
            if let Some(v) = &p.value {
                self.chars(Field::Tags, v, TOKEN);
            }
            return;
        }
        if p.name.eq_ignore_ascii_case("branch") {
            if let Some(v) = &p.value {
                self.chars(f, v, TOKEN);
            }
            return;
        }
        self.chars(f, &p.name, TOKEN);
        if let Some(v) = &p.value {
            self.chars(f, v, TEXT);
        }
    }

    fn name_addr(&mut self, f: Field, na: &NameAddr<'_>) {
        if let Some(d) = &na.display {
            self.chars(Field::DisplayName, d, TEXT);
        }
        self.uri(f, &na.uri);
        for p in &na.params {
            self.param(f, p);
        }
    }

    fn uri(&mut self, f: Field, u: &Uri<'_>) {
        match u {
            Uri::Sip(s) => {
                if let Some(x) = &s.user {
                    self.chars(f, x, WORD);
                }
                if let Some(x) = &s.password {
                    self.chars(f, x, WORD);
                }
                self.host(f, &s.host, s.port);
                for p in s.params.iter().chain(s.headers.iter()) {
                    self.param(f, p);
                }
            }
            Uri::Tel(t) => {
                self.chars(f, &t.number, DIGIT);
                for p in &t.params {
                    self.param(f, p);
                }
            }
            Uri::Other { rest, .. } => self.chars(f, rest, TEXT),
        }
    }

    /// Counts a session description about to be forwarded.
    pub(crate) fn sdp(&mut self, s: &Session) {
        Sdp {
            r: self,
            seen: [(Field::Addresses, ""); SEEN_INLINE],
            inline: 0,
            more: Vec::new(),
        }
        .session(s);
    }
}

impl<'s> Sdp<'_, 's> {
    fn session(&mut self, s: &'s Session) {
        self.number(Field::OriginVersion, s.origin.session_version, 64);
        let conns = s
            .connection
            .iter()
            .chain(s.media.iter().flat_map(|m| m.connections.iter()));
        for c in conns {
            self.address(&c.address);
            if let Some(t) = c.ttl {
                self.number(Field::SdpNumbers, u64::from(t), 8);
            }
            if let Some(n) = c.count {
                self.number(Field::SdpNumbers, u64::from(n), 32);
            }
        }
        let bws = s
            .bandwidths
            .iter()
            .chain(s.media.iter().flat_map(|m| m.bandwidths.iter()));
        for b in bws {
            self.number(Field::SdpNumbers, b.value, 64);
        }
        for t in &s.times {
            self.number(Field::SdpNumbers, t.start, 64);
            self.number(Field::SdpNumbers, t.stop, 64);
            for r in &t.repeats {
                self.chars(Field::SdpNumbers, r, TEXT);
            }
        }
        if let Some(z) = &s.zone {
            self.chars(Field::SdpNumbers, z, TEXT);
        }
        self.attributes(&s.attributes);
        for m in &s.media {
            self.number(Field::Ports, u64::from(m.port), 16);
            if let Some(c) = m.port_count {
                self.number(Field::Ports, u64::from(c), 16);
            }
            for f in &m.formats {
                match crate::body::pt_of(f) {
                    Some(pt) => self.number(Field::SdpNumbers, u64::from(pt), 7),
                    None => self.chars(Field::SdpNumbers, f, TOKEN),
                }
            }
            self.attributes(&m.attributes);
        }
    }

    fn attributes(&mut self, attrs: &'s [Attribute]) {
        for a in attrs {
            match a {
                Attribute::Rtpmap { pt, .. } => self.number(Field::SdpNumbers, u64::from(*pt), 7),
                Attribute::Fmtp { params, .. } => {
                    for (k, v) in params {
                        match v {
                            Some(v) => self.chars(Field::FormatParameters, v, value_class(v)),
                            // bare values: telephone-event lists, red's payload types
                            None => self.chars(Field::FormatParameters, k, DIGIT),
                        }
                    }
                }
                Attribute::Ptime(x) | Attribute::MaxPtime(x) | Attribute::Framerate(x) => {
                    self.chars(Field::SdpNumbers, x, DIGIT)
                }
                Attribute::Rtcp { port, address } => {
                    self.number(Field::Ports, u64::from(*port), 16);
                    if let Some(a) = address {
                        self.address(a.rsplit(' ').next().unwrap_or(""));
                    }
                }
                Attribute::RtcpFb { value, .. } => {
                    if let Some(n) = value.strip_prefix("trr-int ") {
                        self.chars(Field::SdpNumbers, n, DIGIT);
                    }
                }
                Attribute::IceUfrag(x) | Attribute::IcePwd(x) => {
                    self.chars(Field::IceCredentials, x, ICE)
                }
                Attribute::Candidate(c) => {
                    self.chars(Field::Candidates, &c.foundation, ICE);
                    self.number(Field::Candidates, u64::from(c.component), 8);
                    self.number(Field::Candidates, u64::from(c.priority), 32);
                    self.address(&c.address);
                    self.number(Field::Ports, u64::from(c.port), 16);
                    if let Some(r) = &c.raddr {
                        self.address(r);
                    }
                    if let Some(p) = c.rport {
                        self.number(Field::Ports, u64::from(p), 16);
                    }
                    for (k, v) in &c.extensions {
                        let class = if k == "ufrag" { ICE } else { DIGIT };
                        if k != "tcptype" {
                            self.chars(Field::Candidates, v, class);
                        }
                    }
                }
                // hex pairs: one byte each
                Attribute::Fingerprint { value, .. } if self.first(Field::Fingerprint, value) => {
                    self.add(Field::Fingerprint, value.split(':').count() as u64 * 8000);
                }
                Attribute::Mid(x) | Attribute::Label(x) => self.chars(Field::Identifiers, x, TOKEN),
                Attribute::Content(list) => {
                    for x in list {
                        self.chars(Field::Identifiers, x, TOKEN);
                    }
                }
                Attribute::Ssrc { id, .. } => self.number(Field::Ssrc, u64::from(*id), 32),
                Attribute::SsrcGroup { ssrcs, .. } => {
                    for x in ssrcs {
                        self.number(Field::Ssrc, u64::from(*x), 32);
                    }
                }
                Attribute::Extmap { id, .. } => self.number(Field::SdpNumbers, u64::from(*id), 8),
                Attribute::Crypto {
                    tag, key_params, ..
                } => {
                    self.number(Field::CryptoKeys, u64::from(*tag), 32);
                    let key = key_params.strip_prefix("inline:").unwrap_or(key_params);
                    let mut it = key.split('|');
                    if let Some(k) = it.next() {
                        self.chars(Field::CryptoKeys, k.trim_end_matches('='), ICE);
                    }
                    for x in it {
                        self.chars(Field::CryptoKeys, x, DIGIT);
                    }
                }
                Attribute::Other {
                    name,
                    value: Some(v),
                } => match (name.as_ref(), crate::vocab::other_value_ok(name, Some(v))) {
                    // identifiers of simulcast layers and image sizes
                    ("rid" | "simulcast" | "imageattr", _) => {
                        self.chars(Field::OtherAttributes, v, TOKEN)
                    }
                    // a checked vocabulary: only its numbers are free
                    (_, Some(true)) => {
                        let digits = v.bytes().filter(u8::is_ascii_digit).count() as u64;
                        self.add(Field::OtherAttributes, digits * DIGIT);
                    }
                    _ => self.chars(Field::OtherAttributes, v, TEXT),
                },
                // vocabulary only, references to counted values, or rewritten
                _ => {}
            }
        }
    }
}

/// The grammar class of a format parameter value.
fn value_class(v: &str) -> u64 {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        DIGIT
    } else if v.bytes().all(|b| b.is_ascii_hexdigit()) {
        HEX
    } else {
        ICE
    }
}

/// Option tags (IANA SIP option tags registry) counted as vocabulary; others are
/// counted as text.
const OPTION_TAGS: &[&str] = &[
    "100rel",
    "199",
    "answermode",
    "early-session",
    "eventlist",
    "explicitsub",
    "from-change",
    "geolocation-http",
    "geolocation-sip",
    "gin",
    "gruu",
    "histinfo",
    "ice",
    "join",
    "multiple-refer",
    "norefersub",
    "nosub",
    "outbound",
    "path",
    "policy",
    "precondition",
    "pref",
    "privacy",
    "recipient-list-invite",
    "recipient-list-message",
    "recipient-list-subscribe",
    "record-aware",
    "replaces",
    "resource-priority",
    "sdp-anat",
    "sec-agree",
    "siprec",
    "tdialog",
    "timer",
    "trickle-ice",
    "uui",
];
