//! Rate limits of the hosted pages: posts per client address, and form submissions per phone
//! number (someone typing other people's numbers into a form is stopped at the number, whatever
//! address they come from). GCRA from `governor`; old keys are dropped now and then so the maps
//! stay small.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::state::HttpSettings;

/// Checks between two clean-ups of the maps.
const CLEAN_UP_EVERY: u64 = 1024;

pub(crate) struct PageLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_number: DefaultKeyedRateLimiter<u64>,
    checks: AtomicU64,
}

impl PageLimits {
    pub(crate) fn new(settings: &HttpSettings) -> PageLimits {
        let at_least_one = |n: u32| NonZeroU32::new(n.max(1)).expect("at least one");
        PageLimits {
            per_ip: RateLimiter::keyed(Quota::per_minute(at_least_one(settings.page_posts_per_ip_per_minute))),
            per_number: RateLimiter::keyed(Quota::per_hour(at_least_one(settings.form_posts_per_number_per_hour))),
            checks: AtomicU64::new(0),
        }
    }

    /// Whether this address may post now (an unknown address is not limited here).
    pub(crate) fn allow_ip(&self, ip: Option<IpAddr>) -> bool {
        self.clean_up_now_and_then();
        ip.is_none_or(|ip| self.per_ip.check_key(&ip).is_ok())
    }

    /// Whether a form may be submitted for this number now.
    pub(crate) fn allow_number(&self, phone_key: u64) -> bool {
        self.per_number.check_key(&phone_key).is_ok()
    }

    fn clean_up_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % CLEAN_UP_EVERY == CLEAN_UP_EVERY - 1 {
            self.per_ip.retain_recent();
            self.per_number.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_numbers_are_limited_separately() {
        let settings = HttpSettings {
            page_posts_per_ip_per_minute: 2,
            form_posts_per_number_per_hour: 1,
            ..HttpSettings::default()
        };
        let limits = PageLimits::new(&settings);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.allow_ip(Some(one)) && limits.allow_ip(Some(one)));
        assert!(!limits.allow_ip(Some(one)));
        assert!(limits.allow_ip(Some(two)));
        assert!(limits.allow_ip(None));
        assert!(limits.allow_number(4915112345678));
        assert!(!limits.allow_number(4915112345678));
        assert!(limits.allow_number(4915112345679));
    }
}
