//! The IPv4 forwarding path (RFC 1812 §5): what happens to a datagram that
//! arrives on one interface for an address that is not ours.
//!
//! In order: not forwarded when it came as a link-layer broadcast (§5.3.4),
//! when its interface does not forward, when its destination is martian or
//! a directed broadcast (RFC 2644's default), when its source is martian or
//! ours (§5.3.7) or fails the interface's reverse-path filter (RFC 3704).
//! A TTL that would reach zero gets Time Exceeded (§5.3.1); no route gets
//! Net Unreachable, an unresolvable next hop Host Unreachable (§5.2.7.1); a
//! datagram larger than the egress MTU is fragmented (§5.2.6) or, with DF,
//! answered with Fragmentation Needed carrying that MTU (RFC 1191), so path
//! MTU discovery works through us. Everything else leaves with TTL − 1, the
//! header checksum updated incrementally (RFC 1624), in one copy from the
//! receiving device's frame into the egress device's TX frame. ICMP errors
//! go through the stack's rate limit and RFC 1812 §4.3.2.7's rules (never
//! about an ICMP error, a fragment other than the first, a broadcast).
//! Redirects are never sent.

use crate::arp::Resolution;
use crate::eth::{EtherType, MacAddr};
use crate::icmp::wire as icmpw;
use crate::ip::checksum;
use crate::ip::wire as ipw;
use crate::stack::output::{any_broadcast, bogus_source};
use crate::stack::{IfaceId, RpFilter, Stack, Transmitters};
use crate::time::Instant;
use core::net::Ipv4Addr;

/// Destinations never forwarded (RFC 1812 §5.3.7 and §4.2.2.11): this
/// network (0/8), loopback, multicast (ringstack routes no multicast), class
/// E and the limited broadcast.
pub fn martian_destination(dst: Ipv4Addr) -> bool {
    let o = dst.octets();
    o[0] == 0 || o[0] == 127 || o[0] >= 224
}

/// The header's TTL lowered by one and its checksum updated to match
/// (RFC 1624 eqn. 3 over the TTL/protocol word): `(ttl, checksum)`.
#[inline]
pub fn decrement_ttl(ttl: u8, protocol: u8, check: u16) -> (u8, u16) {
    let old = u16::from_be_bytes([ttl, protocol]);
    let new = u16::from_be_bytes([ttl - 1, protocol]);
    (ttl - 1, checksum::update(check, old, new))
}

/// The options of `header` that RFC 791 says every fragment carries (the
/// copied flag, 0x80, set), padded with End of Option List to a multiple of
/// four; the others stay in the first fragment only.
pub fn copied_options(options: &[u8], out: &mut [u8; 40]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < options.len() {
        let kind = options[i];
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = options.get(i + 1) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || i + len > options.len() {
                    break;
                }
                if kind & 0x80 != 0 {
                    out[n..n + len].copy_from_slice(&options[i..i + len]);
                    n += len;
                }
                i += len;
            }
        }
    }
    let padded = (n + 3) & !3;
    out[n..padded].fill(0);
    padded
}

/// Cut `packet` (a whole IPv4 datagram or a fragment, header checked) into
/// fragments of at most `mtu` bytes with TTL `ttl`, calling `emit` with
/// each finished fragment. Offsets and More Fragments continue those of
/// `packet`, so a fragment is fragmented again correctly. Returns the
/// number of fragments, 0 if `mtu` cannot hold a header and 8 bytes.
pub fn fragment(packet: &[u8], mtu: usize, ttl: u8, emit: &mut dyn FnMut(&[u8])) -> usize {
    let p = ipw::Packet::new_unchecked(packet);
    let hl = p.header_len();
    let total = usize::from(p.total_len());
    let payload = &packet[hl..total];
    let base_off = usize::from(p.frag_offset());
    let last_mf = p.more_frags();
    let mut opts = [0u8; 40];
    let later_hl = ipw::HEADER_LEN + copied_options(&packet[ipw::HEADER_LEN..hl], &mut opts);
    let mut buf = [0u8; 65535];
    let mut off = 0;
    let mut count = 0;
    while off < payload.len() {
        let this_hl = if off == 0 { hl } else { later_hl };
        if mtu < this_hl + 8 {
            return 0;
        }
        let room = (mtu - this_hl) & !7;
        let n = room.min(payload.len() - off);
        let more = off + n < payload.len() || last_mf;
        if off == 0 {
            buf[..hl].copy_from_slice(&packet[..hl]);
        } else {
            buf[..ipw::HEADER_LEN].copy_from_slice(&packet[..ipw::HEADER_LEN]);
            buf[ipw::HEADER_LEN..this_hl].copy_from_slice(&opts[..this_hl - ipw::HEADER_LEN]);
        }
        buf[this_hl..this_hl + n].copy_from_slice(&payload[off..off + n]);
        let mut f = ipw::Packet::new_unchecked(&mut buf[..this_hl + n]);
        f.set_header_len(this_hl);
        f.set_total_len((this_hl + n) as u16);
        f.set_flags_and_offset(false, more, (base_off + off) as u16);
        f.set_ttl(ttl);
        f.fill_checksum();
        emit(&buf[..this_hl + n]);
        count += 1;
        off += n;
    }
    count
}

impl Stack {
    /// Forward one datagram that arrived on `ifx` for someone else. `data`
    /// holds it from its IP header (`hl` bytes) on, possibly with link
    /// padding after it; `repr` is its checked header.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        data: &[u8],
        hl: usize,
        repr: &ipw::Repr,
        link_bcast: bool,
        tx: &mut dyn Transmitters,
    ) {
        let (src, dst) = (repr.src_addr, repr.dst_addr);
        let rx = &self.ifs[ifx.index()];
        let s = &mut self.stats.ip;
        let refused = if link_bcast {
            Some(&mut s.fwd_drop_link_broadcast)
        } else if !rx.forward {
            Some(&mut s.fwd_drop_disabled)
        } else if martian_destination(dst) {
            Some(&mut s.fwd_drop_martian_dst)
        } else if any_broadcast(&self.ifs, dst) {
            Some(&mut s.fwd_drop_directed_broadcast)
        } else if bogus_source(&self.ifs, src) {
            Some(&mut s.fwd_drop_martian_src)
        } else if !self.reverse_path_ok(ifx, src) {
            Some(&mut self.stats.ip.fwd_drop_rp_filter)
        } else {
            None
        };
        if let Some(counter) = refused {
            *counter += 1;
            self.ifs[ifx.index()].stats.forward_dropped += 1;
            return;
        }
        let packet = &data[..hl + repr.payload_len];
        // RFC 1812 §5.3.1: a datagram whose TTL would reach zero is not
        // forwarded; the sender hears Time Exceeded.
        if repr.ttl <= 1 {
            self.stats.ip.fwd_drop_ttl_expired += 1;
            self.forward_error(now, ifx, repr, packet, tx, icmp_time_exceeded());
            return;
        }
        let Some((out, next_hop)) = self.fib.lookup(dst).and_then(|h| h.egress(dst)) else {
            self.stats.ip.fwd_drop_no_route += 1;
            self.forward_error(
                now,
                ifx,
                repr,
                packet,
                tx,
                icmp_unreachable(icmpw::DstUnreachable::NetUnreachable, 0),
            );
            return;
        };
        let mtu = self.ifs[out.index()].mtu;
        if packet.len() > mtu && repr.dont_frag {
            self.stats.ip.fwd_drop_frag_needed += 1;
            let err = icmp_unreachable(icmpw::DstUnreachable::FragRequired, mtu.min(65535) as u16);
            self.forward_error(now, ifx, repr, packet, tx, err);
            return;
        }
        let f = &mut self.ifs[out.index()];
        let mac = match f.arp.resolve(now, next_hop) {
            Resolution::Mac(m) => m,
            Resolution::MacAndProbe(m) => {
                self.out().send_arp_request(tx, out, next_hop, Some(m));
                m
            }
            Resolution::Pending { send_request } => {
                if send_request {
                    self.out().send_arp_request(tx, out, next_hop, None);
                }
                self.stats.ip.fwd_queued_arp += 1;
                let arp = &mut self.ifs[out.index()].arp;
                each_forwarded(packet, repr, mtu, &mut |pkt| {
                    // A refused packet is counted by the cache.
                    arp.queue(next_hop, pkt.to_vec());
                });
                self.count_forwarded(ifx, out);
                return;
            }
            Resolution::Failed => {
                self.stats.ip.fwd_drop_host_unreachable += 1;
                let err = icmp_unreachable(icmpw::DstUnreachable::HostUnreachable, 0);
                self.forward_error(now, ifx, repr, packet, tx, err);
                return;
            }
        };
        if tx.tx(out).is_none() {
            self.stats.ip.fwd_drop_no_device += 1;
            self.ifs[ifx.index()].stats.forward_dropped += 1;
            return;
        }
        let sent = if packet.len() <= mtu {
            self.transmit_forwarded(tx, out, mac, packet, repr)
        } else {
            let mut o = self.out();
            let mut ok = true;
            let n = fragment(packet, mtu, repr.ttl - 1, &mut |frag| {
                let hl = o.ifs[out.index()].eth_header_len();
                ok &= o
                    .transmit_frame(tx, out, mac, EtherType::Ipv4, frag.len(), &mut |b| {
                        b[hl..].copy_from_slice(frag)
                    })
                    .is_ok();
            });
            self.stats.ip.fwd_fragmented += 1;
            self.stats.ip.fwd_fragments += n as u64;
            ok && n > 0
        };
        if sent {
            self.count_forwarded(ifx, out);
        } else {
            self.ifs[ifx.index()].stats.forward_dropped += 1;
        }
    }

    fn count_forwarded(&mut self, ifx: IfaceId, out: IfaceId) {
        self.stats.ip.forwarded += 1;
        self.ifs[ifx.index()].stats.forwarded_in += 1;
        self.ifs[out.index()].stats.forwarded_out += 1;
    }

    /// The one copy: the datagram into the egress TX frame behind our
    /// Ethernet header, TTL and checksum patched in the frame.
    fn transmit_forwarded(
        &mut self,
        tx: &mut dyn Transmitters,
        out: IfaceId,
        mac: MacAddr,
        packet: &[u8],
        repr: &ipw::Repr,
    ) -> bool {
        let hl = self.ifs[out.index()].eth_header_len();
        let (ttl, check) = decrement_ttl(
            repr.ttl,
            packet[9],
            u16::from_be_bytes([packet[10], packet[11]]),
        );
        self.out()
            .transmit_frame(tx, out, mac, EtherType::Ipv4, packet.len(), &mut |b| {
                let ip = &mut b[hl..];
                ip.copy_from_slice(packet);
                ip[8] = ttl;
                ip[10..12].copy_from_slice(&check.to_be_bytes());
            })
            .is_ok()
    }

    /// RFC 3704: with `Strict`, the route back to `src` must leave by the
    /// interface the datagram came in on; with `Loose`, there must be one.
    fn reverse_path_ok(&self, ifx: IfaceId, src: Ipv4Addr) -> bool {
        let back = || self.fib.lookup(src).and_then(|h| h.egress(src));
        match self.ifs[ifx.index()].rp_filter {
            RpFilter::Off => true,
            RpFilter::Loose => self.fib.has_default() || back().is_some(),
            RpFilter::Strict => back().is_some_and(|(i, _)| i == ifx),
        }
    }

    fn forward_error(
        &mut self,
        now: Instant,
        ifx: IfaceId,
        repr: &ipw::Repr,
        packet: &[u8],
        tx: &mut dyn Transmitters,
        err: icmpw::Repr<'_>,
    ) {
        self.ifs[ifx.index()].stats.forward_dropped += 1;
        self.out()
            .send_icmp_error(now, tx, repr, packet, false, err);
    }
}

/// The datagram as it leaves when the next hop is not yet resolved: whole,
/// or its fragments, each with TTL − 1.
fn each_forwarded(packet: &[u8], repr: &ipw::Repr, mtu: usize, f: &mut dyn FnMut(&[u8])) {
    if packet.len() <= mtu {
        let mut v = [0u8; 65535];
        let v = &mut v[..packet.len()];
        v.copy_from_slice(packet);
        let (ttl, check) = decrement_ttl(
            repr.ttl,
            packet[9],
            u16::from_be_bytes([packet[10], packet[11]]),
        );
        v[8] = ttl;
        v[10..12].copy_from_slice(&check.to_be_bytes());
        f(v);
    } else {
        fragment(packet, mtu, repr.ttl - 1, f);
    }
}

fn icmp_time_exceeded() -> icmpw::Repr<'static> {
    icmpw::Repr::TimeExceeded {
        code: icmpw::TimeExceeded::TtlExpired,
        invoking: &[],
    }
}

fn icmp_unreachable(code: icmpw::DstUnreachable, mtu: u16) -> icmpw::Repr<'static> {
    icmpw::Repr::DstUnreachable {
        code,
        next_hop_mtu: mtu,
        invoking: &[],
    }
}
