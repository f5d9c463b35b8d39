#!/usr/bin/env python3
"""A bounded flood of corrupted SIP datagrams, for measuring what share of legitimate
calls still completes while it runs (bench/flood). Loopback targets only; stops after
DURATION seconds or COUNT datagrams, whichever comes first.

usage: flood_gen.py HOST PORT RATE DURATION [SOURCE_IP]
"""
import random
import signal
import socket
import sys
import time

host, port, rate, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
src = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.2"
if not (host.startswith("127.") or host == "::1"):
    sys.exit("flood_gen.py: loopback targets only")
COUNT = int(rate * duration)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
TEMPLATES = [
    "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKF{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:callee1@127.0.0.1>;tag=f\r\nTo: <sip:callee1@127.0.0.1>\r\nCall-ID: fr{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:x@127.0.0.2:5999>\r\nContent-Length: 0\r\n\r\n",
    "INVITE sip:callee1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKF{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller1@127.0.0.1>;tag=f\r\nTo: <sip:callee1@127.0.0.1>\r\nCall-ID: fi{i}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: " + str(len(SDP)) + "\r\n\r\n" + SDP,
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKF{i}\r\nMax-Forwards: 70\r\nFrom: <sip:x@127.0.0.2>;tag=f\r\nTo: <sip:127.0.0.1>\r\nCall-ID: fo{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKpalF{i}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\nCall-ID: fs{i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
]
JUNK = ["é".encode(), b"\xff\xfe", b"\x00", b"\x01", b"\r\n", b'"', b"<", b"[::1", b"999.1.1.1",
        b"99999999999999999999", b"%zz", b"Content-Length: 99999\r\n"]

rng = random.Random(4711)
msgs = []
for i in range(4096):
    m = bytearray(rng.choice(TEMPLATES).format(i=i).encode())
    for _ in range(1 + rng.randrange(3)):
        at = rng.randrange(len(m) + 1)
        m[at:at] = rng.choice(JUNK)
    msgs.append(bytes(m))

def report(*_):
    print(f"flood_gen: sent {sent} datagrams in {time.monotonic() - start:.1f} s from {src}"
          f" ({sent / max(time.monotonic() - start, 1e-9):.0f}/s)", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
sent = 0
start = time.monotonic()
batch = max(1, rate // 100)
while sent < COUNT and time.monotonic() - start < duration:
    for _ in range(batch):
        try:
            s.sendto(msgs[sent % len(msgs)], (host, port))
        except OSError:
            pass
        sent += 1
    # pace to RATE per second
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
report()
