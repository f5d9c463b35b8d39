//! parse → write → parse: whatever the parser accepts must write a canonical form that
//! parses back to the same model and is a fixed point. Any panic is a finding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_sip::{frame_stream, parse_datagram, Frame, Limits, Message};

fn check(m: &Message<'_>) {
    // The canonical form can be longer than the input (expanded compact names, the
    // Content-Length line), so it is re-read with room to spare.
    let roomy = Limits {
        max_message_size: usize::MAX / 2,
        max_header_line: usize::MAX / 2,
        ..Limits::default()
    };
    let w = m.to_bytes();
    let m2 = match parse_datagram(&w, &roomy) {
        Ok(m2) => m2,
        Err(e) => panic!(
            "canonical form does not parse: {e}\n{}",
            String::from_utf8_lossy(&w)
        ),
    };
    assert_eq!(m, &m2, "model changed through the canonical form");
    assert_eq!(w, m2.to_bytes(), "canonical form is not a fixed point");
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(m) = parse_datagram(data, &limits) {
        check(&m);
        let owned = m.clone().into_owned();
        assert_eq!(m, owned);
    }
    let mut buf = data;
    for _ in 0..8 {
        match frame_stream(buf, &limits) {
            Ok(Frame::Message { message, rest, .. }) => {
                check(&message);
                buf = rest;
            }
            Ok(Frame::KeepAlive { consumed }) => buf = &buf[consumed..],
            Ok(Frame::Incomplete) | Err(_) => break,
        }
    }
});
