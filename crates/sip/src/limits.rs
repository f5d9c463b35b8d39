//! Every dimension of a message is bounded. Each bound is a named constant (the default),
//! a field of [`Limits`] and a configuration key (`limits.<field>`), and the error raised
//! when it is exceeded names the key.

/// Bounds applied while parsing. The defaults are generous for real phones and browsers
/// (a WebRTC INVITE with full ICE candidates is about 6 KiB) and small enough that a
/// hostile peer cannot make the server hold or scan much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message, start line to end of body (`limits.max_message_size`). 413.
    pub max_message_size: usize,
    /// Most header values: each Via, Contact, Route, ... value and each other header line
    /// counts once; Content-Length is not counted (`limits.max_headers`). 400.
    pub max_headers: usize,
    /// Longest header line, name to end of value, including folded continuations
    /// (`limits.max_header_line`). 400.
    pub max_header_line: usize,
    /// Most Via values across all Via headers (`limits.max_via`). 483: this many Vias
    /// means this many hops, so the answer is the hop-count one.
    pub max_via: usize,
    /// Longest URI (`limits.max_uri_length`). 414 for the Request-URI, 400 elsewhere.
    pub max_uri_length: usize,
    /// Most parameters on one header value or one URI (`limits.max_params`). 400.
    pub max_params: usize,
    /// Largest body (`limits.max_body_size`). 413.
    pub max_body_size: usize,
}

impl Limits {
    /// Default for `limits.max_message_size`: 65,535 octets, the largest UDP payload.
    pub const MAX_MESSAGE_SIZE: usize = 65_535;
    /// Default for `limits.max_headers`.
    pub const MAX_HEADERS: usize = 128;
    /// Default for `limits.max_header_line`.
    pub const MAX_HEADER_LINE: usize = 8_192;
    /// Default for `limits.max_via`: 70, the initial Max-Forwards (RFC 3261 section 8.1.1.6).
    pub const MAX_VIA: usize = 70;
    /// Default for `limits.max_uri_length`.
    pub const MAX_URI_LENGTH: usize = 2_048;
    /// Default for `limits.max_params`.
    pub const MAX_PARAMS: usize = 32;
    /// Default for `limits.max_body_size`.
    pub const MAX_BODY_SIZE: usize = 32_768;

    /// The configuration keys, in the order of the fields.
    pub const KEYS: [&'static str; 7] = [
        "limits.max_message_size",
        "limits.max_headers",
        "limits.max_header_line",
        "limits.max_via",
        "limits.max_uri_length",
        "limits.max_params",
        "limits.max_body_size",
    ];

    /// Sets one limit by its configuration key (with or without the `limits.` prefix).
    /// Returns an error naming the key when it is unknown or the value is zero.
    pub fn set(&mut self, key: &str, value: usize) -> Result<(), String> {
        if value == 0 {
            return Err(format!("limit {key} must be at least 1"));
        }
        let field = key.strip_prefix("limits.").unwrap_or(key);
        let slot = match field {
            "max_message_size" => &mut self.max_message_size,
            "max_headers" => &mut self.max_headers,
            "max_header_line" => &mut self.max_header_line,
            "max_via" => &mut self.max_via,
            "max_uri_length" => &mut self.max_uri_length,
            "max_params" => &mut self.max_params,
            "max_body_size" => &mut self.max_body_size,
            _ => {
                return Err(format!(
                    "unknown limit {key}; known limits: {}",
                    Self::KEYS.join(", ")
                ))
            }
        };
        *slot = value;
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: Self::MAX_MESSAGE_SIZE,
            max_headers: Self::MAX_HEADERS,
            max_header_line: Self::MAX_HEADER_LINE,
            max_via: Self::MAX_VIA,
            max_uri_length: Self::MAX_URI_LENGTH,
            max_params: Self::MAX_PARAMS,
            max_body_size: Self::MAX_BODY_SIZE,
        }
    }
}
