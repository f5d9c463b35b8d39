//! A closed-loop REGISTER load much lighter than SIPp, for measuring a registrar's rate
//! and CPU per registration on a machine whose cores the load generator shares
//! (`bench/reg_load` runs it against Palisade with one and two workers and against
//! Kamailio). SIPp spends about twice Palisade's CPU per registration, so on two cores
//! it fills the machine first; this spends about a sixth of SIPp's.
//!
//! Each of SOCKETS threads owns one UDP socket (its own source port, so the kernel's
//! `SO_REUSEPORT` hash spreads them over the workers' sockets) and keeps WINDOW
//! registrations in flight: REGISTER, 401 with a digest challenge, REGISTER with MD5
//! credentials (qop=auth), 200. Every registration is a new account `PREFIX1`..`PREFIXN`
//! (imported beforehand with `palisade user import`), realm and domain 127.0.0.1.
//! A registration whose answer does not come within two seconds, or that gets anything
//! but 401 then 200, counts as failed (none is sent again).
//!
//! `reg_load SERVER:PORT PREFIX N PASSWORD [SOCKETS] [WINDOW] [SERVER_PIDS]`
//!
//! Prints one line of `key=value`: registrations done and failed, the seconds they took,
//! the rate, and the CPU time (µs per registration) of this process and, with
//! SERVER_PIDS (comma-separated: every process of a server that forks, as Kamailio
//! does), of the server (from `/proc/PID/stat`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::print_stdout
)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// utime + stime of a process, in seconds (USER_HZ 100).
fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

/// The value of the first header line named `name` (case-insensitive).
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// `key="value"` (or `key=value`) in a challenge.
fn param<'a>(challenge: &'a str, key: &str) -> Option<&'a str> {
    let at = challenge.find(&format!("{key}="))? + key.len() + 1;
    let rest = &challenge[at..];
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next(),
        None => rest.split([',', ' ']).next(),
    }
}

struct Run {
    server: SocketAddr,
    prefix: String,
    password: String,
    total: u64,
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

fn register(run: &Run, local: SocketAddr, user: u64, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let (domain, name) = (run.server, format!("{}{user}", run.prefix));
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-{user}-{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{name}@{domain}>;tag=rl{user}\r\n\
         To: <sip:{name}@{domain}>\r\n\
         Call-ID: rl-{user}@127.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{name}@{local};transport=udp>\r\n\
         {auth}Expires: 3600\r\n\
         User-Agent: reg-load\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// One socket's closed loop: up to `window` registrations in flight until every user
/// is taken and answered.
fn worker(run: &Run, window: usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let uri = format!("sip:{}", run.server);
    let ha2 = md5_hex(&["REGISTER", &uri]);
    // Call-ID -> (user, when its last request left)
    let mut flight: HashMap<String, (u64, Instant)> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        while flight.len() < window {
            let user = run.next.fetch_add(1, Ordering::Relaxed) + 1;
            if user > run.total {
                break;
            }
            sock.send_to(&register(run, local, user, 1, None), run.server)
                .unwrap();
            flight.insert(format!("rl-{user}@127.0.0.1"), (user, Instant::now()));
        }
        if flight.is_empty() {
            return;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let msg = String::from_utf8_lossy(&buf[..n]);
                let Some(call_id) = header(&msg, "Call-ID") else {
                    continue;
                };
                let Some(&(user, _)) = flight.get(call_id) else {
                    continue;
                };
                let status = msg.get(8..11).unwrap_or("");
                match status {
                    "100" => {}
                    "401" => {
                        let ch = header(&msg, "WWW-Authenticate").unwrap_or("");
                        let (Some(realm), Some(nonce)) = (param(ch, "realm"), param(ch, "nonce"))
                        else {
                            run.failed.fetch_add(1, Ordering::Relaxed);
                            flight.remove(call_id);
                            continue;
                        };
                        let name = format!("{}{user}", run.prefix);
                        let ha1 = md5_hex(&[&name, realm, &run.password]);
                        let resp = md5_hex(&[&ha1, nonce, "00000001", "rl", "auth", &ha2]);
                        let opaque = param(ch, "opaque")
                            .map_or(String::new(), |o| format!(", opaque=\"{o}\""));
                        let auth = format!(
                            "Digest username=\"{name}\", realm=\"{realm}\", nonce=\"{nonce}\", \
                             uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, \
                             nc=00000001, cnonce=\"rl\"{opaque}"
                        );
                        sock.send_to(&register(run, local, user, 2, Some(&auth)), run.server)
                            .unwrap();
                        let key = call_id.to_string();
                        flight.insert(key, (user, Instant::now()));
                    }
                    "200" => {
                        run.done.fetch_add(1, Ordering::Relaxed);
                        let key = call_id.to_string();
                        flight.remove(&key);
                    }
                    _ => {
                        run.failed.fetch_add(1, Ordering::Relaxed);
                        let key = call_id.to_string();
                        flight.remove(&key);
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("receive: {e}"),
        }
        // what waited too long has failed
        let before = flight.len();
        flight.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(2));
        run.failed
            .fetch_add((before - flight.len()) as u64, Ordering::Relaxed);
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: reg_load SERVER:PORT PREFIX N PASSWORD [SOCKETS] [WINDOW] [SERVER_PIDS]");
        std::process::exit(2);
    }
    let sockets: usize = a.get(4).map_or(8, |s| s.parse().unwrap());
    let window: usize = a.get(5).map_or(32, |s| s.parse().unwrap());
    let pid = a.get(6).cloned();
    let run = Arc::new(Run {
        server: a[0].parse().unwrap(),
        prefix: a[1].clone(),
        total: a[2].parse().unwrap(),
        password: a[3].clone(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let server_cpu = |pids: &str| pids.split(',').map(cpu_s).sum::<f64>();
    let (mine0, server0) = (cpu_s("self"), pid.as_deref().map(server_cpu));
    let start = Instant::now();
    let threads: Vec<_> = (0..sockets)
        .map(|_| {
            let run = Arc::clone(&run);
            std::thread::spawn(move || worker(&run, window))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let done = run.done.load(Ordering::Relaxed);
    let per = |s: f64| s * 1e6 / done.max(1) as f64;
    let mine = per(cpu_s("self") - mine0);
    let server = match (pid.as_deref(), server0) {
        (Some(p), Some(s0)) => format!("{:.1}", per(server_cpu(p) - s0)),
        _ => "-".into(),
    };
    println!(
        "done={done} failed={} seconds={secs:.2} rate={:.0} load_cpu_us={mine:.1} server_cpu_us={server}",
        run.failed.load(Ordering::Relaxed),
        done as f64 / secs
    );
}
