//! A token bucket per viewer: a steady rate with some burst, on simulated time.

use std::time::Instant;

#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_s: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate_per_s,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let earned = now.saturating_duration_since(last).as_secs_f64() * self.rate_per_s;
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0);
        let burst = (0..20).filter(|_| b.allow(t0)).count();
        assert_eq!(burst, 5);
        // One second later: ten more, not fifteen.
        let later = t0 + Duration::from_secs(1);
        let allowed = (0..20).filter(|_| b.allow(later)).count();
        assert_eq!(allowed, 5, "refilled only up to the burst size");
        // A command every 100 ms (10/s) is always allowed.
        let mut b = TokenBucket::new(10.0, 5.0);
        assert!((0..100).all(|i| b.allow(t0 + Duration::from_millis(100 * i))));
    }
}
