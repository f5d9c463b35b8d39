//! SDP parse → canonical write → parse: whatever parses must round-trip to the same
//! model and a fixed point. Any panic is a finding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_sdp::{parse, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse(data, &Limits::default()) {
        let c = s.to_string_canonical();
        let roomy = Limits {
            max_body_size: usize::MAX / 2,
            max_line_length: usize::MAX / 2,
            ..Limits::default()
        };
        let again = match parse(c.as_bytes(), &roomy) {
            Ok(a) => a,
            Err(e) => panic!("canonical SDP does not parse: {e}\n{c}"),
        };
        assert_eq!(s, again);
        assert_eq!(c, again.to_string_canonical());
    }
});
