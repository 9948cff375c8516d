//! The windowed filters BBR's model keeps (draft-ietf-ccwg-bbr-06 §5.5.3,
//! §5.5.9).

/// A windowed maximum over a virtual clock (rounds), after Kathleen
/// Nichols' scheme the draft names (§5.5.5): the best, second-best and
/// third-best samples of the window, each with the time it was taken, so
/// that when the best ages out a recent runner-up takes its place without
/// keeping every sample.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct WindowedMax {
    /// (value, time), best first.
    s: [(u64, u64); 3],
}

impl WindowedMax {
    pub(super) fn get(&self) -> u64 {
        self.s[0].0
    }

    fn reset(&mut self, value: u64, time: u64) -> u64 {
        self.s = [(value, time); 3];
        value
    }

    /// Adds `value` taken at `time`; samples older than `window` (in the
    /// same units as `time`) are forgotten. Returns the new maximum.
    pub(super) fn update(&mut self, value: u64, time: u64, window: u64) -> u64 {
        // A new best, or nothing left inside the window: start over.
        if value >= self.s[0].0 || time.saturating_sub(self.s[2].1) > window {
            return self.reset(value, time);
        }
        if value >= self.s[1].0 {
            self.s[1] = (value, time);
            self.s[2] = (value, time);
        } else if value >= self.s[2].0 {
            self.s[2] = (value, time);
        }
        let age = time.saturating_sub(self.s[0].1);
        if age > window {
            // The best expired: promote the runners-up.
            self.s[0] = self.s[1];
            self.s[1] = self.s[2];
            self.s[2] = (value, time);
            if time.saturating_sub(self.s[0].1) > window {
                self.s[0] = self.s[1];
                self.s[1] = self.s[2];
            }
        } else if self.s[1].1 == self.s[0].1 && age > window / 4 {
            // A quarter of the window passed without a distinct second
            // best: take this one, so the filter has something to fall
            // back on.
            self.s[1] = (value, time);
            self.s[2] = (value, time);
        } else if self.s[2].1 == self.s[1].1 && age > window / 2 {
            self.s[2] = (value, time);
        }
        self.s[0].0
    }
}

/// BBR.max_bw's filter (§5.5.3, §5.5.6): the maximum delivery rate of the
/// current and of the previous ProbeBW cycle. The draft's window is
/// `MaxBwFilterLen` = 2 cycles of a virtual clock `cycle_count` that only
/// needs one bit; two slots are that filter.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct MaxBwFilter {
    /// [previous cycle, current cycle].
    slots: [u64; 2],
}

impl MaxBwFilter {
    pub(super) fn get(&self) -> u64 {
        self.slots[0].max(self.slots[1])
    }

    pub(super) fn update(&mut self, rate: u64) -> u64 {
        self.slots[1] = self.slots[1].max(rate);
        self.get()
    }

    /// AdvanceMaxBwFilter(): BBR.cycle_count++. Ringstack difference: a
    /// cycle that produced no sample at all does not push the previous
    /// cycle's maximum out (the draft's §3.8: with only app-limited
    /// samples "BBR will not discard old max bandwidth samples").
    pub(super) fn advance(&mut self) {
        if self.slots[1] > 0 {
            self.slots[0] = self.slots[1];
            self.slots[1] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_max_forgets_samples_older_than_the_window() {
        let mut f = WindowedMax::default();
        assert_eq!(f.update(100, 0, 10), 100);
        assert_eq!(f.update(50, 3, 10), 100);
        assert_eq!(f.update(70, 6, 10), 100);
        // At t = 11 the sample of t = 0 is 11 > 10 old: the runner-up wins.
        assert_eq!(f.update(10, 11, 10), 70);
        assert_eq!(f.update(10, 30, 10), 10);
    }

    #[test]
    fn max_bw_filter_spans_two_cycles() {
        let mut f = MaxBwFilter::default();
        f.update(100);
        f.advance();
        f.update(60);
        assert_eq!(f.get(), 100);
        f.advance();
        assert_eq!(f.get(), 60);
        // An empty cycle keeps what the last one measured.
        f.advance();
        assert_eq!(f.get(), 60);
    }
}
