//! The output path: routing, neighbour resolution, fragmentation, framing,
//! ICMP errors, ARP requests, and the timers and socket queues that feed them.

use super::{Egress, Error, IfaceId, Interface, Stack, Stats, Transmitters, TxRoute};
use crate::arp::cache::TimerAction;
use crate::arp::wire as arpw;
use crate::arp::Resolution;
use crate::dev::{Transmit, TxError};
use crate::eth::{self, EtherType, MacAddr};
use crate::icmp::ping::pattern_byte;
use crate::icmp::wire as icmpw;
use crate::ip::wire::{self as ipw, Protocol};
use crate::route::fib::{Fib, NextHop};
use crate::tcp::wire as tcpw;
use crate::tcp::SegmentOut;
use crate::time::{Duration, Instant};
use crate::udp::wire as udpw;
use core::net::Ipv4Addr;

/// The fixed part of an IP packet we originate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpTx {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: Protocol,
    pub ttl: u8,
    /// DSCP and ECN byte.
    pub tos: u8,
    pub dont_frag: bool,
}

/// ICMP never quotes more than this much of the offending datagram: the
/// error then fits in 576 bytes, the minimum every host accepts (RFC 1812
/// §4.3.2.3, RFC 1122 §3.2.2).
const ICMP_ERROR_MAX: usize = 576;

/// The output half of the stack, borrowed apart from the sockets so a
/// socket's queued data can be sent while the socket itself is borrowed.
pub(crate) struct Out<'a> {
    pub ifs: &'a mut [Interface],
    pub fib: &'a Fib,
    pub eg: &'a mut Egress,
    pub stats: &'a mut Stats,
}

/// The Ethernet destination and source of a frame `emit_tcp`'s direct
/// path writes, found together with its interface.
#[derive(Clone, Copy)]
struct LinkAddrs {
    dst: MacAddr,
    src: MacAddr,
}

/// The interface and next hop of a packet we originate to `dst`. The
/// limited broadcast leaves by interface 0; an address of ours by the
/// interface that holds it.
pub(crate) fn route(
    ifs: &[Interface],
    fib: &Fib,
    dst: Ipv4Addr,
) -> Result<(IfaceId, Ipv4Addr), Error> {
    if dst.is_broadcast() {
        return Ok((IfaceId(0), dst));
    }
    match fib.lookup(dst) {
        Some(NextHop::Attached(i)) => Ok((i, dst)),
        Some(NextHop::Gateway(i, gw)) => Ok((i, gw)),
        Some(NextHop::Local) => ifs
            .iter()
            .position(|f| f.has_addr(dst))
            .map(|i| (IfaceId(i as u16), dst))
            .ok_or(Error::NoRoute(dst)),
        None => Err(Error::NoRoute(dst)),
    }
}

impl Out<'_> {
    /// The next hop for a unicast `dst` (`None` for a broadcast or an
    /// unroutable one), remembered for the same destination next time.
    #[inline]
    pub fn unicast_next_hop(&mut self, dst: Ipv4Addr) -> Option<(IfaceId, Ipv4Addr)> {
        match self.eg.tx_route {
            Some(r) if r.dst == u32::from(dst) => Some((r.iface, Ipv4Addr::from(r.hop))),
            _ => self.unicast_route(dst),
        }
    }

    /// `unicast_next_hop` through the FIB.
    #[inline(never)]
    fn unicast_route(&mut self, dst: Ipv4Addr) -> Option<(IfaceId, Ipv4Addr)> {
        let (i, hop) = route(self.ifs, self.fib, dst).ok()?;
        if self.ifs[i.index()].is_broadcast(dst) {
            return None;
        }
        self.eg.tx_route = Some(TxRoute {
            dst: u32::from(dst),
            hop: u32::from(hop),
            iface: i,
        });
        Some((i, hop))
    }

    /// The source address of a packet we originate to `dst`: the address of
    /// the egress interface on `dst`'s subnet, else its first, else any.
    pub fn source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let from_route = route(self.ifs, self.fib, dst)
            .ok()
            .and_then(|(i, _)| self.ifs[i.index()].source_for(dst));
        from_route.or_else(|| {
            self.ifs
                .iter()
                .find_map(|f| f.addrs.first())
                .map(|c| c.addr())
        })
    }

    /// Send an IP datagram whose payload `emit` writes (it is given exactly
    /// `len` bytes). Fragments when the datagram exceeds the MTU and DF is
    /// clear; queues behind ARP when the next hop is unresolved.
    pub fn send_ip(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        h: IpTx,
        len: usize,
        emit: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), Error> {
        // The TCP output has usually just asked for this destination
        // (`unicast_next_hop`) before falling back to this path.
        let memo = self.eg.tx_route.filter(|m| m.dst == u32::from(h.dst));
        let routed = match memo {
            Some(m) => Ok((m.iface, Ipv4Addr::from(m.hop))),
            None => route(self.ifs, self.fib, h.dst),
        };
        let (ifx, next_hop) = match routed {
            Ok(n) => n,
            Err(e) => {
                self.stats.ip.drop_no_route += 1;
                return Err(e);
            }
        };
        let mtu = self.ifs[ifx.index()].mtu;
        let max_payload = mtu - ipw::HEADER_LEN;
        let ident = self.eg.next_ident;
        self.eg.next_ident = ident.wrapping_add(1);
        let mut repr = ipw::Repr {
            src_addr: h.src,
            dst_addr: h.dst,
            protocol: h.protocol,
            payload_len: len,
            ttl: h.ttl,
            tos: h.tos,
            ident,
            dont_frag: h.dont_frag,
            more_frags: false,
            frag_offset: 0,
        };
        if len <= max_payload {
            return self.send_packet(now, tx, ifx, next_hop, &repr, emit);
        }
        if h.dont_frag || len > 65535 - ipw::HEADER_LEN {
            self.stats.ip.drop_df_too_big += 1;
            return Err(Error::MessageTooLong {
                len,
                max: if h.dont_frag {
                    max_payload
                } else {
                    65535 - ipw::HEADER_LEN
                },
            });
        }
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        let step = max_payload & !7;
        let mut buf = core::mem::take(&mut self.eg.scratch);
        buf.clear();
        buf.resize(len, 0);
        emit(&mut buf);
        let mut result = Ok(());
        for (i, chunk) in buf.chunks(step).enumerate() {
            let offset = i * step;
            repr.payload_len = chunk.len();
            repr.frag_offset = offset as u16;
            repr.more_frags = offset + chunk.len() < len;
            result = self.send_packet(now, tx, ifx, next_hop, &repr, &mut |b| {
                b.copy_from_slice(chunk)
            });
            if result.is_err() {
                break;
            }
            self.stats.ip.tx_fragments += 1;
        }
        self.eg.scratch = buf;
        result
    }

    /// One IP packet (a whole datagram or one fragment) to `next_hop` on
    /// interface `ifx`.
    fn send_packet(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        next_hop: Ipv4Addr,
        repr: &ipw::Repr,
        emit: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), Error> {
        let f = &mut self.ifs[ifx.index()];
        let mac = if f.is_broadcast(repr.dst_addr) {
            MacAddr::BROADCAST
        } else {
            match f.arp.resolve(now, next_hop) {
                Resolution::Mac(m) => m,
                Resolution::MacAndProbe(m) => {
                    self.send_arp_request(tx, ifx, next_hop, Some(m));
                    m
                }
                Resolution::Pending { send_request } => {
                    if send_request {
                        self.send_arp_request(tx, ifx, next_hop, None);
                    }
                    let mut pkt = vec![0u8; repr.buffer_len()];
                    let mut p = ipw::Packet::new_unchecked(&mut pkt[..]);
                    repr.emit(&mut p);
                    emit(&mut pkt[ipw::HEADER_LEN..]);
                    // A refused packet is counted by the cache (pending_dropped).
                    self.ifs[ifx.index()].arp.queue(next_hop, pkt);
                    return Ok(());
                }
                Resolution::Failed => return Err(Error::HostUnreachable(next_hop)),
            }
        };
        let hl = self.ifs[ifx.index()].eth_header_len();
        let mut framed = |buf: &mut [u8]| {
            let (head, rest) = buf.split_at_mut(hl + ipw::HEADER_LEN);
            repr.emit(&mut ipw::Packet::new_unchecked(&mut head[hl..]));
            emit(rest);
        };
        self.transmit_frame(
            tx,
            ifx,
            mac,
            EtherType::Ipv4,
            ipw::HEADER_LEN + repr.payload_len,
            &mut framed,
        )?;
        self.stats.ip.tx_packets += 1;
        Ok(())
    }

    /// Send one TCP segment for the engine. Returns false only when the
    /// device has no TX room (the engine retries at the next poll); a
    /// segment lost to routing or ARP counts as sent, as wire loss would.
    #[allow(clippy::too_many_arguments)]
    pub fn emit_tcp(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ttl: u8,
        tos: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &tcpw::Repr<'_>,
    ) -> bool {
        match self.emit_tcp_direct(now, tx, ttl, tos, src, dst, seg) {
            Some(sent) => sent,
            None => self.emit_tcp_layered(now, tx, ttl, tos, src, dst, seg),
        }
    }

    /// `emit_tcp`'s common case in one pass: a segment that fits the MTU,
    /// unicast to a next hop the neighbour cache has just answered for, no
    /// VLAN tag. The Ethernet and IP headers are written from one stack
    /// array instead of through `send_ip`, `send_packet` and
    /// `transmit_frame` with their closures and `Repr`s, which cost about
    /// as much per segment as the TCP header itself. The frame, the IP
    /// identification sequence and every counter come out as the layered
    /// path leaves them (`tests::direct_tcp_emit_matches_the_layered_path`).
    /// `None`: not the common case, nothing was done or counted.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_tcp_direct(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ttl: u8,
        tos: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &tcpw::Repr<'_>,
    ) -> Option<bool> {
        let (ifx, link) = self.direct_next_hop(now, dst, seg.buffer_len())?;
        let Some(tx) = tx.tx(ifx) else {
            return Some(self.count_tcp_tx(Err(TxError::TooLong), 0));
        };
        Some(self.emit_tcp_frame(tx, link, ttl, tos, src, dst, seg))
    }

    /// A run of segments ([`SegmentOut::run`]) on `emit_tcp_direct`'s path:
    /// the checks and the neighbour lookup once, the Ethernet, IP and TCP
    /// headers built once as templates, then each segment's frame as the
    /// templates with its IP identification, sequence number, PSH and the
    /// two checksums patched in. Every frame, identification and counter
    /// comes out as `emit_tcp` leaves them for the run's segments one by
    /// one (`tests::a_segment_run_is_framed_as_its_segments_one_by_one`).
    /// `None`: not `emit_tcp_direct`'s case, nothing was done.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_tcp_run(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ttl: u8,
        tos: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        first: &tcpw::Repr<'_>,
        mss: usize,
    ) -> Option<usize> {
        let (ifx, link) = self.direct_next_hop(now, dst, first.header_len() + mss)?;
        let Some(tcp) = first.run_header(src, dst, mss) else {
            return Some(0);
        };
        let Some(tx) = tx.tx(ifx) else {
            // No device: every segment is lost, as on a dead link.
            self.stats.tcpw.tx_dropped += tcp.segments() as u64;
            return Some(tcp.segments());
        };
        let seg_len = tcp.header_len() + mss;
        let ip_len = ipw::HEADER_LEN + seg_len;
        let frame_len = eth::HEADER_LEN + ip_len;
        const HL: usize = eth::HEADER_LEN + ipw::HEADER_LEN;
        // The IP header as `emit_tcp_frame` writes it, with the
        // identification and the checksum left zero: the checksum is the
        // shared words' sum plus the identification.
        let words = [
            0x4500_0000 | u32::from(tos) << 16 | ip_len as u32,
            0x4000,
            u32::from(ttl) << 24 | u32::from(u8::from(Protocol::Tcp)) << 16,
            u32::from(src),
            u32::from(dst),
        ];
        let ip_sum = crate::ip::checksum::sum_be32(&words);
        let mut head = [0u8; HL];
        head[..6].copy_from_slice(&link.dst.0);
        head[6..12].copy_from_slice(&link.src.0);
        head[12..14].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
        for (w, at) in words
            .iter()
            .zip(head[eth::HEADER_LEN..].chunks_exact_mut(4))
        {
            at.copy_from_slice(&w.to_be_bytes());
        }
        let mut n = 0;
        while n < tcp.segments() {
            let ident = self.eg.next_ident;
            self.eg.next_ident = ident.wrapping_add(1);
            let ip_check = !crate::ip::checksum::add(ip_sum, ident);
            let r = tx.transmit(frame_len, &mut |buf| {
                let (h, rest) = buf.split_at_mut(HL);
                h.copy_from_slice(&head);
                h[eth::HEADER_LEN + 4..eth::HEADER_LEN + 6].copy_from_slice(&ident.to_be_bytes());
                h[eth::HEADER_LEN + 10..eth::HEADER_LEN + 12]
                    .copy_from_slice(&ip_check.to_be_bytes());
                tcp.write(rest, n);
            });
            if !self.count_tcp_tx(r, frame_len) {
                break;
            }
            n += 1;
        }
        Some(n)
    }

    /// The interface and the Ethernet addresses a `len`-byte segment to
    /// `dst` goes out with when `emit_tcp_direct` can write it: no VLAN tag,
    /// fits the MTU, next hop in the cache.
    #[inline]
    fn direct_next_hop(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        len: usize,
    ) -> Option<(IfaceId, LinkAddrs)> {
        let (ifx, next_hop) = self.unicast_next_hop(dst)?;
        let f = &self.ifs[ifx.index()];
        if f.vlan.is_some() || len > f.mtu - ipw::HEADER_LEN {
            return None;
        }
        let dst = f.arp.cached(now, next_hop)?;
        Some((ifx, LinkAddrs { dst, src: f.mac }))
    }

    /// Writes one segment's frame with `link`'s addresses; the value is
    /// `emit_tcp`'s.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn emit_tcp_frame(
        &mut self,
        tx: &mut dyn Transmit,
        link: LinkAddrs,
        ttl: u8,
        tos: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &tcpw::Repr<'_>,
    ) -> bool {
        let len = seg.buffer_len();
        let ident = self.eg.next_ident;
        self.eg.next_ident = ident.wrapping_add(1);
        let ip_len = ipw::HEADER_LEN + len;
        let frame_len = eth::HEADER_LEN + ip_len;
        const HL: usize = eth::HEADER_LEN + ipw::HEADER_LEN;
        // Version 4, IHL 5, the connection's TOS; DF, offset 0 (as `IpTx`
        // with dont_frag).
        // The headers are built as values and stored straight into the
        // frame, never staged in an array and copied: reloading fresh
        // narrow stores with wide loads stalls store forwarding, and that
        // cost more per segment than writing the headers.
        let mut words = [
            0x4500_0000 | u32::from(tos) << 16 | ip_len as u32,
            u32::from(ident) << 16 | 0x4000,
            u32::from(ttl) << 24 | u32::from(u8::from(Protocol::Tcp)) << 16,
            u32::from(src),
            u32::from(dst),
        ];
        words[2] |= u32::from(!crate::ip::checksum::sum_be32(&words));
        let (dst_mac, src_mac) = (link.dst.0, link.src.0);
        let ethertype = u16::from(EtherType::Ipv4).to_be_bytes();
        let r = tx.transmit(frame_len, &mut |buf| {
            let (h, rest) = buf.split_at_mut(HL);
            h[..6].copy_from_slice(&dst_mac);
            h[6..12].copy_from_slice(&src_mac);
            h[12..14].copy_from_slice(&ethertype);
            for (w, at) in words.iter().zip(h[eth::HEADER_LEN..].chunks_exact_mut(4)) {
                at.copy_from_slice(&w.to_be_bytes());
            }
            seg.emit(&mut tcpw::Packet::new_unchecked(rest), src, dst)
        });
        self.count_tcp_tx(r, frame_len)
    }

    /// Counts a TCP frame's transmit result; the value is `emit_tcp`'s.
    #[inline(always)]
    fn count_tcp_tx(&mut self, r: Result<(), TxError>, frame_len: usize) -> bool {
        match r {
            Ok(()) => {
                self.stats.eth.tx_frames += 1;
                self.stats.eth.tx_bytes += frame_len as u64;
                self.stats.ip.tx_packets += 1;
                self.stats.tcpw.tx_segments += 1;
                true
            }
            Err(TxError::Exhausted) => {
                self.stats.eth.tx_exhausted += 1;
                false
            }
            Err(TxError::TooLong) => {
                self.stats.tcpw.tx_dropped += 1;
                true
            }
        }
    }

    /// `emit_tcp` through the general IP output path.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_tcp_layered(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        ttl: u8,
        tos: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &tcpw::Repr<'_>,
    ) -> bool {
        // DF: segments are sized by MSS to fit, and path MTU discovery
        // (RFC 1191) needs it.
        let h = IpTx {
            src,
            dst,
            protocol: Protocol::Tcp,
            ttl,
            tos,
            dont_frag: true,
        };
        let r = self.send_ip(now, tx, h, seg.buffer_len(), &mut |b| {
            seg.emit(&mut tcpw::Packet::new_unchecked(b), src, dst)
        });
        match r {
            Ok(()) => {
                self.stats.tcpw.tx_segments += 1;
                true
            }
            Err(Error::Exhausted) => false,
            Err(_) => {
                self.stats.tcpw.tx_dropped += 1;
                true
            }
        }
    }

    /// A frame with our Ethernet header; `fill` gets the whole frame and must
    /// leave the first `eth_header_len` bytes alone.
    pub fn transmit_frame(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        dst: MacAddr,
        ethertype: EtherType,
        payload_len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), Error> {
        let f = &self.ifs[ifx.index()];
        let Some(tx) = tx.tx(ifx) else {
            self.stats.eth.tx_no_device += 1;
            return Err(Error::NoDevice(ifx));
        };
        let mtu = f.mtu;
        let repr = eth::Repr {
            src_addr: f.mac,
            dst_addr: dst,
            ethertype,
            vlan: f.vlan.map(|vid| eth::VlanTag {
                pcp: 0,
                dei: false,
                vid,
            }),
        };
        let len = repr.header_len() + payload_len;
        let r = tx.transmit(len, &mut |buf| {
            repr.emit(&mut eth::Frame::new_unchecked(&mut *buf));
            fill(buf);
        });
        match r {
            Ok(()) => {
                self.stats.eth.tx_frames += 1;
                self.stats.eth.tx_bytes += len as u64;
                Ok(())
            }
            Err(TxError::Exhausted) => {
                self.stats.eth.tx_exhausted += 1;
                Err(Error::Exhausted)
            }
            Err(TxError::TooLong) => Err(Error::MessageTooLong { len, max: mtu }),
        }
    }

    /// An already-built IP packet (from the ARP queue) to `mac`.
    pub fn transmit_ip_bytes(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        mac: MacAddr,
        pkt: &[u8],
    ) {
        let hl = self.ifs[ifx.index()].eth_header_len();
        if self
            .transmit_frame(tx, ifx, mac, EtherType::Ipv4, pkt.len(), &mut |b| {
                b[hl..].copy_from_slice(pkt)
            })
            .is_ok()
        {
            self.stats.ip.tx_packets += 1;
        }
    }

    /// Send an ARP packet. Requests go broadcast unless `unicast` names the
    /// MAC of a stale entry being probed.
    pub fn send_arp(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        dst_mac: MacAddr,
        repr: arpw::Repr,
    ) -> bool {
        let hl = self.ifs[ifx.index()].eth_header_len();
        let mut fill = |b: &mut [u8]| repr.emit(&mut arpw::Packet::new_unchecked(&mut b[hl..]));
        self.transmit_frame(
            tx,
            ifx,
            dst_mac,
            EtherType::Arp,
            repr.buffer_len(),
            &mut fill,
        )
        .is_ok()
    }

    pub fn send_arp_request(
        &mut self,
        tx: &mut dyn Transmitters,
        ifx: IfaceId,
        ip: Ipv4Addr,
        unicast: Option<MacAddr>,
    ) {
        let f = &self.ifs[ifx.index()];
        let Some(src) = f.source_for(ip) else {
            return;
        };
        let repr = arpw::Repr {
            operation: arpw::Operation::Request,
            source_mac: f.mac,
            source_ip: src,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        };
        if self.send_arp(tx, ifx, unicast.unwrap_or(MacAddr::BROADCAST), repr) {
            if unicast.is_some() {
                self.stats.arp.tx_probes += 1;
            } else {
                self.stats.arp.tx_requests += 1;
            }
        }
    }

    /// Send an ICMP error about a datagram we received, unless RFC 1122
    /// §3.2.2 forbids it or the rate limit says no. `quote` is the offending
    /// datagram from its IP header on; `link_broadcast` says it came in a
    /// link-layer broadcast.
    pub fn send_icmp_error(
        &mut self,
        now: Instant,
        tx: &mut dyn Transmitters,
        orig: &ipw::Repr,
        quote: &[u8],
        link_broadcast: bool,
        error: icmpw::Repr<'_>,
    ) {
        if !self.icmp_error_allowed(orig, quote, link_broadcast) {
            self.stats.icmp.tx_errors_suppressed += 1;
            return;
        }
        if !self.eg.icmp_errors.try_take(now) {
            self.stats.icmp.tx_errors_rate_limited += 1;
            return;
        }
        let max_quote = ICMP_ERROR_MAX - ipw::HEADER_LEN - 8;
        let quote = &quote[..quote.len().min(max_quote)];
        let repr = match error {
            icmpw::Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => icmpw::Repr::DstUnreachable {
                code,
                next_hop_mtu,
                invoking: quote,
            },
            icmpw::Repr::TimeExceeded { code, .. } => icmpw::Repr::TimeExceeded {
                code,
                invoking: quote,
            },
            icmpw::Repr::ParamProblem { pointer, .. } => icmpw::Repr::ParamProblem {
                pointer,
                invoking: quote,
            },
            _ => return,
        };
        // RFC 1812 §4.3.2.4: from an address of the interface the error
        // leaves by; an error about a datagram to us comes from the address
        // it was sent to, as hosts do.
        let src = if self.ifs.iter().any(|f| f.has_addr(orig.dst_addr)) {
            Some(orig.dst_addr)
        } else {
            self.source_for(orig.src_addr)
        };
        let Some(src) = src else { return };
        let h = IpTx {
            src,
            dst: orig.src_addr,
            protocol: Protocol::Icmp,
            ttl: self.eg.ttl,
            tos: 0,
            dont_frag: false,
        };
        let sent = self.send_ip(now, tx, h, repr.buffer_len(), &mut |b| {
            repr.emit(&mut icmpw::Packet::new_unchecked(b))
        });
        if sent.is_ok() {
            self.stats.icmp.tx_errors += 1;
            self.stats.icmp.tx_messages += 1;
        }
    }

    /// RFC 1122 §3.2.2: "An ICMP error message MUST NOT be sent as the result
    /// of receiving: an ICMP error message, or a datagram destined to an IP
    /// broadcast or IP multicast address, or a datagram sent as a link-layer
    /// broadcast, or a non-initial fragment, or a datagram whose source
    /// address does not define a single host".
    fn icmp_error_allowed(&self, orig: &ipw::Repr, quote: &[u8], link_broadcast: bool) -> bool {
        if link_broadcast || orig.frag_offset != 0 {
            return false;
        }
        if any_broadcast(self.ifs, orig.dst_addr) || orig.dst_addr.is_multicast() {
            return false;
        }
        if bogus_source(self.ifs, orig.src_addr) {
            return false;
        }
        if orig.protocol == Protocol::Icmp {
            let ihl = quote.first().map_or(0, |b| (b & 0x0f) as usize * 4);
            match quote.get(ihl) {
                Some(&t) if !icmpw::is_error_type(t) => {}
                _ => return false,
            }
        }
        true
    }
}

/// RFC 1122 §3.2.1.3 (and RFC 1812 §5.3.7 for a router): source addresses
/// not to accept, answer or forward: this-network (0/8), limited broadcast
/// or the directed broadcast of a subnet of ours, multicast, loopback,
/// class E, or one of our own addresses.
pub(crate) fn bogus_source(ifs: &[Interface], src: Ipv4Addr) -> bool {
    let o = src.octets();
    let w = u32::from(src);
    o[0] == 0
        || src.is_multicast()
        || o[0] == 127
        || o[0] >= 240
        || ifs
            .iter()
            .any(|f| f.is_directed_broadcast(w) || f.has_addr_word(w))
}

/// The limited broadcast, or the directed broadcast of any subnet of ours.
#[inline]
pub(crate) fn any_broadcast(ifs: &[Interface], ip: Ipv4Addr) -> bool {
    let w = u32::from(ip);
    w == u32::MAX || ifs.iter().any(|f| f.is_directed_broadcast(w))
}

impl Stack {
    pub(crate) fn out(&mut self) -> Out<'_> {
        Out {
            ifs: &mut self.ifs,
            fib: &self.fib,
            eg: &mut self.eg,
            stats: &mut self.stats,
        }
    }

    pub(crate) fn run_timers(&mut self, now: Instant, tx: &mut dyn Transmitters) {
        for at in 0..self.ifs.len() {
            let ifx = IfaceId(at as u16);
            // Announcements (RFC 5227 §2.3): an ARP request with sender and
            // target both set to our address.
            let mut i = 0;
            while i < self.ifs[at].announce.len() {
                let (ip, when, left) = self.ifs[at].announce[i];
                if when > now && self.started {
                    i += 1;
                    continue;
                }
                let repr = arpw::Repr {
                    operation: arpw::Operation::Request,
                    source_mac: self.ifs[at].mac,
                    source_ip: ip,
                    target_mac: MacAddr::ZERO,
                    target_ip: ip,
                };
                if self.out().send_arp(tx, ifx, MacAddr::BROADCAST, repr) {
                    self.stats.arp.tx_gratuitous += 1;
                }
                let a = &mut self.ifs[at].announce;
                if left > 1 {
                    a[i] = (ip, now + Duration::from_secs(2), left - 1);
                    i += 1;
                } else {
                    a.swap_remove(i);
                }
            }

            {
                let mut actions = core::mem::take(&mut self.eg.arp_actions);
                self.ifs[at].arp.poll(now, &mut actions);
                for a in actions.drain(..) {
                    match a {
                        TimerAction::Request { ip, unicast } => {
                            self.out().send_arp_request(tx, ifx, ip, unicast)
                        }
                        TimerAction::Failed { ip, dropped } => {
                            tracing::debug!(%ip, dropped, iface = %self.ifs[at].name, "ARP resolution failed");
                        }
                    }
                }
                self.eg.arp_actions = actions;
            }
        }
        self.started = true;

        if self.frag.next_deadline().is_some_and(|t| t <= now) {
            let mut out = Out {
                ifs: &mut self.ifs,
                fib: &self.fib,
                eg: &mut self.eg,
                stats: &mut self.stats,
            };
            self.frag.expire(now, &mut |e| {
                // RFC 792/1122: Time Exceeded code 1 only if fragment zero
                // arrived, quoting it.
                let Some(first) = e.first_fragment else {
                    return;
                };
                let orig = ipw::Repr {
                    src_addr: e.key.src,
                    dst_addr: e.key.dst,
                    protocol: Protocol::from(e.key.protocol),
                    payload_len: 0,
                    ttl: 0,
                    tos: 0,
                    ident: e.key.ident,
                    dont_frag: false,
                    more_frags: true,
                    frag_offset: 0,
                };
                let err = icmpw::Repr::TimeExceeded {
                    code: icmpw::TimeExceeded::FragReassembly,
                    invoking: &[],
                };
                out.send_icmp_error(now, tx, &orig, first, false, err);
            });
        }
    }

    pub(super) fn poll_tcp(&mut self, now: Instant, tx: &mut dyn Transmitters) {
        let ttl = self.eg.ttl;
        let out = Out {
            ifs: &mut self.ifs,
            fib: &self.fib,
            eg: &mut self.eg,
            stats: &mut self.stats,
        };
        self.tcp.poll_out(now, &mut TcpOut { out, tx, now, ttl });
        let (ifs, fib) = (&mut self.ifs, &self.fib);
        self.tcp.take_negative_advice(&mut |peer| {
            if let Ok((i, hop)) = route(ifs, fib, peer) {
                ifs[i.index()].arp.suspect(hop);
            }
        });
    }

    pub(super) fn flush_sockets(&mut self, now: Instant, tx: &mut dyn Transmitters) {
        let mut dirty = core::mem::take(&mut self.udp.dirty);
        dirty.retain(|&index| {
            let mut out = Out {
                ifs: &mut self.ifs,
                fib: &self.fib,
                eg: &mut self.eg,
                stats: &mut self.stats,
            };
            let Some(sock) = self.udp.socks.at_mut(index) else {
                return false;
            };
            while let Some((dst, data)) = sock.tx.front() {
                let Some(src) = (if sock.local.ip().is_unspecified() {
                    out.source_for(*dst.ip())
                } else {
                    Some(*sock.local.ip())
                }) else {
                    break;
                };
                let h = IpTx {
                    src,
                    dst: *dst.ip(),
                    protocol: Protocol::Udp,
                    ttl: sock.ttl,
                    tos: 0,
                    dont_frag: sock.dont_frag,
                };
                let udp = udpw::Repr {
                    src_port: sock.local.port(),
                    dst_port: dst.port(),
                };
                let len = udpw::HEADER_LEN + data.len();
                let r = out.send_ip(now, tx, h, len, &mut |b| {
                    udp.emit(&mut udpw::Packet::new_unchecked(b), src, *dst.ip(), data)
                });
                match r {
                    // Keep the datagram; the device has no room until the next flush.
                    Err(Error::Exhausted) => return true,
                    Ok(()) => {
                        sock.stats.tx_datagrams += 1;
                        sock.stats.tx_bytes += data.len() as u64;
                        out.stats.udp.tx_datagrams += 1;
                    }
                    Err(e) => {
                        sock.stats.tx_errors += 1;
                        out.stats.udp.tx_errors += 1;
                        sock.error = Some(e);
                    }
                }
                sock.tx.pop_front();
            }
            false
        });
        // Sockets queued during this flush (none today) keep their place.
        dirty.append(&mut self.udp.dirty);
        self.udp.dirty = dirty;

        let mut dirty = core::mem::take(&mut self.pings.dirty);
        dirty.retain(|&index| {
            let mut out = Out {
                ifs: &mut self.ifs,
                fib: &self.fib,
                eg: &mut self.eg,
                stats: &mut self.stats,
            };
            let Some(sock) = self.pings.socks.at_mut(index) else {
                return false;
            };
            while let Some(&req) = sock.to_send.front() {
                let Some(src) = out.source_for(req.dst) else {
                    break;
                };
                let h = IpTx {
                    src,
                    dst: req.dst,
                    protocol: Protocol::Icmp,
                    ttl: out.eg.ttl,
                    tos: 0,
                    dont_frag: req.dont_frag,
                };
                let ident = sock.ident;
                let len = 8 + req.size;
                let r = out.send_ip(now, tx, h, len, &mut |b| {
                    let mut p = icmpw::Packet::new_unchecked(b);
                    p.set_msg_type(8);
                    p.set_msg_code(0);
                    p.set_echo_ident(ident);
                    p.set_echo_seq(req.seq);
                    for (i, d) in p.data_mut().iter_mut().enumerate() {
                        *d = pattern_byte(i);
                    }
                    p.fill_checksum();
                });
                match r {
                    Err(Error::Exhausted) => return true,
                    Ok(()) => {
                        out.stats.icmp.tx_echo_requests += 1;
                        out.stats.icmp.tx_messages += 1;
                        sock.sent(req.seq, now);
                    }
                    Err(e) => sock.on_send_failed(req.seq, e),
                }
                sock.to_send.pop_front();
            }
            false
        });
        dirty.append(&mut self.pings.dirty);
        self.pings.dirty = dirty;
    }
}

/// The stack's TCP output: segments through [`Out::emit_tcp`], runs of
/// them through [`Out::emit_tcp_run`].
struct TcpOut<'a, 'b> {
    out: Out<'a>,
    tx: &'b mut dyn Transmitters,
    now: Instant,
    ttl: u8,
}

impl SegmentOut for TcpOut<'_, '_> {
    fn segment(&mut self, src: Ipv4Addr, dst: Ipv4Addr, tos: u8, seg: &tcpw::Repr<'_>) -> bool {
        self.out
            .emit_tcp(self.now, self.tx, self.ttl, tos, src, dst, seg)
    }

    fn run(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        tos: u8,
        first: &tcpw::Repr<'_>,
        mss: usize,
    ) -> Option<usize> {
        self.out
            .emit_tcp_run(self.now, self.tx, self.ttl, tos, src, dst, first, mss)
    }
}
