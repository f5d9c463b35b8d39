//! Load for the media relay (`bench/media` runs it against a release server): sets up
//! CALLS calls through the server (its `[auth]` off, so that no digest is needed), then
//! streams RTP both ways on every call at PPS packets a second per stream for SECONDS,
//! and prints the packets the relay delivered, the server's CPU time per delivered
//! packet (from `/proc/PID/stat`), and the loopback floor measured in the same run (this
//! process's CPU per datagram for a plain send and receive on loopback).
//!
//! `cargo run --release --example relay_bench -- SERVER:PORT SERVER_PID CALLS PPS SECONDS`
//! (`THREADS`, default 2: the generator threads the calls are split among)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // fields 14 and 15 (utime, stime), counted from the state field as 3
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn ticks_per_s() -> f64 {
    100.0 // USER_HZ on Linux
}

fn recv_text(s: &UdpSocket) -> Option<String> {
    let mut buf = [0u8; 65536];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

fn media_port(msg: &str) -> u16 {
    msg.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an m=audio line")
}

fn rtp(seq: u16, ssrc: u32) -> [u8; 172] {
    let mut p = [0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

/// CPU time of this process per datagram for sends and receives on loopback.
fn floor_us() -> f64 {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_nonblocking(true).unwrap();
    let to = b.local_addr().unwrap();
    let p = rtp(1, 1);
    let mut buf = [0u8; 2048];
    let me = std::process::id().to_string();
    let n = 200_000;
    let t0 = cpu_ticks(&me);
    let mut got = 0;
    for i in 0..n {
        a.send_to(&p, to).unwrap();
        if i % 32 == 31 {
            while b.recv_from(&mut buf).is_ok() {
                got += 1;
            }
        }
    }
    while b.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    let t1 = cpu_ticks(&me);
    let ops = (n + got) as f64;
    (t1 - t0) as f64 / ticks_per_s() * 1e6 / ops
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let server: SocketAddr = args[1].parse().unwrap();
    let pid = args[2].clone();
    let calls: usize = args[3].parse().unwrap();
    let pps: u64 = args[4].parse().unwrap();
    let seconds: u64 = args[5].parse().unwrap();
    let domain = server.to_string();

    // the callee: one SIP socket answering every INVITE, one media socket per call
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    uas.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let uac = UdpSocket::bind("127.0.0.1:0").unwrap();
    uac.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (ua, us) = (uac.local_addr().unwrap(), uas.local_addr().unwrap());
    uas.send_to(format!("REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {us};branch=z9hG4bKbreg\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{domain}>;tag=r\r\nTo: <sip:bob@{domain}>\r\nCall-ID: bench-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{us}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n").as_bytes(), server).unwrap();
    let r = recv_text(&uas).expect("REGISTER answered");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");

    let mut legs: Vec<(UdpSocket, SocketAddr, UdpSocket, SocketAddr)> = Vec::new();
    for i in 0..calls {
        let a_media = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_media = UdpSocket::bind("127.0.0.1:0").unwrap();
        a_media.set_nonblocking(true).unwrap();
        b_media.set_nonblocking(true).unwrap();
        let sdp = |port: u16| {
            format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n")
        };
        let offer = sdp(a_media.local_addr().unwrap().port());
        uac.send_to(format!("INVITE sip:bob@{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKbi{i}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{domain}>;tag=a{i}\r\nTo: <sip:bob@{domain}>\r\nCall-ID: bench-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ua}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len()).as_bytes(), server).unwrap();
        // the callee answers what the relay offered it
        let inv = loop {
            let m = recv_text(&uas).expect("the INVITE reaches the callee");
            if m.starts_with("INVITE ") {
                break m;
            }
        };
        let b_relay = SocketAddr::from(([127, 0, 0, 1], media_port(&inv)));
        let answer = sdp(b_media.local_addr().unwrap().port());
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for h in ["Via", "Record-Route", "From", "Call-ID", "CSeq"] {
            for v in header(&inv, h) {
                resp.push_str(&format!("{h}: {v}\r\n"));
            }
        }
        let to = header(&inv, "To")[0];
        resp.push_str(&format!("To: {to};tag=b{i}\r\nContact: <sip:bob@{us}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}", answer.len()));
        uas.send_to(resp.as_bytes(), server).unwrap();
        let ok = loop {
            let m = recv_text(&uac).expect("the 200 reaches the caller");
            if m.starts_with("SIP/2.0 200") {
                break m;
            }
        };
        let a_relay = SocketAddr::from(([127, 0, 0, 1], media_port(&ok)));
        let routes: String = header(&ok, "Record-Route")
            .iter()
            .map(|r| format!("Route: {r}\r\n"))
            .collect();
        let to = header(&ok, "To")[0];
        uac.send_to(format!("ACK sip:bob@{us} SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKba{i}\r\n{routes}Max-Forwards: 70\r\nFrom: <sip:alice@{domain}>;tag=a{i}\r\nTo: {to}\r\nCall-ID: bench-{i}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").as_bytes(), server).unwrap();
        legs.push((a_media, a_relay, b_media, b_relay));
    }
    std::thread::sleep(Duration::from_millis(300));

    let floor = floor_us();
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2)
        .max(1);
    let t0 = cpu_ticks(&pid);
    let start = Instant::now();
    // the calls split among THREADS generator threads, each sending its share every
    // 10 ms and draining what came back
    let per_thread = legs.len().div_ceil(threads);
    let mut parts: Vec<Vec<(UdpSocket, SocketAddr, UdpSocket, SocketAddr)>> = Vec::new();
    let mut legs = legs;
    while !legs.is_empty() {
        let rest = legs.split_off(per_thread.min(legs.len()));
        parts.push(std::mem::replace(&mut legs, rest));
    }
    let handles: Vec<_> = parts
        .into_iter()
        .enumerate()
        .map(|(t, part)| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let (mut sent, mut got) = (0u64, 0u64);
                let mut seq: u16 = 0;
                let slice = Duration::from_millis(10);
                let per_slice = (pps / 100).max(1);
                let mut next = start;
                let drain = |part: &[(UdpSocket, SocketAddr, UdpSocket, SocketAddr)],
                             buf: &mut [u8],
                             got: &mut u64| {
                    for (a, _, b, _) in part {
                        while a.recv_from(buf).is_ok() {
                            *got += 1;
                        }
                        while b.recv_from(buf).is_ok() {
                            *got += 1;
                        }
                    }
                };
                while start.elapsed() < Duration::from_secs(seconds) {
                    for _ in 0..per_slice {
                        seq = seq.wrapping_add(1);
                        for (i, (a, ar, b, br)) in part.iter().enumerate() {
                            let ssrc = (t * 100_000 + i) as u32;
                            if a.send_to(&rtp(seq, ssrc), *ar).is_ok() {
                                sent += 1;
                            }
                            if b.send_to(&rtp(seq, ssrc | 0x8000_0000), *br).is_ok() {
                                sent += 1;
                            }
                        }
                    }
                    drain(&part, &mut buf, &mut got);
                    next += slice;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
                drain(&part, &mut buf, &mut got);
                (sent, got)
            })
        })
        .collect();
    let (mut sent, mut got) = (0u64, 0u64);
    for h in handles {
        let (s, g) = h.join().unwrap();
        sent += s;
        got += g;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_s = (cpu_ticks(&pid) - t0) as f64 / ticks_per_s();
    let per_packet_us = cpu_s * 1e6 / got.max(1) as f64;
    println!(
        "calls {calls}, streams {}, {pps} packets/s per stream, {elapsed:.1} s",
        calls * 2
    );
    println!(
        "sent {sent}, delivered {got} ({:.1} %)",
        got as f64 * 100.0 / sent.max(1) as f64
    );
    println!("delivered packets/s: {:.0}", got as f64 / elapsed);
    println!("server CPU: {cpu_s:.2} s, {per_packet_us:.2} us per delivered packet");
    println!("loopback floor: {floor:.2} us per datagram operation (send or receive)");
    println!("ratio to the floor: {:.2}", per_packet_us / floor);
}
