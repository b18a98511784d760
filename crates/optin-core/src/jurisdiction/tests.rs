//! Tests of the jurisdiction rules; the clocks are fixed instants, written as local wall-clock times.

mod locate;
mod policy;
mod properties;
mod quiet_hours;
mod rules;

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::*;
use crate::phone::PhoneNumber;

/// The place of a number written in E.164.
fn place(e164: &str) -> Place {
    let phone = PhoneNumber::from_e164(e164).unwrap_or_else(|| panic!("{e164} is E.164"));
    locate(&phone).unwrap_or_else(|| panic!("{e164} has a place"))
}

/// The instant a zone's clocks read `local` (`2026-03-07T20:30`); the earlier one in a fold.
fn local(zone: &str, local: &str) -> Timestamp {
    let datetime: DateTime = local.parse().unwrap();
    time_zone(zone).unwrap().to_timestamp(datetime).unwrap()
}

/// An instant as a zone's clocks and offset show it: `2026-03-08T08:00:00-04:00`.
fn shown(zone: &str, at: Timestamp) -> String {
    at.to_zoned_datetime(time_zone(zone).unwrap()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn policy(text: &str) -> JurisdictionPolicy {
    JurisdictionPolicy::from_toml(text).unwrap_or_else(|error| panic!("{error}"))
}

fn marketing(policy: &JurisdictionPolicy, place: &Place, at: Timestamp) -> Vec<RuleOutcome> {
    policy.check(place, TemplateCategory::Marketing, at, None)
}

/// The `retry_after` of the one quiet-hours outcome, shown in `zone`; "allowed" when nothing stops the send.
fn retry(outcomes: &[RuleOutcome], zone: &str) -> String {
    match outcomes {
        [] => "allowed".to_owned(),
        [RuleOutcome::QuietHours { retry_after: Some(retry_after), .. }] => shown(zone, *retry_after),
        other => format!("{other:?}"),
    }
}
