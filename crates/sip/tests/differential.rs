//! Differential test against `rsip` (a dev-dependency): which corpus messages the two
//! parsers disagree on, and why Palisade's side is the one we keep. The list is asserted,
//! so a change on either side shows up here.
use palisade_sip::{parse_datagram, Limits};

const LAZY: &str = "rsip types headers lazily, so header grammar is not checked at parse time; RFC 4475 3.1.2 says invalid: Palisade right";
const SEMANTIC: &str = "semantic check rsip does not make (Content-Length vs body, duplicate or missing mandatory headers, CSeq method): Palisade right";
const GRAMMAR: &str = "valid per RFC 3261 grammar (folding, odd whitespace, unusual token/escaped characters, unknown R-URI scheme): rsip wrong";
const IPV6: &str =
    "IPv6 reference in the Request-URI or Via is valid (RFC 5118); rsip refuses it: rsip wrong";

/// (file, palisade accepts, rsip accepts, which side is right and why)
const DISAGREEMENTS: &[(&str, bool, bool, &str)] = &[
    ("rfc4475/badaspec.dat", false, true, LAZY),
    ("rfc4475/baddate.dat", false, true, LAZY),
    ("rfc4475/baddn.dat", false, true, LAZY),
    ("rfc4475/badinv01.dat", false, true, LAZY),
    ("rfc4475/clerr.dat", false, true, SEMANTIC),
    ("rfc4475/esc01.dat", true, false, GRAMMAR),
    ("rfc4475/esc02.dat", true, false, GRAMMAR),
    ("rfc4475/insuf.dat", false, true, SEMANTIC),
    ("rfc4475/intmeth.dat", true, false, GRAMMAR),
    ("rfc4475/longreq.dat", true, false, GRAMMAR),
    ("rfc4475/ltgtruri.dat", false, true, LAZY),
    ("rfc4475/mcl01.dat", false, true, SEMANTIC),
    ("rfc4475/mismatch01.dat", false, true, SEMANTIC),
    ("rfc4475/multi01.dat", false, true, SEMANTIC),
    ("rfc4475/ncl.dat", false, true, LAZY),
    ("rfc4475/quotbal.dat", false, true, LAZY),
    ("rfc4475/regbadct.dat", false, true, LAZY),
    ("rfc4475/scalarlg.dat", false, true, LAZY),
    ("rfc4475/semiuri.dat", true, false, GRAMMAR),
    ("rfc4475/unkscm.dat", true, false, GRAMMAR),
    ("rfc4475/wsinv.dat", true, false, GRAMMAR),
    ("rfc5118/ipv6-correct-abnf-2-colons", true, false, IPV6),
    ("rfc5118/ipv6-good", true, false, IPV6),
    ("rfc5118/ipv6-in-sdp", true, false, IPV6),
    ("rfc5118/mult-ip-in-sdp", true, false, IPV6),
    ("rfc5118/port-ambiguous", true, false, IPV6),
    ("rfc5118/port-unambiguous", true, false, IPV6),
    ("rfc5118/via-received-param-no-delim", true, false, IPV6),
    ("rfc5118/via-received-param-with-delim", true, false, IPV6),
];

#[test]
fn disagreements_with_rsip_are_the_documented_ones() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus");
    let mut found = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        let mut names: Vec<_> = std::fs::read_dir(format!("{dir}/{sub}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let b = std::fs::read(format!("{dir}/{sub}/{n}")).unwrap();
            let ours = parse_datagram(&b, &Limits::default()).is_ok();
            let theirs = rsip::SipMessage::try_from(b.as_slice()).is_ok();
            if ours != theirs {
                found.push((format!("{sub}/{n}"), ours, theirs));
            }
        }
    }
    for f in &found {
        println!("{:?}", f);
    }
    let documented: Vec<_> = DISAGREEMENTS
        .iter()
        .map(|d| (d.0.to_string(), d.1, d.2))
        .collect();
    assert_eq!(found, documented);
}
