use std::fmt;

/// Why a message was refused. Each kind maps to the SIP status code a server answers with
/// ([`ParseError::status`]); the `&'static str` details are fixed phrases, so a log line or
/// a Warning header can carry them without echoing attacker bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("empty message")]
    Empty,
    #[error("limit {key} exceeded (maximum {max})")]
    Limit { key: &'static str, max: usize },
    #[error("Request-URI longer than limits.max_uri_length (maximum {max})")]
    RequestUriTooLong { max: usize },
    #[error("no empty line ends the header section")]
    NoHeaderEnd,
    #[error("NUL byte")]
    NulByte,
    #[error("control character 0x{0:02x}")]
    ControlChar(u8),
    #[error("bare CR or LF: lines must end with CRLF")]
    BareLineEnding,
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("malformed start line: {0}")]
    BadStartLine(&'static str),
    #[error("SIP version not supported (only SIP/2.0)")]
    VersionNotSupported,
    #[error("status code must be three digits from 100 to 699")]
    BadStatusCode,
    #[error("malformed method: {0}")]
    BadMethod(&'static str),
    #[error("malformed Request-URI: {0}")]
    BadRequestUri(&'static str),
    #[error("malformed header name")]
    BadHeaderName,
    #[error("header line without a colon")]
    MissingColon,
    #[error("malformed header value: {0}")]
    BadValue(&'static str),
    #[error("malformed URI: {0}")]
    BadUri(&'static str),
    #[error("header may appear only once")]
    DuplicateHeader,
    #[error("mandatory header missing")]
    MissingHeader,
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    #[error("number out of range: {0}")]
    ScalarOverflow(&'static str),
    #[error("Content-Length {declared} exceeds the {available} octets present")]
    BodyTruncated { declared: usize, available: usize },
    #[error("Content-Length is mandatory on a stream transport")]
    MissingContentLength,
}

/// A refused message: what was wrong, where (byte offset from the start of the input),
/// in which header, and whether the refused message was a response (a server answers a
/// bad request with [`ParseError::status`] and silently drops a bad response, RFC 3261
/// section 16.7 and RFC 4475 section 3.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub offset: usize,
    pub header: Option<String>,
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
