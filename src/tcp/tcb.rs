//! One connection: the transmission control block and RFC 9293 §3.10 event
//! processing, with the companion RFCs folded in where §3.10 points to them
//! (RFC 5961 in the RST, SYN and ACK checks; RFC 7323 PAWS before the
//! sequence check; RFC 6298 timers; RFC 5681/6582/6675 loss recovery).
//!
//! A `Tcb` never reads a clock and never emits on its own: the table calls
//! [`Tcb::on_segment`], [`Tcb::on_timer`] and [`Tcb::transmit`] with `now`
//! and an `emit` callback. Answers that RFC 9293 requires at once (RST,
//! challenge ACK, the ACK to an unacceptable segment without data) go out
//! from `on_segment`; ACKs of data, including the answer to data that was
//! not acceptable, and everything else wait for `transmit`, which the table
//! runs from `poll`, so a batch of arrivals is acknowledged once (MUST-58,
//! MUST-59).

use core::net::{Ipv4Addr, SocketAddrV4};

use super::buffer::{Assembler, RingBuf};
use super::cc::{self, AckSample, CongestionControl, CongestionEvent};
use super::config::{CcAlgorithm, Keepalive, TcpConfig, MAX_BUFFER, MIN_MSS};
use super::rate::{Delivery, RateSampler};
use super::rtt::RttEstimator;
use super::sack::{Scoreboard, DUP_THRESH};
use super::seq::{segment_acceptable, SeqNumber};
use super::stats::TcpStats;
use super::types::{ConnStats, ListenHandle, State, TcpError};
use super::wire::{header_len_for, Repr, MAX_SACK_BLOCKS};
use crate::time::{Duration, Instant};

/// What the table hands every emission to: source and destination address,
/// the IPv4 TOS byte (the connection's DSCP in the top six bits, MUST-48 and
/// SHLD-22; ECN bits zero) and the segment.
pub type Emit<'e> = dyn FnMut(Ipv4Addr, Ipv4Addr, u8, &Repr<'_>) -> bool + 'e;

/// Where the engine's segments go. Any [`Emit`] closure is one, taking
/// segments one at a time; an output that can also take a run of equal
/// segments in one call (the stack's, which writes them as a software
/// GSO: one set of header checks, one neighbour lookup, one plan in the
/// engine) says so through [`SegmentOut::run`].
pub trait SegmentOut {
    /// One segment; false if the device had no room (nothing was sent).
    fn segment(&mut self, src: Ipv4Addr, dst: Ipv4Addr, tos: u8, seg: &Repr<'_>) -> bool;

    /// `first.payload` holds `n >= 2` segments of exactly `mss` bytes each;
    /// segment `i` is `first` with `seq_number + i * mss`, the `i`-th
    /// `mss` bytes of the payload, and PSH only if it is the last and
    /// `first.psh` is set. Every other field is the same for all of them.
    /// Returns how many went out, from the first (fewer than `n` only when
    /// the device ran out of room), or `None` if this output takes no runs
    /// (then nothing was sent and the engine sends them one by one).
    fn run(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        tos: u8,
        first: &Repr<'_>,
        mss: usize,
    ) -> Option<usize> {
        let _ = (src, dst, tos, first, mss);
        None
    }
}

impl<F> SegmentOut for F
where
    F: FnMut(Ipv4Addr, Ipv4Addr, u8, &Repr<'_>) -> bool,
{
    fn segment(&mut self, src: Ipv4Addr, dst: Ipv4Addr, tos: u8, seg: &Repr<'_>) -> bool {
        self(src, dst, tos, seg)
    }
}

/// RFC 9293 §3.7.1: "If an MSS Option is not received at connection setup,
/// TCP implementations MUST assume a default send MSS of 536 (576 - 40) for
/// IPv4" (MUST-15).
pub const DEFAULT_MSS: u16 = 536;

/// RFC 7323 §5.5: TS.Recent is invalid after 24 days of idleness.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// The SWS override timer (RFC 9293 §3.8.6.2.1: "The override timeout
/// should be in the range 0.1 - 1.0 seconds").
const SWS_OVERRIDE: Duration = Duration::from_millis(200);

/// The least time between ACKs answering out-of-window pure ACKs.
const OOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

/// How far ahead of its pacing clock a paced flow may run: the burst a
/// poll loop that wakes once a millisecond needs to keep up with its rate.
const PACING_BURST: Duration = Duration::from_millis(1);

/// Segments one `transmit` call sends at most, so one connection with a
/// huge window cannot hog a poll.
const MAX_BURST: usize = 64;

/// How the connection is recovering from loss.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Recovery {
    /// RFC 6582 with the window inflation of RFC 5681 §3.2.
    NewReno,
    /// RFC 6675, driven by the scoreboard.
    Sack,
}

/// The next segment `transmit` decided to send.
#[derive(Copy, Clone, Debug)]
struct Plan {
    seq: SeqNumber,
    len: usize,
    fin: bool,
    /// Below SND.MAX: a retransmission (Karn, counters).
    rtx: bool,
    /// A zero-window probe: sent past the window, not timed by the RTO.
    probe: bool,
    /// RFC 6675's rescue retransmission.
    rescue: bool,
}

/// What every data segment of one `transmit` call has in common: the
/// header fields but sequence number, flags, urgent pointer and payload,
/// and the payload room beside the options.
#[derive(Clone, Copy)]
struct SegCommon {
    base: Repr<'static>,
    room: usize,
}

/// SYN cookie parameters recovered from a returning ACK.
#[derive(Copy, Clone, Debug)]
pub struct CookieParams {
    pub mss: u16,
    pub wscale: Option<u8>,
    pub sack: bool,
    pub ts: bool,
}

#[derive(Debug)]
pub struct Tcb {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// The listener a passive open came from (MUST-11: remember whether
    /// SYN-RECEIVED was reached from LISTEN).
    pub listener: Option<ListenHandle>,
    pub passive: bool,
    /// The app has closed its handle; the connection finishes alone.
    pub orphaned: bool,
    /// Table bookkeeping flags.
    pub in_accept_queue: bool,
    pub counted_half_open: bool,
    pub counted_estab: bool,
    pub counted_tw: bool,
    pub in_ready: bool,
    pub heap_at: Option<Instant>,
    /// Send a RST at the next transmit and close (abort, listener close).
    pub rst_pending: bool,
    /// Something may be sendable (ACK in, window opened, app data, timer):
    /// the table queues the connection for `transmit`.
    pub kick: bool,

    // Send sequence space (RFC 9293 §3.3.1).
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    /// The highest sequence number sent (SND.NXT before an RTO rewinds it).
    snd_max: SeqNumber,
    snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    max_snd_wnd: usize,
    snd_wscale: u8,
    tx: RingBuf,
    /// Sequence number of `tx`'s first byte.
    tx_base: SeqNumber,
    /// The app shut down writing: a FIN follows the queued data.
    fin_queued: bool,

    // Receive sequence space.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    rx: RingBuf,
    ooo: Assembler,
    /// A FIN that arrived ahead of missing data.
    ooo_fin: Option<SeqNumber>,
    /// RCV.UP: the sequence number just past the peer's urgent data.
    rcv_up: Option<SeqNumber>,
    /// SND.UP: the same for ours, until it is acknowledged.
    snd_up: Option<SeqNumber>,
    rcv_wscale: u8,
    /// The right edge we have advertised; never moved left (SHLD-14).
    rcv_adv: SeqNumber,
    last_ack_sent: SeqNumber,
    fin_received: bool,
    /// Largest payload seen, RFC 9293's RMSS estimate for delayed ACKs.
    rcv_mss: usize,
    unacked_bytes: usize,

    // Options.
    peer_mss: u16,
    our_mss: u16,
    pmtu_mss: u16,
    ws_ok: bool,
    ts_ok: bool,
    sack_ok: bool,
    ts_recent: u32,
    ts_recent_at: Instant,
    ts_offset: u32,
    /// TSval of our latest retransmission. An echo older than this may be
    /// the peer's stale TS.Recent (an ACK answering an old duplicate echoes
    /// it), so it gives no RTT sample: Karn's rule applied to timestamps.
    /// None until the first retransmission: the TS clock starts at a random
    /// offset, so no fixed value can stand for "older than everything".
    ts_rtx_floor: Option<u32>,

    // Timers.
    rtt: RttEstimator,
    rtt_timed: Option<(SeqNumber, Instant)>,
    /// The sample the last ACK gave, for the congestion controller.
    last_sample: Option<Duration>,
    rto_at: Option<Instant>,
    delack_at: Option<Instant>,
    persist_at: Option<Instant>,
    persist_backoff: u32,
    probes_unanswered: u32,
    probe_due: bool,
    keepalive_at: Option<Instant>,
    keepalive: Option<Keepalive>,
    ka_probes: u32,
    ka_due: bool,
    timewait_at: Option<Instant>,
    finwait2_at: Option<Instant>,
    connect_deadline: Option<Instant>,
    sws_at: Option<Instant>,
    sws_override: bool,
    /// Consecutive timeouts of the same data (R2, RFC 9293 §3.8.3).
    retries: u32,
    /// R2 for data on this connection; `None` retries for ever (MUST-21).
    r2: Option<u32>,
    /// Retransmissions reached R1: the table passes "negative advice" for
    /// the peer's next hop to IP (MUST-20) and takes the flag down.
    pub negative_advice: bool,
    syn_retransmits: u32,
    last_rx: Instant,
    last_tx: Instant,

    // What transmit owes.
    ack_now: bool,
    /// An ACK that must not wait for the end of the batch: the duplicate
    /// ACK for an out-of-order segment, or the ACK of a filled gap. Each
    /// duplicate ACK is the sender's loss signal (RFC 5681 §4.2), so these
    /// are not aggregated.
    ack_immediate: bool,
    need_syn: bool,

    // Loss recovery.
    dupacks: u32,
    recover: SeqNumber,
    recovery: Option<Recovery>,
    /// RFC 6582's inflated window during NewReno recovery.
    recovery_cwnd: usize,
    first_partial: bool,
    rtx_head: bool,
    high_rxt: SeqNumber,
    rescue_rxt: Option<SeqNumber>,
    scoreboard: Scoreboard,
    cc: Box<dyn CongestionControl + Send>,
    cc_alg: CcAlgorithm,
    /// Per-segment send state for delivery-rate samples, rounds, losses.
    rate: RateSampler,
    /// Bytes deemed lost since the last ACK sample was handed over.
    lost_unreported: usize,
    /// RACK found a retransmission lost again: NextSeg() looks for it.
    rack_resend: bool,
    /// The earliest time the next paced segment may leave.
    pace_next: Option<Instant>,
    /// Pacing held a segment back until then.
    pace_at: Option<Instant>,
    /// Pace a controller that sets no rate at 2x / 1.2x cwnd/SRTT.
    pace_all: bool,
    /// Eifel detection (RFC 3522): a loss response awaits the ACK of its
    /// first retransmission, whose TSval is kept here.
    undo_tsval: Option<u32>,
    undo_armed: bool,

    /// Last ACK sent for an out-of-window pure ACK.
    oow_ack_at: Instant,
    /// RCV.NXT when text into a closed window was last refused, and how
    /// far that text reached (SEQ space, FIN included).
    refused_probe: (SeqNumber, usize),
    // Challenge ACK limiter (RFC 5961 §7), per connection.
    challenge_window: Instant,
    challenge_count: u32,

    pub nodelay: bool,
    /// The IPv4 TOS byte every segment of this connection carries: the
    /// application's DSCP shifted into the top six bits (RFC 2474), ECN 0.
    pub tos: u8,
    pub error: Option<TcpError>,
    pub soft_error: Option<TcpError>,
    /// SHLD-20: whether `soft_error` is shown to the application.
    pub soft_reports: bool,
    pub stats: ConnStats,
}

/// The shift that lets `buf` bytes be advertised in 16 bits (RFC 7323 §2.3).
pub fn wscale_for(buf: usize) -> u8 {
    let mut s = 0u8;
    while s < 14 && (buf >> s) > 65535 {
        s += 1;
    }
    s
}

fn clamp_buf(n: usize) -> usize {
    n.clamp(1, MAX_BUFFER)
}

impl Tcb {
    /// A fresh block in `state` (SYN-SENT or SYN-RECEIVED).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        cfg: &TcpConfig,
        state: State,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        ts_offset: u32,
    ) -> Tcb {
        let our_mss = cfg.mss.max(MIN_MSS);
        let rx_cap = clamp_buf(cfg.rx_buffer);
        Tcb {
            state,
            local,
            remote,
            listener: None,
            passive: false,
            orphaned: false,
            in_accept_queue: false,
            counted_half_open: false,
            counted_estab: false,
            counted_tw: false,
            in_ready: false,
            heap_at: None,
            rst_pending: false,
            kick: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_wscale: 0,
            tx: RingBuf::new(clamp_buf(cfg.tx_buffer)),
            tx_base: iss + 1,
            fin_queued: false,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rx: RingBuf::new(rx_cap),
            ooo: Assembler::new(cfg.ooo_max_bytes.min(rx_cap)),
            ooo_fin: None,
            rcv_up: None,
            snd_up: None,
            rcv_wscale: if cfg.window_scale {
                wscale_for(rx_cap)
            } else {
                0
            },
            rcv_adv: SeqNumber(0),
            last_ack_sent: SeqNumber(0),
            fin_received: false,
            rcv_mss: usize::from(DEFAULT_MSS),
            unacked_bytes: 0,
            peer_mss: DEFAULT_MSS,
            our_mss,
            pmtu_mss: u16::MAX,
            ws_ok: false,
            ts_ok: false,
            sack_ok: false,
            ts_recent: 0,
            ts_recent_at: now,
            ts_offset,
            ts_rtx_floor: None,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_timed: None,
            last_sample: None,
            rto_at: None,
            delack_at: None,
            persist_at: None,
            persist_backoff: 0,
            probes_unanswered: 0,
            probe_due: false,
            keepalive_at: None,
            keepalive: cfg.keepalive,
            ka_probes: 0,
            ka_due: false,
            timewait_at: None,
            finwait2_at: None,
            connect_deadline: cfg.connect_timeout.map(|d| now + d),
            sws_at: None,
            sws_override: false,
            retries: 0,
            r2: Some(cfg.data_retries),
            negative_advice: false,
            syn_retransmits: 0,
            last_rx: now,
            last_tx: now,
            ack_now: false,
            ack_immediate: false,
            need_syn: true,
            dupacks: 0,
            recover: iss,
            recovery: None,
            recovery_cwnd: 0,
            first_partial: false,
            rtx_head: false,
            high_rxt: iss,
            rescue_rxt: None,
            scoreboard: Scoreboard::default(),
            cc: cc::new(cfg.cc, usize::from(DEFAULT_MSS), usize::from(DEFAULT_MSS)),
            cc_alg: cfg.cc,
            rate: RateSampler::default(),
            lost_unreported: 0,
            rack_resend: false,
            pace_next: None,
            pace_at: None,
            pace_all: cfg.pace_all,
            undo_tsval: None,
            undo_armed: false,
            oow_ack_at: Instant::from_micros(i64::MIN / 2),
            refused_probe: (SeqNumber(0), 0),
            challenge_window: now,
            challenge_count: 0,
            nodelay: !cfg.nagle,
            tos: 0,
            error: None,
            soft_error: None,
            soft_reports: true,
            stats: ConnStats::default(),
        }
    }

    // ----- small accessors -------------------------------------------------

    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv_nxt
    }

    /// The highest sequence number sent (RFC 9293's SND.NXT).
    pub fn highest_sent(&self) -> SeqNumber {
        self.snd_max
    }

    pub fn ts_recent(&self) -> Option<u32> {
        self.ts_ok.then_some(self.ts_recent)
    }

    /// Sequence number just past everything queued (data, then FIN).
    fn end_all(&self) -> SeqNumber {
        self.tx_base + self.tx.len() + usize::from(self.fin_queued)
    }

    fn data_end(&self) -> SeqNumber {
        self.tx_base + self.tx.len()
    }

    fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una > self.data_end()
    }

    fn flight(&self) -> usize {
        self.snd_max - self.snd_una
    }

    /// The largest payload a segment with only the fixed options may carry:
    /// MUST-16, Eff.snd.MSS = min(SendMSS+20, MMS_S) - TCPhdrsize - IPoptionsize.
    fn mss_limit(&self) -> usize {
        usize::from(self.peer_mss.min(self.our_mss).min(self.pmtu_mss)).max(usize::from(MIN_MSS))
    }

    pub fn smss(&self) -> usize {
        let opts = header_len_for(false, false, false, self.ts_ok, 0) - 20;
        self.mss_limit() - opts
    }

    fn ts_now(&self, now: Instant) -> u32 {
        // RFC 7323 §5.4: a clock of 1 ms ticks; the per-connection-id offset
        // keeps TSval rising across incarnations of one 4-tuple (RFC 6191).
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    pub fn readable(&self) -> usize {
        self.rx.len()
    }

    pub fn tx_free(&self) -> usize {
        if self.tx.capacity() == 0 {
            0
        } else {
            self.tx.free()
        }
    }

    pub fn fin_received(&self) -> bool {
        self.fin_received
    }

    pub fn fin_queued(&self) -> bool {
        self.fin_queued
    }

    // ----- the app side ---------------------------------------------------

    pub fn app_send_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        self.tx.write_with(f)
    }

    /// After the app read: should a window update go out (receiver SWS
    /// avoidance, RFC 9293 §3.8.6.2.2)?
    pub fn after_read(&mut self) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        let cur = self.rcv_adv - self.rcv_nxt;
        let right = self.rcv_nxt + self.rx.free().min(MAX_BUFFER);
        let grow = right - self.rcv_adv;
        // Like Linux's tcp_cleanup_rbuf: announce when the window would at
        // least double, and only by a step SWS avoidance allows.
        if grow >= self.sws_threshold() && self.rx.free() >= 2 * cur {
            self.ack_now = true;
        }
    }

    pub fn app_recv(&mut self, buf: &mut [u8]) -> usize {
        let n = self.rx.read(buf);
        if n > 0 {
            self.after_read();
        }
        n
    }

    pub fn app_recv_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> usize {
        let s = self.rx.slice_at(0, usize::MAX);
        let n = f(s).min(s.len());
        self.rx.consume(n);
        if n > 0 {
            self.after_read();
        }
        n
    }

    /// SHUTDOWN(write) / the graceful half of CLOSE. Returns false when the
    /// connection should simply be deleted (SYN-SENT, RFC 9293 §3.10.4).
    pub fn app_close_write(&mut self, now: Instant, cfg: &TcpConfig) -> bool {
        match self.state {
            State::SynSent | State::Closed | State::Listen => return false,
            State::SynReceived => {
                // "If no SENDs have been issued and there is no pending data
                // to send, then form a FIN segment and send it, and enter
                // FIN-WAIT-1 state; otherwise, queue for processing after
                // entering ESTABLISHED state." We queue it either way and
                // move on when the handshake completes.
                self.fin_queued = true;
            }
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
        if self.orphaned && self.state == State::FinWait2 {
            self.finwait2_at = Some(now + cfg.fin_wait2_timeout);
        }
        true
    }

    /// Unread data at CLOSE: SHLD-3, "If such lost data ... reset".
    pub fn has_unread(&self) -> bool {
        !self.rx.is_empty()
    }

    pub fn set_keepalive(&mut self, now: Instant, ka: Option<Keepalive>) {
        self.keepalive = ka;
        self.ka_probes = 0;
        self.keepalive_at = None;
        self.arm_keepalive(now);
    }

    /// Switches the congestion controller. Before the handshake completes
    /// this only picks the algorithm; afterwards the new controller starts
    /// from the current window, as if that were its initial window.
    pub fn set_congestion_control(&mut self, alg: CcAlgorithm) {
        self.cc_alg = alg;
        if self.state.is_synchronized() {
            let cwnd = self.cc.window();
            self.cc = cc::new(alg, self.smss(), cwnd);
            self.pace_next = None;
        }
    }

    pub fn set_buffers(&mut self, rx: Option<usize>, tx: Option<usize>) -> bool {
        let mut ok = true;
        if let Some(rx) = rx {
            // Only before the window is announced: the scale is fixed by then.
            ok &= self.state == State::SynSent
                && self.need_syn
                && self.syn_retransmits == 0
                && self.rx.set_capacity(clamp_buf(rx));
            if ok {
                self.rcv_wscale = if self.rcv_wscale > 0 || rx > 65535 {
                    wscale_for(clamp_buf(rx))
                } else {
                    0
                };
            }
        }
        if let Some(tx) = tx {
            ok &= self.tx.set_capacity(clamp_buf(tx));
        }
        ok
    }

    pub fn conn_stats(&self) -> ConnStats {
        let mut s = self.stats.clone();
        s.srtt = self.rtt.srtt();
        s.rttvar = self.rtt.rttvar();
        s.rto = self.rtt.rto();
        s.cwnd = self.cc.window();
        s.ssthresh = self.cc.ssthresh();
        s.snd_wnd = self.snd_wnd;
        s.rcv_wnd = self.rcv_adv - self.rcv_nxt;
        s.snd_mss = self.smss();
        s.cc_name = self.cc.name();
        let info = self.cc.info();
        s.cc_state = info.state;
        s.bw_estimate = info.bw_estimate;
        s.pacing_rate = self.pacing_rate();
        s.min_rtt = info.min_rtt.or(self.rate.min_rtt());
        s.bytes_lost = self.rate.total_lost();
        s
    }

    /// The rate this connection is paced at: the controller's, or with
    /// `pace_all` Linux's default for unpaced controllers (tcp_update_pacing_rate):
    /// cwnd/SRTT times 2 in slow start below half of ssthresh, else 1.2.
    fn pacing_rate(&self) -> Option<u64> {
        if let Some(r) = self.cc.pacing_rate() {
            return Some(r.max(1));
        }
        if !self.pace_all {
            return None;
        }
        let srtt = self.rtt.srtt()?.total_micros().max(1);
        let cwnd = self.cc.window() as u64;
        let pct = if self.cc.window() < self.cc.ssthresh() / 2 {
            200
        } else {
            120
        };
        Some((cwnd * 1_000_000 / srtt * pct / 100).max(1))
    }

    // ----- connection setup ------------------------------------------------

    /// Takes the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2-3,
    /// RFC 2018 §2).
    fn take_syn_options(&mut self, now: Instant, cfg: &TcpConfig, seg: &Repr<'_>) {
        // MUST-15: no option means 536. A tiny or zero MSS is floored.
        self.peer_mss = seg.max_seg_size.unwrap_or(DEFAULT_MSS).max(MIN_MSS);
        // RFC 7323 §2.2: scaling only "if both sides sent" the option.
        match (cfg.window_scale, seg.window_scale) {
            (true, Some(shift)) => {
                self.ws_ok = true;
                self.snd_wscale = shift.min(14);
            }
            _ => {
                self.ws_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.ts_ok = cfg.timestamps && seg.timestamp.is_some();
        if let Some((tsval, _)) = seg.timestamp {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }
        self.sack_ok = cfg.sack && seg.sack_permitted;
    }

    /// For a passive open: the peer's SYN arrived at a listener.
    pub fn accept_syn(&mut self, now: Instant, cfg: &TcpConfig, seg: &Repr<'_>) {
        self.passive = true;
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        self.take_syn_options(now, cfg, seg);
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        self.snd_wnd = usize::from(seg.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = self.iss;
        self.rcv_adv = self.rcv_nxt + self.syn_window();
        self.need_syn = true;
    }

    /// For a SYN cookie: the block is built straight into ESTABLISHED from
    /// the returning ACK (RFC 4987 §3.6).
    pub fn init_from_cookie(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        p: CookieParams,
    ) {
        self.passive = true;
        self.irs = seg.seq_number - 1;
        self.rcv_nxt = seg.seq_number;
        self.peer_mss = p.mss.max(MIN_MSS);
        self.ws_ok = p.wscale.is_some() && cfg.window_scale;
        self.snd_wscale = p.wscale.unwrap_or(0).min(14);
        if !self.ws_ok {
            self.rcv_wscale = 0;
            self.snd_wscale = 0;
        }
        self.ts_ok = p.ts && cfg.timestamps;
        self.sack_ok = p.sack && cfg.sack;
        if let Some((tsval, _)) = seg.timestamp {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }
        self.snd_una = self.iss + 1;
        self.snd_nxt = self.snd_una;
        self.snd_max = self.snd_una;
        self.snd_wnd = usize::from(seg.window_len) << self.snd_wscale;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = self.snd_una;
        self.rcv_adv = self.rcv_nxt + self.syn_window();
        self.last_ack_sent = self.rcv_nxt;
        self.need_syn = false;
        self.establish(now, cfg);
    }

    /// The window put in our SYN or SYN-ACK, unscaled and never past 65535.
    fn syn_window(&self) -> usize {
        self.rx.free().min(65535)
    }

    /// Everything that happens on entering ESTABLISHED.
    fn establish(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = State::Established;
        let smss = self.smss();
        // RFC 6928: "IW = min (10*MSS, max (2*MSS, 14600))"; after more than
        // one lost SYN or SYN-ACK, one segment (RFC 5681 §3.1, relaxed).
        let segs = cfg.initial_window_segments.max(1) as usize;
        let iw = if self.syn_retransmits > 1 {
            smss
        } else {
            (segs * smss).min((2 * smss).max(14600)).max(smss)
        };
        self.cc = cc::new(self.cc_alg, smss, iw);
        if self.syn_retransmits > 0 {
            self.rtt.after_syn_timeout();
        }
        self.rto_at = None;
        self.retries = 0;
        self.connect_deadline = None;
        self.last_tx = now;
        self.arm_keepalive(now);
        if self.fin_queued {
            self.state = State::FinWait1;
        }
    }

    // ----- emission helpers ------------------------------------------------

    /// The Window field to send now, moving RCV.ADV right only by steps SWS
    /// avoidance allows (RFC 9293 §3.8.6.2.2, MUST-39) and never left
    /// (SHLD-14).
    fn window_field(&mut self) -> u16 {
        if self.rcv_adv < self.rcv_nxt {
            self.rcv_adv = self.rcv_nxt;
        }
        let max_wnd = 65535usize << self.rcv_wscale;
        let right = self.rcv_nxt + self.rx.free().min(max_wnd);
        let grow = right - self.rcv_adv;
        if grow > 0 && grow >= self.sws_threshold() {
            self.rcv_adv = right;
        }
        let wnd = (self.rcv_adv - self.rcv_nxt).min(max_wnd);
        (wnd >> self.rcv_wscale).min(65535) as u16
    }

    /// RFC 9293 §3.8.6.2.2: "min(Fr * RCV.BUFF, Eff.snd.MSS)" with Fr = 1/2.
    fn sws_threshold(&self) -> usize {
        (self.rx.capacity() / 2).min(self.rcv_mss.max(1))
    }

    fn timestamp_opt(&self, now: Instant) -> Option<(u32, u32)> {
        self.ts_ok.then(|| (self.ts_now(now), self.ts_recent))
    }

    /// Every segment sent asks, and almost always nothing is held: that
    /// case stays inlined and never reaches the assembler's trees.
    #[inline]
    fn sack_blocks(&self) -> [Option<(SeqNumber, SeqNumber)>; MAX_SACK_BLOCKS] {
        if self.sack_ok && self.state.is_synchronized() && !self.ooo.is_empty() {
            self.ooo.sack_blocks()
        } else {
            [None; MAX_SACK_BLOCKS]
        }
    }

    fn base_repr(&self) -> Repr<'static> {
        Repr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            ..Repr::default()
        }
    }

    /// Emits a segment without payload from this connection.
    fn emit_ctl(
        &mut self,
        emit: &mut dyn SegmentOut,
        repr: &Repr<'_>,
        stats: &mut TcpStats,
    ) -> bool {
        let ok = emit.segment(*self.local.ip(), *self.remote.ip(), self.tos, repr);
        if ok {
            stats.out_segs += 1;
            self.stats.segs_out += 1;
            if repr.rst {
                stats.out_rsts += 1;
            }
        }
        ok
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` with the current window,
    /// timestamps and SACK blocks: the ACK of §3.10.7.4.
    pub fn send_ack(
        &mut self,
        now: Instant,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) -> bool {
        let seq = if self.state == State::SynReceived {
            self.iss + 1
        } else {
            // Like Linux's tcp_acceptable_seq(): the highest sequence sent
            // (RFC 9293's SND.NXT; ours is rewound by a timeout, and an ACK
            // below what the peer already has would be unacceptable there,
            // its ACK field lost) unless that lies past the peer's window (a
            // zero-window probe byte is out).
            let edge = self.snd_una + self.snd_wnd;
            if self.snd_max <= edge {
                self.snd_max
            } else {
                edge.max(self.snd_una)
            }
        };
        self.send_ack_at(now, seq, emit, stats)
    }

    fn send_ack_at(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) -> bool {
        let window_len = self.window_field();
        let repr = Repr {
            seq_number: seq,
            ack_number: Some(self.rcv_nxt),
            window_len,
            urgent_at: self.urgent_for(seq),
            timestamp: self.timestamp_opt(now),
            sack_ranges: self.sack_blocks(),
            ..self.base_repr()
        };
        let ok = self.emit_ctl(emit, &repr, stats);
        if ok {
            self.acked_now();
        }
        ok
    }

    fn acked_now(&mut self) {
        self.ack_now = false;
        self.delack_at = None;
        self.unacked_bytes = 0;
        self.last_ack_sent = self.rcv_nxt;
    }

    pub fn send_rst(&mut self, emit: &mut dyn SegmentOut, stats: &mut TcpStats) -> bool {
        let repr = Repr {
            seq_number: self.snd_max,
            rst: true,
            // Linux puts ACK on an abort's RST; harmless and helps stateless
            // middleboxes. RFC 9293 §3.10.4 ABORT: "<SEQ=SND.NXT><CTL=RST>".
            ack_number: Some(self.rcv_nxt),
            ..self.base_repr()
        };
        self.emit_ctl(emit, &repr, stats)
    }

    /// RFC 5961 §3.2/§4.2/§5.2 challenge ACK, throttled per connection
    /// (§7).
    fn challenge_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) {
        if now.saturating_since(self.challenge_window) >= Duration::from_secs(1) {
            self.challenge_window = now;
            self.challenge_count = 0;
        }
        if self.challenge_count >= cfg.challenge_ack_limit {
            stats.challenge_acks_suppressed += 1;
            return;
        }
        self.challenge_count += 1;
        stats.challenge_acks += 1;
        self.send_ack(now, emit, stats);
    }

    /// §3.10.7.4: "If an incoming segment is not acceptable, an
    /// acknowledgment should be sent in reply ... <SEQ=SND.NXT><ACK=RCV.NXT>
    /// <CTL=ACK>" (RFC 7323 §5.3 R1 answers a PAWS reject the same way).
    /// The caller has dropped an RST already. How often the answer goes
    /// depends on what could turn it into a storm.
    fn answer_unacceptable(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) {
        if seg.syn {
            // RFC 5961 §4.2: a SYN gets its challenge ACK "irrespective of
            // the sequence number", through the same §7 throttle whether or
            // not it is in the window: a SYN flood must not bypass it.
            self.challenge_ack(now, cfg, emit, stats);
        } else if seg.payload.is_empty() && !seg.fin {
            // Two ends that disagree would answer each other's pure ACKs
            // forever; like Linux (tcp_oow_rate_limited) answer an
            // out-of-window segment without data at most every 500 ms.
            if now.saturating_since(self.oow_ack_at) >= OOW_ACK_INTERVAL {
                self.oow_ack_at = now;
                self.send_ack(now, emit, stats);
            }
        } else {
            // The answer to data carries none, so it cannot feed a loop;
            // each probe or retransmission, arriving on its own, gets one.
            // Like every ACK of data it waits for the end of the batch:
            // "if the TCP endpoint is processing a series of queued
            // segments, it MUST process them all before sending any ACK
            // segments (MUST-59)", so a burst or a flood of them costs one
            // ACK per poll, not one per segment.
            self.owe_ack(now, emit, stats);
        }
    }

    /// An ACK due at the end of the batch; SYN-RECEIVED's `transmit` sends
    /// only the SYN-ACK, so there it goes at once.
    fn owe_ack(&mut self, now: Instant, emit: &mut dyn SegmentOut, stats: &mut TcpStats) {
        if self.state == State::SynReceived {
            self.send_ack(now, emit, stats);
        } else {
            self.ack_now = true;
        }
    }

    fn syn_repr(&mut self, now: Instant, cfg: &TcpConfig) -> Repr<'static> {
        let synack = self.state == State::SynReceived;
        let (ws, sack, ts) = if synack {
            // Answer only what the peer offered.
            (
                self.ws_ok.then_some(self.rcv_wscale),
                self.sack_ok,
                self.ts_ok.then(|| (self.ts_now(now), self.ts_recent)),
            )
        } else {
            (
                cfg.window_scale.then_some(self.rcv_wscale),
                cfg.sack,
                cfg.timestamps.then(|| (self.ts_now(now), 0)),
            )
        };
        Repr {
            seq_number: self.iss,
            ack_number: synack.then_some(self.rcv_nxt),
            syn: true,
            window_len: self.syn_window() as u16,
            // SHLD-5 / MAY-3: always send MSS on a SYN.
            max_seg_size: Some(self.our_mss),
            window_scale: ws,
            sack_permitted: sack,
            timestamp: ts,
            ..self.base_repr()
        }
    }

    // ----- segment arrival (RFC 9293 §3.10.7) -------------------------------

    /// SEGMENT ARRIVES for a connection in any state but LISTEN and CLOSED.
    #[inline]
    /// `staged`: the payload already lies, uncommitted, where an in-order
    /// segment's goes in the receive ring ([`Tcb::stage_in_order`]).
    pub fn on_segment(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        staged: bool,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) {
        self.stats.segs_in += 1;
        if cfg.header_prediction && self.predicted(now, cfg, seg, staged, stats) {
            return;
        }
        self.on_segment_general(now, cfg, seg, emit, stats);
    }

    /// §3.10.7's processing, step by step. Kept out of line so a predicted
    /// segment does not pay for this function's frame.
    #[inline(never)]
    fn on_segment_general(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) {
        if self.state == State::SynSent {
            self.syn_sent_arrival(now, cfg, seg, emit, stats);
            return;
        }
        if self.state == State::Closed {
            return;
        }
        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost; answer
        // it again now rather than waiting for our timer (as Linux does).
        if self.state == State::SynReceived
            && seg.syn
            && !seg.rst
            && seg.ack_number.is_none()
            && seg.seq_number == self.irs
        {
            self.need_syn = true;
            return;
        }

        // Simultaneous open (RFC 9293 Figure 8, line 6-7): the peer's SYN,ACK
        // repeats the SYN we already took. Its SYN is old; its ACK is what
        // completes the handshake, so take it as an ACK at IRS+1.
        let stripped;
        let seg = if self.state == State::SynReceived
            && seg.syn
            && !seg.rst
            && seg.ack_number.is_some()
            && seg.seq_number == self.irs
        {
            stripped = Repr {
                syn: false,
                seq_number: self.irs + 1,
                ..*seg
            };
            &stripped
        } else {
            seg
        };
        let seg_len = seg.segment_len();

        // RFC 7323 §3.2: "If a non-<RST> segment is received without a TSopt,
        // a TCP SHOULD silently drop the segment." Never on the SYN-RECEIVED
        // ACK of a cookie-less handshake? No: both sides agreed already.
        if self.ts_ok && !seg.rst && seg.timestamp.is_none() {
            stats.drop(|s| &mut s.drop_no_timestamp);
            return;
        }
        // RFC 7323 §5.3 R1 (PAWS): "If there is a Timestamps option in the
        // arriving segment, SEG.TSval < TS.Recent, TS.Recent is valid ...,
        // and the RST bit is not set, then treat the arriving segment as not
        // acceptable: Send an acknowledgment in reply ... and drop".
        if let (true, Some((tsval, _)), false) = (self.ts_ok, seg.timestamp, seg.rst) {
            if (tsval.wrapping_sub(self.ts_recent) as i32) < 0 {
                if now.saturating_since(self.ts_recent_at) > PAWS_IDLE {
                    // §5.5: TS.Recent is too old to be trusted; take the new.
                    self.ts_recent = tsval;
                    self.ts_recent_at = now;
                } else {
                    stats.paws_drops += 1;
                    stats.drop(|s| &mut s.drop_out_of_window);
                    self.answer_unacceptable(now, cfg, seg, emit, stats);
                    return;
                }
            }
        }

        // TIME-WAIT: "The only thing that can arrive in this state is a
        // retransmission of the remote FIN. Acknowledge it, and restart the
        // 2 MSL timeout."
        if self.state == State::TimeWait
            && seg.fin
            && !seg.rst
            && !seg.syn
            && seg.seq_number + seg.payload.len() + 1 == self.rcv_nxt
        {
            self.timewait_at = Some(now + cfg.time_wait);
            self.send_ack(now, emit, stats);
            return;
        }

        // First: the sequence number (§3.10.7.4, Table 6). RCV.WND is the
        // buffer's room while the window offered is open, and zero once the
        // peer has used it up: RCV.ADV only moves right (SHLD-14) and never
        // below an edge an ACK showed (RFC 7323 §2.4: "The receiver MUST
        // honor, as in window, any segment that would have been in window
        // for any <ACK> sent by the receiver"), so nothing in flight is
        // refused, while a probe into a window left closed by receiver SWS
        // avoidance (room below one MSS, not yet offered) is: its octet is
        // taken when it comes again after the window opens.
        let wnd = if self.rcv_adv > self.rcv_nxt {
            self.rx.free().min(MAX_BUFFER)
        } else {
            0
        };
        let mut acceptable = segment_acceptable(seg.seq_number, seg_len, self.rcv_nxt, wnd);
        // A segment covering the whole window from before RCV.NXT to past the
        // right edge carries acceptable data too (Linux's tcp_sequence()).
        if !acceptable
            && seg_len > 0
            && wnd > 0
            && seg.seq_number < self.rcv_nxt
            && seg.seq_number + seg_len > self.rcv_nxt + wnd
        {
            acceptable = true;
        }
        // "If the RCV.WND is zero, no segments will be acceptable, but
        // special allowance should be made to accept valid ACKs, URGs, and
        // RSTs" (and MUST-66): a segment at RCV.NXT is taken for those, and
        // its text is refused after the URG step.
        let mut zero_window_ctl = false;
        if !acceptable && wnd == 0 && seg.seq_number == self.rcv_nxt {
            acceptable = true;
            zero_window_ctl = true;
        }
        // The same allowance for the ACKs of a sender that counts the probe
        // we refused in SND.NXT (RFC 9293's variables do, so does lwIP):
        // they come with SEQ past RCV.NXT, up to the probe's end, and
        // without this its ACKs of our data and its window updates would be
        // lost for as long as our window stays closed.
        let (at, len) = self.refused_probe;
        if !acceptable
            && wnd == 0
            && seg_len == 0
            && !seg.rst
            && at == self.rcv_nxt
            && seg.seq_number > at
            && seg.seq_number - at <= len
        {
            acceptable = true;
            zero_window_ctl = true;
        }
        if !acceptable {
            // "If an incoming segment is not acceptable, an acknowledgment
            // should be sent in reply (unless the RST bit is set, if so drop
            // the segment and return)".
            stats.drop(|s| &mut s.drop_out_of_window);
            if !seg.rst {
                // Still an answer from a live peer: keep probing alive.
                self.last_rx = now;
                self.answer_unacceptable(now, cfg, seg, emit, stats);
            }
            return;
        }
        self.last_rx = now;
        self.ka_probes = 0;

        // Second: the RST bit, RFC 5961 §3.2: "If the RST bit is set and the
        // sequence number exactly matches the next expected sequence number
        // (RCV.NXT), then TCP MUST reset the connection ... Otherwise ... TCP
        // MUST send an ACK (challenge ACK)".
        if seg.rst {
            stats.in_rsts += 1;
            if seg.seq_number != self.rcv_nxt {
                stats.drop(|s| &mut s.drop_bad_rst);
                self.challenge_ack(now, cfg, emit, stats);
                return;
            }
            self.reset_by_peer(stats);
            return;
        }

        // RFC 7323 §4.3 (R3): "If an arriving segment satisfies SEG.SEQ =<
        // Last.ACK.sent ..., then record its timestamp in TS.Recent."
        if let (true, Some((tsval, _))) = (self.ts_ok, seg.timestamp) {
            if seg.seq_number <= self.last_ack_sent
                && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0
            {
                self.ts_recent = tsval;
                self.ts_recent_at = now;
            }
        }

        // Fourth: the SYN bit (RFC 5961 §4.2 as adopted by RFC 9293).
        if seg.syn {
            if self.state == State::SynReceived && self.passive {
                // "return this connection to the LISTEN state": the table
                // deletes the block; the listener is still there.
                self.state = State::Closed;
                return;
            }
            stats.drop(|s| &mut s.drop_bad_syn);
            self.challenge_ack(now, cfg, emit, stats);
            return;
        }

        // Fifth: the ACK field.
        let Some(ack) = seg.ack_number else {
            // "if the ACK bit is off, drop the segment and return".
            stats.drop(|s| &mut s.drop_no_ack);
            return;
        };
        if self.state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state
            // ... If the segment acknowledgment is not acceptable, form a
            // reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
            if self.snd_una < ack && ack <= self.snd_max {
                self.snd_una = ack;
                self.snd_wnd = usize::from(seg.window_len) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq_number;
                self.snd_wl2 = ack;
                self.rtt_sample_syn(now, seg);
                self.establish(now, cfg);
            } else {
                stats.drop(|s| &mut s.drop_bad_ack);
                let repr = Repr {
                    seq_number: ack,
                    rst: true,
                    ..self.base_repr()
                };
                self.emit_ctl(emit, &repr, stats);
                return;
            }
        }
        // RFC 5961 §5.2 (MAY-12): "the ACK value is considered acceptable
        // only if it is in the range of ((SND.UNA - MAX.SND.WND) =< SEG.ACK
        // =< SND.NXT). All incoming segments whose ACK value doesn't satisfy
        // the above condition MUST be discarded and an ACK sent back."
        let oldest = self.snd_una - self.max_snd_wnd.max(1);
        if ack > self.snd_max || ack < oldest {
            stats.drop(|s| &mut s.drop_bad_ack);
            self.challenge_ack(now, cfg, emit, stats);
            return;
        }
        self.process_ack(now, cfg, seg, ack, stats);
        if self.state == State::Closed {
            return;
        }

        // Sixth: the URG bit, before the zero-window return: MUST-66, "A TCP
        // receiver MUST process the RST and URG fields of all incoming
        // segments, even when the receive window is zero."
        if let Some(ptr) = seg.urgent_at {
            if matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            ) {
                self.take_urgent(seg.seq_number, ptr, stats);
            }
        }

        // Seventh: the segment text, in ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2.
        if zero_window_ctl && !seg.payload.is_empty() {
            // The zero-window probe of §3.8.6.1 ("one octet of new data"),
            // or any text into a closed window: not acceptable, so refused
            // (a FIN behind it too) and answered with the current window;
            // RFC 1122 4.2.2.17's probing only works if it is answered.
            stats.drop(|s| &mut s.drop_out_of_window);
            self.refused_probe = (self.rcv_nxt, seg.payload.len() + usize::from(seg.fin));
            self.owe_ack(now, emit, stats);
            return;
        }
        // A bare FIN at RCV.NXT is taken even into a closed window: it needs
        // no room, and refusing it would hold the peer's close back by a
        // backed-off retransmission timeout (Linux takes it too).
        if matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            self.receive_text(now, cfg, seg, stats);
            if self.ack_immediate {
                self.ack_immediate = false;
                self.send_ack(now, emit, stats);
            }
        } else if (!seg.payload.is_empty() || seg.fin) && seg.seq_number + seg_len > self.rcv_nxt {
            // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not
            // occur since a FIN has been received from the remote side.
            // Ignore the segment text." Re-ACK so the peer stops resending.
            self.ack_now = true;
        }
    }

    /// Header prediction (Van Jacobson's, as in BSD's `tcp_input`): most
    /// segments of a bulk transfer are either the next in-order data
    /// segment acknowledging nothing new, or a pure ACK of new data on a
    /// connection not in recovery. Recognising them takes a few compares;
    /// taking them skips the steps of §3.10.7.4 whose outcome those
    /// compares already fix. Whatever is taken here must leave the block,
    /// the counters and the controller exactly as the general path would
    /// (`tests/tcp_fastpath.rs` compares both, frame by frame); anything
    /// that would need more than the checks below goes the general way.
    /// Returns whether the segment was handled.
    #[inline]
    fn predicted(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        staged: bool,
        stats: &mut TcpStats,
    ) -> bool {
        // §3.10.7.4: "In the following it is assumed that the segment is
        // the idealized segment that begins at RCV.NXT and does not exceed
        // the window." A segment that already is one needs no trimming, and
        // without SYN, RST, URG or FIN it skips those steps. An ACK-less
        // segment is dropped by the general path. A FIN held out of order,
        // or an ACK owed at once, is state the text step would act on.
        if self.state != State::Established
            || seg.syn
            || seg.fin
            || seg.rst
            || seg.urgent_at.is_some()
            || seg.seq_number != self.rcv_nxt
            || self.ooo_fin.is_some()
            || self.ack_immediate
        {
            return false;
        }
        let Some(ack) = seg.ack_number else {
            return false;
        };
        // RFC 7323 §5.3 R1 passes (TSval not older than TS.Recent); a
        // segment without TSopt where they were agreed is dropped by the
        // general path, and one failing PAWS is answered there.
        let tsval = match (self.ts_ok, seg.timestamp) {
            (false, _) => None,
            (true, Some((v, _))) if (v.wrapping_sub(self.ts_recent) as i32) >= 0 => Some(v),
            _ => return false,
        };
        // "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be
        // updated": with SEG.WND equal to SND.WND the update can change
        // SND.WL1/WL2 and stop the persist timer, nothing else. A zero
        // window also resets R2 and keeps the persist timer: general path.
        let wnd = usize::from(seg.window_len) << self.snd_wscale;
        if wnd != self.snd_wnd || wnd == 0 {
            return false;
        }
        if self.sack_ok && seg.sack_ranges.iter().any(Option::is_some) {
            return false;
        }
        // RFC 5961 §5.2's ACK range, as the general path tests it.
        let oldest = self.snd_una - self.max_snd_wnd.max(1);
        if ack > self.snd_max || ack < oldest {
            return false;
        }
        let len = seg.payload.len();
        let new_ack = ack > self.snd_una;
        if len > 0 {
            // In-order data within the window offered: Table 6's
            // acceptability holds (RCV.ADV > RCV.NXT, so RCV.WND is the
            // buffer's room, and RCV.ADV never passes RCV.NXT plus that
            // room, so the data fits and nothing is trimmed), and with no
            // out-of-order data queued nothing behind it becomes
            // contiguous. Past RCV.ADV lie probes into a closed window,
            // for the general path to refuse.
            if ack != self.snd_una
                || i64::from(self.rcv_adv.diff(seg.seq_number)) < len as i64
                || !self.ooo.is_empty()
            {
                return false;
            }
            debug_assert!(len <= self.rx.free());
        } else if !new_ack || self.recovery.is_some() || !self.scoreboard.is_empty() {
            // A pure ACK that acknowledges new data outside loss recovery,
            // with no SACKed data to reconsider: no duplicate-ACK counting,
            // no RFC 6675 IsLost, no RACK.
            return false;
        }

        self.last_rx = now;
        self.ka_probes = 0;
        // RFC 7323 §4.3 R3: "If an arriving segment satisfies SEG.SEQ =<
        // Last.ACK.sent ..., then record its timestamp in TS.Recent."
        if let Some(v) = tsval {
            if seg.seq_number <= self.last_ack_sent {
                self.ts_recent = v;
                self.ts_recent_at = now;
            }
        }

        self.kick = true;
        let in_flight_before = self.flight();
        self.probes_unanswered = 0;
        let acked = ack - self.snd_una;
        if acked > 0 {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK.
            // Any segments on the retransmission queue that are thereby
            // entirely acknowledged are removed." The same call as the
            // general path: RTT samples, Eifel undo and timers stay one code.
            self.on_new_ack(now, cfg, seg, ack, stats);
        }
        if self.snd_wl1 < seg.seq_number || (self.snd_wl1 == seg.seq_number && self.snd_wl2 <= ack)
        {
            // SND.WND is unchanged and non-zero (tested above).
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
            self.persist_at = None;
            self.persist_backoff = 0;
            self.probe_due = false;
        }

        if acked > 0 {
            // What process_ack hands the controller for a cumulative ACK
            // with no SACK information; `on_new_ack` left recovery off.
            let d = self.rate.on_ack(now, self.snd_una, &[]);
            self.report_ack(now, d, acked, acked, in_flight_before);
            stats.predicted_acks += 1;
            return true;
        }

        // The text step (receive_text) for in-order data that fits.
        self.rcv_mss = self.rcv_mss.max(len.min(usize::from(u16::MAX)));
        let n = if staged {
            // The same bytes at the same place `write` would put them: the
            // segment starts at RCV.NXT, fits, and nothing is out of order.
            self.rx.advance_len(len);
            len
        } else {
            self.rx.write(seg.payload)
        };
        self.rcv_nxt += n;
        self.stats.bytes_received += n as u64;
        self.delay_ack(now, cfg, n, stats);
        stats.predicted_data += 1;
        true
    }

    /// Copies the payload of a segment that would be in-order data for an
    /// ESTABLISHED connection to where it would go in the receive ring,
    /// without making it readable, and returns its sum from the same pass,
    /// so the checksum is tested before anything acts on the segment and
    /// header prediction only commits the bytes. Those free bytes hold
    /// nothing while no out-of-order data is queued, so staging a segment
    /// that then fails its checksum, or that the general path takes after
    /// all (it writes the same bytes to the same place), loses nothing.
    pub fn stage_in_order(&mut self, seg: &Repr<'_>) -> Option<u16> {
        if self.state != State::Established
            || seg.syn
            || seg.seq_number != self.rcv_nxt
            || !self.ooo.is_empty()
        {
            return None;
        }
        self.rx.stage_summed(seg.payload)
    }

    /// RFC 9293 §3.10.7.4 sixth: "If the URG bit is set, RCV.UP <-
    /// max(RCV.UP,SEG.UP), and signal the user that the remote side has
    /// urgent data if the urgent pointer (RCV.UP) is in advance of the data
    /// consumed." The pointer names "the sequence number of the octet
    /// following the urgent data" (MUST-62), so any length, over any number
    /// of segments, is tracked by the one mark (MUST-31). Urgent bytes stay
    /// in line: RFC 6093 §4 recommends exactly that.
    fn take_urgent(&mut self, seq: SeqNumber, ptr: u16, stats: &mut TcpStats) {
        if ptr == 0 {
            // Points at the segment's own first octet: nothing urgent
            // precedes it (Linux ignores it the same way).
            return;
        }
        let up = seq + usize::from(ptr);
        let consumed = self.read_seq();
        if up <= consumed || self.rcv_up.is_some_and(|cur| up <= cur) {
            return;
        }
        self.rcv_up = Some(up);
        // MUST-32: one notification per new or advanced pointer.
        self.stats.urgent_notifications += 1;
        stats.urgent_notifications += 1;
    }

    /// Sequence number of the next byte the application will read.
    fn read_seq(&self) -> SeqNumber {
        self.rcv_nxt - self.rx.len() - usize::from(self.fin_received)
    }

    /// MUST-33: how many unread bytes precede the urgent mark (the last
    /// urgent octet included), or `None` when no urgent data is unread.
    pub fn urgent_pending(&self) -> Option<usize> {
        let up = self.rcv_up?;
        let read = self.read_seq();
        (up > read).then(|| up - read)
    }

    /// SEND with the URGENT flag (RFC 9293 §3.9.1.2): queues `data` and
    /// moves SND.UP to just past its last byte. Returns the bytes queued;
    /// the mark covers only those.
    pub fn app_send_urgent(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        while n < data.len() {
            let k = self.tx.write_with(|buf| {
                let k = buf.len().min(data.len() - n);
                buf[..k].copy_from_slice(&data[n..n + k]);
                k
            });
            if k == 0 {
                break;
            }
            n += k;
        }
        if n > 0 {
            self.snd_up = Some(self.data_end());
        }
        n
    }

    /// The urgent pointer for a segment starting at `seq`: "If SND.UP >
    /// SEG.SEQ, set URG with SEG.UP = SND.UP - SEG.SEQ" — clamped to the
    /// 16-bit field as RFC 6093 §4 describes for marks further ahead.
    fn urgent_for(&self, seq: SeqNumber) -> Option<u16> {
        let up = self.snd_up?;
        (up > seq).then(|| (up - seq).min(usize::from(u16::MAX)) as u16)
    }

    fn reset_by_peer(&mut self, stats: &mut TcpStats) {
        match self.state {
            State::SynReceived if self.passive => {
                // "If this connection was initiated with a passive OPEN ...,
                // then return this connection to the LISTEN state".
                self.state = State::Closed;
            }
            State::SynReceived => self.abort_with(TcpError::ConnectionRefused, stats),
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                stats.estab_resets += 1;
                self.abort_with(TcpError::ConnectionReset, stats);
            }
            _ => {
                // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state,
                // delete the TCB, and return".
                self.state = State::Closed;
                self.release_buffers(true);
            }
        }
    }

    /// Ends the connection with `err` for the app; what is queued is lost.
    pub fn abort_with(&mut self, err: TcpError, stats: &mut TcpStats) {
        if matches!(self.state, State::SynSent | State::SynReceived) {
            stats.attempt_fails += 1;
        }
        self.state = State::Closed;
        self.error = Some(err);
        self.release_buffers(true);
        self.clear_timers();
    }

    fn clear_timers(&mut self) {
        self.rto_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.timewait_at = None;
        self.finwait2_at = None;
        self.connect_deadline = None;
        self.sws_at = None;
        self.pace_at = None;
        self.ack_now = false;
    }

    fn release_buffers(&mut self, rx_too: bool) {
        self.tx.release();
        self.scoreboard.release();
        self.rate.clear();
        if rx_too {
            self.rx.release();
            self.ooo.release();
        }
    }

    fn syn_sent_arrival(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) {
        // First, the ACK bit: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send
        // a reset (unless the RST bit is set, if so drop the segment and
        // return) <SEQ=SEG.ACK><CTL=RST>".
        if let Some(ack) = seg.ack_number {
            if ack <= self.iss || ack > self.snd_max {
                stats.drop(|s| &mut s.drop_bad_ack);
                if !seg.rst {
                    let repr = Repr {
                        seq_number: ack,
                        rst: true,
                        ..self.base_repr()
                    };
                    self.emit_ctl(emit, &repr, stats);
                }
                return;
            }
        }
        // Second, the RST bit: "If the ACK was acceptable, then signal to
        // the user "error: connection reset", drop the segment, enter CLOSED
        // state ... Otherwise (no ACK), drop the segment and return."
        if seg.rst {
            stats.in_rsts += 1;
            if seg.ack_number.is_some() {
                self.abort_with(TcpError::ConnectionRefused, stats);
            } else {
                stats.drop(|s| &mut s.drop_bad_rst);
            }
            return;
        }
        // Fourth, the SYN bit.
        if !seg.syn {
            stats.drop(|s| &mut s.drop_malformed);
            return;
        }
        self.last_rx = now;
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        self.take_syn_options(now, cfg, seg);
        if let Some(ack) = seg.ack_number {
            self.snd_una = ack;
        }
        if self.snd_una > self.iss {
            // "our SYN has been ACKed ... change the connection state to
            // ESTABLISHED, form an ACK segment ... and send it."
            // The SYN-ACK's window is not scaled (RFC 7323 §2.2).
            self.snd_wnd = usize::from(seg.window_len);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = self.snd_una;
            self.rcv_adv = self.rcv_nxt + self.syn_window();
            self.rtt_sample_syn(now, seg);
            self.establish(now, cfg);
            self.ack_now = true;
            self.need_syn = false;
            // Data or FIN on the SYN-ACK: "continue processing at the sixth
            // step below where the URG bit is checked".
            if !seg.payload.is_empty() || seg.fin {
                let rest = Repr {
                    seq_number: seg.seq_number + 1,
                    syn: false,
                    ..*seg
                };
                self.receive_text(now, cfg, &rest, stats);
            }
        } else {
            // Simultaneous open (MUST-10): "enter SYN-RECEIVED, form a
            // SYN,ACK segment <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it".
            self.state = State::SynReceived;
            self.snd_wnd = usize::from(seg.window_len);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = self.iss;
            self.rcv_adv = self.rcv_nxt + self.syn_window();
            self.need_syn = true;
            // The SYN-ACK is a new transmission of our SYN: the timer runs.
        }
    }

    fn rtt_sample_syn(&mut self, now: Instant, seg: &Repr<'_>) {
        // Karn: only if the SYN (or SYN-ACK) was never retransmitted, unless
        // timestamps tell which copy this ACK answers.
        if self.syn_retransmits == 0 {
            self.rtt.sample(now.saturating_since(self.last_tx));
            self.stats.rtt_samples += 1;
        } else if let (true, Some((_, tsecr))) = (self.ts_ok, seg.timestamp) {
            let ms = self.ts_now(now).wrapping_sub(tsecr);
            if tsecr != 0 && ms < 1 << 31 {
                self.rtt.sample(Duration::from_millis(u64::from(ms)));
                self.stats.rtt_samples += 1;
            }
        }
    }

    /// `n` in-order bytes arrived with nothing out of order: ACK now or arm
    /// the delayed-ACK timer. SHLD-19: ACK at least every second
    /// full-sized segment; MUST-40: never hold one 0.5 s or more.
    fn delay_ack(&mut self, now: Instant, cfg: &TcpConfig, n: usize, stats: &mut TcpStats) {
        self.unacked_bytes += n;
        if cfg.delayed_ack == Duration::ZERO || self.unacked_bytes >= 2 * self.rcv_mss {
            self.ack_now = true;
        } else if self.delack_at.is_none() {
            self.delack_at = Some(now + cfg.delayed_ack.min(Duration::from_millis(499)));
            stats.delayed_acks += 1;
        }
    }

    /// Hands the controller what an ACK delivered (`acked` cumulatively,
    /// `delivered` with newly SACKed bytes) with the rate sample `d`; the
    /// one report both the general ACK path and header prediction make.
    fn report_ack(
        &mut self,
        now: Instant,
        d: Delivery,
        acked: usize,
        delivered: usize,
        in_flight_before: usize,
    ) {
        let sample_rtt = self.last_sample.take();
        if let Some(r) = sample_rtt {
            self.rate.rtt_sample(r);
        }
        let s = AckSample {
            rtt: sample_rtt,
            srtt: self.rtt.srtt(),
            min_rtt: self.rate.min_rtt(),
            bytes_acked: acked,
            delivered,
            lost: core::mem::take(&mut self.lost_unreported),
            prior_in_flight: in_flight_before,
            in_flight: self.pipe(),
            in_recovery: self.recovery.is_some(),
            app_limited: self.end_all() == self.snd_max,
            rate: d.rate,
            round_start: d.round_start,
            round_count: d.round_count,
            total_delivered: d.total_delivered,
        };
        self.cc.on_ack(now, &s);
        if let Some(rs) = d.rate {
            self.stats.delivery_rate = rs.delivery_rate;
        }
    }

    /// ACK processing for the synchronized states (and SYN-RECEIVED just
    /// turned ESTABLISHED), "fifth, check the ACK field".
    fn process_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        ack: SeqNumber,
        stats: &mut TcpStats,
    ) {
        self.kick = true;
        let wnd = usize::from(seg.window_len) << self.snd_wscale;
        let window_changed = wnd != self.snd_wnd;
        let in_flight_before = self.flight();
        // An answer from the peer: zero-window probes are being heard
        // (MUST-37: keep the connection open however long the window stays
        // zero), so neither they nor timeouts under a zero window count
        // toward R2.
        self.probes_unanswered = 0;
        if wnd == 0 {
            self.retries = 0;
        }

        // SACK information (RFC 2018 §5, RFC 6675).
        let mut newly_sacked = 0;
        let mut sacked_blocks = [(SeqNumber(0), SeqNumber(0)); MAX_SACK_BLOCKS];
        let mut nblocks = 0;
        if self.sack_ok {
            for &(l, r) in seg.sack_ranges.iter().flatten() {
                if r <= ack || r <= self.snd_una {
                    // RFC 2883 D-SACK: a report of a duplicate; tolerated.
                    stats.dsacks_received += 1;
                    continue;
                }
                // RFC 2018: ignore blocks outside (SND.UNA, SND.MAX].
                if l >= r || r > self.snd_max || l < self.snd_una {
                    continue;
                }
                // The scoreboard's range bound follows what can be in
                // flight: the send buffer, fixed for the connection, so
                // that its pool is reserved once (the peer's window still
                // grows after the first SACK).
                self.scoreboard.set_window(self.tx.capacity(), self.smss());
                let added = self.scoreboard.add(l, r);
                if added > 0 && nblocks < MAX_SACK_BLOCKS {
                    sacked_blocks[nblocks] = (l, r);
                    nblocks += 1;
                }
                newly_sacked += added;
            }
        }

        let mut acked = 0;
        if ack > self.snd_una {
            acked = ack - self.snd_una;
            self.on_new_ack(now, cfg, seg, ack, stats);
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.syn
            && !seg.fin
            && self.snd_max > self.snd_una
            && (!window_changed || newly_sacked > 0)
            // ACKs answering zero-window probes repeat themselves by design;
            // they say nothing about loss.
            && wnd > 0
        {
            // RFC 5681 §2's duplicate ACK (RFC 6675 counts a SACK that
            // reports new data as one too).
            self.on_dup_ack(now, cfg, stats);
        }

        // "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be
        // updated. If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =<
        // SEG.ACK)), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set
        // SND.WL2 <- SEG.ACK."
        if ack >= self.snd_una
            && (self.snd_wl1 < seg.seq_number
                || (self.snd_wl1 == seg.seq_number && self.snd_wl2 <= ack))
        {
            let opened = self.snd_wnd == 0 && wnd > 0;
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            if wnd > 0 {
                self.persist_at = None;
                self.persist_backoff = 0;
                self.probe_due = false;
            }
            if opened && self.snd_una < self.snd_max && self.rto_at.is_none() {
                // The probe byte is now ordinary data in flight.
                self.rto_at = Some(now + self.rtt.rto());
            }
        }

        if acked > 0 || newly_sacked > 0 {
            let d = self
                .rate
                .on_ack(now, self.snd_una, &sacked_blocks[..nblocks]);
            if self.sack_ok {
                // RFC 6675 IsLost: what the scoreboard now condemns.
                if let Some(edge) = self.scoreboard.lost_edge(self.smss()) {
                    self.lost_unreported += self.rate.mark_lost_below(edge);
                }
                if self.recovery == Some(Recovery::Sack) {
                    // A retransmission lost again (RACK, RFC 8985): NextSeg()
                    // resends it first, rather than the retransmission timer
                    // much later.
                    let l = self.rate.rack_lost_retransmissions(now);
                    if l.bytes > 0 {
                        self.lost_unreported += l.bytes;
                        self.rack_resend = true;
                        stats.rack_lost_retransmits += l.segments as u64;
                    }
                }
            }
            self.report_ack(now, d, acked, acked + newly_sacked, in_flight_before);
        }

        // Per-state ACK consequences.
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                // "if the FIN segment is now acknowledged, then enter
                // FIN-WAIT-2 and continue processing in that state."
                self.state = State::FinWait2;
                if self.orphaned {
                    self.finwait2_at = Some(now + cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now, cfg),
            State::LastAck if self.fin_acked() => {
                // "the only thing that can arrive in this state is an
                // acknowledgment of our FIN. If our FIN is now acknowledged,
                // delete the TCB, enter the CLOSED state, and return."
                self.state = State::Closed;
                self.release_buffers(true);
                self.clear_timers();
            }
            _ => {}
        }
    }

    fn on_new_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        ack: SeqNumber,
        stats: &mut TcpStats,
    ) {
        let acked = ack - self.snd_una;
        // Data bytes leave the ring; the FIN has no byte there.
        let data_acked = (ack.min(self.data_end())) - self.tx_base;
        self.tx.consume(data_acked);
        self.tx_base += data_acked;
        self.snd_una = ack;
        if self.snd_nxt < self.snd_una {
            self.snd_nxt = self.snd_una;
        }
        if self.snd_up.is_some_and(|up| up <= ack) {
            // The urgent data is delivered: leave urgent mode.
            self.snd_up = None;
        }
        self.scoreboard.on_cumulative_ack(ack);
        self.stats.bytes_acked += data_acked as u64;

        // RTT: RFC 7323 §4 RTTM from TSecr, else Karn's timed segment.
        let mut sample = None;
        if let Some((end, sent)) = self.rtt_timed {
            if ack >= end {
                sample = Some(now.saturating_since(sent));
                self.rtt_timed = None;
            }
        }
        if sample.is_none() {
            if let (true, Some((_, tsecr))) = (self.ts_ok, seg.timestamp) {
                let ms = self.ts_now(now).wrapping_sub(tsecr);
                let fresh = self
                    .ts_rtx_floor
                    .is_none_or(|floor| (tsecr.wrapping_sub(floor) as i32) >= 0);
                if tsecr != 0 && ms < 1 << 31 && fresh {
                    sample = Some(Duration::from_millis(u64::from(ms)));
                }
            }
        }
        if let Some(r) = sample {
            self.rtt.sample(r);
            self.stats.rtt_samples += 1;
        }
        self.last_sample = sample;
        self.retries = 0;
        if self.soft_error == Some(TcpError::ExcessiveRetransmissions) {
            // Progress: the delivery problem is over.
            self.soft_error = None;
        }

        // RFC 3522 §3.2: "if the value of the Timestamp Echo Reply field of
        // the acceptable ACK's Timestamps option is smaller than the value
        // of RetransmitTS, then ... the retransmission was spurious".
        if let (true, Some(rtx_ts)) = (self.undo_armed, self.undo_tsval) {
            self.undo_armed = false;
            self.undo_tsval = None;
            if let (true, Some((_, tsecr))) = (self.ts_ok, seg.timestamp) {
                // With SACK, data SACKed above the new SND.UNA means holes
                // remain: this retransmission was needless, but losses are
                // real and the response stands (the head may just have been
                // slower than the segments behind it).
                if (tsecr.wrapping_sub(rtx_ts) as i32) < 0 && self.scoreboard.is_empty() {
                    stats.spurious_undos += 1;
                    self.stats.spurious_undos += 1;
                    self.cc.on_congestion(now, CongestionEvent::Undo);
                    if self.recovery.take().is_some() {
                        self.dupacks = 0;
                    }
                    // The reduction is taken back, so the next loss may
                    // start a recovery of its own at once (RFC 6582's
                    // `recover` guards against two cuts for one window).
                    self.recover = self.snd_una - 1;
                    self.rtx_head = false;
                    // RFC 4015 §3.1 (the Eifel response after a spurious
                    // timeout): resume with new data rather than resending
                    // what the originals already delivered.
                    if self.snd_nxt < self.snd_max {
                        self.snd_nxt = self.snd_max;
                    }
                    self.after_ack_timer(now, true);
                    return;
                }
            }
        }

        // Loss recovery bookkeeping.
        match self.recovery {
            Some(kind) if ack >= self.recover => {
                // Full ACK: RFC 6582 §3.2 step 3 / RFC 6675 §5 "the
                // cumulative ACK ... at or above RecoveryPoint".
                self.recovery = None;
                self.dupacks = 0;
                let _ = kind;
                self.cc.on_congestion(
                    now,
                    CongestionEvent::RecoveryEnd {
                        in_flight: self.flight(),
                    },
                );
            }
            Some(Recovery::NewReno) => {
                // RFC 6582 §3.2 step 5, partial ACK: "retransmit the first
                // unacknowledged segment ... deflate the congestion window by
                // the amount of new data acknowledged ... add back SMSS bytes
                // if the partial ACK acknowledges at least one SMSS".
                self.rtx_head = true;
                self.lost_unreported += self.rate.mark_head_lost();
                self.recovery_cwnd = self.recovery_cwnd.saturating_sub(acked);
                if acked >= self.smss() {
                    self.recovery_cwnd += self.smss();
                }
                if !self.first_partial {
                    // Impatient variant would restart here; the timer is
                    // restarted below only on the first partial ACK.
                    self.first_partial = true;
                } else {
                    self.after_ack_timer(now, false);
                    return;
                }
            }
            Some(Recovery::Sack) => {
                if self.high_rxt < self.snd_una {
                    self.high_rxt = self.snd_una;
                }
            }
            None => self.dupacks = 0,
        }
        let _ = cfg;
        let _ = stats;
        self.after_ack_timer(now, true);
    }

    /// RFC 6298 §5.2/5.3: "When all outstanding data has been acknowledged,
    /// turn off the retransmission timer. When an ACK is received that
    /// acknowledges new data, restart the retransmission timer".
    fn after_ack_timer(&mut self, now: Instant, restart: bool) {
        if self.snd_una == self.snd_max {
            self.rto_at = None;
        } else if restart || self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
    }

    fn on_dup_ack(&mut self, now: Instant, cfg: &TcpConfig, stats: &mut TcpStats) {
        let _ = cfg;
        self.dupacks = self.dupacks.saturating_add(1);
        match self.recovery {
            Some(Recovery::NewReno) => {
                // RFC 6582 §3.2 step 4: "increment cwnd by SMSS".
                self.recovery_cwnd += self.smss();
            }
            Some(Recovery::Sack) => {}
            None => {
                let lost = self.sack_ok
                    && self
                        .scoreboard
                        .lost_edge(self.smss())
                        .is_some_and(|e| e > self.snd_una);
                // RFC 6582 §3.2 step 2: "If the cumulative ACK field covers
                // more than recover" and the dupACK threshold (or RFC 6675's
                // IsLost(HighACK + 1)).
                if (self.dupacks as usize >= DUP_THRESH || lost)
                    && self.snd_una > self.recover
                    && self.snd_nxt == self.snd_max
                {
                    self.enter_recovery(now, stats);
                }
            }
        }
    }

    fn enter_recovery(&mut self, now: Instant, stats: &mut TcpStats) {
        let flight = self.flight();
        self.recover = self.snd_max;
        self.cc
            .on_congestion(now, CongestionEvent::Loss { in_flight: flight });
        // RFC 6675 §5 (4.2): "retransmit the first data segment presumed
        // dropped". When one recovery follows another, SND.UNA can be a
        // retransmission of the last one still on its way: not presumed
        // dropped (RACK will say if it is), so NextSeg() picks the holes.
        self.rtx_head = !self.sack_ok || self.rate.resend_in_flight(self.snd_una).is_none();
        self.first_partial = false;
        self.undo_armed = true;
        self.undo_tsval = None;
        self.rate.restart_loss_scan();
        if !self.sack_ok {
            self.lost_unreported += self.rate.mark_head_lost();
        }
        self.stats.fast_retransmits += 1;
        stats.fast_retransmits += 1;
        if self.sack_ok {
            self.recovery = Some(Recovery::Sack);
            self.high_rxt = self.snd_una;
            self.rescue_rxt = None;
            stats.sack_recoveries += 1;
        } else {
            self.recovery = Some(Recovery::NewReno);
            // RFC 6582 §3.2 step 3 (RFC 5681 §3.2): "cwnd = ssthresh + 3*SMSS",
            // with the controller's reduced window standing for ssthresh
            // (they are equal for NewReno and CUBIC; BBR has no ssthresh).
            self.recovery_cwnd = self.cc.window() + 3 * self.smss();
            stats.newreno_recoveries += 1;
        }
    }

    /// The text of a segment, trimmed to the window (§3.10.7.4 "seventh").
    fn receive_text(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &Repr<'_>,
        stats: &mut TcpStats,
    ) {
        let mut seq = seg.seq_number;
        let mut data = seg.payload;
        let mut fin = seg.fin;
        // Trim what we already have.
        if seq < self.rcv_nxt {
            let skip = self.rcv_nxt - seq;
            if skip > data.len() {
                // Only an old FIN (or nothing) was left.
                data = &[];
                fin = false;
            } else {
                data = &data[skip..];
            }
            seq = self.rcv_nxt;
        }
        // Trim to the space we have.
        let off = seq - self.rcv_nxt;
        let room = self.rx.free().saturating_sub(off);
        if data.len() > room {
            data = &data[..room];
            fin = false;
            // The rest was not acceptable: say at once what was taken.
            self.ack_now = true;
        }
        if !data.is_empty() {
            self.rcv_mss = self
                .rcv_mss
                .max(seg.payload.len().min(usize::from(u16::MAX)));
            if off == 0 {
                let n = self.rx.write(data);
                self.rcv_nxt += n;
                self.stats.bytes_received += n as u64;
                let more = self.ooo.pop_contiguous(self.rcv_nxt);
                if more > 0 {
                    self.rx.advance_len(more);
                    self.rcv_nxt += more;
                    self.stats.bytes_received += more as u64;
                }
                if more > 0 || !self.ooo.is_empty() {
                    // RFC 5681 §4.2: "an immediate ACK ... when the segment
                    // fills in all or part of a gap in the sequence space".
                    self.ack_now = true;
                    self.ack_immediate = true;
                } else {
                    self.delay_ack(now, cfg, n, stats);
                }
            } else {
                // SHLD-31: hold in-window out-of-order data.
                stats.ooo_segments += 1;
                if self.ooo.insert(seq, seq + data.len()).is_ok() {
                    let at = self.rx.len() + off;
                    self.rx.write_at(at, data);
                } else {
                    stats.drop(|s| &mut s.drop_ooo_full);
                    fin = false;
                }
                // RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate
                // duplicate ACK when an out-of-order segment arrives."
                self.ack_now = true;
                self.ack_immediate = true;
            }
        } else if seg.payload.len() + usize::from(seg.fin) > 0 && !fin {
            // A pure duplicate: ACK it at once so the sender's timer learns.
            self.ack_now = true;
        }
        if fin {
            let fin_seq = seq + data.len();
            if fin_seq == self.rcv_nxt {
                self.receive_fin(now, cfg);
            } else {
                self.ooo_fin = Some(fin_seq);
                self.ack_now = true;
            }
        } else if self.ooo_fin == Some(self.rcv_nxt) {
            self.ooo_fin = None;
            self.receive_fin(now, cfg);
        }
    }

    /// "eighth, check the FIN bit".
    fn receive_fin(&mut self, now: Instant, cfg: &TcpConfig) {
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ooo_fin = None;
        self.ooo.clear();
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                // "If our FIN has been ACKed ..., then enter TIME-WAIT, start
                // the time-wait timer, turn off the other timers; otherwise,
                // enter the CLOSING state."
                if self.fin_acked() {
                    self.enter_time_wait(now, cfg);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now, cfg),
            State::TimeWait => self.timewait_at = Some(now + cfg.time_wait),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = State::TimeWait;
        let ack_now = self.ack_now;
        self.clear_timers();
        self.ack_now = ack_now;
        self.timewait_at = Some(now + cfg.time_wait);
        // TIME-WAIT keeps no send buffer; the app may still read what came.
        self.release_buffers(self.orphaned);
    }

    // ----- timers ---------------------------------------------------------

    /// The earliest pending deadline, or `None`.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.rto_at,
            self.delack_at,
            self.persist_at,
            self.keepalive_at,
            self.timewait_at,
            self.finwait2_at,
            self.connect_deadline,
            self.sws_at,
            self.pace_at,
        ]
        .into_iter()
        // The earliest armed timer, as `.flatten().min()` would give, in
        // fewer instructions: this runs after every segment. An unarmed
        // timer counts as the end of time, so the minimum is branch-free;
        // a timer saturated to the end of time (`Instant + Duration::MAX`)
        // can never fire and is reported as none.
        .map(|t| t.map_or(i64::MAX, Instant::total_micros))
        .min()
        .filter(|&m| m != i64::MAX)
        .map(Instant::from_micros)
    }

    /// Whether `transmit` has something to do right away.
    pub fn wants_tx(&self) -> bool {
        if self.rst_pending {
            return true;
        }
        match self.state {
            State::Closed | State::Listen => false,
            State::SynSent | State::SynReceived => self.need_syn,
            _ => {
                // What `choose` would send waits for a pending pacing
                // deadline, whose timer brings the connection back; ready
                // before then, it would be polled again and again at the
                // same instant, sending nothing (ACKs and keep-alives go
                // out unpaced).
                let segment = self.kick || self.probe_due || self.rtx_head;
                self.ack_now || self.ka_due || (segment && self.pace_at.is_none())
            }
        }
    }

    /// SHUTDOWN before the handshake completed: the FIN waits for it.
    pub fn queue_fin(&mut self) {
        self.fin_queued = true;
    }

    fn arm_keepalive(&mut self, now: Instant) {
        if let Some(ka) = self.keepalive {
            if matches!(self.state, State::Established | State::CloseWait) {
                let wait = if self.ka_probes == 0 {
                    ka.idle
                } else {
                    ka.interval
                };
                let base = if self.ka_probes == 0 {
                    self.last_rx.max(self.last_tx)
                } else {
                    self.last_tx
                };
                let at = base + wait;
                // Never in the past: a timer that is due at once would be
                // run again and again.
                self.keepalive_at = Some(if at > now { at } else { now + wait });
                return;
            }
        }
        self.keepalive_at = None;
    }

    /// Runs whatever timers are due.
    pub fn on_timer(&mut self, now: Instant, cfg: &TcpConfig, stats: &mut TcpStats) {
        if self.connect_deadline.is_some_and(|t| t <= now) {
            self.connect_deadline = None;
            if matches!(self.state, State::SynSent | State::SynReceived) {
                stats.connect_timeouts += 1;
                let err = self.timeout_error();
                self.abort_with(err, stats);
                return;
            }
        }
        if self.timewait_at.is_some_and(|t| t <= now) {
            self.timewait_at = None;
            self.state = State::Closed;
            self.release_buffers(true);
            return;
        }
        if self.finwait2_at.is_some_and(|t| t <= now) {
            self.finwait2_at = None;
            if self.state == State::FinWait2 && self.orphaned {
                self.state = State::Closed;
                self.release_buffers(true);
                return;
            }
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.on_rto(now, cfg, stats);
            if self.state == State::Closed {
                return;
            }
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.sws_at.is_some_and(|t| t <= now) {
            self.sws_at = None;
            self.sws_override = true;
        }
        if self.pace_at.is_some_and(|t| t <= now) {
            self.pace_at = None;
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            if self.snd_wnd == 0 && self.snd_una < self.end_all() {
                // MUST-37 keeps the connection open as long as probes are
                // answered; unanswered ones count toward R2.
                self.probes_unanswered += 1;
                if self.r2.is_some_and(|r2| self.probes_unanswered > r2) {
                    stats.data_timeouts += 1;
                    self.abort_with(TcpError::TimedOut, stats);
                    return;
                }
                self.probe_due = true;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
            }
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = None;
            if let Some(ka) = self.keepalive {
                let idle = self.snd_una == self.snd_max && self.tx.is_empty();
                let quiet = now.saturating_since(self.last_rx)
                    >= if self.ka_probes == 0 {
                        ka.idle
                    } else {
                        Duration::ZERO
                    };
                if idle && quiet {
                    if self.ka_probes >= ka.probes.max(1) {
                        stats.keepalive_timeouts += 1;
                        self.abort_with(TcpError::TimedOut, stats);
                        return;
                    }
                    self.ka_due = true;
                } else {
                    self.ka_probes = 0;
                }
            }
            if !self.ka_due {
                self.arm_keepalive(now);
            }
        }
    }

    /// RFC 9293 §3.8.3: at R1 retransmissions "pass negative advice to the
    /// IP layer" (MUST-20) and, between R1 and R2, tell the application of
    /// the delivery problem (SHLD-9) as a soft error it reads in readiness.
    fn reach_r1(&mut self, stats: &mut TcpStats) {
        self.negative_advice = true;
        stats.r1_notices += 1;
        if self.soft_error.is_none() {
            self.soft_error = Some(TcpError::ExcessiveRetransmissions);
        }
    }

    /// The error a timeout abort reports: an ICMP soft error that may
    /// explain it (MUST-56 lets it be reported), else TimedOut.
    fn timeout_error(&self) -> TcpError {
        match self.soft_error {
            None | Some(TcpError::ExcessiveRetransmissions) => TcpError::TimedOut,
            Some(e) => e,
        }
    }

    /// MUST-21: R2 per connection, `None` for "infinite".
    pub fn set_retransmit_limit(&mut self, r2: Option<u32>) {
        self.r2 = r2;
    }

    fn on_rto(&mut self, now: Instant, cfg: &TcpConfig, stats: &mut TcpStats) {
        match self.state {
            State::SynSent | State::SynReceived => {
                // MUST-22/23 with syn_retries as R2 for the SYN.
                if self.syn_retransmits >= cfg.syn_retries {
                    let err = match self.state {
                        State::SynSent => self.timeout_error(),
                        _ => TcpError::TimedOut,
                    };
                    self.abort_with(err, stats);
                    return;
                }
                self.syn_retransmits += 1;
                // MUST-22: the SYN gets the same R1 handling as data.
                if self.syn_retransmits == cfg.r1_retries.max(1) {
                    self.reach_r1(stats);
                }
                self.rtt.back_off();
                self.need_syn = true;
                stats.retrans_segs += 1;
                self.stats.retransmits += 1;
            }
            _ if self.snd_una != self.snd_max => {
                self.retries += 1;
                if self.r2.is_some_and(|r2| self.retries > r2) {
                    stats.data_timeouts += 1;
                    let err = self.timeout_error();
                    self.abort_with(err, stats);
                    return;
                }
                if self.retries == cfg.r1_retries.max(1) {
                    self.reach_r1(stats);
                }
                stats.rto_timeouts += 1;
                self.stats.rto_timeouts += 1;
                let zero_window_probe = self.snd_wnd == 0;
                if !zero_window_probe {
                    self.lost_unreported += self.rate.mark_all_lost();
                    if self.retries == 1 {
                        self.undo_armed = true;
                        self.undo_tsval = None;
                    }
                    self.cc.on_congestion(
                        now,
                        CongestionEvent::Timeout {
                            in_flight: self.flight(),
                            first: self.retries == 1,
                        },
                    );
                }
                // RFC 6298 §5.5-5.6: back off and restart the timer.
                self.rtt.back_off();
                // RFC 6582 §3.2 step 1 after a timeout: "recover" is the
                // highest sequence number transmitted.
                self.recover = self.snd_max;
                self.recovery = None;
                self.dupacks = 0;
                // RFC 6675 §5.1 lets the timeout's recovery "continue to
                // take advantage of SACK information": the first timeout
                // keeps the scoreboard, and going back from SND.UNA skips
                // what the receiver holds (resending a whole flight at a
                // large BDP costs thousands of needless segments). A second
                // timeout in a row may mean the receiver reneged (RFC 2018
                // §8): then the SACK information is dropped.
                if self.retries > 1 {
                    self.scoreboard.clear();
                }
                // Go back: resend from SND.UNA. Karn: nothing in flight is
                // timed any more.
                self.snd_nxt = self.snd_una;
                self.rtt_timed = None;
                if zero_window_probe {
                    self.probe_due = true;
                }
            }
            _ => {}
        }
    }

    // ----- transmission ---------------------------------------------------

    /// Sends what the connection owes. Returns false if `emit` refused (the
    /// rest waits for the next poll).
    pub fn transmit(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) -> bool {
        self.kick = false;
        if self.rst_pending {
            let ok = if self.state.is_synchronized() || self.state == State::SynReceived {
                self.send_rst(emit, stats)
            } else {
                true
            };
            if !ok {
                return false;
            }
            self.rst_pending = false;
            self.state = State::Closed;
            self.release_buffers(true);
            self.clear_timers();
            return true;
        }
        match self.state {
            State::Closed | State::Listen => return true,
            State::SynSent | State::SynReceived => {
                if self.need_syn {
                    let repr = self.syn_repr(now, cfg);
                    if !self.emit_ctl(emit, &repr, stats) {
                        return false;
                    }
                    self.need_syn = false;
                    self.last_tx = now;
                    self.snd_nxt = self.iss + 1;
                    self.snd_max = self.snd_max.max(self.snd_nxt);
                    self.last_ack_sent = self.rcv_nxt;
                    if self.rto_at.is_none() {
                        self.rto_at = Some(now + self.rtt.rto());
                    }
                }
                if self.state == State::SynReceived && self.ack_now {
                    self.ack_now = false;
                }
                return true;
            }
            State::TimeWait => {
                if self.ack_now && !self.send_ack(now, emit, stats) {
                    return false;
                }
                return true;
            }
            _ => {}
        }
        if self.snd_una == self.snd_max && self.snd_nxt < self.end_all() {
            self.maybe_idle_restart(now);
        }
        let mut sent = 0;
        let pacing = self.pacing_rate();
        let mut paced = false;
        let mut run = false;
        let mut common = None;
        while sent < MAX_BURST {
            if let (Some(_), Some(t)) = (pacing, self.pace_next) {
                if t > now {
                    // The pacing timer brings the connection back.
                    paced = true;
                    self.pace_at = Some(t);
                    stats.paced_waits += 1;
                    break;
                }
            }
            // After a full segment of new data, the next one is almost
            // always another: take it without `choose`'s general walk.
            let next = if run { self.next_full() } else { None };
            if let (Some(first), None) = (next, pacing) {
                // A paced flow spaces its segments; a run would not.
                if let Some((n, all)) =
                    self.send_run(now, first, MAX_BURST - sent, &mut common, emit, stats)
                {
                    stats.run_segs += n as u64;
                    sent += n;
                    if !all {
                        return false;
                    }
                    continue;
                }
            }
            if next.is_some() {
                stats.run_segs += 1;
            }
            let Some(plan) = next.or_else(|| self.choose(now)) else {
                break;
            };
            let len = plan.len;
            run = cfg.send_runs
                && self.recovery.is_none()
                && !plan.rtx
                && !plan.probe
                && len == self.smss();
            if !self.send_plan(now, plan, &mut common, emit, stats) {
                return false;
            }
            if let Some(rate) = pacing {
                self.pace_after(now, len, rate);
            }
            sent += 1;
        }
        if sent == MAX_BURST {
            // More may be sendable; come back on the next poll.
            self.kick = true;
        } else if !paced
            && self.end_all() - self.snd_nxt < self.smss()
            && self.recovery.is_none()
            && self.flight() < self.cc.window()
        {
            // The draft's §3.4: the application, not the network, limits
            // this flow now; rate samples taken until this flight is
            // delivered say so.
            self.rate.on_app_limited(self.flight());
        }
        if self.ka_due {
            // SHLD-12: "SEG.SEQ = SND.NXT-1", no data.
            let seq = self.snd_una - 1;
            if !self.send_ack_at(now, seq, emit, stats) {
                return false;
            }
            self.ka_due = false;
            self.ka_probes += 1;
            self.last_tx = now;
            stats.keepalive_probes += 1;
            self.arm_keepalive(now);
        }
        if self.ack_now && !self.send_ack(now, emit, stats) {
            return false;
        }
        self.arm_after_send(now);
        true
    }

    /// Moves the pacing clock past a segment of `len` bytes. Credit left
    /// over from an idle spell covers at most [`PACING_BURST`] (or two
    /// segments at low rates), so a paced flow never bursts more than that.
    fn pace_after(&mut self, now: Instant, len: usize, rate: u64) {
        if len == 0 {
            return;
        }
        let gap = Duration::from_micros(len as u64 * 1_000_000 / rate.max(1));
        let two = Duration::from_micros(2 * self.smss() as u64 * 1_000_000 / rate.max(1));
        let allowance = PACING_BURST.max(two);
        let floor = now - allowance;
        let base = match self.pace_next {
            Some(t) if t > floor => t,
            _ => floor,
        };
        self.pace_next = Some(base + gap);
    }

    /// Persist, SWS-override and keep-alive timers after a send attempt.
    fn arm_after_send(&mut self, now: Instant) {
        let pending = self.snd_una < self.end_all();
        if self.snd_wnd == 0 && pending && self.rto_at.is_none() && self.persist_at.is_none() {
            // SHLD-29/30: first probe after one RTO, then back off.
            let mut d = self.rtt.rto();
            for _ in 0..self.persist_backoff.min(16) {
                d = d.saturating_mul(2);
            }
            self.persist_at = Some(now + d.min(self.rtt_max()));
        }
        if self.keepalive.is_some() && self.keepalive_at.is_none() && !self.ka_due {
            self.arm_keepalive(now);
        }
    }

    fn rtt_max(&self) -> Duration {
        // The estimator caps at rto_max; a large backoff reaches it.
        let mut probe = self.rtt.clone();
        for _ in 0..40 {
            probe.back_off();
        }
        probe.rto()
    }

    /// What to send next, if anything (RFC 6675 NextSeg, RFC 5681/6582
    /// windows, Nagle and sender SWS avoidance).
    fn choose(&mut self, now: Instant) -> Option<Plan> {
        let smss = self.smss();
        let data_end = self.data_end();
        let end_all = self.end_all();

        // Fast retransmit / partial ACK: the first unacknowledged segment.
        if self.rtx_head {
            self.rtx_head = false;
            if self.snd_una < self.snd_max {
                let len = smss.min(data_end - self.snd_una);
                let fin =
                    self.fin_queued && self.snd_una + len == data_end && self.snd_max > data_end;
                if len > 0 || fin {
                    return Some(Plan {
                        seq: self.snd_una,
                        len,
                        fin,
                        rtx: true,
                        probe: false,
                        rescue: false,
                    });
                }
            }
        }

        // Zero-window probe (MUST-36): one new octet past the window.
        if self.probe_due {
            self.probe_due = false;
            if self.snd_wnd == 0 {
                let seq = self.snd_una;
                let len = usize::from(seq < data_end);
                let fin = len == 0 && self.fin_queued;
                if len > 0 || fin {
                    return Some(Plan {
                        seq,
                        len,
                        fin,
                        rtx: seq < self.snd_max,
                        probe: true,
                        rescue: false,
                    });
                }
            }
        }

        let wnd_edge = self.snd_una + self.snd_wnd;

        if self.recovery == Some(Recovery::Sack) {
            return self.next_seg(now, smss, wnd_edge);
        }

        // Going back after a timeout: skip what the receiver SACKed, and
        // count only unSACKed bytes as outstanding.
        let going_back = self.sack_ok && self.snd_nxt < self.snd_max;
        let mut hole_end = None;
        if going_back {
            match self.scoreboard.next_hole(self.snd_nxt, self.snd_max) {
                Some((l, r)) => {
                    self.snd_nxt = l;
                    hole_end = Some(r);
                }
                None => self.snd_nxt = self.snd_max,
            }
        }
        // How much the congestion window allows past SND.NXT.
        let outstanding = if going_back {
            self.scoreboard.hole_bytes(self.snd_una, self.snd_nxt)
        } else {
            self.snd_nxt - self.snd_una
        };
        let cwnd_room = match self.recovery {
            Some(Recovery::NewReno) => self.recovery_cwnd.saturating_sub(self.flight()),
            _ => {
                // RFC 3042 limited transmit: one new segment for each of the
                // first two duplicate ACKs, cwnd unchanged.
                let extra = if self.snd_nxt == self.snd_max {
                    (self.dupacks.min(2) as usize) * smss
                } else {
                    0
                };
                (self.cc.window() + extra).saturating_sub(outstanding)
            }
        };
        // MUST-34: a window that shrank below what is in flight is zero.
        let wnd_room = wnd_edge - self.snd_nxt;
        let avail = end_all - self.snd_nxt;
        if avail == 0 {
            return None;
        }
        let avail_data = data_end - self.snd_nxt;
        let mut len = avail_data.min(smss).min(wnd_room).min(cwnd_room);
        if let Some(r) = hole_end {
            len = len.min(r - self.snd_nxt);
        }
        let rtx = self.snd_nxt < self.snd_max;

        if avail_data == 0 {
            // Only the FIN is left; it needs no window.
            if cwnd_room == 0 && !rtx && self.flight() > 0 {
                return None;
            }
            return Some(Plan {
                seq: self.snd_nxt,
                len: 0,
                fin: true,
                rtx,
                probe: false,
                rescue: false,
            });
        }
        if len == 0 {
            return None;
        }
        if !rtx && len < smss {
            if len < avail_data {
                // Window- or cwnd-limited small segment. RFC 9293
                // §3.8.6.2.1: send only if "(3) at least a fraction Fs of
                // the maximum window can be sent" (Fs = 1/2) or the override
                // timer fired.
                let fs_ok = len >= self.max_snd_wnd / 2 && wnd_room < cwnd_room;
                if !(fs_ok || self.sws_override) {
                    if self.sws_at.is_none() && wnd_room < cwnd_room {
                        self.sws_at = Some(now + SWS_OVERRIDE);
                    }
                    return None;
                }
            } else if !self.nodelay
                && self.snd_nxt > self.snd_una
                && self.snd_up.is_none_or(|up| up <= self.snd_nxt)
            {
                // Nagle (RFC 9293 §3.7.4, SHLD-7): "if there is unacknowledged
                // data ..., then the sending TCP endpoint buffers all user data
                // ... until the outstanding data has been acknowledged or until
                // the TCP endpoint can send a full-sized segment".
                return None;
            }
        }
        self.sws_override = false;
        self.sws_at = None;
        // Piggyback the FIN when this segment takes the last byte.
        let fin = self.fin_queued && self.snd_nxt + len == data_end;
        Some(Plan {
            seq: self.snd_nxt,
            len,
            fin,
            rtx,
            probe: false,
            rescue: false,
        })
    }

    /// Bytes in the network: RFC 6675 SetPipe() (un-SACKed bytes in
    /// flight, less those deemed lost and not yet retransmitted) when SACK
    /// is on, else the flight.
    fn pipe(&self) -> usize {
        if !self.sack_ok {
            return self.flight();
        }
        let lost_edge = self
            .scoreboard
            .lost_edge(self.smss())
            .unwrap_or(self.snd_una);
        let from = self.high_rxt.max(self.snd_una);
        let outstanding = self.scoreboard.hole_bytes(self.snd_una, self.snd_max);
        let lost_unrtx = self.scoreboard.hole_bytes(from, lost_edge.max(from));
        outstanding.saturating_sub(lost_unrtx)
    }

    /// The first un-SACKed stretch in [from, limit) that is not a
    /// retransmission still on its way. HighRxt alone forgets, when one
    /// recovery follows another, what the previous one resent; the send
    /// records remember (until RACK declares such a resend lost, as Linux
    /// tracks TCPCB_SACKED_RETRANS), so nothing in flight goes out twice.
    fn hole_to_resend(&self, from: SeqNumber, limit: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        let mut cursor = from;
        // Bounded work per call: past 64 resends in flight, rules (2)-(4)
        // take over (being conservative is always allowed).
        for _ in 0..64 {
            let (l, r) = self.scoreboard.next_hole(cursor, limit)?;
            match self.rate.resend_in_flight(l) {
                Some(end) if end < r => cursor = end,
                Some(_) => cursor = r,
                None => return Some((l, r)),
            }
        }
        None
    }

    /// RFC 6675 §5 step (C): send while "cwnd - pipe >= 1 SMSS", choosing
    /// with NextSeg().
    fn next_seg(&mut self, now: Instant, smss: usize, wnd_edge: SeqNumber) -> Option<Plan> {
        let _ = now;
        let cwnd = self.cc.window();
        let lost_edge = self.scoreboard.lost_edge(smss).unwrap_or(self.snd_una);
        let from = self.high_rxt.max(self.snd_una);
        if cwnd < self.pipe() + smss {
            return None;
        }
        let data_end = self.data_end();
        let mk = |seq: SeqNumber, len: usize, rtx: bool, rescue: bool| Plan {
            seq,
            len,
            fin: false,
            rtx,
            probe: false,
            rescue,
        };
        // (0) a retransmission RACK found lost again. Resending refreshes
        // its record, so each goes out once more per loss.
        if self.rack_resend {
            match self.rate.first_lost_retransmission() {
                Some((l, r)) if l >= self.snd_una => {
                    let len = smss.min(r - l).min(data_end - l);
                    if len > 0 {
                        return Some(mk(l, len, true, false));
                    }
                }
                _ => self.rack_resend = false,
            }
        }
        // (1) lost, un-SACKed, not yet retransmitted.
        if let Some((l, r)) = self.hole_to_resend(from, lost_edge) {
            let len = smss.min(r - l).min(data_end - l);
            if len > 0 {
                return Some(mk(l, len, true, false));
            }
        }
        // (2) new data the receiver's window allows.
        if self.snd_nxt < data_end && self.snd_nxt < wnd_edge {
            let len = smss
                .min(data_end - self.snd_nxt)
                .min(wnd_edge - self.snd_nxt);
            let mut p = mk(self.snd_nxt, len, false, false);
            p.fin = self.fin_queued && self.snd_nxt + len == data_end;
            return Some(p);
        }
        if self.fin_queued && self.snd_nxt == data_end && self.snd_max <= data_end {
            let mut p = mk(self.snd_nxt, 0, false, false);
            p.fin = true;
            return Some(p);
        }
        // (3) "an unSACKed sequence number 'S3' that meets the criteria
        // ... (1.a) and (1.b)": above HighRxt and below the highest octet
        // SACKed — not the unSACKed tail, which is still on its way.
        let sacked_top = self.scoreboard.highest_sacked().unwrap_or(self.snd_una);
        if let Some((l, r)) = self.hole_to_resend(from, sacked_top) {
            let len = smss.min(r - l).min(data_end - l);
            if len > 0 {
                return Some(mk(l, len, true, false));
            }
        }
        // (4) one rescue retransmission per recovery: "one segment of up to
        // SMSS octets that MUST include the highest outstanding unSACKed
        // sequence number".
        if self.rescue_rxt.is_none_or(|r| self.snd_una > r) {
            let top = data_end.min(self.snd_max);
            if top > self.snd_una {
                let len = smss.min(top - self.snd_una);
                let seq = top - len;
                if !self.scoreboard.is_sacked(top - 1) {
                    return Some(mk(seq, len, true, true));
                }
            }
        }
        None
    }

    /// The plan `choose` would make next, when it is another full segment
    /// of new data; `None` sends the caller to `choose`. Valid only right
    /// after a full new-data segment went out outside recovery: then
    /// `choose`'s retransmission, probe and going-back branches are
    /// inert (their flags were cleared by the `choose` that started the
    /// run and only input sets them), so what is left is its window
    /// arithmetic, repeated here. A short segment (Nagle, SWS, the end of
    /// the data, a FIN with no data) is `choose`'s to judge.
    #[inline]
    fn next_full(&self) -> Option<Plan> {
        let smss = self.smss();
        let data_end = self.data_end();
        let seq = self.snd_nxt;
        let extra = (self.dupacks.min(2) as usize) * smss;
        let cwnd_room = (self.cc.window() + extra).saturating_sub(seq - self.snd_una);
        let wnd_room = (self.snd_una + self.snd_wnd) - seq;
        let len = (data_end - seq).min(smss).min(wnd_room).min(cwnd_room);
        if len < smss || seq < self.snd_max {
            return None;
        }
        Some(Plan {
            seq,
            len,
            fin: self.fin_queued && seq + len == data_end,
            rtx: false,
            probe: false,
            rescue: false,
        })
    }

    /// `common` carries the header fields every data segment of one
    /// `transmit` call shares (window, SACK blocks, timestamps, payload
    /// room): nothing in them changes between segments of one call, and
    /// computing them once is most of the per-segment cost of a run.
    fn send_plan(
        &mut self,
        now: Instant,
        plan: Plan,
        common: &mut Option<SegCommon>,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) -> bool {
        let c = self.seg_common(now, common);
        let (room, ts) = (c.room, c.base.timestamp);
        let off = plan.seq - self.tx_base;
        let payload = self.tx.slice_at(off, plan.len.min(room));
        let len = payload.len();
        // A FIN only rides on the segment that really ends the data.
        let fin = plan.fin && plan.seq + len == self.data_end();
        if len == 0 && !fin {
            return true;
        }
        let repr = Repr {
            seq_number: plan.seq,
            // MUST-61: PSH on the segment that empties the send queue.
            psh: len > 0 && plan.seq + len == self.data_end(),
            fin,
            urgent_at: self.urgent_for(plan.seq),
            payload,
            ..c.base
        };
        let ok = emit.segment(*self.local.ip(), *self.remote.ip(), self.tos, &repr);
        if !ok {
            return false;
        }
        self.note_sent(now, &plan, len, fin, ts, stats);
        true
    }

    /// [`note_sent`](Self::note_sent) for `n` full segments of `smss`
    /// bytes of new data from `seq` = SND.MAX, sent back to back: every
    /// variable as `n` calls leave it, with what only the first call can
    /// change done once (the ACK state, the timed segment, the RTO timer)
    /// and the send records extended in one step. The controller still
    /// hears of each segment, with the flight after it.
    fn note_sent_new(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        smss: usize,
        n: usize,
        stats: &mut TcpStats,
    ) {
        if n == 0 {
            return;
        }
        debug_assert!(seq == self.snd_max);
        stats.out_segs += n as u64;
        self.stats.segs_out += n as u64;
        self.acked_now();
        self.last_tx = now;
        let flight = self.flight();
        self.rate.on_send_run(now, seq, smss, n, flight);
        self.stats.bytes_sent += (n * smss) as u64;
        if self.rtt_timed.is_none() {
            self.rtt_timed = Some((seq + smss, now));
        }
        let end = seq + n * smss;
        if seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        self.snd_max = end;
        for i in 1..=n {
            self.cc.on_sent(now, smss, flight + i * smss);
        }
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
    }

    /// What sending `len` bytes (and `fin`) of `plan` changes: counters,
    /// send records, timing, the send variables, the controller, timers.
    fn note_sent(
        &mut self,
        now: Instant,
        plan: &Plan,
        len: usize,
        fin: bool,
        ts: Option<(u32, u32)>,
        stats: &mut TcpStats,
    ) {
        stats.out_segs += 1;
        self.stats.segs_out += 1;
        self.acked_now();
        self.last_tx = now;
        let end = plan.seq + len + usize::from(fin);
        self.rate
            .on_send(now, plan.seq, end, plan.seq < self.snd_max, self.flight());
        if plan.rtx {
            if let Some((tsval, _)) = ts {
                self.ts_rtx_floor = Some(tsval);
                if self.undo_armed && self.undo_tsval.is_none() {
                    self.undo_tsval = Some(tsval);
                }
            }
            stats.retrans_segs += 1;
            self.stats.retransmits += 1;
            // Karn: a retransmitted segment gives no sample.
            if self.rtt_timed.is_some_and(|(e, _)| e > plan.seq) {
                self.rtt_timed = None;
            }
            if self.recovery == Some(Recovery::Sack) && !plan.rescue {
                self.high_rxt = self.high_rxt.max(end);
            }
            if plan.rescue {
                self.rescue_rxt = Some(self.recover);
            }
        } else {
            self.stats.bytes_sent += len as u64;
            if self.rtt_timed.is_none() && !plan.probe {
                self.rtt_timed = Some((end, now));
            }
        }
        if plan.probe {
            stats.zero_window_probes += 1;
        }
        if plan.seq == self.snd_nxt || (plan.probe && end > self.snd_nxt) {
            self.snd_nxt = end;
        }
        if end > self.snd_max {
            self.snd_max = end;
        }
        self.cc.on_sent(now, len, self.flight());
        if !plan.probe && self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        } else if plan.rtx && plan.seq == self.snd_una && self.recovery.is_some() {
            // The head's retransmission in fast recovery restarts the timer
            // (as Linux does): the timer was armed by the last cumulative
            // ACK, and firing it one RTO after that — while the resent head
            // is still on its way — would be a spurious timeout.
            self.rto_at = Some(now + self.rtt.rto());
        }
    }

    /// The header fields every data segment of one `transmit` call shares,
    /// computed by the first that needs them.
    fn seg_common(&mut self, now: Instant, common: &mut Option<SegCommon>) -> SegCommon {
        match *common {
            Some(c) => c,
            None => {
                let window_len = self.window_field();
                let sack_ranges = self.sack_blocks();
                let timestamp = self.timestamp_opt(now);
                // Room for the payload beside this segment's options.
                let nblocks = sack_ranges.iter().flatten().count();
                let hdr = header_len_for(false, false, false, timestamp.is_some(), nblocks);
                let c = SegCommon {
                    base: Repr {
                        ack_number: Some(self.rcv_nxt),
                        window_len,
                        timestamp,
                        sack_ranges,
                        ..self.base_repr()
                    },
                    room: self.mss_limit().saturating_sub(hdr - 20).max(1),
                };
                *common = Some(c);
                c
            }
        }
    }

    /// Sends the full segment `first` and as many full segments after it
    /// as the windows, the data and `budget` allow in one
    /// [`SegmentOut::run`], if there are at least two and the output takes
    /// runs. They are exactly the segments `next_full` and `send_plan`
    /// would send one by one (`tests/tcp_fastpath.rs` holds the two equal
    /// frame by frame); the engine's bookkeeping is still per segment, the
    /// plan, the header fields and the output's checks are once per run.
    /// `None`: not taken, nothing sent. `Some((n, all))`: n went out, and
    /// `all` is false if the output ran out of room.
    fn send_run(
        &mut self,
        now: Instant,
        first: Plan,
        budget: usize,
        common: &mut Option<SegCommon>,
        emit: &mut dyn SegmentOut,
        stats: &mut TcpStats,
    ) -> Option<(usize, bool)> {
        let smss = self.smss();
        let seq = first.seq;
        let data_end = self.data_end();
        let extra = (self.dupacks.min(2) as usize) * smss;
        let cwnd_room = (self.cc.window() + extra).saturating_sub(seq - self.snd_una);
        let wnd_room = (self.snd_una + self.snd_wnd) - seq;
        let mut n = (data_end - seq).min(wnd_room).min(cwnd_room) / smss;
        n = n.min(budget);
        if self.fin_queued && seq + n * smss == data_end {
            // The FIN rides the last segment, which goes alone.
            n = n.saturating_sub(1);
        }
        if n < 2 || self.snd_up.is_some() || first.fin {
            return None;
        }
        let c = self.seg_common(now, common);
        if c.room < smss {
            return None;
        }
        let off = seq - self.tx_base;
        let payload = self.tx.slice_at(off, n * smss);
        // The ring's wrap ends a run: the segment across it is short.
        let n = payload.len() / smss;
        if n < 2 {
            return None;
        }
        let payload = &payload[..n * smss];
        let repr = Repr {
            seq_number: seq,
            psh: seq + n * smss == data_end,
            payload,
            ..c.base
        };
        let (src, dst) = (*self.local.ip(), *self.remote.ip());
        let sent = emit.run(src, dst, self.tos, &repr, smss)?.min(n);
        let ts = c.base.timestamp;
        if !first.rtx && !first.probe && !first.rescue && seq == self.snd_max {
            self.note_sent_new(now, seq, smss, sent, stats);
        } else {
            for i in 0..sent {
                let plan = Plan {
                    seq: seq + i * smss,
                    len: smss,
                    ..first
                };
                self.note_sent(now, &plan, smss, false, ts, stats);
            }
        }
        Some((sent, sent == n))
    }

    /// Idle restart (RFC 5681 §4.1): "if the TCP has not sent data in an
    /// interval exceeding the retransmission timeout", cwnd restarts at
    /// min(IW, cwnd). Called by the table before the app's data goes out.
    pub fn maybe_idle_restart(&mut self, now: Instant) {
        if self.state.is_synchronized()
            && self.snd_una == self.snd_max
            && now.saturating_since(self.last_tx) > self.rtt.rto()
        {
            self.cc.on_congestion(now, CongestionEvent::Idle);
        }
    }

    // ----- ICMP -------------------------------------------------------------

    /// RFC 5927 §4.1: the quoted sequence number must be in flight.
    pub fn icmp_seq_ok(&self, seq: SeqNumber) -> bool {
        if self.state == State::SynSent {
            return seq == self.iss;
        }
        self.snd_una <= seq && seq < self.snd_max.max(self.snd_una + 1)
    }

    /// PMTUD (RFC 1191): a smaller path MTU lowers the MSS and resends, with
    /// no congestion response.
    pub fn pmtu_drop(&mut self, mtu: u16) -> bool {
        let cur = self.mss_limit() as u16 + 40;
        let mtu = if mtu == 0 {
            // RFC 1191 §7 plateau table, next one below the current MTU.
            *[1492u16, 1006, 576, 296]
                .iter()
                .find(|&&p| p < cur)
                .unwrap_or(&296)
        } else {
            mtu
        };
        // Ignore implausible values (RFC 5927 §7.2; IPv4 minimum 68).
        if mtu < 68 || mtu >= cur {
            return false;
        }
        self.pmtu_mss = mtu.saturating_sub(40).max(MIN_MSS);
        self.cc.set_mss(self.smss());
        // Resend what is outstanding at the new size.
        if self.snd_una < self.snd_max && self.state.is_synchronized() {
            self.snd_nxt = self.snd_una;
            self.rtt_timed = None;
        }
        true
    }
}
