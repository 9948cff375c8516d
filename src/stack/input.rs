//! The input path: one frame, carried to completion.

use super::output::{bogus_source, IpTx, Out};
use super::{IfaceId, One, Stack, Transmitters};
use crate::arp::wire as arpw;
use crate::arp::Learned;
use crate::dev::Transmit;
use crate::eth::{self, EtherType, MacAddr};
use crate::icmp::wire as icmpw;
use crate::ip::frag::{FragKey, FragOutcome};
use crate::ip::wire::{self as ipw, Protocol};
use crate::tcp::wire as tcpw;
use crate::tcp::{IcmpErrorKind, SeqNumber};
use crate::time::Instant;
use crate::udp::wire as udpw;
use core::net::{Ipv4Addr, SocketAddrV4};

impl Stack {
    /// Carry one received Ethernet frame through the stack; answers are
    /// written to `tx`. Public so benches and fuzzers can drive the stack
    /// without a device.
    #[inline]
    pub fn process_frame(&mut self, now: Instant, frame: &[u8], tx: &mut dyn Transmit) {
        self.rx_frame(now, IfaceId(0), frame, &mut One(tx))
    }

    /// [`Stack::process_frame`] for a frame received on interface `ifx`;
    /// answers and forwarded packets go out through `tx`.
    pub fn process_frame_on(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        frame: &[u8],
        tx: &mut dyn Transmitters,
    ) {
        self.rx_frame(now, ifx, frame, tx)
    }

    /// The Ethernet layer of `process_frame` and `process_frame_on`,
    /// inlined into both (and through `process_frame` into `poll`'s receive
    /// callback), so a frame reaches `process_ipv4` in one call.
    #[inline(always)]
    fn rx_frame(&mut self, now: Instant, ifx: IfaceId, frame: &[u8], tx: &mut dyn Transmitters) {
        let s = &mut self.stats.eth;
        s.rx_frames += 1;
        s.rx_bytes += frame.len() as u64;
        let Some(iface) = self.ifs.get_mut(ifx.index()) else {
            s.drop_no_interface += 1;
            return;
        };
        iface.stats.rx_frames += 1;
        iface.stats.rx_bytes += frame.len() as u64;
        self.rx_iface = ifx;
        let Ok(f) = eth::Frame::new_checked(frame) else {
            s.drop_truncated += 1;
            return;
        };
        let dst = f.dst_addr();
        self.rx_src_mac = f.src_addr();
        // We join no multicast groups, so only our MAC and broadcast are ours.
        if dst != iface.mac && !dst.is_broadcast() {
            s.drop_not_our_mac += 1;
            return;
        }
        if f.src_addr().is_multicast() || f.src_addr() == iface.mac {
            s.drop_bad_src_mac += 1;
            return;
        }
        let vid = f.vlan().map(|t| t.vid);
        if vid != iface.vlan {
            s.drop_vlan += 1;
            return;
        }
        match f.payload_ethertype() {
            EtherType::Arp => self.process_arp(now, ifx, f.src_addr(), f.payload(), tx),
            EtherType::Ipv4 => self.process_ipv4(now, ifx, f.payload(), dst.is_broadcast(), tx),
            _ => s.drop_unknown_ethertype += 1,
        }
    }

    fn process_arp(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        eth_src: MacAddr,
        data: &[u8],
        tx: &mut dyn Transmitters,
    ) {
        let s = &mut self.stats.arp;
        let Ok(p) = arpw::Packet::new_checked(data) else {
            s.drop_truncated += 1;
            return;
        };
        let repr = match arpw::Repr::parse(&p) {
            Ok(r) => r,
            Err(arpw::Error::Truncated) => {
                s.drop_truncated += 1;
                return;
            }
            Err(_) => {
                s.drop_unsupported += 1;
                return;
            }
        };
        match repr.operation {
            arpw::Operation::Request => s.rx_requests += 1,
            arpw::Operation::Reply => s.rx_replies += 1,
            arpw::Operation::Unknown(_) => {
                s.drop_unsupported += 1;
                return;
            }
        }
        // A sender hardware address that is not a unicast MAC, or that
        // disagrees with the frame's source, is a forgery or a broken host.
        if !repr.source_mac.is_unicast() || repr.source_mac != eth_src {
            s.drop_bad_sender += 1;
            return;
        }
        let iface = &mut self.ifs[ifx.index()];
        if let Some(c) = &mut iface.dhcp {
            // RFC 5227 conflict detection for the address being checked.
            c.on_arp(now, repr.source_ip, repr.source_mac, repr.target_ip);
        }
        if let Some(srv) = &mut iface.dhcp_server {
            // An answer to the server's probe: the address is taken.
            srv.on_arp(now, repr.source_ip);
        }
        if iface.has_addr(repr.source_ip) {
            // Someone else claims our address (RFC 5227 §2.4 conflict).
            s.address_conflicts += 1;
            tracing::warn!(addr = %repr.source_ip, mac = %repr.source_mac, "address conflict: another host claims our address");
            return;
        }
        let own = iface.has_addr(repr.target_ip);
        // Learn only on-link unicast senders; 0.0.0.0 is an RFC 5227 probe.
        let sender_ok = !repr.source_ip.is_unspecified()
            && iface.on_link(repr.source_ip)
            && !iface.is_broadcast(repr.source_ip);
        let proxy = !own && iface.proxy_arp && self.proxies_for(ifx, repr.target_ip);
        let for_us = own || proxy;
        if sender_ok {
            match self.ifs[ifx.index()]
                .arp
                .learn(now, repr.source_ip, repr.source_mac, for_us)
            {
                Learned::Released(queue) => {
                    let mut out = self.out();
                    for pkt in queue {
                        out.transmit_ip_bytes(tx, ifx, repr.source_mac, &pkt);
                    }
                }
                Learned::Conflict { held, probe } => {
                    tracing::debug!(ip = %repr.source_ip, claimed = %repr.source_mac, %held, "ARP claim for another MAC; verifying");
                    if probe {
                        self.out()
                            .send_arp_request(tx, ifx, repr.source_ip, Some(held));
                    }
                }
                Learned::Nothing => {}
            }
        }
        if !for_us {
            if repr.operation == arpw::Operation::Request {
                self.stats.arp.drop_not_for_us += 1;
            }
            return;
        }
        if repr.operation == arpw::Operation::Request {
            let reply = arpw::Repr {
                operation: arpw::Operation::Reply,
                source_mac: self.ifs[ifx.index()].mac,
                source_ip: repr.target_ip,
                target_mac: repr.source_mac,
                target_ip: repr.source_ip,
            };
            if self.out().send_arp(tx, ifx, repr.source_mac, reply) {
                self.stats.arp.tx_replies += 1;
                if proxy {
                    self.stats.arp.tx_proxy_replies += 1;
                }
            }
        }
    }

    /// RFC 1027: with proxy ARP on interface `ifx`, we answer for `target`
    /// when we forward and route it out of another interface.
    fn proxies_for(&self, ifx: IfaceId, target: Ipv4Addr) -> bool {
        if !self.eg.forwarding || target.is_unspecified() {
            return false;
        }
        matches!(
            self.fib.lookup(target).and_then(|h| h.egress(target)),
            Some((out, _)) if out != ifx
        )
    }

    /// The IPv4 layer. A flow's next unfragmented packet, from the
    /// (source, destination) pair the interface last accepted, goes
    /// straight to `deliver`; the rest take `process_ipv4_checked`. Inlined
    /// into `rx_frame`, so a data segment reaches `deliver` in one call.
    #[inline(always)]
    fn process_ipv4(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        data: &[u8],
        link_bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        let s = &mut self.stats.ip;
        s.rx_packets += 1;
        // `Repr::parse` makes `new_checked`'s length checks itself, and its
        // errors are counted the same way.
        let p = ipw::Packet::new_unchecked(data);
        // Borrowed, not moved out of the `Result`: the move copied it field
        // by field, about 30 instructions a packet.
        let parsed = ipw::Repr::parse(&p);
        let repr = match &parsed {
            Ok(r) => r,
            Err(e) => {
                count_ip_error(s, *e);
                return;
            }
        };
        if self.ifs[ifx.index()].rx_accepted == Some((repr.src_addr, repr.dst_addr))
            && !repr.is_fragment()
        {
            self.deliver(now, repr, p.payload(), p.header(), link_bcast, tx);
            return;
        }
        self.process_ipv4_checked(now, ifx, data, repr, link_bcast, tx);
    }

    /// `process_ipv4` past the parse: the address checks (unless the pair
    /// was just accepted), forwarding, reassembly.
    #[inline(never)]
    fn process_ipv4_checked(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        data: &[u8],
        repr: &ipw::Repr,
        link_bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        let p = ipw::Packet::new_unchecked(data);
        let dst = repr.dst_addr;
        let pair = Some((repr.src_addr, dst));
        // A flow's packets repeat the pair just accepted: the checks below
        // depend only on the two addresses and ours.
        let bcast = if self.ifs[ifx.index()].rx_accepted == pair {
            false
        } else {
            let bcast = self.ifs[ifx.index()].is_broadcast(dst);
            if !bcast && !self.is_local(dst) {
                // A DHCP server may unicast its answer to the address it
                // offers, which is not ours yet (RFC 2131 §4.1).
                if repr.protocol == Protocol::Udp
                    && !repr.is_fragment()
                    && self.dhcp_input(now, ifx, repr, p.payload())
                {
                    self.stats.udp.rx_datagrams += 1;
                    return;
                }
                if self.eg.forwarding {
                    self.forward(now, ifx, data, p.header_len(), repr, link_bcast, tx);
                } else {
                    self.stats.ip.drop_not_for_us += 1;
                }
                return;
            }
            // RFC 1122 §3.2.1.3: silently discard bogus sources. 0.0.0.0 is
            // let through only to a broadcast destination, where DHCP needs
            // it.
            if bogus_source(&self.ifs, repr.src_addr) && !(repr.src_addr.is_unspecified() && bcast)
            {
                self.stats.ip.drop_bad_src += 1;
                return;
            }
            if !bcast {
                self.ifs[ifx.index()].rx_accepted = pair;
            }
            bcast
        };
        if !repr.is_fragment() {
            self.deliver(now, repr, p.payload(), p.header(), link_bcast || bcast, tx);
            return;
        }
        let key = FragKey {
            src: repr.src_addr,
            dst,
            protocol: u8::from(repr.protocol),
            ident: repr.ident,
        };
        let mut buf = core::mem::take(&mut self.reasm_buf);
        match self.frag.add(
            now,
            key,
            repr.frag_offset as usize,
            repr.more_frags,
            p.payload(),
            p.header(),
        ) {
            FragOutcome::Complete(payload) => {
                buf.clear();
                buf.extend_from_slice(payload);
            }
            FragOutcome::Incomplete | FragOutcome::Dropped(_) => {
                self.reasm_buf = buf;
                return;
            }
        }
        // The whole datagram as one: quote a header that says so.
        let whole = ipw::Repr {
            payload_len: buf.len(),
            more_frags: false,
            frag_offset: 0,
            ..*repr
        };
        let mut hdr = [0u8; ipw::HEADER_LEN];
        whole.emit(&mut ipw::Packet::new_unchecked(&mut hdr[..]));
        self.deliver(now, &whole, &buf, &hdr, link_bcast || bcast, tx);
        self.reasm_buf = buf;
    }

    /// A whole datagram addressed to us. `header` is its IP header, quoted in
    /// ICMP errors together with the start of `payload`.
    fn deliver(
        &mut self,
        now: Instant,
        ip: &ipw::Repr,
        payload: &[u8],
        header: &[u8],
        bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        self.stats.ip.rx_delivered += 1;
        match ip.protocol {
            Protocol::Icmp => self.process_icmp(now, ip, payload, bcast, tx),
            Protocol::Udp => self.process_udp(now, ip, payload, header, bcast, tx),
            Protocol::Tcp => self.process_tcp(now, ip, payload, bcast, tx),
            _ => {
                self.stats.ip.drop_unknown_protocol += 1;
                let err = icmpw::Repr::DstUnreachable {
                    code: icmpw::DstUnreachable::ProtoUnreachable,
                    next_hop_mtu: 0,
                    invoking: &[],
                };
                self.send_error(now, tx, ip, header, payload, bcast, err);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_error(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ip: &ipw::Repr,
        header: &[u8],
        payload: &[u8],
        bcast: bool,
        err: icmpw::Repr<'_>,
    ) {
        // The quote is the header plus as much payload as fits in 576 bytes.
        let mut quote = [0u8; 576];
        let h = header.len().min(60);
        let n = payload.len().min(quote.len() - 28 - h);
        quote[..h].copy_from_slice(&header[..h]);
        quote[h..h + n].copy_from_slice(&payload[..n]);
        self.out()
            .send_icmp_error(now, tx, ip, &quote[..h + n], bcast, err);
    }

    fn process_icmp(
        &mut self,
        now: Instant,
        ip: &ipw::Repr,
        data: &[u8],
        bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        let s = &mut self.stats.icmp;
        s.rx_messages += 1;
        let Ok(p) = icmpw::Packet::new_checked(data) else {
            s.drop_truncated += 1;
            return;
        };
        let repr = match icmpw::Repr::parse(&p) {
            Ok(r) => r,
            Err(e) => {
                match e {
                    icmpw::Error::Truncated => s.drop_truncated += 1,
                    icmpw::Error::BadChecksum => s.drop_bad_checksum += 1,
                    icmpw::Error::Malformed => s.drop_malformed += 1,
                    icmpw::Error::Unsupported => s.drop_unsupported += 1,
                }
                return;
            }
        };
        match repr {
            icmpw::Repr::EchoRequest { ident, seq, data } => {
                s.rx_echo_requests += 1;
                // RFC 1122 §3.2.2.6: an echo request to a broadcast address
                // MAY be silently discarded; answering invites smurf attacks.
                if bcast {
                    s.drop_broadcast_echo += 1;
                    return;
                }
                let reply = icmpw::Repr::EchoReply { ident, seq, data };
                let h = IpTx {
                    src: ip.dst_addr,
                    dst: ip.src_addr,
                    protocol: Protocol::Icmp,
                    ttl: self.eg.ttl,
                    tos: 0,
                    dont_frag: false,
                };
                let mut out = self.out();
                let r = out.send_ip(now, tx, h, reply.buffer_len(), &mut |b| {
                    reply.emit(&mut icmpw::Packet::new_unchecked(b))
                });
                if r.is_ok() {
                    out.stats.icmp.tx_echo_replies += 1;
                    out.stats.icmp.tx_messages += 1;
                }
            }
            icmpw::Repr::EchoReply { ident, seq, data } => {
                s.rx_echo_replies += 1;
                if let Some(sock) = self.pings.by_ident(ident) {
                    sock.on_reply(now, ip.src_addr, seq, ip.ttl, data);
                }
            }
            icmpw::Repr::DstUnreachable { invoking, .. }
            | icmpw::Repr::TimeExceeded { invoking, .. }
            | icmpw::Repr::ParamProblem {
                pointer: _,
                invoking,
            } => {
                s.rx_errors += 1;
                let mtu = p.next_hop_mtu();
                self.icmp_error_to_socket(
                    now,
                    ip.src_addr,
                    p.msg_type(),
                    p.msg_code(),
                    mtu,
                    invoking,
                );
            }
        }
    }

    /// Hand an ICMP error to the socket whose datagram it quotes.
    fn icmp_error_to_socket(
        &mut self,
        now: Instant,
        from: Ipv4Addr,
        msg_type: u8,
        code: u8,
        mtu: u16,
        quote: &[u8],
    ) {
        let Some(q) = Quoted::parse(quote) else {
            return;
        };
        if !self.is_local(q.src) {
            return;
        }
        match q.protocol {
            Protocol::Udp => {
                let sport = u16::from_be_bytes([q.l4[0], q.l4[1]]);
                if let Some(sock) = self.udp.by_port(sport) {
                    sock.error = Some(super::Error::Icmp {
                        from,
                        msg_type,
                        code,
                    });
                }
            }
            Protocol::Tcp => {
                let sport = u16::from_be_bytes([q.l4[0], q.l4[1]]);
                let dport = u16::from_be_bytes([q.l4[2], q.l4[3]]);
                let seq = u32::from_be_bytes([q.l4[4], q.l4[5], q.l4[6], q.l4[7]]);
                let kind = match (msg_type, code) {
                    (3, 0) | (3, 6) => IcmpErrorKind::NetUnreachable,
                    (3, 1) | (3, 7) => IcmpErrorKind::HostUnreachable,
                    (3, 2) => IcmpErrorKind::ProtocolUnreachable,
                    (3, 3) => IcmpErrorKind::PortUnreachable,
                    (3, 4) => IcmpErrorKind::FragmentationNeeded { mtu },
                    (3, 5) => IcmpErrorKind::SourceRouteFailed,
                    (3, 9 | 10 | 13) => IcmpErrorKind::AdminProhibited,
                    (3, _) => IcmpErrorKind::HostUnreachable,
                    (4, _) => IcmpErrorKind::SourceQuench,
                    (11, _) => IcmpErrorKind::TimeExceeded,
                    _ => IcmpErrorKind::ParameterProblem,
                };
                let local = SocketAddrV4::new(q.src, sport);
                let remote = SocketAddrV4::new(q.dst, dport);
                self.tcp
                    .icmp_error(now, local, remote, SeqNumber(seq), kind);
            }
            Protocol::Icmp if q.l4[0] == 8 => {
                let ident = u16::from_be_bytes([q.l4[4], q.l4[5]]);
                let seq = u16::from_be_bytes([q.l4[6], q.l4[7]]);
                if let Some(sock) = self.pings.by_ident(ident) {
                    sock.on_error(from, seq, msg_type, code);
                }
            }
            _ => {}
        }
    }

    fn process_tcp(
        &mut self,
        now: Instant,
        ip: &ipw::Repr,
        data: &[u8],
        bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        let s = &mut self.stats.tcpw;
        s.rx_segments += 1;
        // RFC 9293 MUST-57: a segment to a broadcast or multicast address is
        // silently discarded, never answered with a RST.
        if bcast {
            s.drop_broadcast += 1;
            return;
        }
        // `Repr::parse` checks the lengths first: a short segment is
        // `Truncated`, a Data Offset below 5 is malformed.
        let p = tcpw::Packet::new_unchecked(data);
        // Borrowed, not moved out of the `Result`: the move copied it in
        // 16-byte loads over `parse`'s narrower stores, a store-forwarding
        // stall on every segment.
        // The payload's share of the checksum is left to the TCP engine,
        // which takes it while copying in-order data into the socket.
        let parsed = tcpw::Repr::parse_deferring_payload(&p, ip.src_addr, ip.dst_addr);
        let (repr, check) = match &parsed {
            Ok((r, c)) => (r, *c),
            Err(tcpw::Error::BadChecksum) => {
                s.drop_bad_checksum += 1;
                return;
            }
            Err(tcpw::Error::Truncated) => {
                s.drop_truncated += 1;
                return;
            }
            Err(_) => {
                s.drop_malformed += 1;
                return;
            }
        };
        let ttl = self.eg.ttl;
        let mut out = Out {
            ifs: &mut self.ifs,
            fib: &self.fib,
            eg: &mut self.eg,
            stats: &mut self.stats,
        };
        let intact = self.tcp.process_unverified(
            now,
            ip.src_addr,
            ip.dst_addr,
            repr,
            check,
            &mut |src, dst, tos, seg| out.emit_tcp(now, tx, ttl, tos, src, dst, seg),
        );
        if !intact {
            self.stats.tcpw.drop_bad_checksum += 1;
        }
    }

    fn process_udp(
        &mut self,
        now: Instant,
        ip: &ipw::Repr,
        data: &[u8],
        header: &[u8],
        bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        let s = &mut self.stats.udp;
        let p = match udpw::Packet::new_checked(data) {
            Ok(p) => p,
            Err(udpw::Error::BadLength) => {
                s.drop_bad_length += 1;
                return;
            }
            Err(_) => {
                s.drop_truncated += 1;
                return;
            }
        };
        let repr = match udpw::Repr::parse(&p, ip.src_addr, ip.dst_addr) {
            Ok(r) => r,
            Err(udpw::Error::BadChecksum) => {
                s.drop_bad_checksum += 1;
                return;
            }
            Err(_) => {
                s.drop_malformed += 1;
                return;
            }
        };
        s.rx_datagrams += 1;
        let sock = self.udp.by_port(repr.dst_port);
        let sock = sock.filter(|k| k.local.ip().is_unspecified() || *k.local.ip() == ip.dst_addr);
        let Some(sock) = sock else {
            if self.dhcp_input(now, self.rx_iface, ip, data)
                || self.dhcp_server_input(now, self.rx_iface, ip, data)
            {
                return;
            }
            let s = &mut self.stats.udp;
            s.drop_no_port += 1;
            let err = icmpw::Repr::DstUnreachable {
                code: icmpw::DstUnreachable::PortUnreachable,
                next_hop_mtu: 0,
                invoking: &[],
            };
            self.send_error(now, tx, ip, header, data, bcast, err);
            return;
        };
        let from = SocketAddrV4::new(ip.src_addr, repr.src_port);
        if sock.rx.push(from, p.payload()) {
            sock.stats.rx_datagrams += 1;
            sock.stats.rx_bytes += p.payload().len() as u64;
        } else {
            sock.stats.rx_dropped_full += 1;
            s.drop_queue_full += 1;
        }
    }
}

fn count_ip_error(s: &mut super::stats::IpStats, e: ipw::Error) {
    match e {
        ipw::Error::Truncated => s.drop_truncated += 1,
        ipw::Error::BadVersion => s.drop_bad_version += 1,
        ipw::Error::BadHeaderLength => s.drop_bad_header_len += 1,
        ipw::Error::BadTotalLength => s.drop_bad_total_len += 1,
        ipw::Error::BadChecksum => s.drop_bad_checksum += 1,
    }
}

/// The parts of a quoted datagram inside an ICMP error that we need to find
/// the socket it belongs to. The quote is truncated by design, so this reads
/// raw bytes rather than demanding a whole packet.
struct Quoted<'a> {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: Protocol,
    l4: &'a [u8],
}

impl<'a> Quoted<'a> {
    fn parse(q: &'a [u8]) -> Option<Quoted<'a>> {
        let first = *q.first()?;
        let ihl = (first & 0x0f) as usize * 4;
        if first >> 4 != 4 || ihl < 20 || q.len() < ihl + 8 {
            return None;
        }
        let src = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
        let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
        Some(Quoted {
            src,
            dst,
            protocol: Protocol::from(q[9]),
            l4: &q[ihl..ihl + 8],
        })
    }
}
