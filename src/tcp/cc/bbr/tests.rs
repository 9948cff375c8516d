//! BBR against a small closed-loop path model, unit checks of single
//! rules, and a randomized robustness test.

use super::*;
use crate::tcp::cc::NewReno;
use std::collections::VecDeque;

const MSS: usize = 1460;
const IW: usize = 10 * MSS;

/// xorshift64*, for the path model and the property test.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

// ---- the path model --------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Pkt {
    seq: u64,
    size: usize,
    send_time: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_send_time: Instant,
    app_limited: bool,
    tx_in_flight: usize,
    lost_at_send: u64,
    /// When its ACK reaches the sender; None if the path dropped it.
    ack_at: Option<Instant>,
}

/// One sender, one bottleneck of `bw` bytes/s with a drop-tail buffer of
/// `buffer` bytes, a base RTT, optional random loss, one ACK per segment.
/// The sender side does what ringstack's TCP does for a controller: it
/// sends while cwnd allows, at the pacing rate, samples delivery rate per
/// draft-cheng-iccrg-delivery-rate-estimation, counts rounds, declares a
/// segment lost when a later one is acknowledged (SACK-style), and signals
/// Loss / RecoveryEnd.
struct Sim<C: CongestionControl> {
    cc: C,
    now: Instant,
    bw: u64,
    base_rtt: Duration,
    buffer: usize,
    loss: f64,
    rng: XorShift,
    /// Application-limited sender: bytes per second the app supplies.
    app_rate: Option<u64>,
    app_budget: f64,
    app_last: Instant,
    next_send: Instant,
    link_free: Instant,
    flight: VecDeque<Pkt>,
    in_flight: usize,
    next_seq: u64,
    // Delivery-rate sampler state (C.*).
    delivered: u64,
    delivered_time: Instant,
    first_send_time: Instant,
    app_limited_mark: u64,
    lost: u64,
    next_round_delivered: u64,
    round_count: u64,
    srtt: Option<Duration>,
    min_rtt: Option<Duration>,
    recovery_point: Option<u64>,
    /// The last ACK started a round.
    last_round_start: bool,
}

impl<C: CongestionControl> Sim<C> {
    fn new(cc: C, bw: u64, rtt: Duration, buffer_bdps: f64, loss: f64, seed: u64) -> Sim<C> {
        let bdp = volume(bw, rtt) as f64;
        Sim {
            cc,
            now: Instant::ZERO,
            bw,
            base_rtt: rtt,
            buffer: (bdp * buffer_bdps) as usize,
            loss,
            rng: XorShift::new(seed),
            app_rate: None,
            app_budget: 0.0,
            app_last: Instant::ZERO,
            next_send: Instant::ZERO,
            link_free: Instant::ZERO,
            flight: VecDeque::new(),
            in_flight: 0,
            next_seq: 0,
            delivered: 0,
            delivered_time: Instant::ZERO,
            first_send_time: Instant::ZERO,
            app_limited_mark: 0,
            lost: 0,
            next_round_delivered: 0,
            round_count: 0,
            srtt: None,
            min_rtt: None,
            recovery_point: None,
            last_round_start: false,
        }
    }

    fn bdp(&self) -> u64 {
        volume(self.bw, self.base_rtt)
    }

    fn queue_bytes(&self) -> u64 {
        volume(self.bw, self.link_free.saturating_since(self.now))
    }

    fn tx_time(&self, size: usize) -> Duration {
        Duration::from_micros(size as u64 * 1_000_000 / self.bw)
    }

    fn refill_app(&mut self) {
        if let Some(rate) = self.app_rate {
            let dt = self.now.saturating_since(self.app_last).as_secs_f64();
            self.app_budget = (self.app_budget + rate as f64 * dt).min(4.0 * MSS as f64);
        }
        self.app_last = self.now;
    }

    fn has_data(&self) -> bool {
        self.app_rate.is_none() || self.app_budget >= MSS as f64
    }

    /// Advances to the next event and handles it; `f` sees every ACK.
    fn run_until(&mut self, end: Instant, mut f: impl FnMut(&Self)) {
        while self.now < end {
            let ack_t = self.flight.iter().find_map(|p| p.ack_at);
            let window_open = self.in_flight + MSS <= self.cc.window();
            self.refill_app();
            let mut send_t = None;
            let mut data_t = None;
            if window_open {
                if self.has_data() {
                    send_t = Some(self.next_send.max(self.now));
                } else {
                    // The app is the limit (the rate draft's C.app_limited).
                    self.app_limited_mark = (self.delivered + self.in_flight as u64).max(1);
                    let rate = self.app_rate.unwrap_or(1).max(1) as f64;
                    let wait = (MSS as f64 - self.app_budget) / rate;
                    data_t = Some(self.now + Duration::from_micros((wait * 1e6) as u64 + 1));
                }
            }
            let next = [ack_t, send_t, data_t, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            self.now = next.max(self.now);
            if ack_t == Some(self.now) {
                self.ack();
                f(self);
            } else if send_t == Some(self.now) {
                self.refill_app();
                self.send();
            }
        }
    }

    fn send(&mut self) {
        let t = self.now;
        let size = MSS;
        if self.in_flight == 0 {
            self.first_send_time = t;
            self.delivered_time = t;
        }
        let dropped =
            self.rng.chance(self.loss) || self.queue_bytes() as usize + size > self.buffer;
        let ack_at = if dropped {
            None
        } else {
            let depart = self.link_free.max(t) + self.tx_time(size);
            self.link_free = depart;
            Some(depart + self.base_rtt)
        };
        self.in_flight += size;
        self.flight.push_back(Pkt {
            seq: self.next_seq,
            size,
            send_time: t,
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_send_time: self.first_send_time,
            app_limited: self.app_limited_mark != 0,
            tx_in_flight: self.in_flight,
            lost_at_send: self.lost,
            ack_at,
        });
        self.next_seq += 1;
        if self.app_rate.is_some() {
            self.app_budget -= size as f64;
        }
        self.cc.on_sent(t, size, self.in_flight);
        self.next_send = match self.cc.pacing_rate() {
            Some(r) => t + Duration::from_micros(size as u64 * 1_000_000 / r.max(1)),
            None => t,
        };
    }

    fn ack(&mut self) {
        let t = self.now;
        let mut newly_lost = 0;
        while self.flight.front().is_some_and(|p| p.ack_at.is_none()) {
            newly_lost += self.flight.pop_front().map_or(0, |p| p.size);
        }
        let Some(p) = self.flight.pop_front() else {
            return;
        };
        let prior_in_flight = self.in_flight;
        self.lost += newly_lost as u64;
        self.in_flight -= newly_lost;
        if newly_lost > 0 && self.recovery_point.is_none() {
            self.recovery_point = Some(self.next_seq);
            self.cc.on_congestion(
                t,
                CongestionEvent::Loss {
                    in_flight: self.in_flight,
                },
            );
        }
        self.in_flight -= p.size;
        self.delivered += p.size as u64;
        self.delivered_time = t;
        if self.app_limited_mark != 0 && self.delivered > self.app_limited_mark {
            self.app_limited_mark = 0;
        }
        let rtt = t - p.send_time;
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => Duration::from_micros((s.total_micros() * 7 + rtt.total_micros()) / 8),
        });
        let min_rtt = self.min_rtt.map_or(rtt, |m| m.min(rtt));
        self.min_rtt = Some(min_rtt);
        let send_elapsed = p.send_time - p.first_send_time;
        let ack_elapsed = t - p.delivered_time;
        self.first_send_time = p.send_time;
        let interval = send_elapsed.max(ack_elapsed);
        let rs_delivered = self.delivered - p.delivered;
        let rate = (interval >= min_rtt && interval > Duration::ZERO).then(|| RateSample {
            delivery_rate: rs_delivered * 1_000_000 / interval.total_micros(),
            delivered: rs_delivered,
            interval,
            is_app_limited: p.app_limited,
            rtt: Some(rtt),
            tx_in_flight: p.tx_in_flight,
            lost: self.lost - p.lost_at_send,
            prior_delivered: p.delivered,
        });
        let round_start = p.delivered >= self.next_round_delivered;
        if round_start {
            self.next_round_delivered = self.delivered;
            self.round_count += 1;
        }
        self.last_round_start = round_start;
        let sample = AckSample {
            rtt: Some(rtt),
            srtt: self.srtt,
            min_rtt: self.min_rtt,
            bytes_acked: p.size,
            delivered: p.size,
            lost: newly_lost,
            prior_in_flight,
            in_flight: self.in_flight,
            in_recovery: self.recovery_point.is_some(),
            app_limited: self.app_limited_mark != 0,
            rate,
            round_start,
            round_count: self.round_count,
            total_delivered: self.delivered,
        };
        self.cc.on_ack(t, &sample);
        if self.recovery_point.is_some_and(|rp| p.seq >= rp) {
            self.recovery_point = None;
            self.cc.on_congestion(
                t,
                CongestionEvent::RecoveryEnd {
                    in_flight: self.in_flight,
                },
            );
        }
    }
}

const B: u64 = 1_250_000; // 10 Mbit/s: a BDP of 34 segments
const R: Duration = Duration::from_millis(40);
/// 100 Mbit/s: a BDP of 342 segments, enough for per-round loss rates to
/// be resolved at 1 % granularity and for Startup to take several rounds.
const BIG_B: u64 = 12_500_000;

fn bbr_sim(buffer_bdps: f64, loss: f64, seed: u64) -> Sim<Bbr> {
    Sim::new(Bbr::with_seed(MSS, IW, seed), B, R, buffer_bdps, loss, seed)
}

fn secs(s: f64) -> Instant {
    Instant::from_micros((s * 1e6) as i64)
}

fn within(x: u64, target: u64, frac: f64) -> bool {
    (x as f64 - target as f64).abs() <= target as f64 * frac
}

// ---- behaviour on the path model ---------------------------------------------

#[test]
fn startup_doubles_the_rate_each_round_and_exits_to_drain_on_a_plateau() {
    // §5.3.1.1: "BBR's Startup state does an exponential search of the rate
    // space, doubling the sending rate each round." §5.3.1.2: "if BBR counts
    // several (three) non-application-limited rounds where attempts to
    // significantly increase the delivery rate actually result in little
    // increase (less than 25 percent), then it estimates that it has fully
    // utilized the per-flow available bandwidth".
    let mut sim = Sim::new(Bbr::with_seed(MSS, IW, 1), BIG_B, R, 2.0, 0.0, 1);
    let mut per_round = Vec::new();
    let mut exit = None;
    sim.run_until(secs(3.0), |s| {
        if s.cc.state() == BbrState::Startup && s.last_round_start {
            per_round.push(s.cc.max_bw());
        }
        if exit.is_none() && s.cc.state() != BbrState::Startup {
            exit = Some((s.round_count, s.cc.max_bw(), s.cc.state()));
        }
    });
    let (exit_round, bw_at_exit, next) = exit.expect("left Startup");
    eprintln!("startup max_bw per round: {per_round:?}; exit at round {exit_round}");
    assert_eq!(next, BbrState::Drain);
    // Growth while far below the bottleneck: about 2x per round.
    let growing: Vec<u64> = per_round
        .iter()
        .copied()
        .filter(|&b| b > 0 && b < BIG_B / 3)
        .collect();
    assert!(growing.len() >= 4, "{per_round:?}");
    // (The first step is larger: the initial window leaves at the 1 ms
    // default rate and its samples are not rate-limited by the sender.)
    let steps = &growing[1..];
    for w in steps.windows(2) {
        let g = w[1] as f64 / w[0] as f64;
        assert!(g >= 1.25, "round growth {g:.2} in {per_round:?}");
    }
    let mean =
        (steps[steps.len() - 1] as f64 / steps[0] as f64).powf(1.0 / (steps.len() - 1) as f64);
    eprintln!("mean growth per round {mean:.2}");
    assert!((1.7..=2.5).contains(&mean), "mean growth {mean:.2}");
    // Exit within a few rounds of the plateau, with the bandwidth found.
    let plateau = per_round
        .iter()
        .position(|&b| b >= BIG_B * 9 / 10)
        .expect("reached B");
    let rounds_on_plateau = per_round.len() - plateau;
    assert!((2..=5).contains(&rounds_on_plateau), "{per_round:?}");
    assert!(
        within(bw_at_exit, BIG_B, 0.10),
        "max_bw {bw_at_exit} vs {BIG_B}"
    );
    assert!(sim.cc.inflight_longterm().is_none(), "no loss exit");
}

#[test]
fn drain_empties_the_queue_then_enters_probe_bw() {
    // §5.3.2: "In Drain, when the amount of data in flight is less than or
    // equal to the estimated BDP, meaning BBR estimates that the queue at
    // the bottleneck link has been fully drained, then BBR exits Drain and
    // enters ProbeBW."
    let mut sim = bbr_sim(2.0, 0.0, 2);
    let mut prev = BbrState::Startup;
    let mut drain_at = None;
    let mut seen = None;
    let mut max_queue_in_startup = 0;
    sim.run_until(secs(3.0), |s| {
        let st = s.cc.state();
        if st == BbrState::Startup {
            max_queue_in_startup = max_queue_in_startup.max(s.queue_bytes());
        }
        if st == BbrState::Drain && prev == BbrState::Startup {
            drain_at = Some(s.round_count);
        }
        if seen.is_none() && prev == BbrState::Drain && st != BbrState::Drain {
            seen = Some((st, s.in_flight as u64, s.queue_bytes(), s.round_count));
        }
        prev = st;
    });
    let (st, in_flight, queue, round) = seen.expect("left Drain");
    let drain_rounds = round - drain_at.unwrap();
    eprintln!(
        "startup queue peak {max_queue_in_startup} B; drain left after {drain_rounds} rounds \
         with in_flight {in_flight} (BDP {}), queue {queue}",
        sim.bdp()
    );
    // EnterProbeBW() starts in DOWN, which may pass to CRUISE on the same
    // ACK when inflight is already below the BDP.
    assert!(matches!(
        st,
        BbrState::ProbeBwDown | BbrState::ProbeBwCruise
    ));
    assert!(
        max_queue_in_startup > sim.bdp() / 2,
        "startup built a queue"
    );
    // Inflight(1.0) is the estimated BDP plus the offload budget.
    assert!(in_flight <= sim.bdp() * 11 / 10 + sim.cc.offload_budget);
    assert!(queue <= sim.bdp() / 10, "queue {queue}");
    assert!(drain_rounds <= 3);
}

#[test]
fn max_bw_tracks_the_bottleneck_within_ten_percent() {
    // §5.5.3: "BBR estimates BBR.max_bw using the windowed maximum recent
    // delivery rate sample seen by the connection over recent history."
    let mut sim = bbr_sim(1.0, 0.0, 3);
    let (mut lo, mut hi) = (u64::MAX, 0);
    let mut delivered_at_5 = 0;
    sim.run_until(secs(20.0), |s| {
        if s.now >= secs(5.0) {
            lo = lo.min(s.cc.max_bw());
            hi = hi.max(s.cc.max_bw());
            if delivered_at_5 == 0 {
                delivered_at_5 = s.delivered;
            }
        }
    });
    let goodput = (sim.delivered - delivered_at_5) as f64 / 15.0;
    eprintln!("max_bw over 5..20 s in [{lo}, {hi}], goodput {goodput:.0} B/s, B = {B}");
    assert!(within(lo, B, 0.10) && within(hi, B, 0.10));
    assert!(goodput >= 0.9 * B as f64);
}

#[test]
fn probe_bw_cycles_through_down_cruise_refill_up() {
    // §5.3.3: "a BBR flow in ProbeBW mode cycles through the four ProbeBW
    // states (DOWN, CRUISE, REFILL, and UP)".
    let mut sim = bbr_sim(1.0, 0.0, 4);
    let mut seq: Vec<BbrState> = Vec::new();
    let mut up_gains = Vec::new();
    sim.run_until(secs(20.0), |s| {
        let st = s.cc.state();
        if seq.last() != Some(&st) {
            seq.push(st);
            if st == BbrState::ProbeBwUp {
                up_gains.push((s.cc.pacing_gain(), s.cc.cwnd_gain()));
            }
        }
    });
    use BbrState::*;
    let cycle = [
        ProbeBwDown,
        ProbeBwCruise,
        ProbeBwRefill,
        ProbeBwUp,
        ProbeBwDown,
    ];
    let full = seq.windows(5).filter(|w| *w == cycle).count();
    eprintln!("{full} full cycles in 20 s: {seq:?}");
    assert!(full >= 3, "{seq:?}");
    assert!(up_gains.iter().all(|&g| g == (1.25, 2.25)));
}

#[test]
fn probe_rtt_comes_every_probe_rtt_interval_and_holds_half_a_bdp_for_200ms() {
    // §5.3.4.1: "if the BBR.probe_rtt_min_delay estimate has not been
    // updated (i.e., by getting a lower RTT measurement) for more than
    // BBR.ProbeRTTInterval = 5 seconds, then BBR enters ProbeRTT" ... "After
    // maintaining C.inflight at BBR.ProbeRTTCwndGain*BBR.bdp for at least
    // BBR.ProbeRTTDuration (200 ms) and at least one packet-timed round
    // trip, BBR leaves ProbeRTT".
    // The path's RTT never drops below its base, so min RTT never drops.
    let mut sim = bbr_sim(1.0, 0.0, 5);
    let mut entries = Vec::new();
    let mut spans = Vec::new();
    let mut max_cwnd_in_probe_rtt = 0;
    let mut prev = BbrState::Startup;
    sim.run_until(secs(32.0), |s| {
        let st = s.cc.state();
        if st == BbrState::ProbeRtt {
            max_cwnd_in_probe_rtt = max_cwnd_in_probe_rtt.max(s.cc.window());
            if prev != BbrState::ProbeRtt {
                entries.push(s.now);
            }
        } else if prev == BbrState::ProbeRtt {
            spans.push(s.now - *entries.last().unwrap());
        }
        prev = st;
    });
    let gaps: Vec<Duration> = entries.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "ProbeRTT at {entries:?}, gaps {gaps:?}, lasting {spans:?}, max cwnd {max_cwnd_in_probe_rtt} \
         (BDP {})",
        sim.bdp()
    );
    assert_eq!(entries.len() as u64, sim.cc.probe_rtt_count());
    assert!(entries.len() >= 5);
    assert!(entries[0] >= Instant::ZERO + PROBE_RTT_INTERVAL);
    for g in &gaps {
        assert!(*g >= PROBE_RTT_INTERVAL && *g <= PROBE_RTT_INTERVAL + Duration::from_millis(600));
    }
    for d in &spans {
        assert!(*d >= PROBE_RTT_DURATION && *d <= PROBE_RTT_DURATION + R + R);
    }
    let cap = (sim.bdp() as f64 * 0.55).max((4 * MSS) as f64) as usize;
    assert!(
        max_cwnd_in_probe_rtt <= cap,
        "{max_cwnd_in_probe_rtt} > {cap}"
    );
    assert_eq!(sim.cc.info().min_rtt, sim.min_rtt);
}

/// Goodput (bytes/s) over `from..to` seconds.
fn goodput<C: CongestionControl>(sim: &mut Sim<C>, from: f64, to: f64) -> f64 {
    sim.run_until(secs(from), |_| {});
    let d0 = sim.delivered;
    sim.run_until(secs(to), |_| {});
    (sim.delivered - d0) as f64 / (to - from)
}

#[test]
fn one_percent_random_loss_does_not_collapse_the_bandwidth_estimate() {
    // §1: "BBR offers substantially higher throughput for bottlenecks with
    // shallow buffers or random losses"; §3.1: full throughput is "achieved
    // with average packet loss rates of up to 1%".
    let mut bbr = Sim::new(Bbr::with_seed(MSS, IW, 6), BIG_B, R, 1.0, 0.01, 6);
    let bbr_goodput = goodput(&mut bbr, 10.0, 30.0);
    let mut reno = Sim::new(NewReno::new(MSS, IW), BIG_B, R, 1.0, 0.01, 6);
    let reno_goodput = goodput(&mut reno, 10.0, 30.0);
    let loss = bbr.lost as f64 / (bbr.lost + bbr.delivered) as f64;
    eprintln!(
        "1% loss (measured {:.2}%): BBR {bbr_goodput:.0} B/s (max_bw {}, bw {}), \
         NewReno {reno_goodput:.0} B/s, B = {BIG_B}",
        loss * 100.0,
        bbr.cc.max_bw(),
        bbr.cc.bw(),
    );
    assert!(within(bbr.cc.max_bw(), BIG_B, 0.10));
    assert!(bbr_goodput >= 0.8 * BIG_B as f64);
    assert!(reno_goodput < 0.3 * BIG_B as f64);
}

#[test]
fn heavy_loss_in_startup_exits_startup_before_the_plateau_and_undo_returns() {
    // §5.3.1.3: Startup exits when "The connection has been in fast
    // recovery for at least one full packet-timed round trip", "The loss
    // rate over the time scale of a single full round trip exceeds
    // BBR.LossThresh (2%)" and "There are at least BBRStartupFullLossCnt=6
    // discontiguous sequence ranges lost in that round trip."
    let big_b = 10_000_000;
    let rtt = Duration::from_millis(100);
    let mut sim = Sim::new(Bbr::with_seed(MSS, IW, 7), big_b, rtt, 4.0, 0.05, 7);
    let mut exit = None;
    sim.run_until(secs(4.0), |s| {
        if exit.is_none() && s.cc.state() != BbrState::Startup {
            exit = Some((s.now, s.cc.max_bw(), s.cc.state()));
        }
    });
    let (at, bw, st) = exit.expect("left Startup");
    eprintln!(
        "5% loss: left Startup at {at} for {st:?} with max_bw {bw} (B = {big_b}), \
         inflight_longterm {:?}",
        sim.cc.inflight_longterm()
    );
    assert_eq!(st, BbrState::Drain);
    assert!(bw < big_b * 3 / 4, "left on loss, not on a plateau");
    assert!(sim.cc.full_bw_reached());
    // §5.5.11.2: "if the connection transitioned out of Startup ... due to
    // the loss recovery episode ... BBR returns to the state it was in".
    let mut c = sim.cc.clone();
    if c.undo_state == Some(BbrState::Startup) && c.state() != BbrState::ProbeRtt {
        c.on_congestion(sim.now, CongestionEvent::Undo);
        assert_eq!(c.state(), BbrState::Startup);
        assert!(!c.full_bw_reached());
        assert_eq!(c.inflight_longterm(), None);
    }
}

#[test]
fn app_limited_samples_do_not_lower_max_bw() {
    // §5.5.4: "By default, the estimator discards application-limited
    // samples, since by definition they reflect application limits."
    let mut sim = bbr_sim(1.0, 0.0, 8);
    sim.run_until(secs(8.0), |_| {});
    let before = sim.cc.max_bw();
    sim.app_rate = Some(B / 5);
    let d0 = sim.delivered;
    let mut lowest = u64::MAX;
    sim.run_until(secs(20.0), |s| lowest = lowest.min(s.cc.max_bw()));
    let app_goodput = (sim.delivered - d0) as f64 / 12.0;
    eprintln!("max_bw {before} before, lowest {lowest} over 12 s at {app_goodput:.0} B/s");
    assert!(within(before, B, 0.10));
    assert!(lowest >= before * 9 / 10);
    assert!(within(app_goodput as u64, B / 5, 0.10));
}

// ---- single rules -------------------------------------------------------------

fn ack_with_rate(rate: u64, delivered: u64, prior_delivered: u64, app_limited: bool) -> AckSample {
    AckSample {
        rtt: Some(Duration::from_millis(10)),
        srtt: Some(Duration::from_millis(10)),
        bytes_acked: MSS,
        delivered: MSS,
        in_flight: 4 * MSS,
        prior_in_flight: 5 * MSS,
        total_delivered: delivered,
        rate: Some(RateSample {
            delivery_rate: rate,
            delivered: 10 * MSS as u64,
            interval: Duration::from_millis(10),
            is_app_limited: app_limited,
            rtt: Some(Duration::from_millis(10)),
            tx_in_flight: 10 * MSS,
            lost: 0,
            prior_delivered,
        }),
        ..AckSample::default()
    }
}

#[test]
fn initial_pacing_rate_is_startup_gain_times_initial_cwnd_over_srtt_or_1ms() {
    // §5.6.2: "nominal_bandwidth = C.InitialCwnd / (C.srtt ? C.srtt : 1ms)
    // C.pacing_rate = BBR.StartupPacingGain * nominal_bandwidth".
    let mut c = Bbr::new(MSS, IW);
    let expect = (2.77 * IW as f64 * 1000.0) as u64;
    assert!(within(c.pacing_rate().unwrap(), expect, 0.001));
    assert_eq!(c.info().state, "startup");
    c.on_ack(
        Instant::from_millis(100),
        &AckSample {
            srtt: Some(Duration::from_millis(100)),
            rtt: Some(Duration::from_millis(100)),
            ..AckSample::default()
        },
    );
    let expect = (2.77 * IW as f64 * 10.0) as u64;
    assert!(within(c.pacing_rate().unwrap(), expect, 0.001));
}

#[test]
fn startup_pacing_rate_is_not_lowered_by_a_lower_sample() {
    // §5.6.2: "if (BBR.full_bw_reached || rate > C.pacing_rate)
    // C.pacing_rate = rate".
    let mut c = Bbr::new(MSS, IW);
    c.on_ack(
        Instant::from_millis(10),
        &ack_with_rate(100_000_000, 10_000, 0, false),
    );
    let high = c.pacing_rate().unwrap();
    assert!(within(high, (100_000_000.0 * 2.77 * 0.99) as u64, 0.001));
    c.on_ack(
        Instant::from_millis(20),
        &ack_with_rate(1_000, 20_000, 10_000, false),
    );
    assert_eq!(c.pacing_rate(), Some(high));
}

#[test]
fn app_limited_sample_below_max_bw_is_ignored_but_a_higher_one_counts() {
    // §5.5.4: "the estimator does use application-limited samples if the
    // measured delivery rate happens to be larger than the current
    // BBR.max_bw estimate".
    let mut c = Bbr::new(MSS, IW);
    c.on_ack(
        Instant::from_millis(10),
        &ack_with_rate(1_000_000, 10_000, 0, false),
    );
    c.on_ack(
        Instant::from_millis(20),
        &ack_with_rate(500_000, 20_000, 10_000, true),
    );
    assert_eq!(c.max_bw(), 1_000_000);
    c.on_ack(
        Instant::from_millis(30),
        &ack_with_rate(2_000_000, 30_000, 20_000, true),
    );
    assert_eq!(c.max_bw(), 2_000_000);
    assert_eq!(c.info().bw_estimate, Some(2_000_000));
}

#[test]
fn timeout_leaves_room_for_one_segment_and_recovery_end_restores_cwnd() {
    // §5.6.4.4: "Upon a retransmission timeout (RTO), BBR conservatively
    // reduces C.cwnd to a value that will allow 1 C.SMSS to be
    // transmitted." ... "When BBR exits loss recovery it restores C.cwnd to
    // the "last known good" value".
    let mut c = Bbr::new(MSS, IW);
    let before = c.window();
    c.on_congestion(
        Instant::from_secs(1),
        CongestionEvent::Timeout {
            in_flight: 0,
            first: true,
        },
    );
    assert_eq!(c.window(), MSS);
    c.on_congestion(
        Instant::from_secs(2),
        CongestionEvent::Timeout {
            in_flight: 2 * MSS,
            first: false,
        },
    );
    assert_eq!(c.window(), 3 * MSS);
    c.on_congestion(
        Instant::from_secs(3),
        CongestionEvent::RecoveryEnd { in_flight: 0 },
    );
    assert_eq!(c.window(), before);
}

#[test]
fn undo_restores_cwnd_and_the_saved_bounds() {
    // §5.5.11.2: "It restores the congestion window, resets the loss round
    // state and the full bandwidth detector, and restores the short-term
    // and long-term model parameters to be at least the values saved
    // before the loss episode."
    let mut c = Bbr::new(MSS, IW);
    c.inflight_longterm = 100 * MSS as u64;
    c.on_congestion(
        Instant::from_secs(1),
        CongestionEvent::Loss { in_flight: IW },
    );
    c.inflight_longterm = 20 * MSS as u64;
    c.bw_shortterm = 5;
    c.on_congestion(
        Instant::from_secs(1),
        CongestionEvent::Timeout {
            in_flight: 0,
            first: false,
        },
    );
    c.on_congestion(Instant::from_secs(2), CongestionEvent::Undo);
    assert_eq!(c.window(), IW);
    assert_eq!(c.inflight_longterm(), Some(100 * MSS as u64));
    assert_eq!(c.bw_shortterm, INF);
}

#[test]
fn restart_from_idle_in_probe_bw_paces_at_bw_and_keeps_cwnd() {
    // §5.4.1: "When restarting from idle in ProbeBW states, BBR leaves
    // C.cwnd as-is and paces packets at exactly BBR.bw".
    let mut sim = bbr_sim(1.0, 0.0, 9);
    sim.run_until(secs(9.0), |_| {});
    // Let everything drain, as an idle application would.
    let mut c = sim.cc.clone();
    assert!(c.state().is_probe_bw(), "{:?}", c.state());
    let cwnd = c.window();
    c.on_sent(sim.now + Duration::from_secs(1), MSS, MSS);
    let expect = (c.bw() as f64 * 0.99) as u64;
    assert!(within(c.pacing_rate().unwrap(), expect, 0.001));
    assert_eq!(c.window(), cwnd);
    assert!(c.idle_restart);
    // The Idle event does the same.
    let mut d = sim.cc.clone();
    d.on_congestion(sim.now, CongestionEvent::Idle);
    assert_eq!(d.pacing_rate(), c.pacing_rate());
}

#[test]
fn probe_rtt_is_skipped_when_restarting_from_idle() {
    // §5.3.4.2: "when restarting from idle and finding that the
    // BBR.probe_rtt_min_delay has expired, BBR does not enter ProbeRTT; the
    // idleness is deemed a sufficient attempt to coordinate to drain the
    // queue."
    let mut c = Bbr::new(MSS, IW);
    c.on_sent(Instant::ZERO, MSS, MSS);
    c.on_ack(
        Instant::from_millis(10),
        &ack_with_rate(1_000_000, 10_000, 0, false),
    );
    c.on_sent(Instant::from_secs(7), MSS, MSS);
    let mut s = ack_with_rate(1_000_000, 20_000, 10_000, false);
    s.rate = s.rate.map(|r| RateSample { delivered: 0, ..r });
    c.on_ack(Instant::from_secs(7), &s);
    assert_ne!(c.state(), BbrState::ProbeRtt);
    assert_eq!(c.probe_rtt_count(), 0);
}

#[test]
fn state_names_match_ccinfo() {
    use BbrState::*;
    let names: Vec<&str> = [
        Startup,
        Drain,
        ProbeBwDown,
        ProbeBwCruise,
        ProbeBwRefill,
        ProbeBwUp,
        ProbeRtt,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "startup",
            "drain",
            "probe-bw-down",
            "probe-bw-cruise",
            "probe-bw-refill",
            "probe-bw-up",
            "probe-rtt"
        ]
    );
}

#[test]
fn factory_builds_bbr() {
    let c = crate::tcp::cc::new(crate::tcp::config::CcAlgorithm::Bbr, MSS, IW);
    assert_eq!(c.name(), "bbr");
    assert!(c.pacing_rate().is_some());
}

// ---- robustness -----------------------------------------------------------------

fn random_duration(rng: &mut XorShift) -> Duration {
    match rng.below(10) {
        0 => Duration::ZERO,
        1 => Duration::from_micros(rng.below(1000)),
        _ => Duration::from_micros(rng.below(10_000_001)),
    }
}

fn random_u64(rng: &mut XorShift) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.next(),
        3 => rng.below(1000),
        _ => rng.below(1 << 34),
    }
}

fn random_size(rng: &mut XorShift) -> usize {
    match rng.below(8) {
        0 => 0,
        1 => usize::MAX,
        2 => rng.next() as usize,
        _ => rng.below(1 << 22) as usize,
    }
}

#[test]
fn random_operations_never_break_the_invariants() {
    for seed in 0..50u64 {
        let mut rng = XorShift::new(seed + 1000);
        let mss = [1, 536, 1460, 9000][seed as usize % 4];
        let mut c = Bbr::with_seed(mss, [0, 1, 10 * mss, 1 << 40][seed as usize % 4], seed);
        let mut now = Instant::from_micros(rng.below(1 << 40) as i64);
        let mut state = c.state();
        for step in 0..10_000 {
            match rng.below(16) {
                0..=2 => c.on_sent(now, random_size(&mut rng), random_size(&mut rng)),
                3..=9 => {
                    let rate = (rng.below(4) != 0).then(|| RateSample {
                        delivery_rate: random_u64(&mut rng),
                        delivered: random_u64(&mut rng),
                        interval: random_duration(&mut rng),
                        is_app_limited: rng.below(2) == 0,
                        rtt: (rng.below(4) != 0).then(|| random_duration(&mut rng)),
                        tx_in_flight: random_size(&mut rng),
                        lost: random_u64(&mut rng),
                        prior_delivered: random_u64(&mut rng),
                    });
                    let s = AckSample {
                        rtt: (rng.below(3) != 0).then(|| random_duration(&mut rng)),
                        srtt: (rng.below(3) != 0).then(|| random_duration(&mut rng)),
                        min_rtt: (rng.below(3) != 0).then(|| random_duration(&mut rng)),
                        bytes_acked: random_size(&mut rng),
                        delivered: random_size(&mut rng),
                        lost: if rng.below(3) == 0 {
                            random_size(&mut rng)
                        } else {
                            0
                        },
                        prior_in_flight: random_size(&mut rng),
                        in_flight: random_size(&mut rng),
                        in_recovery: rng.below(4) == 0,
                        app_limited: rng.below(3) == 0,
                        rate,
                        round_start: rng.below(3) == 0,
                        round_count: random_u64(&mut rng),
                        total_delivered: random_u64(&mut rng),
                    };
                    c.on_ack(now, &s);
                }
                10 => c.on_congestion(
                    now,
                    CongestionEvent::Loss {
                        in_flight: random_size(&mut rng),
                    },
                ),
                11 => c.on_congestion(
                    now,
                    CongestionEvent::Timeout {
                        in_flight: random_size(&mut rng),
                        first: rng.below(2) == 0,
                    },
                ),
                12 => c.on_congestion(
                    now,
                    CongestionEvent::RecoveryEnd {
                        in_flight: random_size(&mut rng),
                    },
                ),
                13 => c.on_congestion(
                    now,
                    if rng.below(2) == 0 {
                        CongestionEvent::Idle
                    } else {
                        CongestionEvent::Undo
                    },
                ),
                14 => now += random_duration(&mut rng),
                _ => {
                    c.set_mss([0, 1, 3, 535, 1461, 8999, 65_535, usize::MAX][rng.below(8) as usize])
                }
            }
            let w = c.window();
            let ctx = format!("seed {seed} step {step} state {:?}", c.state());
            assert!(w >= c.mss as usize, "{ctx}: window {w} < mss {}", c.mss);
            assert!(w <= 1 << 30, "{ctx}: window {w}");
            let rate = c.pacing_rate().expect("BBR always paces");
            assert!(rate > 0, "{ctx}");
            assert!(
                c.pacing_gain().is_finite() && c.cwnd_gain().is_finite(),
                "{ctx}"
            );
            assert!(
                state.can_become(c.state()) || c.illegal_transitions == 0,
                "{ctx}: {state:?} -> {:?}",
                c.state()
            );
            assert_eq!(c.illegal_transitions, 0, "{ctx}: from {state:?}");
            state = c.state();
            let _ = c.info();
        }
    }
}
