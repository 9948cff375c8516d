//! A simulated link: two devices joined by a pair of one-way links with
//! propagation delay, a bandwidth bottleneck with a bounded queue, random
//! loss, reordering and duplication, all driven by a seeded RNG and by the
//! `now` the stacks pass in. Nothing sleeps, so a ten-minute transfer over a
//! 300 ms, 5 %-loss path runs in milliseconds and fails the same way every
//! time.
//!
//! Frames are timestamped when transmitted: a frame waits for the link to
//! finish serialising earlier frames (at `rate_bps`), is tail-dropped when
//! that wait exceeds the queue limit, then arrives `delay` later.

use super::{Device, DeviceCaps, DeviceStats, Transmit, TxError};
use crate::time::{Duration, Instant};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::io;
use std::rc::Rc;

/// One direction of the link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Bottleneck rate in bits per second; `None` is infinitely fast.
    pub rate_bps: Option<u64>,
    /// Bytes of backlog the bottleneck queue holds; a frame arriving behind
    /// more than this is tail-dropped.
    pub queue_bytes: usize,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is held back by `reorder_delay` extra, so
    /// later frames overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that one bit of a frame is flipped, in a byte past the
    /// first 34 (the Ethernet and a minimal IPv4 header), so that only a
    /// transport checksum can catch it.
    pub corrupt: f64,
    /// Largest frame (Ethernet header included) the link carries.
    pub max_frame: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::ZERO,
            rate_bps: None,
            queue_bytes: usize::MAX,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            duplicate: 0.0,
            corrupt: 0.0,
            max_frame: 1518,
        }
    }
}

/// What happened on one direction of the link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    /// Sum over delivered frames of the time spent waiting in the bottleneck
    /// queue, for mean queueing delay.
    pub queue_delay_total: Duration,
}

#[derive(Debug, PartialEq, Eq)]
struct InFlight {
    at: Instant,
    seq: u64,
    queued: Duration,
    frame: Vec<u8>,
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Min-heap on (arrival, order sent).
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug)]
struct Link {
    cfg: LinkConfig,
    rng: ChaCha8Rng,
    flight: BinaryHeap<InFlight>,
    busy_until: Instant,
    seq: u64,
    stats: LinkStats,
    spare: Vec<Vec<u8>>,
}

impl Link {
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn send(
        &mut self,
        now: Instant,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), TxError> {
        if len > self.cfg.max_frame {
            return Err(TxError::TooLong);
        }
        let mut frame = self.spare.pop().unwrap_or_default();
        frame.clear();
        frame.resize(len, 0);
        fill(&mut frame);
        self.stats.sent += 1;
        let start = self.busy_until.max(now);
        let queued = start.saturating_since(now);
        if let Some(rate) = self.cfg.rate_bps {
            let backlog_bytes = queued.total_micros() as u128 * rate as u128 / 8 / 1_000_000;
            // The limit bounds the backlog ahead of this frame, as a qdisc's
            // limit excludes the packet already on the wire.
            if backlog_bytes > self.cfg.queue_bytes as u128 {
                self.stats.queue_drops += 1;
                self.spare.push(frame);
                return Ok(());
            }
            let tx_time = (len as u128 * 8 * 1_000_000).div_ceil(rate.max(1) as u128);
            self.busy_until = start + Duration::from_micros(tx_time as u64);
        }
        if self.chance(self.cfg.loss) {
            self.stats.lost += 1;
            self.spare.push(frame);
            return Ok(());
        }
        let mut at = self.busy_until.max(now) + self.cfg.delay;
        if self.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            at += self.cfg.reorder_delay;
        }
        if self.chance(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            self.seq += 1;
            self.flight.push(InFlight {
                at,
                seq: self.seq,
                queued,
                frame: frame.clone(),
            });
        }
        if frame.len() > 34 && self.chance(self.cfg.corrupt) {
            self.stats.corrupted += 1;
            let r = self.rng.next_u64();
            let at = 34 + (r >> 3) as usize % (frame.len() - 34);
            frame[at] ^= 1 << (r & 7);
        }
        self.seq += 1;
        self.flight.push(InFlight {
            at,
            seq: self.seq,
            queued,
            frame,
        });
        Ok(())
    }
}

/// One end of a simulated link. Not `Send`: both ends live in one thread.
#[derive(Debug)]
pub struct SimDevice {
    tx: Rc<RefCell<Link>>,
    rx: Rc<RefCell<Link>>,
    now: Instant,
    mtu: usize,
    frames_in: u64,
    frames_out: u64,
}

/// Two devices joined by a simulated link; `ab` configures frames from the
/// first to the second, `ba` the way back.
pub fn pair(ab: LinkConfig, ba: LinkConfig, seed: u64) -> (SimDevice, SimDevice) {
    let mk = |cfg: LinkConfig, salt: u64| {
        Rc::new(RefCell::new(Link {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed ^ salt),
            flight: BinaryHeap::new(),
            busy_until: Instant::ZERO,
            seq: 0,
            stats: LinkStats::default(),
            spare: Vec::new(),
        }))
    };
    let (l1, l2) = (mk(ab, 0x5a5a), mk(ba, 0xa5a5));
    let mtu = |l: &Rc<RefCell<Link>>| l.borrow().cfg.max_frame.saturating_sub(14);
    let a = SimDevice {
        mtu: mtu(&l1),
        tx: l1.clone(),
        rx: l2.clone(),
        now: Instant::ZERO,
        frames_in: 0,
        frames_out: 0,
    };
    let b = SimDevice {
        mtu: mtu(&l2),
        tx: l2,
        rx: l1,
        now: Instant::ZERO,
        frames_in: 0,
        frames_out: 0,
    };
    (a, b)
}

impl SimDevice {
    /// When the next frame arrives at this end.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.rx.borrow().flight.peek().map(|f| f.at)
    }
    /// Statistics of the link this end sends on.
    pub fn tx_link_stats(&self) -> LinkStats {
        self.tx.borrow().stats.clone()
    }
    /// Change the link this end sends on, mid-run (e.g. to start or stop loss).
    pub fn set_tx_link(&self, cfg: LinkConfig) {
        self.tx.borrow_mut().cfg = cfg;
    }
}

struct SimTx<'a> {
    link: &'a RefCell<Link>,
    now: Instant,
    count: &'a mut u64,
}

impl Transmit for SimTx<'_> {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        self.link.borrow_mut().send(self.now, len, fill)?;
        *self.count += 1;
        Ok(())
    }
}

impl Transmit for SimDevice {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        self.tx.borrow_mut().send(self.now, len, fill)?;
        self.frames_out += 1;
        Ok(())
    }
}

impl Device for SimDevice {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.mtu,
            mac: None,
            rx_batch: 64,
            kind: "sim".into(),
        }
    }

    fn receive(
        &mut self,
        now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        self.now = now;
        let mut n = 0;
        while n < budget {
            let f = {
                let mut rx = self.rx.borrow_mut();
                match rx.flight.peek() {
                    Some(f) if f.at <= now => {}
                    _ => break,
                }
                let Some(f) = rx.flight.pop() else { break };
                rx.stats.delivered += 1;
                rx.stats.queue_delay_total = rx.stats.queue_delay_total + f.queued;
                f
            };
            let mut tx = SimTx {
                link: &self.tx,
                now,
                count: &mut self.frames_out,
            };
            on_frame(&f.frame, &mut tx);
            self.frames_in += 1;
            self.rx.borrow_mut().spare.push(f.frame);
            n += 1;
        }
        Ok(n)
    }

    fn transmitter(&mut self) -> &mut dyn Transmit {
        self
    }

    fn flush(&mut self, now: Instant) -> io::Result<()> {
        self.now = now;
        Ok(())
    }

    fn wait(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn stats(&self) -> DeviceStats {
        let l = self.tx.borrow();
        DeviceStats {
            rx_frames: self.frames_in,
            tx_frames: self.frames_out,
            extra: vec![
                ("sim_lost", l.stats.lost),
                ("sim_queue_drops", l.stats.queue_drops),
            ],
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(d: &mut SimDevice, now: Instant, byte: u8, len: usize) {
        d.now = now;
        d.transmit(len, &mut |b| b.fill(byte)).unwrap();
    }

    fn recv(d: &mut SimDevice, now: Instant) -> Vec<u8> {
        let mut got = Vec::new();
        d.receive(now, usize::MAX, &mut |f, _| got.push(f[0]))
            .unwrap();
        got
    }

    #[test]
    fn frames_arrive_after_the_delay_in_order() {
        let cfg = LinkConfig {
            delay: Duration::from_millis(10),
            ..Default::default()
        };
        let (mut a, mut b) = pair(cfg.clone(), cfg, 1);
        send(&mut a, Instant::ZERO, 1, 100);
        send(&mut a, Instant::from_millis(1), 2, 100);
        assert!(recv(&mut b, Instant::from_micros(9_999)).is_empty());
        assert_eq!(b.next_arrival(), Some(Instant::from_millis(10)));
        assert_eq!(recv(&mut b, Instant::from_millis(11)), vec![1, 2]);
    }

    #[test]
    fn bottleneck_serialises_and_tail_drops() {
        // 8 Mbit/s: a 1000-byte frame takes 1 ms; the queue holds 2500 bytes.
        let cfg = LinkConfig {
            rate_bps: Some(8_000_000),
            queue_bytes: 2500,
            ..Default::default()
        };
        let (mut a, mut b) = pair(cfg.clone(), cfg, 1);
        for i in 0..5 {
            send(&mut a, Instant::ZERO, i, 1000);
        }
        let s = a.tx_link_stats();
        assert_eq!((s.sent, s.queue_drops), (5, 2));
        assert_eq!(recv(&mut b, Instant::from_millis(1)), vec![0]);
        assert_eq!(recv(&mut b, Instant::from_millis(3)), vec![1, 2]);
    }

    #[test]
    fn loss_rate_matches_the_configured_probability() {
        let cfg = LinkConfig {
            loss: 0.05,
            ..Default::default()
        };
        let (mut a, mut b) = pair(cfg.clone(), cfg, 7);
        for _ in 0..100_000 {
            send(&mut a, Instant::ZERO, 0, 60);
        }
        let lost = a.tx_link_stats().lost;
        assert!((4500..5500).contains(&lost), "lost {lost}");
        assert_eq!(recv(&mut b, Instant::ZERO).len() as u64, 100_000 - lost);
    }

    #[test]
    fn same_seed_same_fate() {
        let cfg = LinkConfig {
            loss: 0.3,
            reorder: 0.2,
            duplicate: 0.1,
            ..Default::default()
        };
        let run = |seed| {
            let (mut a, mut b) = pair(cfg.clone(), cfg.clone(), seed);
            for i in 0..200u8 {
                send(&mut a, Instant::from_micros(i as i64), i, 60);
            }
            recv(&mut b, Instant::from_secs(1))
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let got = run(3);
        assert!(got.windows(2).any(|w| w[0] > w[1]), "some reordering");
        assert!(got.windows(2).any(|w| w[0] == w[1]), "some duplication");
    }

    #[test]
    fn replies_written_in_the_receive_callback_go_back_over_the_link() {
        let (mut a, mut b) = pair(LinkConfig::default(), LinkConfig::default(), 1);
        send(&mut a, Instant::ZERO, 9, 60);
        b.receive(Instant::ZERO, 8, &mut |f, tx| {
            tx.transmit(f.len(), &mut |o| o.fill(f[0] + 1)).unwrap()
        })
        .unwrap();
        assert_eq!(recv(&mut a, Instant::ZERO), vec![10]);
    }
}
