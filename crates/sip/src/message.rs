use std::borrow::Cow;

use crate::header::{CSeq, Contact, Header, MediaType, Method, NameAddr, Via};
use crate::text::{put_num, Out};
use crate::uri::Uri;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD Request-URI SIP/2.0`
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI.
        uri: Uri<'a>,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// The status code.
        code: u16,
        /// The reason phrase, as written.
        reason: Cow<'a, str>,
    },
}

/// A parsed SIP message. Content-Length is not kept as a header: it is a property of the
/// body, and the writer always emits the true length as the last header.
///
/// Two messages are equal when their start lines, headers and bodies are: what the
/// parse noted about the bytes it read ([`Received`]) is not part of the message.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The start line.
    pub start: StartLine<'a>,
    /// The headers, in order (Content-Length is computed when writing, not kept).
    pub headers: Vec<Header<'a>>,
    /// The body.
    pub body: Cow<'a, [u8]>,
    /// What the parse saw of the bytes it read that the model does not keep (the
    /// default for a message built rather than parsed).
    pub received: Received,
}

impl PartialEq for Message<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.start == other.start && self.headers == other.headers && self.body == other.body
    }
}

impl Eq for Message<'_> {}

/// What the parse of a message saw of the bytes as received, for checks made on those
/// bytes rather than on the model (the shield's, on the header section): the parse
/// passes every byte of the header section once already, so they need no second pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Where the first CRLFCRLF of the bytes starts: the length of the start line and
    /// header section. `None` when not noted (a message built rather than parsed, or
    /// bytes that begin with an empty line).
    pub head_end: Option<usize>,
    /// Whether the header section holds a control character other than CR, LF and tab
    /// (the parser lets one through only as a quoted-pair, after a backslash).
    pub quoted_control: bool,
    /// The parse saw no folded header line (a CRLF followed by a blank): no line of the
    /// header section begins with a blank. `false` when it saw one, and for a message
    /// built rather than parsed (not known).
    pub unfolded: bool,
}

macro_rules! first_of {
    ($self:ident, $variant:ident) => {
        $self.headers.iter().find_map(|h| match h {
            Header::$variant(v) => Some(v),
            _ => None,
        })
    };
}

impl<'a> Message<'a> {
    /// Whether it is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&Method<'a>> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&Uri<'a>> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Every Via, top first.
    pub fn vias(&self) -> impl Iterator<Item = &Via<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
    }

    /// The top Via (the previous hop).
    pub fn top_via(&self) -> Option<&Via<'a>> {
        first_of!(self, Via)
    }

    /// The From header.
    pub fn from(&self) -> Option<&NameAddr<'a>> {
        first_of!(self, From)
    }

    /// The To header.
    pub fn to(&self) -> Option<&NameAddr<'a>> {
        first_of!(self, To)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        first_of!(self, CallId).map(|c| c.as_ref())
    }

    /// The CSeq.
    pub fn cseq(&self) -> Option<&CSeq<'a>> {
        first_of!(self, CSeq)
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Option<u8> {
        first_of!(self, MaxForwards).copied()
    }

    /// The Expires header, if present.
    pub fn expires(&self) -> Option<u32> {
        first_of!(self, Expires).copied()
    }

    /// The Min-Expires header, if present.
    pub fn min_expires(&self) -> Option<u32> {
        first_of!(self, MinExpires).copied()
    }

    /// The Content-Type, if present.
    pub fn content_type(&self) -> Option<&MediaType<'a>> {
        first_of!(self, ContentType)
    }

    /// Every Contact value, in order.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::Contact(c) => Some(c),
            _ => None,
        })
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> impl Iterator<Item = &NameAddr<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::Route(r) => Some(r),
            _ => None,
        })
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = &NameAddr<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::RecordRoute(r) => Some(r),
            _ => None,
        })
    }

    /// Option tags of every Require (or, with `proxy`, Proxy-Require) header.
    pub fn required(&self, proxy: bool) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter_map(move |h| match (h, proxy) {
                (Header::Require(v), false) | (Header::ProxyRequire(v), true) => Some(v),
                _ => None,
            })
            .flatten()
            .map(|c| c.as_ref())
    }

    /// Headers not typed by this crate, by canonical name (case-insensitive).
    pub fn other(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_owned();
        self.headers.iter().filter_map(move |h| match h {
            Header::Other { name: n, value } if n.eq_ignore_ascii_case(&name) => {
                Some(value.as_ref())
            }
            _ => None,
        })
    }

    /// The same message, owning its text and body.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            start: match self.start {
                StartLine::Request { method, uri } => StartLine::Request {
                    method: method.into_owned(),
                    uri: uri.into_owned(),
                },
                StartLine::Response { code, reason } => StartLine::Response {
                    code,
                    reason: Cow::Owned(reason.into_owned()),
                },
            },
            headers: self.headers.into_iter().map(Header::into_owned).collect(),
            body: Cow::Owned(self.body.into_owned()),
            received: self.received,
        }
    }

    /// Writes the start line and headers (everything before the body) in canonical form,
    /// Content-Length last and the empty line included.
    pub fn write_head(&self, out: &mut String) {
        self.write_head_into(out);
    }

    fn write_head_into<O: Out>(&self, out: &mut O) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.put(method.as_str());
                out.put_byte(b' ');
                uri.write_into(out);
                out.put(" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.put("SIP/2.0 ");
                put_num(out, u64::from(*code));
                out.put_byte(b' ');
                out.put(reason);
                out.put("\r\n");
            }
        }
        for h in &self.headers {
            h.write_into(out);
        }
        out.put("Content-Length: ");
        put_num(out, self.body.len() as u64);
        out.put("\r\n\r\n");
    }

    /// Appends the canonical form of the whole message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_head_into(out);
        out.extend_from_slice(&self.body);
    }

    /// The canonical form of the whole message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        out
    }
}
