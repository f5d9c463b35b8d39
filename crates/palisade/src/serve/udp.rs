//! UDP sockets.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use super::router::WAKE_TICK;

/// A UDP socket for `addr` with large kernel buffers: a burst that arrives while the
/// core is busy waits in the buffer instead of being dropped (the kernel caps the size
/// at net.core.rmem_max / wmem_max). Not bound yet.
fn udp_socket(addr: SocketAddr, buffer: usize) -> std::io::Result<socket2::Socket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(buffer);
    let _ = s.set_send_buffer_size(buffer);
    Ok(s)
}

/// A non-blocking socket for the main thread's runtime (UDP addresses after the first).
pub(super) fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    let s = udp_socket(addr, buffer)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// A blocking socket for one worker: `SO_REUSEPORT` (every worker binds the same
/// address) and a receive timeout of [`WAKE_TICK`].
pub(super) fn bind_worker_udp(
    addr: SocketAddr,
    buffer: usize,
) -> std::io::Result<std::net::UdpSocket> {
    let s = udp_socket(addr, buffer)?;
    s.set_reuse_port(true)?;
    s.set_read_timeout(Some(WAKE_TICK))?;
    s.bind(&addr.into())?;
    Ok(s.into())
}
