//! Batched datagram I/O and worker wake-ups, over Linux system calls that std and tokio
//! do not offer: `recvmmsg(2)` (every datagram queued on a socket, up to [`BATCH`], in
//! one call), `sendmmsg(2)` (a pass's answers in one call) and `tgkill(2)` (interrupt
//! one worker's blocking receive when another thread handed it work).
//!
//! This is the only place in the server that calls these functions; every `unsafe`
//! block says what it relies on. The buffers handed to the kernel are owned by
//! [`RecvBatch`] or borrowed for the duration of the call, and the lengths given are
//! theirs.
// One of the modules of the workspace that may use `unsafe` (the others: `term.rs`,
// `alloc.rs`; crates/palisade/tests/repo.rs keeps the list).
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::sync::OnceLock;

/// The kernel's clock ticks per second and page size (`sysconf`), for the process
/// metrics read from `/proc/self/stat`; the usual values when the call fails.
pub(super) fn clock_ticks_and_page_size() -> (f64, u64) {
    // SAFETY: sysconf only reads a configuration value; it takes no pointer.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (
        if ticks > 0 { ticks as f64 } else { 100.0 },
        u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096),
    )
}

/// Most datagrams taken from a socket, or sent, in one system call.
pub(super) const BATCH: usize = 32;
/// Room for one datagram: the largest UDP payload fits.
pub(super) const DATAGRAM_MAX: usize = 65_536;

/// The signal that interrupts a worker's blocking receive (its handler does nothing; the
/// receive returns `EINTR` and the worker looks at its queue).
const WAKE_SIGNAL: libc::c_int = libc::SIGUSR2;

/// Buffers for one `recvmmsg` call: [`BATCH`] datagrams and their source addresses,
/// with the call's headers built once (each call resets only what the kernel changed:
/// rebuilding and zeroing 32 headers cost more than the rest of a one-datagram receive).
pub(super) struct RecvBatch {
    bufs: Slots,
    addrs: Vec<libc::sockaddr_storage>,
    /// One per slot, pointing into `bufs`; never resized after `new`.
    iovs: Vec<libc::iovec>,
    /// One per slot, pointing into `addrs` and `iovs`; never resized after `new`.
    hdrs: Vec<libc::mmsghdr>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    n: usize,
    /// Headers whose address length the last call may have changed (the first
    /// `touched`): reset before the next call, and only those.
    touched: usize,
}

/// The datagram slots of a [`RecvBatch`]: anonymous memory mapped for them alone. The
/// kernel hands it out zeroed, a page at a time as each is first touched, so a worker's
/// 2 MiB of slots cost only the pages datagrams reach (the first of a slot, for most) and
/// starting a worker writes none of them. A zeroed heap block of that size is written
/// whole whenever the allocator reuses memory for it, which it did in some runs and not
/// others: a start-up cost (and resident size) that varied from run to run. When the
/// mapping is refused, a zeroed heap block.
enum Slots {
    Mapped {
        ptr: std::ptr::NonNull<u8>,
        len: usize,
    },
    Heap(Vec<u8>),
}

impl Slots {
    fn new(len: usize) -> Self {
        // SAFETY: a new private anonymous mapping (no address hint, no file, no offset);
        // the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match std::ptr::NonNull::new(p.cast::<u8>()) {
            Some(ptr) if p != libc::MAP_FAILED => Slots::Mapped { ptr, len },
            _ => Slots::Heap(vec![0u8; len]),
        }
    }

    fn base(&mut self) -> *mut u8 {
        match self {
            Slots::Mapped { ptr, .. } => ptr.as_ptr(),
            Slots::Heap(v) => v.as_mut_ptr(),
        }
    }

    /// `len` bytes from `start`, when they lie inside.
    fn get(&self, start: usize, len: usize) -> Option<&[u8]> {
        match self {
            Slots::Mapped { ptr, len: total } => {
                if start.checked_add(len)? > *total {
                    return None;
                }
                // SAFETY: [start, start+len) lies inside the mapping, which lives as long
                // as `self`; its bytes are initialized (zero from the kernel, or written
                // by `recvmmsg`), and the kernel writes them only during `recv`, which
                // takes `&mut self` and so cannot overlap this borrow.
                Some(unsafe { std::slice::from_raw_parts(ptr.as_ptr().add(start), len) })
            }
            Slots::Heap(v) => v.get(start..start.checked_add(len)?),
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if let Slots::Mapped { ptr, len } = self {
            // SAFETY: the mapping made in `new`, of this length, unmapped once; no borrow
            // of it outlives `self`.
            unsafe { libc::munmap(ptr.as_ptr().cast(), *len) };
        }
    }
}

// SAFETY: the raw pointers in `iovs` and `hdrs` (and `bufs`' own, when mapped) point into
// `bufs`, `addrs` and `iovs`: a mapping and heap buffers this value owns, never resized,
// reallocated or unmapped before it drops, which stay put when it moves. Only its owner
// uses them (every method takes `&mut self` or `&self`).
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub(super) fn new() -> Self {
        let mut bufs = Slots::new(BATCH * DATAGRAM_MAX);
        // SAFETY: all zeros is a valid sockaddr_storage (a plain C struct).
        let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
        let base = bufs.base();
        let mut iovs: Vec<libc::iovec> = (0..BATCH)
            .map(|i| libc::iovec {
                // SAFETY: i < BATCH, so the slot [i*MAX, (i+1)*MAX) lies inside `bufs`
                // (BATCH*MAX bytes long).
                iov_base: unsafe { base.add(i * DATAGRAM_MAX) }.cast(),
                iov_len: DATAGRAM_MAX,
            })
            .collect();
        let hdrs = iovs
            .iter_mut()
            .zip(addrs.iter_mut())
            .map(|(iov, addr)| {
                // SAFETY: all zeros is a valid mmsghdr (null pointers, zero lengths);
                // the fields the kernel reads are set next.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        RecvBatch {
            bufs,
            addrs,
            iovs,
            hdrs,
            lens: [0; BATCH],
            from: [None; BATCH],
            n: 0,
            touched: 0,
        }
    }

    /// Waits (up to the socket's receive timeout) for at least one datagram and takes
    /// every one queued, up to [`BATCH`]. `Ok(0)` never happens: a timeout or a wake-up
    /// is an error of kind `WouldBlock` or `Interrupted`.
    pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.n = 0;
        // The kernel writes each used header's address length, flags and length; the
        // rest (buffers, their lengths) it only reads. (A receive that timed out used
        // none: an idle pass resets nothing.)
        for h in self.hdrs.iter_mut().take(self.touched) {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        }
        self.touched = 0;
        debug_assert!(self.iovs.len() == BATCH && self.hdrs.len() == BATCH);
        // SAFETY: `hdrs` holds BATCH valid headers whose buffers (`bufs`, `addrs`,
        // `iovs`, owned by self and never resized) outlive the call; the kernel writes
        // at most the lengths given.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // (a timeout or a wake-up used no header; after anything else, all are reset)
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                self.touched = BATCH;
            }
            return Err(e);
        }
        let n = (r as usize).min(BATCH);
        self.touched = n;
        for (i, hdr) in self.hdrs.iter().take(n).enumerate() {
            let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            if let (Some(len), Some(from)) = (self.lens.get_mut(i), self.from.get_mut(i)) {
                *len = (hdr.msg_len as usize).min(DATAGRAM_MAX);
                *from = if truncated {
                    None
                } else {
                    self.addrs.get(i).and_then(from_storage)
                };
            }
        }
        self.n = n;
        Ok(n)
    }

    /// The datagrams of the last [`RecvBatch::recv`]: source and bytes (datagrams too
    /// large for a slot, or from an address family we do not serve, are left out).
    pub(super) fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        (0..self.n).filter_map(|i| {
            let from = (*self.from.get(i)?)?;
            let len = *self.lens.get(i)?;
            let start = i * DATAGRAM_MAX;
            Some((from, self.bufs.get(start, len)?))
        })
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller
            // than sockaddr_storage and has no stricter alignment.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Sends every `(destination, bytes)` on `fd`, up to [`BATCH`] per system call. A
/// datagram the kernel refuses (an unreachable destination, a full buffer) is skipped
/// and counted; the others still go. Returns how many were refused, with the last
/// error.
pub(super) fn send_batch<T>(
    fd: RawFd,
    items: &[T],
    what: impl Fn(&T) -> (SocketAddr, &[u8]),
) -> (usize, Option<io::Error>) {
    use std::mem::MaybeUninit;
    let mut refused = 0;
    let mut last_err = None;
    let mut rest = items;
    let mut interrupted = 0;
    while !rest.is_empty() {
        let chunk = rest.get(..rest.len().min(BATCH)).unwrap_or_default();
        // Only the entries used are written (a pass usually sends a few datagrams;
        // zeroing whole arrays of sockaddr_storage cost more than the call).
        let mut names: [MaybeUninit<(libc::sockaddr_in6, libc::socklen_t)>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for (name, item) in names.iter_mut().zip(chunk.iter()) {
            name.write(to_raw(&what(item).0));
        }
        for (iov, item) in iovs.iter_mut().zip(chunk.iter()) {
            let bytes = what(item).1;
            iov.write(libc::iovec {
                // the kernel only reads from it (sendmmsg)
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            });
        }
        for ((hdr, name), iov) in hdrs
            .iter_mut()
            .zip(names.iter_mut())
            .zip(iovs.iter_mut())
            .take(chunk.len())
        {
            // SAFETY: all zeros is a valid mmsghdr; the name and iovec were written
            // above for every entry of the chunk.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            // SAFETY: `names` entries of the chunk were written by the loop above.
            let (addr, len) = unsafe { name.assume_init_mut() };
            h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_in6).cast();
            h.msg_hdr.msg_namelen = *len;
            h.msg_hdr.msg_iov = iov.as_mut_ptr();
            h.msg_hdr.msg_iovlen = 1;
            hdr.write(h);
        }
        // SAFETY: the first chunk.len() headers are initialised and point at `names`,
        // `iovs` and the borrowed `items`, all alive for the call; MaybeUninit<T> has
        // T's layout.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr().cast::<libc::mmsghdr>(),
                chunk.len() as libc::c_uint,
                0,
            )
        };
        if r > 0 {
            rest = rest.get(r as usize..).unwrap_or_default();
            continue;
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted && interrupted < 8 {
            interrupted += 1;
            continue;
        }
        // the first datagram of the chunk was refused: skip it, go on with the rest
        refused += 1;
        last_err = Some(e);
        rest = rest.get(1..).unwrap_or_default();
    }
    (refused, last_err)
}

/// A socket address in the form the kernel reads (a sockaddr_in fits in the room of a
/// sockaddr_in6).
fn to_raw(addr: &SocketAddr) -> (libc::sockaddr_in6, libc::socklen_t) {
    // SAFETY: all zeros is a valid sockaddr_in6.
    let mut raw: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in (16 bytes) fits in sockaddr_in6 (28 bytes), same
            // alignment (4).
            let v4 =
                unsafe { &mut *(&mut raw as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_port = a.port().to_be();
            v4.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (
                raw,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            raw.sin6_port = a.port().to_be();
            raw.sin6_addr.s6_addr = a.ip().octets();
            raw.sin6_flowinfo = a.flowinfo();
            raw.sin6_scope_id = a.scope_id();
            (
                raw,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

static PID: OnceLock<libc::pid_t> = OnceLock::new();

extern "C" fn on_wake(_: libc::c_int) {}

/// Installs the wake-up signal's handler (once, before any worker starts): it does
/// nothing, and without `SA_RESTART` a blocked receive returns `EINTR`.
pub(super) fn install_wake_handler() -> io::Result<()> {
    PID.get_or_init(|| std::process::id() as libc::pid_t);
    // SAFETY: a zeroed sigaction with an empty mask and a handler that touches no
    // state (async-signal-safe by doing nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        if libc::sigaction(WAKE_SIGNAL, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The calling thread's kernel id (for [`wake_thread`]).
pub(super) fn thread_id() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Interrupts the blocking receive of the thread `tid` of this process.
pub(super) fn wake_thread(tid: libc::pid_t) {
    let Some(&pid) = PID.get() else { return };
    // SAFETY: tgkill with this process's id only reaches our own threads; the signal's
    // handler is installed before any worker's id is published.
    unsafe {
        libc::syscall(libc::SYS_tgkill, pid, tid, WAKE_SIGNAL);
    }
}

/// CPU time (user and system) the thread `tid` of this process has used so far, in
/// microseconds; `None` when it cannot be read (the thread has ended).
///
/// The kernel names a thread's CPU-time clock by its id: `(!tid << 3) | 6` (a per-thread
/// clock, `CPUCLOCK_PERTHREAD_MASK` 4, of the scheduler's runtime, `CPUCLOCK_SCHED` 2),
/// which is what glibc's `pthread_getcpuclockid` returns; one `clock_gettime` reads it.
pub(super) fn thread_cpu_us(tid: libc::pid_t) -> Option<u64> {
    let clock = ((!tid) << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out pointer; an id that names no thread of ours fails with
    // EINVAL and writes nothing.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    if r != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn another_threads_cpu_time_is_read_by_its_id_and_grows_only_while_it_runs() {
        use std::sync::mpsc::channel;
        let (tid_tx, tid_rx) = channel();
        let (go_tx, go_rx) = channel::<bool>();
        let t = std::thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            // spin while told to, sleep otherwise
            while let Ok(spin) = go_rx.recv() {
                if spin {
                    let end = std::time::Instant::now() + std::time::Duration::from_millis(60);
                    let mut x = 0u64;
                    while std::time::Instant::now() < end {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                tid_tx.send(0).unwrap();
            }
        });
        let tid = tid_rx.recv().unwrap();
        let before = thread_cpu_us(tid).expect("a live thread's CPU time");
        go_tx.send(true).unwrap();
        assert_eq!(tid_rx.recv().unwrap(), 0);
        let spun = thread_cpu_us(tid).unwrap();
        // 60 ms of spinning (a busy machine may run it less than all the time)
        assert!(spun - before >= 10_000, "{before} -> {spun}");
        std::thread::sleep(std::time::Duration::from_millis(60));
        let slept = thread_cpu_us(tid).unwrap();
        assert!(
            slept - spun < 10_000,
            "asleep, it used no CPU: {spun} -> {slept}"
        );
        // our own id reads our own clock; an id of no thread reads nothing
        assert!(thread_cpu_us(thread_id()).is_some());
        drop(go_tx);
        t.join().unwrap();
        // `join` returns when the thread clears its id word, a little before the kernel
        // releases the task: its clock may read for a moment longer (bounded wait)
        let mut gone = thread_cpu_us(tid);
        for _ in 0..200 {
            if gone.is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            gone = thread_cpu_us(tid);
        }
        assert_eq!(gone, None, "the thread has ended");
    }

    #[test]
    fn a_batch_goes_out_in_one_call_and_comes_in_in_one_call() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to = rx.local_addr().unwrap();
        // (one of 60,000 bytes: it spans pages of its slot, wherever it lands)
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| match i {
                31 => (0..60_000u32).map(|k| (k % 251) as u8).collect(),
                _ => format!("datagram {i}").into_bytes(),
            })
            .collect();
        let items: Vec<(SocketAddr, &[u8])> = msgs.iter().map(|m| (to, m.as_slice())).collect();
        let (refused, _) = send_batch(tx.as_raw_fd(), &items, |&(a, b)| (a, b));
        assert_eq!(refused, 0);
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 40 {
            let n = batch.recv(rx.as_raw_fd()).unwrap();
            assert!((1..=BATCH).contains(&n));
            for (from, bytes) in batch.datagrams() {
                assert_eq!(from, tx.local_addr().unwrap());
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got, msgs, "every datagram, in order, with its source");
        // a receive that times out, then one that does not: the headers the last batch
        // used were reset, and the sources still read right
        rx.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let e = batch.recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        other.send_to(b"after the timeout", to).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), 1);
        let seen: Vec<(SocketAddr, Vec<u8>)> =
            batch.datagrams().map(|(a, b)| (a, b.to_vec())).collect();
        assert_eq!(
            seen,
            [(other.local_addr().unwrap(), b"after the timeout".to_vec())]
        );
    }

    #[test]
    fn slots_are_mapped_zeroed_and_read_only_within_bounds() {
        let s = Slots::new(BATCH * DATAGRAM_MAX);
        assert!(matches!(s, Slots::Mapped { .. }), "the mapping was refused");
        let last = (BATCH - 1) * DATAGRAM_MAX;
        assert!(s.get(0, 1).is_some_and(|b| b == [0]));
        assert!(s
            .get(last, DATAGRAM_MAX)
            .is_some_and(|b| b.len() == DATAGRAM_MAX && b.iter().all(|&x| x == 0)));
        assert!(s.get(last, DATAGRAM_MAX + 1).is_none());
        assert!(s.get(usize::MAX, 2).is_none());
        let h = Slots::Heap(vec![0; 16]);
        assert_eq!(h.get(8, 8).map(<[u8]>::len), Some(8));
        assert!(h.get(9, 8).is_none());
        assert!(h.get(usize::MAX, 2).is_none());
    }

    #[test]
    fn addresses_convert_both_ways() {
        for a in ["192.0.2.7:5060", "[2001:db8::1]:5061", "[fe80::1%3]:5062"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (raw, len) = to_raw(&addr);
            // SAFETY: all zeros is a valid sockaddr_storage (a plain C struct).
            let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            // SAFETY: copies `len` bytes of a sockaddr into a larger storage.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (&raw as *const libc::sockaddr_in6).cast::<u8>(),
                    (&mut s as *mut libc::sockaddr_storage).cast::<u8>(),
                    len as usize,
                );
            }
            assert_eq!(from_storage(&s), Some(addr));
        }
    }

    #[test]
    fn a_blocked_receive_is_interrupted_by_a_wake_up() {
        install_wake_handler().unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            let mut batch = RecvBatch::new();
            let started = std::time::Instant::now();
            let e = batch.recv(rx.as_raw_fd()).unwrap_err();
            (e.kind(), started.elapsed())
        });
        let tid = tid_rx.recv().unwrap();
        // the thread may not be blocked yet: wake it until it returns
        let mut woke = None;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            wake_thread(tid);
            if t.is_finished() {
                woke = Some(t.join().unwrap());
                break;
            }
        }
        let (kind, waited) = woke.expect("the receive returned");
        assert_eq!(kind, io::ErrorKind::Interrupted);
        assert!(
            waited < std::time::Duration::from_secs(10),
            "not the timeout"
        );
    }
}

/// `SO_ATTACH_REUSEPORT_CBPF` (Linux 4.5).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Steers datagrams inside the `SO_REUSEPORT` group of the workers' sockets: a datagram
/// whose payload starts with a NUL byte (no SIP message does) goes to the socket whose
/// index is its third byte (the workers' own wake-ups, see `router::Steer`); every other
/// datagram goes to the first socket when `gathered` (worker 0's, see `balance`), else
/// (a result out of range) gets the kernel's usual choice by the hash of its addresses.
/// The program is classic BPF, which needs no privilege. Attached to one socket, it
/// applies to the whole group, and attaching another replaces it.
pub(super) fn attach_steering(fd: RawFd, gathered: bool) -> io::Result<()> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut prog = [
        // A = payload[0]
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 0),
        // NUL? go on : fall back to the hash
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 2, 0),
        // A = payload[2]: the socket's index
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 2),
        op(libc::BPF_RET | libc::BPF_A, 0, 0, 0),
        op(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            if gathered { 0 } else { u32::MAX },
        ),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `prog`, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An epoll instance (the media relay's readiness over its many sockets).
pub(super) struct Epoll {
    fd: std::os::fd::OwnedFd,
}

impl Epoll {
    pub(super) fn new() -> io::Result<Self> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned here alone.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Watches `fd` for input, reported with `token`.
    pub(super) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event that lives across the call.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd` (closing it does too; this is for an fd kept open).
    pub(super) fn remove(&self, fd: RawFd) {
        use std::os::fd::AsRawFd as _;
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; an error (not watched) is of no consequence.
        let _ = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Waits up to `timeout_ms` for readiness; the tokens of the ready fds in `out`.
    pub(super) fn wait(&self, out: &mut Vec<u64>, timeout_ms: i32) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        const MAX: usize = 256;
        out.clear();
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; MAX];
        // SAFETY: `evs` has room for MAX events, the count passed.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                evs.as_mut_ptr(),
                MAX as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        out.extend(evs.iter().take(n as usize).map(|e| e.u64));
        Ok(())
    }
}

/// An eventfd (a counter the kernel keeps, readable while it is not zero): the media
/// relay's wake-up, watched in its epoll set beside its sockets. Non-blocking.
pub(super) struct EventFd {
    fd: std::os::fd::OwnedFd,
}

impl EventFd {
    pub(super) fn new() -> io::Result<Self> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd that
        // nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned here alone.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Makes it readable (adds one to the counter). A failure can only be a counter at
    /// its maximum, which is readable already.
    pub(super) fn wake(&self) {
        use std::os::fd::AsRawFd as _;
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, alive for the call.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Takes the wake-ups so far (the counter back to zero); returns whether there was
    /// any.
    pub(super) fn take(&self) -> bool {
        use std::os::fd::AsRawFd as _;
        let mut n: u64 = 0;
        // SAFETY: reads at most 8 bytes into `n`, alive for the call.
        let r = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut n as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        r == std::mem::size_of::<u64>() as isize && n > 0
    }
}

impl std::os::fd::AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

// The tests of the steering program and of the epoll wake-up (no `unsafe` in them).
#[cfg(test)]
#[path = "sys_tests.rs"]
mod more_tests;
