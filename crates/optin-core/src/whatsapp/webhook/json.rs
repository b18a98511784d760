//! A borrowed JSON tree: the intermediate form a delivery is parsed into before it is walked.
//!
//! `serde_json::Value` allocates every string and builds a `BTreeMap` for every object, which made a
//! dense 3 MB delivery (thousands of small status objects) cost tens of milliseconds. Here strings
//! without escapes borrow from the body and objects are small vectors searched linearly (webhook objects
//! have a handful of members), which parses the same delivery several times faster. Any JSON loads; the
//! webhook rules are applied afterwards by [`Fields`](super::fields::Fields), item by item.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One member of an object.
pub(super) type Member<'a> = (Cow<'a, str>, Json<'a>);

#[derive(Debug)]
pub(super) enum Json<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in body order; duplicates are kept and lookups take the last, as `serde_json` does.
    Object(Vec<Member<'a>>),
}

impl Json<'_> {
    /// The value as `serde_json::Value`, for the few changes that are kept raw.
    pub(super) fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(flag) => Value::Bool(*flag),
            Json::Unsigned(number) => Value::from(*number),
            Json::Signed(number) => Value::from(*number),
            Json::Float(number) => Value::from(*number),
            Json::String(text) => Value::String(text.as_ref().to_owned()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(members) => {
                Value::Object(members.iter().map(|(key, value)| (key.as_ref().to_owned(), value.to_value())).collect())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(flag))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Json<'de>, E> {
        Ok(Json::Unsigned(number))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Json<'de>, E> {
        Ok(Json::Signed(number))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float(number))
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(text)))
    }

    // Escaped strings arrive here. An escaped NUL (`\u0000`) is dropped: it never means anything
    // in a webhook, and PostgreSQL cannot store it in text. (A raw NUL is invalid JSON.)
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(text.replace('\0', ""))))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Json<'de>, E> {
        let text = if text.contains('\0') { text.replace('\0', "") } else { text };
        Ok(Json::String(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// An object key, borrowed from the body when it has no escapes (`Cow<str>` alone always allocates).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(JsonVisitor).and_then(|key| match key {
            Json::String(text) => Ok(Key(text)),
            _ => Err(de::Error::custom("an object key is not a string")),
        })
    }
}
