//! UDP sockets: bounded receive and send queues of whole datagrams.

use core::net::SocketAddrV4;
use std::collections::VecDeque;

/// Limits of one socket's queues.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub rx_max_datagrams: usize,
    pub rx_max_bytes: usize,
    pub tx_max_datagrams: usize,
    pub tx_max_bytes: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            rx_max_datagrams: 1024,
            rx_max_bytes: 1 << 20,
            tx_max_datagrams: 1024,
            tx_max_bytes: 1 << 20,
        }
    }
}

/// A FIFO of datagrams bounded in count and bytes. Buffers of popped
/// datagrams are kept and reused, so a socket in steady state allocates
/// nothing per datagram.
#[derive(Debug, Default)]
pub struct DatagramQueue {
    queue: VecDeque<(SocketAddrV4, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
    max_datagrams: usize,
    max_bytes: usize,
}

impl DatagramQueue {
    pub fn new(max_datagrams: usize, max_bytes: usize) -> DatagramQueue {
        DatagramQueue {
            max_datagrams,
            max_bytes,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a datagram of `len` bytes fits now.
    pub fn has_room(&self, len: usize) -> bool {
        self.queue.len() < self.max_datagrams && self.bytes + len <= self.max_bytes
    }

    /// Copy `data` in; false if the queue is full (the caller counts the drop).
    pub fn push(&mut self, addr: SocketAddrV4, data: &[u8]) -> bool {
        if !self.has_room(data.len()) {
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.bytes += data.len();
        self.queue.push_back((addr, buf));
        true
    }

    pub fn front(&self) -> Option<(SocketAddrV4, &[u8])> {
        self.queue.front().map(|(a, d)| (*a, d.as_slice()))
    }

    /// Remove the front datagram, recycling its buffer.
    pub fn pop_front(&mut self) {
        if let Some((_, buf)) = self.queue.pop_front() {
            self.bytes -= buf.len();
            // Keep a few buffers; a burst of huge datagrams must not pin memory forever.
            if self.spare.len() < 64 && buf.capacity() <= 65536 {
                self.spare.push(buf);
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpSocketStats {
    pub rx_datagrams: u64,
    pub rx_bytes: u64,
    pub rx_dropped_full: u64,
    pub tx_datagrams: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

#[derive(Debug)]
pub struct UdpSocket {
    pub(crate) local: SocketAddrV4,
    pub(crate) rx: DatagramQueue,
    pub(crate) tx: DatagramQueue,
    pub(crate) stats: UdpSocketStats,
    /// The last asynchronous error (an ICMP error for a datagram we sent, or
    /// a send that failed in `poll`), returned once by the next call.
    pub(crate) error: Option<crate::stack::Error>,
    pub(crate) ttl: u8,
    pub(crate) dont_frag: bool,
}

impl UdpSocket {
    pub(crate) fn new(local: SocketAddrV4, cfg: &UdpConfig, ttl: u8) -> UdpSocket {
        UdpSocket {
            local,
            rx: DatagramQueue::new(cfg.rx_max_datagrams, cfg.rx_max_bytes),
            tx: DatagramQueue::new(cfg.tx_max_datagrams, cfg.tx_max_bytes),
            stats: UdpSocketStats::default(),
            error: None,
            ttl,
            dont_frag: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 9);

    #[test]
    fn queue_is_bounded_by_count_and_bytes() {
        let mut q = DatagramQueue::new(3, 100);
        assert!(q.push(A, &[1; 40]));
        assert!(q.push(A, &[2; 40]));
        assert!(!q.push(A, &[3; 40]), "byte limit");
        assert!(q.push(A, &[3; 20]));
        assert!(!q.push(A, &[]), "count limit");
        assert_eq!(q.front().map(|(_, d)| d[0]), Some(1));
        q.pop_front();
        assert_eq!(q.bytes(), 60);
        assert!(q.push(A, &[4; 40]));
    }

    #[test]
    fn buffers_are_recycled() {
        let mut q = DatagramQueue::new(8, 1 << 16);
        q.push(A, &[0; 1000]);
        let ptr = q.front().map(|(_, d)| d.as_ptr());
        q.pop_front();
        q.push(A, &[1; 10]);
        assert_eq!(q.front().map(|(_, d)| d.as_ptr()), ptr);
    }
}
