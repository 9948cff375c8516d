//! The UMEM: one page-aligned region cut into equal frames, and the pool
//! that tracks who owns each frame.
//!
//! A frame is always in exactly one place: our free stack, the kernel's
//! hands via the fill ring (until it comes back on the RX ring), lent to the
//! stack during a `receive` callback, or the kernel's hands via the TX ring
//! (until it comes back on the completion ring). [`FramePool`] is the single
//! source of truth for that and refuses every transition that would hand a
//! frame out twice.

use std::io;

use super::sys;

/// Where a frame is.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameState {
    /// On our free stack.
    Free,
    /// Given to the kernel through the fill ring (possibly already in the RX
    /// ring, not yet consumed).
    Fill,
    /// Consumed from the RX ring, lent to the stack.
    Rx,
    /// Queued on the TX ring (or sent, waiting on the completion ring).
    Tx,
}

/// Frame ownership: a free stack plus one state per frame. Pure and safe.
#[derive(Debug)]
pub(crate) struct FramePool {
    frame_size: u64,
    state: Vec<FrameState>,
    free: Vec<u32>,
    n_fill: u32,
    n_rx: u32,
    n_tx: u32,
    /// Refused transitions: an address from the kernel we never handed out,
    /// or a frame in the wrong state. Always 0 unless something is broken.
    violations: u64,
}

impl FramePool {
    pub(crate) fn new(frame_count: u32, frame_size: u32) -> FramePool {
        assert!(frame_size.is_power_of_two());
        FramePool {
            frame_size: frame_size as u64,
            state: vec![FrameState::Free; frame_count as usize],
            // Pop order 0, 1, 2, ...: low addresses first.
            free: (0..frame_count).rev().collect(),
            n_fill: 0,
            n_rx: 0,
            n_tx: 0,
            violations: 0,
        }
    }

    pub(crate) fn total(&self) -> u32 {
        self.state.len() as u32
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free.len() as u32
    }

    pub(crate) fn in_fill(&self) -> u32 {
        self.n_fill
    }

    pub(crate) fn in_rx(&self) -> u32 {
        self.n_rx
    }

    pub(crate) fn in_tx(&self) -> u32 {
        self.n_tx
    }

    pub(crate) fn violations(&self) -> u64 {
        self.violations
    }

    /// UMEM offset of frame `idx`'s first byte.
    pub(crate) fn addr_of(&self, idx: u32) -> u64 {
        idx as u64 * self.frame_size
    }

    /// The frame an address (possibly pointing past the frame start, as RX
    /// descriptors do) falls in, if it is inside the UMEM.
    pub(crate) fn index_of(&self, addr: u64) -> Option<u32> {
        let idx = addr / self.frame_size;
        (idx < self.state.len() as u64).then_some(idx as u32)
    }

    pub(crate) fn state(&self, idx: u32) -> Option<FrameState> {
        self.state.get(idx as usize).copied()
    }

    fn count_mut(&mut self, s: FrameState) -> Option<&mut u32> {
        match s {
            FrameState::Free => None,
            FrameState::Fill => Some(&mut self.n_fill),
            FrameState::Rx => Some(&mut self.n_rx),
            FrameState::Tx => Some(&mut self.n_tx),
        }
    }

    fn set(&mut self, idx: u32, from: FrameState, to: FrameState) -> bool {
        if self.state(idx) != Some(from) {
            self.violations += 1;
            return false;
        }
        self.state[idx as usize] = to;
        if let Some(c) = self.count_mut(from) {
            *c -= 1;
        }
        if let Some(c) = self.count_mut(to) {
            *c += 1;
        }
        if to == FrameState::Free {
            self.free.push(idx);
        }
        true
    }

    /// Take a free frame for the fill ring or the TX ring.
    pub(crate) fn alloc(&mut self, to: FrameState) -> Option<u32> {
        debug_assert!(matches!(to, FrameState::Fill | FrameState::Tx));
        let idx = self.free.pop()?;
        let ok = self.set_from_free(idx, to);
        debug_assert!(ok, "frame {idx} on the free stack was not free");
        ok.then_some(idx)
    }

    fn set_from_free(&mut self, idx: u32, to: FrameState) -> bool {
        if self.state(idx) != Some(FrameState::Free) {
            self.violations += 1;
            return false;
        }
        self.state[idx as usize] = to;
        if let Some(c) = self.count_mut(to) {
            *c += 1;
        }
        true
    }

    /// An RX descriptor arrived for `addr`: the frame must have been given
    /// through the fill ring. Returns the frame index, now lent (`Rx`).
    pub(crate) fn rx_arrived(&mut self, addr: u64) -> Option<u32> {
        let idx = self.index_of(addr);
        match idx {
            Some(i) if self.set(i, FrameState::Fill, FrameState::Rx) => Some(i),
            Some(_) => None,
            None => {
                self.violations += 1;
                None
            }
        }
    }

    /// The stack is done with a lent RX frame.
    pub(crate) fn rx_done(&mut self, idx: u32) -> bool {
        self.set(idx, FrameState::Rx, FrameState::Free)
    }

    /// A completion arrived for `addr`: the frame must have been sent.
    pub(crate) fn tx_completed(&mut self, addr: u64) -> bool {
        match self.index_of(addr) {
            Some(i) if addr.is_multiple_of(self.frame_size) => {
                self.set(i, FrameState::Tx, FrameState::Free)
            }
            _ => {
                self.violations += 1;
                false
            }
        }
    }
}

/// The UMEM region itself. Frames are reached only through raw pointers
/// whose exclusivity the [`FramePool`] guarantees.
pub(crate) struct UmemArea {
    map: sys::Mmap,
    frame_size: u32,
    frame_count: u32,
}

impl UmemArea {
    pub(crate) fn new(frame_size: u32, frame_count: u32) -> io::Result<UmemArea> {
        let len = frame_size as usize * frame_count as usize;
        let map = sys::Mmap::anonymous(len)
            .map_err(|e| sys::context(e, &format!("mmap of a {len}-byte UMEM")))?;
        Ok(UmemArea {
            map,
            frame_size,
            frame_count,
        })
    }

    pub(crate) fn addr(&self) -> u64 {
        self.map.ptr() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn view(&self) -> UmemView {
        UmemView {
            base: self.map.ptr(),
            frame_size: self.frame_size,
            frame_count: self.frame_count,
        }
    }
}

/// A copyable handle to the UMEM for the TX path: base pointer and geometry.
/// Lives inside the same queue as the [`UmemArea`] that owns the mapping.
#[derive(Copy, Clone)]
pub(crate) struct UmemView {
    base: *mut u8,
    frame_size: u32,
    frame_count: u32,
}

// SAFETY: the pointer targets a mapping owned by the queue that also owns
// this view; it moves with it and is never shared between threads.
unsafe impl Send for UmemView {}
// SAFETY: same argument for `UmemArea`, which owns the mapping.
unsafe impl Send for UmemArea {}

impl UmemView {
    /// Bytes `[addr, addr + len)` of the UMEM, if they lie inside one frame.
    fn range_ok(&self, addr: u64, len: usize) -> bool {
        let fs = self.frame_size as u64;
        let frame = addr / fs;
        let off = addr % fs;
        frame < self.frame_count as u64 && off + len as u64 <= fs
    }

    /// The received bytes at `addr`.
    ///
    /// # Safety
    /// The frame holding `addr` must be lent to the caller (state `Rx` in the
    /// pool): the kernel has finished writing it and won't reuse it until we
    /// hand it back, and no `&mut` to it exists.
    pub(crate) unsafe fn rx_slice<'a>(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        if !self.range_ok(addr, len) {
            return None;
        }
        // SAFETY: in bounds of the mapping (checked above); exclusivity is the
        // caller's contract.
        Some(unsafe { std::slice::from_raw_parts(self.base.add(addr as usize), len) })
    }

    /// The TX frame at `addr` for writing.
    ///
    /// # Safety
    /// The frame must be owned by the caller for TX (state `Tx`, not yet
    /// published): nothing else reads or writes it meanwhile.
    pub(crate) unsafe fn tx_slice_mut<'a>(&self, addr: u64, len: usize) -> Option<&'a mut [u8]> {
        if !self.range_ok(addr, len) {
            return None;
        }
        // SAFETY: in bounds (checked above); exclusivity is the caller's
        // contract.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.add(addr as usize), len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_hands_out_each_frame_once() {
        let mut p = FramePool::new(4, 2048);
        let got: Vec<u32> = (0..4).map(|_| p.alloc(FrameState::Fill).unwrap()).collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(p.alloc(FrameState::Tx), None, "pool exhausted");
        assert_eq!(p.in_fill(), 4);
        assert_eq!(p.free_count(), 0);
    }

    #[test]
    fn rx_cycle_and_addresses() {
        let mut p = FramePool::new(8, 2048);
        let f = p.alloc(FrameState::Fill).unwrap();
        // RX descriptors point past the frame start (XDP headroom).
        let rx_addr = p.addr_of(f) + 256;
        assert_eq!(p.rx_arrived(rx_addr), Some(f));
        assert_eq!((p.in_fill(), p.in_rx()), (0, 1));
        // The same descriptor again must be refused: the frame is lent.
        assert_eq!(p.rx_arrived(rx_addr), None);
        assert_eq!(p.violations(), 1);
        assert!(p.rx_done(f));
        assert!(!p.rx_done(f), "double return refused");
        assert_eq!(p.violations(), 2);
        assert_eq!(p.free_count(), 8);
    }

    #[test]
    fn tx_cycle() {
        let mut p = FramePool::new(8, 4096);
        let f = p.alloc(FrameState::Tx).unwrap();
        assert_eq!(p.in_tx(), 1);
        assert!(!p.tx_completed(p.addr_of(f) + 1), "unaligned completion");
        assert!(p.tx_completed(p.addr_of(f)));
        assert!(!p.tx_completed(p.addr_of(f)), "double completion refused");
        assert!(!p.tx_completed(8 * 4096), "outside the UMEM");
        assert_eq!(p.violations(), 3);
        assert_eq!((p.free_count(), p.in_tx()), (8, 0));
    }

    #[test]
    fn foreign_addresses_refused() {
        let mut p = FramePool::new(2, 2048);
        assert_eq!(p.rx_arrived(2 * 2048), None, "past the end");
        assert_eq!(
            p.rx_arrived(0),
            None,
            "free frame never given to the kernel"
        );
        let f = p.alloc(FrameState::Tx).unwrap();
        assert_eq!(p.rx_arrived(p.addr_of(f)), None, "a TX frame is not RX");
        assert_eq!(p.violations(), 3);
        assert_eq!(p.free_count() + p.in_tx(), p.total());
    }

    #[test]
    fn counts_always_sum_to_total() {
        let mut p = FramePool::new(64, 2048);
        let mut fill = Vec::new();
        let mut tx = Vec::new();
        for round in 0..500u32 {
            match round % 5 {
                0 | 1 => fill.extend(p.alloc(FrameState::Fill)),
                2 => tx.extend(p.alloc(FrameState::Tx)),
                3 => {
                    if let Some(f) = fill.pop() {
                        let i = p.rx_arrived(p.addr_of(f) + 256).unwrap();
                        assert!(p.rx_done(i));
                    }
                }
                _ => {
                    if let Some(f) = tx.pop() {
                        assert!(p.tx_completed(p.addr_of(f)));
                    }
                }
            }
            assert_eq!(
                p.free_count() + p.in_fill() + p.in_rx() + p.in_tx(),
                p.total()
            );
        }
        assert_eq!(p.violations(), 0);
    }

    #[test]
    fn view_bounds() {
        let u = UmemArea::new(2048, 4).unwrap();
        assert_eq!(u.addr() % 4096, 0, "page aligned");
        assert_eq!(u.len(), 8192);
        let v = u.view();
        // SAFETY: nothing else uses this UMEM in the test.
        unsafe {
            assert!(v.rx_slice(0, 2048).is_some());
            assert!(v.rx_slice(256, 1792).is_some());
            assert!(v.rx_slice(256, 1793).is_none(), "crosses a frame");
            assert!(v.rx_slice(4 * 2048, 1).is_none(), "past the end");
            let w = v.tx_slice_mut(2048, 3).unwrap();
            w.copy_from_slice(b"abc");
            assert_eq!(v.rx_slice(2048, 3).unwrap(), b"abc");
        }
    }
}
