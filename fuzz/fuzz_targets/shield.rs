//! The shield on arbitrary bodies (as SDP, as multipart/mixed, as text) and on arbitrary
//! datagrams: never a panic; whatever it accepts must be a well-formed message that the
//! shield accepts again unchanged and without removing anything (the forwarded form is
//! a fixed point, so nothing it lets through is something it would refuse).
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_shield::{apply, Policy};
use palisade_sip::{parse_datagram, Limits};

fn check(bytes: &[u8]) {
    let limits = Limits::default();
    let Ok(mut m) = parse_datagram(bytes, &limits) else {
        return;
    };
    let p = Policy::default();
    if apply(&p, &mut m, bytes).is_err() {
        return;
    }
    let out = m.to_bytes();
    let mut again = match parse_datagram(&out, &limits) {
        Ok(a) => a,
        Err(e) => panic!(
            "shielded message does not parse: {e}\n{}",
            String::from_utf8_lossy(&out)
        ),
    };
    let dropped = apply(&p, &mut again, &out).expect("shielded message refused on a second pass");
    assert!(dropped.is_empty(), "second pass removed {dropped:?}");
    assert_eq!(again.to_bytes(), out, "shielded form is not a fixed point");
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let (sel, body) = (data[0], &data[1..]);
    let ctype = match sel % 4 {
        0 => "application/sdp",
        1 => "multipart/mixed;boundary=b",
        2 => "text/plain",
        _ => {
            // the whole input as a datagram
            check(body);
            return;
        }
    };
    let method = if sel & 0x10 == 0 { "INVITE" } else { "MESSAGE" };
    let mut msg = format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    msg.extend_from_slice(body);
    check(&msg);
});
