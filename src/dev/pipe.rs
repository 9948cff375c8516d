//! Two in-memory devices joined back to back, for tests and benches in one
//! thread: what one transmits, the other receives, in order, fault-free.
//!
//! Like a real NIC, a transmitted frame is *staged* until the sender calls
//! [`Device::flush`]; only then can the peer receive it. A stack that forgets
//! to flush therefore fails on the pipe as it would on AF_PACKET.
//!
//! Each direction is a bounded queue (default [`DEFAULT_QUEUE_FRAMES`]) that
//! counts staged and flushed frames alike; when it is full, `transmit` returns
//! [`TxError::Exhausted`] and counts it in `tx_exhausted`. Frame buffers go
//! back to the direction's free list once the receiver is done with them, so
//! a steady state allocates nothing per frame; `pipe_buffers` in
//! [`Device::stats`] says how many buffers a direction ever allocated.
//! As in a NIC's ring, a recycled buffer is not cleared: `fill` gets the
//! bytes of an earlier frame and must write every one (the [`Transmit`]
//! contract), so a stack that leaves a field unwritten shows it here as it
//! would on AF_XDP, instead of sending the zeros a cleared buffer hid.

use super::{Device, DeviceCaps, DeviceStats, Transmit, TxError};
use crate::time::{Duration, Instant};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

/// Frames one direction of a [`pair`] holds before `transmit` says Exhausted.
pub const DEFAULT_QUEUE_FRAMES: usize = 4096;

/// Bytes an Ethernet frame may have beyond the L3 MTU: a 14-byte header and
/// one 802.1Q tag.
const L2_OVERHEAD: usize = 14 + 4;

/// A queued frame: the first `len` bytes of `buf`, which keeps the length
/// it was last grown to so that reusing it writes no zeros.
struct Frame {
    buf: Vec<u8>,
    len: usize,
}

impl Frame {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One direction: frames in order, the first `visible` of them flushed by
/// the sender, the rest staged.
struct Link {
    frames: VecDeque<Frame>,
    visible: usize,
    free: Vec<Vec<u8>>,
    capacity: usize,
    buf_size: usize,
    allocated: u64,
}

impl Link {
    fn new(capacity: usize, buf_size: usize) -> Link {
        Link {
            frames: VecDeque::with_capacity(capacity),
            visible: 0,
            free: Vec::new(),
            capacity,
            buf_size,
            allocated: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.frames.len() >= self.capacity
    }

    /// A buffer of at least `len` bytes holding whatever it last held,
    /// recycled if possible; only bytes never used before are zeroed.
    fn take_buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.free.pop().unwrap_or_else(|| {
            self.allocated += 1;
            Vec::with_capacity(self.buf_size)
        });
        if buf.len() < len {
            buf.resize(len, 0);
        }
        buf
    }

    /// Pop the oldest flushed frame.
    fn pop_visible(&mut self) -> Option<Frame> {
        if self.visible == 0 {
            return None;
        }
        self.visible -= 1;
        self.frames.pop_front()
    }
}

fn shared_link(capacity: usize, buf_size: usize) -> Rc<RefCell<Link>> {
    Rc::new(RefCell::new(Link::new(capacity, buf_size)))
}

/// Two devices joined back to back; `mtu` is the L3 MTU both report.
/// Each direction holds up to [`DEFAULT_QUEUE_FRAMES`] frames.
pub fn pair(mtu: usize) -> (PipeDevice, PipeDevice) {
    pair_with_capacity(mtu, DEFAULT_QUEUE_FRAMES)
}

/// Like [`pair`], with each direction holding up to `frames` frames
/// (at least one).
pub fn pair_with_capacity(mtu: usize, frames: usize) -> (PipeDevice, PipeDevice) {
    let frames = frames.max(1);
    let buf_size = mtu.saturating_add(L2_OVERHEAD);
    let a_to_b = shared_link(frames, buf_size);
    let b_to_a = shared_link(frames, buf_size);
    let a = PipeDevice::new(mtu, b_to_a.clone(), a_to_b.clone());
    let b = PipeDevice::new(mtu, a_to_b, b_to_a);
    (a, b)
}

/// One end of an in-memory [`pair`]. Not `Send`: both ends live in one thread.
pub struct PipeDevice {
    rx: Rc<RefCell<Link>>,
    tx: PipeTx,
    mtu: usize,
    rx_frames: u64,
    rx_bytes: u64,
}

struct PipeTx {
    link: Rc<RefCell<Link>>,
    max_frame: usize,
    tx_frames: u64,
    tx_bytes: u64,
    tx_exhausted: u64,
}

impl Transmit for PipeTx {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if len > self.max_frame {
            return Err(TxError::TooLong);
        }
        let mut buf = {
            let mut link = self.link.borrow_mut();
            if link.is_full() {
                self.tx_exhausted += 1;
                return Err(TxError::Exhausted);
            }
            link.take_buffer(len)
        };
        // No borrow of the link is held while `fill` runs, so it may touch
        // either end of the pair without a RefCell panic.
        fill(&mut buf[..len]);
        self.link.borrow_mut().frames.push_back(Frame { buf, len });
        self.tx_frames += 1;
        self.tx_bytes += len as u64;
        Ok(())
    }
}

impl PipeDevice {
    fn new(mtu: usize, rx: Rc<RefCell<Link>>, tx: Rc<RefCell<Link>>) -> PipeDevice {
        PipeDevice {
            rx,
            tx: PipeTx {
                link: tx,
                max_frame: mtu.saturating_add(L2_OVERHEAD),
                tx_frames: 0,
                tx_bytes: 0,
                tx_exhausted: 0,
            },
            mtu,
            rx_frames: 0,
            rx_bytes: 0,
        }
    }

    /// Put a raw frame straight into this device's RX queue, ahead of
    /// anything the peer staged but has not flushed, receivable at once.
    /// Any length is accepted (tests feed runts and giants on purpose);
    /// fails with [`TxError::Exhausted`] when the queue is full.
    pub fn inject(&self, frame: &[u8]) -> Result<(), TxError> {
        let mut link = self.rx.borrow_mut();
        if link.is_full() {
            return Err(TxError::Exhausted);
        }
        let mut buf = link.take_buffer(frame.len());
        buf[..frame.len()].copy_from_slice(frame);
        let at = link.visible;
        let len = frame.len();
        link.frames.insert(at, Frame { buf, len });
        link.visible += 1;
        Ok(())
    }

    /// Remove and return every frame waiting in this device's RX queue (what
    /// the peer sent and flushed, plus injected frames), oldest first, without
    /// running a stack. They are not counted in `rx_frames`.
    pub fn take_received(&mut self) -> Vec<Vec<u8>> {
        let mut link = self.rx.borrow_mut();
        let n = link.visible;
        link.visible = 0;
        link.frames
            .drain(..n)
            .map(|mut f| {
                f.buf.truncate(f.len);
                f.buf
            })
            .collect()
    }

    /// How many frames `receive` could hand out now.
    pub fn pending(&self) -> usize {
        self.rx.borrow().visible
    }
}

impl Device for PipeDevice {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.mtu,
            mac: None,
            rx_batch: 64,
            kind: "pipe".to_string(),
        }
    }

    fn receive(
        &mut self,
        _now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        let mut handed = 0;
        while handed < budget {
            // Pop under a short borrow: the callback may transmit, and with a
            // pair in one thread it may even poke the peer.
            let Some(frame) = self.rx.borrow_mut().pop_visible() else {
                break;
            };
            self.rx_frames += 1;
            self.rx_bytes += frame.len as u64;
            on_frame(frame.bytes(), &mut self.tx);
            self.rx.borrow_mut().free.push(frame.buf);
            handed += 1;
        }
        Ok(handed)
    }

    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.tx
    }

    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        let mut link = self.tx.link.borrow_mut();
        link.visible = link.frames.len();
        Ok(())
    }

    fn wait(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn stats(&self) -> DeviceStats {
        DeviceStats {
            rx_frames: self.rx_frames,
            rx_bytes: self.rx_bytes,
            tx_frames: self.tx.tx_frames,
            tx_bytes: self.tx.tx_bytes,
            rx_dropped: 0,
            tx_exhausted: self.tx.tx_exhausted,
            extra: vec![("pipe_buffers", self.tx.link.borrow().allocated)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(dev: &mut PipeDevice, payload: &[u8]) -> Result<(), TxError> {
        dev.transmitter()
            .transmit(payload.len(), &mut |buf| buf.copy_from_slice(payload))
    }

    fn drain(dev: &mut PipeDevice, budget: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        dev.receive(Instant::ZERO, budget, &mut |frame, _tx| {
            got.push(frame.to_vec())
        })
        .unwrap();
        got
    }

    fn extra(stats: &DeviceStats, name: &str) -> u64 {
        stats.extra.iter().find(|(k, _)| *k == name).unwrap().1
    }

    #[test]
    fn recycled_buffers_keep_old_bytes_but_frames_keep_their_own_length() {
        let (mut a, mut b) = pair(1500);
        send(&mut a, &[0xaa; 100]).unwrap();
        a.flush(Instant::ZERO).unwrap();
        assert_eq!(drain(&mut b, 64), vec![vec![0xaa; 100]]);
        // The next frame reuses that buffer as it was, as a NIC ring would:
        // nothing spent on zeroes a well-behaved `fill` overwrites anyway.
        let mut seen = Vec::new();
        a.transmitter()
            .transmit(60, &mut |buf| {
                seen = buf.to_vec();
                buf.fill(0x55);
            })
            .unwrap();
        assert_eq!(seen, vec![0xaa; 60], "the buffer was cleared or resized");
        send(&mut a, &[0x11; 200]).unwrap();
        a.flush(Instant::ZERO).unwrap();
        assert_eq!(drain(&mut b, 64), vec![vec![0x55; 60], vec![0x11; 200]]);
        assert_eq!(extra(&a.stats(), "pipe_buffers"), 2);
    }

    #[test]
    fn frames_arrive_in_order_only_after_flush() {
        let (mut a, mut b) = pair(1500);
        for i in 0..10u8 {
            send(&mut a, &[i; 60]).unwrap();
        }
        assert_eq!(b.pending(), 0, "staged frames are invisible before flush");
        assert!(drain(&mut b, 64).is_empty());
        a.flush(Instant::ZERO).unwrap();
        assert_eq!(b.pending(), 10);
        let got = drain(&mut b, 4);
        assert_eq!(got, (0..4u8).map(|i| vec![i; 60]).collect::<Vec<_>>());
        let got = drain(&mut b, 64);
        assert_eq!(got, (4..10u8).map(|i| vec![i; 60]).collect::<Vec<_>>());
        assert!(drain(&mut a, 64).is_empty(), "nothing comes back to A");
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!((sa.tx_frames, sa.tx_bytes), (10, 600));
        assert_eq!((sb.rx_frames, sb.rx_bytes), (10, 600));
        assert_eq!(sa.rx_frames, 0);
    }

    #[test]
    fn replies_written_in_the_callback_go_back_to_the_sender() {
        let (mut a, mut b) = pair(1500);
        send(&mut a, b"ping").unwrap();
        a.flush(Instant::ZERO).unwrap();
        let n = b
            .receive(Instant::ZERO, 8, &mut |frame, tx| {
                assert_eq!(frame, b"ping");
                tx.transmit(4, &mut |buf| buf.copy_from_slice(b"pong"))
                    .unwrap();
            })
            .unwrap();
        assert_eq!(n, 1);
        b.flush(Instant::ZERO).unwrap();
        assert_eq!(a.take_received(), vec![b"pong".to_vec()]);
    }

    #[test]
    fn a_full_queue_says_exhausted_and_counts_it() {
        let (mut a, mut b) = pair_with_capacity(1500, 3);
        for _ in 0..3 {
            send(&mut a, &[0; 20]).unwrap();
        }
        assert_eq!(send(&mut a, &[0; 20]), Err(TxError::Exhausted));
        a.flush(Instant::ZERO).unwrap();
        assert_eq!(
            send(&mut a, &[0; 20]),
            Err(TxError::Exhausted),
            "flushed but unread frames still fill the queue"
        );
        assert_eq!(a.stats().tx_exhausted, 2);
        assert_eq!(a.stats().tx_frames, 3);
        assert_eq!(drain(&mut b, 1).len(), 1);
        send(&mut a, &[0; 20]).unwrap();
        assert_eq!(b.inject(&[1]), Err(TxError::Exhausted));
    }

    #[test]
    fn frames_longer_than_mtu_plus_ethernet_header_are_refused() {
        let (mut a, _b) = pair(100);
        assert_eq!(send(&mut a, &[0; 118]), Ok(()));
        assert_eq!(send(&mut a, &[0; 119]), Err(TxError::TooLong));
        assert_eq!(a.stats().tx_frames, 1);
    }

    #[test]
    fn injected_frames_are_received_before_unflushed_ones() {
        let (mut a, mut b) = pair(1500);
        send(&mut a, b"flushed").unwrap();
        a.flush(Instant::ZERO).unwrap();
        send(&mut a, b"staged").unwrap();
        b.inject(b"").unwrap();
        b.inject(&[0xff; 9000]).unwrap();
        assert_eq!(b.pending(), 3);
        let got = drain(&mut b, 64);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], b"flushed");
        assert_eq!(got[1], b"");
        assert_eq!(got[2].len(), 9000, "giants are passed through untouched");
        a.flush(Instant::ZERO).unwrap();
        assert_eq!(b.take_received(), vec![b"staged".to_vec()]);
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn buffers_are_recycled_in_steady_state() {
        let (mut a, mut b) = pair(1500);
        for round in 0..1000u32 {
            for i in 0..8u32 {
                let tag = (round * 8 + i).to_be_bytes();
                send(&mut a, &tag).unwrap();
            }
            a.flush(Instant::ZERO).unwrap();
            let got = drain(&mut b, 64);
            assert_eq!(got.len(), 8);
            assert_eq!(got[7], (round * 8 + 7).to_be_bytes());
        }
        assert_eq!(extra(&a.stats(), "pipe_buffers"), 8);
        assert_eq!(b.stats().rx_frames, 8000);
    }

    #[test]
    fn take_received_leaves_stats_and_the_peer_alone() {
        let (mut a, mut b) = pair(1500);
        send(&mut a, b"x").unwrap();
        a.flush(Instant::ZERO).unwrap();
        assert_eq!(b.take_received(), vec![b"x".to_vec()]);
        assert!(b.take_received().is_empty());
        assert_eq!(b.stats().rx_frames, 0);
        assert_eq!(b.caps().kind, "pipe");
        assert_eq!(b.caps().mac, None);
        b.wait(Some(Duration::from_secs(10))).unwrap();
    }
}
