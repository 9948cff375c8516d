//! The stack's side of DHCP clients (`crate::dhcp::DhcpClient`), one per
//! interface that asks for it: the client decides, the stack acts. Its
//! datagrams leave from port 68 (from 0.0.0.0 to the Ethernet broadcast
//! until it has an address), its RFC 5227 probes and announcements go out
//! as ARP, and a lease it hands over becomes the interface's address, the
//! connected route and a default route via the lease's router; a lease
//! that ends takes them away. Replies reach it from the input path whether
//! they come broadcast, unicast to the offered address (which is not ours
//! yet) or unicast to the leased one.

use super::output::IpTx;
use super::{Error, IfaceId, Stack, Transmitters};
use crate::arp::wire as arpw;
use crate::dhcp::server::ServerStats;
use crate::dhcp::{
    ClientAction, ClientConfig, ClientState, DhcpClient, DhcpServer, Lease, LeaseStore,
    ServerAction, ServerConfig, StoredLease,
};
use crate::eth::{EtherType, MacAddr};
use crate::ip::cidr::Ipv4Cidr;
use crate::ip::wire::{self as ipw, Protocol};
use crate::time::Instant;
use crate::udp::wire as udpw;
use core::net::Ipv4Addr;
use rand_chacha::rand_core::RngCore;

/// What happened to an interface's lease, for the application
/// ([`Stack::take_dhcp_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpEvent {
    /// The interface now uses `lease` (first bind, or a renewal that
    /// changed its configuration).
    Bound { iface: IfaceId, lease: Lease },
    /// The lease ended (expired, declined, released): its address is gone.
    Lost { iface: IfaceId, lease: Lease },
}

/// A DHCP server on an interface, with the addresses it asked us to probe.
pub(crate) struct ServerSlot {
    pub server: DhcpServer<Box<dyn LeaseStore>>,
    probing: std::collections::VecDeque<Ipv4Addr>,
}

impl core::fmt::Debug for ServerSlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerSlot")
            .field("stats", self.server.stats())
            .finish_non_exhaustive()
    }
}

/// Probes remembered at once; the server itself bounds how many it starts.
const MAX_PROBING: usize = 256;

impl ServerSlot {
    /// Any ARP from `sender` answers a probe of ours for that address.
    pub fn on_arp(&mut self, now: Instant, sender: Ipv4Addr) {
        if let Some(i) = self.probing.iter().position(|&a| a == sender) {
            self.probing.remove(i);
            self.server.on_probe_result(now, sender, true);
        }
    }
}

/// Events kept for an application that never takes them.
const MAX_EVENTS: usize = 64;

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;

impl Stack {
    /// Run a DHCP client on interface `iface`: it configures the
    /// interface's address and routes from the leases it gets.
    pub fn enable_dhcp(&mut self, iface: IfaceId, cfg: ClientConfig) -> Result<(), Error> {
        let seed = self.rng.next_u64();
        let f = self.iface_mut(iface)?;
        f.dhcp = Some(Box::new(DhcpClient::new(f.mac, cfg, seed)));
        Ok(())
    }

    /// The lease interface `iface` uses, if its DHCP client has one.
    pub fn dhcp_lease(&self, iface: IfaceId) -> Option<&Lease> {
        self.ifs.get(iface.index())?.dhcp.as_ref()?.lease()
    }

    /// The state of interface `iface`'s DHCP client.
    pub fn dhcp_state(&self, iface: IfaceId) -> Option<ClientState> {
        Some(self.ifs.get(iface.index())?.dhcp.as_ref()?.state())
    }

    /// The next lease event, oldest first.
    pub fn take_dhcp_event(&mut self) -> Option<DhcpEvent> {
        self.dhcp_events.pop_front()
    }

    /// Release every lease (DHCPRELEASE where configured) and remove the
    /// addresses; the messages leave at the next poll.
    pub fn dhcp_release(&mut self, now: Instant) {
        for f in &mut self.ifs {
            if let Some(c) = &mut f.dhcp {
                c.release(now);
            }
        }
    }

    /// Serve DHCP on interface `iface` (RFC 2131 §4.3) with `cfg`, keeping
    /// leases in `store` (a `crate::dhcp::FileStore` survives restarts).
    pub fn enable_dhcp_server(
        &mut self,
        iface: IfaceId,
        cfg: ServerConfig,
        store: Box<dyn LeaseStore>,
        now: Instant,
    ) -> Result<(), Error> {
        self.iface_mut(iface)?;
        let server =
            DhcpServer::new(cfg, store, now).map_err(|e| Error::InvalidConfig(e.as_str()))?;
        self.ifs[iface.index()].dhcp_server = Some(Box::new(ServerSlot {
            server,
            probing: std::collections::VecDeque::new(),
        }));
        Ok(())
    }

    /// The counters of interface `iface`'s DHCP server.
    pub fn dhcp_server_stats(&self, iface: IfaceId) -> Option<ServerStats> {
        Some(
            self.ifs
                .get(iface.index())?
                .dhcp_server
                .as_ref()?
                .server
                .stats()
                .clone(),
        )
    }

    /// The leases interface `iface`'s DHCP server holds at `now`.
    pub fn dhcp_server_leases(&self, iface: IfaceId, now: Instant) -> Vec<StoredLease> {
        match self
            .ifs
            .get(iface.index())
            .and_then(|f| f.dhcp_server.as_ref())
        {
            Some(s) => s.server.leases(now).collect(),
            None => Vec::new(),
        }
    }

    /// A DHCP message to port 67 for interface `ifx`'s server: handed over,
    /// `true`.
    pub(super) fn dhcp_server_input(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        ip: &ipw::Repr,
        udp: &[u8],
    ) -> bool {
        let from = self.rx_src_mac;
        let Some(s) = self
            .ifs
            .get_mut(ifx.index())
            .and_then(|f| f.dhcp_server.as_mut())
        else {
            return false;
        };
        let Ok(p) = udpw::Packet::new_checked(udp) else {
            return false;
        };
        if p.dst_port() != SERVER_PORT {
            return false;
        }
        match udpw::Repr::parse(&p, ip.src_addr, ip.dst_addr) {
            Ok(_) => s.server.on_message(now, p.payload(), from),
            Err(_) => self.stats.udp.drop_bad_checksum += 1,
        }
        true
    }

    fn dhcp_server_action(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        a: ServerAction,
        tx: &mut dyn Transmitters,
    ) {
        match a {
            ServerAction::Probe(ip) => {
                if let Some(s) = self.ifs[ifx.index()].dhcp_server.as_mut() {
                    if s.probing.len() >= MAX_PROBING {
                        s.probing.pop_front();
                    }
                    s.probing.push_back(ip);
                }
                self.send_arp_claim(tx, ifx, Ipv4Addr::UNSPECIFIED, ip);
            }
            ServerAction::Reply(r) => {
                let Some(src) = self.ifs[ifx.index()]
                    .dhcp_server
                    .as_ref()
                    .map(|s| s.server.config().address)
                else {
                    return;
                };
                let ports = (SERVER_PORT, r.dst_port);
                self.send_dhcp(now, tx, ifx, r.dst_mac, (src, r.dst_ip), ports, &r.payload);
            }
        }
    }

    /// A DHCP datagram: framed to `mac` on `ifx` without routing or ARP
    /// when given, routed otherwise; counted either way.
    #[allow(clippy::too_many_arguments)]
    fn send_dhcp(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        mac: Option<MacAddr>,
        (src, dst): (Ipv4Addr, Ipv4Addr),
        (src_port, dst_port): (u16, u16),
        payload: &[u8],
    ) {
        let udp = udpw::Repr { src_port, dst_port };
        let len = udpw::HEADER_LEN + payload.len();
        let mut emit =
            |b: &mut [u8]| udp.emit(&mut udpw::Packet::new_unchecked(b), src, dst, payload);
        let sent = match mac {
            Some(mac) => self.send_link(tx, ifx, mac, src, dst, len, &mut emit),
            None => {
                let h = IpTx {
                    src,
                    dst,
                    protocol: Protocol::Udp,
                    ttl: self.eg.ttl,
                    tos: 0,
                    dont_frag: false,
                };
                self.out().send_ip(now, tx, h, len, &mut emit)
            }
        };
        match sent {
            Ok(()) => self.stats.udp.tx_datagrams += 1,
            Err(e) => {
                self.stats.udp.tx_errors += 1;
                tracing::debug!(iface = %self.ifs[ifx.index()].name, "dhcp: send failed: {e}");
            }
        }
    }

    /// Hand every DHCP client's and server's actions to the network and
    /// the interface.
    pub(super) fn run_dhcp(&mut self, now: Instant, tx: &mut dyn Transmitters) {
        for at in 0..self.ifs.len() {
            let ifx = IfaceId(at as u16);
            while let Some(a) = self.ifs[at]
                .dhcp_server
                .as_mut()
                .and_then(|s| s.server.poll(now))
            {
                self.dhcp_server_action(now, ifx, a, tx);
            }
            while let Some(action) = self.ifs[at].dhcp.as_mut().and_then(|c| c.poll(now)) {
                self.dhcp_action(now, ifx, action, tx);
            }
        }
    }

    fn dhcp_action(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        a: ClientAction,
        tx: &mut dyn Transmitters,
    ) {
        match a {
            ClientAction::Send(t) => {
                let mac = t.is_broadcast().then_some(MacAddr::BROADCAST);
                let ports = (CLIENT_PORT, SERVER_PORT);
                self.send_dhcp(now, tx, ifx, mac, (t.src, t.dst), ports, &t.payload);
            }
            ClientAction::ArpProbe(ip) => self.send_arp_claim(tx, ifx, Ipv4Addr::UNSPECIFIED, ip),
            ClientAction::ArpAnnounce(ip) => self.send_arp_claim(tx, ifx, ip, ip),
            ClientAction::Configure { lease, old } => {
                if let Some(old) = &old {
                    self.unapply(ifx, old, Some(&lease));
                }
                self.apply(ifx, &lease, old.as_ref());
                self.push_event(DhcpEvent::Bound { iface: ifx, lease });
            }
            ClientAction::Deconfigure(lease) => {
                tracing::info!(iface = %self.ifs[ifx.index()].name, addr = %lease.address, "dhcp: lease ended, address removed");
                self.unapply(ifx, &lease, None);
                self.push_event(DhcpEvent::Lost { iface: ifx, lease });
            }
        }
    }

    fn push_event(&mut self, e: DhcpEvent) {
        if self.dhcp_events.len() >= MAX_EVENTS {
            self.dhcp_events.pop_front();
        }
        self.dhcp_events.push_back(e);
    }

    fn apply(&mut self, ifx: IfaceId, lease: &Lease, old: Option<&Lease>) {
        let f = &self.ifs[ifx.index()];
        if !f.addrs.contains(&lease.address) {
            // The client has probed and will announce the address itself.
            let _ = self.add_address_with(ifx, lease.address, false);
        }
        if let Some(r) = lease.router {
            if old.and_then(|o| o.router) != Some(r) || self.route_lookup(r).is_none() {
                let default = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0");
                if let Err(e) = self.add_route(default, Some(r), Some(ifx), 0) {
                    tracing::warn!(router = %r, "dhcp: default route not added: {e}");
                }
            }
        }
        let secs = if lease.is_infinite() {
            "infinite".to_string()
        } else {
            format!("{} s", lease.lease_time.total_micros() / 1_000_000)
        };
        match lease.router {
            Some(r) => {
                tracing::info!(iface = %self.ifs[ifx.index()].name, "dhcp: bound {} via {r}, lease {secs}", lease.address)
            }
            None => {
                tracing::info!(iface = %self.ifs[ifx.index()].name, "dhcp: bound {}, lease {secs}", lease.address)
            }
        }
    }

    /// Undo `lease`, keeping what `next` (the lease replacing it) keeps.
    fn unapply(&mut self, ifx: IfaceId, lease: &Lease, next: Option<&Lease>) {
        if next.map(|n| n.address) != Some(lease.address) {
            let _ = self.remove_address_on(ifx, lease.address.addr());
        }
        if let Some(r) = lease.router {
            if next.and_then(|n| n.router) != Some(r) {
                let default = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0");
                self.remove_route(default, Some(r));
            }
        }
    }

    /// An RFC 5227 probe (`sender` 0.0.0.0) or announcement (`sender` the
    /// address itself), broadcast on `ifx`.
    fn send_arp_claim(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    ) {
        let repr = arpw::Repr {
            operation: arpw::Operation::Request,
            source_mac: self.ifs[ifx.index()].mac,
            source_ip: sender,
            target_mac: MacAddr::ZERO,
            target_ip: target,
        };
        if self.out().send_arp(tx, ifx, MacAddr::BROADCAST, repr) {
            if sender.is_unspecified() {
                self.stats.arp.tx_probes += 1;
            } else {
                self.stats.arp.tx_gratuitous += 1;
            }
        }
    }

    /// A UDP datagram framed to `mac` on `ifx`, without routing or ARP:
    /// what a host without an address yet can send, and what a DHCP server
    /// sends to a client that has none to answer ARP with.
    #[allow(clippy::too_many_arguments)]
    fn send_link(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        len: usize,
        emit: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), Error> {
        let ident = self.eg.next_ident;
        self.eg.next_ident = ident.wrapping_add(1);
        let repr = ipw::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: Protocol::Udp,
            payload_len: len,
            ttl: self.eg.ttl,
            tos: 0,
            ident,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        let hl = self.ifs[ifx.index()].eth_header_len();
        if len + ipw::HEADER_LEN > self.ifs[ifx.index()].mtu {
            return Err(Error::MessageTooLong {
                len,
                max: self.ifs[ifx.index()].mtu - ipw::HEADER_LEN,
            });
        }
        self.out().transmit_frame(
            tx,
            ifx,
            mac,
            EtherType::Ipv4,
            ipw::HEADER_LEN + len,
            &mut |b| {
                let (h, rest) = b[hl..].split_at_mut(ipw::HEADER_LEN);
                repr.emit(&mut ipw::Packet::new_unchecked(h));
                emit(rest);
            },
        )?;
        self.stats.ip.tx_packets += 1;
        Ok(())
    }

    /// A UDP datagram from port 67 to port 68 that interface `ifx`'s DHCP
    /// client should see: handed over, `true`. `udp` is the IP payload.
    /// The caller counts the datagram.
    pub(super) fn dhcp_input(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        ip: &ipw::Repr,
        udp: &[u8],
    ) -> bool {
        let Some(c) = self.ifs.get_mut(ifx.index()).and_then(|f| f.dhcp.as_mut()) else {
            return false;
        };
        let Ok(p) = udpw::Packet::new_checked(udp) else {
            return false;
        };
        if p.dst_port() != CLIENT_PORT || p.src_port() != SERVER_PORT {
            return false;
        }
        match udpw::Repr::parse(&p, ip.src_addr, ip.dst_addr) {
            Ok(_) => c.on_message(now, p.payload()),
            Err(_) => self.stats.udp.drop_bad_checksum += 1,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::pipe;
    use crate::dhcp::{MemoryStore, ServerConfig};
    use crate::stack::Config;
    use crate::time::Duration;

    fn client_stack() -> Stack {
        let mut c = Config::new(
            MacAddr([2, 0, 0, 0, 0, 0x10]),
            "0.0.0.0/32".parse().unwrap(),
        );
        c.addrs.clear();
        c.seed = [7; 32];
        let mut s = Stack::new(c).unwrap();
        let cfg = ClientConfig {
            init_delay: (Duration::ZERO, Duration::ZERO),
            ..Default::default()
        };
        s.enable_dhcp(IfaceId(0), cfg).unwrap();
        s
    }

    fn server_stack(lease: Duration) -> Stack {
        let mut c = Config::new(
            MacAddr([2, 0, 0, 0, 0, 1]),
            "198.18.0.1/24".parse().unwrap(),
        );
        c.seed = [9; 32];
        let mut s = Stack::new(c).unwrap();
        let mut cfg = ServerConfig::new("198.18.0.1/24".parse().unwrap());
        cfg.pools = vec![(
            Ipv4Addr::new(198, 18, 0, 100),
            Ipv4Addr::new(198, 18, 0, 109),
        )];
        cfg.lease_time = lease;
        s.enable_dhcp_server(
            IfaceId(0),
            cfg,
            Box::new(MemoryStore::default()),
            Instant::ZERO,
        )
        .unwrap();
        s
    }

    /// Both stacks polled every 10 ms of simulated time for `secs`.
    fn run(
        c: &mut Stack,
        s: &mut Stack,
        dc: &mut pipe::PipeDevice,
        ds: &mut pipe::PipeDevice,
        from: Instant,
        secs: u64,
    ) -> Instant {
        let mut now = from;
        let end = from + Duration::from_secs(secs);
        while now < end {
            c.poll(now, dc).unwrap();
            s.poll(now, ds).unwrap();
            now += Duration::from_millis(10);
        }
        now
    }

    /// RFC 2131 §3.1 end to end between two ringstack stacks: the client's
    /// DISCOVER, the server's probe and OFFER, REQUEST, ACK, the client's
    /// RFC 5227 check, then the address, its routes and the event; and the
    /// lease renewed at T1 for hours without the address ever going away.
    #[test]
    fn a_ringstack_client_takes_and_keeps_a_lease_from_a_ringstack_server() {
        let (mut dc, mut ds) = pipe::pair(1500);
        let (mut c, mut s) = (client_stack(), server_stack(Duration::from_secs(600)));
        let now = run(
            &mut c,
            &mut s,
            &mut dc,
            &mut ds,
            Instant::from_millis(1),
            20,
        );
        let lease = c.dhcp_lease(IfaceId(0)).cloned().expect("bound");
        assert_eq!(c.dhcp_state(IfaceId(0)), Some(ClientState::Bound));
        let a = lease.address.addr();
        assert!((100..=109).contains(&a.octets()[3]), "{a}");
        assert_eq!(c.addresses(), &[lease.address]);
        assert_eq!(lease.router, Some(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(matches!(c.take_dhcp_event(), Some(DhcpEvent::Bound { .. })));
        assert_eq!(s.dhcp_server_leases(IfaceId(0), now).len(), 1);
        // Three hours: renewals every 300 s keep the same address.
        let now = run(&mut c, &mut s, &mut dc, &mut ds, now, 3 * 3600);
        assert_eq!(
            c.dhcp_lease(IfaceId(0)).map(|l| l.address),
            Some(lease.address)
        );
        assert!(c.take_dhcp_event().is_none(), "no loss, no reconfiguration");
        assert!(s.dhcp_server_stats(IfaceId(0)).unwrap().requests >= 30);
        // A release frees the server's lease and the client's address.
        c.dhcp_release(now);
        run(&mut c, &mut s, &mut dc, &mut ds, now, 1);
        assert!(c.addresses().is_empty());
        assert!(matches!(c.take_dhcp_event(), Some(DhcpEvent::Lost { .. })));
        assert!(s.dhcp_server_leases(IfaceId(0), now).is_empty());
    }
}
