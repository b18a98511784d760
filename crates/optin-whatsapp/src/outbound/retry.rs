//! How often and how patiently a send is retried.

use std::time::Duration;

/// Retry settings for [`OutboundClient`](super::OutboundClient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 0 is treated as 1.
    pub max_attempts: u32,
    /// The pause after the first failed attempt; it doubles after each further one.
    pub initial_backoff: Duration,
    /// The longest pause, also the cap on a `Retry-After` header.
    pub max_backoff: Duration,
    /// The limit on one attempt, from connecting to the last byte of the response.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The pause after failed attempt number `attempt` (1-based).
    ///
    /// A `Retry-After` from the upstream wins, capped by `max_backoff`. Otherwise the pause is
    /// "equal jitter": half of `initial_backoff * 2^(attempt-1)` (capped) plus a share of the other
    /// half picked by `jitter_seed`, so concurrent senders do not retry in lockstep.
    pub(crate) fn pause_after(&self, attempt: u32, retry_after: Option<Duration>, jitter_seed: u64) -> Duration {
        if let Some(retry_after) = retry_after {
            return retry_after.min(self.max_backoff);
        }
        let doublings = attempt.saturating_sub(1).min(31);
        let ceiling = self.initial_backoff.saturating_mul(1 << doublings).min(self.max_backoff);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = jitter_seed.checked_rem(spread.saturating_add(1)).unwrap_or(0);
        half + Duration::from_nanos(jitter)
    }
}

/// A cheap, well-mixed 64-bit value from a few inputs (splitmix64's finaliser). Not for secrets.
pub(crate) fn mix(inputs: &[u64]) -> u64 {
    inputs.iter().fold(0x9E37_79B9_7F4A_7C15, |state, input| {
        let mut z = (state ^ input).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            request_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn pauses_double_within_jitter_bounds_and_stop_at_the_cap() {
        let policy = policy();
        for (attempt, ceiling_ms) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            for seed in [0, 1, u64::MAX, mix(&[attempt.into(), 7])] {
                let pause = policy.pause_after(attempt, None, seed);
                let ceiling = Duration::from_millis(ceiling_ms);
                assert!(pause >= ceiling / 2 && pause <= ceiling, "{attempt}: {pause:?}");
            }
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = policy();
        let short = Some(Duration::from_millis(300));
        assert_eq!(policy.pause_after(1, short, 5), Duration::from_millis(300));
        let long = Some(Duration::from_secs(120));
        assert_eq!(policy.pause_after(1, long, 5), Duration::from_millis(1000));
    }

    #[test]
    fn zero_backoff_and_zero_attempts_are_harmless() {
        let policy = RetryPolicy { max_attempts: 0, initial_backoff: Duration::ZERO, ..policy() };
        assert_eq!(policy.attempts(), 1);
        assert_eq!(policy.pause_after(3, None, 12345), Duration::ZERO);
    }

    #[test]
    fn mixing_spreads_neighbouring_inputs() {
        assert_ne!(mix(&[1, 1]), mix(&[2, 1]));
        assert_ne!(mix(&[1, 1]) % 1000, mix(&[1, 2]) % 1000);
    }
}
