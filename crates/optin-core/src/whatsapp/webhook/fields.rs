//! Reading members of one JSON object under the module's tolerance rules.
//!
//! `required_*` and `optional_*` readers are strict about types and are meant for members that identify
//! a person, a message or a moment. `loose_*` readers turn a wrongly typed member into `None` and are
//! meant for descriptive members only. Everywhere, `null` and `""` read as absent. Errors are the
//! reason text a [`Skipped`](super::Skipped) item carries.

use jiff::Timestamp;

use super::json::{Json, Member};

/// The members of one JSON object.
#[derive(Clone, Copy)]
pub(super) struct Fields<'v>(&'v [Member<'v>]);

impl<'v> Fields<'v> {
    /// The item itself must be an object.
    pub(super) fn of(item: &'v Json<'v>) -> Result<Fields<'v>, String> {
        match item {
            Json::Object(members) => Ok(Fields(members)),
            _ => Err("not a JSON object".to_owned()),
        }
    }

    /// The member, with `null` and `""` read as absent. The last of duplicate members wins.
    pub(super) fn raw(&self, key: &str) -> Option<&'v Json<'v>> {
        let (_, value) = self.0.iter().rev().find(|(name, _)| name == key)?;
        match value {
            Json::Null => None,
            Json::String(text) if text.is_empty() => None,
            value => Some(value),
        }
    }

    pub(super) fn required_text(&self, key: &str) -> Result<&'v str, String> {
        self.optional_text(key)?.ok_or_else(|| missing(key))
    }

    pub(super) fn optional_text(&self, key: &str) -> Result<Option<&'v str>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(Json::String(text)) => Ok(Some(text)),
            Some(_) => Err(format!("{key} is not a string")),
        }
    }

    pub(super) fn optional_owned(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.optional_text(key)?.map(str::to_owned))
    }

    pub(super) fn loose_text(&self, key: &str) -> Option<String> {
        self.optional_text(key).ok().flatten().map(str::to_owned)
    }

    /// A descriptive label sent as a string or an integer (`"TIER_2K"` or `2000`).
    pub(super) fn loose_label(&self, key: &str) -> Option<String> {
        match self.raw(key)? {
            Json::String(text) => Some(text.as_ref().to_owned()),
            Json::Unsigned(number) => Some(number.to_string()),
            Json::Signed(number) => Some(number.to_string()),
            _ => None,
        }
    }

    pub(super) fn object(&self, key: &str) -> Result<Option<Fields<'v>>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(Json::Object(members)) => Ok(Some(Fields(members))),
            Some(_) => Err(format!("{key} is not an object")),
        }
    }

    pub(super) fn loose_object(&self, key: &str) -> Option<Fields<'v>> {
        self.object(key).ok().flatten()
    }

    /// An id Meta sends as a string in some payloads and as an integer in others; kept as text.
    pub(super) fn optional_id(&self, key: &str) -> Result<Option<String>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(Json::String(text)) => Ok(Some(text.as_ref().to_owned())),
            Some(Json::Unsigned(number)) => Ok(Some(number.to_string())),
            Some(_) => Err(format!("{key} is not a string or a non-negative integer")),
        }
    }

    pub(super) fn required_id(&self, key: &str) -> Result<String, String> {
        self.optional_id(key)?.ok_or_else(|| missing(key))
    }

    /// An error code: an integer, or its digits as a string.
    pub(super) fn required_code(&self, key: &str) -> Result<i64, String> {
        let code = match self.raw(key).ok_or_else(|| missing(key))? {
            Json::Unsigned(number) => i64::try_from(*number).ok(),
            Json::Signed(number) => Some(*number),
            Json::String(text) => text.parse().ok(),
            _ => None,
        };
        code.ok_or_else(|| format!("{key} is not an integer"))
    }

    pub(super) fn required_timestamp(&self, key: &str) -> Result<Timestamp, String> {
        self.optional_timestamp(key)?.ok_or_else(|| missing(key))
    }

    /// Unix seconds as a string (`messages`, `statuses`) or an integer (`user_preferences`, `entry.time`).
    pub(super) fn optional_timestamp(&self, key: &str) -> Result<Option<Timestamp>, String> {
        let Some(value) = self.raw(key) else { return Ok(None) };
        let seconds = match value {
            Json::Unsigned(number) => i64::try_from(*number).ok(),
            Json::String(text) if text.bytes().all(|byte| byte.is_ascii_digit()) => text.parse().ok(),
            _ => None,
        };
        let timestamp =
            seconds.filter(|&seconds| seconds >= 0).and_then(|seconds| Timestamp::from_second(seconds).ok());
        timestamp.map(Some).ok_or_else(|| format!("{key} is not a Unix time in seconds"))
    }
}

fn missing(key: &str) -> String {
    format!("{key} is missing")
}

/// Prefixes a reason with the member it was found under, e.g. `value.` + `metadata is missing`.
pub(super) fn within(prefix: &'static str) -> impl Fn(String) -> String {
    move |reason| format!("{prefix}{reason}")
}
