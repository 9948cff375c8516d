//! The UDP and ping socket tables, beside the interfaces and TCP's own
//! table: the input path borrows each disjointly from the rest of the
//! stack, and a socket with queued output sits on its table's dirty list,
//! so an idle socket costs nothing per poll.

use super::slab::Slab;
use crate::icmp::ping::PingSocket;
use crate::udp::socket::UdpSocket;
use std::collections::HashMap;

/// UDP sockets by slot, by local port, and those with datagrams to send.
#[derive(Debug, Default)]
pub(crate) struct UdpTable {
    pub socks: Slab<UdpSocket>,
    pub ports: HashMap<u16, usize>,
    pub dirty: Vec<usize>,
}

impl UdpTable {
    /// The socket bound to `port`.
    #[inline]
    pub fn by_port(&mut self, port: u16) -> Option<&mut UdpSocket> {
        let i = *self.ports.get(&port)?;
        self.socks.at_mut(i)
    }

    pub fn insert(&mut self, sock: UdpSocket) -> (usize, u32) {
        let port = sock.local.port();
        let (index, gen) = self.socks.insert(sock);
        self.ports.insert(port, index);
        (index, gen)
    }

    pub fn remove(&mut self, index: usize, gen: u32) -> Option<UdpSocket> {
        let sock = self.socks.remove(index, gen)?;
        self.ports.remove(&sock.local.port());
        self.dirty.retain(|&i| i != index);
        Some(sock)
    }
}

/// Ping sockets by slot, by echo identifier, and those with requests to
/// send.
#[derive(Debug, Default)]
pub(crate) struct PingTable {
    pub socks: Slab<PingSocket>,
    pub idents: HashMap<u16, usize>,
    pub dirty: Vec<usize>,
}

impl PingTable {
    /// The socket whose echo identifier is `ident`.
    #[inline]
    pub fn by_ident(&mut self, ident: u16) -> Option<&mut PingSocket> {
        let i = *self.idents.get(&ident)?;
        self.socks.at_mut(i)
    }

    pub fn insert(&mut self, sock: PingSocket) -> (usize, u32) {
        let ident = sock.ident();
        let (index, gen) = self.socks.insert(sock);
        self.idents.insert(ident, index);
        (index, gen)
    }

    pub fn remove(&mut self, index: usize, gen: u32) -> Option<PingSocket> {
        let sock = self.socks.remove(index, gen)?;
        self.idents.remove(&sock.ident());
        self.dirty.retain(|&i| i != index);
        Some(sock)
    }
}
