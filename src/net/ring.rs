//! A fixed-capacity byte ring: a stream socket's bytes between the
//! application and the stack thread. Memory is taken at the first push, so
//! an idle direction of a socket costs nothing.

#[derive(Debug)]
pub(crate) struct ByteRing {
    buf: Box<[u8]>,
    cap: usize,
    head: usize,
    len: usize,
}

impl ByteRing {
    pub(crate) fn new(cap: usize) -> ByteRing {
        ByteRing {
            buf: Box::default(),
            cap: cap.max(1),
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn free(&self) -> usize {
        self.cap - self.len
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Append what fits of `data`; returns how much did.
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        if self.buf.is_empty() {
            self.buf = vec![0u8; self.cap].into_boxed_slice();
        }
        let tail = (self.head + self.len) % self.cap;
        let first = n.min(self.cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// Copy out and consume up to `out.len()` bytes; returns how many.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_into(out);
        self.consume(n);
        n
    }

    /// Copy out up to `out.len()` bytes without consuming them.
    pub(crate) fn peek_into(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        if n == 0 {
            return 0;
        }
        let first = n.min(self.cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        n
    }

    fn consume(&mut self, n: usize) {
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.cap
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_keeps_order() {
        let mut r = ByteRing::new(8);
        assert_eq!(r.push(b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.pop_into(&mut out), 4);
        assert_eq!(&out, b"abcd");
        // 2 bytes left at offset 4; 6 more wrap around the end.
        assert_eq!(r.push(b"ghijklmn"), 6);
        assert_eq!(r.free(), 0);
        let mut all = [0u8; 16];
        assert_eq!(r.peek_into(&mut all), 8);
        assert_eq!(&all[..8], b"efghijkl");
        assert_eq!(r.pop_into(&mut all), 8);
        assert!(r.is_empty());
    }

    #[test]
    fn unused_ring_allocates_nothing() {
        let r = ByteRing::new(1 << 20);
        assert!(r.buf.is_empty());
        assert_eq!(r.free(), 1 << 20);
    }
}
