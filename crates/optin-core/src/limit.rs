//! A business's WhatsApp messaging limit, and who fits under it.
//!
//! Meta limits how many **unique** people a business portfolio may reach with business-initiated
//! messages (outside a customer service window) in a **moving 24-hour period**: 250 for a new
//! portfolio, then 2,000, 10,000, 100,000 and unlimited (whatsapp-platform.md §5.1). The limit
//! arrives in several spellings, all read by [`MessagingLimit::parse`]:
//!
//! - tiers: `TIER_50`, `TIER_250`, `TIER_1K` (legacy), `TIER_2K`, `TIER_10K`, `TIER_100K`,
//!   `TIER_UNLIMITED` (any `TIER_<digits>[K|M]` is read the same way, for tiers Meta adds later);
//! - integers, in `business_capability_update` and the older per-phone field: `2000`, and `-1`
//!   for unlimited;
//! - `unlimited`, and bare counts such as `2K`, for people typing them.
//!
//! `TIER_NOT_SET` is not a limit ([`MessagingLimitError::NotSet`]); webhooks carrying it, or a value
//! this version cannot read, leave the limit as it was ([`MessagingLimit::from_webhook`]).
//!
//! [`admit_recipients`] is the counting rule the stores apply inside their transaction: someone
//! already reached in the window costs nothing; anyone else takes one of the remaining places, in
//! order, until none is left.

use std::collections::HashSet;
use std::fmt;

use jiff::SignedDuration;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

use crate::phone::PhoneNumber;

/// The moving period a messaging limit counts unique recipients over.
pub const MESSAGING_LIMIT_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// Longest text [`MessagingLimit::parse`] reads.
const MAX_TEXT_CHARS: usize = 32;

/// The tiers Meta names, by their number of recipients (serialized by name).
const NAMED_TIERS: [(u64, &str); 6] = [
    (50, "TIER_50"),
    (250, "TIER_250"),
    (1_000, "TIER_1K"),
    (2_000, "TIER_2K"),
    (10_000, "TIER_10K"),
    (100_000, "TIER_100K"),
];

/// How many unique recipients of business-initiated messages a business may reach in
/// [`MESSAGING_LIMIT_WINDOW`].
///
/// Serialized as Meta's tier name when there is one (`"TIER_2K"`, `"TIER_UNLIMITED"`), otherwise
/// as the number (`1500`); read from any form [`MessagingLimit::parse`] accepts, or from an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessagingLimit {
    /// At most this many (at least 1).
    Limited(u64),
    Unlimited,
}

/// Why a value is not a messaging limit. `code()` is the stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagingLimitError {
    #[error("TIER_NOT_SET is not a messaging limit")]
    NotSet,
    #[error(
        "{0:?} is not a messaging limit: use a tier such as TIER_250, TIER_2K, TIER_10K, TIER_100K or \
         TIER_UNLIMITED, a number of recipients (at least 1), or `unlimited`"
    )]
    Invalid(String),
}

impl MessagingLimitError {
    pub fn code(&self) -> &'static str {
        "invalid_messaging_limit"
    }
}

impl MessagingLimit {
    /// Reads a tier name, a count (`2000`, `2K`, `-1` for unlimited) or `unlimited`, in any case,
    /// surrounding spaces ignored.
    pub fn parse(text: &str) -> Result<MessagingLimit, MessagingLimitError> {
        let invalid = || MessagingLimitError::Invalid(text.chars().take(MAX_TEXT_CHARS).collect());
        let trimmed = text.trim();
        if trimmed.chars().count() > MAX_TEXT_CHARS {
            return Err(invalid());
        }
        let upper = trimmed.to_ascii_uppercase();
        let body = upper.strip_prefix("TIER_").unwrap_or(&upper);
        match body {
            "NOT_SET" => return Err(MessagingLimitError::NotSet),
            "UNLIMITED" | "-1" => return Ok(MessagingLimit::Unlimited),
            _ => {}
        }
        let (digits, multiplier) = match body.as_bytes().last() {
            Some(b'K') => (&body[..body.len() - 1], 1_000),
            Some(b'M') => (&body[..body.len() - 1], 1_000_000),
            _ => (body, 1),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let count = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(multiplier));
        match count {
            Some(count) if count > 0 => Ok(MessagingLimit::Limited(count)),
            _ => Err(invalid()),
        }
    }

    /// Reads Meta's integer form: a count, or `-1` for unlimited.
    pub fn from_integer(count: i64) -> Result<MessagingLimit, MessagingLimitError> {
        match count {
            -1 => Ok(MessagingLimit::Unlimited),
            1.. => Ok(MessagingLimit::Limited(count.unsigned_abs())),
            _ => Err(MessagingLimitError::Invalid(count.to_string())),
        }
    }

    /// Reads the limit a webhook carries (a string such as `TIER_2K`, or an integer kept as its
    /// decimal text), tolerantly: `TIER_NOT_SET` and values this version cannot read are `None`,
    /// meaning "leave the limit as it is".
    pub fn from_webhook(text: &str) -> Option<MessagingLimit> {
        MessagingLimit::parse(text).ok()
    }

    /// The number of recipients, `None` when unlimited.
    pub fn recipients(self) -> Option<u64> {
        match self {
            MessagingLimit::Limited(count) => Some(count),
            MessagingLimit::Unlimited => None,
        }
    }

    /// Meta's tier name for this limit, if it has one.
    pub fn tier_name(self) -> Option<&'static str> {
        match self {
            MessagingLimit::Unlimited => Some("TIER_UNLIMITED"),
            MessagingLimit::Limited(count) => NAMED_TIERS.iter().find(|(n, _)| *n == count).map(|(_, name)| *name),
        }
    }
}

impl fmt::Display for MessagingLimit {
    /// The tier name, or else the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tier_name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, MessagingLimit::Limited(count)) => write!(f, "{count}"),
            (None, MessagingLimit::Unlimited) => f.write_str("TIER_UNLIMITED"),
        }
    }
}

impl Serialize for MessagingLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.tier_name(), self) {
            (Some(name), _) => serializer.serialize_str(name),
            (None, MessagingLimit::Limited(count)) => serializer.serialize_u64(*count),
            (None, MessagingLimit::Unlimited) => serializer.serialize_str("TIER_UNLIMITED"),
        }
    }
}

impl<'de> Deserialize<'de> for MessagingLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LimitVisitor)
    }
}

struct LimitVisitor;

impl Visitor<'_> for LimitVisitor {
    type Value = MessagingLimit;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a messaging limit: a tier such as \"TIER_2K\", a number of recipients, or \"unlimited\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<MessagingLimit, E> {
        MessagingLimit::parse(text).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, count: i64) -> Result<MessagingLimit, E> {
        MessagingLimit::from_integer(count).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, count: u64) -> Result<MessagingLimit, E> {
        match count {
            0 => Err(E::custom(MessagingLimitError::Invalid("0".to_owned()))),
            count => Ok(MessagingLimit::Limited(count)),
        }
    }
}

impl utoipa::PartialSchema for MessagingLimit {
    fn schema() -> RefOr<Schema> {
        let description = "Unique recipients of business-initiated messages per moving 24 hours: Meta's tier \
            (TIER_250, TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED; TIER_50 and TIER_1K too), a number of \
            recipients (integer, -1 for unlimited), or \"unlimited\". Answered as the tier name when there is one.";
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
            .description(Some(description))
            .examples(["TIER_2K"])
            .into()
    }
}

impl utoipa::ToSchema for MessagingLimit {}

/// Which of `phones`, in order, may be messaged: `limit` unique recipients at most (`None`:
/// unlimited), `recipients_in_window` of whom were already reached. A phone for which
/// `in_window` is true was reached already and is always admitted; so is a phone admitted earlier
/// in the same call. Anyone else is admitted while places remain, and takes one.
///
/// Stores call this inside the transaction that read `recipients_in_window` and `in_window`, and
/// then record every admitted phone as reached.
pub fn admit_recipients(
    limit: Option<u64>,
    recipients_in_window: u64,
    phones: &[PhoneNumber],
    in_window: impl Fn(PhoneNumber) -> bool,
) -> Vec<bool> {
    let mut reached = recipients_in_window;
    let mut admitted_now: HashSet<PhoneNumber> = HashSet::new();
    phones
        .iter()
        .map(|phone| {
            if in_window(*phone) || admitted_now.contains(phone) {
                return true;
            }
            let fits = limit.is_none_or(|limit| reached < limit);
            if fits {
                reached += 1;
                admitted_now.insert(*phone);
            }
            fits
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_form_meta_uses_is_read() {
        let cases: &[(&str, MessagingLimit)] = &[
            ("TIER_50", MessagingLimit::Limited(50)),
            ("TIER_250", MessagingLimit::Limited(250)),
            ("TIER_1K", MessagingLimit::Limited(1_000)),
            ("TIER_2K", MessagingLimit::Limited(2_000)),
            ("TIER_10K", MessagingLimit::Limited(10_000)),
            ("TIER_100K", MessagingLimit::Limited(100_000)),
            ("TIER_UNLIMITED", MessagingLimit::Unlimited),
            ("2000", MessagingLimit::Limited(2_000)),
            ("250", MessagingLimit::Limited(250)),
            ("-1", MessagingLimit::Unlimited),
            ("unlimited", MessagingLimit::Unlimited),
            (" tier_2k ", MessagingLimit::Limited(2_000)),
            ("10k", MessagingLimit::Limited(10_000)),
            ("TIER_1M", MessagingLimit::Limited(1_000_000)),
            ("1500", MessagingLimit::Limited(1_500)),
        ];
        for (text, expected) in cases {
            assert_eq!(MessagingLimit::parse(text), Ok(*expected), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_limit_is_refused_with_one_code() {
        assert_eq!(MessagingLimit::parse("TIER_NOT_SET"), Err(MessagingLimitError::NotSet));
        for text in ["", "TIER_", "TIER_0", "0", "-2", "K", "2KK", "TIER_2.5K", "lots", "99999999999999999999K"] {
            let error = MessagingLimit::parse(text).unwrap_err();
            assert!(matches!(error, MessagingLimitError::Invalid(_)), "{text}: {error:?}");
            assert_eq!(error.code(), "invalid_messaging_limit");
        }
        let long = "9".repeat(200);
        assert!(matches!(MessagingLimit::parse(&long), Err(MessagingLimitError::Invalid(shown)) if shown.len() == 32));
    }

    #[test]
    fn integers_count_recipients_and_minus_one_is_unlimited() {
        assert_eq!(MessagingLimit::from_integer(2000), Ok(MessagingLimit::Limited(2_000)));
        assert_eq!(MessagingLimit::from_integer(-1), Ok(MessagingLimit::Unlimited));
        assert!(MessagingLimit::from_integer(0).is_err());
        assert!(MessagingLimit::from_integer(-5).is_err());
    }

    #[test]
    fn webhooks_without_a_readable_limit_leave_it_alone() {
        assert_eq!(MessagingLimit::from_webhook("TIER_NOT_SET"), None);
        assert_eq!(MessagingLimit::from_webhook("TIER_SOMETHING_NEW"), None);
        assert_eq!(MessagingLimit::from_webhook("TIER_10K"), Some(MessagingLimit::Limited(10_000)));
    }

    #[test]
    fn serde_uses_the_tier_name_or_the_number() {
        let cases = [
            (MessagingLimit::Limited(2_000), json!("TIER_2K")),
            (MessagingLimit::Limited(1_000), json!("TIER_1K")),
            (MessagingLimit::Unlimited, json!("TIER_UNLIMITED")),
            (MessagingLimit::Limited(1_500), json!(1500)),
        ];
        for (limit, expected) in cases {
            assert_eq!(serde_json::to_value(limit).unwrap(), expected);
            assert_eq!(serde_json::from_value::<MessagingLimit>(expected).unwrap(), limit);
            assert_eq!(limit.to_string(), serde_json::to_value(limit).unwrap().to_string().trim_matches('"'));
        }
        assert_eq!(serde_json::from_value::<MessagingLimit>(json!(-1)).unwrap(), MessagingLimit::Unlimited);
        assert_eq!(serde_json::from_value::<MessagingLimit>(json!("unlimited")).unwrap(), MessagingLimit::Unlimited);
        for invalid in [json!(0), json!(-3), json!("TIER_NOT_SET"), json!(2.5), json!(null), json!(["TIER_2K"])] {
            assert!(serde_json::from_value::<MessagingLimit>(invalid.clone()).is_err(), "{invalid}");
        }
    }

    #[test]
    fn recipients_and_tier_names() {
        assert_eq!(MessagingLimit::Limited(250).recipients(), Some(250));
        assert_eq!(MessagingLimit::Unlimited.recipients(), None);
        assert_eq!(MessagingLimit::Limited(1_500).tier_name(), None);
    }

    fn phones(numbers: &[u32]) -> Vec<PhoneNumber> {
        numbers.iter().map(|n| PhoneNumber::from_e164(&format!("+1415555{n:04}")).unwrap()).collect()
    }

    #[test]
    fn newcomers_take_the_places_left_in_order() {
        let asked = phones(&[1, 2, 3, 4]);
        assert_eq!(admit_recipients(Some(5), 3, &asked, |_| false), [true, true, false, false]);
        assert_eq!(admit_recipients(Some(3), 3, &asked, |_| false), [false; 4]);
        assert_eq!(admit_recipients(None, 1_000_000, &asked, |_| false), [true; 4]);
    }

    #[test]
    fn people_already_reached_cost_nothing() {
        let asked = phones(&[1, 2, 3, 1, 4]);
        let reached = phones(&[3]);
        let decisions = admit_recipients(Some(3), 2, &asked, |phone| reached.contains(&phone));
        // 1 takes the last place; 2 is refused; 3 was reached; 1 again was admitted in this call.
        assert_eq!(decisions, [true, false, true, true, false]);
        // A refused phone asked again is still refused.
        let again = phones(&[2, 2]);
        assert_eq!(admit_recipients(Some(1), 1, &again, |_| false), [false, false]);
    }
}
