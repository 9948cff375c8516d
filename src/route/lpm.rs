//! Placeholder longest-prefix match (one hash map per prefix length); the
//! real table replaces it.

use core::net::Ipv4Addr;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PrefixTable<V: Copy> {
    by_len: Vec<HashMap<u32, V>>,
    len: usize,
}

impl<V: Copy> Default for PrefixTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

impl<V: Copy> PrefixTable<V> {
    pub fn new() -> Self {
        PrefixTable {
            by_len: (0..=32).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }
    pub fn insert(&mut self, prefix: Ipv4Addr, len: u8, value: V) -> Option<V> {
        let len = len.min(32);
        let old = self.by_len[len as usize].insert(u32::from(prefix) & mask(len), value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }
    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Option<V> {
        let len = len.min(32);
        let old = self.by_len[len as usize].remove(&(u32::from(prefix) & mask(len)));
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<V> {
        let len = len.min(32);
        self.by_len[len as usize]
            .get(&(u32::from(prefix) & mask(len)))
            .copied()
    }
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<V> {
        self.lookup_len(addr).map(|(_, v)| v)
    }
    pub fn lookup_len(&self, addr: Ipv4Addr) -> Option<(u8, V)> {
        let a = u32::from(addr);
        (0..=32u8)
            .rev()
            .find_map(|l| self.by_len[l as usize].get(&(a & mask(l))).map(|v| (l, *v)))
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
