//! The fingerprint against its reference implementation on real and mutated messages:
//! the SIP torture tests of RFC 4475 and RFC 5118 (the repository's copy under
//! `tests/corpus/`), and REGISTERs and INVITEs as SIPp, Linphone, baresip and Zoiper
//! write them, edited in the ways clients and attackers differ (case, blanks around the
//! colon, compact names, folding, missing and repeated headers, odd parameters, bytes
//! that are not ASCII, line ends) and cut at every byte. Stored profiles depend on the
//! exact value, so the two must agree on every input.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::string_slice
)]

use super::reference;

/// Checks one input, and counts it: the fingerprint against the reference, and, when
/// no line of the input begins with a blank (what the parser's `Received::unfolded`
/// vouches for), the reading that stops after the last core header against both.
fn same(n: &mut usize, msg: &[u8]) {
    let full = super::fingerprint(msg);
    assert_eq!(
        full,
        reference::fingerprint(msg),
        "{:?}",
        String::from_utf8_lossy(msg)
    );
    let folded = msg.windows(2).any(|w| matches!(w, [b'\n', b' ' | b'\t']));
    if !folded {
        assert_eq!(
            super::fingerprint_unfolded(msg),
            full,
            "stopped early: {:?}",
            String::from_utf8_lossy(msg)
        );
    }
    *n += 1;
}

/// Every prefix of a message (a datagram cut anywhere).
fn prefixes(n: &mut usize, msg: &[u8]) {
    for end in 0..=msg.len() {
        same(n, &msg[..end]);
    }
}

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn agrees_on_the_torture_tests_cut_anywhere() {
    let (a, b) = (corpus("rfc4475"), corpus("rfc5118"));
    assert_eq!(a.len(), 49, "RFC 4475 messages");
    assert_eq!(b.len(), 12, "RFC 5118 messages");
    let mut n = 0;
    for (_, msg) in a.iter().chain(&b) {
        prefixes(&mut n, msg);
        // the same with bare LF line ends, and with the header section alone
        let lf = String::from_utf8_lossy(msg).replace("\r\n", "\n");
        prefixes(&mut n, lf.as_bytes());
        for m in mutations(msg) {
            same(&mut n, &m);
        }
    }
    assert!(n > 80_000, "{n} inputs");
    eprintln!("{n} inputs");
}

/// The messages of real clients (values made up, layout as they write it).
const CLIENTS: [&str; 8] = [
    // SIPp, the registration scenario with its credentials
    "REGISTER sip:127.0.0.1:5480 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5492;branch=z9hG4bK-12345-1-0\r\nFrom: <sip:user1@127.0.0.1>;tag=12345SIPpTag001\r\nTo: <sip:user1@127.0.0.1>\r\nCall-ID: 1-12345@127.0.0.1\r\nCSeq: 2 REGISTER\r\nContact: sip:user1@127.0.0.1:5492\r\nMax-Forwards: 70\r\nExpires: 3600\r\nUser-Agent: SIPp\r\nAuthorization: Digest username=\"user1\",realm=\"127.0.0.1\",uri=\"sip:127.0.0.1:5480\",nonce=\"4f2a9c1e7b3d5a6f8e0c2b4d6a8f1e3c5b7d9a0c2e4f6a8b0d2c4e6f\",response=\"0a1b2c3d4e5f60718293a4b5c6d7e8f9\",algorithm=MD5,cnonce=\"6b8b4567\",qop=auth,nc=00000001\r\nContent-Length: 0\r\n\r\n",
    // SIPp, the call scenario
    "INVITE sip:user2@127.0.0.1:5480 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5492;branch=z9hG4bK-12345-1-2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:user1@127.0.0.1:5480>;tag=812SIPpTag001\r\nTo: <sip:user2@127.0.0.1:5480>\r\nCall-ID: 1-812@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:user1@127.0.0.1:5492;transport=udp>\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\nSupported: replaces\r\nUser-Agent: sipp-bench\r\nSubject: benchmark call\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=user1 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n",
    // Linphone (belle-sip)
    "REGISTER sip:sip.example.org SIP/2.0\r\nVia: SIP/2.0/TLS 192.168.1.20:37845;alias;branch=z9hG4bK.Yh2~ZpW0f;rport\r\nFrom: <sip:alice@sip.example.org>;tag=r718HsXj8\r\nTo: sip:alice@sip.example.org\r\nCSeq: 20 REGISTER\r\nCall-ID: ncOBoh1kD~\r\nMax-Forwards: 70\r\nSupported: replaces, outbound, gruu, path\r\nAccept: application/sdp\r\nAccept: text/plain\r\nContact: <sip:alice@192.168.1.20:37845;transport=tls>;+sip.instance=\"<urn:uuid:3e5f2a8c-0d3c-4c8e-9b7e-1f2a3b4c5d6e>\";+org.linphone.specs=\"lime\";expires=3600\r\nExpires: 3600\r\nUser-Agent: Linphone/5.1.64 (belle-sip/5.1.64)\r\nAuthorization:  Digest realm=\"sip.example.org\", nonce=\"Ab12Cd34\", algorithm=MD5, opaque=\"+GNywA==\", username=\"alice\",  uri=\"sip:sip.example.org\", response=\"0a1b2c3d4e5f60718293a4b5c6d7e8f9\", cnonce=\"Q0aB1c2D\", nc=00000001, qop=auth\r\nContent-Length: 0\r\n\r\n",
    "INVITE sip:bob@sip.example.org SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.1.20:37845;alias;branch=z9hG4bK.NiknI8J7a;rport\r\nFrom: \"Alice\" <sip:alice@sip.example.org>;tag=c7yMzFE8t\r\nTo: sip:bob@sip.example.org\r\nCSeq: 20 INVITE\r\nCall-ID: 3fb1cR4cGu\r\nMax-Forwards: 70\r\nSupported: replaces, outbound, gruu, path\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, PRACK, UPDATE\r\nContent-Type: application/sdp\r\nContact: <sip:alice@192.168.1.20;gr=urn:uuid:3e5f2a8c>;+org.linphone.specs=\"ephemeral,groupchat\"\r\nUser-Agent: Linphone/5.1.64 (belle-sip/5.1.64)\r\nProxy-Authorization:  Digest realm=\"sip.example.org\", nonce=\"Ab12Cd34\", username=\"alice\",  uri=\"sip:bob@sip.example.org\", response=\"0a1b2c3d\"\r\nContent-Length: 60\r\n\r\nv=0\r\no=alice 1234 5678 IN IP4 192.168.1.20\r\ns=Talk\r\nt=0 0\r\n",
    // baresip
    "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK8c3e7a1f2b4d6e9a;rport\r\nContact: <sip:alice-0x55d1c2@192.168.1.10:5060;transport=udp>;expires=3600\r\nMax-Forwards: 70\r\nTo: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=6f1b0e2d9c8a7b3e\r\nCall-ID: 0c3f1e2d4b5a69788796a5b4c3d2e1f0\r\nCSeq: 24651 REGISTER\r\nUser-Agent: baresip v3.10.1 (x86_64/linux)\r\nAllow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\nSupported: gruu,path,replaces\r\nAuthorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"5f3e\", uri=\"sip:example.com\", response=\"9a8b7c6d\", algorithm=MD5, qop=auth, cnonce=\"1f2e3d4c\", nc=00000001\r\nContent-Length: 0\r\n\r\n",
    "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\nUser-Agent: baresip v1.0.0 (x86_64/linux)\r\nAllow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\nSupported: replaces,norefersub,100rel\r\nContent-Type: application/sdp\r\nContent-Length: 142\r\n\r\nv=0\r\no=- 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
    // Zoiper
    "REGISTER sip:pbx.example.net;transport=UDP SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:61543;branch=z9hG4bK-524287-1---c7a2f5e0d1b3e4a6;rport\r\nMax-Forwards: 70\r\nContact: <sip:1001@10.0.0.5:61543;rinstance=8f2d4c6b1a3e5f70;transport=UDP>\r\nTo: <sip:1001@pbx.example.net;transport=UDP>\r\nFrom: <sip:1001@pbx.example.net;transport=UDP>;tag=a3b5c7d9\r\nCall-ID: ZTk2NzY2YjNhYjFmNGE1ZGI3NmQ0ZTI5ZmM0OTk1ZTk\r\nCSeq: 2 REGISTER\r\nExpires: 60\r\nAllow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\nSupported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri\r\nUser-Agent: Z 5.6.1 v2.10.19.9\r\nAuthorization: Digest username=\"1001\",realm=\"asterisk\",nonce=\"1a2b3c4d\",uri=\"sip:pbx.example.net;transport=UDP\",response=\"5e6f7a8b\",algorithm=MD5\r\nAllow-Events: presence, kpml, talk\r\nContent-Length: 0\r\n\r\n",
    // compact forms, as some stacks write them over UDP
    "INVITE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP 10.1.2.3:5060;rport;branch=z9hG4bKabcdef0123\r\nf: \"A\" <sip:a@example.com>;tag=4711R12\r\nt: <sip:bob@example.com>\r\ni: 99aa88bb77cc66dd@10.1.2.3\r\nCSeq: 7 INVITE\r\nm: <sip:a@10.1.2.3>\r\nMax-Forwards: 69\r\nk: timer\r\nc: application/sdp\r\nl: 0\r\n\r\n",
];

/// Edits of a message that change how it is written.
fn mutations(msg: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(msg).into_owned();
    let mut out: Vec<Vec<u8>> = vec![
        text.to_lowercase().into_bytes(),
        text.to_uppercase().into_bytes(),
        text.replace("\r\n", "\n").into_bytes(),
        text.replace("\r\n", "\r").into_bytes(),
        text.replace("\r\n", "\r\r\n").into_bytes(),
        text.replace("\r\n", "\n\r").into_bytes(),
    ];
    // header by header
    let lines: Vec<&str> = text.split("\r\n").collect();
    let edit = |out: &mut Vec<Vec<u8>>, k: usize, with: &[&str]| {
        let mut l: Vec<&str> = lines[..k].to_vec();
        l.extend_from_slice(with);
        l.extend_from_slice(&lines[k + 1..]);
        out.push(l.join("\r\n").into_bytes());
    };
    for (k, line) in lines.iter().enumerate() {
        edit(&mut out, k, &[]); // missing
        edit(&mut out, k, &[line, line]); // repeated
        edit(&mut out, k, &[line, "X-Filler: 1", line]);
        if k + 1 < lines.len() {
            edit(&mut out, k, &[lines[k + 1], line]); // swapped with the next
        }
        let Some(colon) = line.find(':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let trimmed = value.trim_start();
        for sep in [
            ":", ": ", ":  ", ":   ", ":    ", " :", " : ", "\t:", ":\t", ": \t ", " \t: ",
        ] {
            let e = format!("{name}{sep}{trimmed}");
            edit(&mut out, k, &[&e]);
        }
        for e in [
            format!("{}{}", name.to_lowercase(), &line[colon..]),
            format!("{}{}", name.to_uppercase(), &line[colon..]),
            format!("{name}:{value} "),
            format!("{name}:{value}\t"),
            format!("{name}:{value};"),
            format!("{name}:{value};;x"),
            format!("{name}:{value}; branch = a1B2 ;tag = 77 "),
            format!("{name}:{value};BRANCH=z9hG4bK4711R1;TAG=c0ffee"),
            format!("{name}:{value};tag"),
            format!("{name}:{value};branch"),
            format!("{name}:{value};tag=;branch="),
            format!("{name}:{value}>;tag=x>"),
            format!("{name}:{}", value.replace(';', " ; ")),
            format!("{name}:{}", value.replace('=', " = ")),
            format!("{name}:{}", value.replace(['<', '>'], "")),
            format!("{name}:{}", value.replace('@', "")),
            format!("{name}:{}", value.replace('/', " ")),
            format!("{name}:{}{}", value, ";p=1".repeat(20)),
            format!(
                "{name}:{}",
                value.replacen(';', ";a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q;", 1)
            ),
        ] {
            edit(&mut out, k, &[&e]);
        }
        // folded: the value on a continuation line, or split in two
        let folded = format!("{name}:");
        edit(&mut out, k, &[&folded, &format!(" {trimmed}")]);
        let half = value.len() / 2;
        if value.is_char_boundary(half) {
            edit(
                &mut out,
                k,
                &[
                    &format!("{name}:{}", &value[..half]),
                    &format!("\t{}", &value[half..]),
                ],
            );
        }
    }
    // compact names, and full names for compact ones
    for (full, compact) in [
        ("Via:", "v:"),
        ("From:", "f:"),
        ("To:", "t:"),
        ("Call-ID:", "i:"),
        ("Contact:", "m:"),
        ("Content-Length:", "l:"),
        ("Content-Type:", "c:"),
        ("Supported:", "k:"),
        ("Subject:", "s:"),
        ("CSeq:", "cseq:"),
        ("Max-Forwards:", "max-forwards :"),
    ] {
        out.push(text.replace(full, compact).into_bytes());
        out.push(text.replace(compact, full).into_bytes());
    }
    out
}

/// Bytes put in every place of the header section: separators, line ends, blanks and
/// bytes that are not ASCII.
const ODD: [u8; 16] = [
    b'\n', b'\r', b' ', b'\t', b':', b';', b'=', b'>', b'<', b'@', b'/', 0xff, 0xc3, 0x80, 0, b'A',
];

#[test]
fn agrees_on_clients_messages_edited() {
    let mut n = 0;
    for client in CLIENTS {
        let msg = client.as_bytes();
        prefixes(&mut n, msg);
        for (k, m) in mutations(msg).iter().enumerate() {
            same(&mut n, m);
            // (every prefix of every edit would take long in a debug build: one in 16)
            if k % 16 == 0 {
                prefixes(&mut n, m);
            }
        }
        let head = msg.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        for at in 0..head {
            for &b in &ODD {
                let mut m = msg.to_vec();
                m[at] = b; // in place of a byte
                same(&mut n, &m);
                m.insert(at, b); // and before it
                same(&mut n, &m);
            }
        }
    }
    assert!(n > 100_000, "{n} inputs");
    eprintln!("{n} inputs");
}

/// Session descriptions as clients write them.
const SDPS: [&str; 3] = [
    "v=0\r\no=user1 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    "v=0\r\no=alice 1234 5678 IN IP4 192.168.1.20\r\ns=Talk\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\na=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\na=record:off\r\nm=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtcp-fb:* trr-int 1000\r\nm=video 9078 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
    "v=0\no=- 3958523331 3958523331 IN IP4 192.0.2.10\ns=baresip\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 10000 RTP/AVP 0 8 101\nb=AS:64\na=rtpmap:101 telephone-event/8000\na=sendrecv\na=label:1\n",
];

fn same_sdp(n: &mut usize, body: &[u8]) {
    // (no account, the `o=` users of the sample bodies, a prefix of one, and one that is
    // no `o=` user at all)
    for account in [&b""[..], b"user1", b"alice", b"alic", b"-", b"x"] {
        assert_eq!(
            super::sdp_habits(body, account),
            reference::sdp_habits(body, account),
            "{:?} with account {:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(account)
        );
    }
    *n += 1;
}

#[test]
fn sdp_habits_agree_on_bodies_edited() {
    let mut bodies: Vec<Vec<u8>> = SDPS.iter().map(|s| s.as_bytes().to_vec()).collect();
    for (_, msg) in corpus("rfc4475").iter().chain(&corpus("rfc5118")) {
        // the body after the header section, and the whole message read as a body
        if let Some(end) = msg.windows(4).position(|w| w == b"\r\n\r\n") {
            bodies.push(msg[end + 4..].to_vec());
        }
        bodies.push(msg.clone());
    }
    let mut n = 0;
    for body in &bodies {
        for end in 0..=body.len() {
            same_sdp(&mut n, &body[..end]);
        }
        let text = String::from_utf8_lossy(body);
        for edit in [
            text.replace("\r\n", "\n"),
            text.replace('\n', "\r\n"),
            text.replace("\r\n", "\r"),
            text.replace("o=", "o= "),
            text.replace("o=", "o=user "),
            text.replace(' ', "  "),
            text.replace(' ', ""),
            text.replace(':', " "),
            text.replace("m=", "m=x\r\nm="),
            text.replace("a=", "a=\r\na="),
            text.replace("=", ""),
            text.to_uppercase(),
            text.repeat(30),
        ] {
            same_sdp(&mut n, edit.as_bytes());
        }
        for at in 0..body.len().min(300) {
            for &b in &ODD {
                let mut m = body.clone();
                m[at] = b;
                same_sdp(&mut n, &m);
                m.insert(at, b);
                same_sdp(&mut n, &m);
            }
        }
    }
    // bodies of more than 256 lines
    let many = "a=x\r\n".repeat(300);
    same_sdp(&mut n, many.as_bytes());
    same_sdp(&mut n, format!("{many}m=audio\r\n").as_bytes());
    same_sdp(&mut n, "\n".repeat(300).as_bytes());
    assert!(n > 100_000, "{n} inputs");
    eprintln!("{n} inputs");
}
