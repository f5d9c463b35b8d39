//! The peer corpus: every RFC 4475 and RFC 5118 torture message in `tests/corpus`,
//! each with the verdict Palisade (registrar + stateful proxy) gives at the message layer
//! (parse + stateless sanity checks), its RFC section and why.
//!
//! Rows marked `Core` need registrar/proxy logic that a later layer applies; the verdict
//! asserted here is the message-layer one, and the note says what the core must add.
use std::path::PathBuf;

use palisade_sip::{parse_datagram, sanity, Limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    /// Parsed and passes the stateless checks.
    Accept,
    /// A request refused with this status.
    Reject(u16),
    /// A malformed response: dropped, never answered.
    Drop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// The message layer gives the final answer.
    Final,
    /// The core (registrar / proxy) tightens this row; see the reason.
    Core,
}
use Layer::*;
use V::*;

const ROWS: &[(&str, &str, V, Layer, &str)] = &[
    // RFC 4475 3.1.1: valid messages
    ("rfc4475/wsinv.dat", "3.1.1.1", Accept, Final, "short tortuous INVITE: folding, odd whitespace and case, all valid"),
    ("rfc4475/intmeth.dat", "3.1.1.2", Accept, Final, "unusual but legal characters in method, URI, quoted-pairs with control characters"),
    ("rfc4475/esc01.dat", "3.1.1.3", Accept, Final, "valid %-escapes in URIs"),
    ("rfc4475/escnull.dat", "3.1.1.4", Accept, Final, "%00 escaped NUL in a URI user part is legal"),
    ("rfc4475/esc02.dat", "3.1.1.5", Accept, Final, "escapes where they are not escapes (method, header name) are just characters"),
    ("rfc4475/lwsdisp.dat", "3.1.1.6", Accept, Final, "no whitespace between display name and <"),
    ("rfc4475/longreq.dat", "3.1.1.7", Accept, Final, "long values and 34 Vias, all within the default limits"),
    ("rfc4475/dblreq.dat", "3.1.1.8", Accept, Final, "datagram: octets beyond Content-Length are ignored"),
    ("rfc4475/semiuri.dat", "3.1.1.9", Accept, Final, "';' inside the user part of the Request-URI"),
    ("rfc4475/transports.dat", "3.1.1.10", Accept, Final, "unknown transport tokens in Via are legal"),
    ("rfc4475/mpart01.dat", "3.1.1.11", Accept, Core, "multipart body with binary part; the shield (offer policy) decides about the body"),
    ("rfc4475/unreason.dat", "3.1.1.12", Accept, Final, "UTF-8 reason phrase"),
    ("rfc4475/noreason.dat", "3.1.1.13", Accept, Final, "empty reason phrase"),
    // RFC 4475 3.1.2: invalid messages
    ("rfc4475/badinv01.dat", "3.1.2.1", Reject(400), Final, "empty Via and Contact parameters (;;,;,,)"),
    ("rfc4475/clerr.dat", "3.1.2.2", Reject(400), Final, "Content-Length 9999 larger than the datagram's body"),
    ("rfc4475/ncl.dat", "3.1.2.3", Reject(400), Final, "negative Content-Length"),
    ("rfc4475/scalar02.dat", "3.1.2.4", Reject(400), Final, "CSeq above 2^31, Max-Forwards 300, Expires overflow"),
    ("rfc4475/scalarlg.dat", "3.1.2.5", Drop, Final, "response with CSeq overflow and a 4-digit warn-code: dropped"),
    ("rfc4475/quotbal.dat", "3.1.2.6", Reject(400), Final, "unterminated quoted display name"),
    ("rfc4475/ltgtruri.dat", "3.1.2.7", Reject(400), Final, "Request-URI enclosed in <>"),
    ("rfc4475/lwsruri.dat", "3.1.2.8", Reject(400), Final, "whitespace inside the Request-URI"),
    ("rfc4475/lwsstart.dat", "3.1.2.9", Reject(400), Final, "several spaces between request-line elements"),
    ("rfc4475/trws.dat", "3.1.2.10", Reject(400), Final, "trailing whitespace after SIP/2.0: RFC allows either; strict parser refuses"),
    ("rfc4475/escruri.dat", "3.1.2.11", Reject(400), Final, "URI headers (?Route=...) in the Request-URI"),
    ("rfc4475/baddate.dat", "3.1.2.12", Reject(400), Final, "Date not in GMT"),
    ("rfc4475/regbadct.dat", "3.1.2.13", Reject(400), Final, "Contact with URI headers not in <> (addr-spec with '?')"),
    ("rfc4475/badaspec.dat", "3.1.2.14", Reject(400), Final, "whitespace inside <> around the URI"),
    ("rfc4475/baddn.dat", "3.1.2.15", Reject(400), Final, "unquoted display name with a comma"),
    ("rfc4475/badvers.dat", "3.1.2.16", Reject(505), Final, "SIP/7.0"),
    ("rfc4475/mismatch01.dat", "3.1.2.17", Reject(400), Final, "CSeq method INVITE in an OPTIONS request"),
    ("rfc4475/mismatch02.dat", "3.1.2.18", Reject(400), Final, "CSeq method INVITE in a NEWMETHOD request"),
    ("rfc4475/bigcode.dat", "3.1.2.19", Drop, Final, "status code 4294967301: malformed response dropped"),
    // RFC 4475 3.2: transaction layer
    ("rfc4475/badbranch.dat", "3.2.1", Accept, Core, "branch without the magic cookie is legal; the transaction layer matches it RFC 2543 style"),
    // RFC 4475 3.3: application layer
    ("rfc4475/insuf.dat", "3.3.1", Reject(400), Final, "missing To, From, Call-ID (and Max-Forwards)"),
    ("rfc4475/unkscm.dat", "3.3.2", Reject(416), Final, "unknown Request-URI scheme"),
    ("rfc4475/novelsc.dat", "3.3.3", Reject(416), Final, "known but non-routable Request-URI scheme (soap.beep)"),
    ("rfc4475/unksm2.dat", "3.3.4", Accept, Core, "non-SIP To/From/Contact schemes parse; the registrar answers 400 (server test torture_rows_tightened_by_the_server)"),
    ("rfc4475/bext01.dat", "3.3.5", Reject(420), Final, "Proxy-Require lists unsupported extensions"),
    ("rfc4475/invut.dat", "3.3.6", Accept, Core, "unknown body type parses; the shield must answer 415 before a callee sees it"),
    ("rfc4475/regaut01.dat", "3.3.7", Accept, Core, "unknown auth scheme parses; the registrar challenges with 401 (server test torture_rows_tightened_by_the_server)"),
    ("rfc4475/multi01.dat", "3.3.8", Reject(400), Final, "duplicate CSeq, Call-ID, To, From, Max-Forwards"),
    ("rfc4475/mcl01.dat", "3.3.9", Reject(400), Final, "two Content-Length headers"),
    ("rfc4475/bcast.dat", "3.3.10", Accept, Core, "response with a broadcast Via sent-by: well formed; the proxy drops it (top Via is not its own)"),
    ("rfc4475/zeromf.dat", "3.3.11", Accept, Core, "Max-Forwards 0 parses; the proxy answers 483 (server test torture_rows_tightened_by_the_server)"),
    ("rfc4475/cparam01.dat", "3.3.12", Accept, Core, "unknown Contact header parameter; registrar stores the binding"),
    ("rfc4475/cparam02.dat", "3.3.13", Accept, Core, "unknown Contact URI parameter; registrar stores the binding"),
    ("rfc4475/regescrt.dat", "3.3.14", Accept, Core, "Contact URI with an escaped header in <>: legal; registrar stores it"),
    ("rfc4475/sdp01.dat", "3.3.15", Accept, Final, "Accept lists an unknown type; a proxy forwards"),
    // RFC 4475 3.4
    ("rfc4475/inv2543.dat", "3.4.1", Accept, Core, "RFC 2543 INVITE: no Max-Forwards, no branch; the proxy matches it by Call-ID/CSeq/tag and adds Max-Forwards 69"),
    // RFC 5118
    ("rfc5118/ipv6-good", "4.1", Accept, Final, "IPv6 reference in Request-URI, Via and Contact"),
    ("rfc5118/port-ambiguous", "4.2", Accept, Final, "[2001:db8::10:5070] is a valid IPv6 address without a port"),
    ("rfc5118/port-unambiguous", "4.2", Accept, Final, "[2001:db8::10]:5070 carries a port"),
    ("rfc5118/ipv6-bad", "4.3", Reject(400), Final, "IPv6 address without [] in the Request-URI"),
    ("rfc5118/via-received-param-with-delim", "4.5", Accept, Final, "received=[v6] accepted for robustness as RFC 5118 asks"),
    ("rfc5118/via-received-param-no-delim", "4.5", Accept, Final, "received=v6 without brackets is the RFC 3261 form"),
    ("rfc5118/ipv4-mapped-ipv6", "4.7", Accept, Final, "IPv4-mapped IPv6 addresses; body longer than Content-Length is cut (datagram)"),
    ("rfc5118/ipv6-in-sdp", "4.6", Accept, Final, "IPv6 in SDP; this copy's body (251) exceeds Content-Length (241): cut, as a datagram"),
    ("rfc5118/mult-ip-in-header", "4.8", Accept, Final, "IPv4 and IPv6 mixed across Vias"),
    ("rfc5118/mult-ip-in-sdp", "4.9", Accept, Final, "IPv4 and IPv6 in SDP; this copy's body (189) exceeds Content-Length (181): cut"),
    ("rfc5118/ipv6-bug-abnf-3-colons", "4.10", Reject(400), Final, "2001:db8:::192.0.2.1 has three colons: invalid"),
    ("rfc5118/ipv6-correct-abnf-2-colons", "4.10", Accept, Final, "2001:db8::192.0.2.1 is valid"),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

fn verdict(bytes: &[u8]) -> (V, String) {
    match parse_datagram(bytes, &Limits::default()) {
        Err(e) if e.is_response => (Drop, e.to_string()),
        Err(e) => (Reject(e.status()), e.to_string()),
        Ok(m) => match sanity::check_request(&m) {
            Ok(()) => (Accept, String::new()),
            Err(r) => (Reject(r.status), r.reason.to_string()),
        },
    }
}

#[test]
fn every_corpus_file_has_a_verdict_and_meets_it() {
    let dir = corpus_dir();
    let mut files = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("corpus directory tests/corpus") {
            let e = e.expect("dir entry");
            files.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
        }
    }
    files.sort();
    assert_eq!(files.len(), 61, "the corpus has 61 files");
    let mut failures = Vec::new();
    for f in &files {
        let Some(row) = ROWS.iter().find(|r| r.0 == f) else {
            failures.push(format!("{f}: no verdict in the table"));
            continue;
        };
        let bytes = std::fs::read(dir.join(f)).expect("read corpus file");
        let (got, why) = verdict(&bytes);
        if got != row.2 {
            failures.push(format!(
                "{f} (RFC §{}): expected {:?}, got {:?} ({why}); {}",
                row.1, row.2, got, row.4
            ));
        }
    }
    assert_eq!(ROWS.len(), 61, "one row per file");
    assert!(
        failures.is_empty(),
        "corpus verdicts:\n{}",
        failures.join("\n")
    );
}

/// Every accepted corpus message re-parses from its canonical form to the same model,
/// and the canonical form is a fixed point.
#[test]
fn accepted_corpus_messages_round_trip() {
    let dir = corpus_dir();
    for row in ROWS.iter().filter(|r| r.2 == Accept) {
        let bytes = std::fs::read(dir.join(row.0)).expect("read");
        let m = parse_datagram(&bytes, &Limits::default()).expect("accepted");
        let w = m.to_bytes();
        let m2 = parse_datagram(&w, &Limits::default()).unwrap_or_else(|e| {
            panic!(
                "{}: canonical form does not parse: {e}\n{}",
                row.0,
                String::from_utf8_lossy(&w)
            )
        });
        assert_eq!(m, m2, "{}: model changed through the canonical form", row.0);
        assert_eq!(
            w,
            m2.to_bytes(),
            "{}: canonical form is not a fixed point",
            row.0
        );
    }
}

#[test]
fn core_rows_are_marked() {
    // Keeps the list of rows the registrar/proxy issue must tighten visible and stable.
    let core: Vec<&str> = ROWS.iter().filter(|r| r.3 == Core).map(|r| r.0).collect();
    assert!(core.contains(&"rfc4475/zeromf.dat"));
    assert!(core.contains(&"rfc4475/invut.dat"));
    assert!(core.contains(&"rfc4475/unksm2.dat"));
}

/// `Received::unfolded` (what lets the wire fingerprint stop after the last core header)
/// says that no line of the header section begins with a blank: checked on every corpus
/// message that parses (wsinv.dat folds) and on a message folded after its last header.
#[test]
fn the_parse_notes_whether_a_header_line_is_folded() {
    let mut raws: Vec<Vec<u8>> = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        for e in std::fs::read_dir(corpus_dir().join(sub)).expect("tests/corpus") {
            raws.push(std::fs::read(e.expect("entry").path()).expect("corpus file"));
        }
    }
    let invite = |last: &[u8]| {
        [
            b"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:a@h>\r\n".as_slice(),
            last,
            b"Content-Length: 0\r\n\r\n",
        ]
        .concat()
    };
    raws.push(invite(b"Subject: a\r\n\tb\r\n"));
    raws.push(invite(b"Subject: a b\r\n"));
    let (mut folded, mut unfolded) = (0, 0);
    for raw in &raws {
        let Ok(m) = parse_datagram(raw, &Limits::default()) else {
            continue;
        };
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a parsed message has an empty line");
        // (the parser skips empty lines before the start line: they are not folds)
        let lead = raw
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let head = &raw[lead.min(head_end)..head_end + 2];
        let folds = head
            .windows(3)
            .any(|w| matches!(w, [b'\r', b'\n', b' ' | b'\t']));
        assert_eq!(
            m.received.unfolded,
            !folds,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
        folded += usize::from(folds);
        unfolded += usize::from(!folds);
    }
    assert!(
        folded >= 2 && unfolded > 30,
        "{folded} folded, {unfolded} not"
    );
}
