//! The congestion-control lab: bulk TCP flows from one `Tcp` table to
//! another across a dumbbell with one bottleneck — a rate, a drop-tail
//! queue of a given depth, random loss, and a propagation delay each way —
//! all in simulated time, seeded, so every number it reports is the same on
//! every run. Used by `tests/cc_sim.rs` (assertions and the snapshot of
//! `docs/CC-GRID.md`) and by `examples/cc_grid.rs` (the one command that
//! regenerates the table and the plot data).
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddrV4};

use ringstack::tcp::wire::{Packet, Repr};
use ringstack::tcp::{CcAlgorithm, ConnHandle, ConnStats, Tcp, TcpConfig};
use ringstack::time::{Duration, Instant};

pub const SENDER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const RECEIVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// IPv4 + Ethernet bytes a segment carries besides its TCP header, counted
/// against the bottleneck like a real link would.
pub const LINK_OVERHEAD: usize = 20 + 14;

/// Payload over wire bytes of a full-size segment: 1448 bytes of data
/// behind 32 of TCP header (with timestamps), 20 of IPv4 and 14 of
/// Ethernet.
pub const PAYLOAD_EFFICIENCY: f64 = 1448.0 / (1448.0 + 32.0 + LINK_OVERHEAD as f64);

#[derive(Clone, Debug)]
pub struct Scenario {
    pub cc: CcAlgorithm,
    /// Bottleneck rate, bits per second.
    pub rate_bps: u64,
    /// Round-trip propagation delay (split evenly both ways).
    pub rtt: Duration,
    /// Bottleneck queue depth as a multiple of the BDP.
    pub buffer_bdp: f64,
    /// Random loss on the data direction, as a probability.
    pub loss: f64,
    pub duration: Duration,
    /// Utilisation and queueing delay are measured after this much time.
    pub warmup: Duration,
    /// Flows, each with its start offset.
    pub flows: Vec<Duration>,
    pub seed: u64,
    /// Record a time series sample this often (None: no series).
    pub series_every: Option<Duration>,
    /// Pace NewReno and CUBIC too (`TcpConfig::pace_all`).
    pub pace_all: bool,
}

impl Scenario {
    pub fn new(
        cc: CcAlgorithm,
        rate_bps: u64,
        rtt_ms: u64,
        buffer_bdp: f64,
        loss: f64,
    ) -> Scenario {
        let rtt = Duration::from_millis(rtt_ms);
        // Long enough for slow start and a few congestion epochs at the
        // largest BDPs, and for BBR to cycle through PROBE_BW several times.
        let duration = Duration::from_secs(20).max(rtt.saturating_mul(100));
        Scenario {
            cc,
            rate_bps,
            rtt,
            buffer_bdp,
            loss,
            duration,
            warmup: Duration::from_micros(duration.total_micros() / 4),
            flows: vec![Duration::ZERO],
            seed: 1,
            series_every: None,
            pace_all: false,
        }
    }

    pub fn bdp_bytes(&self) -> usize {
        (self.rate_bps / 8 * self.rtt.total_micros() / 1_000_000) as usize
    }

    pub fn queue_bytes(&self) -> usize {
        ((self.bdp_bytes() as f64 * self.buffer_bdp) as usize).max(2 * 1514)
    }
}

/// One row of a time series.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub t: Duration,
    pub flow: usize,
    pub cwnd: usize,
    /// Receiver goodput over the last interval, bits per second.
    pub goodput_bps: f64,
    pub delivery_rate_bps: f64,
    pub srtt: Option<Duration>,
    pub pacing_bps: Option<f64>,
    pub queue_bytes: usize,
    pub state: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Goodput after warm-up (all flows) over the most goodput the
    /// bottleneck can carry: full-size segments, [`PAYLOAD_EFFICIENCY`] of
    /// the bytes on the wire. 1.0 is a link busy with nothing but new data.
    pub utilisation: f64,
    /// Goodput after warm-up over the raw bottleneck rate.
    pub goodput_share: f64,
    /// Mean time a delivered data segment waited in the bottleneck queue
    /// after warm-up.
    pub mean_queue_delay: Duration,
    /// Retransmitted segments over data segments sent.
    pub retrans_ratio: f64,
    pub retransmits: u64,
    /// Per-flow goodput after warm-up (bits per second), for fairness.
    pub flow_goodput_bps: Vec<f64>,
    pub queue_drops: u64,
    pub random_drops: u64,
    /// Segments the receiver dropped for want of out-of-order room.
    pub receiver_ooo_drops: u64,
    pub series: Vec<Sample>,
    pub final_stats: Vec<ConnStats>,
}

impl Outcome {
    /// Jain's fairness index over the flows' goodputs.
    pub fn jain(&self) -> f64 {
        let n = self.flow_goodput_bps.len() as f64;
        let s: f64 = self.flow_goodput_bps.iter().sum();
        let q: f64 = self.flow_goodput_bps.iter().map(|x| x * x).sum();
        if q == 0.0 {
            0.0
        } else {
            s * s / (n * q)
        }
    }
}

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Wire {
    bytes: Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    queued: Duration,
}

/// Runs the scenario.
pub fn run(sc: &Scenario) -> Outcome {
    let bdp = sc.bdp_bytes();
    let queue_limit = sc.queue_bytes();
    // Buffers large enough that neither window but cwnd limits the flow.
    let buf = (bdp + queue_limit)
        .saturating_mul(2)
        .clamp(256 * 1024, 1 << 30);
    let mut cfg = TcpConfig {
        rx_buffer: buf,
        tx_buffer: buf,
        ooo_max_bytes: buf,
        cc: sc.cc,
        pace_all: sc.pace_all,
        max_time_wait: 16,
        ..TcpConfig::default()
    };
    cfg.mss = 1460;
    let mut seed_a = [0u8; 32];
    seed_a[..8].copy_from_slice(&sc.seed.to_le_bytes());
    let mut seed_b = seed_a;
    seed_b[8] = 0xb;
    let mut a = Tcp::new(cfg.clone(), seed_a);
    let mut b = Tcp::new(cfg, seed_b);
    let one_way = Duration::from_micros(sc.rtt.total_micros() / 2);
    let rate = (sc.rate_bps / 8).max(1); // bytes per second
    let mut rng = Rng(sc.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);

    let t0 = Instant::from_secs(100);
    let mut now = t0;
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut wires: std::collections::HashMap<u64, Wire> = Default::default();
    let mut next_id = 0u64;
    let mut busy_until = t0;
    let mut queue_drops = 0u64;
    let mut random_drops = 0u64;
    let mut qdelay_sum = 0u128;
    let mut qdelay_n = 0u64;
    let warm = t0 + sc.warmup;
    let end = t0 + sc.duration;

    let listener = b.listen(SocketAddrV4::new(RECEIVER, 5001), 64).unwrap();
    let mut clients: Vec<Option<ConnHandle>> = vec![None; sc.flows.len()];
    let mut servers: Vec<Option<ConnHandle>> = vec![None; sc.flows.len()];
    // Which flow a server connection is, by the client's port.
    let mut client_ports: Vec<u16> = vec![0; sc.flows.len()];
    let mut got = vec![0u64; sc.flows.len()];
    // Payload that crossed the bottleneck for the first time after warm-up,
    // per flow: what utilisation counts. (Bytes the receiver *reads* after
    // warm-up would also count data that arrived before it and waited
    // behind a hole.)
    let mut fresh_warm = vec![0u64; sc.flows.len()];
    let mut seen: Vec<std::collections::HashSet<u32>> = vec![Default::default(); sc.flows.len()];
    let mut got_last = vec![0u64; sc.flows.len()];
    let mut series = Vec::new();
    let mut next_sample = sc.series_every.map(|d| t0 + d);
    let mut out: Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)> = Vec::new();

    loop {
        // Applications: start flows, keep send rings full, drain receivers.
        for (i, start) in sc.flows.iter().enumerate() {
            if clients[i].is_none() && now >= t0 + *start {
                let h = a
                    .connect(
                        now,
                        SocketAddrV4::new(SENDER, 0),
                        SocketAddrV4::new(RECEIVER, 5001),
                    )
                    .unwrap();
                client_ports[i] = a.local_addr(h).unwrap().port();
                clients[i] = Some(h);
            }
            if let Some(h) = clients[i] {
                while a.send_with(h, |b| b.len()).unwrap_or(0) > 0 {}
            }
        }
        while let Ok(h) = b.accept(listener) {
            let port = b.peer_addr(h).unwrap().port();
            if let Some(i) = client_ports.iter().position(|&p| p == port) {
                servers[i] = Some(h);
            }
        }
        for (i, s) in servers.iter().enumerate() {
            if let Some(h) = *s {
                loop {
                    let n = b.recv_with(h, |d| d.len()).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    got[i] += n as u64;
                }
            }
        }

        a.poll(now, &mut |s, d, _, r| {
            let mut bytes = vec![0; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut bytes[..]), s, d);
            out.push((s, d, bytes));
            true
        });
        b.poll(now, &mut |s, d, _, r| {
            let mut bytes = vec![0; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut bytes[..]), s, d);
            out.push((s, d, bytes));
            true
        });
        for (src, dst, bytes) in out.drain(..) {
            let mut at = now + one_way;
            let mut queued = Duration::ZERO;
            if src == SENDER {
                if sc.loss > 0.0 && rng.unit() < sc.loss {
                    random_drops += 1;
                    continue;
                }
                let wire_len = bytes.len() + LINK_OVERHEAD;
                let start = busy_until.max(now);
                queued = start.saturating_since(now);
                let backlog = queued.total_micros() * rate / 1_000_000;
                if backlog as usize + wire_len > queue_limit {
                    queue_drops += 1;
                    continue;
                }
                let tx = Duration::from_micros((wire_len as u64 * 1_000_000).div_ceil(rate));
                busy_until = start + tx;
                at = busy_until + one_way;
            }
            let id = next_id;
            next_id += 1;
            wires.insert(
                id,
                Wire {
                    bytes,
                    src,
                    dst,
                    queued,
                },
            );
            heap.push(Reverse((at, id)));
        }

        if let Some(ns) = next_sample {
            if now >= ns {
                for (i, c) in clients.iter().enumerate() {
                    let Some(h) = *c else { continue };
                    let Ok(st) = a.conn_stats(h) else { continue };
                    let every = sc.series_every.unwrap();
                    series.push(Sample {
                        t: now.saturating_since(t0),
                        flow: i,
                        cwnd: st.cwnd,
                        goodput_bps: (got[i] - got_last[i]) as f64 * 8.0 / every.as_secs_f64(),
                        delivery_rate_bps: st.delivery_rate as f64 * 8.0,
                        srtt: st.srtt,
                        pacing_bps: st.pacing_rate.map(|r| r as f64 * 8.0),
                        queue_bytes: (busy_until.saturating_since(now).total_micros() * rate
                            / 1_000_000) as usize,
                        state: st.cc_state,
                    });
                    got_last[i] = got[i];
                }
                next_sample = Some(ns + sc.series_every.unwrap());
            }
        }

        if now >= end {
            break;
        }
        // The next event: a delivery, a table's deadline, a flow start or
        // a series sample.
        let mut next = end;
        for t in [
            heap.peek().map(|Reverse((t, _))| *t),
            a.poll_at(),
            b.poll_at(),
            next_sample,
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        for (i, start) in sc.flows.iter().enumerate() {
            if clients[i].is_none() {
                next = next.min(t0 + *start);
            }
        }
        // Never stand still: a deadline at `now` was just served.
        now = next.max(now + Duration::from_micros(1));

        while let Some(&Reverse((at, id))) = heap.peek() {
            if at > now {
                break;
            }
            heap.pop();
            let w = wires.remove(&id).unwrap();
            let p = Packet::new_checked(&w.bytes[..]).unwrap();
            let r = Repr::parse(&p, w.src, w.dst).unwrap();
            if w.src == SENDER && !r.payload.is_empty() {
                if now >= warm {
                    qdelay_sum += u128::from(w.queued.total_micros());
                    qdelay_n += 1;
                }
                if let Some(i) = client_ports.iter().position(|&p| p == r.src_port) {
                    if seen[i].insert(r.seq_number.0) && now >= warm {
                        fresh_warm[i] += r.payload.len() as u64;
                    }
                }
            }
            let tcp = if w.dst == RECEIVER { &mut b } else { &mut a };
            tcp.process(now, w.src, w.dst, &r, &mut |s, d, _, r| {
                let mut bytes = vec![0; r.buffer_len()];
                r.emit(&mut Packet::new_unchecked(&mut bytes[..]), s, d);
                out.push((s, d, bytes));
                true
            });
        }
    }

    let measured = (sc.duration - sc.warmup).as_secs_f64().max(1e-9);
    let flow_goodput_bps: Vec<f64> = fresh_warm
        .iter()
        .zip(&sc.flows)
        .map(|(&g, start)| {
            // A flow that started after warm-up is measured from its start.
            let from = sc.warmup.max(*start);
            let secs = (sc.duration - from).as_secs_f64().max(1e-9);
            g as f64 * 8.0 / secs
        })
        .collect();
    let total: u64 = fresh_warm.iter().sum();
    let mut retransmits = 0;
    let mut segs = 0;
    let mut final_stats = Vec::new();
    for h in clients.iter().flatten() {
        if let Ok(st) = a.conn_stats(*h) {
            retransmits += st.retransmits;
            segs += st.segs_out;
            final_stats.push(st);
        }
    }
    Outcome {
        utilisation: total as f64 * 8.0 / measured / sc.rate_bps as f64 / PAYLOAD_EFFICIENCY,
        goodput_share: total as f64 * 8.0 / measured / sc.rate_bps as f64,
        mean_queue_delay: Duration::from_micros((qdelay_sum / u128::from(qdelay_n.max(1))) as u64),
        retrans_ratio: retransmits as f64 / segs.max(1) as f64,
        retransmits,
        flow_goodput_bps,
        queue_drops,
        random_drops,
        receiver_ooo_drops: b.stats().drop_ooo_full,
        series,
        final_stats,
    }
}

/// One row of `docs/CC-GRID.md`.
pub fn table_row(sc: &Scenario, o: &Outcome) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.2} |",
        sc.rate_bps / 1_000_000,
        sc.rtt.total_millis(),
        sc.buffer_bdp,
        sc.loss * 100.0,
        sc.cc.as_str(),
        o.utilisation * 100.0,
        o.mean_queue_delay.total_micros() as f64 / 1000.0,
        o.retrans_ratio * 100.0
    )
}

/// A row of the table read back: the scenario and (util %, queue ms, rtx %).
pub fn parse_row(line: &str) -> Option<(Scenario, [f64; 3])> {
    let f: Vec<&str> = line
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    if f.len() != 8 {
        return None;
    }
    let rate: u64 = f[0].parse().ok()?;
    let rtt: u64 = f[1].parse().ok()?;
    let buf: f64 = f[2].parse().ok()?;
    let loss: f64 = f[3].parse().ok()?;
    let cc: CcAlgorithm = f[4].parse().ok()?;
    let v = [f[5].parse().ok()?, f[6].parse().ok()?, f[7].parse().ok()?];
    Some((
        Scenario::new(cc, rate * 1_000_000, rtt, buf, loss / 100.0),
        v,
    ))
}
