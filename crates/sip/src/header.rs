//! Typed header values, their parsers and their canonical writers.
use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::{ErrorKind, ParseError};
use crate::limits::Limits;
use crate::scan::{check_text, is_token, is_word, normalize_ws, unescape_quoted, Cursor};
use crate::uri::{
    find_param, params_into_owned, parse_any_host, parse_uri, write_params, Host, Param, Uri,
};

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// A request method. Methods are case-sensitive (RFC 3261 section 7.1): `invite` is an
/// extension method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Prack,
    Subscribe,
    Notify,
    Update,
    Message,
    Refer,
    Publish,
    Extension(Cow<'a, str>),
}

impl<'a> Method<'a> {
    /// Maps a token to a method; the caller has checked that `s` is a token.
    pub fn from_token(s: &'a str) -> Method<'a> {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "UPDATE" => Method::Update,
            "MESSAGE" => Method::Message,
            "REFER" => Method::Refer,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(Cow::Borrowed(other)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Update => "UPDATE",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }

    pub fn into_owned(self) -> Method<'static> {
        match self {
            Method::Extension(s) => Method::Extension(owned(s)),
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Register => Method::Register,
            Method::Options => Method::Options,
            Method::Info => Method::Info,
            Method::Prack => Method::Prack,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Update => Method::Update,
            Method::Message => Method::Message,
            Method::Refer => Method::Refer,
            Method::Publish => Method::Publish,
        }
    }
}

impl std::fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via value: `SIP/2.0/<transport> <sent-by>;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    pub transport: Cow<'a, str>,
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub params: Vec<Param<'a>>,
}

impl<'a> Via<'a> {
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        find_param(&self.params, name)
    }
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }
    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(|p| p.value.as_deref())
    }
    /// `None`: no rport; `Some(None)`: rport requested (RFC 3581); `Some(Some(p))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|p| p.value.as_deref().and_then(|v| v.parse().ok()))
    }
    pub fn into_owned(self) -> Via<'static> {
        Via {
            transport: owned(self.transport),
            host: self.host.into_owned(),
            port: self.port,
            params: params_into_owned(self.params),
        }
    }
}

/// `[display-name] <uri>;params` (From, To, Contact, Route, Record-Route, Path).
/// `display` holds quoted-string content, escapes kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub display: Option<Cow<'a, str>>,
    pub uri: Uri<'a>,
    pub params: Vec<Param<'a>>,
}

impl<'a> NameAddr<'a> {
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        find_param(&self.params, name)
    }
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|p| p.value.as_deref())
    }
    /// The `expires` parameter of a Contact.
    pub fn expires(&self) -> Option<u32> {
        self.param("expires")
            .and_then(|p| p.value.as_deref())
            .and_then(|v| v.parse().ok())
    }
    /// The `q` parameter of a Contact in thousandths (1000 = 1.0).
    pub fn q_millis(&self) -> Option<u16> {
        self.param("q")
            .and_then(|p| p.value.as_deref())
            .and_then(qvalue_millis)
    }
    /// The display name with escapes removed.
    pub fn display_name(&self) -> Option<Cow<'_, str>> {
        self.display.as_deref().map(unescape_quoted)
    }
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            display: self.display.map(owned),
            uri: self.uri.into_owned(),
            params: params_into_owned(self.params),
        }
    }
    fn write(&self, out: &mut String) {
        if let Some(d) = &self.display {
            out.push('"');
            out.push_str(d);
            out.push_str("\" ");
        }
        out.push('<');
        self.uri.write(out);
        out.push('>');
        write_params(&self.params, out);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (remove all bindings; only with Expires: 0).
    Star,
    Addr(NameAddr<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub mtype: Cow<'a, str>,
    pub subtype: Cow<'a, str>,
    pub params: Vec<Param<'a>>,
}

impl MediaType<'_> {
    /// Case-insensitive comparison with `type/subtype`.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Authorization / Proxy-Authorization credentials and WWW-/Proxy-Authenticate
/// challenges: `scheme name=value, name="value", ...`. Values are kept as written
/// (quotes included); [`Credentials::get`] returns them unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub scheme: Cow<'a, str>,
    pub params: Vec<Param<'a>>,
}

impl<'a> Credentials<'a> {
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("digest")
    }
    /// A parameter's value, unquoted and unescaped.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let v = find_param(&self.params, name)?.value.as_deref()?;
        match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => Some(unescape_quoted(inner)),
            None => Some(Cow::Borrowed(v)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning<'a> {
    pub code: u16,
    pub agent: Cow<'a, str>,
    /// quoted-string content, escapes kept.
    pub text: Cow<'a, str>,
}

/// One header line. Multi-value headers whose values are addresses (Via, Contact, Route,
/// Record-Route, Path, Warning) hold one value per entry: `Via: a, b` parses as two
/// entries and is written as two lines, which is the one canonical form of both spellings.
/// Token lists (Allow, Supported, ...) keep their list in one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header<'a> {
    Via(Via<'a>),
    From(NameAddr<'a>),
    To(NameAddr<'a>),
    CallId(Cow<'a, str>),
    CSeq(CSeq<'a>),
    MaxForwards(u8),
    Contact(Contact<'a>),
    Route(NameAddr<'a>),
    RecordRoute(NameAddr<'a>),
    Path(NameAddr<'a>),
    ContentType(MediaType<'a>),
    ContentEncoding(Vec<Cow<'a, str>>),
    Expires(u32),
    MinExpires(u32),
    Authorization(Credentials<'a>),
    ProxyAuthorization(Credentials<'a>),
    WwwAuthenticate(Credentials<'a>),
    ProxyAuthenticate(Credentials<'a>),
    Allow(Vec<Method<'a>>),
    Supported(Vec<Cow<'a, str>>),
    Require(Vec<Cow<'a, str>>),
    ProxyRequire(Vec<Cow<'a, str>>),
    UserAgent(Cow<'a, str>),
    Server(Cow<'a, str>),
    Warning(Warning<'a>),
    Date(Cow<'a, str>),
    /// Any other header: name (canonical spelling when known, else as received) and value
    /// (whitespace normalised), kept so that policy can decide about it.
    Other {
        name: Cow<'a, str>,
        value: Cow<'a, str>,
    },
}

/// Which typed header a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    Route,
    RecordRoute,
    Path,
    ContentLength,
    ContentType,
    ContentEncoding,
    Expires,
    MinExpires,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    Allow,
    Supported,
    Require,
    ProxyRequire,
    UserAgent,
    Server,
    Warning,
    Date,
    Other,
}

/// (canonical name, compact form, kind). Looked up case-insensitively.
const TYPED: &[(&str, &str, Kind)] = &[
    ("Via", "v", Kind::Via),
    ("From", "f", Kind::From),
    ("To", "t", Kind::To),
    ("Call-ID", "i", Kind::CallId),
    ("CSeq", "", Kind::CSeq),
    ("Max-Forwards", "", Kind::MaxForwards),
    ("Contact", "m", Kind::Contact),
    ("Content-Length", "l", Kind::ContentLength),
    ("Content-Type", "c", Kind::ContentType),
    ("Route", "", Kind::Route),
    ("Record-Route", "", Kind::RecordRoute),
    ("Path", "", Kind::Path),
    ("Content-Encoding", "e", Kind::ContentEncoding),
    ("Expires", "", Kind::Expires),
    ("Min-Expires", "", Kind::MinExpires),
    ("Authorization", "", Kind::Authorization),
    ("Proxy-Authorization", "", Kind::ProxyAuthorization),
    ("WWW-Authenticate", "", Kind::WwwAuthenticate),
    ("Proxy-Authenticate", "", Kind::ProxyAuthenticate),
    ("Allow", "", Kind::Allow),
    ("Supported", "k", Kind::Supported),
    ("Require", "", Kind::Require),
    ("Proxy-Require", "", Kind::ProxyRequire),
    ("User-Agent", "", Kind::UserAgent),
    ("Server", "", Kind::Server),
    ("Warning", "", Kind::Warning),
    ("Date", "", Kind::Date),
];

/// Untyped headers whose canonical spelling is known (with compact forms where defined).
const KNOWN_OTHER: &[(&str, &str)] = &[
    ("Accept", ""),
    ("Accept-Contact", "a"),
    ("Accept-Encoding", ""),
    ("Accept-Language", ""),
    ("Alert-Info", ""),
    ("Allow-Events", "u"),
    ("Authentication-Info", ""),
    ("Call-Info", ""),
    ("Content-Disposition", ""),
    ("Content-Language", ""),
    ("Error-Info", ""),
    ("Event", "o"),
    ("Identity", "y"),
    ("Identity-Info", "n"),
    ("In-Reply-To", ""),
    ("MIME-Version", ""),
    ("Min-SE", ""),
    ("Organization", ""),
    ("P-Asserted-Identity", ""),
    ("P-Preferred-Identity", ""),
    ("Priority", ""),
    ("Privacy", ""),
    ("RAck", ""),
    ("Reason", ""),
    ("Refer-To", "r"),
    ("Referred-By", "b"),
    ("Reject-Contact", "j"),
    ("Replaces", ""),
    ("Reply-To", ""),
    ("Request-Disposition", "d"),
    ("Retry-After", ""),
    ("RSeq", ""),
    ("Session-Expires", "x"),
    ("Subject", "s"),
    ("Subscription-State", ""),
    ("Timestamp", ""),
    ("Unsupported", ""),
];

pub(crate) fn lookup(name: &str) -> (Kind, Option<&'static str>) {
    // Fast path for the headers on every message, spelled canonically.
    match name {
        "Via" => return (Kind::Via, Some("Via")),
        "From" => return (Kind::From, Some("From")),
        "To" => return (Kind::To, Some("To")),
        "Call-ID" => return (Kind::CallId, Some("Call-ID")),
        "CSeq" => return (Kind::CSeq, Some("CSeq")),
        "Max-Forwards" => return (Kind::MaxForwards, Some("Max-Forwards")),
        "Contact" => return (Kind::Contact, Some("Contact")),
        "Content-Length" => return (Kind::ContentLength, Some("Content-Length")),
        "Content-Type" => return (Kind::ContentType, Some("Content-Type")),
        _ => {}
    }
    for &(full, compact, kind) in TYPED {
        if name.eq_ignore_ascii_case(full)
            || (!compact.is_empty() && name.eq_ignore_ascii_case(compact))
        {
            return (kind, Some(full));
        }
    }
    for &(full, compact) in KNOWN_OTHER {
        if name.eq_ignore_ascii_case(full)
            || (!compact.is_empty() && name.eq_ignore_ascii_case(compact))
        {
            return (Kind::Other, Some(full));
        }
    }
    (Kind::Other, None)
}

impl<'a> Header<'a> {
    /// The canonical header name.
    pub fn name(&self) -> &str {
        match self {
            Header::Via(_) => "Via",
            Header::From(_) => "From",
            Header::To(_) => "To",
            Header::CallId(_) => "Call-ID",
            Header::CSeq(_) => "CSeq",
            Header::MaxForwards(_) => "Max-Forwards",
            Header::Contact(_) => "Contact",
            Header::Route(_) => "Route",
            Header::RecordRoute(_) => "Record-Route",
            Header::Path(_) => "Path",
            Header::ContentType(_) => "Content-Type",
            Header::ContentEncoding(_) => "Content-Encoding",
            Header::Expires(_) => "Expires",
            Header::MinExpires(_) => "Min-Expires",
            Header::Authorization(_) => "Authorization",
            Header::ProxyAuthorization(_) => "Proxy-Authorization",
            Header::WwwAuthenticate(_) => "WWW-Authenticate",
            Header::ProxyAuthenticate(_) => "Proxy-Authenticate",
            Header::Allow(_) => "Allow",
            Header::Supported(_) => "Supported",
            Header::Require(_) => "Require",
            Header::ProxyRequire(_) => "Proxy-Require",
            Header::UserAgent(_) => "User-Agent",
            Header::Server(_) => "Server",
            Header::Warning(_) => "Warning",
            Header::Date(_) => "Date",
            Header::Other { name, .. } => name,
        }
    }

    pub fn into_owned(self) -> Header<'static> {
        fn list(v: Vec<Cow<'_, str>>) -> Vec<Cow<'static, str>> {
            v.into_iter().map(owned).collect()
        }
        fn creds(c: Credentials<'_>) -> Credentials<'static> {
            Credentials {
                scheme: owned(c.scheme),
                params: params_into_owned(c.params),
            }
        }
        match self {
            Header::Via(v) => Header::Via(v.into_owned()),
            Header::From(n) => Header::From(n.into_owned()),
            Header::To(n) => Header::To(n.into_owned()),
            Header::CallId(c) => Header::CallId(owned(c)),
            Header::CSeq(c) => Header::CSeq(CSeq {
                seq: c.seq,
                method: c.method.into_owned(),
            }),
            Header::MaxForwards(m) => Header::MaxForwards(m),
            Header::Contact(Contact::Star) => Header::Contact(Contact::Star),
            Header::Contact(Contact::Addr(n)) => Header::Contact(Contact::Addr(n.into_owned())),
            Header::Route(n) => Header::Route(n.into_owned()),
            Header::RecordRoute(n) => Header::RecordRoute(n.into_owned()),
            Header::Path(n) => Header::Path(n.into_owned()),
            Header::ContentType(m) => Header::ContentType(MediaType {
                mtype: owned(m.mtype),
                subtype: owned(m.subtype),
                params: params_into_owned(m.params),
            }),
            Header::ContentEncoding(v) => Header::ContentEncoding(list(v)),
            Header::Expires(e) => Header::Expires(e),
            Header::MinExpires(e) => Header::MinExpires(e),
            Header::Authorization(c) => Header::Authorization(creds(c)),
            Header::ProxyAuthorization(c) => Header::ProxyAuthorization(creds(c)),
            Header::WwwAuthenticate(c) => Header::WwwAuthenticate(creds(c)),
            Header::ProxyAuthenticate(c) => Header::ProxyAuthenticate(creds(c)),
            Header::Allow(v) => Header::Allow(v.into_iter().map(Method::into_owned).collect()),
            Header::Supported(v) => Header::Supported(list(v)),
            Header::Require(v) => Header::Require(list(v)),
            Header::ProxyRequire(v) => Header::ProxyRequire(list(v)),
            Header::UserAgent(s) => Header::UserAgent(owned(s)),
            Header::Server(s) => Header::Server(owned(s)),
            Header::Warning(w) => Header::Warning(Warning {
                code: w.code,
                agent: owned(w.agent),
                text: owned(w.text),
            }),
            Header::Date(s) => Header::Date(owned(s)),
            Header::Other { name, value } => Header::Other {
                name: owned(name),
                value: owned(value),
            },
        }
    }

    /// Writes `Name: value\r\n` in canonical form.
    pub fn write(&self, out: &mut String) {
        out.push_str(self.name());
        out.push_str(": ");
        match self {
            Header::Via(v) => {
                out.push_str("SIP/2.0/");
                out.push_str(&v.transport);
                out.push(' ');
                v.host.write(out);
                if let Some(p) = v.port {
                    out.push(':');
                    crate::uri::push_num(out, u64::from(p));
                }
                write_params(&v.params, out);
            }
            Header::From(n)
            | Header::To(n)
            | Header::Route(n)
            | Header::RecordRoute(n)
            | Header::Path(n) => n.write(out),
            Header::Contact(Contact::Star) => out.push('*'),
            Header::Contact(Contact::Addr(n)) => n.write(out),
            Header::CallId(c) => out.push_str(c),
            Header::CSeq(c) => {
                crate::uri::push_num(out, u64::from(c.seq));
                out.push(' ');
                out.push_str(c.method.as_str());
            }
            Header::MaxForwards(n) => crate::uri::push_num(out, u64::from(*n)),
            Header::Expires(n) | Header::MinExpires(n) => crate::uri::push_num(out, u64::from(*n)),
            Header::ContentType(m) => {
                out.push_str(&m.mtype);
                out.push('/');
                out.push_str(&m.subtype);
                write_params(&m.params, out);
            }
            Header::ContentEncoding(v)
            | Header::Supported(v)
            | Header::Require(v)
            | Header::ProxyRequire(v) => join(v.iter().map(|c| c.as_ref()), out),
            Header::Allow(v) => join(v.iter().map(|m| m.as_str()), out),
            Header::Authorization(c)
            | Header::ProxyAuthorization(c)
            | Header::WwwAuthenticate(c)
            | Header::ProxyAuthenticate(c) => {
                out.push_str(&c.scheme);
                for (i, p) in c.params.iter().enumerate() {
                    out.push_str(if i == 0 { " " } else { ", " });
                    out.push_str(&p.name);
                    if let Some(v) = &p.value {
                        out.push('=');
                        out.push_str(v);
                    }
                }
            }
            Header::Warning(w) => {
                let _ = write!(out, "{:03} {} \"{}\"", w.code, w.agent, w.text);
            }
            Header::UserAgent(s) | Header::Server(s) | Header::Date(s) => out.push_str(s),
            Header::Other { value, .. } => out.push_str(value),
        }
        out.push_str("\r\n");
    }
}

fn join<'s>(items: impl Iterator<Item = &'s str>, out: &mut String) {
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(s);
    }
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
pub(crate) fn qvalue_millis(v: &str) -> Option<u16> {
    let b = v.as_bytes();
    let (int, frac) = match v.find('.') {
        Some(i) => (
            b.get(..i).unwrap_or_default(),
            b.get(i + 1..).unwrap_or_default(),
        ),
        None => (b, &[][..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut millis: u16 = 0;
    for (d, scale) in frac.iter().zip([100u16, 10, 1]) {
        millis += u16::from(d - b'0') * scale;
    }
    match int.first().copied().unwrap_or(0) {
        b'0' => Some(millis),
        b'1' if millis == 0 => Some(1000),
        _ => None,
    }
}

fn delta_seconds(s: &str, what: &'static str, c: &Cursor<'_>) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(c.bad(what));
    }
    s.parse::<u32>()
        .map_err(|_| c.err(ErrorKind::ScalarOverflow("delta-seconds above 2^32-1")))
}

/// Parses `*( SEMI generic-param )` where the value is `token / host / quoted-string`.
/// Quoted values are stored with their quotes.
fn parse_params<'a>(
    c: &mut Cursor<'a>,
    out: &mut Vec<Param<'a>>,
    limits: &Limits,
) -> Result<(), ParseError> {
    while c.eat_sep(b';') {
        let name = c.token("empty or malformed parameter name")?;
        let value = if c.eat_sep(b'=') {
            Some(Cow::Borrowed(param_value(c)?))
        } else {
            None
        };
        if out.len() >= limits.max_params {
            return Err(c.err(ErrorKind::Limit {
                key: "limits.max_params",
                max: limits.max_params,
            }));
        }
        out.push(Param {
            name: Cow::Borrowed(name),
            value,
        });
    }
    Ok(())
}

fn param_value<'a>(c: &mut Cursor<'a>) -> Result<&'a str, ParseError> {
    if c.peek() == Some(b'"') {
        let start = c.pos;
        c.quoted()?;
        Ok(c.since(start))
    } else {
        let v = c.take_while(|b| is_token(b) || b == b':' || b == b'[' || b == b']');
        if v.is_empty() {
            Err(c.bad("empty parameter value"))
        } else {
            Ok(v)
        }
    }
}

fn check_via_params(v: &Via<'_>, c: &Cursor<'_>) -> Result<(), ParseError> {
    for p in &v.params {
        let val = p.value.as_deref();
        let ok = if p.name.eq_ignore_ascii_case("branch") {
            val.is_some_and(|v| v.bytes().all(is_token))
        } else if p.name.eq_ignore_ascii_case("received") {
            // RFC 3261 allows IPv4address / IPv6address; RFC 5118 section 4.5 asks
            // robust parsers to accept the bracketed form too.
            val.is_some_and(|v| {
                v.parse::<std::net::IpAddr>().is_ok()
                    || matches!(parse_any_host(v), Some(Host::V6(_)))
            })
        } else if p.name.eq_ignore_ascii_case("rport") {
            val.is_none_or(|v| {
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u16>().is_ok()
            })
        } else if p.name.eq_ignore_ascii_case("ttl") {
            val.is_some_and(|v| v.len() <= 3 && v.parse::<u8>().is_ok())
        } else if p.name.eq_ignore_ascii_case("maddr") {
            val.is_some_and(|v| parse_any_host(v).is_some())
        } else {
            true
        };
        if !ok {
            return Err(c.bad("invalid Via parameter (branch, received, rport, ttl or maddr)"));
        }
    }
    Ok(())
}

fn check_contact_params(n: &NameAddr<'_>, c: &Cursor<'_>) -> Result<(), ParseError> {
    for p in &n.params {
        if p.name.eq_ignore_ascii_case("q") {
            if p.value.as_deref().and_then(qvalue_millis).is_none() {
                return Err(c.bad("q must be a qvalue between 0 and 1"));
            }
        } else if p.name.eq_ignore_ascii_case("expires") {
            let v = p.value.as_deref().unwrap_or("");
            delta_seconds(v, "expires must be delta-seconds", c)?;
        }
    }
    Ok(())
}

/// Parses a name-addr or addr-spec. Returns the value and whether angle brackets were used.
fn parse_name_addr<'a>(
    c: &mut Cursor<'a>,
    limits: &Limits,
) -> Result<(NameAddr<'a>, bool), ParseError> {
    c.skip_ws();
    let mut display = None;
    let angle;
    if c.peek() == Some(b'"') {
        display = Some(Cow::Borrowed(c.quoted()?));
        c.skip_ws();
        if c.peek() != Some(b'<') {
            return Err(c.bad("display name must be followed by <URI>"));
        }
        angle = true;
    } else if c.peek() == Some(b'<') {
        angle = true;
    } else {
        // Either `*(token LWS) <URI>` or an addr-spec: look for '<' after tokens.
        let save = c.pos;
        let start = c.pos;
        let mut end = c.pos;
        loop {
            let t = c.take_while(is_token);
            if t.is_empty() {
                break;
            }
            end = c.pos;
            c.skip_ws();
        }
        if c.peek() == Some(b'<') && end > start {
            display = Some(normalize_ws(c.s.get(start..end).unwrap_or("")));
            angle = true;
        } else {
            c.pos = save;
            angle = false;
        }
    }
    let uri;
    if angle {
        c.eat(b'<');
        let start = c.pos;
        let Some(len) = c.rest().find('>') else {
            return Err(c.bad("missing '>'"));
        };
        let text = c.rest().get(..len).unwrap_or("");
        uri = parse_uri(text, c.base + start, limits)?;
        c.pos = start + len + 1;
    } else {
        let start = c.pos;
        let spec = c.take_while(|b| !matches!(b, b';' | b',' | b' ' | b'\t'));
        if spec.is_empty() {
            return Err(c.bad("missing URI"));
        }
        if spec.contains('?') {
            return Err(ParseError::new(
                ErrorKind::BadValue("a URI with headers, ';', ',' or '?' must be enclosed in <>"),
                c.base + start,
            ));
        }
        uri = parse_uri(spec, c.base + start, limits)?;
    }
    let mut params = Vec::new();
    parse_params(c, &mut params, limits)?;
    Ok((
        NameAddr {
            display,
            uri,
            params,
        },
        angle,
    ))
}

fn expect_end(c: &mut Cursor<'_>) -> Result<(), ParseError> {
    c.skip_ws();
    if c.at_end() {
        Ok(())
    } else {
        Err(c.bad("unexpected characters after the value"))
    }
}

fn token_list<'a>(c: &mut Cursor<'a>, allow_empty: bool) -> Result<Vec<Cow<'a, str>>, ParseError> {
    let mut v = Vec::new();
    c.skip_ws();
    if c.at_end() {
        return if allow_empty {
            Ok(v)
        } else {
            Err(c.bad("empty list"))
        };
    }
    loop {
        v.push(Cow::Borrowed(c.token("expected a token")?));
        if !c.eat_sep(b',') {
            break;
        }
    }
    expect_end(c)?;
    Ok(v)
}

fn parse_credentials<'a>(
    c: &mut Cursor<'a>,
    limits: &Limits,
) -> Result<Credentials<'a>, ParseError> {
    c.skip_ws();
    let scheme = c.token("missing authentication scheme")?;
    let mut params = Vec::new();
    let before = c.pos;
    c.skip_ws();
    if c.pos == before && !c.at_end() {
        return Err(c.bad("authentication scheme must be followed by whitespace"));
    }
    if !c.at_end() {
        loop {
            let name = c.token("malformed authentication parameter")?;
            if !c.eat_sep(b'=') {
                return Err(c.bad("authentication parameter without '='"));
            }
            let value = if c.peek() == Some(b'"') {
                let start = c.pos;
                c.quoted()?;
                c.since(start)
            } else {
                let v = c.take_while(|b| is_token(b) || b == b'/' || b == b':');
                if v.is_empty() {
                    return Err(c.bad("empty authentication parameter value"));
                }
                v
            };
            if params.len() >= limits.max_params {
                return Err(c.err(ErrorKind::Limit {
                    key: "limits.max_params",
                    max: limits.max_params,
                }));
            }
            params.push(Param {
                name: Cow::Borrowed(name),
                value: Some(Cow::Borrowed(value)),
            });
            if !c.eat_sep(b',') {
                break;
            }
        }
    }
    expect_end(c)?;
    Ok(Credentials {
        scheme: Cow::Borrowed(scheme),
        params,
    })
}

/// rfc1123-date = wkday "," SP date1 SP time SP "GMT"
///
/// Works on bytes: the text is untrusted and a multi-byte character may stand at any
/// of the fixed offsets (that once stopped the server).
fn valid_date(s: &str) -> bool {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29 {
        return false;
    }
    let part = |r: std::ops::Range<usize>| b.get(r).unwrap_or_default();
    // Two ASCII digits as a number, or None.
    let num = |at: usize| match part(at..at + 2) {
        [h, l] if h.is_ascii_digit() && l.is_ascii_digit() => {
            Some(u32::from(h - b'0') * 10 + u32::from(l - b'0'))
        }
        _ => None,
    };
    let in_range =
        |at: usize, r: std::ops::RangeInclusive<u32>| num(at).is_some_and(|n| r.contains(&n));
    DAYS.contains(&part(0..3))
        && part(3..5) == b", "
        && in_range(5, 1..=31)
        && part(7..8) == b" "
        && MONTHS.contains(&part(8..11))
        && part(11..12) == b" "
        && part(12..16).iter().all(u8::is_ascii_digit)
        && part(16..17) == b" "
        && in_range(17, 0..=23)
        && part(19..20) == b":"
        && in_range(20, 0..=59)
        && part(22..23) == b":"
        && in_range(23, 0..=60)
        && part(25..29) == b" GMT"
}

/// Parses one header line's value into typed entries appended to `out`.
pub(crate) fn parse_value<'a>(
    kind: Kind,
    name: Cow<'a, str>,
    value: &'a str,
    base: usize,
    limits: &Limits,
    out: &mut Vec<Header<'a>>,
) -> Result<(), ParseError> {
    let mut c = Cursor::new(value, base);
    match kind {
        Kind::Via => loop {
            c.skip_ws();
            let proto = c.token("missing sent-protocol")?;
            if !c.eat_sep(b'/') {
                return Err(c.bad("malformed sent-protocol"));
            }
            let ver = c.token("missing protocol version")?;
            if !proto.eq_ignore_ascii_case("SIP") || ver != "2.0" {
                return Err(c.bad("sent-protocol must be SIP/2.0"));
            }
            if !c.eat_sep(b'/') {
                return Err(c.bad("malformed sent-protocol"));
            }
            let transport = c.token("missing transport")?;
            let before = c.pos;
            c.skip_ws();
            if c.pos == before {
                return Err(c.bad("missing whitespace before sent-by"));
            }
            let hstart = c.pos;
            let host_text = if c.peek() == Some(b'[') {
                let Some(len) = c.rest().find(']') else {
                    return Err(c.bad("unterminated IPv6 reference"));
                };
                c.pos += len + 1;
                c.since(hstart)
            } else {
                c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            };
            let host = parse_any_host(host_text).ok_or_else(|| {
                ParseError::new(ErrorKind::BadValue("invalid sent-by host"), base + hstart)
            })?;
            let mut port = None;
            if c.eat_sep(b':') {
                let p = c.take_while(|b| b.is_ascii_digit());
                if p.is_empty() {
                    return Err(c.bad("invalid sent-by port"));
                }
                port = Some(
                    p.parse::<u16>()
                        .map_err(|_| c.err(ErrorKind::ScalarOverflow("port above 65535")))?,
                );
            }
            let mut params = Vec::new();
            parse_params(&mut c, &mut params, limits)?;
            let via = Via {
                transport: Cow::Borrowed(transport),
                host,
                port,
                params,
            };
            check_via_params(&via, &c)?;
            out.push(Header::Via(via));
            if !c.eat_sep(b',') {
                expect_end(&mut c)?;
                break;
            }
        },
        Kind::From | Kind::To => {
            let (na, _) = parse_name_addr(&mut c, limits)?;
            expect_end(&mut c)?;
            out.push(if kind == Kind::From {
                Header::From(na)
            } else {
                Header::To(na)
            });
        }
        Kind::Contact => {
            c.skip_ws();
            if c.peek() == Some(b'*') {
                c.pos += 1;
                expect_end(&mut c)?;
                out.push(Header::Contact(Contact::Star));
                return Ok(());
            }
            loop {
                let (na, _) = parse_name_addr(&mut c, limits)?;
                check_contact_params(&na, &c)?;
                out.push(Header::Contact(Contact::Addr(na)));
                if !c.eat_sep(b',') {
                    expect_end(&mut c)?;
                    break;
                }
            }
        }
        Kind::Route | Kind::RecordRoute | Kind::Path => loop {
            let (na, angle) = parse_name_addr(&mut c, limits)?;
            if !angle {
                return Err(c.bad("route URIs must be enclosed in <>"));
            }
            out.push(match kind {
                Kind::Route => Header::Route(na),
                Kind::RecordRoute => Header::RecordRoute(na),
                _ => Header::Path(na),
            });
            if !c.eat_sep(b',') {
                expect_end(&mut c)?;
                break;
            }
        },
        Kind::CallId => {
            let v = value.trim_matches(|ch| ch == ' ' || ch == '\t');
            let mut parts = v.splitn(2, '@');
            let w1 = parts.next().unwrap_or("");
            let w2 = parts.next();
            let ok_word = |w: &str| !w.is_empty() && w.bytes().all(is_word);
            if !ok_word(w1) || w2.is_some_and(|w| !ok_word(w)) {
                return Err(c.bad("Call-ID must be word[@word]"));
            }
            out.push(Header::CallId(Cow::Borrowed(v)));
        }
        Kind::CSeq => {
            c.skip_ws();
            let n = c.take_while(|b| b.is_ascii_digit());
            if n.is_empty() {
                return Err(c.bad("CSeq must start with a number"));
            }
            let seq = n
                .parse::<u32>()
                .ok()
                .filter(|&s| s < 1 << 31)
                .ok_or_else(|| {
                    c.err(ErrorKind::ScalarOverflow("CSeq number must be below 2^31"))
                })?;
            let before = c.pos;
            c.skip_ws();
            if c.pos == before {
                return Err(c.bad("CSeq number and method must be separated by whitespace"));
            }
            let m = c.token("CSeq method missing")?;
            expect_end(&mut c)?;
            out.push(Header::CSeq(CSeq {
                seq,
                method: Method::from_token(m),
            }));
        }
        Kind::MaxForwards => {
            let v = value.trim_matches(|ch| ch == ' ' || ch == '\t');
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(c.bad("Max-Forwards must be a number"));
            }
            let n = v
                .parse::<u32>()
                .ok()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| c.err(ErrorKind::ScalarOverflow("Max-Forwards above 255")))?;
            out.push(Header::MaxForwards(n));
        }
        Kind::Expires | Kind::MinExpires => {
            let v = value.trim_matches(|ch| ch == ' ' || ch == '\t');
            let n = delta_seconds(v, "expected delta-seconds", &c)?;
            out.push(if kind == Kind::Expires {
                Header::Expires(n)
            } else {
                Header::MinExpires(n)
            });
        }
        Kind::ContentType => {
            c.skip_ws();
            let mtype = c.token("malformed media type")?;
            if !c.eat_sep(b'/') {
                return Err(c.bad("media type needs a subtype"));
            }
            let subtype = c.token("malformed media subtype")?;
            let mut params = Vec::new();
            parse_params(&mut c, &mut params, limits)?;
            if params.iter().any(|p| p.value.is_none()) {
                return Err(c.bad("media type parameter without a value"));
            }
            expect_end(&mut c)?;
            out.push(Header::ContentType(MediaType {
                mtype: Cow::Borrowed(mtype),
                subtype: Cow::Borrowed(subtype),
                params,
            }));
        }
        Kind::ContentEncoding => out.push(Header::ContentEncoding(token_list(&mut c, false)?)),
        Kind::Supported => out.push(Header::Supported(token_list(&mut c, true)?)),
        Kind::Require => out.push(Header::Require(token_list(&mut c, false)?)),
        Kind::ProxyRequire => out.push(Header::ProxyRequire(token_list(&mut c, false)?)),
        Kind::Allow => {
            let list = token_list(&mut c, true)?;
            out.push(Header::Allow(
                list.into_iter()
                    .map(|t| match t {
                        Cow::Borrowed(s) => Method::from_token(s),
                        Cow::Owned(s) => Method::Extension(Cow::Owned(s)),
                    })
                    .collect(),
            ));
        }
        Kind::Authorization
        | Kind::ProxyAuthorization
        | Kind::WwwAuthenticate
        | Kind::ProxyAuthenticate => {
            let cr = parse_credentials(&mut c, limits)?;
            out.push(match kind {
                Kind::Authorization => Header::Authorization(cr),
                Kind::ProxyAuthorization => Header::ProxyAuthorization(cr),
                Kind::WwwAuthenticate => Header::WwwAuthenticate(cr),
                _ => Header::ProxyAuthenticate(cr),
            });
        }
        Kind::Warning => loop {
            c.skip_ws();
            let code = c.take_while(|b| b.is_ascii_digit());
            if code.len() != 3 {
                return Err(c.bad("warn-code must be three digits"));
            }
            if !c.eat(b' ') {
                return Err(c.bad("malformed Warning"));
            }
            let agent = c.take_while(|b| is_token(b) || b == b':' || b == b'[' || b == b']');
            if agent.is_empty() || !c.eat(b' ') {
                return Err(c.bad("malformed warn-agent"));
            }
            let text = c.quoted()?;
            out.push(Header::Warning(Warning {
                code: code.parse().unwrap_or(0),
                agent: Cow::Borrowed(agent),
                text: Cow::Borrowed(text),
            }));
            if !c.eat_sep(b',') {
                expect_end(&mut c)?;
                break;
            }
        },
        Kind::UserAgent | Kind::Server => {
            check_text(value, base)?;
            let v = normalize_ws(value);
            if v.is_empty() {
                return Err(c.bad("empty product list"));
            }
            out.push(if kind == Kind::UserAgent {
                Header::UserAgent(v)
            } else {
                Header::Server(v)
            });
        }
        Kind::Date => {
            let v = normalize_ws(value);
            if !valid_date(&v) {
                return Err(c.bad("Date must be an RFC 1123 date in GMT"));
            }
            out.push(Header::Date(v));
        }
        Kind::Other => {
            check_text(value, base)?;
            out.push(Header::Other {
                name,
                value: normalize_ws(value),
            });
        }
        Kind::ContentLength => unreachable_kind(&c)?,
    }
    Ok(())
}

/// Content-Length is consumed by the message parser, never stored as a header.
fn unreachable_kind(c: &Cursor<'_>) -> Result<(), ParseError> {
    Err(c.bad("internal: Content-Length handled by the message parser"))
}

#[cfg(test)]
mod helper_tests {
    use super::{qvalue_millis, valid_date};

    #[test]
    fn qvalues_in_thousandths() {
        assert_eq!(qvalue_millis("0"), Some(0));
        assert_eq!(qvalue_millis("0.5"), Some(500));
        assert_eq!(qvalue_millis("0.125"), Some(125));
        assert_eq!(qvalue_millis("1"), Some(1000));
        assert_eq!(qvalue_millis("1.000"), Some(1000));
        for bad in ["1.5", "2", "0.1234", "", ".5", "0.x", "01"] {
            assert_eq!(qvalue_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc1123_dates() {
        assert!(valid_date("Sat, 13 Nov 2010 23:29:00 GMT"));
        for bad in [
            "Sat, 13 Nov 2010 23:29:00 UTC",
            "Sat, 32 Nov 2010 23:29:00 GMT",
            "Sat, 13 Foo 2010 23:29:00 GMT",
            "Sat, 13 Nov 2010 24:29:00 GMT",
            "Sat 13 Nov 2010 23:29:00 GMT",
            "Sat, 1\u{e9} Nov 2010 23:29:00 GMT",
        ] {
            assert!(!valid_date(bad), "{bad}");
        }
    }
}
