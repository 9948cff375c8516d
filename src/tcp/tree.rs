//! An ordered map from `u32` keys to small `Copy` values whose nodes live
//! in one pool: the out-of-order assembler's ranges and the SACK
//! scoreboard's.
//!
//! Why this and not `BTreeMap` or a sorted `Vec`:
//!
//! - No allocation per segment. A `BTreeMap` allocates and frees nodes as
//!   entries come and go, on the data path. Here the pool is reserved once,
//!   to the owner's hard bound on entries ([`Tree::reserve`]), and freed
//!   nodes go on a free list; insert and remove never allocate after that.
//!   The reservation is virtual memory: nodes are written in order as the
//!   pool fills and freed ones are reused first, so the pages touched are
//!   those of the most entries ever held at once, not of the bound.
//! - O(log n) whatever the pattern. A sorted `Vec` needs no tree, but every
//!   insert or removal in the middle moves the entries above it: with the
//!   20 000 ranges a 1 Gbit/s × 200 ms path can hold, ~80 KB per segment
//!   in the worst case (a hostile peer picks it), several times a whole
//!   segment's processing. An AVL tree bounds every search, insert and
//!   remove by its height, at most 1.44 log2 n (≤ 21 levels for 20 000
//!   entries), deterministically: no randomness for a peer to outguess,
//!   unlike a treap or a skip list, and the recursion depth is bounded.
//! - Cheap walks. The nodes are also threaded in key order (`prev`,
//!   `next`), so stepping to a neighbour, the first and the last entry are
//!   O(1): merging walks forward from a found entry, and IsLost and the
//!   scoreboard's partial sums walk back from the top.
//!
//! Nodes are named by their index in the pool ([`Id`]), stable while the
//! entry lives, so owners can link entries among themselves (the
//! assembler's most-recent-first list).

/// A node's index in the pool.
pub(crate) type Id = u32;

const NIL: Id = u32::MAX;

#[derive(Copy, Clone, Debug)]
struct Node<V> {
    key: u32,
    left: Id,
    right: Id,
    /// Neighbours in key order; `next` also links the free list.
    prev: Id,
    next: Id,
    height: u8,
    val: V,
}

#[derive(Debug)]
pub(crate) struct Tree<V> {
    nodes: Vec<Node<V>>,
    root: Id,
    first: Id,
    last: Id,
    free: Id,
    len: usize,
}

impl<V> Default for Tree<V> {
    fn default() -> Self {
        Tree {
            // Nothing is allocated until `reserve`.
            nodes: Vec::new(),
            root: NIL,
            first: NIL,
            last: NIL,
            free: NIL,
            len: 0,
        }
    }
}

fn some(id: Id) -> Option<Id> {
    (id != NIL).then_some(id)
}

impl<V: Copy> Tree<V> {
    /// Makes room for `cap` entries, so that no insert up to that many
    /// allocates. Allocates only if the pool is smaller (the first time,
    /// or if the owner's bound grew).
    pub fn reserve(&mut self, cap: usize) {
        let cap = cap.min(NIL as usize);
        if self.nodes.capacity() < cap {
            self.nodes.reserve_exact(cap - self.nodes.len());
        }
    }

    /// Entries that fit without allocating.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.nodes.capacity()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every entry and keeps the pool.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.root = NIL;
        self.first = NIL;
        self.last = NIL;
        self.free = NIL;
        self.len = 0;
    }

    /// Forgets every entry and gives the pool back.
    pub fn release(&mut self) {
        self.clear();
        self.nodes = Vec::new();
    }

    pub fn first(&self) -> Option<Id> {
        some(self.first)
    }

    pub fn last(&self) -> Option<Id> {
        some(self.last)
    }

    pub fn next(&self, id: Id) -> Option<Id> {
        some(self.n(id).next)
    }

    pub fn prev(&self, id: Id) -> Option<Id> {
        some(self.n(id).prev)
    }

    pub fn key(&self, id: Id) -> u32 {
        self.n(id).key
    }

    pub fn val(&self, id: Id) -> V {
        self.n(id).val
    }

    pub fn val_mut(&mut self, id: Id) -> &mut V {
        &mut self.m(id).val
    }

    /// Changes an entry's key to one between its neighbours' (the owner
    /// knows it is): no restructuring needed.
    pub fn set_key(&mut self, id: Id, key: u32) {
        let n = *self.n(id);
        debug_assert!(n.prev == NIL || self.n(n.prev).key < key);
        debug_assert!(n.next == NIL || self.n(n.next).key > key);
        self.m(id).key = key;
    }

    /// Lowers every key by `d` (at most the smallest key) and lets
    /// `adjust` do the same to each value: the order is unchanged, so the
    /// tree is not restructured. O(n); the owners move their anchor this
    /// way once per 2^30 bytes.
    pub fn shift_down(&mut self, d: u32, mut adjust: impl FnMut(&mut V)) {
        let mut cur = self.first;
        while cur != NIL {
            let n = self.m(cur);
            debug_assert!(n.key >= d);
            n.key -= d;
            adjust(&mut n.val);
            cur = n.next;
        }
    }

    /// The entry with the largest key at or below `key`.
    pub fn floor(&self, key: u32) -> Option<Id> {
        let (mut t, mut best) = (self.root, NIL);
        while t != NIL {
            let n = self.n(t);
            if n.key <= key {
                best = t;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        some(best)
    }

    /// The entry with the smallest key at or above `key`.
    #[cfg(test)]
    pub fn ceil(&self, key: u32) -> Option<Id> {
        let (mut t, mut best) = (self.root, NIL);
        while t != NIL {
            let n = self.n(t);
            if n.key >= key {
                best = t;
                t = n.left;
            } else {
                t = n.right;
            }
        }
        some(best)
    }

    /// The entry with the largest key below `key`.
    pub fn lower(&self, key: u32) -> Option<Id> {
        key.checked_sub(1).and_then(|k| self.floor(k))
    }

    /// Adds an entry whose key is not in the tree. `None` when the pool is
    /// full: it never grows here.
    pub fn insert(&mut self, key: u32, val: V) -> Option<Id> {
        let pred = self.floor(key);
        debug_assert!(pred.is_none_or(|p| self.key(p) != key));
        let succ = match pred {
            Some(p) => self.n(p).next,
            None => self.first,
        };
        let node = Node {
            key,
            left: NIL,
            right: NIL,
            prev: pred.unwrap_or(NIL),
            next: succ,
            height: 1,
            val,
        };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.n(id).next;
            *self.m(id) = node;
            id
        } else if self.nodes.len() < self.nodes.capacity() {
            self.nodes.push(node);
            (self.nodes.len() - 1) as Id
        } else {
            return None;
        };
        match pred {
            Some(p) => self.m(p).next = id,
            None => self.first = id,
        }
        match some(succ) {
            Some(s) => self.m(s).prev = id,
            None => self.last = id,
        }
        self.root = self.ins(self.root, id);
        self.len += 1;
        Some(id)
    }

    /// Removes an entry; its id may be handed out again.
    pub fn remove(&mut self, id: Id) {
        let n = *self.n(id);
        match some(n.prev) {
            Some(p) => self.m(p).next = n.next,
            None => self.first = n.next,
        }
        match some(n.next) {
            Some(s) => self.m(s).prev = n.prev,
            None => self.last = n.prev,
        }
        // `del` still finds the successor through this node's `next`.
        self.root = self.del(self.root, n.key);
        self.m(id).next = self.free;
        self.free = id;
        self.len -= 1;
    }

    fn n(&self, id: Id) -> &Node<V> {
        &self.nodes[id as usize]
    }

    fn m(&mut self, id: Id) -> &mut Node<V> {
        &mut self.nodes[id as usize]
    }

    fn h(&self, t: Id) -> u8 {
        if t == NIL {
            0
        } else {
            self.n(t).height
        }
    }

    fn fix(&mut self, t: Id) {
        let n = *self.n(t);
        self.m(t).height = 1 + self.h(n.left).max(self.h(n.right));
    }

    fn rotate_right(&mut self, t: Id) -> Id {
        let l = self.n(t).left;
        self.m(t).left = self.n(l).right;
        self.m(l).right = t;
        self.fix(t);
        self.fix(l);
        l
    }

    fn rotate_left(&mut self, t: Id) -> Id {
        let r = self.n(t).right;
        self.m(t).right = self.n(r).left;
        self.m(r).left = t;
        self.fix(t);
        self.fix(r);
        r
    }

    /// Restores the AVL bound at `t` (children differ by at most two in
    /// height after one insert or remove below) and returns the subtree's
    /// new root.
    fn balance(&mut self, t: Id) -> Id {
        let n = *self.n(t);
        let (hl, hr) = (self.h(n.left), self.h(n.right));
        if hl > hr + 1 {
            let l = *self.n(n.left);
            if self.h(l.left) < self.h(l.right) {
                let nl = self.rotate_left(n.left);
                self.m(t).left = nl;
            }
            return self.rotate_right(t);
        }
        if hr > hl + 1 {
            let r = *self.n(n.right);
            if self.h(r.right) < self.h(r.left) {
                let nr = self.rotate_right(n.right);
                self.m(t).right = nr;
            }
            return self.rotate_left(t);
        }
        self.m(t).height = 1 + hl.max(hr);
        t
    }

    fn ins(&mut self, t: Id, x: Id) -> Id {
        if t == NIL {
            return x;
        }
        if self.n(x).key < self.n(t).key {
            let l = self.ins(self.n(t).left, x);
            self.m(t).left = l;
        } else {
            let r = self.ins(self.n(t).right, x);
            self.m(t).right = r;
        }
        self.balance(t)
    }

    /// Removes the node keyed `key` (present) from the subtree at `t`.
    fn del(&mut self, t: Id, key: u32) -> Id {
        let n = *self.n(t);
        if key < n.key {
            let l = self.del(n.left, key);
            self.m(t).left = l;
        } else if key > n.key {
            let r = self.del(n.right, key);
            self.m(t).right = r;
        } else {
            if n.right == NIL {
                return n.left;
            }
            // The in-order successor, the leftmost of the right subtree,
            // takes this node's place.
            let s = n.next;
            let r = self.del_first(n.right);
            let sn = self.m(s);
            sn.left = n.left;
            sn.right = r;
            return self.balance(s);
        }
        self.balance(t)
    }

    fn del_first(&mut self, t: Id) -> Id {
        let n = *self.n(t);
        if n.left == NIL {
            return n.right;
        }
        let l = self.del_first(n.left);
        self.m(t).left = l;
        self.balance(t)
    }

    #[cfg(test)]
    fn check(&self) {
        fn walk<V: Copy>(t: &Tree<V>, id: Id, lo: Option<u32>, hi: Option<u32>) -> (u8, usize) {
            if id == NIL {
                return (0, 0);
            }
            let n = t.n(id);
            assert!(lo.is_none_or(|lo| n.key > lo) && hi.is_none_or(|hi| n.key < hi));
            let (hl, cl) = walk(t, n.left, lo, Some(n.key));
            let (hr, cr) = walk(t, n.right, Some(n.key), hi);
            assert!(hl.abs_diff(hr) <= 1, "unbalanced");
            assert_eq!(n.height, 1 + hl.max(hr));
            (n.height, cl + cr + 1)
        }
        let (_, count) = walk(self, self.root, None, None);
        assert_eq!(count, self.len);
        let mut threaded = 0;
        let mut cur = self.first;
        let mut prev = NIL;
        while cur != NIL {
            assert_eq!(self.n(cur).prev, prev);
            threaded += 1;
            prev = cur;
            cur = self.n(cur).next;
        }
        assert_eq!(prev, self.last);
        assert_eq!(threaded, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::buffer::tests::Rng;
    use std::collections::BTreeMap;

    #[test]
    fn matches_a_btreemap_and_stays_balanced() {
        for seed in 1..=200u64 {
            let mut g = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut t: Tree<u64> = Tree::default();
            let cap = 1 + g.below(300) as usize;
            t.reserve(cap);
            let mut m: BTreeMap<u32, (Id, u64)> = BTreeMap::new();
            let span = 1 + g.below(1000) as u32;
            for step in 0..2000u64 {
                let k = g.below(u64::from(span)) as u32;
                match g.below(10) {
                    0..=4 => {
                        if let Some(&(id, _)) = m.get(&k) {
                            *t.val_mut(id) = step;
                            m.insert(k, (id, step));
                        } else {
                            match t.insert(k, step) {
                                Some(id) => {
                                    m.insert(k, (id, step));
                                }
                                None => assert_eq!(m.len(), t.capacity()),
                            }
                        }
                    }
                    5..=7 => {
                        if let Some((&k, &(id, _))) = m.range(k..).next() {
                            t.remove(id);
                            m.remove(&k);
                        }
                    }
                    8 => {
                        let want = m.range(..=k).next_back().map(|(_, &(id, _))| id);
                        assert_eq!(t.floor(k), want);
                        let want = m.range(k..).next().map(|(_, &(id, _))| id);
                        assert_eq!(t.ceil(k), want);
                        let want = m.range(..k).next_back().map(|(_, &(id, _))| id);
                        assert_eq!(t.lower(k), want);
                    }
                    _ => {
                        if g.below(50) == 0 {
                            t.clear();
                            m.clear();
                        }
                    }
                }
                assert_eq!(t.len(), m.len());
                if step % 97 == 0 {
                    t.check();
                    let mut cur = t.first();
                    for (&k, &(id, v)) in &m {
                        assert_eq!(cur, Some(id));
                        assert_eq!((t.key(id), t.val(id)), (k, v));
                        cur = t.next(id);
                    }
                    assert_eq!(cur, None);
                }
            }
            assert!(t.capacity() >= cap);
        }
    }

    #[test]
    fn ascending_and_descending_inserts_keep_the_height_logarithmic() {
        let mut t: Tree<()> = Tree::default();
        t.reserve(1 << 16);
        for k in 0..(1 << 15) {
            t.insert(2 * k, ()).unwrap();
        }
        for k in (0..(1 << 15)).rev() {
            t.insert(2 * k + 1, ()).unwrap();
        }
        t.check();
        // 1.44 log2(65 536) is 23.
        assert!(t.h(t.root) <= 23, "height {}", t.h(t.root));
        assert_eq!(t.insert(1 << 20, ()), None, "the pool never grows");
        while let Some(f) = t.first() {
            t.remove(f);
        }
        t.check();
        assert!(t.is_empty());
    }
}
