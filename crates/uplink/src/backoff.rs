//! Exponential backoff with jitter for retrying posts.
//!
//! Many devices of one building lose the same WiFi or server at once; jitter
//! spreads their retries so they do not all come back in the same second.

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub initial_ms: u64,
    /// Upper bound of the delay.
    pub max_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        // 1 s first, doubling to at most 60 s: a server restart is retried
        // within seconds, a long outage costs one request a minute.
        BackoffConfig {
            initial_ms: 1_000,
            max_ms: 60_000,
        }
    }
}

/// Backoff state: failures so far and a small PRNG for the jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// A reset backoff; `seed` feeds the jitter (the boot id is a good seed).
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            failures: 0,
            // xorshift must not start at 0.
            rng: seed | 1,
        }
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets the failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: enough to decorrelate devices, no dependency.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Records a failure and returns how long to wait before the next try:
    /// "equal jitter", uniformly in [d/2, d] where d doubles per failure up to
    /// the maximum. Never zero, so a failing server is never hammered.
    pub fn fail(&mut self) -> u64 {
        let shift = self.failures.min(32);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self
            .config
            .initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.config.max_ms)
            .max(2);
        let half = ceiling / 2;
        half + self.next_random() % (ceiling - half + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter_in_range() {
        let mut b = Backoff::new(BackoffConfig::default(), 42);
        let mut ceilings = Vec::new();
        for i in 0..12 {
            let d = b.fail();
            let ceiling = (1000u64 << i).min(60_000);
            assert!(d >= ceiling / 2 && d <= ceiling, "{i}: {d}");
            ceilings.push(ceiling);
        }
        assert_eq!(b.failures(), 12);
        b.reset();
        let d = b.fail();
        assert!((500..=1000).contains(&d));
    }

    #[test]
    fn different_seeds_spread() {
        let mut a = Backoff::new(BackoffConfig::default(), 1);
        let mut b = Backoff::new(BackoffConfig::default(), 2);
        let delays_a: Vec<u64> = (0..8).map(|_| a.fail()).collect();
        let delays_b: Vec<u64> = (0..8).map(|_| b.fail()).collect();
        assert_ne!(delays_a, delays_b);
    }
}
