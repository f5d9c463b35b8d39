use super::{cat, pli, report_block, rr, rtcp, sdes_cname, sr};
use crate::{check_rtcp, RtcpError, RtcpInfo, RtcpRules, SdesFault, Srtp};

fn rules() -> RtcpRules {
    RtcpRules::default()
}

fn check(p: &[u8]) -> Result<RtcpInfo, RtcpError> {
    check_rtcp(p, &rules())
}

#[test]
fn an_sr_with_sdes_is_accepted() {
    let p = cat(&[&sr(0x1111), &sdes_cname(0x1111, b"alice@192.0.2.1")]);
    let info = check(&p).unwrap();
    assert_eq!(info.packets, 2);
    assert_eq!(info.first_type, 200);
    assert_eq!(info.ssrc, 0x1111);
    assert!(!info.bye && !info.encrypted);
}

#[test]
fn an_rr_with_bye_and_reason_is_accepted() {
    let mut body = 0x2222u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[6, b'h', b'u', b'n', b'g', b' ', b'u', 0]);
    let p = cat(&[&rr(0x2222), &rtcp(1, 203, &body)]);
    let info = check(&p).unwrap();
    assert!(info.bye);
    assert_eq!(info.packets, 2);
    // BYE with no SSRC and no reason is well-formed too
    assert!(check(&cat(&[&rr(1), &rtcp(0, 203, &[])])).is_ok());
}

#[test]
fn feedback_and_xr_are_accepted() {
    // RR + SDES + PLI, RR + generic NACK, RR + FIR, RR + XR with one block
    let p = cat(&[&rr(1), &sdes_cname(1, b"x"), &pli(1, 2)]);
    assert_eq!(check(&p).unwrap().packets, 3);
    let nack = rtcp(1, 205, &[0, 0, 0, 1, 0, 0, 0, 2, 0, 7, 0, 0]);
    assert!(check(&cat(&[&rr(1), &nack])).is_ok());
    let fir = rtcp(4, 206, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 9, 0, 0, 0]);
    assert!(check(&cat(&[&rr(1), &fir])).is_ok());
    // XR: SSRC, then a receiver reference time block (BT 4, 2 words)
    let xr = rtcp(0, 207, &[0, 0, 0, 1, 4, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(check(&cat(&[&rr(1), &xr])).is_ok());
    // an RR carrying a report block, and one with a profile extension after it
    let mut body = 1u32.to_be_bytes().to_vec();
    body.extend_from_slice(&report_block(2));
    assert!(check(&rtcp(1, 201, &body)).is_ok());
    body.extend_from_slice(&[0; 8]);
    assert!(check(&rtcp(1, 201, &body)).is_ok());
}

#[test]
fn reduced_size_allows_a_lone_feedback_packet() {
    let p = pli(1, 2);
    assert_eq!(
        check(&p),
        Err(RtcpError::FirstNotReport { packet_type: 206 })
    );
    let r = RtcpRules {
        reduced_size: true,
        ..rules()
    };
    assert_eq!(check_rtcp(&p, &r).unwrap().first_type, 206);
}

#[test]
fn lengths_must_add_up() {
    let mut p = rr(1);
    p[3] = 2; // declares 12 bytes, 8 present
    assert_eq!(check(&p), Err(RtcpError::Length { index: 0 }));
    let p = cat(&[&rr(1), &[0x80, 0xca]]);
    assert_eq!(check(&p), Err(RtcpError::TrailingBytes { len: 2 }));
    let mut p = cat(&[&rr(1), &sdes_cname(1, b"x")]);
    p[11] = 9; // the SDES runs past the end
    assert_eq!(check(&p), Err(RtcpError::Length { index: 1 }));
    assert_eq!(check(&[0x80, 201, 0]), Err(RtcpError::TooShort { len: 3 }));
    let big = cat(&[&rr(1), &rtcp(0, 204, &[0; 1496])]);
    assert_eq!(
        check(&big),
        Err(RtcpError::TooLarge {
            len: 1508,
            max: 1500
        })
    );
}

#[test]
fn structure_refusals() {
    // SDES first
    let p = cat(&[&sdes_cname(1, b"x"), &rr(1)]);
    assert_eq!(
        check(&p),
        Err(RtcpError::FirstNotReport { packet_type: 202 })
    );
    // unknown type after a valid RR
    let p = cat(&[&rr(1), &rtcp(0, 210, &[0; 4])]);
    assert_eq!(
        check(&p),
        Err(RtcpError::UnknownType {
            index: 1,
            packet_type: 210
        })
    );
    // version 1 in the second packet
    let mut p = cat(&[&rr(1), &sdes_cname(1, b"x")]);
    p[8] = 0x41;
    assert_eq!(
        check(&p),
        Err(RtcpError::BadVersion {
            index: 1,
            version: 1
        })
    );
    // RC = 31 with room for one block
    let mut body = 1u32.to_be_bytes().to_vec();
    body.extend_from_slice(&report_block(2));
    let p = rtcp(31, 201, &body);
    assert_eq!(
        check(&p),
        Err(RtcpError::ReportBlocks {
            index: 0,
            count: 31
        })
    );
    // SR cut before the sender info ends
    let p = rtcp(0, 200, &[0; 20]);
    assert_eq!(
        check(&p),
        Err(RtcpError::Short {
            index: 0,
            packet_type: 200
        })
    );
    // APP without its name
    let p = cat(&[&rr(1), &rtcp(0, 204, &[0; 4])]);
    assert_eq!(
        check(&p),
        Err(RtcpError::Short {
            index: 1,
            packet_type: 204
        })
    );
}

#[test]
fn padding_only_on_the_last_packet_and_within_it() {
    let mut padded = rtcp(1, 202, &[0, 0, 0, 1, 1, 1, b'x', 0, 0, 0, 0, 4]);
    padded[0] |= 0x20;
    assert!(check(&cat(&[&rr(1), &padded])).is_ok());
    let mut first = rr(1);
    first[0] |= 0x20;
    let p = cat(&[&first, &sdes_cname(1, b"x")]);
    assert_eq!(check(&p), Err(RtcpError::PaddingNotLast { index: 0 }));
    let mut p = cat(&[&rr(1), &padded]);
    *p.last_mut().unwrap() = 13;
    assert_eq!(check(&p), Err(RtcpError::PaddingOverrun { index: 1 }));
    *p.last_mut().unwrap() = 0;
    assert_eq!(check(&p), Err(RtcpError::PaddingZero { index: 1 }));
}

#[test]
fn sdes_chunks_and_items_are_checked() {
    let sdes = |count: u8, body: &[u8]| check(&cat(&[&rr(1), &rtcp(count, 202, body)]));
    let fault = |fault| Err(RtcpError::Sdes { index: 1, fault });
    // CNAME claiming 200 bytes
    assert_eq!(
        sdes(1, &[0, 0, 0, 1, 1, 200, b'x', 0]),
        fault(SdesFault::ItemOverrun)
    );
    // no END before the packet ends
    assert_eq!(
        sdes(1, &[0, 0, 0, 1, 1, 2, b'x', b'y']),
        fault(SdesFault::MissingEnd)
    );
    // END followed by a non-null byte before the boundary
    assert_eq!(
        sdes(1, &[0, 0, 0, 1, 1, 0, 0, 7]),
        fault(SdesFault::BadPadding)
    );
    // two chunks declared, one present
    assert_eq!(
        sdes(2, &[0, 0, 0, 1, 1, 1, b'x', 0]),
        fault(SdesFault::ChunkOverrun)
    );
    // one chunk declared, a second one present
    assert_eq!(
        sdes(1, &[0, 0, 0, 1, 1, 1, b'x', 0, 0, 0, 0, 2, 0, 0, 0, 0]),
        fault(SdesFault::ExtraData)
    );
    // END exactly at a boundary needs its own word of nulls
    assert!(sdes(1, &[0, 0, 0, 1, 1, 2, b'x', b'y', 0, 0, 0, 0]).is_ok());
    assert!(sdes(0, &[]).is_ok());
}

#[test]
fn bye_and_feedback_sizes() {
    let bye = |count: u8, body: &[u8]| check(&cat(&[&rr(1), &rtcp(count, 203, body)]));
    assert_eq!(bye(3, &[0, 0, 0, 1]), Err(RtcpError::Bye { index: 1 }));
    assert_eq!(
        bye(1, &[0, 0, 0, 1, 9, b'a', b'b', b'c']),
        Err(RtcpError::Bye { index: 1 })
    );
    // a reason followed by a whole spare word
    assert_eq!(
        bye(1, &[0, 0, 0, 1, 1, b'a', 0, 0, 0, 0, 0, 0]),
        Err(RtcpError::Bye { index: 1 })
    );
    let mut big_pli = pli(1, 2);
    big_pli.extend_from_slice(&[0; 4]);
    big_pli[3] = 3;
    assert_eq!(
        check(&cat(&[&rr(1), &big_pli])),
        Err(RtcpError::Feedback {
            index: 1,
            packet_type: 206,
            fmt: 1
        })
    );
    let nack = rtcp(1, 205, &[0, 0, 0, 1, 0, 0, 0, 2]);
    assert_eq!(
        check(&cat(&[&rr(1), &nack])),
        Err(RtcpError::Feedback {
            index: 1,
            packet_type: 205,
            fmt: 1
        })
    );
    let short = rtcp(1, 205, &[0, 0, 0, 1]);
    assert_eq!(
        check(&cat(&[&rr(1), &short])),
        Err(RtcpError::Short {
            index: 1,
            packet_type: 205
        })
    );
    // XR whose block claims 3 words where 2 follow
    let xr = rtcp(0, 207, &[0, 0, 0, 1, 4, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        check(&cat(&[&rr(1), &xr])),
        Err(RtcpError::XrBlock { index: 1 })
    );
}

#[test]
fn srtcp_checks_the_clear_header_and_trailer() {
    let r = RtcpRules {
        srtp: Some(Srtp::default()),
        ..rules()
    };
    let trailer = |e: bool| {
        let mut t = (if e { 0x8000_0001u32 } else { 1 }).to_be_bytes().to_vec();
        t.extend_from_slice(&[0xaa; 10]);
        t
    };
    // E set: the rest after the first 8 bytes is ciphertext
    let mut p = sr(7);
    p.extend_from_slice(&[0x5a; 40]); // "encrypted" SDES
    let enc = cat(&[&p, &trailer(true)]);
    let info = check_rtcp(&enc, &r).unwrap();
    assert!(info.encrypted);
    assert_eq!((info.first_type, info.ssrc), (200, 7));
    // E clear: the compound is checked in full
    let clear = cat(&[&rr(7), &sdes_cname(7, b"x"), &trailer(false)]);
    assert_eq!(check_rtcp(&clear, &r).unwrap().packets, 2);
    let bad = cat(&[&rr(7), &[0x80, 210, 0, 0], &trailer(false)]);
    assert!(matches!(
        check_rtcp(&bad, &r),
        Err(RtcpError::UnknownType { index: 1, .. })
    ));
    // too short for SSRC + index + tag
    assert_eq!(
        check_rtcp(&enc[..21], &r),
        Err(RtcpError::SrtcpTooShort { len: 21 })
    );
    // the clear header of an encrypted one is still checked
    let first = cat(&[&sdes_cname(7, b"x"), &trailer(true)]);
    assert_eq!(
        check_rtcp(&first, &r),
        Err(RtcpError::FirstNotReport { packet_type: 202 })
    );
    let mut long = cat(&[&rr(7), &trailer(true)]);
    long[3] = 9;
    assert_eq!(check_rtcp(&long, &r), Err(RtcpError::Length { index: 0 }));
    let mut v1 = cat(&[&rr(7), &trailer(true)]);
    v1[0] = 0x40;
    assert_eq!(
        check_rtcp(&v1, &r),
        Err(RtcpError::BadVersion {
            index: 0,
            version: 1
        })
    );
}
