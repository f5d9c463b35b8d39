use super::rtp;
use crate::{check_rtp, classify, PacketKind, PayloadTypes, RtpError, RtpRules, Srtp};

fn rules() -> RtpRules {
    RtpRules::new(PayloadTypes::new(&[0, 8, 101]))
}

#[test]
fn a_pcmu_packet_is_accepted_with_its_fields() {
    let mut p = rtp(0, 7, 0x1234_5678, 160);
    p[1] |= 0x80; // marker
    let h = check_rtp(&p, &rules()).unwrap();
    assert!(h.marker);
    assert_eq!(h.payload_type, 0);
    assert_eq!(h.sequence, 7);
    assert_eq!(h.timestamp, 7 * 160);
    assert_eq!(h.ssrc, 0x1234_5678);
    assert_eq!((h.header_len, h.payload_len, h.padding), (12, 160, 0));
}

#[test]
fn csrcs_extension_and_padding_are_skipped() {
    // CC = 2, X, P; RFC 8285 one-byte extension of one word; 4 bytes of padding
    let mut p = vec![0xb2, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // CSRCs
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // extension
    p.extend_from_slice(&[0xd5; 20]);
    p.extend_from_slice(&[0, 0, 0, 4]);
    let h = check_rtp(&p, &rules()).unwrap();
    assert_eq!((h.header_len, h.payload_len, h.padding), (28, 20, 4));
}

#[test]
fn a_padding_only_packet_is_accepted() {
    let mut p = rtp(0, 1, 1, 0);
    p[0] |= 0x20;
    p.extend_from_slice(&[0, 0, 0, 4]);
    assert_eq!(check_rtp(&p, &rules()).unwrap().payload_len, 0);
}

#[test]
fn each_refusal_names_its_reason() {
    let r = rules();
    let good = rtp(0, 1, 1, 160);
    assert_eq!(
        check_rtp(&good[..11], &r),
        Err(RtpError::TooShort { len: 11 })
    );

    let mut p = good.clone();
    p[0] = 0x40;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::BadVersion(1)));

    let mut p = good.clone();
    p[1] = 9;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::PayloadType(9)));

    // 15 CSRCs need 60 bytes after the header; 20 are there
    let mut p = rtp(0, 1, 1, 20);
    p[0] |= 0x0f;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::CsrcOverrun { count: 15 }));

    // X with no room for the extension header
    let mut p = rtp(0, 1, 1, 0);
    p[0] |= 0x10;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::ExtensionOverrun));
    // X declaring 10 words where 1 is present
    let mut p = rtp(0, 1, 1, 0);
    p[0] |= 0x10;
    p.extend_from_slice(&[0xbe, 0xde, 0, 10, 0x10, 0xff, 0, 0]);
    assert_eq!(check_rtp(&p, &r), Err(RtpError::ExtensionOverrun));

    let mut p = rtp(0, 1, 1, 20);
    p[0] |= 0x20;
    *p.last_mut().unwrap() = 200;
    assert_eq!(
        check_rtp(&p, &r),
        Err(RtpError::PaddingOverrun { count: 200 })
    );
    *p.last_mut().unwrap() = 0;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::PaddingZero));

    let big = rtp(0, 1, 1, 1500 - 11);
    assert_eq!(
        check_rtp(&big, &r),
        Err(RtpError::TooLarge {
            len: 1501,
            max: 1500
        })
    );
    assert_eq!(check_rtp(&big[..1500], &r).map(|h| h.payload_len), Ok(1488));
}

#[test]
fn rtcp_payload_types_are_refused_under_rtcp_mux() {
    let mut r = rules();
    r.payload_types.insert(72);
    let p = rtp(72, 1, 1, 20);
    assert!(check_rtp(&p, &r).is_ok(), "72 negotiated and no mux");
    r.rtcp_mux = true;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::RtcpPayloadType(72)));
    r.rtcp_mux = false;
    r.payload_types = PayloadTypes::new(&[0]);
    assert_eq!(check_rtp(&p, &r), Err(RtpError::PayloadType(72)));
}

#[test]
fn srtp_needs_room_for_header_mki_and_tag() {
    let mut r = rules();
    r.srtp = Some(Srtp::default());
    let p = rtp(0, 1, 1, 10);
    assert_eq!(check_rtp(&p, &r).unwrap().payload_len, 0);
    assert_eq!(
        check_rtp(&p[..21], &r),
        Err(RtpError::SrtpTooShort { len: 21 })
    );
    r.srtp = Some(Srtp {
        tag_len: 4,
        mki_len: 4,
    });
    assert_eq!(check_rtp(&p, &r).unwrap().payload_len, 2);
    // padding is encrypted: its count is not read
    let mut p = rtp(0, 1, 1, 170);
    p[0] |= 0x20;
    *p.last_mut().unwrap() = 255;
    r.srtp = Some(Srtp::default());
    assert_eq!(check_rtp(&p, &r).unwrap().payload_len, 160);
    // the clear header is checked as for RTP
    let mut p = rtp(0, 1, 1, 0);
    p[0] |= 0x10;
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 1, 2, 3, 4, 5]);
    assert_eq!(check_rtp(&p, &r), Err(RtpError::SrtpTooShort { len: 25 }));
    p[15] = 3;
    assert_eq!(check_rtp(&p, &r), Err(RtpError::ExtensionOverrun));
}

#[test]
fn payload_type_sets() {
    let s = PayloadTypes::new(&[0, 127, 200]);
    assert!(s.contains(0) && s.contains(127) && !s.contains(200) && !s.contains(1));
    assert!(PayloadTypes::default().is_empty());
}

#[test]
fn classify_by_first_bytes() {
    assert_eq!(classify(&rtp(0, 1, 1, 0)), PacketKind::Rtp);
    assert_eq!(classify(&[0x80, 0x80 | 96]), PacketKind::Rtp);
    assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp);
    assert_eq!(classify(&[0x80, 72]), PacketKind::Rtcp);
    assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
    assert_eq!(classify(&[22, 0xfe]), PacketKind::Dtls);
    assert_eq!(classify(&[0x40, 0]), PacketKind::Other);
    assert_eq!(classify(&[0x80]), PacketKind::Other);
    assert_eq!(classify(&[]), PacketKind::Other);
}
