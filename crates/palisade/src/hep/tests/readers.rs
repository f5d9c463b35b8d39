//! Independent readers: sngrep decodes HEP3, tshark the SIP it carried.
use super::*;

/// A realistic INVITE with an SDP offer, as a softphone sends it.
const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.5:5062;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 31862 INVITE\r\n\
Contact: <sip:alice@203.0.113.5:5062;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
User-Agent: Softphone/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 160\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 203.0.113.5\r\n\
s=-\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n";
const INVITE_CALL_ID: &str = "3848276298220188511@atlanta.example.com";

#[test]
fn the_invite_fixture_is_consistent() {
    let (_, body) = INVITE.split_once("\r\n\r\n").unwrap();
    assert_eq!(body.len(), 160, "Content-Length");
    assert_eq!(call_id(INVITE.as_bytes()), Some(INVITE_CALL_ID.as_bytes()));
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("palisade-hep-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool to completion (killing it after 60 s). A missing tool fails the test:
/// ./test.sh installs them.
fn run(tool: &str, args: &[&str]) -> Output {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing(tool, e));
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "{tool} {args:?} did not finish within 60 s: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn missing(tool: &str, e: std::io::Error) -> ! {
    panic!(
        "cannot run {tool} ({e}): this test needs it as an independent HEP/SIP reader; \
         ./test.sh installs it (Debian: apt-get install {tool})"
    )
}

fn ok(tool: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{tool} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Internet checksum of an IPv4 header.
fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A classic pcap file (microsecond timestamps, Ethernet link type) holding one frame:
/// Ethernet, IPv4 and UDP headers around `datagram`.
fn pcap_with_udp(
    path: &Path,
    time: (u32, u32),
    src: SocketAddrV4,
    dst: SocketAddrV4,
    datagram: &[u8],
) {
    let mut f = Vec::new();
    // Global header, little-endian: magic, version 2.4, zone, accuracy, snaplen, Ethernet.
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&0i32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());

    let mut frame = Vec::new();
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    let udp_len = 8 + datagram.len();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&u16::try_from(20 + udp_len).unwrap().to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0]); // id, don't fragment
    ip.extend_from_slice(&[64, 17, 0, 0]); // TTL, UDP, checksum (below)
    ip.extend_from_slice(&src.ip().octets());
    ip.extend_from_slice(&dst.ip().octets());
    let sum = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&src.port().to_be_bytes());
    frame.extend_from_slice(&dst.port().to_be_bytes());
    frame.extend_from_slice(&u16::try_from(udp_len).unwrap().to_be_bytes());
    frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (allowed over IPv4)
    frame.extend_from_slice(datagram);

    // Record header: seconds, microseconds, captured and original length.
    f.extend_from_slice(&time.0.to_le_bytes());
    f.extend_from_slice(&time.1.to_le_bytes());
    let n = u32::try_from(frame.len()).unwrap();
    f.extend_from_slice(&n.to_le_bytes());
    f.extend_from_slice(&n.to_le_bytes());
    f.extend_from_slice(&frame);
    std::fs::write(path, f).unwrap();
}

/// tshark's reading of every frame of a pcap file: the given fields, tab-separated, one
/// line per frame.
fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "-r",
        file.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=f",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    let out = ok("tshark", &run("tshark", &args));
    out.lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

const SIP_FIELDS: &[&str] = &[
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "udp.srcport",
    "udp.dstport",
    "sip.Method",
    "sip.r-uri",
    "sip.Call-ID",
    "sip.CSeq.method",
    "sdp.media",
    "udp.payload",
];

/// What tshark must see in a frame sngrep rebuilt from our HEP packet of [`INVITE`].
fn assert_the_invite(frame: &[String], src: SocketAddrV4, dst: SocketAddrV4, time: &str) {
    let payload_hex: String = INVITE.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(frame[0].starts_with(time), "timestamp {:?}", frame[0]);
    assert_eq!(frame[1], src.ip().to_string(), "source address");
    assert_eq!(frame[2], dst.ip().to_string(), "destination address");
    assert_eq!(frame[3], src.port().to_string(), "source port");
    assert_eq!(frame[4], dst.port().to_string(), "destination port");
    assert_eq!(frame[5], "INVITE", "SIP method");
    assert_eq!(frame[6], "sip:bob@biloxi.example.com", "Request-URI");
    assert_eq!(frame[7], INVITE_CALL_ID, "Call-ID");
    assert_eq!(frame[8], "INVITE", "CSeq method");
    assert_eq!(frame[9], "audio 49170 RTP/AVP 0 8", "SDP media line");
    assert_eq!(frame[10], payload_hex, "the payload, byte for byte");
}

#[test]
fn sngrep_and_tshark_read_an_encoded_invite() {
    let dir = Scratch::new("file");
    let caller = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 5), 5062);
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 5060);
    let mut hep = Vec::new();
    encode(
        &HepPacket {
            src: caller.into(),
            dst: server.into(),
            transport: HepTransport::Udp,
            time: at(1_700_000_000, 123_456_000),
            node_id: 2001,
            password: None,
            correlation_id: call_id(INVITE.as_bytes()),
            payload: INVITE.as_bytes(),
        },
        &mut hep,
    )
    .unwrap();

    // The HEP datagram as a capture on the collector's side would hold it: from the
    // server to a collector on port 9060, captured a little later.
    let input = dir.path("hep.pcap");
    let agent = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 41_000);
    let homer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 99), 9060);
    pcap_with_udp(&input, (1_700_000_009, 0), agent, homer, &hep);

    // tshark reads the file we wrote as one UDP datagram to 9060 carrying our bytes.
    let outer = tshark_fields(&input, &["ip.src", "ip.dst", "udp.dstport", "udp.payload"]);
    let hep_hex: String = hep.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        outer,
        [["192.0.2.10", "192.0.2.99", "9060", hep_hex.as_str()]],
        "the pcap wrapper"
    );

    // sngrep's HEP3 parser (-E: decapsulate HEP found in captured UDP) takes the chunks
    // apart and writes the SIP message as a frame of its own, with the addresses, ports
    // and time from the HEP chunks; tshark then dissects that frame as SIP.
    let output = dir.path("sip.pcap");
    let out = run(
        "sngrep",
        &[
            "-N",
            "-q",
            "-F",
            "-E",
            "-I",
            input.to_str().unwrap(),
            "-O",
            output.to_str().unwrap(),
        ],
    );
    ok("sngrep", &out);
    assert_sngrep_wrote_the_invite(&output, caller, server, "1700000000.123456");
}

/// sngrep 1.6 writes a decapsulated message once when it has read the HEP packet and
/// once more when its SIP parser has accepted it: one or two identical frames.
fn assert_sngrep_wrote_the_invite(file: &Path, src: SocketAddrV4, dst: SocketAddrV4, time: &str) {
    let frames = tshark_fields(file, SIP_FIELDS);
    assert!(
        (1..=2).contains(&frames.len()),
        "one SIP message: {frames:?}"
    );
    for f in &frames {
        assert_the_invite(f, src, dst, time);
    }
}

/// Whether something has bound `port` on UDP over IPv4 (read from /proc/net/udp, so
/// the check itself binds nothing).
fn udp_port_bound(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let needle = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|local| local.ends_with(&needle))
}

#[test]
fn sngrep_listens_to_the_sender_and_checks_the_password() {
    let dir = Scratch::new("live");
    let config = dir.path("sngreprc");
    std::fs::write(&config, "set eep.listen.pass s3cret\n").unwrap();
    let output = dir.path("sip.pcap");
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // sngrep's HEP listener as its only capture source (no packet capture, so no
    // privileges needed); it runs until killed and flushes its output after each packet.
    let mut child = Command::new("sngrep")
        .args(["-N", "-q", "-F", "-f"])
        .arg(&config)
        .args(["-L", &format!("udp:127.0.0.1:{port}"), "-O"])
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing("sngrep", e));
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    for _ in 0..100 {
        if udp_port_bound(port) || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !udp_port_bound(port) {
        stop(&mut child);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("sngrep did not listen on udp:127.0.0.1:{port}: {err}");
    }

    let url = format!("udp:127.0.0.1:{port}");
    let caller = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 5), 5062);
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 5060);
    // Refused by sngrep: a wrong password, and none at all.
    for password in [Some("wrong"), None] {
        let other = HepSender::start(&url, 2001, password, 4).unwrap();
        let decoy = INVITE.replace(INVITE_CALL_ID, "decoy@atlanta.example.com");
        other.capture(
            caller.into(),
            server.into(),
            HepTransport::Udp,
            at(1_600_000_000, 0),
            decoy.as_bytes(),
        );
        eventually("decoy sent", || other.sent() == 1);
    }
    let hep = HepSender::start(&url, 2001, Some("s3cret"), 4).unwrap();
    hep.capture(
        caller.into(),
        server.into(),
        HepTransport::Udp,
        at(1_700_000_000, 654_321_000),
        INVITE.as_bytes(),
    );
    eventually("sent", || hep.sent() == 1);
    // Wait until the INVITE is in sngrep's output (a pcap header is 24 bytes).
    let mut seen = false;
    for _ in 0..100 {
        if std::fs::metadata(&output).map_or(0, |m| m.len()) > 24 {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give a second write of the same message (see below) the time to land.
    std::thread::sleep(Duration::from_millis(200));
    stop(&mut child);
    assert!(seen, "sngrep wrote nothing to {}", output.display());
    // Only the packet with the right password: the decoys (sent first, on the same
    // socket queue) were read and refused before it.
    assert_sngrep_wrote_the_invite(&output, caller, server, "1700000000.654321");
}
