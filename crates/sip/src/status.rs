//! Status codes and their reason phrases: the one table every crate uses (the message
//! layer's answers, the shield's refusals, the proxy's local answers, `inspect`).

/// A SIP response status code (RFC 3261 section 21 and the extensions Palisade sends or
/// relays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// The standard reason phrase; for a code without one, the phrase of its class
    /// (RFC 3261 section 21: a client treats an unknown code as x00 of its class).
    pub fn reason_phrase(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            199 => "Early Dialog Terminated",
            200 => "OK",
            202 => "Accepted",
            204 => "No Notification",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            305 => "Use Proxy",
            380 => "Alternative Service",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            410 => "Gone",
            412 => "Conditional Request Failed",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            417 => "Unknown Resource-Priority",
            420 => "Bad Extension",
            421 => "Extension Required",
            422 => "Session Interval Too Small",
            423 => "Interval Too Brief",
            428 => "Use Identity Header",
            429 => "Provide Referrer Identity",
            430 => "Flow Failed",
            433 => "Anonymity Disallowed",
            436 => "Bad Identity-Info",
            437 => "Unsupported Certificate",
            438 => "Invalid Identity Header",
            439 => "First Hop Lacks Outbound Support",
            440 => "Max-Breadth Exceeded",
            469 => "Bad Info Package",
            470 => "Consent Needed",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            484 => "Address Incomplete",
            485 => "Ambiguous",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            489 => "Bad Event",
            491 => "Request Pending",
            493 => "Undecipherable",
            494 => "Security Agreement Required",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            555 => "Push Notification Service Not Supported",
            580 => "Precondition Failure",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            607 => "Unwanted",
            608 => "Rejected",
            c => match c / 100 {
                1 => "Trying",
                2 => "OK",
                3 => "Multiple Choices",
                4 => "Bad Request",
                5 => "Server Internal Error",
                _ => "Busy Everywhere",
            },
        }
    }
}

/// The reason phrase of a status code (see [`StatusCode::reason_phrase`]).
pub fn reason_phrase(code: u16) -> &'static str {
    StatusCode(code).reason_phrase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases() {
        assert_eq!(reason_phrase(488), "Not Acceptable Here");
        assert_eq!(reason_phrase(407), "Proxy Authentication Required");
        assert_eq!(reason_phrase(499), "Bad Request");
        assert_eq!(reason_phrase(699), "Busy Everywhere");
    }
}
