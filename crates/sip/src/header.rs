//! Typed header values and their canonical writers (their parsers: `header_value`).
use std::borrow::Cow;

use crate::scan::unescape_quoted;
use crate::text::{put_num, Out};
use crate::uri::{find_param, params_into_owned, write_params, Host, Param, Uri};

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// A request method. Methods are case-sensitive (RFC 3261 section 7.1): `invite` is an
/// extension method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// `INVITE`: a session (RFC 3261).
    Invite,
    /// `ACK`: the end of an INVITE transaction (RFC 3261).
    Ack,
    /// `BYE`: the end of a session (RFC 3261).
    Bye,
    /// `CANCEL`: a pending request given up (RFC 3261).
    Cancel,
    /// `REGISTER`: a binding in the registrar (RFC 3261).
    Register,
    /// `OPTIONS`: a query of capabilities (RFC 3261).
    Options,
    /// `INFO`: mid-session information (RFC 6086).
    Info,
    /// `PRACK`: a provisional response acknowledged (RFC 3262).
    Prack,
    /// `SUBSCRIBE`: a subscription to events (RFC 6665).
    Subscribe,
    /// `NOTIFY`: an event notification (RFC 6665).
    Notify,
    /// `UPDATE`: a session modified before it is answered (RFC 3311).
    Update,
    /// `MESSAGE`: an instant message (RFC 3428).
    Message,
    /// `REFER`: a transfer (RFC 3515).
    Refer,
    /// `PUBLISH`: event state published (RFC 3903).
    Publish,
    /// Any other method (a token, kept as written).
    Extension(Cow<'a, str>),
}

impl<'a> Method<'a> {
    /// Maps a token to a method; the caller has checked that `s` is a token.
    pub fn from_token(s: &'a str) -> Method<'a> {
        // the length picks the one or few names a token can be before any comparison
        let known = match s.len() {
            3 => match s {
                "ACK" => Some(Method::Ack),
                "BYE" => Some(Method::Bye),
                _ => None,
            },
            4 => (s == "INFO").then_some(Method::Info),
            5 => match s {
                "PRACK" => Some(Method::Prack),
                "REFER" => Some(Method::Refer),
                _ => None,
            },
            6 => match s {
                "INVITE" => Some(Method::Invite),
                "CANCEL" => Some(Method::Cancel),
                "NOTIFY" => Some(Method::Notify),
                "UPDATE" => Some(Method::Update),
                _ => None,
            },
            7 => match s {
                "OPTIONS" => Some(Method::Options),
                "MESSAGE" => Some(Method::Message),
                "PUBLISH" => Some(Method::Publish),
                _ => None,
            },
            8 => (s == "REGISTER").then_some(Method::Register),
            9 => (s == "SUBSCRIBE").then_some(Method::Subscribe),
            _ => None,
        };
        known.unwrap_or(Method::Extension(Cow::Borrowed(s)))
    }

    /// The method name as written on the wire.
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

    /// The same method, owning its text.
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
    /// The sent-protocol transport (`UDP`, `TCP`, `TLS`, ...).
    pub transport: Cow<'a, str>,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// `branch`, `received`, `rport`, ... in order.
    pub params: Vec<Param<'a>>,
}

impl<'a> Via<'a> {
    /// A parameter by name (ASCII case ignored).
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        find_param(&self.params, name)
    }
    /// The `branch` parameter (the transaction id, RFC 3261 section 8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }
    /// The `received` parameter (RFC 3261 section 18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(|p| p.value.as_deref())
    }
    /// `None`: no rport; `Some(None)`: rport requested (RFC 3581); `Some(Some(p))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|p| p.value.as_deref().and_then(|v| v.parse().ok()))
    }
    /// The same Via, owning its text.
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
    /// The display name (quoted-string content, escapes as written).
    pub display: Option<Cow<'a, str>>,
    /// The address.
    pub uri: Uri<'a>,
    /// Header parameters (`tag`, `expires`, `q`, ...), in order.
    pub params: Vec<Param<'a>>,
}

impl<'a> NameAddr<'a> {
    /// A header parameter by name (ASCII case ignored).
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        find_param(&self.params, name)
    }
    /// The `tag` parameter (From/To, RFC 3261 section 19.3).
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
    /// The same name-addr, owning its text.
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            display: self.display.map(owned),
            uri: self.uri.into_owned(),
            params: params_into_owned(self.params),
        }
    }
    fn write<O: Out>(&self, out: &mut O) {
        if let Some(d) = &self.display {
            out.put_byte(b'"');
            out.put(d);
            out.put("\" <");
        } else {
            out.put_byte(b'<');
        }
        self.uri.write_into(out);
        out.put_byte(b'>');
        write_params(&self.params, out);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A Contact header value (RFC 3261 section 20.10).
pub enum Contact<'a> {
    /// `Contact: *` (remove all bindings; only with Expires: 0).
    Star,
    /// One contact address.
    Addr(NameAddr<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A CSeq value (RFC 3261 section 20.16).
pub struct CSeq<'a> {
    /// The sequence number.
    pub seq: u32,
    /// The method it counts.
    pub method: Method<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A media type (Content-Type, RFC 3261 section 20.15).
pub struct MediaType<'a> {
    /// The type (`application`).
    pub mtype: Cow<'a, str>,
    /// The subtype (`sdp`).
    pub subtype: Cow<'a, str>,
    /// Its parameters (`boundary`, `charset`, ...).
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
    /// The auth scheme (`Digest`).
    pub scheme: Cow<'a, str>,
    /// The auth parameters (`realm`, `nonce`, `response`, ...), in order.
    pub params: Vec<Param<'a>>,
}

impl<'a> Credentials<'a> {
    /// Whether the scheme is Digest (ASCII case ignored).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("digest")
    }
    /// A parameter's value, unquoted and unescaped.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let v = find_param(&self.params, name)?.value.as_deref()?;
        Some(unquote(v))
    }

    /// [`Credentials::get`] of several names in one pass over the parameters (a digest
    /// response has ten; looking each name up on its own compared them all nine times).
    pub fn get_all<const N: usize>(&self, names: [&str; N]) -> [Option<Cow<'_, str>>; N] {
        let mut out: [Option<Cow<'_, str>>; N] = std::array::from_fn(|_| None);
        // the first parameter of a name decides, as in `get` (a valueless one too)
        let mut decided = [false; N];
        let mut left = N;
        for p in &self.params {
            if left == 0 {
                break;
            }
            let b = p.name.as_bytes();
            for ((n, slot), done) in names.iter().zip(out.iter_mut()).zip(decided.iter_mut()) {
                if !*done && n.len() == b.len() && n.as_bytes().eq_ignore_ascii_case(b) {
                    *done = true;
                    left -= 1;
                    *slot = p.value.as_deref().map(unquote);
                }
            }
        }
        out
    }
}

/// A parameter value without its quotes, unescaped (a token as it is).
fn unquote(v: &str) -> Cow<'_, str> {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => unescape_quoted(inner),
        None => Cow::Borrowed(v),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A Warning value (RFC 3261 section 20.43).
pub struct Warning<'a> {
    /// The three-digit warning code.
    pub code: u16,
    /// The warn-agent (host or pseudonym).
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
    /// `Via` (RFC 3261 section 20.42).
    Via(Via<'a>),
    /// `From` (RFC 3261 section 20.20).
    From(NameAddr<'a>),
    /// `To` (RFC 3261 section 20.39).
    To(NameAddr<'a>),
    /// `Call-ID` (RFC 3261 section 20.8).
    CallId(Cow<'a, str>),
    /// `CSeq` (RFC 3261 section 20.16).
    CSeq(CSeq<'a>),
    /// `Max-Forwards` (RFC 3261 section 20.22).
    MaxForwards(u8),
    /// `Contact` (RFC 3261 section 20.10).
    Contact(Contact<'a>),
    /// `Route` (RFC 3261 section 20.34).
    Route(NameAddr<'a>),
    /// `Record-Route` (RFC 3261 section 20.30).
    RecordRoute(NameAddr<'a>),
    /// `Path` (RFC 3327).
    Path(NameAddr<'a>),
    /// `Content-Type` (RFC 3261 section 20.15).
    ContentType(MediaType<'a>),
    /// `Content-Encoding` (RFC 3261 section 20.12).
    ContentEncoding(Vec<Cow<'a, str>>),
    /// `Expires` (RFC 3261 section 20.19).
    Expires(u32),
    /// `Min-Expires` (RFC 3261 section 20.23).
    MinExpires(u32),
    /// `Authorization` (RFC 3261 section 20.7).
    Authorization(Credentials<'a>),
    /// `Proxy-Authorization` (RFC 3261 section 20.28).
    ProxyAuthorization(Credentials<'a>),
    /// `WWW-Authenticate` (RFC 3261 section 20.44).
    WwwAuthenticate(Credentials<'a>),
    /// `Proxy-Authenticate` (RFC 3261 section 20.27).
    ProxyAuthenticate(Credentials<'a>),
    /// `Allow` (RFC 3261 section 20.5).
    Allow(Vec<Method<'a>>),
    /// `Supported` (RFC 3261 section 20.37).
    Supported(Vec<Cow<'a, str>>),
    /// `Require` (RFC 3261 section 20.32).
    Require(Vec<Cow<'a, str>>),
    /// `Proxy-Require` (RFC 3261 section 20.29).
    ProxyRequire(Vec<Cow<'a, str>>),
    /// `User-Agent` (RFC 3261 section 20.41).
    UserAgent(Cow<'a, str>),
    /// `Server` (RFC 3261 section 20.35).
    Server(Cow<'a, str>),
    /// `Warning` (RFC 3261 section 20.43).
    Warning(Warning<'a>),
    /// `Date` (RFC 3261 section 20.17).
    Date(Cow<'a, str>),
    /// Any other header: name (canonical spelling when known, else as received) and value
    /// (whitespace normalised), kept so that policy can decide about it.
    Other {
        /// The name (canonical spelling when known).
        name: Cow<'a, str>,
        /// The value, whitespace-normalised.
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

    /// The same header, owning its text.
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
        self.write_into(out);
    }

    /// The canonical name and the colon and space after it, for the typed headers.
    fn name_colon(&self) -> Option<&'static str> {
        Some(match self {
            Header::Via(_) => "Via: ",
            Header::From(_) => "From: ",
            Header::To(_) => "To: ",
            Header::CallId(_) => "Call-ID: ",
            Header::CSeq(_) => "CSeq: ",
            Header::MaxForwards(_) => "Max-Forwards: ",
            Header::Contact(_) => "Contact: ",
            Header::Route(_) => "Route: ",
            Header::RecordRoute(_) => "Record-Route: ",
            Header::Path(_) => "Path: ",
            Header::ContentType(_) => "Content-Type: ",
            Header::ContentEncoding(_) => "Content-Encoding: ",
            Header::Expires(_) => "Expires: ",
            Header::MinExpires(_) => "Min-Expires: ",
            Header::Authorization(_) => "Authorization: ",
            Header::ProxyAuthorization(_) => "Proxy-Authorization: ",
            Header::WwwAuthenticate(_) => "WWW-Authenticate: ",
            Header::ProxyAuthenticate(_) => "Proxy-Authenticate: ",
            Header::Allow(_) => "Allow: ",
            Header::Supported(_) => "Supported: ",
            Header::Require(_) => "Require: ",
            Header::ProxyRequire(_) => "Proxy-Require: ",
            Header::UserAgent(_) => "User-Agent: ",
            Header::Server(_) => "Server: ",
            Header::Warning(_) => "Warning: ",
            Header::Date(_) => "Date: ",
            Header::Other { .. } => return None,
        })
    }

    /// [`Header::write`] into any [`Out`].
    pub(crate) fn write_into<O: Out>(&self, out: &mut O) {
        match self.name_colon() {
            Some(n) => out.put(n),
            None => {
                out.put(self.name());
                out.put(": ");
            }
        }
        match self {
            Header::Via(v) => {
                out.put("SIP/2.0/");
                out.put(&v.transport);
                out.put_byte(b' ');
                v.host.write_into(out);
                if let Some(p) = v.port {
                    out.put_byte(b':');
                    put_num(out, u64::from(p));
                }
                write_params(&v.params, out);
            }
            Header::From(n)
            | Header::To(n)
            | Header::Route(n)
            | Header::RecordRoute(n)
            | Header::Path(n) => n.write(out),
            Header::Contact(Contact::Star) => out.put_byte(b'*'),
            Header::Contact(Contact::Addr(n)) => n.write(out),
            Header::CallId(c) => out.put(c),
            Header::CSeq(c) => {
                put_num(out, u64::from(c.seq));
                out.put_byte(b' ');
                out.put(c.method.as_str());
            }
            Header::MaxForwards(n) => put_num(out, u64::from(*n)),
            Header::Expires(n) | Header::MinExpires(n) => put_num(out, u64::from(*n)),
            Header::ContentType(m) => {
                out.put(&m.mtype);
                out.put_byte(b'/');
                out.put(&m.subtype);
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
                out.put(&c.scheme);
                for (i, p) in c.params.iter().enumerate() {
                    out.put(if i == 0 { " " } else { ", " });
                    out.put(&p.name);
                    if let Some(v) = &p.value {
                        out.put_byte(b'=');
                        out.put(v);
                    }
                }
            }
            Header::Warning(w) => {
                // `{:03}`: at least three digits, zero-padded
                if w.code < 100 {
                    out.put_byte(b'0');
                }
                if w.code < 10 {
                    out.put_byte(b'0');
                }
                put_num(out, u64::from(w.code));
                out.put_byte(b' ');
                out.put(&w.agent);
                out.put(" \"");
                out.put(&w.text);
                out.put_byte(b'"');
            }
            Header::UserAgent(s) | Header::Server(s) | Header::Date(s) => out.put(s),
            Header::Other { value, .. } => out.put(value),
        }
        out.put("\r\n");
    }
}

fn join<'s, O: Out>(items: impl Iterator<Item = &'s str>, out: &mut O) {
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.put(", ");
        }
        out.put(s);
    }
}

pub(crate) use crate::header_value::{parse_value, qvalue_millis};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_read_back_from_its_name() {
        let all = [
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Register,
            Method::Options,
            Method::Info,
            Method::Prack,
            Method::Subscribe,
            Method::Notify,
            Method::Update,
            Method::Message,
            Method::Refer,
            Method::Publish,
        ];
        for m in all {
            assert_eq!(Method::from_token(m.as_str()), m);
            let lower = m.as_str().to_ascii_lowercase();
            assert_eq!(
                Method::from_token(&lower),
                Method::Extension(Cow::Borrowed(&lower))
            );
        }
        for other in ["", "X", "INVITES", "ACKS", "INF0", "SUBSCRIBED", "REGISTEr"] {
            assert_eq!(
                Method::from_token(other),
                Method::Extension(Cow::Borrowed(other))
            );
        }
    }

    #[test]
    fn get_all_answers_as_get_does() {
        let c = Credentials {
            scheme: Cow::Borrowed("Digest"),
            params: vec![
                Param::new("Username", Some(Cow::Borrowed("\"a\\\"b\""))),
                Param::new("nc", Some(Cow::Borrowed("00000001"))),
                Param::new("flag", None),
                Param::new("nc", Some(Cow::Borrowed("00000002"))),
                Param::new("realm", Some(Cow::Borrowed("\"x\""))),
            ],
        };
        let names = ["username", "nc", "flag", "realm", "absent", "NC"];
        let all = c.get_all(names);
        for (n, v) in names.iter().zip(all) {
            assert_eq!(v, c.get(n), "{n}");
        }
    }
}
