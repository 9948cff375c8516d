//! The out-of-order assembler and the SACK scoreboard allocate once, when
//! the first hole or SACK appears, and never per segment or ACK after it.
//!
//! They are private to the crate, so the proof lives in its unit tests: a
//! counting allocator for this test binary, counting only on the thread
//! that asks (tests run in parallel, and the others allocate freely).

// A global allocator is an unsafe trait; this one only forwards to
// `System`, and only in the test build.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::buffer::tests::Rng;
use super::buffer::Assembler;
use super::sack::Scoreboard;
use super::seq::SeqNumber;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator also runs while a thread's locals are torn
    // down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = CALLS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is passed on to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocator calls (allocations, reallocations and frees) made by this
/// thread while `f` runs.
fn calls_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    CALLS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (CALLS.with(Cell::get), r)
}

#[test]
fn the_counter_sees_allocations() {
    let (n, v) = calls_during(|| vec![1u8; 100]);
    assert_eq!(n, 1);
    let (n, ()) = calls_during(|| drop(v));
    assert_eq!(n, 1);
}

/// Random inserts (isolated, merging, duplicate), pops, SACK block
/// reports and clears, with RCV.NXT passing the anchor's rebase point.
fn churn_assembler(
    a: &mut Assembler,
    g: &mut Rng,
    nxt: &mut SeqNumber,
    rebased: &mut usize,
    steps: usize,
) -> usize {
    let mut held = 0;
    for _ in 0..steps {
        match g.below(1000) {
            0..=599 => {
                // Up to ~20 000 segments ahead, some tiny.
                let off = 1 + g.below(20_000) as usize * 1448;
                let len = if g.below(8) == 0 {
                    1 + g.below(10) as usize
                } else {
                    1448
                };
                let _ = a.insert(*nxt + off, *nxt + off + len);
                let _ = a.sack_blocks();
            }
            600..=949 => {
                *nxt += 1448 * (1 + g.below(2) as usize);
                *nxt += a.pop_contiguous(*nxt);
            }
            950..=998 => {}
            _ => {
                if g.below(50) == 0 {
                    a.clear();
                    continue;
                }
                // A big jump over a range kept past it, so that the anchor
                // moves (every 2^31 bytes) with ranges held.
                let far = *nxt + (1 << 28) + 1448;
                let _ = a.insert(far, far + 1448);
                let before = a.anchor();
                *nxt += 1 << 28;
                *nxt += a.pop_contiguous(*nxt);
                if a.anchor() != before && !a.is_empty() {
                    *rebased += 1;
                }
            }
        }
        held = held.max(a.ranges());
    }
    held
}

#[test]
fn the_assembler_allocates_only_its_pool_once() {
    let mut g = Rng(0x5EED);
    // 64 MiB out of order: a pool of 131 072 ranges.
    let mut a = Assembler::new(64 << 20);
    let mut nxt = SeqNumber(0xFFFF_0000);
    let (n, ()) = calls_during(|| {
        let l = nxt + 1448;
        a.insert(l, l + 1448).unwrap();
    });
    assert_eq!(n, 1, "the pool is reserved on the first hole");
    let mut rebased = 0;
    let (n, held) =
        calls_during(|| churn_assembler(&mut a, &mut g, &mut nxt, &mut rebased, 400_000));
    assert!(held > 2_000, "only {held} ranges held at most");
    assert!(
        rebased > 10,
        "the anchor moved with ranges held {rebased} times"
    );
    assert_eq!(n, 0, "{n} allocator calls after the pool was reserved");
    // Giving the memory back and starting over reserves it again, once.
    a.release();
    let (n, _) = calls_during(|| churn_assembler(&mut a, &mut g, &mut nxt, &mut rebased, 50_000));
    assert_eq!(n, 1);
}

#[test]
fn the_scoreboard_allocates_only_its_pool_once() {
    let mut g = Rng(0xACE);
    let smss = 1448;
    let mut sb = Scoreboard::default();
    // A 64 MiB send buffer.
    sb.set_window(64 << 20, smss);
    let mut una = SeqNumber(0xFFF0_0000);
    let wnd = 40_000 * smss;
    let (n, _) = calls_during(|| sb.add(una + smss, una + 2 * smss));
    assert_eq!(n, 1, "the pool is reserved on the first SACK");
    let mut rebased = 0;
    let mut most = 0;
    let (n, ()) = calls_during(|| {
        for _ in 0..400_000 {
            most = most.max(sb.ranges());
            let max = una + wnd;
            match g.below(1000) {
                0..=599 => {
                    let l = una + g.below(40_000) as usize * smss;
                    let len = (1 + g.below(3) as usize) * smss;
                    sb.add(l, l + len);
                }
                600..=799 => {
                    let _ = sb.lost_edge(smss);
                    let from = una + g.below(wnd as u64) as usize;
                    let _ = sb.next_hole(from, max);
                    let _ = sb.hole_bytes(una, max);
                    let _ = sb.hole_bytes(from, max);
                    let _ = sb.is_sacked(from);
                    let _ = sb.highest_sacked();
                }
                800..=949 => {
                    una += g.below(16) as usize * smss;
                    sb.on_cumulative_ack(una);
                }
                950..=998 => {}
                _ => {
                    if g.below(50) == 0 {
                        // An RTO's reneging rule: the pool stays.
                        sb.clear();
                    } else {
                        // Over a block SACKed past it, so that the anchor
                        // moves (every 2^31 bytes) with ranges held.
                        let far = una + (1 << 28) + smss;
                        sb.add(far, far + smss);
                        let before = sb.anchor();
                        una += 1 << 28;
                        sb.on_cumulative_ack(una);
                        if sb.anchor() != before && !sb.is_empty() {
                            rebased += 1;
                        }
                    }
                }
            }
        }
    });
    assert_eq!(n, 0, "{n} allocator calls after the pool was reserved");
    assert!(most > 2_000, "only {most} ranges held at most");
    assert!(
        rebased > 10,
        "the anchor moved with ranges held {rebased} times"
    );
}
