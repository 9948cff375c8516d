//! Table-wide counters in the spirit of `netstat -s`.

macro_rules! counters {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $field: u64,)* }
        impl $name {
            /// Every counter with its name, in declaration order.
            pub fn for_each(&self, f: &mut dyn FnMut(&'static str, u64)) {
                $(f(stringify!($field), self.$field);)*
            }
        }
    };
}

counters!(
    /// TCP counters. `drop_*` are input errors by reason; `in_errs` is
    /// their sum.
    TcpStats {
        active_opens, passive_opens, attempt_fails, estab_resets, curr_estab,
        in_segs, out_segs, retrans_segs, fast_retransmits, rto_timeouts, in_errs, out_rsts,
        in_rsts, syn_cookies_sent, syn_cookies_ok, syn_cookies_failed, challenge_acks,
        challenge_acks_suppressed, paws_drops, listen_overflows, syn_queue_full_drops,
        time_wait_recycled, time_wait_reused, keepalive_probes, keepalive_timeouts,
        zero_window_probes, data_timeouts, connect_timeouts, ooo_segments, icmp_soft_errors,
        icmp_hard_errors, icmp_ignored, pmtu_updates, delayed_acks, sack_recoveries,
        newreno_recoveries, dsacks_received,
        /// Loss responses undone because the retransmission was spurious
        /// (RFC 3522 Eifel detection with timestamps).
        spurious_undos,
        /// Times pacing held a segment back for a later poll.
        paced_waits,
        /// Retransmissions found lost again by RACK (RFC 8985) and resent.
        rack_lost_retransmits,
        /// Retransmissions of one segment reached R1 (negative advice to IP).
        r1_notices,
        /// The peer's urgent pointer appeared or advanced.
        urgent_notifications,
        /// In-order data segments taken by header prediction.
        predicted_data,
        /// Pure ACKs of new data taken by header prediction.
        predicted_acks,
        /// Data segments sent as the continuation of a send run
        /// (`Tcb::next_full`), not through the general choice.
        run_segs,
        /// A segment from or to a broadcast, multicast or unspecified address.
        drop_bad_addr,
        /// A non-RST segment without timestamps on a connection that
        /// negotiated them (RFC 7323 §3.2).
        drop_no_timestamp,
        /// Outside the receive window (answered with an ACK).
        drop_out_of_window,
        /// An ACK for data never sent, or older than RFC 5961 §5 allows.
        drop_bad_ack,
        /// A segment without ACK in a synchronized state.
        drop_no_ack,
        /// A RST that was not exactly at RCV.NXT.
        drop_bad_rst,
        /// A SYN on a synchronized connection (answered by a challenge ACK).
        drop_bad_syn,
        /// Out-of-order data over `ooo_max_bytes` or the range limit.
        drop_ooo_full,
        /// A segment for no connection and no listener (answered by RST).
        drop_no_socket,
        /// A segment to a listener that was neither SYN nor valid cookie ACK.
        drop_listen,
        /// A SYN the connection limit had no room for.
        drop_too_many_connections,
        /// Anything else malformed for its state (odd flag combinations).
        drop_malformed,
    }
);

impl TcpStats {
    pub(crate) fn drop(&mut self, counter: fn(&mut TcpStats) -> &mut u64) {
        self.in_errs += 1;
        *counter(self) += 1;
    }
}
