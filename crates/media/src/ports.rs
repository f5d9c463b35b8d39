//! The relay's port pool: even RTP ports with the odd RTCP port above each, from a
//! configured range (`[media] ports = "30000-39999"`).
//!
//! Every allocation is a pair, also for rtcp-mux offers: an offer with `a=rtcp-mux` may
//! be answered without it (RFC 5761 §5.1.3), and the RTCP port must then exist; the odd
//! port is reserved rather than handed to someone else. Free pairs are kept in a FIFO
//! queue, so allocation and release are O(1) and a released pair is reused last: stray
//! packets of an ended call meet an unused port rather than a new call's.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

/// An inclusive range of UDP ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port.
    pub first: u16,
    /// Highest port.
    pub last: u16,
}

impl FromStr for PortRange {
    type Err = PortError;

    /// `"30000-39999"`.
    fn from_str(s: &str) -> Result<Self, PortError> {
        let (a, b) = s.trim().split_once('-').ok_or(PortError::BadRange)?;
        let first = a.trim().parse().map_err(|_| PortError::BadRange)?;
        let last = b.trim().parse().map_err(|_| PortError::BadRange)?;
        Ok(Self { first, last })
    }
}

/// Why the pool said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortError {
    /// Every pair is in use (the server answers 503).
    Exhausted,
    /// A range that is not `first-last` with `1 <= first <= last`, or holds no even/odd
    /// pair.
    BadRange,
    /// Released a pair this pool had not allocated.
    NotAllocated(u16),
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted => f.write_str("media port pool exhausted"),
            Self::BadRange => f.write_str("media port range holds no RTP/RTCP pair"),
            Self::NotAllocated(p) => write!(f, "media port {p} was not allocated"),
        }
    }
}

impl std::error::Error for PortError {}

/// An allocated pair: RTP on the even port, RTCP on the one above. Not `Clone`: the
/// value is the lease, and giving it back to [`PortPool::release`] consumes it.
#[derive(Debug, PartialEq, Eq)]
pub struct PortPair {
    rtp: u16,
}

impl PortPair {
    /// The even RTP port (also RTCP's under rtcp-mux).
    pub fn rtp(&self) -> u16 {
        self.rtp
    }

    /// The odd RTCP port.
    pub fn rtcp(&self) -> u16 {
        self.rtp.saturating_add(1)
    }
}

/// A bounded pool of RTP/RTCP port pairs.
#[derive(Clone, Debug)]
pub struct PortPool {
    /// The first pair's RTP port.
    base: u16,
    free: VecDeque<u16>,
    used: Vec<bool>,
}

impl PortPool {
    /// A pool over the even/odd pairs inside `range`.
    pub fn new(range: PortRange) -> Result<Self, PortError> {
        if range.first == 0 || range.first > range.last {
            return Err(PortError::BadRange);
        }
        let base = range
            .first
            .checked_add(range.first % 2)
            .ok_or(PortError::BadRange)?;
        // pairs (p, p+1) with p >= base, p even, p+1 <= last
        let span = u32::from(range.last) + 1;
        let pairs = span.saturating_sub(u32::from(base)) / 2;
        if pairs == 0 {
            return Err(PortError::BadRange);
        }
        let pairs = u16::try_from(pairs).map_err(|_| PortError::BadRange)?;
        Ok(Self {
            base,
            free: (0..pairs).collect(),
            used: vec![false; usize::from(pairs)],
        })
    }

    /// Takes a free pair.
    pub fn allocate(&mut self) -> Result<PortPair, PortError> {
        let slot = self.free.pop_front().ok_or(PortError::Exhausted)?;
        if let Some(u) = self.used.get_mut(usize::from(slot)) {
            *u = true;
        }
        Ok(PortPair {
            rtp: self.port(slot),
        })
    }

    /// Takes `n` pairs (one per media line of a call leg), all or none.
    pub fn allocate_many(&mut self, n: usize) -> Result<Vec<PortPair>, PortError> {
        if n > self.free.len() {
            return Err(PortError::Exhausted);
        }
        (0..n).map(|_| self.allocate()).collect()
    }

    /// Gives a pair back; it will be the last to be reused.
    pub fn release(&mut self, pair: PortPair) -> Result<(), PortError> {
        let slot = pair
            .rtp
            .checked_sub(self.base)
            .filter(|d| d % 2 == 0)
            .map(|d| d / 2)
            .ok_or(PortError::NotAllocated(pair.rtp))?;
        match self.used.get_mut(usize::from(slot)) {
            Some(u) if *u => {
                *u = false;
                self.free.push_back(slot);
                Ok(())
            }
            _ => Err(PortError::NotAllocated(pair.rtp)),
        }
    }

    /// Whether `port` (RTP or RTCP) belongs to an allocated pair.
    pub fn is_allocated(&self, port: u16) -> bool {
        port.checked_sub(self.base)
            .and_then(|d| self.used.get(usize::from(d / 2)))
            .copied()
            .unwrap_or(false)
    }

    /// Free pairs.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// All pairs.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    fn port(&self, slot: u16) -> u16 {
        // slot < pairs, so base + 2 * slot + 1 <= last fits in u16
        self.base.saturating_add(slot.saturating_mul(2))
    }
}
