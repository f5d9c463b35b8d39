#!/usr/bin/env python3
"""Writes the hostile-offer corpus (tests/offers/*.sip) and its manifest (cases.toml).

Each case is one complete SIP message as an attacker (or a real phone) would send it to
Palisade for the local user bob. The manifest says what the case tries, the verdict the
shield must reach, and which strings must (keep) or must not (hidden) reach the callee.
Run from anywhere: python3 tests/offers/generate.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")

SIPP = crlf("""v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
""")

BARESIP = crlf("""v=0
o=- 1893645374 2467842211 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 10000 RTP/AVP 96 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-mux
a=sendrecv
a=label:1
a=ssrc:3218452214 cname:5a3b2c1d-0000-1111
a=rtcp-rsize
""")

CHROME = crlf("""v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 network-id 1
a=candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0 network-id 1
a=ice-ufrag:EsAw
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y
a=ice-options:trickle
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=sendrecv
a=msid:stream1 track1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:1001 cname:abcd1234
a=ssrc:1001 msid:stream1 track1
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:EsAw
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y
a=ice-options:trickle
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F
a=setup:actpass
a=mid:1
a=sendrecv
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=fmtp:96 max-fr=30;max-fs=3600
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=ssrc-group:FID 2001 2002
a=ssrc:2001 cname:abcd1234
a=ssrc:2002 cname:abcd1234
""")

FIREFOX = crlf("""v=0
o=mozilla...THIS_IS_SDPARTA-99.0 5097512542591282520 0 IN IP4 0.0.0.0
s=-
t=0 0
a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B
a=group:BUNDLE 0
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 0.0.0.0
a=candidate:0 1 UDP 2122252543 10.0.0.7 59462 typ host
a=candidate:1 1 TCP 2105524479 10.0.0.7 9 typ host tcptype active
a=sendrecv
a=end-of-candidates
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:e3baa26dd2fa5030d881d385f1e36cce
a=ice-ufrag:58b99ead
a=mid:0
a=msid:{5b9c3f4e-8a6b-4a5e-9f1c-2d3e4f5a6b7c} {7c6b5a4f-3e2d-1c9f-5e4a-6b8a4e3f9c5b}
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000/1
a=setup:actpass
a=ssrc:2655508255 cname:{6f2b1c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d}
""")

LINPHONE = crlf("""v=0
o=alice 1234 5678 IN IP4 192.168.1.10
s=Talk
c=IN IP4 192.168.1.10
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 SILK/16000
a=rtpmap:98 speex/16000
a=fmtp:98 vbr=on
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
""")

def invite(name, body, ctype="application/sdp", extra="", display="Mallory", method="INVITE"):
    ct = f"Content-Type: {ctype}\n" if ctype else ""
    head = crlf(f"""{method} sip:bob@localhost SIP/2.0
Via: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bK-{name}
Max-Forwards: 70
From: "{display}" <sip:mallory@evil.example>;tag=m-{name}
To: <sip:bob@localhost>
Call-ID: case-{name}@evil.example
CSeq: 1 {method}
Contact: <sip:mallory@192.0.2.66:5060>
{extra}{ct}""")
    if isinstance(body, str):
        body = body.encode()
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body

cases = []

def case(name, tries, verdict, data, status=None, hidden=(), keep=(), sipp=True, reported=True):
    cases.append(dict(name=name, tries=tries, verdict=verdict, status=status,
                      hidden=list(hidden), keep=list(keep), sipp=sipp, reported=reported))
    with open(os.path.join(HERE, name + ".sip"), "wb") as f:
        f.write(data)

BLOB = "UEsDBBQACAgIAHIDDEADBEEF0x90x90x90"  # looks like a zip header plus a NOP sled

# --- real offers: must pass with their meaning intact
case("real-sipp", "SIPp's own offer (PCMU/PCMA/telephone-event)", "accept",
     invite("real-sipp", SIPP), keep=["a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"])
case("real-baresip", "a baresip offer (opus stereo, rtcp-mux, ssrc)", "accept",
     invite("real-baresip", BARESIP), keep=["a=rtpmap:96 opus/48000/2", "a=fmtp:96 stereo=1;sprop-stereo=1", "a=ssrc:3218452214 cname:"])
case("real-chrome-webrtc", "a Chrome WebRTC offer (BUNDLE, ICE, DTLS, opus/VP8/H.264)", "accept",
     invite("real-chrome-webrtc", CHROME),
     keep=["a=candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243",
           "a=ice-ufrag:EsAw", "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y",
           "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F",
           "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", "a=group:BUNDLE 0 1"])
case("real-firefox-webrtc", "a Firefox WebRTC offer (msid in braces, TCP candidate, end-of-candidates)", "accept",
     invite("real-firefox-webrtc", FIREFOX), sipp=False,  # '{' is fine but '[' free; braces ok -- sent raw to keep it byte-exact
     keep=["a=candidate:1 1 TCP 2105524479 10.0.0.7 9 typ host tcptype active", "a=ice-ufrag:58b99ead",
           "a=fingerprint:sha-256 8B:87:09:8A", "a=rtpmap:109 opus/48000/2", "a=end-of-candidates"])
case("real-linphone", "a Linphone offer (RTCP-XR, record:off, wildcard rtcp-fb)", "accept",
     invite("real-linphone", LINPHONE),
     keep=["a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics", "a=record:off",
           "a=rtcp-fb:* trr-int 1000", "a=rtpmap:97 SILK/16000", "a=fmtp:18 annexb=yes"])
case("real-lf-line-ends", "an offer with LF line ends (RFC 8866 allows them); forwarded with CRLF", "accept",
     invite("real-lf-line-ends", SIPP.replace("\r\n", "\n")), sipp=False, keep=["a=rtpmap:8 PCMA/8000\r\n"])

# --- hidden content: accepted, but the hidden part never reaches the callee
case("hidden-unknown-attribute", "a blob in an SDP attribute nobody defined", "accept",
     invite("hidden-unknown-attribute", SIPP + f"a=x-config:{BLOB}\r\n"), hidden=[BLOB], keep=["a=rtpmap:0 PCMU/8000"])
case("hidden-media-attribute", "a blob in an unknown attribute inside the media section", "accept",
     invite("hidden-media-attribute", SIPP.replace("a=ptime:20", f"a=x-codec-settings:{BLOB}\r\na=ptime:20")), hidden=[BLOB])
case("hidden-session-info", "a blob in the session information line (i=)", "accept",
     invite("hidden-session-info", SIPP.replace("s=-\r\n", f"s=-\r\ni={BLOB}\r\n")), hidden=[BLOB])
case("hidden-uri-email-phone", "links and contacts in u= e= p= lines", "accept",
     invite("hidden-uri-email-phone", SIPP.replace("s=-\r\n", "s=-\r\nu=http://evil.example/x.apk\r\ne=spy-mailbox@evil.example\r\np=+1 555 0100\r\n")),
     hidden=["evil.example/x.apk", "spy-mailbox@evil.example", "555 0100"])
case("hidden-key-line", "an obsolete k= line carrying data", "accept",
     invite("hidden-key-line", SIPP.replace("a=rtpmap:0", f"k=base64:{BLOB}\r\na=rtpmap:0")), hidden=[BLOB])
case("hidden-rtpmap-encoding", "a blob as the encoding name of an rtpmap nobody registered", "accept",
     invite("hidden-rtpmap-encoding", SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 0 8 96 101")
            .replace("a=rtpmap:101", f"a=rtpmap:96 {BLOB}/8000\r\na=rtpmap:101")),
     hidden=[BLOB], keep=["a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000"])
case("hidden-fmtp-pcmu", "a blob in format parameters of PCMU, a codec that defines none", "accept",
     invite("hidden-fmtp-pcmu", SIPP.replace("a=rtpmap:8", f"a=fmtp:0 x-cfg={BLOB}\r\na=rtpmap:8")),
     hidden=[BLOB], keep=["a=rtpmap:0 PCMU/8000"])
case("hidden-extmap-uri", "a blob as the URI of an RTP header extension nobody defined", "accept",
     invite("hidden-extmap-uri", SIPP.replace("a=ptime:20", f"a=extmap:3 urn:x-{BLOB}\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=ptime:20")),
     hidden=[BLOB], keep=["a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"])
case("hidden-fmtp-rtx-param", "a blob in a format parameter rtx does not define", "accept",
     invite("hidden-fmtp-rtx-param", CHROME.replace("a=fmtp:97 apt=96", f"a=fmtp:97 apt=96;x-cfg={BLOB}")),
     hidden=[BLOB], keep=["a=fmtp:97 apt=96"])
# --- issue 13: a marker in every typed field; dropped, rewritten, or the offer refused
SDES = SIPP.replace("RTP/AVP", "RTP/SAVP").replace("a=sendrecv\r\n", "a=sendrecv\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n")
MARK = BLOB.replace("0x", "Q")  # alphanumeric: passes every token grammar, so only vocabularies stop it
def typed(name, tries, data, hidden=(MARK,), keep=(), verdict="accept", status=None, sipp=True, reported=True):
    case(name, tries, verdict, invite(name, data) if isinstance(data, str) else data, status=status, hidden=hidden, keep=keep, sipp=sipp, reported=reported)
typed("typed-fmtp-flag", "a marker as the value of opus useinbandfec (a 0/1 flag)",
      CHROME.replace("useinbandfec=1", f"useinbandfec={MARK}"), keep=["a=fmtp:111 minptime=10\r\n"])
typed("typed-fmtp-hex", "a marker as H.264 profile-level-id (6 hex digits)",
      CHROME.replace("profile-level-id=42001f", f"profile-level-id={MARK}"), keep=["a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1\r\n"])
typed("typed-fmtp-number-range", "a marker-sized number as opus maxplaybackrate (8000-48000)",
      CHROME.replace("minptime=10", "minptime=10;maxplaybackrate=987654321987"), hidden=["987654321987"], keep=["a=fmtp:111 minptime=10;useinbandfec=1"])
typed("typed-telephone-event", "a marker in a telephone-event list",
      SIPP.replace("a=fmtp:101 0-16", f"a=fmtp:101 0-16;{MARK}"), keep=["a=fmtp:101 0-16\r\n"])
typed("typed-red-list", "a marker in red's redundancy list",
      CHROME.replace("a=fmtp:63 111/111", f"a=fmtp:63 111/111;{MARK}"), keep=["a=fmtp:63 111/111\r\n"])
typed("typed-fmtp-unlisted-format", "format parameters for a payload type the m= line does not list",
      SIPP.replace("a=ptime:20", f"a=fmtp:99 mode={MARK}\r\na=ptime:20"))
typed("typed-rtcp-fb", "a marker as an rtcp-fb parameter",
      CHROME.replace("a=rtcp-fb:96 nack pli", f"a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 nack {MARK}"), keep=["a=rtcp-fb:96 nack pli"])
typed("typed-ssrc-attribute", "a marker in an ssrc attribute nobody defined",
      CHROME.replace("a=ssrc:2002 cname:abcd1234", f"a=ssrc:2002 cname:abcd1234\r\na=ssrc:2002 x-data:{MARK}"), keep=["a=ssrc:2002 cname:"])
typed("typed-cname", "a marker as the cname of an ssrc (rewritten)",
      CHROME.replace("cname:abcd1234", f"cname:{MARK}"), keep=["a=ssrc:1001 cname:", "a=ssrc-group:FID 2001 2002"], reported=False)
typed("typed-msid", "a marker as the msid stream and track ids (rewritten)",
      CHROME.replace("stream1", MARK).replace("track1", MARK + "T"), keep=["a=msid:", "a=msid-semantic:WMS "], reported=False)
typed("typed-origin", "a marker in the origin: session id and address (rewritten)",
      SIPP.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1", "o=user1 8765432187654321987 2353687637 IN IP4 evil-marker.example"),
      hidden=["8765432187654321987", "evil-marker"], keep=["o=- "], reported=False)
typed("typed-group-semantics", "a marker as the semantics of a group",
      CHROME.replace("a=group:BUNDLE 0 1", f"a=group:BUNDLE 0 1\r\na=group:{MARK} 0"), keep=["a=group:BUNDLE 0 1"])
typed("typed-group-unknown-mid", "a group naming a media id that does not exist",
      CHROME.replace("a=group:BUNDLE 0 1", f"a=group:BUNDLE 0 1\r\na=group:LS 0 {MARK}"), keep=["a=group:BUNDLE 0 1"])
typed("typed-ssrc-group", "a marker as the semantics of an ssrc-group",
      CHROME.replace("a=ssrc-group:FID 2001 2002", f"a=ssrc-group:FID 2001 2002\r\na=ssrc-group:{MARK} 2001"), keep=["a=ssrc-group:FID 2001 2002"])
typed("typed-ice-options", "a marker among the ice-options tokens",
      CHROME.replace("a=ice-options:trickle", f"a=ice-options:trickle {MARK}"), keep=["a=ice-options:trickle\r\n"])
typed("typed-candidate-extension", "a marker as a candidate extension attribute",
      CHROME.replace("generation 0 network-id 1\r\na=candidate:842163049", f"generation 0 network-id 1 x-data {MARK}\r\na=candidate:842163049"),
      keep=["a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 network-id 1\r\n"])
typed("typed-candidate-type", "a marker as the type of a candidate",
      CHROME.replace("typ srflx", f"typ {MARK}"), keep=["a=candidate:1467250027 1 udp"])
typed("typed-crypto-suite", "a marker as an SDES crypto suite",
      SDES.replace("a=crypto:1", f"a=crypto:2 AES_{MARK} inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=crypto:1"),
      keep=["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"])
typed("typed-crypto-key-length", "a marker as an SDES key longer than its suite's",
      SDES.replace("a=crypto:1", f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{MARK}{MARK}\r\na=crypto:1"), keep=["a=crypto:1 "])
typed("typed-crypto-session-param", "a marker as an SDES session parameter",
      SDES.replace("|1:4", f"|1:4 X_{MARK}=1"), keep=["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"])
typed("typed-record", "a marker as the value of a=record (on, off, paused)",
      LINPHONE.replace("a=record:off", f"a=record:{MARK}"), keep=["a=rtcp-xr:"])
typed("typed-label", "a marker as a media label (at most 16 characters)",
      BARESIP.replace("a=label:1", f"a=label:{MARK}"), keep=["a=rtpmap:96 opus/48000/2"])
typed("typed-mid-too-long", "a marker as a media id (echoed in RTP: bounded, refused)",
      CHROME.replace("a=mid:1", f"a=mid:{MARK}").replace("BUNDLE 0 1", f"BUNDLE 0 {MARK}"), verdict="reject", status=488, hidden=())
typed("typed-ice-pwd-too-long", "a 100-character ICE password (echoed in STUN: bounded, refused)",
      CHROME.replace("bP+XJMM09aR8AiX1jdukzR6Y", MARK * 3), verdict="reject", status=488, hidden=())
typed("typed-display-name", "a marker longer than the display-name bound in From",
      invite("typed-display-name", SIPP, display=f"Alice {MARK}{MARK}"), hidden=[MARK + MARK, MARK[20:] + MARK], reported=False)
typed("typed-user-agent", "a marker in User-Agent (dropped by default)",
      invite("typed-user-agent", SIPP, extra=f"User-Agent: {MARK}/1.0 ({BLOB})\n"), hidden=[MARK, BLOB], reported=False)
typed("typed-organization", "a marker in Organization (dropped by default)",
      invite("typed-organization", SIPP, extra=f"Organization: {MARK}\n"), reported=False)
typed("typed-asserted-identity", "a caller asserting someone else's identity (P-Asserted-Identity)",
      invite("typed-asserted-identity", SIPP, extra="P-Asserted-Identity: <sip:ceo@bank.example>\n"), hidden=["ceo@bank.example"])
typed("residual-over-bound", "40 IPv6 candidates: more sender-chosen bytes than shield.max_residual_bytes", 
      SIPP + "".join(f"a=candidate:{i} 1 udp 2122260223 2001:db8::{i + 1:x} {10000 + i} typ host\r\n" for i in range(40)),
      verdict="reject", status=488, hidden=(), sipp=False)

case("header-unknown-x", "a blob in an unknown header", "accept",
     invite("header-unknown-x", SIPP, extra=f"X-Call-Settings: {BLOB}\n"), hidden=[BLOB])
case("header-alert-info", "a ringtone URL the phone would fetch (Alert-Info)", "accept",
     invite("header-alert-info", SIPP, extra="Alert-Info: <http://evil.example/ring.wav>\n"), hidden=["evil.example/ring.wav"])
case("header-call-info", "a caller picture URL the phone would fetch (Call-Info)", "accept",
     invite("header-call-info", SIPP, extra="Call-Info: <http://evil.example/face.jpg>;purpose=icon\n"), hidden=["face.jpg"], reported=False)
case("header-subject", "free text in Subject used as a side channel", "accept",
     invite("header-subject", SIPP, extra=f"Subject: {BLOB}\n"), hidden=[BLOB], reported=False)

# --- refused offers: the callee receives nothing
case("nul-byte-in-sdp", "a NUL byte inside an attribute", "reject",
     invite("nul-byte-in-sdp", SIPP.replace("a=ptime:20", "a=ptime:2\x000")), status=488, sipp=False)
case("control-bytes-in-sdp", "terminal escape sequences in the session name", "reject",
     invite("control-bytes-in-sdp", SIPP.replace("s=-", "s=\x1b[2J\x1b]0;pwn\x07")), status=488, sipp=False)
case("overflow-port", "a media port beyond 65535", "reject",
     invite("overflow-port", SIPP.replace("m=audio 6000", "m=audio 99999")), status=488)
case("overflow-payload-type", "an rtpmap payload type beyond 32 bits", "reject",
     invite("overflow-payload-type", SIPP.replace("a=rtpmap:101 telephone-event/8000", "a=rtpmap:4294967397 telephone-event/8000")), status=488)
case("overflow-session-version", "an o= version beyond 64 bits", "reject",
     invite("overflow-session-version", SIPP.replace("2353687637", "99999999999999999999999")), status=488)
case("overflow-clock-rate", "an rtpmap clock rate of 30 digits", "reject",
     invite("overflow-clock-rate", SIPP.replace("PCMU/8000", "PCMU/800000000000000000000000000000")), status=488)
case("oversized-line", "one 2000-byte fmtp line (sdp.max_line_length)", "reject",
     invite("oversized-line", SIPP.replace("a=fmtp:101 0-16", "a=fmtp:101 0-16;x=" + "A" * 2000)), status=488)
case("oversized-attribute", "a 250-byte host name in a candidate (shield.max_attribute_length)", "reject",
     invite("oversized-attribute", SIPP + "a=candidate:1 1 udp 1 " + ".".join(["b" * 60] * 4) + ".example 9 typ host\r\n"), status=488)
case("oversized-session-name", "a 200-byte session name (shield.max_sdp_text)", "reject",
     invite("oversized-session-name", SIPP.replace("s=-", "s=" + "D" * 200)), status=488)
case("too-many-media", "20 media sections (sdp.max_media)", "reject",
     invite("too-many-media", SIPP + "m=audio 7000 RTP/AVP 0\r\n" * 20), status=488)
case("too-many-candidates", "70 ICE candidates (sdp.max_candidates)", "reject",
     invite("too-many-candidates", SIPP + "".join(f"a=candidate:{i} 1 udp 2122260223 10.0.0.{i % 250 + 1} {10000 + i} typ host\r\n" for i in range(70))), status=488, sipp=False)
case("unknown-type-letter", "an SDP line type RFC 8866 does not define", "reject",
     invite("unknown-type-letter", SIPP + f"x={BLOB}\r\n"), status=488)
case("bad-fmtp-opus", "a blob as an opus format parameter opus does not define", "accept",
     invite("bad-fmtp-opus", BARESIP.replace("stereo=1;sprop-stereo=1", f"stereo=1;payload={BLOB}")), hidden=[BLOB], keep=["a=fmtp:96 stereo=1\r\n"])
case("bad-candidate", "a candidate line without its typ", "reject",
     invite("bad-candidate", SIPP + "a=candidate:1 1 udp 2122260223 10.0.0.1 10000 host\r\n"), status=488)
case("bad-fingerprint", "a fingerprint that is not hex pairs", "reject",
     invite("bad-fingerprint", SIPP + f"a=fingerprint:sha-256 {BLOB}\r\n"), status=488)
case("bad-rtpmap-no-clock", "an rtpmap without its clock rate (as in RFC 4475 examples)", "reject",
     invite("bad-rtpmap-no-clock", SIPP.replace("PCMA/8000", "PCMA")), status=488)
case("not-sdp-octet-stream", "an executable as the call offer", "reject",
     invite("not-sdp-octet-stream", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", ctype="application/octet-stream"), status=415, sipp=False)
case("not-sdp-text", "text/plain as the call offer", "reject",
     invite("not-sdp-text", BLOB, ctype="text/plain"), status=415)
case("not-sdp-no-type", "a body without Content-Type", "reject",
     invite("not-sdp-no-type", SIPP, ctype=""), status=415)
case("compressed-gzip", "a gzip-compressed body the server cannot inspect", "reject",
     invite("compressed-gzip", SIPP, extra="Content-Encoding: gzip\n"), status=415)
case("disposition-alert", "an SDP body marked as an alert to render", "reject",
     invite("disposition-alert", SIPP, extra="Content-Disposition: alert\n"), status=415)
mp_ok = f"--b1\r\nContent-Type: application/sdp\r\n\r\n{SIPP}\r\n--b1--\r\n"
case("multipart-sdp-only", "multipart/mixed with one SDP part: rebuilt with Palisade's boundary", "accept",
     invite("multipart-sdp-only", mp_ok, ctype="multipart/mixed;boundary=b1"), keep=["--palisade-part", "a=rtpmap:0 PCMU/8000"], hidden=["--b1"])
case("multipart-second-part", "a second, executable part next to the SDP", "reject",
     invite("multipart-second-part", f"--b1\r\nContent-Type: application/sdp\r\n\r\n{SIPP}\r\n--b1\r\nContent-Type: application/x-sharedlib\r\n\r\n{BLOB}\r\n--b1--\r\n", ctype="multipart/mixed;boundary=b1"), status=415)
case("multipart-preamble", "a blob in the multipart preamble (ignored by parsers, read by some)", "reject",
     invite("multipart-preamble", f"{BLOB}\r\n" + mp_ok, ctype="multipart/mixed;boundary=b1"), status=415)
case("multipart-epilogue", "a blob after the closing boundary", "reject",
     invite("multipart-epilogue", mp_ok + BLOB, ctype="multipart/mixed;boundary=b1"), status=415)
case("multipart-nested", "a multipart inside a multipart", "reject",
     invite("multipart-nested", f"--b1\r\nContent-Type: multipart/mixed;boundary=b2\r\n\r\n--b2\r\nContent-Type: application/sdp\r\n\r\n{SIPP}\r\n--b2--\r\n--b1--\r\n", ctype="multipart/mixed;boundary=b1"), status=415)
case("multipart-part-header", "an unknown header inside a part", "reject",
     invite("multipart-part-header", f"--b1\r\nContent-Type: application/sdp\r\nX-Payload: {BLOB}\r\n\r\n{SIPP}\r\n--b1--\r\n", ctype="multipart/mixed;boundary=b1"), status=415)
case("header-oversized-allowed", "an allowed header stretched to 2000 bytes (shield.max_header_length)", "reject",
     invite("header-oversized-allowed", SIPP, extra="Session-Expires: 1800;x=" + "E" * 2000 + "\n"), status=400)
case("display-name-control", "control characters in the caller's display name (legal as quoted-pairs)", "reject",
     invite("display-name-control", SIPP, display="Bank\\\x07\\\x1b[31m"), status=400, sipp=False)

with open(os.path.join(HERE, "cases.toml"), "w") as f:
    f.write("# Written by generate.py. One [[case]] per file NAME.sip: what it tries, the verdict\n")
    f.write("# the shield must reach (status for a refusal), strings that must reach the callee\n")
    f.write("# (keep) and strings that must not (hidden). sipp = false: the bytes cannot be carried in\n")
    f.write("# a SIPp XML scenario (control bytes, exact line ends), so the test sends them raw.\n\n")
    for c in cases:
        f.write("[[case]]\n")
        f.write(f'name = "{c["name"]}"\n')
        f.write(f'tries = "{c["tries"]}"\n')
        f.write(f'verdict = "{c["verdict"]}"\n')
        if c["status"]:
            f.write(f'status = {c["status"]}\n')
        def arr(xs):
            return "[" + ", ".join('"' + x.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"' for x in xs) + "]"
        f.write(f'hidden = {arr(c["hidden"])}\n')
        f.write(f'keep = {arr(c["keep"])}\n')
        f.write(f'sipp = {"true" if c["sipp"] else "false"}\n')
        if not c["reported"]:
            f.write('reported = false  # rewritten or removed by shield.text.*: routine, not reported\n')
        f.write('\n')
print(len(cases), "cases")
