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
use crate::dhcp::{ClientAction, ClientConfig, ClientState, DhcpClient, Lease};
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

    /// Hand every DHCP client's actions to the network and the interface.
    pub(super) fn run_dhcp(&mut self, now: Instant, tx: &mut dyn Transmitters) {
        for at in 0..self.ifs.len() {
            let ifx = IfaceId(at as u16);
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
                let udp = udpw::Repr {
                    src_port: CLIENT_PORT,
                    dst_port: SERVER_PORT,
                };
                let len = udpw::HEADER_LEN + t.payload.len();
                let (src, dst) = (t.src, t.dst);
                let payload = t.payload;
                let mut emit = |b: &mut [u8]| {
                    udp.emit(&mut udpw::Packet::new_unchecked(b), src, dst, &payload)
                };
                let sent = if t.dst.is_broadcast() {
                    self.send_link_broadcast(tx, ifx, src, dst, len, &mut emit)
                } else {
                    let h = IpTx {
                        src,
                        dst,
                        protocol: Protocol::Udp,
                        ttl: self.eg.ttl,
                        tos: 0,
                        dont_frag: false,
                    };
                    self.out().send_ip(now, tx, h, len, &mut emit)
                };
                match sent {
                    Ok(()) => self.stats.udp.tx_datagrams += 1,
                    Err(e) => {
                        self.stats.udp.tx_errors += 1;
                        tracing::debug!(iface = %self.ifs[ifx.index()].name, "dhcp: send failed: {e}");
                    }
                }
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

    /// An IP datagram to the Ethernet broadcast on `ifx`, without routing
    /// or ARP: what a host without an address yet can send.
    fn send_link_broadcast(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
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
            MacAddr::BROADCAST,
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
            Ok(_) => {
                self.stats.udp.rx_datagrams += 1;
                c.on_message(now, p.payload());
            }
            Err(_) => self.stats.udp.drop_bad_checksum += 1,
        }
        true
    }
}
