//! Unit tests with hand-built packets (layouts from RFC 3550 §5.1 and §6.4–6.6, RFC 4585
//! §6, RFC 3611 §3) and a simulated clock.

mod gate;
mod ports;
mod rtcp;
mod rtp;
mod stream;

/// An RTP packet: version 2, no CSRC, no extension, `payload` bytes of 0xd5.
pub(crate) fn rtp(pt: u8, seq: u16, ssrc: u32, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + payload, 0xd5);
    p
}

/// An RTCP sub-packet: header with `count` and `pt`, then `body` (a multiple of 4).
pub(crate) fn rtcp(count: u8, pt: u8, body: &[u8]) -> Vec<u8> {
    assert!(
        body.len().is_multiple_of(4),
        "test packet body must be whole words"
    );
    let words = u16::try_from(body.len() / 4).unwrap();
    let mut p = vec![0x80 | count, pt];
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// One report block (RFC 3550 §6.4.1) about `ssrc`.
pub(crate) fn report_block(ssrc: u32) -> Vec<u8> {
    let mut b = ssrc.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x01, 0, 0, 3]); // fraction lost, cumulative lost
    b.extend_from_slice(&0x0001_2345u32.to_be_bytes()); // extended highest seq
    b.extend_from_slice(&17u32.to_be_bytes()); // jitter
    b.extend_from_slice(&0xdead_beefu32.to_be_bytes()); // LSR
    b.extend_from_slice(&0x0000_1000u32.to_be_bytes()); // DLSR
    b
}

/// An SR from `ssrc` with one report block.
pub(crate) fn sr(ssrc: u32) -> Vec<u8> {
    let mut body = ssrc.to_be_bytes().to_vec();
    body.extend_from_slice(&[0xe8, 0x2f, 0x4b, 0x1c, 0x80, 0, 0, 0]); // NTP
    body.extend_from_slice(&160_000u32.to_be_bytes()); // RTP timestamp
    body.extend_from_slice(&1000u32.to_be_bytes()); // packets
    body.extend_from_slice(&160_000u32.to_be_bytes()); // octets
    body.extend_from_slice(&report_block(0x0bad_cafe));
    rtcp(1, 200, &body)
}

/// An RR from `ssrc` with no report block.
pub(crate) fn rr(ssrc: u32) -> Vec<u8> {
    rtcp(0, 201, &ssrc.to_be_bytes())
}

/// An SDES with one chunk holding a CNAME item.
pub(crate) fn sdes_cname(ssrc: u32, cname: &[u8]) -> Vec<u8> {
    let mut body = ssrc.to_be_bytes().to_vec();
    body.push(1);
    body.push(u8::try_from(cname.len()).unwrap());
    body.extend_from_slice(cname);
    body.push(0); // END
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    rtcp(1, 202, &body)
}

/// A PLI (RFC 4585 §6.3.1): PSFB, FMT 1, no FCI.
pub(crate) fn pli(sender: u32, media: u32) -> Vec<u8> {
    let mut body = sender.to_be_bytes().to_vec();
    body.extend_from_slice(&media.to_be_bytes());
    rtcp(1, 206, &body)
}

pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
