use jiff::SignedDuration;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::jurisdiction::window::DAYS;

/// Zones with the odd clocks: half-hour DST (Lord Howe), negative DST (Dublin), DST at midnight (Santiago,
/// Havana), no DST (Kolkata, Honolulu), Newfoundland's half-hour offset.
const ZONES: [&str; 12] = [
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/St_Johns",
    "Europe/Berlin",
    "Europe/Dublin",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];

fn window() -> impl Strategy<Value = SendingWindow> {
    (0u16..1440, 1u16..=1440, 1u8..128).prop_map(|(start, length, day_bits)| {
        let end = (start + length).min(1440).max(start + 1);
        let days: Vec<Weekday> = (0..7).filter(|bit| day_bits & (1 << bit) != 0).map(|bit| DAYS[bit]).collect();
        SendingWindow::new(start, end, &days).unwrap()
    })
}

fn instant() -> impl Strategy<Value = Timestamp> {
    // 2025-01-01 to 2029-01-01, to the second.
    (1_735_689_600i64..1_861_920_000).prop_map(|second| Timestamp::from_second(second).unwrap())
}

fn zones() -> impl Strategy<Value = Vec<TimeZone>> {
    proptest::sample::subsequence(ZONES.to_vec(), 1..=3)
        .prop_map(|names| names.iter().map(|name| time_zone(name).unwrap()).collect())
}

/// `retry_after` is after `at`, allowed, the first allowed instant (nothing sampled between is allowed and the
/// nanosecond before is not).
fn assert_next(window: &SendingWindow, zones: &[TimeZone], at: Timestamp, retry_after: Timestamp) {
    assert!(retry_after > at, "{retry_after} is not after {at}");
    assert!(window.allows(zones, retry_after), "{retry_after} is not allowed by {window}");
    let before = retry_after - SignedDuration::from_nanos(1);
    assert!(!window.allows(zones, before), "{before} is allowed already");
    let gap = retry_after.duration_since(at);
    for step in 1..64 {
        let between = at + gap / 64 * step;
        assert!(!window.allows(zones, between), "{between} is allowed before {retry_after}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn retry_after_is_the_next_allowed_instant_in_one_zone(window in window(), zone in 0..ZONES.len(), at in instant()) {
        let zones = [time_zone(ZONES[zone]).unwrap()];
        if !window.allows(&zones, at) {
            let retry_after = window.next_allowed(&zones, at).expect("a weekly window opens within a week");
            assert_next(&window, &zones, at, retry_after);
        }
    }

    #[test]
    fn retry_after_is_the_next_instant_allowed_in_every_zone(window in window(), zones in zones(), at in instant()) {
        if !window.allows(&zones, at)
            && let Some(retry_after) = window.next_allowed(&zones, at)
        {
            assert_next(&window, &zones, at, retry_after);
        }
    }

    #[test]
    fn a_refused_send_is_allowed_at_its_retry_after(
        e164 in proptest::sample::select(vec!["+13055550100", "+12125550100", "+18085550100", "+18505550100", "+19075550100", "+15555550100"]),
        at in instant(),
    ) {
        let shipped = JurisdictionPolicy::shipped();
        let place = place(e164);
        for outcome in marketing(shipped, &place, at) {
            let RuleOutcome::QuietHours { retry_after, .. } = outcome;
            let retry_after = retry_after.expect("US zones share part of every day");
            prop_assert!(retry_after > at);
            prop_assert_eq!(marketing(shipped, &place, retry_after), vec![]);
        }
    }
}

/// Leading digits worth varying after: every country-telling prefix of `data/countries.toml`, calling codes
/// that share one, +1 with area codes, unassigned codes, and single digits.
const LEADS: [u64; 17] =
    [1, 1_212, 1_416, 1_999, 7, 77, 44, 447_524, 4_474_576, 39, 3_906_698, 590, 262, 800, 883, 2, 9];

fn any_number() -> impl Strategy<Value = PhoneNumber> {
    let led = (proptest::sample::select(LEADS.to_vec()), 8u32..=15, any::<u64>()).prop_map(|(lead, count, rest)| {
        let lead_count = lead.ilog10() + 1;
        let tail = count.saturating_sub(lead_count);
        lead * 10u64.pow(tail) + rest % 10u64.pow(tail)
    });
    let any = 10_000_000u64..=999_999_999_999_999;
    prop_oneof![led, any].prop_filter_map("a number", PhoneNumber::from_key)
}

proptest! {
    /// What `place_digits` promises: the digits it names decide `locate`'s answer.
    #[test]
    fn numbers_with_the_same_place_digits_have_the_same_place(a in any_number(), b in any_number(), keep in 1u32..=15) {
        // `b` takes `a`'s first `keep` digits, so that many pairs share their place digits.
        let a_count = a.key().ilog10() + 1;
        let b_count = b.key().ilog10() + 1;
        let keep = keep.min(a_count).min(b_count);
        let head = a.key() / 10u64.pow(a_count - keep);
        let b = PhoneNumber::from_key(head * 10u64.pow(b_count - keep) + b.key() % 10u64.pow(b_count - keep)).unwrap();
        if place_digits(&a) == place_digits(&b) {
            prop_assert_eq!(locate(&a), locate(&b));
        }
        prop_assert_eq!(place_digits(&a), place_digits(&a));
    }
}
