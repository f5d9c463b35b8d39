//! Parsers of header values: one per typed header (RFC 3261 section 25 grammar, with
//! the bounds of [`Limits`]), and the helpers they share (parameters, name-addr,
//! credentials, dates, q-values).
use std::borrow::Cow;

use crate::error::{ErrorKind, ParseError};
use crate::header::*;
use crate::host::{dotted_quad, parse_any_host, parse_host_prefix};
use crate::limits::Limits;
use crate::scan::{
    class_run, digits_u32, find_byte, is_param_value, normalize_ws, text_value, trim_ws, Cursor,
    CREDENTIAL_VALUE, PARAM_VALUE, TOKEN, WORD,
};
use crate::uri::{parse_uri, Host, Param};

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
pub(crate) fn qvalue_millis(v: &str) -> Option<u16> {
    let b = v.as_bytes();
    let (int, frac) = match find_byte(v, b'.') {
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
    digits_u32(s).ok_or_else(|| c.err(ErrorKind::ScalarOverflow("delta-seconds above 2^32-1")))
}

/// Parses `*( SEMI generic-param )` where the value is `token / host / quoted-string`.
/// Quoted values are stored with their quotes.
#[inline]
fn parse_params<'a>(c: &mut Cursor<'a>, limits: &Limits) -> Result<Vec<Param<'a>>, ParseError> {
    if !c.eat_sep(b';') {
        return Ok(Vec::new());
    }
    // room for the usual few without growing (a first push into an empty vector goes
    // through the out-of-line growth path)
    let mut out = Vec::with_capacity(4);
    loop {
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
        if !c.eat_sep(b';') {
            return Ok(out);
        }
    }
}

fn param_value<'a>(c: &mut Cursor<'a>) -> Result<&'a str, ParseError> {
    if c.peek() == Some(b'"') {
        let start = c.pos;
        c.quoted()?;
        Ok(c.since(start))
    } else {
        let v = c.take_class(&PARAM_VALUE);
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
        // the length picks the one name a parameter can be (the names differ in it but
        // for rport and maddr) before any comparison
        let is = |name: &str| p.name.eq_ignore_ascii_case(name);
        let ok = match p.name.len() {
            6 if is("branch") => val.is_some_and(|v| class_run(v.as_bytes(), 0, &TOKEN) == v.len()),
            // RFC 3261 allows IPv4address / IPv6address; RFC 5118 section 4.5 asks
            // robust parsers to accept the bracketed form too.
            8 if is("received") => val.is_some_and(|v| {
                // (`IpAddr::from_str`: a dotted quad, or IPv6 without brackets)
                dotted_quad(v.as_bytes()).is_some()
                    || v.parse::<std::net::Ipv6Addr>().is_ok()
                    || matches!(parse_any_host(v), Some(Host::V6(_)))
            }),
            5 if is("rport") => val.is_none_or(|v| {
                !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && digits_u32(v).is_some_and(|n| n <= u32::from(u16::MAX))
            }),
            3 if is("ttl") => val.is_some_and(|v| v.len() <= 3 && v.parse::<u8>().is_ok()),
            5 if is("maddr") => val.is_some_and(|v| parse_any_host(v).is_some()),
            _ => true,
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

/// Parses a name-addr or addr-spec and appends it to `out` as the header `wrap` makes of
/// it (built where it is stored, not returned and moved: a header is large). Returns
/// whether angle brackets were used.
#[inline(never)]
fn parse_name_addr<'a>(
    c: &mut Cursor<'a>,
    limits: &Limits,
    out: &mut Vec<Header<'a>>,
    wrap: impl FnOnce(NameAddr<'a>) -> Header<'a>,
) -> Result<bool, ParseError> {
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
        // whether every gap between two words is one space: the words are then already
        // in normal form (the usual `Bob <sip:...>`) and need no second look
        let mut plain = true;
        let mut gap_plain = true;
        loop {
            let t = c.take_class(&TOKEN);
            if t.is_empty() {
                break;
            }
            plain &= gap_plain;
            end = c.pos;
            let gap = c.pos;
            c.skip_ws();
            gap_plain =
                c.pos == gap || (c.pos == gap + 1 && c.s.as_bytes().get(gap) == Some(&b' '));
        }
        if c.peek() == Some(b'<') && end > start {
            let words = c.s.get(start..end).unwrap_or("");
            display = Some(if plain {
                Cow::Borrowed(words)
            } else {
                normalize_ws(words)
            });
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
        let Some(len) = find_byte(c.rest(), b'>') else {
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
    let params = parse_params(c, limits)?;
    out.push(wrap(NameAddr {
        display,
        uri,
        params,
    }));
    Ok(angle)
}

fn expect_end(c: &mut Cursor<'_>) -> Result<(), ParseError> {
    c.skip_ws();
    if c.at_end() {
        Ok(())
    } else {
        Err(c.bad("unexpected characters after the value"))
    }
}

/// A comma-separated list of tokens, each turned into an item by `item` (a method, or
/// the token itself) as it is read.
fn token_list<'a, T>(
    c: &mut Cursor<'a>,
    allow_empty: bool,
    item: impl Fn(&'a str) -> T,
) -> Result<Vec<T>, ParseError> {
    c.skip_ws();
    if c.at_end() {
        return if allow_empty {
            Ok(Vec::new())
        } else {
            Err(c.bad("empty list"))
        };
    }
    // room for an Allow list of the usual methods without growing
    let mut v = Vec::with_capacity(8);
    loop {
        v.push(item(c.token("expected a token")?));
        if !c.eat_sep(b',') {
            break;
        }
    }
    expect_end(c)?;
    Ok(v)
}

#[inline(never)]
fn parse_credentials<'a>(
    c: &mut Cursor<'a>,
    limits: &Limits,
) -> Result<Credentials<'a>, ParseError> {
    c.skip_ws();
    let scheme = c.token("missing authentication scheme")?;
    // room for a digest response's parameters without growing (it has nine or ten)
    let mut params = Vec::with_capacity(10);
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
                let v = c.take_class(&CREDENTIAL_VALUE);
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

/// `sent-protocol` up to the transport: `SIP SLASH 2.0 SLASH` with optional whitespace
/// around the slashes.
fn sent_protocol(c: &mut Cursor<'_>) -> Result<(), ParseError> {
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
    Ok(())
}

/// Parses one header line's value into typed entries appended to `out`.
pub(crate) fn parse_value<'a>(
    kind: Kind,
    name: &'a str,
    value: &'a str,
    base: usize,
    limits: &Limits,
    out: &mut Vec<Header<'a>>,
) -> Result<(), ParseError> {
    let mut c = Cursor::new(value, base);
    match kind {
        Kind::Via => loop {
            c.skip_ws();
            // the usual spelling, exactly, goes as the general path takes it (the
            // whitespace after the second slash included)
            if c.rest().as_bytes().starts_with(b"SIP/2.0/") {
                c.pos += 8;
                c.skip_ws();
            } else {
                sent_protocol(&mut c)?;
            }
            let transport = c.token("missing transport")?;
            let before = c.pos;
            c.skip_ws();
            if c.pos == before {
                return Err(c.bad("missing whitespace before sent-by"));
            }
            let hstart = c.pos;
            let host = if c.peek() == Some(b'[') {
                let Some(len) = find_byte(c.rest(), b']') else {
                    return Err(c.bad("unterminated IPv6 reference"));
                };
                c.pos += len + 1;
                parse_any_host(c.since(hstart))
            } else {
                let (len, h) = parse_host_prefix(c.rest());
                c.pos += len;
                h
            };
            let host = host.ok_or_else(|| {
                ParseError::new(ErrorKind::BadValue("invalid sent-by host"), base + hstart)
            })?;
            let mut port = None;
            if c.eat_sep(b':') {
                let p = c.take_while(|b| b.is_ascii_digit());
                if p.is_empty() {
                    return Err(c.bad("invalid sent-by port"));
                }
                port = Some(
                    digits_u32(p)
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| c.err(ErrorKind::ScalarOverflow("port above 65535")))?,
                );
            }
            let params = parse_params(&mut c, limits)?;
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
            if kind == Kind::From {
                parse_name_addr(&mut c, limits, out, Header::From)?;
            } else {
                parse_name_addr(&mut c, limits, out, Header::To)?;
            }
            expect_end(&mut c)?;
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
                parse_name_addr(&mut c, limits, out, |na| Header::Contact(Contact::Addr(na)))?;
                if let Some(Header::Contact(Contact::Addr(na))) = out.last() {
                    check_contact_params(na, &c)?;
                }
                if !c.eat_sep(b',') {
                    expect_end(&mut c)?;
                    break;
                }
            }
        }
        Kind::Route | Kind::RecordRoute | Kind::Path => loop {
            let wrap = match kind {
                Kind::Route => Header::Route,
                Kind::RecordRoute => Header::RecordRoute,
                _ => Header::Path,
            };
            if !parse_name_addr(&mut c, limits, out, wrap)? {
                return Err(c.bad("route URIs must be enclosed in <>"));
            }
            if !c.eat_sep(b',') {
                expect_end(&mut c)?;
                break;
            }
        },
        Kind::CallId => {
            let v = trim_ws(value);
            // word [ "@" word ] in one walk ('@' is no word character, so the first one
            // ends the first word)
            let b = v.as_bytes();
            let word_end = |from: usize| class_run(b, from, &WORD);
            let w1 = word_end(0);
            let ok = w1 > 0
                && match b.get(w1) {
                    None => true,
                    Some(b'@') => {
                        let w2 = word_end(w1 + 1);
                        w2 > w1 + 1 && w2 == b.len()
                    }
                    Some(_) => false,
                };
            if !ok {
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
            let seq = digits_u32(n).filter(|&s| s < 1 << 31).ok_or_else(|| {
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
            let v = trim_ws(value);
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(c.bad("Max-Forwards must be a number"));
            }
            let n = digits_u32(v)
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| c.err(ErrorKind::ScalarOverflow("Max-Forwards above 255")))?;
            out.push(Header::MaxForwards(n));
        }
        Kind::Expires | Kind::MinExpires => {
            let v = trim_ws(value);
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
            let params = parse_params(&mut c, limits)?;
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
        Kind::ContentEncoding => out.push(Header::ContentEncoding(token_list(
            &mut c,
            false,
            Cow::Borrowed,
        )?)),
        Kind::Supported => out.push(Header::Supported(token_list(&mut c, true, Cow::Borrowed)?)),
        Kind::Require => out.push(Header::Require(token_list(&mut c, false, Cow::Borrowed)?)),
        Kind::ProxyRequire => out.push(Header::ProxyRequire(token_list(
            &mut c,
            false,
            Cow::Borrowed,
        )?)),
        Kind::Allow => out.push(Header::Allow(token_list(&mut c, true, Method::from_token)?)),
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
            let agent = c.take_while(is_param_value);
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
            let v = text_value(value, base)?;
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
            out.push(Header::Other {
                name: Cow::Borrowed(name),
                value: text_value(value, base)?,
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
