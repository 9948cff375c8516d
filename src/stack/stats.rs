//! Counters per layer, in the spirit of `netstat -s`: what came in, what went
//! out, and every drop by its reason.

use std::fmt::Write as _;

macro_rules! counters {
    ($(#[$m:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $(pub $field: u64,)* }
        impl $name {
            /// Every counter with its name, in declaration order.
            pub fn for_each(&self, f: &mut dyn FnMut(&'static str, u64)) {
                $(f(stringify!($field), self.$field);)*
            }
        }
    };
}

counters!(
    /// Ethernet.
    EthStats {
        rx_frames, rx_bytes, tx_frames, tx_bytes,
        drop_truncated, drop_not_our_mac, drop_bad_src_mac, drop_vlan, drop_unknown_ethertype, drop_no_interface,
        tx_exhausted, tx_no_device,
    }
);

counters!(
    /// ARP and the neighbour cache.
    ArpStats {
        rx_requests, rx_replies, tx_requests, tx_replies, tx_proxy_replies, tx_gratuitous, tx_probes,
        drop_truncated, drop_unsupported, drop_bad_sender, drop_not_for_us,
        address_conflicts, mac_conflicts, resolved, resolution_failed, pending_dropped, evicted, expired,
        neighbors, pending_packets,
    }
);

counters!(
    /// IPv4, including fragmentation and reassembly.
    IpStats {
        rx_packets, rx_delivered, tx_packets, tx_fragments, rx_fragments, reassembled,
        drop_truncated, drop_bad_version, drop_bad_header_len, drop_bad_total_len, drop_bad_checksum,
        drop_bad_src, drop_not_for_us, drop_unknown_protocol, drop_no_route, drop_df_too_big,
        frag_duplicates, frag_timeouts, frag_drop_overlap, frag_drop_too_big, frag_drop_bad_length,
        frag_drop_too_many_fragments, frag_drop_too_many_datagrams, frag_drop_too_many_bytes,
        reasm_datagrams, reasm_bytes,
        forwarded, fwd_fragmented, fwd_fragments, fwd_drop_ttl_expired, fwd_drop_no_route,
        fwd_drop_frag_needed, fwd_drop_host_unreachable, fwd_drop_link_broadcast, fwd_drop_martian_src,
        fwd_drop_martian_dst, fwd_drop_rp_filter, fwd_drop_directed_broadcast, fwd_drop_disabled,
        fwd_drop_no_device, fwd_queued_arp,
    }
);

counters!(
    /// ICMP.
    IcmpStats {
        rx_messages, tx_messages, rx_echo_requests, tx_echo_replies, rx_echo_replies, tx_echo_requests,
        rx_errors, tx_errors, tx_errors_rate_limited, tx_errors_suppressed,
        drop_truncated, drop_bad_checksum, drop_malformed, drop_unsupported, drop_broadcast_echo,
    }
);

counters!(
    /// UDP.
    UdpStats {
        rx_datagrams, tx_datagrams, drop_truncated, drop_bad_length, drop_bad_checksum, drop_malformed,
        drop_no_port, drop_queue_full, tx_errors,
    }
);

counters!(
    /// TCP segments as the IP layer sees them; the engine's own counters
    /// follow in the same `tcp` block.
    TcpWireStats {
        rx_segments, tx_segments, drop_truncated, drop_bad_checksum, drop_malformed, drop_broadcast, tx_dropped,
    }
);

/// All counters of one stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub eth: EthStats,
    pub arp: ArpStats,
    pub ip: IpStats,
    pub icmp: IcmpStats,
    pub udp: UdpStats,
    pub tcpw: TcpWireStats,
    /// The TCP engine's counters (`netstat -s` style), by name.
    pub tcp: Vec<(&'static str, u64)>,
}

impl Stats {
    /// Every counter as (layer, name, value).
    pub fn for_each(&self, f: &mut dyn FnMut(&'static str, &'static str, u64)) {
        self.eth.for_each(&mut |n, v| f("eth", n, v));
        self.arp.for_each(&mut |n, v| f("arp", n, v));
        self.ip.for_each(&mut |n, v| f("ip", n, v));
        self.icmp.for_each(&mut |n, v| f("icmp", n, v));
        self.udp.for_each(&mut |n, v| f("udp", n, v));
        self.tcpw.for_each(&mut |n, v| f("tcp", n, v));
        for (n, v) in &self.tcp {
            f("tcp", n, *v);
        }
    }

    /// Sum of every counter whose name starts with `drop_`.
    pub fn total_drops(&self) -> u64 {
        let mut n = 0;
        self.for_each(&mut |_, name, v| {
            if name.starts_with("drop_") || name.starts_with("frag_drop_") {
                n += v
            }
        });
        n
    }

    /// A table like `netstat -s`, one layer per block. With `nonzero_only`
    /// the zero counters are left out.
    pub fn to_table(&self, nonzero_only: bool) -> String {
        let mut out = String::new();
        let mut last = "";
        self.for_each(&mut |layer, name, v| {
            if nonzero_only && v == 0 {
                return;
            }
            if layer != last {
                let _ = writeln!(out, "{layer}:");
                last = layer;
            }
            let _ = writeln!(out, "    {name:<32} {v}");
        });
        out
    }

    /// Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        self.for_each(&mut |layer, name, v| {
            let _ = writeln!(out, "ringstack_{layer}_{name} {v}");
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_layers_and_counters() {
        let mut s = Stats::default();
        s.ip.drop_bad_checksum = 3;
        s.udp.rx_datagrams = 5;
        assert_eq!(s.to_table(true), "ip:\n    drop_bad_checksum                3\nudp:\n    rx_datagrams                     5\n");
        assert_eq!(s.total_drops(), 3);
        assert!(s.to_prometheus().contains("ringstack_udp_rx_datagrams 5\n"));
    }
}
