//! Sending windows ("quiet hours" turned around): when, in the recipient's local time, a message may go out,
//! and the next instant it may when it may not now.
//!
//! A window is a half-open range of wall-clock time, `[start, end)`, on some weekdays. It is evaluated on the
//! civil time of each candidate zone, so daylight saving time is handled by the zone database: 08:00 in New York
//! is 13:00 UTC in winter and 12:00 UTC in summer. With several candidate zones (the number does not say which),
//! an instant is allowed only when it is allowed in every one of them.

use std::fmt;

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

const MINUTES_PER_DAY: u16 = 24 * 60;
const ALL_DAYS: u8 = 0b111_1111;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// How far ahead `next_allowed` looks: a week and a day covers a window allowed on one weekday only.
const SEARCH_DAYS: i32 = 8;

/// When messages may be sent, in local wall-clock time: from `start` (included) to `end` (excluded) on the
/// allowed weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendingWindow {
    start_minute: u16,
    end_minute: u16,
    /// Bit `n` set: the weekday `n` days after Monday is allowed.
    days: u8,
}

impl SendingWindow {
    /// A window from `start_minute` to `end_minute` after midnight (1440 is the end of the day) on `days`.
    /// `None` when the window is empty: `start_minute >= end_minute`, `end_minute > 1440` or no day.
    pub fn new(start_minute: u16, end_minute: u16, days: &[Weekday]) -> Option<SendingWindow> {
        let days = days.iter().fold(0u8, |bits, day| bits | weekday_bit(*day));
        (start_minute < end_minute && end_minute <= MINUTES_PER_DAY && days != 0).then_some(SendingWindow {
            start_minute,
            end_minute,
            days,
        })
    }

    pub fn start_minute(&self) -> u16 {
        self.start_minute
    }

    pub fn end_minute(&self) -> u16 {
        self.end_minute
    }

    pub fn allows_weekday(&self, day: Weekday) -> bool {
        self.days & weekday_bit(day) != 0
    }

    /// Whether a local wall-clock time is inside the window.
    pub fn allows_local(&self, local: DateTime) -> bool {
        let second_of_day = i32::from(local.hour()) * 3600 + i32::from(local.minute()) * 60 + i32::from(local.second());
        self.allows_weekday(local.weekday())
            && second_of_day >= i32::from(self.start_minute) * 60
            && second_of_day < i32::from(self.end_minute) * 60
    }

    /// Whether `at` is inside the window in every one of `zones`.
    pub fn allows(&self, zones: &[TimeZone], at: Timestamp) -> bool {
        zones.iter().all(|zone| self.allows_local(zone.to_datetime(at)))
    }

    /// The first instant after `at` that is allowed in every zone, or `None` if there is none within
    /// the next week (zones too far apart for the window to overlap in all of them).
    ///
    /// The allowed set starts either where a zone's clock reaches `start` on an allowed day or where a
    /// zone's clock jumps (a DST transition into the window), so those instants are the only candidates.
    pub fn next_allowed(&self, zones: &[TimeZone], at: Timestamp) -> Option<Timestamp> {
        let horizon = at.checked_add(SignedDuration::from_hours(24 * i64::from(SEARCH_DAYS + 1))).ok()?;
        let mut candidates: Vec<Timestamp> = Vec::new();
        for zone in zones {
            candidates.extend(self.window_starts(zone, at));
            candidates
                .extend(zone.following(at).map(|transition| transition.timestamp()).take_while(|t| *t <= horizon));
        }
        candidates.retain(|candidate| *candidate > at);
        candidates.sort_unstable();
        candidates.into_iter().find(|candidate| self.allows(zones, *candidate))
    }

    /// The instants `zone`'s clock reads `start` on allowed days, from the day before `at` to a week after; both
    /// of them when the clock reads it twice (a DST fold).
    fn window_starts<'a>(&'a self, zone: &'a TimeZone, at: Timestamp) -> impl Iterator<Item = Timestamp> + 'a {
        let today = zone.to_datetime(at).date();
        let (hour, minute) = (self.start_minute / 60, self.start_minute % 60);
        (-1..=SEARCH_DAYS).flat_map(move |offset| {
            let date = today.checked_add(offset.days()).ok().filter(|date| self.allows_weekday(date.weekday()));
            let local = date.and_then(|date| Some(date.at(i8::try_from(hour).ok()?, i8::try_from(minute).ok()?, 0, 0)));
            let ambiguous = local.map(|local| zone.to_ambiguous_timestamp(local));
            let earlier = ambiguous.as_ref().and_then(|ambiguous| ambiguous.earlier().ok());
            let later = ambiguous.as_ref().and_then(|ambiguous| ambiguous.later().ok());
            earlier.into_iter().chain(later)
        })
    }
}

impl fmt::Display for SendingWindow {
    /// `08:00-20:00` followed by the days when not every day, as `08:00-20:00 mon,tue,wed,thu,fri,sat`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = |minute: u16| format!("{:02}:{:02}", minute / 60, minute % 60);
        write!(f, "{}-{}", clock(self.start_minute), clock(self.end_minute))?;
        if self.days != ALL_DAYS {
            let names: Vec<&str> = DAY_NAMES
                .iter()
                .enumerate()
                .filter(|(index, _)| self.days & (1 << index) != 0)
                .map(|(_, n)| *n)
                .collect();
            write!(f, " {}", names.join(","))?;
        }
        Ok(())
    }
}

/// Reads `HH:MM` (00:00 to 24:00) as minutes after midnight.
pub(super) fn parse_clock(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || hours.len() > 2 || minutes.len() != 2 || !all_digits(minutes) {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MINUTES_PER_DAY).then_some(total)
}

/// The weekdays, Monday first.
pub(super) const DAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// Reads a weekday as its English name or three-letter abbreviation, in any case.
pub(super) fn parse_weekday(text: &str) -> Option<Weekday> {
    let lower = text.trim().to_ascii_lowercase();
    const FULL: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    (0..7).find(|index| lower == DAY_NAMES[*index] || lower == FULL[*index]).map(|index| DAYS[index])
}

fn weekday_bit(day: Weekday) -> u8 {
    1 << day.to_monday_zero_offset()
}
