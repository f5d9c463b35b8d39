//! URIs: SIP and SIPS (RFC 3261 section 19.1, RFC 5118 for IPv6), `tel:` (RFC 3966) and
//! any other scheme kept as an opaque absolute URI.
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ErrorKind, ParseError};
use crate::host::parse_host_prefix;
use crate::limits::Limits;
use crate::scan::{
    byte_class, class_run, escapes_valid, find_byte, in_class, is_reserved, is_unreserved,
};
use crate::text::{Fmt, Out};

/// A `name[=value]` parameter. Values are kept as written (escapes and quotes included) so
/// that the canonical form carries exactly what was understood; accessors on the owning
/// types decode them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param<'a> {
    /// The name.
    pub name: Cow<'a, str>,
    /// The value, if any (`;lr` has none).
    pub value: Option<Cow<'a, str>>,
}

impl<'a> Param<'a> {
    /// A parameter from a name and an optional value.
    pub fn new(name: impl Into<Cow<'a, str>>, value: Option<Cow<'a, str>>) -> Self {
        Param {
            name: name.into(),
            value,
        }
    }

    /// The same parameter, owning its text.
    pub fn into_owned(self) -> Param<'static> {
        Param {
            name: Cow::Owned(self.name.into_owned()),
            value: self.value.map(|v| Cow::Owned(v.into_owned())),
        }
    }
}

pub(crate) fn params_into_owned(p: Vec<Param<'_>>) -> Vec<Param<'static>> {
    p.into_iter().map(Param::into_owned).collect()
}

/// Finds a parameter by name, case-insensitively (parameter names are case-insensitive).
pub(crate) fn find_param<'p, 'a>(params: &'p [Param<'a>], name: &str) -> Option<&'p Param<'a>> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// The host part of a URI or Via.
pub enum Host<'a> {
    /// A host name.
    Domain(Cow<'a, str>),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl From<std::net::IpAddr> for Host<'static> {
    fn from(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(a) => Host::V4(a),
            std::net::IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl Host<'_> {
    /// The address, when the host is an IP literal (a name is not resolved here).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Host::V4(a) => Some(std::net::IpAddr::V4(*a)),
            Host::V6(a) => Some(std::net::IpAddr::V6(*a)),
            Host::Domain(_) => None,
        }
    }

    /// The same host, owning its text.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Domain(d) => Host::Domain(Cow::Owned(d.into_owned())),
            Host::V4(a) => Host::V4(a),
            Host::V6(a) => Host::V6(a),
        }
    }

    /// Writes the host canonically (IPv6 in brackets).
    pub fn write(&self, out: &mut String) {
        self.write_into(out);
    }

    /// [`Host::write`] into any [`Out`].
    #[inline]
    pub(crate) fn write_into<O: Out>(&self, out: &mut O) {
        match self {
            Host::Domain(d) => out.put(d),
            Host::V4(a) => crate::text::put_ipv4(out, a),
            Host::V6(a) => {
                let _ = write!(Fmt(out), "[{a}]");
            }
        }
    }
}

impl std::fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// A `sip:` or `sips:` URI (RFC 3261 section 19.1).
pub struct SipUri<'a> {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, as written (escapes kept).
    pub user: Option<Cow<'a, str>>,
    /// The password (deprecated by RFC 3261, kept to refuse or pass it as written).
    pub password: Option<Cow<'a, str>>,
    /// The host.
    pub host: Host<'a>,
    /// The port, if written.
    pub port: Option<u16>,
    /// URI parameters (`transport`, `lr`, `user`, ...), in order.
    pub params: Vec<Param<'a>>,
    /// `?name=value&...` headers (not allowed in a Request-URI or in a registered Contact).
    pub headers: Vec<Param<'a>>,
}

impl<'a> SipUri<'a> {
    /// A URI parameter by name (ASCII case ignored).
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        find_param(&self.params, name)
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").and_then(|p| p.value.as_deref())
    }

    /// The same URI, owning its text.
    pub fn into_owned(self) -> SipUri<'static> {
        SipUri {
            secure: self.secure,
            user: self.user.map(|u| Cow::Owned(u.into_owned())),
            password: self.password.map(|u| Cow::Owned(u.into_owned())),
            host: self.host.into_owned(),
            port: self.port,
            params: params_into_owned(self.params),
            headers: params_into_owned(self.headers),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// A `tel:` URI (RFC 3966).
pub struct TelUri<'a> {
    /// The number, as written.
    pub number: Cow<'a, str>,
    /// Its parameters.
    pub params: Vec<Param<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// A URI in a Request-URI or a name-addr.
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other scheme: kept opaque, validated only as an RFC 2396 absolute URI.
    Other {
        /// The scheme.
        scheme: Cow<'a, str>,
        /// Everything after the colon, as written.
        rest: Cow<'a, str>,
    },
}

impl<'a> Uri<'a> {
    /// The SIP URI, when it is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The scheme, lower-case (`sip`, `sips`, `tel`, ...).
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The same URI, owning its text.
    pub fn into_owned(self) -> Uri<'static> {
        match self {
            Uri::Sip(u) => Uri::Sip(u.into_owned()),
            Uri::Tel(t) => Uri::Tel(TelUri {
                number: Cow::Owned(t.number.into_owned()),
                params: params_into_owned(t.params),
            }),
            Uri::Other { scheme, rest } => Uri::Other {
                scheme: Cow::Owned(scheme.into_owned()),
                rest: Cow::Owned(rest.into_owned()),
            },
        }
    }

    /// Writes the canonical form: lower-case scheme, parameters as `;name[=value]`.
    pub fn write(&self, out: &mut String) {
        self.write_into(out);
    }

    /// Whether `text` is what [`Uri::write`] writes, compared as it would be written
    /// (nothing allocated: the digest `uri` of every authenticated request is checked
    /// against the Request-URI this way).
    pub fn is_written_as(&self, text: &str) -> bool {
        let mut cmp = crate::text::Compare::new(text.as_bytes());
        self.write_into(&mut cmp);
        cmp.matched()
    }

    /// [`Uri::write`] into any [`Out`].
    pub(crate) fn write_into<O: Out>(&self, out: &mut O) {
        match self {
            Uri::Sip(u) => {
                out.put(if u.secure { "sips:" } else { "sip:" });
                if let Some(user) = &u.user {
                    out.put(user);
                    if let Some(pw) = &u.password {
                        out.put_byte(b':');
                        out.put(pw);
                    }
                    out.put_byte(b'@');
                }
                u.host.write_into(out);
                if let Some(p) = u.port {
                    out.put_byte(b':');
                    crate::text::put_num(out, u64::from(p));
                }
                write_params(&u.params, out);
                for (i, h) in u.headers.iter().enumerate() {
                    out.put_byte(if i == 0 { b'?' } else { b'&' });
                    out.put(&h.name);
                    out.put_byte(b'=');
                    out.put(h.value.as_deref().unwrap_or(""));
                }
            }
            Uri::Tel(t) => {
                out.put("tel:");
                out.put(&t.number);
                write_params(&t.params, out);
            }
            Uri::Other { scheme, rest } => {
                out.put(scheme);
                out.put_byte(b':');
                out.put(rest);
            }
        }
    }
}

impl std::fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

pub(crate) fn write_params<O: Out>(params: &[Param<'_>], out: &mut O) {
    for p in params {
        out.put_byte(b';');
        out.put(&p.name);
        if let Some(v) = &p.value {
            out.put_byte(b'=');
            out.put(v);
        }
    }
}

// The URI parts' classes as tables (see `scan::byte_class!`), from their definitions.
static USER: [bool; 256] = byte_class!(user_char);
static PASSWORD: [bool; 256] = byte_class!(password_char);
static PARAM: [bool; 256] = byte_class!(param_char);
static HNV: [bool; 256] = byte_class!(hnv_char);
static URIC: [bool; 256] = byte_class!(uric_char);
static PLAIN_USER: [bool; 256] = byte_class!(plain_user_char);
static PLAIN_PARAM: [bool; 256] = byte_class!(plain_param_char);

fn is_user_char(b: u8) -> bool {
    in_class(&USER, b)
}

fn is_password_char(b: u8) -> bool {
    in_class(&PASSWORD, b)
}

fn is_param_char(b: u8) -> bool {
    in_class(&PARAM, b)
}

fn is_hnv_char(b: u8) -> bool {
    in_class(&HNV, b)
}

/// Any URI character: reserved, unreserved or an escape's `%`.
const fn uric_char(b: u8) -> bool {
    is_reserved(b) || is_unreserved(b) || b == b'%'
}

const fn user_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b'%'
        )
}

/// User characters other than the `%` of an escape: a user part of these alone needs
/// no escape check.
const fn plain_user_char(b: u8) -> bool {
    user_char(b) && b != b'%'
}

const fn password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b'%')
}

const fn param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'%')
}

/// Parameter characters other than the `%` of an escape.
const fn plain_param_char(b: u8) -> bool {
    param_char(b) && b != b'%'
}

const fn hnv_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'%')
}

/// Parses one URI that has already been delimited (by SP in the request line, by `<>`
/// in a name-addr, or by the addr-spec rules). `base` is its offset in the message.
#[inline]
pub(crate) fn parse_uri<'a>(
    s: &'a str,
    base: usize,
    limits: &Limits,
) -> Result<Uri<'a>, ParseError> {
    let err = |kind: ErrorKind, at: usize| ParseError::new(kind, base + at);
    if s.len() > limits.max_uri_length {
        return Err(err(
            ErrorKind::Limit {
                key: "limits.max_uri_length",
                max: limits.max_uri_length,
            },
            0,
        ));
    }
    // `sip:` first, without a search for the colon (nearly every URI is one); the
    // scheme is then valid and the parse goes on as below.
    let b = s.as_bytes();
    // (one comparison of four bytes: `| 0x20` lower-cases the three letters, and only
    // their two cases give them; the colon is compared as it is)
    let sip = u32::from_le_bytes(*b"sip:");
    if b.get(..4)
        .and_then(|p| <[u8; 4]>::try_from(p).ok())
        .is_some_and(|p| u32::from_le_bytes(p) | 0x0020_2020 == sip)
    {
        return parse_sip(s.get(4..).unwrap_or_default(), base + 4, false, limits).map(Uri::Sip);
    }
    let Some(colon) = find_byte(s, b':') else {
        return Err(err(ErrorKind::BadUri("no scheme"), 0));
    };
    let scheme = s.get(..colon).unwrap_or_default();
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb.first().is_some_and(u8::is_ascii_alphabetic)
        || !sb
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(err(ErrorKind::BadUri("invalid scheme"), 0));
    }
    let rest = s.get(colon + 1..).unwrap_or_default();
    let rbase = colon + 1;
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let secure = scheme.len() == 4;
        parse_sip(rest, base + rbase, secure, limits).map(Uri::Sip)
    } else if scheme.eq_ignore_ascii_case("tel") {
        parse_tel(rest, base + rbase, limits).map(Uri::Tel)
    } else {
        if rest.is_empty() {
            return Err(err(ErrorKind::BadUri("empty URI after the scheme"), rbase));
        }
        if let Some(i) = rest.bytes().position(|b| !in_class(&URIC, b)) {
            return Err(err(
                ErrorKind::BadUri("character not allowed in a URI"),
                rbase + i,
            ));
        }
        if !escapes_valid(rest) {
            return Err(err(ErrorKind::BadUri("invalid %-escape"), rbase));
        }
        Ok(Uri::Other {
            scheme: Cow::Borrowed(scheme),
            rest: Cow::Borrowed(rest),
        })
    }
}

/// Where the run of `paramchar`s from `pos` ends; `escaped` is set when it holds a `%`.
#[inline]
fn param_run(b: &[u8], mut pos: usize, escaped: &mut bool) -> usize {
    loop {
        pos = class_run(b, pos, &PLAIN_PARAM);
        if b.get(pos) != Some(&b'%') {
            return pos;
        }
        *escaped = true;
        pos += 1;
    }
}

fn parse_sip<'a>(
    s: &'a str,
    base: usize,
    secure: bool,
    limits: &Limits,
) -> Result<SipUri<'a>, ParseError> {
    let err = |what: &'static str, at: usize| ParseError::new(ErrorKind::BadUri(what), base + at);
    let mut pos = 0;
    let mut user = None;
    let mut password = None;
    // '@' is in no character class after the userinfo, so the first one ends it. The
    // userinfo (user characters and ':') is walked first: the walk stops at that '@'
    // unless something else stands before it, and only then is the rest searched.
    // The walk notes whether it passed a ':' or a '%': a user part without either that
    // ends at the '@' is then known to be valid, and the checks below are skipped.
    let sb = s.as_bytes();
    let mut walk = 0;
    let mut marked = false;
    let walked = loop {
        walk = class_run(sb, walk, &PLAIN_USER);
        match sb.get(walk) {
            Some(b':' | b'%') => marked = true,
            Some(_) => break Some(walk),
            None => break None,
        }
        walk += 1;
    };
    if let (Some(at), false) = (walked, marked) {
        if at > 0 && sb.get(at) == Some(&b'@') {
            user = Some(Cow::Borrowed(s.get(..at).unwrap_or_default()));
            pos = at + 1;
        }
    }
    let at = match walked {
        _ if pos > 0 => None,
        Some(i) if s.as_bytes().get(i) == Some(&b'@') => Some(i),
        Some(i) => memchr::memchr(b'@', s.as_bytes().get(i..).unwrap_or_default()).map(|a| a + i),
        None => None,
    };
    if let Some(at) = at {
        let userinfo = s.get(..at).unwrap_or_default();
        let (u, pw) = match find_byte(userinfo, b':') {
            Some(c) => (
                userinfo.get(..c).unwrap_or_default(),
                Some(userinfo.get(c + 1..).unwrap_or_default()),
            ),
            None => (userinfo, None),
        };
        if u.is_empty() {
            return Err(err("empty user part", 0));
        }
        if let Some(i) = u.bytes().position(|b| !is_user_char(b)) {
            return Err(err("character not allowed in the user part", i));
        }
        if !escapes_valid(u) {
            return Err(err("invalid %-escape in the user part", 0));
        }
        if let Some(pw) = pw {
            if let Some(i) = pw.bytes().position(|b| !is_password_char(b)) {
                return Err(err(
                    "character not allowed in the password",
                    u.len() + 1 + i,
                ));
            }
            if !escapes_valid(pw) {
                return Err(err("invalid %-escape in the password", u.len() + 1));
            }
            password = Some(Cow::Borrowed(pw));
        }
        user = Some(Cow::Borrowed(u));
        pos = at + 1;
    }
    let b = s.as_bytes();
    // host
    let host;
    if b.get(pos) == Some(&b'[') {
        let Some(close) = find_byte(s.get(pos..).unwrap_or_default(), b']') else {
            return Err(err("unterminated IPv6 reference", pos));
        };
        let inner = s.get(pos + 1..pos + close).unwrap_or_default();
        host = Host::V6(
            inner
                .parse::<Ipv6Addr>()
                .map_err(|_| err("invalid IPv6 address", pos + 1))?,
        );
        pos += close + 1;
    } else {
        let start = pos;
        let (len, h) = parse_host_prefix(s.get(pos..).unwrap_or_default());
        host = h.ok_or_else(|| err("invalid host", start))?;
        pos += len;
    }
    let mut port = None;
    if b.get(pos) == Some(&b':') {
        pos += 1;
        let start = pos;
        // the value as the digits go by (saturating above 65535), not parsed again
        let mut value: u32 = 0;
        while let Some(d) = b.get(pos).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            value = (value * 10 + u32::from(d)).min(65_536);
            pos += 1;
        }
        if pos == start {
            return Err(err("invalid port", start));
        }
        port = Some(u16::try_from(value).map_err(|_| {
            ParseError::new(ErrorKind::ScalarOverflow("port above 65535"), base + start)
        })?);
    }
    let mut params = Vec::new();
    if b.get(pos) == Some(&b';') {
        // room for the usual few without going through the out-of-line growth path
        params = Vec::with_capacity(4);
    }
    while b.get(pos) == Some(&b';') {
        pos += 1;
        let start = pos;
        // the escapes are checked only when the walks passed a '%'
        let mut escaped = false;
        pos = param_run(b, pos, &mut escaped);
        let name = s.get(start..pos).unwrap_or_default();
        if name.is_empty() {
            return Err(err("empty URI parameter", start));
        }
        let mut value = None;
        if b.get(pos) == Some(&b'=') {
            pos += 1;
            let vstart = pos;
            pos = param_run(b, pos, &mut escaped);
            if vstart == pos {
                return Err(err("empty URI parameter value", vstart));
            }
            value = Some(Cow::Borrowed(s.get(vstart..pos).unwrap_or_default()));
        }
        if escaped && !escapes_valid(s.get(start..pos).unwrap_or_default()) {
            return Err(err("invalid %-escape in a URI parameter", start));
        }
        if params.len() >= limits.max_params {
            return Err(ParseError::new(
                ErrorKind::Limit {
                    key: "limits.max_params",
                    max: limits.max_params,
                },
                base + start,
            ));
        }
        params.push(Param {
            name: Cow::Borrowed(name),
            value,
        });
    }
    let mut headers = Vec::new();
    if b.get(pos) == Some(&b'?') {
        loop {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(|&c| is_hnv_char(c)) {
                pos += 1;
            }
            let name = s.get(start..pos).unwrap_or_default();
            if name.is_empty() || b.get(pos) != Some(&b'=') {
                return Err(err("malformed URI header", start));
            }
            pos += 1;
            let vstart = pos;
            while b.get(pos).is_some_and(|&c| is_hnv_char(c)) {
                pos += 1;
            }
            if !escapes_valid(s.get(start..pos).unwrap_or_default()) {
                return Err(err("invalid %-escape in a URI header", start));
            }
            if headers.len() >= limits.max_params {
                return Err(ParseError::new(
                    ErrorKind::Limit {
                        key: "limits.max_params",
                        max: limits.max_params,
                    },
                    base + start,
                ));
            }
            headers.push(Param {
                name: Cow::Borrowed(name),
                value: Some(Cow::Borrowed(s.get(vstart..pos).unwrap_or_default())),
            });
            if b.get(pos) != Some(&b'&') {
                break;
            }
        }
    }
    if pos != b.len() {
        return Err(err("unexpected character in SIP URI", pos));
    }
    Ok(SipUri {
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

fn parse_tel<'a>(s: &'a str, base: usize, limits: &Limits) -> Result<TelUri<'a>, ParseError> {
    let err = |what: &'static str, at: usize| ParseError::new(ErrorKind::BadUri(what), base + at);
    let b = s.as_bytes();
    let mut pos = 0;
    if b.first() == Some(&b'+') {
        pos = 1;
    }
    while b.get(pos).is_some_and(|&c| {
        c.is_ascii_hexdigit() || matches!(c, b'-' | b'.' | b'(' | b')' | b'*' | b'#')
    }) {
        pos += 1;
    }
    let number = s.get(..pos).unwrap_or_default();
    if !number
        .bytes()
        .any(|c| c.is_ascii_hexdigit() || c == b'*' || c == b'#')
    {
        return Err(err("tel URI without digits", 0));
    }
    let mut params = Vec::new();
    while b.get(pos) == Some(&b';') {
        pos += 1;
        let start = pos;
        while b
            .get(pos)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'-')
        {
            pos += 1;
        }
        if start == pos {
            return Err(err("empty tel URI parameter", start));
        }
        let name = s.get(start..pos).unwrap_or_default();
        let mut value = None;
        if b.get(pos) == Some(&b'=') {
            pos += 1;
            let vstart = pos;
            while b.get(pos).is_some_and(|&c| is_param_char(c)) {
                pos += 1;
            }
            if vstart == pos || !escapes_valid(s.get(vstart..pos).unwrap_or_default()) {
                return Err(err("malformed tel URI parameter value", vstart));
            }
            value = Some(Cow::Borrowed(s.get(vstart..pos).unwrap_or_default()));
        }
        if params.len() >= limits.max_params {
            return Err(ParseError::new(
                ErrorKind::Limit {
                    key: "limits.max_params",
                    max: limits.max_params,
                },
                base + start,
            ));
        }
        params.push(Param {
            name: Cow::Borrowed(name),
            value,
        });
    }
    if pos != b.len() {
        return Err(err("unexpected character in tel URI", pos));
    }
    Ok(TelUri {
        number: Cow::Borrowed(number),
        params,
    })
}

#[cfg(test)]
mod class_tables {
    use super::*;

    #[test]
    fn the_tables_are_the_definitions() {
        for b in 0..=255u8 {
            assert_eq!(is_user_char(b), user_char(b), "{b}");
            assert_eq!(is_password_char(b), password_char(b), "{b}");
            assert_eq!(is_param_char(b), param_char(b), "{b}");
            assert_eq!(is_hnv_char(b), hnv_char(b), "{b}");
            assert_eq!(in_class(&URIC, b), uric_char(b), "{b}");
        }
        assert!(is_user_char(b';') && !is_user_char(b'@') && !is_password_char(b';'));
    }

    #[test]
    fn the_sip_scheme_is_recognised_as_by_a_case_blind_comparison() {
        let limits = Limits::default();
        for a in 0..=255u8 {
            for (i, base) in [*b"sip:", *b"SIP:", *b"sIp:"].iter().enumerate() {
                for lane in 0..4 {
                    let mut p = *base;
                    p[lane] = a;
                    let mut s = p.to_vec();
                    s.extend_from_slice(b"a@b.c");
                    let Ok(text) = std::str::from_utf8(&s) else {
                        continue;
                    };
                    let want = p.eq_ignore_ascii_case(b"sip:");
                    let got =
                        matches!(parse_uri(text, 0, &limits), Ok(Uri::Sip(ref u)) if !u.secure);
                    assert_eq!(got, want, "{p:?} {i}");
                }
            }
        }
        assert!(is_param_char(b':') && !is_param_char(b';') && is_hnv_char(b'?'));
    }

    #[test]
    fn a_uri_is_written_as_exactly_what_write_writes() {
        let limits = Limits::default();
        let mut n = 0;
        for text in [
            "sip:user2@127.0.0.1:5480",
            "SIP:Bob@Biloxi.Example.COM;transport=TCP;lr?subject=x",
            "sips:alice:secret@[2001:db8::1]:5061",
            "tel:+1-201-555-0123;phone-context=example.com",
            "urn:service:sos",
            "sip:10.0.0.1",
        ] {
            let uri = parse_uri(text, 0, &limits).unwrap();
            let mut written = String::new();
            uri.write(&mut written);
            assert!(uri.is_written_as(&written), "{text}");
            // every shorter text, every longer one, every one byte different
            for end in 0..written.len() {
                assert!(
                    !uri.is_written_as(written.get(..end).unwrap()),
                    "{text} {end}"
                );
                n += 1;
            }
            for extra in [";", "x", "\0"] {
                assert!(!uri.is_written_as(&format!("{written}{extra}")), "{text}");
            }
            for (i, c) in written.char_indices() {
                let other = if c == 'x' { "y" } else { "x" };
                let (head, tail) = (written.get(..i).unwrap(), written.get(i + c.len_utf8()..));
                let changed = format!("{head}{other}{}", tail.unwrap());
                assert!(!uri.is_written_as(&changed), "{changed}");
                n += 1;
            }
        }
        assert!(n > 300, "{n}");
    }
}
