//! Tests of `sys`: the workers' steering program and the epoll wake-up (a child module
//! of `sys`, for its private items; nothing here is `unsafe`).
#[cfg(test)]
mod steering_tests {
    use super::super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_nul_datagram_reaches_the_socket_it_names_and_others_are_gathered_or_spread_by_hash() {
        let bind = |addr: SocketAddr| {
            let s = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .unwrap();
            s.set_reuse_port(true).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            s.bind(&addr.into()).unwrap();
            std::net::UdpSocket::from(s)
        };
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let socks: Vec<_> = (0..3).map(|_| bind(addr)).collect();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Ordinary datagrams from 24 senders: how many reached each socket (each is
        // delivered exactly once).
        let spread = || {
            let senders: Vec<_> = (0..24)
                .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            for s in &senders {
                s.send_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", addr).unwrap();
            }
            socks
                .iter()
                .map(|s| {
                    s.set_read_timeout(Some(std::time::Duration::from_millis(100)))
                        .unwrap();
                    let mut buf = [0u8; 64];
                    std::iter::from_fn(|| s.recv_from(&mut buf).ok()).count()
                })
                .collect::<Vec<_>>()
        };
        for gathered in [false, true, false] {
            attach_steering(socks[0].as_raw_fd(), gathered).unwrap();
            for target in [2u8, 0, 1, 2] {
                tx.send_to(&[0, b'W', target, 0, 1, 2, 3], addr).unwrap();
                let mut buf = [0u8; 64];
                let (n, _) = socks[target as usize]
                    .recv_from(&mut buf)
                    .expect("the named socket got it");
                assert_eq!(buf[..n][2], target);
            }
            let got = spread();
            assert_eq!(got.iter().sum::<usize>(), 24, "{got:?}");
            if gathered {
                assert_eq!(got[0], 24, "gathered on the first socket: {got:?}");
            } else {
                // (24 senders all hashed to one of 3 sockets: about 1 in 10^11)
                assert!(got[0] < 24, "spread by the hash: {got:?}");
            }
        }
    }
}

#[cfg(test)]
mod wake_tests {
    use super::super::*;
    use std::os::fd::AsRawFd as _;

    #[test]
    fn an_eventfd_wakes_an_epoll_wait_once_until_taken() {
        let ep = Epoll::new().unwrap();
        let ev = EventFd::new().unwrap();
        ep.add(ev.as_raw_fd(), 7).unwrap();
        let mut ready = Vec::new();
        ep.wait(&mut ready, 0).unwrap();
        assert!(ready.is_empty(), "not readable before a wake-up");
        assert!(!ev.take());
        ev.wake();
        ev.wake();
        let started = std::time::Instant::now();
        ep.wait(&mut ready, 5000).unwrap();
        assert_eq!(ready, vec![7]);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(ev.take(), "two wake-ups, taken at once");
        assert!(!ev.take());
        ep.wait(&mut ready, 0).unwrap();
        assert!(ready.is_empty(), "quiet once taken");
        // from another thread, while the wait blocks
        let ev = std::sync::Arc::new(ev);
        let waker = ev.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            waker.wake();
        });
        let started = std::time::Instant::now();
        ep.wait(&mut ready, 5000).unwrap();
        t.join().unwrap();
        assert_eq!(ready, vec![7]);
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }
}
