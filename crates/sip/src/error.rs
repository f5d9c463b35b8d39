use std::fmt;

/// Why a message was refused. Each kind maps to the SIP status code a server answers with
/// ([`ParseError::status`]); the `&'static str` details are fixed phrases, so a log line or
/// a Warning header can carry them without echoing attacker bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("empty message")]
    /// Nothing but whitespace.
    Empty,
    #[error("limit {key} exceeded (maximum {max})")]
    /// A bound of [`crate::Limits`] exceeded (answered 413, 414 or 483 as it applies).
    Limit {
        /// The configuration key of the bound.
        key: &'static str,
        /// Its value.
        max: usize,
    },
    #[error("Request-URI longer than limits.max_uri_length (maximum {max})")]
    /// A Request-URI over `limits.max_uri_length` (answered 414).
    RequestUriTooLong {
        /// The bound.
        max: usize,
    },
    #[error("no empty line ends the header section")]
    /// The header section does not end (no empty line).
    NoHeaderEnd,
    #[error("NUL byte")]
    /// A NUL byte in the header section.
    NulByte,
    #[error("control character 0x{0:02x}")]
    /// A control character where the grammar allows none.
    ControlChar(u8),
    #[error("bare CR or LF: lines must end with CRLF")]
    /// A CR or LF alone where CRLF is required.
    BareLineEnding,
    #[error("invalid UTF-8")]
    /// Header text that is not UTF-8.
    InvalidUtf8,
    #[error("malformed start line: {0}")]
    /// A start line that is neither a request line nor a status line.
    BadStartLine(&'static str),
    #[error("SIP version not supported (only SIP/2.0)")]
    /// A SIP version other than 2.0 (answered 505).
    VersionNotSupported,
    #[error("status code must be three digits from 100 to 699")]
    /// A status code outside 100-699.
    BadStatusCode,
    #[error("malformed method: {0}")]
    /// A method that is not a token.
    BadMethod(&'static str),
    #[error("malformed Request-URI: {0}")]
    /// A Request-URI that does not parse.
    BadRequestUri(&'static str),
    #[error("malformed header name")]
    /// A header name that is not a token.
    BadHeaderName,
    #[error("header line without a colon")]
    /// A header line without a colon.
    MissingColon,
    #[error("malformed header value: {0}")]
    /// A header value outside its grammar.
    BadValue(&'static str),
    #[error("malformed URI: {0}")]
    /// A URI in a header that does not parse.
    BadUri(&'static str),
    #[error("header may appear only once")]
    /// A header that may appear once appears twice.
    DuplicateHeader,
    #[error("mandatory header missing")]
    /// A mandatory header is missing.
    MissingHeader,
    #[error("CSeq method does not match the request method")]
    /// The CSeq method differs from the request method.
    CSeqMethodMismatch,
    #[error("number out of range: {0}")]
    /// A number too large for its field.
    ScalarOverflow(&'static str),
    #[error("Content-Length {declared} exceeds the {available} octets present")]
    /// Content-Length larger than the body that arrived.
    BodyTruncated {
        /// Content-Length.
        declared: usize,
        /// Bytes present.
        available: usize,
    },
    #[error("Content-Length is mandatory on a stream transport")]
    /// No Content-Length on a stream transport.
    MissingContentLength,
}

/// A refused message: what was wrong, where (byte offset from the start of the input),
/// in which header, and whether the refused message was a response (a server answers a
/// bad request with [`ParseError::status`] and silently drops a bad response, RFC 3261
/// section 16.7 and RFC 4475 section 3.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Byte offset from the start of the input.
    pub offset: usize,
    /// The header concerned, if any.
    pub header: Option<String>,
    /// The refused message was a response (dropped, never answered).
    pub is_response: bool,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        ParseError {
            kind,
            offset,
            header: None,
            is_response: false,
        }
    }

    pub(crate) fn in_header(mut self, name: &str) -> Self {
        if self.header.is_none() {
            self.header = Some(name.to_owned());
        }
        self
    }

    /// The status code a server answers a request refused for this reason with.
    pub fn status(&self) -> u16 {
        match &self.kind {
            ErrorKind::Limit { key, .. } => match *key {
                "limits.max_message_size" | "limits.max_body_size" => 413,
                "limits.max_via" => 483,
                _ => 400,
            },
            ErrorKind::RequestUriTooLong { .. } => 414,
            ErrorKind::VersionNotSupported => 505,
            _ => 400,
        }
    }

    /// The standard reason phrase for [`ParseError::status`].
    pub fn reason_phrase(&self) -> &'static str {
        crate::reason_phrase(self.status())
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.header {
            Some(h) => write!(f, "{}: {} (at byte {})", h, self.kind, self.offset),
            None => write!(f, "{} (at byte {})", self.kind, self.offset),
        }
    }
}

impl std::error::Error for ParseError {}
