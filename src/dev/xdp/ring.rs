//! AF_XDP rings: index arithmetic (pure, safe, unit-tested) and the mmap'd
//! rings it drives.
//!
//! Each ring is single-producer/single-consumer with free-running `u32`
//! producer and consumer counters; a slot is `index & (size - 1)`. The ring
//! holds `producer - consumer` entries (wrapping subtraction), so it is empty
//! when the two are equal and full when they differ by `size`, on either side
//! of `u32::MAX`.
//!
//! Memory ordering follows libxdp: whoever reads the other side's index loads
//! it with `Acquire` (so the descriptors it covers are visible), and whoever
//! publishes its own index stores it with `Release` (so the descriptors it
//! wrote, or the reads it did, happen before the other side sees the index).

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use super::sys;

/// Producer-side view of a ring: we write entries, the kernel consumes them.
/// (Fill ring and TX ring.)
#[derive(Debug, Clone)]
pub(crate) struct ProdIdx {
    size: u32,
    /// Next index we will write; entries below it are reserved and written.
    cached_prod: u32,
    /// Consumer index plus `size`, as last read: we may write below it.
    cached_cons: u32,
    /// The producer value last published to the kernel.
    published: u32,
}

impl ProdIdx {
    pub(crate) fn new(size: u32) -> ProdIdx {
        ProdIdx::starting_at(size, 0)
    }

    /// A ring whose producer and consumer both stand at `idx` (tests start
    /// near `u32::MAX` to exercise wrap-around).
    pub(crate) fn starting_at(size: u32, idx: u32) -> ProdIdx {
        assert!(size.is_power_of_two(), "ring size must be a power of two");
        ProdIdx {
            size,
            cached_prod: idx,
            cached_cons: idx.wrapping_add(size),
            published: idx,
        }
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Free slots according to the cached consumer index, never more than
    /// `size` even if the consumer index read was nonsense.
    fn cached_free(&self) -> u32 {
        self.cached_cons
            .wrapping_sub(self.cached_prod)
            .min(self.size)
    }

    /// Free slots; reads the consumer index (through `consumer`) only when
    /// the cache shows fewer than `want`.
    pub(crate) fn free(&mut self, want: u32, consumer: impl FnOnce() -> u32) -> u32 {
        let free = self.cached_free();
        if free >= want {
            return free;
        }
        let cons = consumer();
        // A consumer ahead of what we produced is impossible for a correct
        // peer; treat it as "everything we published was consumed".
        let cons = if self.cached_prod.wrapping_sub(cons) > self.size {
            self.cached_prod.wrapping_sub(self.size)
        } else {
            cons
        };
        self.cached_cons = cons.wrapping_add(self.size);
        self.cached_free()
    }

    /// Reserve up to `want` slots (a partial batch if fewer are free).
    /// Returns the first index and the count; the caller writes exactly that
    /// many entries before the next `publish`.
    pub(crate) fn reserve(&mut self, want: u32, consumer: impl FnOnce() -> u32) -> (u32, u32) {
        let n = want.min(self.free(want, consumer));
        let start = self.cached_prod;
        self.cached_prod = self.cached_prod.wrapping_add(n);
        (start, n)
    }

    /// Entries reserved (and written) but not yet published.
    pub(crate) fn unpublished(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.published)
    }

    /// Mark every reserved entry published; returns the producer value to
    /// store (with `Release`).
    pub(crate) fn publish(&mut self) -> u32 {
        self.published = self.cached_prod;
        self.published
    }

    pub(crate) fn published(&self) -> u32 {
        self.published
    }

    /// Index of the next entry we would write.
    pub(crate) fn next(&self) -> u32 {
        self.cached_prod
    }
}

/// Consumer-side view of a ring: the kernel produces, we consume. (RX ring
/// and completion ring.)
#[derive(Debug, Clone)]
pub(crate) struct ConsIdx {
    size: u32,
    /// Producer index as last read.
    cached_prod: u32,
    /// Next index we will read.
    cached_cons: u32,
    /// The consumer value last published to the kernel.
    released: u32,
}

impl ConsIdx {
    pub(crate) fn new(size: u32) -> ConsIdx {
        ConsIdx::starting_at(size, 0)
    }

    pub(crate) fn starting_at(size: u32, idx: u32) -> ConsIdx {
        assert!(size.is_power_of_two(), "ring size must be a power of two");
        ConsIdx {
            size,
            cached_prod: idx,
            cached_cons: idx,
            released: idx,
        }
    }

    /// Entries available according to the cache (clamped to `size`).
    fn cached_avail(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.cached_cons)
            .min(self.size)
    }

    /// Entries available; reads the producer index (through `producer`) only
    /// when the cache shows fewer than `want`.
    pub(crate) fn avail(&mut self, want: u32, producer: impl FnOnce() -> u32) -> u32 {
        let avail = self.cached_avail();
        if avail >= want {
            return avail;
        }
        let prod = producer();
        // A producer behind our consumer, or more than `size` ahead of what
        // we released, is impossible for a correct peer: ignore it.
        if prod.wrapping_sub(self.released) <= self.size
            && prod.wrapping_sub(self.cached_cons) <= self.size
        {
            self.cached_prod = prod;
        }
        self.cached_avail()
    }

    /// Take up to `want` entries (a partial batch if fewer are there).
    /// Returns the first index and the count; the caller reads them before
    /// the next `release`.
    pub(crate) fn peek(&mut self, want: u32, producer: impl FnOnce() -> u32) -> (u32, u32) {
        let n = want.min(self.avail(want, producer));
        let start = self.cached_cons;
        self.cached_cons = self.cached_cons.wrapping_add(n);
        (start, n)
    }

    /// Entries taken but not yet released back to the producer.
    pub(crate) fn unreleased(&self) -> u32 {
        self.cached_cons.wrapping_sub(self.released)
    }

    /// Give every taken entry back; returns the consumer value to store
    /// (with `Release`).
    pub(crate) fn release(&mut self) -> u32 {
        self.released = self.cached_cons;
        self.released
    }

    /// Index of the next entry we would read.
    pub(crate) fn next(&self) -> u32 {
        self.cached_cons
    }
}

/// One ring mapped from an AF_XDP socket: producer, consumer and flags words
/// plus `size` entries of `T`, all inside one `mmap` of the socket.
pub(crate) struct MappedRing<T: Copy> {
    /// Owns the mapping the pointers below point into; unmapped on drop.
    _map: sys::Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    _marker: PhantomData<T>,
}

// SAFETY: the mapping is owned by this value alone (nothing else in the
// process holds its pointers); the kernel side is synchronised through the
// atomics, so the ring can move to another thread with its owner.
unsafe impl<T: Copy + Send> Send for MappedRing<T> {}

impl<T: Copy> MappedRing<T> {
    /// Map the ring at page offset `pgoff` of socket `fd`, laid out per `off`.
    pub(crate) fn map(
        fd: i32,
        pgoff: u64,
        off: &libc::xdp_ring_offset,
        size: u32,
        what: &str,
    ) -> io::Result<MappedRing<T>> {
        assert!(size.is_power_of_two());
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = sys::Mmap::ring(fd, pgoff, len)
            .map_err(|e| sys::context(e, &format!("mmap of the AF_XDP {what} ring")))?;
        for (name, o, width) in [
            ("producer", off.producer, 4),
            ("consumer", off.consumer, 4),
            ("flags", off.flags, 4),
            ("descs", off.desc, 0),
        ] {
            if o as usize + width > len || o % 4 != 0 {
                return Err(io::Error::other(format!(
                    "kernel reported an unusable {what} ring layout ({name} at {o})"
                )));
            }
        }
        if !(off.desc as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Err(io::Error::other(format!(
                "{what} ring descriptors misaligned at {}",
                off.desc
            )));
        }
        let base = map.ptr();
        // SAFETY: every offset was checked above to lie inside the mapping of
        // `len` bytes and to be suitably aligned; the words are shared with
        // the kernel, which is why they are accessed only as atomics.
        unsafe {
            Ok(MappedRing {
                producer: base.add(off.producer as usize) as *const AtomicU32,
                consumer: base.add(off.consumer as usize) as *const AtomicU32,
                flags: base.add(off.flags as usize) as *const AtomicU32,
                descs: base.add(off.desc as usize) as *mut T,
                mask: size - 1,
                _map: map,
                _marker: PhantomData,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping owned by `self` (checked in
        // `map`), 4-aligned; AtomicU32 allows the kernel's concurrent access.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.consumer }
    }

    /// The kernel's producer index (we are the consumer).
    pub(crate) fn load_producer(&self) -> u32 {
        self.producer().load(Ordering::Acquire)
    }

    /// The kernel's consumer index (we are the producer).
    pub(crate) fn load_consumer(&self) -> u32 {
        self.consumer().load(Ordering::Acquire)
    }

    pub(crate) fn store_producer(&self, v: u32) {
        self.producer().store(v, Ordering::Release)
    }

    pub(crate) fn store_consumer(&self, v: u32) {
        self.consumer().store(v, Ordering::Release)
    }

    /// Whether the kernel asks to be woken (`XDP_RING_NEED_WAKEUP`). A full
    /// fence first orders our earlier index store before this load, so we
    /// can't miss a flag the kernel set after looking at a stale index.
    pub(crate) fn needs_wakeup(&self) -> bool {
        fence(Ordering::SeqCst);
        // SAFETY: as for `producer`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Write entry `idx` (masked into the ring).
    pub(crate) fn write(&self, idx: u32, v: T) {
        let slot = (idx & self.mask) as usize;
        // SAFETY: `slot < size`, and the mapping holds `size` entries after
        // `descs` (checked in `map`). The caller reserved `idx` through
        // `ProdIdx`, so the kernel is not reading this slot until we publish.
        unsafe { std::ptr::write_volatile(self.descs.add(slot), v) }
    }

    /// Read entry `idx` (masked into the ring).
    pub(crate) fn read(&self, idx: u32) -> T {
        let slot = (idx & self.mask) as usize;
        // SAFETY: `slot < size` as in `write`. The caller took `idx` through
        // `ConsIdx` after an Acquire load of the producer, so the kernel wrote
        // it and won't touch it again until we release.
        unsafe { std::ptr::read_volatile(self.descs.add(slot)) }
    }
}

/// A ring we produce into: index state plus the mapping.
pub(crate) struct ProdRing<T: Copy> {
    pub(crate) idx: ProdIdx,
    pub(crate) map: MappedRing<T>,
}

impl<T: Copy> ProdRing<T> {
    /// Publish everything reserved so far (no-op when nothing is pending).
    pub(crate) fn submit(&mut self) {
        if self.idx.unpublished() > 0 {
            self.map.store_producer(self.idx.publish());
        }
    }

    /// Entries published but not yet taken by the kernel.
    pub(crate) fn outstanding(&self) -> u32 {
        self.idx
            .published()
            .wrapping_sub(self.map.load_consumer())
            .min(self.idx.size())
    }
}

/// A ring we consume from.
pub(crate) struct ConsRing<T: Copy> {
    pub(crate) idx: ConsIdx,
    pub(crate) map: MappedRing<T>,
}

impl<T: Copy> ConsRing<T> {
    pub(crate) fn peek(&mut self, want: u32) -> (u32, u32) {
        let map = &self.map;
        self.idx.peek(want, || map.load_producer())
    }

    pub(crate) fn release(&mut self) {
        if self.idx.unreleased() > 0 {
            self.map.store_consumer(self.idx.release());
        }
    }

    /// Entries the kernel produced that we have not taken yet.
    pub(crate) fn pending(&self) -> u32 {
        self.map
            .load_producer()
            .wrapping_sub(self.idx.next())
            .min(self.idx.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A software consumer for a producer-side index, standing in for the
    /// kernel.
    struct FakeKernel {
        cons: u32,
    }

    #[test]
    fn prod_empty_ring_has_size_free() {
        let mut p = ProdIdx::new(8);
        assert_eq!(p.free(8, || unreachable!()), 8);
        assert_eq!(p.unpublished(), 0);
    }

    #[test]
    fn prod_full_then_partial_batch() {
        let k = FakeKernel { cons: 0 };
        let mut p = ProdIdx::new(8);
        assert_eq!(p.reserve(5, || k.cons), (0, 5));
        // Only 3 left: a partial batch.
        assert_eq!(p.reserve(5, || k.cons), (5, 3));
        // Full: nothing more until the consumer moves.
        assert_eq!(p.reserve(1, || k.cons), (8, 0));
        assert_eq!(p.unpublished(), 8);
        assert_eq!(p.publish(), 8);
        assert_eq!(p.unpublished(), 0);
        // Kernel consumes 2: exactly 2 free again.
        let k = FakeKernel { cons: 2 };
        assert_eq!(p.reserve(4, || k.cons), (8, 2));
    }

    #[test]
    fn prod_reads_consumer_only_when_cache_is_short() {
        let mut p = ProdIdx::new(16);
        let mut reads = 0;
        p.reserve(4, || {
            reads += 1;
            0
        });
        assert_eq!(reads, 0, "cache said 16 free, no read needed");
        p.reserve(13, || {
            reads += 1;
            0
        });
        assert_eq!(reads, 1);
    }

    #[test]
    fn prod_wraps_at_u32_max() {
        let start = u32::MAX - 2;
        let mut p = ProdIdx::starting_at(4, start);
        let (s, n) = p.reserve(4, || start);
        assert_eq!((s, n), (start, 4));
        assert_eq!(p.next(), 1, "u32 index wrapped past MAX");
        assert_eq!(p.reserve(1, || start), (1, 0), "full across the wrap");
        assert_eq!(p.publish(), 1);
        // Consumer wraps too and catches up: 4 free again.
        assert_eq!(p.free(4, || 1), 4);
        // Slots stay within the ring across the wrap.
        let slots: Vec<u32> = (0..4).map(|i| start.wrapping_add(i) & 3).collect();
        assert_eq!(slots, vec![1, 2, 3, 0]);
    }

    #[test]
    fn prod_ignores_impossible_consumer() {
        let mut p = ProdIdx::new(8);
        p.reserve(8, || 0);
        p.publish();
        // A consumer far ahead of anything produced must not grant more than
        // `size` free slots.
        assert!(p.free(8, || 1_000_000) <= 8);
        let (_, n) = p.reserve(100, || 1_000_000);
        assert!(n <= 8);
    }

    #[test]
    fn cons_empty_and_full() {
        let mut c = ConsIdx::new(8);
        assert_eq!(c.peek(4, || 0), (0, 0), "empty");
        assert_eq!(c.peek(16, || 8), (0, 8), "full ring, capped at want/avail");
        assert_eq!(c.unreleased(), 8);
        assert_eq!(c.release(), 8);
        assert_eq!(c.unreleased(), 0);
        assert_eq!(c.peek(1, || 8), (8, 0), "empty again");
    }

    #[test]
    fn cons_partial_batches() {
        let mut c = ConsIdx::new(8);
        assert_eq!(c.peek(3, || 5), (0, 3));
        // Cache still holds 2; asking for 2 reads nothing.
        assert_eq!(c.peek(2, || unreachable!()), (3, 2));
        assert_eq!(c.peek(2, || 5), (5, 0));
        assert_eq!(c.release(), 5);
    }

    #[test]
    fn cons_wraps_at_u32_max() {
        let start = u32::MAX - 1;
        let mut c = ConsIdx::starting_at(4, start);
        let prod = start.wrapping_add(4); // == 2
        assert_eq!(prod, 2);
        assert_eq!(c.peek(10, || prod), (start, 4));
        assert_eq!(c.next(), 2);
        assert_eq!(c.release(), 2);
        assert_eq!(c.peek(1, || prod), (2, 0));
        assert_eq!(c.peek(1, || 3), (2, 1));
    }

    #[test]
    fn cons_ignores_impossible_producer() {
        let mut c = ConsIdx::new(8);
        // Producer more than `size` ahead of what we released: ignored.
        assert_eq!(c.peek(8, || 100), (0, 0));
        // Producer behind us: ignored too.
        assert_eq!(c.peek(8, || 4), (0, 4));
        c.release();
        assert_eq!(c.peek(8, || 2), (4, 0));
    }

    #[test]
    fn prod_and_cons_agree_over_many_wraps() {
        // Drive a producer and a consumer index against each other through
        // several u32 wraps with uneven batch sizes; every entry is seen
        // exactly once and in order.
        let size = 16;
        let start = u32::MAX - 100;
        let mut p = ProdIdx::starting_at(size, start);
        let mut c = ConsIdx::starting_at(size, start);
        let mut ring = [0u64; 16];
        let (mut shared_prod, mut shared_cons) = (start, start);
        let (mut next_val, mut expect) = (0u64, 0u64);
        for round in 0..1000u32 {
            let (s, n) = p.reserve(1 + round % 7, || shared_cons);
            for i in 0..n {
                ring[(s.wrapping_add(i) & (size - 1)) as usize] = next_val;
                next_val += 1;
            }
            if round % 3 != 0 {
                shared_prod = p.publish();
            }
            let (s, n) = c.peek(1 + round % 5, || shared_prod);
            for i in 0..n {
                assert_eq!(ring[(s.wrapping_add(i) & (size - 1)) as usize], expect);
                expect += 1;
            }
            shared_cons = c.release();
            assert!(shared_prod.wrapping_sub(shared_cons) <= size);
        }
        assert!(expect > 1000);
    }
}
