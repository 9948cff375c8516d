//! The table's timer heap: one entry per (connection, deadline), lazily
//! invalidated. A connection pushes an entry only when its earliest
//! deadline moves *earlier* than the one it already has in the heap; a later
//! deadline waits for the old entry to fire, at which point the connection
//! re-arms. So restarting the RTO on every ACK costs nothing here, idle
//! connections without timers have no entry at all, and `poll` only ever
//! touches connections whose entry is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Instant;

#[derive(Debug, Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl TimerHeap {
    pub fn push(&mut self, at: Instant, slot: u32, gen: u32) {
        self.heap.push(Reverse((at, slot, gen)));
    }

    /// The earliest entry, possibly stale (then `poll` is woken early and
    /// finds nothing to do, which is harmless).
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32, u32)> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}
