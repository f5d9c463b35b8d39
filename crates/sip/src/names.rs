//! Header names: the table of known names (canonical spelling, compact form, kind) and
//! the lookups of a name received.
use crate::header::Kind;

/// Declares the table of known header names (canonical spelling, compact form, kind) and
/// an exact-spelling matcher over the same list: most messages spell every name
/// canonically, and a `match` on string literals costs a length switch and one compare,
/// where the case-insensitive scan of the table costs one compare per entry.
macro_rules! header_names {
    ($table:ident, $exact:ident, $( ($full:literal, $compact:literal, $kind:expr) ),* $(,)?) => {
        const $table: &[(&str, &str, Kind)] = &[ $( ($full, $compact, $kind) ),* ];
        fn $exact(name: &str) -> Option<(Kind, &'static str)> {
            match name {
                $( $full => Some(($kind, $full)), )*
                _ => None,
            }
        }
    };
}

// (canonical name, compact form, kind). Looked up case-insensitively.
header_names!(
    TYPED,
    exact_typed,
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
);

// Untyped headers whose canonical spelling is known (with compact forms where defined).
header_names!(
    KNOWN_OTHER,
    exact_other,
    ("Accept", "", Kind::Other),
    ("Accept-Contact", "a", Kind::Other),
    ("Accept-Encoding", "", Kind::Other),
    ("Accept-Language", "", Kind::Other),
    ("Alert-Info", "", Kind::Other),
    ("Allow-Events", "u", Kind::Other),
    ("Authentication-Info", "", Kind::Other),
    ("Call-Info", "", Kind::Other),
    ("Content-Disposition", "", Kind::Other),
    ("Content-Language", "", Kind::Other),
    ("Error-Info", "", Kind::Other),
    ("Event", "o", Kind::Other),
    ("Identity", "y", Kind::Other),
    ("Identity-Info", "n", Kind::Other),
    ("In-Reply-To", "", Kind::Other),
    ("MIME-Version", "", Kind::Other),
    ("Min-SE", "", Kind::Other),
    ("Organization", "", Kind::Other),
    ("P-Asserted-Identity", "", Kind::Other),
    ("P-Preferred-Identity", "", Kind::Other),
    ("Priority", "", Kind::Other),
    ("Privacy", "", Kind::Other),
    ("RAck", "", Kind::Other),
    ("Reason", "", Kind::Other),
    ("Refer-To", "r", Kind::Other),
    ("Referred-By", "b", Kind::Other),
    ("Reject-Contact", "j", Kind::Other),
    ("Replaces", "", Kind::Other),
    ("Reply-To", "", Kind::Other),
    ("Request-Disposition", "d", Kind::Other),
    ("Retry-After", "", Kind::Other),
    ("RSeq", "", Kind::Other),
    ("Session-Expires", "x", Kind::Other),
    ("Subject", "s", Kind::Other),
    ("Subscription-State", "", Kind::Other),
    ("Timestamp", "", Kind::Other),
    ("Unsupported", "", Kind::Other),
);

pub(crate) fn lookup(name: &str) -> (Kind, Option<&'static str>) {
    if let Some((kind, full)) = exact_typed(name).or_else(|| exact_other(name)) {
        return (kind, Some(full));
    }
    for &(full, compact, kind) in TYPED.iter().chain(KNOWN_OTHER) {
        if name.eq_ignore_ascii_case(full)
            || (!compact.is_empty() && name.eq_ignore_ascii_case(compact))
        {
            return (kind, Some(full));
        }
    }
    (Kind::Other, None)
}

/// The header a line names when it starts with a typed header's canonical name and the
/// colon right after it (as nearly every line does): the colon's offset, the kind and
/// the canonical name. What `parse::header_name` then [`lookup`] give for such a line,
/// without the walk over the name and the comparisons of the lookup: the first byte
/// picks the few names to compare, and each comparison is of a fixed length.
#[inline]
pub(crate) fn canonical_prefix(line: &[u8]) -> Option<(usize, Kind, &'static str)> {
    macro_rules! names {
        ($( $full:literal => $kind:expr ),* $(,)?) => {{
            $(
                if line.starts_with(concat!($full, ":").as_bytes()) {
                    return Some(($full.len(), $kind, $full));
                }
            )*
            None
        }};
    }
    match line.first()? {
        b'V' => names!("Via" => Kind::Via),
        b'F' => names!("From" => Kind::From),
        b'T' => names!("To" => Kind::To),
        b'C' => names!(
            "Call-ID" => Kind::CallId,
            "CSeq" => Kind::CSeq,
            "Contact" => Kind::Contact,
            "Content-Length" => Kind::ContentLength,
            "Content-Type" => Kind::ContentType,
            "Content-Encoding" => Kind::ContentEncoding,
        ),
        b'M' => names!("Max-Forwards" => Kind::MaxForwards, "Min-Expires" => Kind::MinExpires),
        b'R' => names!(
            "Route" => Kind::Route,
            "Record-Route" => Kind::RecordRoute,
            "Require" => Kind::Require,
        ),
        b'P' => names!(
            "Path" => Kind::Path,
            "Proxy-Authorization" => Kind::ProxyAuthorization,
            "Proxy-Authenticate" => Kind::ProxyAuthenticate,
            "Proxy-Require" => Kind::ProxyRequire,
        ),
        b'E' => names!("Expires" => Kind::Expires),
        b'A' => names!("Authorization" => Kind::Authorization, "Allow" => Kind::Allow),
        b'W' => names!("WWW-Authenticate" => Kind::WwwAuthenticate, "Warning" => Kind::Warning),
        b'S' => names!("Supported" => Kind::Supported, "Server" => Kind::Server),
        b'U' => names!("User-Agent" => Kind::UserAgent),
        b'D' => names!("Date" => Kind::Date),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_name_has_its_fast_path() {
        for &(full, _, kind) in TYPED {
            for rest in ["", " x", ":", "abc;def"] {
                let line = format!("{full}:{rest}");
                assert_eq!(
                    canonical_prefix(line.as_bytes()),
                    Some((full.len(), kind, full)),
                    "{line:?}"
                );
            }
            assert_eq!(canonical_prefix(full.as_bytes()), None, "{full:?}");
            let spaced = format!("{full} :x");
            assert_eq!(canonical_prefix(spaced.as_bytes()), None, "{spaced:?}");
        }
        for line in [
            "via:", "v:", "Vias:", "X-Via:", "", ":", "Call-Id:", "Other: x",
        ] {
            assert_eq!(canonical_prefix(line.as_bytes()), None, "{line:?}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_lookup() {
        for &(full, _, _) in TYPED.iter().chain(KNOWN_OTHER) {
            if let Some((n, kind, name)) = canonical_prefix(format!("{full}:").as_bytes()) {
                assert_eq!(lookup(full), (kind, Some(name)));
                assert_eq!(n, full.len());
            }
        }
    }
}
