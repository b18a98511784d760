//! The policy file: its schema (documented in `data/jurisdictions.toml`), its validation, and the merge of a
//! business's file over the shipped defaults.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;

use jiff::civil::Weekday;
use jiff::{SignedDuration, Span};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::window::{parse_clock, parse_weekday};
use super::{ConsentBasis, JurisdictionError, SendingWindow, place};
use crate::business::TemplateCategory;
use crate::phone::Region;

/// How many messages of one category one recipient may get in a rolling period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cap {
    pub max: u32,
    pub per: SignedDuration,
}

/// One table of a policy file (`[default]`, `[country.XX]` or `[region.XX-YY]`): each rule it sets, or `None`
/// to leave the rule to the less specific tables.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    pub(super) applies_to: Option<Categories>,
    pub(super) quiet_hours: Option<Setting<SendingWindow>>,
    pub(super) frequency_cap: Option<Setting<Cap>>,
    pub(super) double_opt_in: Option<bool>,
    pub(super) express: Option<Setting<Span>>,
    pub(super) implied_purchase: Option<Setting<Span>>,
    pub(super) implied_inquiry: Option<Setting<Span>>,
}

/// A rule turned off (`false`, or `"none"` for a lifetime) or set.
#[derive(Debug, Clone, Copy)]
pub(super) enum Setting<T> {
    Off,
    On(T),
}

impl<T: Copy> Setting<T> {
    pub(super) fn value(self) -> Option<T> {
        match self {
            Setting::Off => None,
            Setting::On(value) => Some(value),
        }
    }
}

/// A set of template categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Categories(u8);

impl Categories {
    pub(super) const MARKETING: Categories = Categories(1);

    pub(super) fn contains(self, category: TemplateCategory) -> bool {
        self.0 & Categories::bit(category) != 0
    }

    fn bit(category: TemplateCategory) -> u8 {
        match category {
            TemplateCategory::Marketing => 1,
            TemplateCategory::Utility => 2,
            TemplateCategory::Authentication => 4,
        }
    }
}

impl Rules {
    pub(super) fn lifetime(&self, basis: ConsentBasis) -> Option<Setting<Span>> {
        match basis {
            ConsentBasis::Express => self.express,
            ConsentBasis::ImpliedPurchase => self.implied_purchase,
            ConsentBasis::ImpliedInquiry => self.implied_inquiry,
        }
    }

    /// These rules with every rule `over` sets replaced by `over`'s.
    fn merged_with(&self, over: &Rules) -> Rules {
        Rules {
            applies_to: over.applies_to.or(self.applies_to),
            quiet_hours: over.quiet_hours.or(self.quiet_hours),
            frequency_cap: over.frequency_cap.or(self.frequency_cap),
            double_opt_in: over.double_opt_in.or(self.double_opt_in),
            express: over.express.or(self.express),
            implied_purchase: over.implied_purchase.or(self.implied_purchase),
            implied_inquiry: over.implied_inquiry.or(self.implied_inquiry),
        }
    }
}

/// A validated policy file, before or after the merge.
#[derive(Debug, Clone, Default)]
pub(super) struct PolicyTables {
    pub(super) default: Rules,
    pub(super) countries: HashMap<String, Rules>,
    pub(super) regions: HashMap<String, Rules>,
}

impl PolicyTables {
    pub(super) fn parse(text: &str) -> Result<PolicyTables, JurisdictionError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|error| syntax_error(text, &error))?;
        let mut tables = PolicyTables {
            default: raw.default.map(|rules| rules.validate("default")).transpose()?.unwrap_or_default(),
            ..PolicyTables::default()
        };
        for (code, rules) in raw.country {
            let key = format!("country.{code}");
            let canonical = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
            if !canonical || Region::parse(&code).is_err() {
                return Err(JurisdictionError::UnknownCountry { key });
            }
            tables.countries.insert(code, rules.validate(&key)?);
        }
        for (code, rules) in raw.region {
            let key = format!("region.{code}");
            if !place::is_locatable_region(&code) {
                return Err(JurisdictionError::UnknownRegion { key });
            }
            tables.regions.insert(code, rules.validate(&key)?);
        }
        Ok(tables)
    }

    /// These tables with `over`'s laid on top, rule by rule and table by table.
    pub(super) fn merged_with(&self, over: &PolicyTables) -> PolicyTables {
        let merge = |base: &HashMap<String, Rules>, over: &HashMap<String, Rules>| {
            let mut merged = base.clone();
            for (code, rules) in over {
                let entry = merged.entry(code.clone()).or_default();
                *entry = entry.merged_with(rules);
            }
            merged
        };
        PolicyTables {
            default: self.default.merged_with(&over.default),
            countries: merge(&self.countries, &over.countries),
            regions: merge(&self.regions, &over.regions),
        }
    }
}

fn syntax_error(text: &str, error: &toml::de::Error) -> JurisdictionError {
    let message = error.message().trim().to_owned();
    let Some(span) = error.span() else { return JurisdictionError::Syntax { message } };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    JurisdictionError::Syntax { message: format!("line {line}, column {column}: {message}") }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Option<RawRules>,
    #[serde(default)]
    country: BTreeMap<String, RawRules>,
    #[serde(default)]
    region: BTreeMap<String, RawRules>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    applies_to: Option<Vec<String>>,
    quiet_hours: Option<RawSetting<RawWindow>>,
    frequency_cap: Option<RawSetting<RawCap>>,
    double_opt_in: Option<bool>,
    consent_lifetime: Option<RawLifetimes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: String,
    end: String,
    days: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    max: u32,
    per: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifetimes {
    express: Option<String>,
    implied_purchase: Option<String>,
    implied_inquiry: Option<String>,
}

impl RawRules {
    fn validate(self, key: &str) -> Result<Rules, JurisdictionError> {
        let lifetimes = self.consent_lifetime.unwrap_or(RawLifetimes {
            express: None,
            implied_purchase: None,
            implied_inquiry: None,
        });
        let lifetime = |name: &str, value: Option<String>| {
            value.map(|value| validate_lifetime(&format!("{key}.consent_lifetime.{name}"), &value)).transpose()
        };
        Ok(Rules {
            applies_to: self
                .applies_to
                .map(|names| validate_categories(&format!("{key}.applies_to"), &names))
                .transpose()?,
            quiet_hours: self
                .quiet_hours
                .map(|s| s.validate(|w| validate_window(&format!("{key}.quiet_hours"), w)))
                .transpose()?,
            frequency_cap: self
                .frequency_cap
                .map(|s| s.validate(|c| validate_cap(&format!("{key}.frequency_cap"), &c)))
                .transpose()?,
            double_opt_in: self.double_opt_in,
            express: lifetime("express", lifetimes.express)?,
            implied_purchase: lifetime("implied_purchase", lifetimes.implied_purchase)?,
            implied_inquiry: lifetime("implied_inquiry", lifetimes.implied_inquiry)?,
        })
    }
}

fn validate_categories(key: &str, names: &[String]) -> Result<Categories, JurisdictionError> {
    names.iter().try_fold(Categories::default(), |categories, name| {
        let category = TemplateCategory::parse(name)
            .ok_or_else(|| JurisdictionError::UnknownCategory { key: key.to_owned(), value: name.clone() })?;
        Ok(Categories(categories.0 | Categories::bit(category)))
    })
}

fn validate_window(key: &str, raw: RawWindow) -> Result<SendingWindow, JurisdictionError> {
    let clock = |name: &str, value: &str| {
        parse_clock(value)
            .ok_or_else(|| JurisdictionError::InvalidTime { key: format!("{key}.{name}"), value: value.to_owned() })
    };
    let (start, end) = (clock("start", &raw.start)?, clock("end", &raw.end)?);
    let days: Vec<Weekday> = match raw.days {
        None => (0..7).map(|offset| Weekday::Monday.wrapping_add(offset)).collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                parse_weekday(name).ok_or_else(|| JurisdictionError::InvalidWeekday {
                    key: format!("{key}.days"),
                    value: name.clone(),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    SendingWindow::new(start, end, &days).ok_or_else(|| JurisdictionError::EmptyWindow { key: key.to_owned() })
}

fn validate_cap(key: &str, raw: &RawCap) -> Result<Cap, JurisdictionError> {
    let per_key = format!("{key}.per");
    let per: SignedDuration = raw
        .per
        .parse()
        .ok()
        .filter(|per| *per > SignedDuration::ZERO)
        .ok_or_else(|| JurisdictionError::InvalidDuration { key: per_key, value: raw.per.clone() })?;
    if raw.max == 0 {
        return Err(JurisdictionError::InvalidCap { key: format!("{key}.max") });
    }
    Ok(Cap { max: raw.max, per })
}

fn validate_lifetime(key: &str, value: &str) -> Result<Setting<Span>, JurisdictionError> {
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(Setting::Off);
    }
    let span: Span = value
        .parse()
        .ok()
        .filter(Span::is_positive)
        .ok_or_else(|| JurisdictionError::InvalidDuration { key: key.to_owned(), value: value.to_owned() })?;
    Ok(Setting::On(span))
}

/// A rule as written: `false` to turn it off, or its table.
enum RawSetting<T> {
    Off,
    On(T),
}

impl<T> RawSetting<T> {
    fn validate<U>(
        self,
        check: impl FnOnce(T) -> Result<U, JurisdictionError>,
    ) -> Result<Setting<U>, JurisdictionError> {
        match self {
            RawSetting::Off => Ok(Setting::Off),
            RawSetting::On(raw) => check(raw).map(Setting::On),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RawSetting<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SettingVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SettingVisitor<T> {
            type Value = RawSetting<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a table, or `false` to turn the rule off")
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
                if value { Err(E::invalid_value(de::Unexpected::Bool(true), &self)) } else { Ok(RawSetting::Off) }
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawSetting::On)
            }
        }

        deserializer.deserialize_any(SettingVisitor(PhantomData))
    }
}
