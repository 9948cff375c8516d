//! A token bucket for ICMP errors (RFC 1812 §4.3.2.8, RFC 1122 §3.2.2: a host
//! "SHOULD" limit the rate of ICMP error messages it sends).

use crate::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate: u32,
    /// Bucket depth: the largest burst.
    burst: u32,
    /// Tokens in micro-token units, so sub-token refills accumulate exactly.
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            micro_tokens: burst as u64 * 1_000_000,
            last: Instant::ZERO,
        }
    }

    /// Take one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.last).total_micros();
        if now > self.last {
            self.last = now;
        }
        let cap = self.burst as u64 * 1_000_000;
        self.micro_tokens = self
            .micro_tokens
            .saturating_add(elapsed.saturating_mul(self.rate as u64))
            .min(cap);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_configured_rate() {
        let mut b = TokenBucket::new(10, 5);
        let now = Instant::from_secs(100);
        assert_eq!((0..20).filter(|_| b.try_take(now)).count(), 5);
        // 10 per second: one token every 100 ms.
        assert!(!b.try_take(now + crate::time::Duration::from_millis(99)));
        assert!(b.try_take(now + crate::time::Duration::from_millis(100)));
        // A long idle period refills to the burst size, no more.
        let later = now + crate::time::Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| b.try_take(later)).count(), 5);
    }

    #[test]
    fn zero_rate_means_only_the_initial_burst() {
        let mut b = TokenBucket::new(0, 1);
        assert!(b.try_take(Instant::from_secs(1)));
        assert!(!b.try_take(Instant::from_secs(1000)));
    }
}
