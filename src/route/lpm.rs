//! Longest-prefix match over IPv4 prefixes: the table under the FIB.
//!
//! The top 12 bits of an address index an array of 4096 slots directly;
//! below it, a multibit trie of 6-bit strides (nodes at depths 12, 18 and
//! 24, then a last level of 2 bits), each node compressed with bitmaps and
//! popcounts in the manner of Poptrie (Asai and Ohara, SIGCOMM 2015), but
//! without pushing prefixes down across levels:
//!
//! - A node *owns* the prefixes whose length ends inside its stride (the root
//!   array owns /0 to /12, the node at depth 18 owns /19 to /24), kept sorted
//!   in an `Own` block. That block is the exact-match store: `get`, `remove`
//!   and `iter` read it, and it keeps prefixes that longer ones hide.
//! - From its owned prefixes alone a node derives, for each of its 64 slots,
//!   the longest one covering the slot, stored once per run of equal slots
//!   (`cover` and `runs` bitmaps, a leaf block). Children hang off a third
//!   bitmap and sit contiguously, so slot `v`'s child is found by a popcount.
//! - A lookup walks down while a child exists, keeping the leaf of the last
//!   covered slot, and reads one leaf at the end.
//!
//! Because nothing is pushed below the node that owns it, an update rewrites
//! one node's leaves (at most 64), or the root array's 4096 for a prefix of
//! /12 or shorter, whatever the table's size: a default route on a full
//! table costs microseconds. Full leaf pushing would save a lookup its
//! per-level bit test but make a short prefix rewrite everything beneath it.
//!
//! Children, leaves and owned prefixes live in three arenas of exact-size
//! blocks; a block that grows or shrinks moves, and freed space is merged
//! with its free neighbours and reused best-fit, so a table that grew to a
//! million prefixes one at a time holds little dead space. Indices are
//! `u32`: four billion nodes are far beyond any memory this runs in.

use core::fmt;
use core::net::Ipv4Addr;
use std::collections::{BTreeMap, BTreeSet};

/// Address bits the root array resolves at once.
const ROOT_BITS: u32 = 12;
const ROOT_SLOTS: usize = 1 << ROOT_BITS;
/// Address bits one node consumes: 2^6 slots fill a `u64` bitmap.
const STRIDE: u32 = 6;
/// A node with no children and no prefixes, never written: what a slot
/// without a child points to, so a lookup need not test for it.
const EMPTY: u32 = 0;
const NO_LEAF: u32 = u32::MAX;
/// The root, where the iterator and the update paths name a node.
const ROOT: u32 = u32::MAX;

/// A prefix length above 32 was given to [`PrefixTable::insert`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct PrefixLenError {
    pub len: u8,
}

impl fmt::Display for PrefixLenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "prefix length {} is greater than 32", self.len)
    }
}

impl std::error::Error for PrefixLenError {}

/// The hot part of a node: what a lookup reads. Aligned so that no node
/// straddles two cache lines (measured: a quarter faster at 1M prefixes).
#[derive(Copy, Clone, Default, Debug)]
#[repr(align(32))]
struct Node {
    /// Bit v: slot v has a child node.
    children: u64,
    /// Bit v: a prefix this node owns covers slot v.
    cover: u64,
    /// Bit v: slot v is covered and its best prefix differs from the slot
    /// before it. One leaf per run.
    runs: u64,
    child_base: u32,
    leaf_base: u32,
}

/// The cold part of a node, kept apart so that the cache lines a lookup
/// reads hold only `Node`s. Indexed like the nodes.
#[derive(Copy, Clone, Default, Debug)]
struct Meta {
    own_base: u32,
    /// At most 126: two /n+1 to 64 /n+6.
    own_len: u8,
}

/// One /12: its node at depth 12, and the leaf of the longest prefix of
/// /0 to /12 containing it.
#[derive(Copy, Clone, Debug)]
struct Slot {
    child: u32,
    leaf: u32,
}

const NO_SLOT: Slot = Slot {
    child: EMPTY,
    leaf: NO_LEAF,
};

#[derive(Copy, Clone, Debug)]
struct Leaf<V> {
    value: V,
    len: u8,
}

/// A prefix owned by a node (or the root): its first slot and its length.
#[derive(Copy, Clone, Debug)]
struct Own<V> {
    value: V,
    start: u16,
    len: u8,
}

/// The free space of an arena: free extents merged with their neighbours,
/// handed out best-fit. No free extent touches `end`; the arena is cut
/// back instead.
#[derive(Clone, Debug, Default)]
struct Extents {
    by_base: BTreeMap<u32, u32>,
    by_len: BTreeSet<(u32, u32)>,
    end: u32,
}

impl Extents {
    fn alloc(&mut self, n: u32) -> u32 {
        if let Some(&(len, base)) = self.by_len.range((n, 0)..).next() {
            self.take(base, len);
            if len > n {
                self.put(base + n, len - n);
            }
            return base;
        }
        let base = self.end;
        self.end += n;
        base
    }

    fn release(&mut self, mut base: u32, mut n: u32) {
        if n == 0 {
            return;
        }
        if let Some((&b, &l)) = self.by_base.range(..base).next_back() {
            if b + l == base {
                self.take(b, l);
                base = b;
                n += l;
            }
        }
        if let Some(&l) = self.by_base.get(&(base + n)) {
            self.take(base + n, l);
            n += l;
        }
        if base + n == self.end {
            self.end = base;
        } else {
            self.put(base, n);
        }
    }

    fn take(&mut self, base: u32, len: u32) {
        self.by_base.remove(&base);
        self.by_len.remove(&(len, base));
    }

    fn put(&mut self, base: u32, len: u32) {
        self.by_base.insert(base, len);
        self.by_len.insert((len, base));
    }

    /// An estimate: the B-trees do not report their nodes. An entry of
    /// 8 bytes in nodes of 11 at least half full, plus the node headers.
    fn bytes(&self) -> usize {
        (self.by_base.len() + self.by_len.len()) * 24
    }
}

/// Makes room for `n` more items, growing by an eighth rather than
/// doubling: at a million prefixes a doubled vector can hold half its
/// memory unused.
fn reserve<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() - v.len() < n {
        v.reserve_exact(n.max(v.len() / 8).max(16));
    }
}

/// Blocks of `T` in one vector.
#[derive(Clone, Debug)]
struct Arena<T> {
    items: Vec<T>,
    ext: Extents,
}

impl<T: Copy> Arena<T> {
    fn new() -> Self {
        Arena {
            items: Vec::new(),
            ext: Extents::default(),
        }
    }

    fn alloc(&mut self, block: &[T]) -> u32 {
        let base = self.ext.alloc(block.len() as u32);
        let b = base as usize;
        if b == self.items.len() {
            reserve(&mut self.items, block.len());
            self.items.extend_from_slice(block);
        } else {
            self.items[b..b + block.len()].copy_from_slice(block);
        }
        base
    }

    fn release(&mut self, base: u32, n: usize) {
        self.ext.release(base, n as u32);
        self.items.truncate(self.ext.end as usize);
    }

    fn block(&self, base: u32, n: usize) -> &[T] {
        &self.items[base as usize..base as usize + n]
    }

    fn bytes(&self) -> usize {
        self.items.capacity() * core::mem::size_of::<T>() + self.ext.bytes()
    }
}

/// Slots of a node at `depth`: 6 bits, except 2 at depth 30.
#[inline]
fn stride(depth: u32) -> u32 {
    STRIDE.min(32 - depth)
}

#[inline]
fn slot(addr: u32, depth: u32) -> u32 {
    let k = stride(depth);
    (addr >> (32 - depth - k)) & ((1 << k) - 1)
}

/// The depth of the node that owns a prefix longer than /12.
#[inline]
fn owner_depth(len: u8) -> u32 {
    (u32::from(len) - 1) / STRIDE * STRIDE
}

#[inline]
fn mask(addr: u32, len: u8) -> u32 {
    // A shift by 32 would overflow: /0 is the empty mask.
    addr & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// `a` if `c`, else `b`, by masks: the compiler keeps it free of branches.
#[inline(always)]
fn select(c: bool, a: u32, b: u32) -> u32 {
    let m = 0u32.wrapping_sub(u32::from(c));
    (a & m) | (b & !m)
}

/// The index of `n`'s child at slot `v`.
#[inline(always)]
fn child_at(n: &Node, v: u32) -> Option<u32> {
    let bit = 1u64 << v;
    (n.children & bit != 0).then(|| n.child_base + (n.children & (bit - 1)).count_ones())
}

/// Bits 0..=v.
#[inline]
fn up_to(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// For each slot, the index in `own` of the longest prefix covering it
/// (`u16::MAX`: none); `span_bits(len)` is log2 of the slots a prefix of
/// that length covers.
fn paint<V: Copy>(best: &mut [u16], own: &[Own<V>], span_bits: impl Fn(u8) -> u32) {
    best.fill(u16::MAX);
    for (i, o) in own.iter().enumerate() {
        let start = usize::from(o.start);
        for b in &mut best[start..start + (1 << span_bits(o.len))] {
            if *b == u16::MAX || own[usize::from(*b)].len < o.len {
                *b = i as u16;
            }
        }
    }
}

/// The runs of equal `best` entries as leaves, and each slot's run number
/// (`u32::MAX`: uncovered).
fn runs_of<V: Copy>(best: &[u16], own: &[Own<V>], leaves: &mut Vec<Leaf<V>>, run: &mut [u32]) {
    leaves.clear();
    let mut prev = u16::MAX;
    for (s, &b) in best.iter().enumerate() {
        if b != u16::MAX && b != prev {
            let o = own[usize::from(b)];
            leaves.push(Leaf {
                value: o.value,
                len: o.len,
            });
        }
        run[s] = if b == u16::MAX {
            u32::MAX
        } else {
            leaves.len() as u32 - 1
        };
        prev = b;
    }
}

/// A longest-prefix-match table of IPv4 prefixes to `V`.
///
/// A lookup reads one root slot, at most four nodes and one leaf. An update
/// touches the nodes on one path and rewrites one node's leaves, or the
/// root's for /12 and shorter.
#[derive(Clone)]
pub struct PrefixTable<V: Copy> {
    direct: Box<[Slot; ROOT_SLOTS]>,
    /// The prefixes of /0 to /12, sorted by (start slot, length).
    root_own: Vec<Own<V>>,
    /// The root's leaf block: base and length.
    root_leaves: (u32, u32),
    /// `nodes[EMPTY]` is the sentinel; `meta` is indexed alike.
    nodes: Vec<Node>,
    meta: Vec<Meta>,
    node_ext: Extents,
    leaves: Arena<Leaf<V>>,
    own: Arena<Own<V>>,
    len: usize,
}

impl<V: Copy> Default for PrefixTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Copy> PrefixTable<V> {
    /// An empty table: 32 KiB for the root array and nothing else.
    pub fn new() -> Self {
        PrefixTable {
            direct: Box::new([NO_SLOT; ROOT_SLOTS]),
            root_own: Vec::new(),
            root_leaves: (0, 0),
            nodes: vec![Node::default()],
            meta: vec![Meta::default()],
            node_ext: Extents {
                end: 1,
                ..Extents::default()
            },
            leaves: Arena::new(),
            own: Arena::new(),
            len: 0,
        }
    }

    /// Insert or replace the value of `prefix/len`; host bits of `prefix`
    /// beyond `len` are ignored. Returns the value replaced.
    pub fn insert(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        value: V,
    ) -> Result<Option<V>, PrefixLenError> {
        if len > 32 {
            return Err(PrefixLenError { len });
        }
        let addr = mask(u32::from(prefix), len);
        let start = (addr >> (32 - ROOT_BITS)) as u16;
        if u32::from(len) <= ROOT_BITS {
            let key = (start, len);
            let pos = self.root_own.partition_point(|o| (o.start, o.len) < key);
            let old = match self.root_own.get_mut(pos) {
                Some(o) if (o.start, o.len) == key => Some(core::mem::replace(&mut o.value, value)),
                _ => {
                    self.root_own.insert(pos, Own { value, start, len });
                    None
                }
            };
            self.rebuild_root();
            self.len += usize::from(old.is_none());
            return Ok(old);
        }
        let mut idx = self.direct[usize::from(start)].child;
        if idx == EMPTY {
            idx = self.alloc_nodes(&[(Node::default(), Meta::default())]);
            self.direct[usize::from(start)].child = idx;
        }
        let target = owner_depth(len);
        let mut depth = ROOT_BITS;
        while depth < target {
            let v = slot(addr, depth);
            idx = match self.child(idx, v) {
                Some(c) => c,
                None => self.add_child(idx, v),
            };
            depth += STRIDE;
        }
        let entry = Own {
            value,
            start: slot(addr, depth) as u16,
            len,
        };
        let old = self.own_insert(idx, entry);
        self.len += usize::from(old.is_none());
        self.rebuild_leaves(idx, depth);
        Ok(old)
    }

    /// Remove `prefix/len` (host bits ignored); the addresses it covered fall
    /// back to the next longest prefix containing them.
    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Option<V> {
        if len > 32 {
            return None;
        }
        let addr = mask(u32::from(prefix), len);
        let start = (addr >> (32 - ROOT_BITS)) as u16;
        if u32::from(len) <= ROOT_BITS {
            let pos = self
                .root_own
                .iter()
                .position(|o| o.start == start && o.len == len)?;
            let old = self.root_own.remove(pos).value;
            self.len -= 1;
            self.rebuild_root();
            return Some(old);
        }
        let top = self.direct[usize::from(start)].child;
        if top == EMPTY {
            return None;
        }
        // (parent, slot) of each node below depth 12 on the way down, so
        // that nodes left empty can be unlinked bottom-up.
        let mut path = [(0u32, 0u32); 3];
        let mut n_path = 0;
        let target = owner_depth(len);
        let mut idx = top;
        let mut depth = ROOT_BITS;
        while depth < target {
            let v = slot(addr, depth);
            let c = self.child(idx, v)?;
            path[n_path] = (idx, v);
            n_path += 1;
            idx = c;
            depth += STRIDE;
        }
        let old = self.own_remove(idx, slot(addr, depth) as u16, len)?;
        self.len -= 1;
        self.rebuild_leaves(idx, depth);
        let mut node = idx;
        while self.nodes[node as usize].children == 0 && self.meta[node as usize].own_len == 0 {
            if n_path == 0 {
                self.release_nodes(node, 1);
                self.direct[usize::from(start)].child = EMPTY;
                break;
            }
            n_path -= 1;
            let (parent, v) = path[n_path];
            self.remove_child(parent, v);
            node = parent;
        }
        Some(old)
    }

    /// The value of exactly `prefix/len` (host bits ignored).
    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<V> {
        if len > 32 {
            return None;
        }
        let addr = mask(u32::from(prefix), len);
        let start = (addr >> (32 - ROOT_BITS)) as u16;
        let (own, start) = if u32::from(len) <= ROOT_BITS {
            (&self.root_own[..], start)
        } else {
            let mut idx = self.direct[usize::from(start)].child;
            let target = owner_depth(len);
            let mut depth = ROOT_BITS;
            while depth < target {
                idx = self.child(idx, slot(addr, depth))?;
                depth += STRIDE;
            }
            (self.own_block(idx), slot(addr, depth) as u16)
        };
        own.iter()
            .find(|o| o.start == start && o.len == len)
            .map(|o| o.value)
    }

    /// Longest-prefix match: the value of the most specific prefix
    /// containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<V> {
        self.lookup_len(addr).map(|(_, v)| v)
    }

    /// Longest-prefix match, with the length of the prefix matched.
    #[inline]
    pub fn lookup_len(&self, addr: Ipv4Addr) -> Option<(u8, V)> {
        let a = u32::from(addr);
        let root = self.direct[(a >> (32 - ROOT_BITS)) as usize];
        let mut leaf = root.leaf;
        // The levels spelled out, so that each shift is a constant. Whether
        // a /12's node covers the next 6 bits is a coin toss, so that level
        // takes its leaf without a branch: a mispredicted branch would
        // discard the loads of the lookups behind it. Deeper, an address
        // is mostly either inside a prefix of the node or in none, and a
        // predicted branch lets the leaf's load start before the node's
        // has arrived.
        'walk: {
            let n = &self.nodes[root.child as usize];
            let v = (a >> 14) & 63;
            let in_node = n
                .leaf_base
                .wrapping_add((n.runs & up_to(v)).count_ones())
                .wrapping_sub(1);
            leaf = select(n.cover >> v & 1 != 0, in_node, leaf);
            let Some(n) = child_at(n, v) else {
                break 'walk;
            };
            let Some(n) = self.step(n, (a >> 8) & 63, &mut leaf) else {
                break 'walk;
            };
            let Some(n) = self.step(n, (a >> 2) & 63, &mut leaf) else {
                break 'walk;
            };
            self.step(n, a & 3, &mut leaf);
        }
        let l = self.leaves.items.get(leaf as usize)?;
        Some((l.len, l.value))
    }

    /// One level of a lookup below depth 12: takes the leaf if node `i`
    /// covers slot `v`, and returns the child there.
    #[inline(always)]
    fn step(&self, i: u32, v: u32, leaf: &mut u32) -> Option<u32> {
        let n = &self.nodes[i as usize];
        if n.cover >> v & 1 != 0 {
            *leaf = n.leaf_base + (n.runs & up_to(v)).count_ones() - 1;
        }
        child_at(n, v)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held, spare capacity and free blocks included (the free
    /// blocks' index is estimated).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<[Slot; ROOT_SLOTS]>()
            + self.root_own.capacity() * core::mem::size_of::<Own<V>>()
            + self.nodes.capacity() * core::mem::size_of::<Node>()
            + self.meta.capacity() * core::mem::size_of::<Meta>()
            + self.node_ext.bytes()
            + self.leaves.bytes()
            + self.own.bytes()
    }

    /// Every prefix in ascending (address, length) order.
    pub fn iter(&self) -> Iter<'_, V> {
        let mut frames = [Frame::default(); 5];
        frames[0].node = ROOT;
        Iter {
            table: self,
            frames,
            top: 1,
        }
    }

    fn own_block(&self, idx: u32) -> &[Own<V>] {
        if idx == ROOT {
            return &self.root_own;
        }
        let m = self.meta[idx as usize];
        self.own.block(m.own_base, usize::from(m.own_len))
    }

    fn child(&self, idx: u32, v: u32) -> Option<u32> {
        if idx == ROOT {
            let c = self.direct[v as usize].child;
            return (c != EMPTY).then_some(c);
        }
        child_at(&self.nodes[idx as usize], v)
    }

    /// Gives `parent` an empty child at slot `v`; returns its index.
    fn add_child(&mut self, parent: u32, v: u32) -> u32 {
        let p = self.nodes[parent as usize];
        let count = p.children.count_ones() as usize;
        let rank = (p.children & ((1u64 << v) - 1)).count_ones() as usize;
        let base = p.child_base as usize;
        let mut block: Vec<(Node, Meta)> = (base..base + count)
            .map(|i| (self.nodes[i], self.meta[i]))
            .collect();
        block.insert(rank, (Node::default(), Meta::default()));
        self.release_nodes(p.child_base, count);
        let new_base = self.alloc_nodes(&block);
        let p = &mut self.nodes[parent as usize];
        p.children |= 1 << v;
        p.child_base = new_base;
        new_base + rank as u32
    }

    /// Unlinks `parent`'s child at slot `v`, which holds nothing.
    fn remove_child(&mut self, parent: u32, v: u32) {
        let p = self.nodes[parent as usize];
        let count = p.children.count_ones() as usize;
        let rank = (p.children & ((1u64 << v) - 1)).count_ones() as usize;
        let base = p.child_base as usize;
        let block: Vec<(Node, Meta)> = (base..base + count)
            .filter(|&i| i != base + rank)
            .map(|i| (self.nodes[i], self.meta[i]))
            .collect();
        self.release_nodes(p.child_base, count);
        let new_base = if block.is_empty() {
            0
        } else {
            self.alloc_nodes(&block)
        };
        let p = &mut self.nodes[parent as usize];
        p.children &= !(1 << v);
        p.child_base = new_base;
    }

    fn alloc_nodes(&mut self, block: &[(Node, Meta)]) -> u32 {
        let base = self.node_ext.alloc(block.len() as u32);
        let b = base as usize;
        if b == self.nodes.len() {
            reserve(&mut self.nodes, block.len());
            reserve(&mut self.meta, block.len());
            self.nodes.extend(block.iter().map(|b| b.0));
            self.meta.extend(block.iter().map(|b| b.1));
        } else {
            for (i, &(node, meta)) in block.iter().enumerate() {
                self.nodes[b + i] = node;
                self.meta[b + i] = meta;
            }
        }
        base
    }

    fn release_nodes(&mut self, base: u32, n: usize) {
        self.node_ext.release(base, n as u32);
        self.nodes.truncate(self.node_ext.end as usize);
        self.meta.truncate(self.node_ext.end as usize);
    }

    /// Adds or replaces an owned prefix of node `idx`, keeping the block
    /// sorted by (start, len): the order `iter` yields.
    fn own_insert(&mut self, idx: u32, entry: Own<V>) -> Option<V> {
        let m = self.meta[idx as usize];
        let n = usize::from(m.own_len);
        let key = (entry.start, entry.len);
        let block = self.own.block(m.own_base, n);
        let pos = block.partition_point(|o| (o.start, o.len) < key);
        if block.get(pos).is_some_and(|o| (o.start, o.len) == key) {
            let o = &mut self.own.items[m.own_base as usize + pos];
            return Some(core::mem::replace(&mut o.value, entry.value));
        }
        let mut new = Vec::with_capacity(n + 1);
        new.extend_from_slice(&block[..pos]);
        new.push(entry);
        new.extend_from_slice(&block[pos..]);
        self.own.release(m.own_base, n);
        let base = self.own.alloc(&new);
        self.meta[idx as usize] = Meta {
            own_base: base,
            own_len: m.own_len + 1,
        };
        None
    }

    fn own_remove(&mut self, idx: u32, start: u16, len: u8) -> Option<V> {
        let m = self.meta[idx as usize];
        let n = usize::from(m.own_len);
        let block = self.own.block(m.own_base, n);
        let pos = block
            .iter()
            .position(|o| o.start == start && o.len == len)?;
        let old = block[pos].value;
        let mut rest = block.to_vec();
        rest.remove(pos);
        self.own.release(m.own_base, n);
        let base = if rest.is_empty() {
            0
        } else {
            self.own.alloc(&rest)
        };
        self.meta[idx as usize] = Meta {
            own_base: base,
            own_len: m.own_len - 1,
        };
        Some(old)
    }

    /// Recomputes node `idx`'s leaves from the prefixes it owns.
    fn rebuild_leaves(&mut self, idx: u32, depth: u32) {
        let k = stride(depth);
        let slots = 1usize << k;
        let own = self.own_block(idx);
        let mut best = [0u16; 64];
        paint(&mut best[..slots], own, |len| k + depth - u32::from(len));
        let mut leaves = Vec::new();
        let mut run = [0u32; 64];
        runs_of(&best[..slots], own, &mut leaves, &mut run[..slots]);
        let (mut cover, mut runs) = (0u64, 0u64);
        for s in 0..slots {
            if run[s] != u32::MAX {
                cover |= 1 << s;
                if s == 0 || run[s - 1] != run[s] {
                    runs |= 1 << s;
                }
            }
        }
        let node = self.nodes[idx as usize];
        let old_n = node.runs.count_ones() as usize;
        let base = if leaves.len() == old_n {
            let b = node.leaf_base as usize;
            self.leaves.items[b..b + old_n].copy_from_slice(&leaves);
            node.leaf_base
        } else {
            self.leaves.release(node.leaf_base, old_n);
            if leaves.is_empty() {
                0
            } else {
                self.leaves.alloc(&leaves)
            }
        };
        let node = &mut self.nodes[idx as usize];
        node.cover = cover;
        node.runs = runs;
        node.leaf_base = base;
    }

    /// Recomputes the root array's leaves from the prefixes of /0 to /12.
    fn rebuild_root(&mut self) {
        let mut best = vec![0u16; ROOT_SLOTS];
        paint(&mut best, &self.root_own, |len| ROOT_BITS - u32::from(len));
        let mut leaves = Vec::new();
        let mut run = vec![0u32; ROOT_SLOTS];
        runs_of(&best, &self.root_own, &mut leaves, &mut run);
        let (old_base, old_n) = self.root_leaves;
        self.leaves.release(old_base, old_n as usize);
        let base = if leaves.is_empty() {
            0
        } else {
            self.leaves.alloc(&leaves)
        };
        self.root_leaves = (base, leaves.len() as u32);
        for (slot, r) in self.direct.iter_mut().zip(run) {
            slot.leaf = if r == u32::MAX { NO_LEAF } else { base + r };
        }
    }
}

impl<V: Copy + fmt::Debug> fmt::Debug for PrefixTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct P(Ipv4Addr, u8);
        impl fmt::Debug for P {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}/{}", self.0, self.1)
            }
        }
        f.debug_map()
            .entries(self.iter().map(|(a, l, v)| (P(a, l), v)))
            .finish()
    }
}

#[derive(Copy, Clone, Default)]
struct Frame {
    /// A node index, or `ROOT`.
    node: u32,
    depth: u32,
    /// The node's address bits (`depth` of them).
    prefix: u32,
    /// Next slot whose child is to be visited.
    slot: u32,
    /// Next owned prefix to yield.
    own_pos: u16,
}

/// Prefixes in ascending (address, length) order: a depth-first walk that
/// yields, at each slot, the prefixes a node owns starting there (shortest
/// first) and then the slot's child.
pub struct Iter<'a, V: Copy> {
    table: &'a PrefixTable<V>,
    /// The root and nodes at depths 12, 18, 24 and 30.
    frames: [Frame; 5],
    top: usize,
}

impl<V: Copy> Iterator for Iter<'_, V> {
    type Item = (Ipv4Addr, u8, V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let f = self.frames.get_mut(self.top.checked_sub(1)?)?;
            let k = if f.node == ROOT {
                ROOT_BITS
            } else {
                stride(f.depth)
            };
            let shift = 32 - f.depth - k;
            if let Some(o) = self.table.own_block(f.node).get(usize::from(f.own_pos)) {
                if u32::from(o.start) <= f.slot {
                    f.own_pos += 1;
                    let addr = f.prefix | (u32::from(o.start) << shift);
                    return Some((Ipv4Addr::from(addr), o.len, o.value));
                }
            }
            if f.slot >= 1 << k {
                self.top -= 1;
                continue;
            }
            let s = f.slot;
            f.slot += 1;
            if let Some(c) = self.table.child(f.node, s) {
                let child = Frame {
                    node: c,
                    depth: f.depth + k,
                    prefix: f.prefix | (s << shift),
                    slot: 0,
                    own_pos: 0,
                };
                *self.frames.get_mut(self.top)? = child;
                self.top += 1;
            }
        }
    }
}

/// Shares of prefix lengths per 100 000 in the synthetic table, after the
/// public IPv4 BGP table's mix; /24 takes the rest (about 62 %).
const INTERNET_MIX: [(u8, u32); 23] = [
    (8, 3),
    (9, 6),
    (10, 15),
    (11, 40),
    (12, 100),
    (13, 250),
    (14, 500),
    (15, 1000),
    (16, 1300),
    (17, 900),
    (18, 1500),
    (19, 2800),
    (20, 4200),
    (21, 5000),
    (22, 10500),
    (23, 9800),
    (25, 30),
    (26, 20),
    (27, 15),
    (28, 10),
    (29, 10),
    (30, 10),
    (32, 12),
];

/// `n` distinct prefixes with a full BGP table's length mix, in random
/// order: about 62 % /24, 36 % /16 to /23 (mostly /22 and /23), 2 % /8 to
/// /15, 0.1 % longer than /24. First octets are unicast (1 to 223, not 10 or
/// 127). A third of the prefixes longer than /16 are more-specifics of a
/// shorter prefix already chosen, as operators deaggregate their blocks.
/// For benches and tests; `n` at most 4 000 000.
#[doc(hidden)]
pub fn synthetic_internet_table(n: usize, seed: u64) -> Vec<(Ipv4Addr, u8)> {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    assert!(n <= 4_000_000, "synthetic_internet_table: n above 4M");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut below = |n: u32| ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32;

    let mut counts = [0usize; 33];
    let mut rest = n;
    for (len, share) in INTERNET_MIX {
        // No length takes more than a quarter of its space, so distinct
        // prefixes are quick to draw; what is left goes to /24.
        let c = (n * share as usize / 100_000).min((1usize << len) / 4);
        counts[usize::from(len)] = c;
        rest -= c;
    }
    counts[24] = rest;

    let first_octets: Vec<u32> = (1..=223).filter(|&o| o != 10 && o != 127).collect();
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out: Vec<(u32, u8)> = Vec::with_capacity(n);
    for len in 8..=32u8 {
        let shorter = out.len();
        let mut made = 0;
        while made < counts[usize::from(len)] {
            let addr = if len > 16 && shorter > 0 && below(3) == 0 {
                let (p, pl) = out[below(shorter as u32) as usize];
                p | (below(u32::MAX) & (u32::MAX >> pl))
            } else {
                first_octets[below(first_octets.len() as u32) as usize] << 24 | below(u32::MAX) >> 8
            };
            let p = (mask(addr, len), len);
            if seen.insert(p) {
                out.push(p);
                made += 1;
            }
        }
    }
    for i in (1..out.len()).rev() {
        out.swap(i, below(i as u32 + 1) as usize);
    }
    out.into_iter()
        .map(|(a, l)| (Ipv4Addr::from(a), l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// The obvious table: a list scanned for the longest containing prefix.
    #[derive(Default)]
    struct Model {
        routes: Vec<(u32, u8, u32)>,
    }

    impl Model {
        fn insert(&mut self, addr: u32, len: u8, value: u32) -> Option<u32> {
            let addr = mask(addr, len);
            match self.routes.iter_mut().find(|r| r.0 == addr && r.1 == len) {
                Some(r) => Some(core::mem::replace(&mut r.2, value)),
                None => {
                    self.routes.push((addr, len, value));
                    None
                }
            }
        }

        fn remove(&mut self, addr: u32, len: u8) -> Option<u32> {
            let addr = mask(addr, len);
            let i = self.routes.iter().position(|r| r.0 == addr && r.1 == len)?;
            Some(self.routes.swap_remove(i).2)
        }

        fn get(&self, addr: u32, len: u8) -> Option<u32> {
            let addr = mask(addr, len);
            self.routes
                .iter()
                .find(|r| r.0 == addr && r.1 == len)
                .map(|r| r.2)
        }

        fn lookup_len(&self, addr: u32) -> Option<(u8, u32)> {
            self.routes
                .iter()
                .filter(|r| mask(addr, r.1) == r.0)
                .max_by_key(|r| r.1)
                .map(|r| (r.1, r.2))
        }

        fn sorted(&self) -> Vec<(Ipv4Addr, u8, u32)> {
            let mut v: Vec<_> = self
                .routes
                .iter()
                .map(|&(a, l, x)| (Ipv4Addr::from(a), l, x))
                .collect();
            v.sort_by_key(|&(a, l, _)| (a, l));
            v
        }
    }

    fn check_same(t: &PrefixTable<u32>, m: &Model, addrs: impl Iterator<Item = u32>) {
        for a in addrs {
            let (got, want) = (t.lookup_len(Ipv4Addr::from(a)), m.lookup_len(a));
            if got != want {
                let containing: Vec<_> = m
                    .sorted()
                    .into_iter()
                    .filter(|r| mask(a, r.1) == u32::from(r.0))
                    .collect();
                panic!(
                    "lookup {}: {got:?}, want {want:?}; prefixes containing it: {containing:?}",
                    Ipv4Addr::from(a)
                );
            }
        }
    }

    /// Every item of every arena is in exactly one live block or one free
    /// extent: nothing leaks, nothing is shared. Free extents are merged and
    /// none ends the arena. No node but the sentinel is empty, and the
    /// sentinel is.
    fn check_blocks<V: Copy>(t: &PrefixTable<V>) {
        fn mark(end: usize, ext: &Extents, live: &[(u32, usize)]) {
            assert_eq!(ext.end as usize, end);
            assert_eq!(ext.by_base.len(), ext.by_len.len());
            let mut used = vec![0u8; end];
            let free = ext.by_base.iter().map(|(&b, &l)| (b, l as usize));
            for (b, n) in free.chain(live.iter().copied()) {
                for u in &mut used[b as usize..b as usize + n] {
                    *u += 1;
                }
            }
            assert!(used.iter().all(|&u| u == 1), "{used:?}");
            for (&b, &l) in &ext.by_base {
                assert!(ext.by_len.contains(&(l, b)));
                assert!(b + l < ext.end, "free extent at the end");
                assert!(!ext.by_base.contains_key(&(b + l)), "unmerged extents");
            }
        }
        let mut nodes = vec![(EMPTY, 1)];
        let mut leaves = vec![(t.root_leaves.0, t.root_leaves.1 as usize)];
        let mut own = vec![];
        let mut stack: Vec<u32> = t
            .direct
            .iter()
            .map(|s| s.child)
            .filter(|&c| c != EMPTY)
            .collect();
        nodes.extend(stack.iter().map(|&c| (c, 1)));
        while let Some(i) = stack.pop() {
            let n = t.nodes[i as usize];
            let m = t.meta[i as usize];
            assert!(n.children != 0 || m.own_len != 0, "empty node {i}");
            let c = n.children.count_ones();
            if c > 0 {
                nodes.push((n.child_base, c as usize));
                stack.extend(n.child_base..n.child_base + c);
            }
            leaves.push((n.leaf_base, n.runs.count_ones() as usize));
            own.push((m.own_base, usize::from(m.own_len)));
        }
        let e = t.nodes[EMPTY as usize];
        assert_eq!((e.children, e.cover, e.runs), (0, 0, 0));
        assert_eq!(t.meta.len(), t.nodes.len());
        mark(t.nodes.len(), &t.node_ext, &nodes);
        mark(t.leaves.items.len(), &t.leaves.ext, &leaves);
        mark(t.own.items.len(), &t.own.ext, &own);
    }

    /// Random inserts, replaces, removes and lookups against `Model`, over
    /// prefixes of every length drawn around a few anchor addresses so that
    /// they nest deeply and share nodes.
    #[test]
    fn agrees_with_linear_model_under_random_updates() {
        for seed in 0..8u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let anchors: Vec<u32> = (0..4).map(|_| rng.next_u32()).collect();
            let draw_addr = |rng: &mut ChaCha8Rng| {
                let a = anchors[rng.next_u32() as usize % anchors.len()];
                // Flip a few low-order bits, or none, or take any address.
                match rng.next_u32() % 4 {
                    0 => a,
                    1 => a ^ (rng.next_u32() >> (rng.next_u32() % 32)),
                    2 => a ^ (rng.next_u32() & 0xff),
                    _ => rng.next_u32(),
                }
            };
            let mut t = PrefixTable::new();
            let mut m = Model::default();
            for step in 0..3000 {
                let addr = draw_addr(&mut rng);
                let len = (rng.next_u32() % 33) as u8;
                let value = rng.next_u32();
                match rng.next_u32() % 10 {
                    0..=4 => assert_eq!(
                        t.insert(Ipv4Addr::from(addr), len, value).unwrap(),
                        m.insert(addr, len, value)
                    ),
                    5..=7 => {
                        // Remove something present most of the time.
                        let (a, l) = match m.routes.get(rng.next_u32() as usize % 64) {
                            Some(&(a, l, _)) if rng.next_u32() % 4 != 0 => (a, l),
                            _ => (addr, len),
                        };
                        assert_eq!(t.remove(Ipv4Addr::from(a), l), m.remove(a, l));
                    }
                    _ => assert_eq!(t.get(Ipv4Addr::from(addr), len), m.get(addr, len)),
                }
                assert_eq!(t.len(), m.routes.len());
                let probes: Vec<u32> = (0..8).map(|_| draw_addr(&mut rng)).collect();
                check_same(&t, &m, probes.into_iter());
                if step % 100 == 0 {
                    check_blocks(&t);
                    assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted());
                    // Every prefix's first and last address, and just outside.
                    let edges: Vec<u32> = m
                        .routes
                        .iter()
                        .flat_map(|&(a, l, _)| {
                            let last = a | (u32::MAX.checked_shr(u32::from(l)).unwrap_or(0));
                            [a, last, a.wrapping_sub(1), last.wrapping_add(1)]
                        })
                        .collect();
                    check_same(&t, &m, edges.into_iter());
                }
            }
            for (a, l, _) in m.sorted() {
                assert!(t.remove(a, l).is_some());
                check_blocks(&t);
            }
            // Emptied, the table holds nothing but the root array.
            assert!(t.is_empty());
            assert_eq!(t.iter().count(), 0);
            assert_eq!(t.nodes.len(), 1);
            assert!(t.leaves.items.is_empty() && t.own.items.is_empty());
            assert_eq!(t.lookup(Ipv4Addr::from(anchors[0])), None);
        }
    }

    #[test]
    fn default_route_alone_matches_every_address() {
        let mut t = PrefixTable::new();
        assert_eq!(t.insert(ip("203.0.113.9"), 0, 7u32), Ok(None));
        for a in ["0.0.0.0", "255.255.255.255", "10.1.2.3", "192.0.2.1"] {
            assert_eq!(t.lookup_len(ip(a)), Some((0, 7)));
        }
        assert_eq!(t.get(ip("0.0.0.0"), 0), Some(7));
        assert_eq!(t.iter().collect::<Vec<_>>(), [(ip("0.0.0.0"), 0, 7)]);
        assert_eq!(t.remove(ip("1.2.3.4"), 0), Some(7));
        assert_eq!(t.lookup(ip("10.1.2.3")), None);
    }

    #[test]
    fn host_route_matches_only_its_address() {
        let mut t = PrefixTable::new();
        t.insert(ip("0.0.0.0"), 0, 1u32).unwrap();
        t.insert(ip("198.51.100.7"), 32, 2).unwrap();
        assert_eq!(t.lookup_len(ip("198.51.100.7")), Some((32, 2)));
        assert_eq!(t.lookup_len(ip("198.51.100.6")), Some((0, 1)));
        assert_eq!(t.lookup_len(ip("198.51.100.8")), Some((0, 1)));
        t.insert(ip("198.51.100.6"), 31, 3).unwrap();
        assert_eq!(t.lookup(ip("198.51.100.6")), Some(3));
        assert_eq!(t.lookup(ip("198.51.100.7")), Some(2));
    }

    /// The check a leaf-pushing table gets wrong when it forgets what the
    /// more-specific prefix was hiding.
    #[test]
    fn removing_a_more_specific_restores_the_covering_prefix() {
        let mut t = PrefixTable::new();
        t.insert(ip("172.16.0.0"), 12, 12u32).unwrap();
        t.insert(ip("172.20.0.0"), 16, 16).unwrap();
        t.insert(ip("172.20.16.0"), 20, 20).unwrap();
        t.insert(ip("172.20.16.0"), 24, 24).unwrap();
        let inside = ip("172.20.16.1");
        assert_eq!(t.lookup_len(inside), Some((24, 24)));
        assert_eq!(t.remove(ip("172.20.16.0"), 24), Some(24));
        assert_eq!(t.lookup_len(inside), Some((20, 20)));
        assert_eq!(t.remove(ip("172.20.16.0"), 20), Some(20));
        assert_eq!(t.lookup_len(inside), Some((16, 16)));
        assert_eq!(t.lookup_len(ip("172.20.31.255")), Some((16, 16)));
        assert_eq!(t.remove(ip("172.20.0.0"), 16), Some(16));
        assert_eq!(t.lookup_len(inside), Some((12, 12)));
        // Removing the shorter one first leaves the longer in place.
        t.insert(ip("172.20.16.0"), 20, 20).unwrap();
        assert_eq!(t.remove(ip("172.16.0.0"), 12), Some(12));
        assert_eq!(t.lookup_len(inside), Some((20, 20)));
        assert_eq!(t.lookup(ip("172.20.32.0")), None);
    }

    #[test]
    fn removing_an_absent_prefix_changes_nothing() {
        let mut t = PrefixTable::new();
        assert_eq!(t.remove(ip("10.0.0.0"), 8), None);
        t.insert(ip("10.0.0.0"), 8, 8u32).unwrap();
        t.insert(ip("10.1.0.0"), 24, 24).unwrap();
        // Same address, other lengths; a path that exists; one that does not.
        assert_eq!(t.remove(ip("10.0.0.0"), 9), None);
        assert_eq!(t.remove(ip("10.1.0.0"), 23), None);
        assert_eq!(t.remove(ip("10.1.0.0"), 25), None);
        assert_eq!(t.remove(ip("11.0.0.0"), 8), None);
        assert_eq!(t.remove(ip("10.0.0.0"), 33), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup_len(ip("10.1.0.1")), Some((24, 24)));
        assert_eq!(t.lookup_len(ip("10.2.0.1")), Some((8, 8)));
    }

    #[test]
    fn host_bits_beyond_the_length_are_ignored() {
        let mut t = PrefixTable::new();
        assert_eq!(t.insert(ip("192.0.2.77"), 24, 1u32), Ok(None));
        assert_eq!(t.insert(ip("192.0.2.0"), 24, 2), Ok(Some(1)));
        assert_eq!(t.get(ip("192.0.2.200"), 24), Some(2));
        assert_eq!(t.iter().collect::<Vec<_>>(), [(ip("192.0.2.0"), 24, 2)]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(ip("192.0.2.255"), 24), Some(2));
        assert!(t.is_empty());
    }

    #[test]
    fn a_length_above_32_is_an_error_not_a_panic() {
        let mut t = PrefixTable::new();
        for len in [33, 64, 255] {
            assert_eq!(
                t.insert(ip("1.2.3.4"), len, 0u32),
                Err(PrefixLenError { len })
            );
            assert_eq!(t.get(ip("1.2.3.4"), len), None);
            assert_eq!(t.remove(ip("1.2.3.4"), len), None);
        }
        assert!(t.is_empty());
        assert_eq!(
            PrefixLenError { len: 33 }.to_string(),
            "prefix length 33 is greater than 32"
        );
    }

    /// Prefixes ending exactly at and just past each node boundary.
    #[test]
    fn lengths_at_node_boundaries() {
        let base = u32::from(ip("100.100.100.100"));
        let mut t = PrefixTable::new();
        let mut m = Model::default();
        for len in [
            0, 1, 5, 6, 7, 11, 12, 13, 17, 18, 19, 23, 24, 25, 29, 30, 31, 32,
        ] {
            t.insert(Ipv4Addr::from(base), len, u32::from(len)).unwrap();
            m.insert(base, len, u32::from(len));
        }
        let probes = (0..32).flat_map(|b| [base ^ (1 << b), base ^ ((1 << b) - 1)]);
        check_same(&t, &m, probes.chain([base]));
        assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted());
    }

    #[test]
    fn iterates_in_address_then_length_order() {
        let mut t = PrefixTable::new();
        for (p, l) in [
            ("10.0.0.0", 8),
            ("0.0.0.0", 0),
            ("10.0.0.0", 24),
            ("9.255.255.255", 32),
            ("10.0.0.0", 16),
            ("128.0.0.0", 1),
            ("10.0.0.128", 25),
        ] {
            t.insert(ip(p), l, l).unwrap();
        }
        let got: Vec<String> = t.iter().map(|(a, l, _)| format!("{a}/{l}")).collect();
        assert_eq!(
            got,
            [
                "0.0.0.0/0",
                "9.255.255.255/32",
                "10.0.0.0/8",
                "10.0.0.0/16",
                "10.0.0.0/24",
                "10.0.0.128/25",
                "128.0.0.0/1"
            ]
        );
    }

    /// A host's table (default route, a connected subnet, a few more) costs
    /// the root array and a few hundred bytes.
    #[test]
    fn a_handful_of_routes_is_small() {
        let mut t = PrefixTable::new();
        t.insert(ip("0.0.0.0"), 0, 0u32).unwrap();
        t.insert(ip("192.168.1.0"), 24, 1).unwrap();
        t.insert(ip("10.8.0.0"), 16, 2).unwrap();
        t.insert(ip("169.254.0.0"), 16, 3).unwrap();
        t.insert(ip("192.168.1.1"), 32, 4).unwrap();
        assert!(t.memory_bytes() < 40 << 10, "{}", t.memory_bytes());
    }

    #[test]
    fn synthetic_table_has_the_internet_mix_and_no_duplicates() {
        let n = 20_000;
        let v = synthetic_internet_table(n, 1);
        assert_eq!(v.len(), n);
        let mut by_len = [0usize; 33];
        for &(a, l) in &v {
            assert_eq!(mask(u32::from(a), l), u32::from(a));
            by_len[usize::from(l)] += 1;
        }
        let share =
            |r: core::ops::RangeInclusive<usize>| by_len[r].iter().sum::<usize>() as f64 / n as f64;
        assert!((0.58..0.66).contains(&share(24..=24)));
        assert!((0.32..0.40).contains(&share(16..=23)));
        assert!((0.01..0.04).contains(&share(8..=15)));
        assert!(share(25..=32) > 0.0005);
        let mut t = PrefixTable::new();
        for (i, &(a, l)) in v.iter().enumerate() {
            assert_eq!(t.insert(a, l, i as u32), Ok(None), "duplicate {a}/{l}");
        }
        assert_eq!(
            synthetic_internet_table(100, 9),
            synthetic_internet_table(100, 9)
        );
        // Agreement on a sample, table addresses and random ones.
        let mut m = Model::default();
        for (i, &(a, l)) in v.iter().enumerate().take(3000) {
            m.insert(u32::from(a), l, i as u32);
        }
        let mut t = PrefixTable::new();
        for &(a, l, x) in &m.routes {
            t.insert(Ipv4Addr::from(a), l, x).unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let probes: Vec<u32> = (0..2000)
            .map(|i| match i % 2 {
                0 => {
                    m.routes[rng.next_u32() as usize % m.routes.len()].0 | (rng.next_u32() & 0x3ff)
                }
                _ => rng.next_u32(),
            })
            .collect();
        check_same(&t, &m, probes.into_iter());
    }
}
