use crate::{PortError, PortPool, PortRange};

fn pool(s: &str) -> PortPool {
    PortPool::new(s.parse().unwrap()).unwrap()
}

#[test]
fn pairs_are_even_and_odd_inside_the_range() {
    let mut p = pool("30001-30006");
    // 30002/3 and 30004/5; 30001 and 30006 are not part of a pair
    assert_eq!(p.capacity(), 2);
    let a = p.allocate().unwrap();
    assert_eq!((a.rtp(), a.rtcp()), (30002, 30003));
    let b = p.allocate().unwrap();
    assert_eq!(b.rtp(), 30004);
    assert!(p.is_allocated(30005) && !p.is_allocated(30006) && !p.is_allocated(1));
    assert_eq!(p.allocate(), Err(PortError::Exhausted));
    assert_eq!(pool("30000-39999").capacity(), 5000);
    assert_eq!(pool("65534-65535").capacity(), 1);
}

#[test]
fn exhaustion_release_and_reuse_last() {
    let mut p = pool("40000-40009");
    let mut held: Vec<_> = (0..5).map(|_| p.allocate().unwrap()).collect();
    assert_eq!(p.available(), 0);
    assert_eq!(p.allocate(), Err(PortError::Exhausted));
    assert_eq!(p.allocate_many(1).unwrap_err(), PortError::Exhausted);
    let second = held.remove(1);
    let port = second.rtp();
    p.release(second).unwrap();
    assert!(!p.is_allocated(port));
    let again = p.allocate().unwrap();
    assert_eq!(again.rtp(), port);
    p.release(again).unwrap();
    for h in held.drain(..) {
        p.release(h).unwrap();
    }
    // released pairs come back in release order: the most recent is reused last
    let all = p.allocate_many(5).unwrap();
    let ports: Vec<u16> = all.iter().map(|a| a.rtp()).collect();
    assert_eq!(ports, [40002, 40000, 40004, 40006, 40008]);
    // no pair is handed out twice
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
}

#[test]
fn releasing_a_foreign_pair_is_an_error() {
    let mut a = pool("40000-40003");
    let mut b = pool("50000-50003");
    let x = b.allocate().unwrap();
    assert_eq!(a.release(x), Err(PortError::NotAllocated(50000)));
    // a pair of the same range not allocated here
    let mut c = pool("40000-40003");
    let y = c.allocate().unwrap();
    assert_eq!(a.release(y), Err(PortError::NotAllocated(40000)));
    assert_eq!(a.available(), 2);
}

#[test]
fn bad_ranges() {
    for s in [
        "",
        "30000",
        "x-y",
        "40000-30000",
        "0-10",
        "30001-30001",
        "30001-30002",
    ] {
        let r = s.parse::<PortRange>().and_then(PortPool::new);
        assert_eq!(r.unwrap_err(), PortError::BadRange, "{s}");
    }
}
