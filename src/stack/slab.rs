//! A slab of sockets addressed by generation-checked handles, so a handle
//! kept after `close` fails cleanly instead of reaching a new socket.

#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn insert(&mut self, value: T) -> (usize, u32) {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(value);
            (i, slot.0)
        } else {
            self.slots.push((0, Some(value)));
            (self.slots.len() - 1, 0)
        }
    }

    pub fn get(&self, index: usize, gen: u32) -> Option<&T> {
        match self.slots.get(index) {
            Some((g, Some(v))) if *g == gen => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, index: usize, gen: u32) -> Option<&mut T> {
        match self.slots.get_mut(index) {
            Some((g, Some(v))) if *g == gen => Some(v),
            _ => None,
        }
    }

    /// By index alone, for internal tables that hold indexes of live sockets.
    pub fn at_mut(&mut self, index: usize) -> Option<&mut T> {
        self.slots.get_mut(index).and_then(|s| s.1.as_mut())
    }

    pub fn remove(&mut self, index: usize, gen: u32) -> Option<T> {
        match self.slots.get_mut(index) {
            Some((g, v @ Some(_))) if *g == gen => {
                self.free.push(index);
                self.len -= 1;
                v.take()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handles_do_not_reach_a_reused_slot() {
        let mut s = Slab::default();
        let (i, g) = s.insert("a");
        assert_eq!(s.remove(i, g), Some("a"));
        let (j, h) = s.insert("b");
        assert_eq!(i, j);
        assert_eq!(s.get(i, g), None);
        assert_eq!(s.get(j, h), Some(&"b"));
        assert_eq!(s.remove(i, g), None);
        assert_eq!(s.len(), 1);
    }
}
