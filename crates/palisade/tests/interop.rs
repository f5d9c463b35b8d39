//! Real clients nobody here wrote, against the real binary with its default digest
//! configuration: baresip 1.0 to baresip over UDP and TCP (register, call, auto-answer,
//! audio both ways, hang-up from either end), a protected callee, and SIPp caller and
//! callee. Accounts are `alice`, `bob` and `carol` with password `secret` on the domain
//! `localhost`, as the README's "Connect a phone" section tells a newcomer.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The default `auth.algorithms`, written out (the harness passes MD5 alone otherwise).
const DEFAULT_AUTH: [&str; 2] = ["--auth-algorithms", "sha-256,md5"];

/// The wire fingerprints shipped in `dist/profiles.toml`, per family.
fn shipped_profiles() -> std::collections::BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join("dist/profiles.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

/// Every device of `families` the server saw (linphone-daemon's User-Agent is
/// `Unknown`, so its family is `unknown`) (registrations and calls) writes SIP as
/// the profiles shipped for its family say, and nothing was taken for an imitation:
/// the shipped profiles are those of the real clients.
fn devices_match_the_shipped_profiles(s: &Server, families: &[&str]) {
    let profiles = shipped_profiles();
    let dir = s.dir.clone();
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&cli(&dir, args).stdout).unwrap()
    };
    let mut seen = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            seen.clear();
            for d in json(&["report", "devices", "--json"])["devices"]
                .as_array()
                .unwrap()
            {
                seen.push((
                    d["family"].as_str().unwrap().to_string(),
                    d["fingerprint"].as_str().unwrap().to_string(),
                ));
            }
            for c in json(&["calls", "--json"])["calls"].as_array().unwrap() {
                let family = c["user_agent"]
                    .as_str()
                    .unwrap()
                    .split(['/', ' ', '('])
                    .next()
                    .unwrap()
                    .to_ascii_lowercase();
                seen.push((family, c["fingerprint"].as_str().unwrap().to_string()));
            }
            families.iter().all(|f| seen.iter().any(|(sf, _)| sf == f))
        }),
        "every family was seen: {seen:?}"
    );
    let unknown: Vec<String> = seen
        .iter()
        .filter(|(f, fp)| {
            families.contains(&f.as_str()) && !profiles.get(f).is_some_and(|l| l.contains(fp))
        })
        .map(|(f, fp)| format!("{f} = [\"{fp}\"]"))
        .collect();
    assert!(
        unknown.is_empty(),
        "fingerprints not in dist/profiles.toml: {unknown:?}"
    );
    let findings = json(&["report", "findings", "--json"]);
    assert!(
        !findings.to_string().contains("imitation-client"),
        "a real client was taken for an imitation: {findings}"
    );
}

fn server(tag: &str, users: &[&str]) -> Server {
    let port = ports();
    let dir = tempdir(tag);
    for u in users {
        let out = cli(&dir, &["user", "add", u, "--password", "secret"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut extra = vec!["--domain", "localhost"];
    extra.extend(DEFAULT_AUTH);
    Server::start_in(dir, port, &extra)
}

/// An 8 kHz tone for baresip's audio source (its `ausine` module only does 48 kHz).
fn tone(dir: &Path) -> PathBuf {
    let path = dir.join("tone.wav");
    let rate = 8000u32;
    let samples: Vec<u8> = (0..rate * 20)
        .flat_map(|i| {
            let v = (8000.0
                * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / f64::from(rate)).sin())
                as i16;
            v.to_le_bytes()
        })
        .collect();
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    std::fs::write(&path, wav).unwrap();
    path
}

/// A baresip instance: its config directory and output.
struct Phone {
    dir: PathBuf,
    out: PathBuf,
}

/// Writes a baresip configuration for `user` listening on `sip_port`, registering with
/// the server over `transport` through the README's account line.
fn phone(s: &Server, user: &str, sip_port: u16, rtp: u16, transport: &str) -> Phone {
    let dir = s.dir.join(format!("baresip-{user}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tone = tone(&dir);
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method\tepoll\nsip_listen\t127.0.0.1:{sip_port}\naudio_source\taufile,{}\naudio_alert\taufile,/dev/null\nrtp_ports\t{rtp}-{}\nmodule_path\t/usr/lib/baresip/modules\nmodule\tstdio.so\nmodule\tg711.so\nmodule\taufile.so\nmodule_app\taccount.so\nmodule_app\tmenu.so\n",
            tone.display(),
            rtp + 9
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:{user}@localhost;transport={transport}>;auth_pass=secret;outbound=\"sip:127.0.0.1:{};transport={transport}\";regint=60;answermode=auto\n",
            s.port
        ),
    )
    .unwrap();
    let out = dir.join("out.txt");
    Phone { dir, out }
}

impl Phone {
    /// Runs baresip for `secs` seconds (it then hangs up and unregisters), with
    /// `commands` (e.g. `/dial sip:bob@localhost`).
    fn run(&self, secs: u32, commands: &[&str]) -> Child {
        let mut c = Command::new("timeout");
        c.args(["-k", "3", &(secs + 8).to_string(), "baresip", "-s", "-f"])
            .arg(&self.dir)
            .args(["-t", &secs.to_string()]);
        for cmd in commands {
            c.args(["-e", cmd]);
        }
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(&self.out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip must be installed (test.sh installs baresip-core)")
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .replace('\r', "")
    }
}

/// The SIP messages in a baresip `-s` trace, each as its text.
fn messages(trace: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in trace.lines() {
        let line = line.trim_start_matches(|c: char| {
            c == '\u{1b}' || c == '[' || c.is_ascii_digit() || c == ';' || c == 'm'
        });
        let starts = line.starts_with("SIP/2.0 ")
            || [
                "INVITE ",
                "ACK ",
                "BYE ",
                "CANCEL ",
                "REGISTER ",
                "OPTIONS ",
            ]
            .iter()
            .any(|m| line.starts_with(m) && line.ends_with("SIP/2.0"));
        if starts {
            if let Some(m) = cur.take() {
                out.push(m);
            }
            cur = Some(String::new());
        }
        if let Some(m) = cur.as_mut() {
            if line.is_empty() {
                out.push(std::mem::take(m));
                cur = None;
            } else {
                m.push_str(line);
                m.push('\n');
            }
        }
    }
    out.extend(cur);
    out
}

fn has(msgs: &[String], start: &str, cseq_method: &str) -> bool {
    msgs.iter().any(|m| {
        m.starts_with(start)
            && m.lines()
                .any(|l| l.starts_with("CSeq:") && l.ends_with(&format!(" {cseq_method}")))
    })
}

/// This side received RTP: baresip reports the first incoming packet of the audio
/// stream ("incoming rtp for 'audio' established, receiving from ..."). Checked on both
/// phones, it shows audio flowing both ways.
fn received_audio(out: &str) -> bool {
    out.contains("incoming rtp for 'audio' established")
}

/// ... and from a port of the media relay (`[media] ports`, 30000-39999 by default): the
/// audio went through the relay, not straight from the other phone.
fn received_audio_from_the_relay(out: &str) -> bool {
    out.lines()
        .filter_map(|l| {
            l.split("incoming rtp for 'audio' established, receiving from ")
                .nth(1)
        })
        .filter_map(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        .any(|a| (30_000..40_000).contains(&a.port()))
}

fn baresip_call(transport: &str, callee_hangs_up: bool) {
    let s = server(&format!("baresip-{transport}"), &["alice", "bob"]);
    let bob = phone(&s, "bob", s.port + 4, s.port + 1000, transport);
    let alice = phone(&s, "alice", s.port + 6, s.port + 1020, transport);
    // bob answers automatically; whoever's run ends first hangs up.
    let (bob_secs, alice_secs) = if callee_hangs_up { (6, 10) } else { (10, 6) };
    let mut b = bob.run(bob_secs, &[]);
    assert!(wait_registered(&s.dir, "bob@localhost"), "bob registered");
    let mut a = alice.run(alice_secs, &["/dial sip:bob@localhost"]);
    let _ = a.wait();
    let _ = b.wait();
    let (ao, bo) = (alice.output(), bob.output());
    let (am, bm) = (messages(&ao), messages(&bo));
    let ctx = || {
        format!(
            "--- alice\n{ao}\n--- bob\n{bo}\n--- server\n{}",
            s.log_text()
        )
    };
    for (msgs, start, method, what) in [
        (&am, "SIP/2.0 200", "REGISTER", "alice registered"),
        (&bm, "SIP/2.0 200", "REGISTER", "bob registered"),
        (&am, "SIP/2.0 407", "INVITE", "the caller was challenged"),
        (&am, "SIP/2.0 200", "INVITE", "the call was answered"),
        (&bm, "ACK ", "ACK", "the ACK reached the callee"),
    ] {
        assert!(has(msgs, start, method), "{what}\n{}", ctx());
    }
    assert!(received_audio(&ao), "alice received bob's audio\n{}", ctx());
    assert!(received_audio(&bo), "bob received alice's audio\n{}", ctx());
    assert!(
        received_audio_from_the_relay(&ao) && received_audio_from_the_relay(&bo),
        "both through the media relay\n{}",
        ctx()
    );
    // whoever hangs up sends the BYE and gets its 200; the other side receives it
    let ((hm, hname), (om, oname)) = if callee_hangs_up {
        ((&bm, "bob"), (&am, "alice"))
    } else {
        ((&am, "alice"), (&bm, "bob"))
    };
    assert!(has(hm, "BYE ", "BYE"), "{hname} hung up\n{}", ctx());
    assert!(
        has(hm, "SIP/2.0 200", "BYE"),
        "{hname}'s BYE got 200\n{}",
        ctx()
    );
    assert!(has(om, "BYE ", "BYE"), "the BYE reached {oname}\n{}", ctx());
    assert!(
        !has(&am, "SIP/2.0 404", "BYE") && !has(&bm, "SIP/2.0 404", "BYE"),
        "no BYE was answered 404\n{}",
        ctx()
    );
    devices_match_the_shipped_profiles(&s, &["baresip"]);
}

#[test]
fn baresip_to_baresip_over_udp_caller_hangs_up() {
    baresip_call("udp", false);
}

#[test]
fn baresip_to_baresip_over_udp_callee_hangs_up() {
    baresip_call("udp", true);
}

#[test]
fn baresip_to_baresip_over_tcp_caller_hangs_up() {
    baresip_call("tcp", false);
}

#[test]
fn baresip_to_baresip_over_tcp_callee_hangs_up() {
    baresip_call("tcp", true);
}

/// bob is protected and allows alice: alice's call rings and connects; carol's never
/// reaches bob's phone.
#[test]
fn baresip_protected_callee_rings_only_for_the_allowed_caller() {
    let s = server("baresip-protected", &["alice", "bob", "carol"]);
    for args in [
        &["user", "protect", "bob"][..],
        &["user", "allow", "bob", "alice"][..],
    ] {
        let out = cli(&s.dir, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(1500)); // the server reloads accounts each second
    let bob = phone(&s, "bob", s.port + 4, s.port + 1000, "udp");
    let alice = phone(&s, "alice", s.port + 6, s.port + 1020, "udp");
    let carol = phone(&s, "carol", s.port + 8, s.port + 1040, "udp");
    let mut b = bob.run(12, &[]);
    assert!(wait_registered(&s.dir, "bob@localhost"), "bob registered");
    let mut c = carol.run(4, &["/dial sip:bob@localhost"]);
    let _ = c.wait();
    let mut a = alice.run(5, &["/dial sip:bob@localhost"]);
    let _ = a.wait();
    let _ = b.wait();
    let (ao, bo, co) = (alice.output(), bob.output(), carol.output());
    let (am, bm, cm) = (messages(&ao), messages(&bo), messages(&co));
    let ctx = || {
        format!(
            "--- alice\n{ao}\n--- bob\n{bo}\n--- carol\n{co}\n--- server\n{}",
            s.log_text()
        )
    };
    assert!(
        has(&cm, "SIP/2.0 480", "INVITE"),
        "carol is refused with 480\n{}",
        ctx()
    );
    let invites_to_bob: Vec<&String> = bm.iter().filter(|m| m.starts_with("INVITE ")).collect();
    assert_eq!(
        invites_to_bob.len(),
        1,
        "only alice's call reached bob\n{}",
        ctx()
    );
    assert!(invites_to_bob[0].contains("alice@localhost"), "{}", ctx());
    assert!(
        has(&am, "SIP/2.0 200", "INVITE"),
        "alice's call connected\n{}",
        ctx()
    );
    assert!(received_audio(&ao) && received_audio(&bo), "{}", ctx());
}

/// SIPp (3.6) as caller and callee with the default digest configuration: its first
/// challenge is MD5 alone (its User-Agent is listed), the call completes.
#[test]
fn sipp_caller_and_callee_with_default_digest_algorithms() {
    let port = ports();
    let dir = tempdir("sipp-default-auth");
    add_users(&dir, &["alice", "bob"]);
    let s = Server::start_in(dir, port, &DEFAULT_AUTH);
    let uas_port = s.port + 1;
    let (ok, trace) = sipp_register(&s, "reg", "bob", uas_port, s.port + 2, "register.xml", &[]);
    assert!(ok, "REGISTER failed:\n{trace}\n{}", s.log_text());
    assert!(
        trace.contains("algorithm=MD5") && !trace.contains("algorithm=SHA-256"),
        "{trace}"
    );
    let uas = sipp_uas(&s, "uas", "uas.xml", uas_port, &[]);
    let (ok, trace) = sipp_call(
        &s,
        "uac",
        "alice",
        "bob",
        "uac.xml",
        s.port + 3,
        &["-d", "200"],
    );
    assert!(ok, "call failed:\n{trace}\n{}", s.log_text());
    let (uas_ok, uas_trace) = uas.finish();
    assert!(uas_ok, "UAS failed:\n{uas_trace}");
    assert!(uas_trace.contains("ACK sip:") && uas_trace.contains("BYE sip:"));
    devices_match_the_shipped_profiles(&s, &["sipp-bench"]);
}

/// A caller and a PBX-like callee on the server's own host at other ports, whose Contact
/// users are not account names (`alice-ua-77`, `pbx-trunk-9`): ACK, re-INVITE, UPDATE,
/// INFO in both directions and the callee's BYE all follow the dialog's route to the
/// other peer (they used to be looked up as local users and answered 404).
#[test]
fn sipp_dialog_with_a_pbx_on_the_same_host() {
    let port = ports();
    let dir = tempdir("sipp-pbx");
    add_users(&dir, &["alice", "bob"]);
    let s = Server::start_in(dir, port, &DEFAULT_AUTH);
    let uas_port = s.port + 1;
    let keys = [
        "-key",
        "contact_user",
        "pbx-trunk-9",
        "-key",
        "contact_host",
        "127.0.0.1",
        "-key",
        "contact_port",
    ];
    let inf = csv(
        &s,
        "reg.csv",
        &["bob;[authentication username=bob password=secret]".to_string()],
    );
    let sf = scenario("register_contact.xml");
    let (cport, lport) = (uas_port.to_string(), (s.port + 2).to_string());
    let mut args: Vec<&str> = vec!["-sf", sf.to_str().unwrap(), "-inf", inf.to_str().unwrap()];
    args.extend(keys);
    let domain = s.domain();
    args.extend([
        cport.as_str(),
        "-key",
        "expires",
        "3600",
        "-key",
        "domain",
        &domain,
    ]);
    args.extend(["-m", "1", "-p", &lport]);
    let (ok, trace) = sipp(&s, "reg", &args);
    assert!(ok, "REGISTER failed:\n{trace}\n{}", s.log_text());
    let uas = sipp_uas(&s, "pbx", "dialog_uas.xml", uas_port, &[]);
    let (ok, trace) = sipp_call(&s, "ua", "alice", "bob", "dialog_uac.xml", s.port + 3, &[]);
    let (uas_ok, uas_trace) = uas.finish();
    assert!(
        ok,
        "caller failed:\n{trace}\n--- pbx\n{uas_trace}\n{}",
        s.log_text()
    );
    assert!(uas_ok, "PBX failed:\n{uas_trace}\n--- caller\n{trace}");
    for m in ["ACK", "INVITE", "UPDATE", "INFO"] {
        assert!(
            uas_trace.contains(&format!("{m} sip:pbx-trunk-9@127.0.0.1:{uas_port}")),
            "{m} from the caller reached the PBX"
        );
    }
    for m in ["INVITE", "UPDATE", "INFO", "BYE"] {
        assert!(
            trace.contains(&format!("{m} sip:alice-ua-77@127.0.0.1:")),
            "{m} from the PBX reached the caller"
        );
    }
    assert!(!trace.contains("SIP/2.0 404") && !uas_trace.contains("SIP/2.0 404"));
}

/// A Linphone 5.1 account for `user`: a headless `linphone-daemon` home (it needs a
/// writable `~/.local/share/linphone`) and its rc file, registering with the server over
/// `transport` and routing calls through it.
fn linphone_rc(s: &Server, user: &str, sip_port: u16, rtp: u16, transport: &str) -> PathBuf {
    let home = s.dir.join(format!("linphone-{user}"));
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    let (udp, tcp) = if transport == "tcp" {
        (-1, i32::from(sip_port))
    } else {
        (i32::from(sip_port), -1)
    };
    std::fs::write(
        home.join("rc"),
        format!(
            "[sip]\nsip_port={udp}\nsip_tcp_port={tcp}\nsip_tls_port=-1\ndefault_proxy=0\n[rtp]\naudio_rtp_port={rtp}\n[proxy_0]\nreg_proxy=<sip:127.0.0.1:{port};transport={transport}>\nreg_route=<sip:127.0.0.1:{port};transport={transport};lr>\nreg_identity=sip:{user}@localhost\nreg_expires=3600\nreg_sendregister=1\n[auth_info_0]\nusername={user}\npasswd=secret\nrealm=localhost\ndomain=localhost\n",
            port = s.port
        ),
    )
    .unwrap();
    home
}

/// Runs `linphone-daemon` in `home` with the shell `script` feeding its commands;
/// returns its output and its log (the SIP trace).
fn linphone_daemon(home: &Path, script: &str, extra: &str) -> (String, String) {
    let log = home.join("daemon.log");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "({script}) | timeout -k 3 30 linphone-daemon --config {} --log {} {extra}",
            home.join("rc").display(),
            log.display()
        ))
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("linphone-daemon must be installed (test.sh installs linphone-cli)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned(),
    )
}

/// Linphone 5.1 (linphone-daemon from linphone-cli, headless) registers with SHA-256
/// (it supports RFC 8760 and picks it from the default challenges) and calls a baresip
/// phone over UDP, which answers; Linphone hangs up and the BYE gets 200. Linphone has
/// no audio device on a server, so media is not checked here (the baresip tests do).
#[test]
fn linphone_calls_baresip_with_sha256() {
    let s = server("linphone", &["alice", "bob"]);
    let bob = phone(&s, "bob", s.port + 4, s.port + 1000, "udp");
    let home = linphone_rc(&s, "alice", s.port + 6, s.port + 1020, "udp");
    let mut b = bob.run(12, &[]);
    assert!(wait_registered(&s.dir, "bob@localhost"), "bob registered");
    let script = "sleep 2; echo 'call sip:bob@localhost'; sleep 4; echo call-status; sleep 1; echo terminate; sleep 2; echo quit";
    let (lo, ld) = linphone_daemon(&home, script, "");
    let _ = b.wait();
    let bo = bob.output();
    let bm = messages(&bo);
    let ctx = || {
        format!(
            "--- linphone\n{lo}\n--- bob\n{bo}\n--- server\n{}",
            s.log_text()
        )
    };
    assert!(
        ld.lines()
            .any(|l| l.starts_with("Authorization:") && l.contains("algorithm=SHA-256")),
        "Linphone answered the challenge with SHA-256\n{}",
        ctx()
    );
    assert!(
        lo.contains("LinphoneCallStreamsRunning"),
        "the call connected\n{}",
        ctx()
    );
    assert!(
        lo.contains("LinphoneCallEnd"),
        "Linphone hung up\n{}",
        ctx()
    );
    assert!(has(&bm, "ACK ", "ACK"), "the ACK reached bob\n{}", ctx());
    assert!(has(&bm, "BYE ", "BYE"), "the BYE reached bob\n{}", ctx());
    assert!(
        has(&bm, "SIP/2.0 200", "BYE"),
        "bob answered the BYE 200\n{}",
        ctx()
    );
    devices_match_the_shipped_profiles(&s, &["baresip", "unknown"]);
}

/// baresip calls Linphone over TCP (Linphone answers automatically; its Contact names
/// the port of its connection, which the server reuses); baresip hangs up.
#[test]
fn baresip_calls_linphone_over_tcp() {
    let s = server("linphone-tcp", &["alice", "bob"]);
    let home = linphone_rc(&s, "bob", s.port + 4, s.port + 1000, "tcp");
    let alice = phone(&s, "alice", s.port + 6, s.port + 1020, "tcp");
    let callee = {
        let home = home.clone();
        std::thread::spawn(move || linphone_daemon(&home, "sleep 14; echo quit", "--auto-answer"))
    };
    assert!(
        wait_registered(&s.dir, "bob@localhost"),
        "Linphone registered"
    );
    let mut a = alice.run(6, &["/dial sip:bob@localhost"]);
    let _ = a.wait();
    let (lo, _) = callee.join().unwrap();
    let ao = alice.output();
    let am = messages(&ao);
    let ctx = || {
        format!(
            "--- alice\n{ao}\n--- linphone\n{lo}\n--- server\n{}",
            s.log_text()
        )
    };
    assert!(
        lo.contains("LinphoneCallIncomingReceived"),
        "Linphone rang\n{}",
        ctx()
    );
    assert!(
        has(&am, "SIP/2.0 200", "INVITE"),
        "Linphone answered\n{}",
        ctx()
    );
    assert!(
        lo.contains("LinphoneCallStreamsRunning"),
        "the call connected\n{}",
        ctx()
    );
    assert!(
        has(&am, "SIP/2.0 200", "BYE"),
        "alice's BYE got 200\n{}",
        ctx()
    );
    assert!(
        lo.contains("LinphoneCallEnd"),
        "Linphone saw the hang-up\n{}",
        ctx()
    );
    devices_match_the_shipped_profiles(&s, &["baresip", "unknown"]);
}

/// A family is judged on how its offers are written once three accounts in good
/// standing taught it (`detect.imitation.learn_min_accounts`): baresip's offers must keep
/// one habit from call to call, or its own users would be taken for imitations. Three
/// callers call bob, who answers (standing earned), twice more each (habits taught), and
/// once more (judged). Every call is recorded with baresip's User-Agent and one habit,
/// and nothing is an imitation.
#[test]
fn baresip_offers_keep_one_habit_once_the_family_learned_it() {
    let s = server("baresip-habits", &["alice", "bob", "carol", "dave"]);
    let bob = phone(&s, "bob", s.port + 4, s.port + 1000, "udp");
    // (the callers run one after the other: they share one port of the test's ten and
    // one range of media ports)
    let callers: Vec<Phone> = ["alice", "carol", "dave"]
        .iter()
        .map(|u| phone(&s, u, s.port + 6, s.port + 1020, "udp"))
        .collect();
    let mut b = bob.run(90, &[]);
    assert!(wait_registered(&s.dir, "bob@localhost"), "bob registered");
    let order = [0, 1, 2, 0, 1, 2, 0];
    for (n, &i) in order.iter().enumerate() {
        let mut a = callers[i].run(4, &["/dial sip:bob@localhost"]);
        let _ = a.wait();
        let out = callers[i].output();
        assert!(
            has(&messages(&out), "SIP/2.0 200", "INVITE"),
            "call {n} was answered\n{out}\n--- server\n{}",
            s.log_text()
        );
    }
    let _ = b.kill();
    let _ = b.wait();
    let calls = recorded_calls(&s.dir, order.len());
    let habits: std::collections::BTreeSet<String> = calls
        .iter()
        .map(|c| {
            let ua = c["user_agent"].as_str().unwrap();
            assert!(ua.starts_with("baresip"), "the caller's User-Agent: {c}");
            c["sdp_habits"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(habits.len(), 1, "one habit: {habits:?}");
    assert!(!habits.contains("0000000000000000"), "{habits:?}");
    let findings = cli_json(&s.dir, &["report", "findings", "--json"]);
    assert!(
        !findings.to_string().contains("imitation-client"),
        "a real client was taken for an imitation: {findings}"
    );
}

/// The same for Linphone (linphone-daemon, User-Agent `Unknown`): three accounts (one
/// after the other on one port, each with its own configuration) call a baresip phone
/// that answers, seven calls in all. Linphone writes the account's name as the offer's
/// `o=` user: the habit must be one for all its accounts, and no call an imitation.
#[test]
fn linphone_offers_are_not_taken_for_imitations_once_the_family_learned_them() {
    let s = server("linphone-habits", &["alice", "bob", "carol", "dave"]);
    let bob = phone(&s, "bob", s.port + 4, s.port + 1000, "udp");
    let homes: Vec<PathBuf> = ["alice", "carol", "dave"]
        .iter()
        .map(|u| linphone_rc(&s, u, s.port + 6, s.port + 1020, "udp"))
        .collect();
    let mut b = bob.run(120, &[]);
    assert!(wait_registered(&s.dir, "bob@localhost"), "bob registered");
    let order = [0, 1, 2, 0, 1, 2, 0];
    let script =
        "sleep 2; echo 'call sip:bob@localhost'; sleep 3; echo terminate; sleep 1; echo quit";
    for (n, &i) in order.iter().enumerate() {
        let (lo, ld) = linphone_daemon(&homes[i], script, "");
        assert!(
            lo.contains("LinphoneCallStreamsRunning"),
            "call {n} connected\n{lo}\n{ld}\n--- server\n{}",
            s.log_text()
        );
    }
    let _ = b.kill();
    let _ = b.wait();
    let calls = recorded_calls(&s.dir, order.len());
    for c in &calls {
        let ua = c["user_agent"].as_str().unwrap();
        // (linphone-daemon's User-Agent, the family `unknown` of dist/profiles.toml)
        assert_eq!(ua, "Unknown", "the caller's User-Agent: {c}");
        assert_ne!(c["sdp_habits"].as_str().unwrap(), "0000000000000000", "{c}");
    }
    let habits: std::collections::BTreeSet<&str> = calls
        .iter()
        .map(|c| c["sdp_habits"].as_str().unwrap())
        .collect();
    // (before the `o=` user was compared with the caller's name: one habit per account,
    // so none was ever learned from three)
    assert_eq!(habits.len(), 1, "one habit: {habits:?}");
    let findings = cli_json(&s.dir, &["report", "findings", "--json"]);
    assert!(
        !findings.to_string().contains("imitation-client"),
        "a real client was taken for an imitation: {findings}\ncalls: {calls:?}"
    );
}
