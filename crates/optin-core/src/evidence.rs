//! Opt-in methods and the evidence each one must carry.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest evidence object accepted, serialized, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024;
/// Longest single evidence string, in characters.
const MAX_FIELD_CHARS: usize = 2048;

/// How an opt-in was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Sms,
    WebForm,
    Ivr,
    Paper,
    InPerson,
    MessagingChannel,
    WhatsappThread,
    Import,
    Api,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::Sms,
        Method::WebForm,
        Method::Ivr,
        Method::Paper,
        Method::InPerson,
        Method::MessagingChannel,
        Method::WhatsappThread,
        Method::Import,
        Method::Api,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Sms => "sms",
            Method::WebForm => "web_form",
            Method::Ivr => "ivr",
            Method::Paper => "paper",
            Method::InPerson => "in_person",
            Method::MessagingChannel => "messaging_channel",
            Method::WhatsappThread => "whatsapp_thread",
            Method::Import => "import",
            Method::Api => "api",
        }
    }

    /// Whether the opt-in itself came from the phone number (a WhatsApp or SMS message the person
    /// sent), which is what the second step of a double opt-in proves: such opt-ins need no
    /// confirmation.
    pub fn proves_number_possession(&self) -> bool {
        matches!(self, Method::WhatsappThread | Method::Sms)
    }

    pub fn parse(text: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// The evidence this method needs: each inner list is "one of these fields".
    fn required_evidence(&self) -> &'static [&'static [&'static str]] {
        match self {
            Method::WebForm => &[&["page_url"], &["ip"]],
            Method::Sms => &[&["message_id"], &["from"]],
            Method::Ivr => &[&["call_id"], &["key_pressed", "recording_ref"]],
            Method::Paper | Method::InPerson => &[&["document_sha256"], &["collected_by"]],
            Method::MessagingChannel => &[&["channel"], &["message_id", "conversation_id"]],
            Method::WhatsappThread => &[&["message_id"]],
            Method::Import => &[&["batch_id"], &["original_method"]],
            Method::Api => &[&["source"]],
        }
    }
}

/// Method-specific proof of an opt-in: a JSON object of strings (and nested values the
/// business wants to keep), checked for the fields its method requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Evidence(Map<String, Value>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the evidence for method `{method}` must include `{field}`")]
    Missing { method: &'static str, field: String },
    #[error("evidence field `{field}` is invalid: {why}")]
    Invalid { field: &'static str, why: &'static str },
    #[error("the evidence is larger than {MAX_EVIDENCE_BYTES} bytes")]
    TooLarge,
}

impl EvidenceError {
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::Missing { .. } => "evidence_missing",
            EvidenceError::Invalid { .. } => "evidence_invalid",
            EvidenceError::TooLarge => "evidence_too_large",
        }
    }
}

impl Evidence {
    /// Checks `fields` against what `method` requires and returns the evidence if it is complete.
    pub fn for_method(method: Method, fields: Map<String, Value>) -> Result<Evidence, EvidenceError> {
        let evidence = Evidence(fields);
        if serde_json::to_vec(&evidence.0).map_or(true, |bytes| bytes.len() > MAX_EVIDENCE_BYTES) {
            return Err(EvidenceError::TooLarge);
        }
        for alternatives in method.required_evidence() {
            if !alternatives.iter().any(|field| evidence.text(field).is_some()) {
                return Err(EvidenceError::Missing { method: method.as_str(), field: alternatives.join("` or `") });
            }
        }
        evidence.check_known_fields(method)?;
        Ok(evidence)
    }

    /// Evidence recorded by optin itself (opt-outs, platform signals): not checked.
    pub fn recorded(fields: Map<String, Value>) -> Evidence {
        Evidence(fields)
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// A non-empty string field.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.0.get(field)?.as_str().filter(|text| !text.trim().is_empty())
    }

    fn check_known_fields(&self, method: Method) -> Result<(), EvidenceError> {
        for (field, value) in &self.0 {
            if value.as_str().is_some_and(|text| text.chars().count() > MAX_FIELD_CHARS) {
                return Err(EvidenceError::Invalid { field: static_name(field), why: "longer than 2048 characters" });
            }
        }
        if let Some(ip) = self.0.get("ip")
            && ip.as_str().and_then(|text| text.parse::<IpAddr>().ok()).is_none()
        {
            return Err(EvidenceError::Invalid { field: "ip", why: "not an IPv4 or IPv6 address" });
        }
        if let Some(url) = self.0.get("page_url") {
            let is_web_url =
                url.as_str().is_some_and(|text| text.starts_with("https://") || text.starts_with("http://"));
            if !is_web_url {
                return Err(EvidenceError::Invalid { field: "page_url", why: "not an http(s) URL" });
            }
        }
        if let Some(hash) = self.0.get("document_sha256") {
            let is_sha256 =
                hash.as_str().is_some_and(|text| text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_sha256 {
                return Err(EvidenceError::Invalid {
                    field: "document_sha256",
                    why: "not a hex SHA-256 (64 hex digits)",
                });
            }
        }
        if method == Method::Import {
            let original = self.text("original_method").and_then(Method::parse);
            if original.is_none_or(|m| m == Method::Import) {
                return Err(EvidenceError::Invalid {
                    field: "original_method",
                    why: "not an opt-in method other than import",
                });
            }
        }
        Ok(())
    }
}

/// Maps a business-supplied key to a static name for errors, without echoing arbitrary input.
fn static_name(field: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "page_url",
        "ip",
        "user_agent",
        "referrer",
        "message_id",
        "from",
        "call_id",
        "key_pressed",
        "recording_ref",
        "document_sha256",
        "collected_by",
        "channel",
        "conversation_id",
        "batch_id",
        "original_method",
        "source",
    ];
    KNOWN.into_iter().find(|known| *known == field).unwrap_or("(a custom field)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn missing_field(method: Method, value: Value) -> Option<String> {
        match Evidence::for_method(method, fields(value)) {
            Err(EvidenceError::Missing { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn each_method_names_the_field_it_misses() {
        assert_eq!(missing_field(Method::WebForm, json!({"ip": "1.2.3.4"})).as_deref(), Some("page_url"));
        assert_eq!(missing_field(Method::WebForm, json!({"page_url": "https://a.example"})).as_deref(), Some("ip"));
        assert_eq!(missing_field(Method::Sms, json!({"message_id": "SM1"})).as_deref(), Some("from"));
        assert_eq!(
            missing_field(Method::Ivr, json!({"call_id": "c"})).as_deref(),
            Some("key_pressed` or `recording_ref")
        );
        assert_eq!(missing_field(Method::Paper, json!({"collected_by": "ana"})).as_deref(), Some("document_sha256"));
        assert_eq!(missing_field(Method::InPerson, json!({})).as_deref(), Some("document_sha256"));
        assert_eq!(
            missing_field(Method::MessagingChannel, json!({"channel": "telegram"})).as_deref(),
            Some("message_id` or `conversation_id")
        );
        assert_eq!(missing_field(Method::WhatsappThread, json!({"message_id": "  "})).as_deref(), Some("message_id"));
        assert_eq!(missing_field(Method::Import, json!({"batch_id": "b1"})).as_deref(), Some("original_method"));
    }

    #[test]
    fn complete_evidence_is_accepted_per_method() {
        let sha = "a".repeat(64);
        let cases = [
            (Method::WebForm, json!({"page_url": "https://shop.example/join", "ip": "2001:db8::1", "user_agent": "x"})),
            (Method::Sms, json!({"message_id": "SM123", "from": "+14155552671"})),
            (Method::Ivr, json!({"call_id": "CA1", "recording_ref": "s3://r/1.wav"})),
            (Method::Paper, json!({"document_sha256": sha, "collected_by": "store 12"})),
            (Method::MessagingChannel, json!({"channel": "telegram", "conversation_id": "42"})),
            (Method::WhatsappThread, json!({"message_id": "wamid.X"})),
            (Method::Import, json!({"batch_id": "b1", "original_method": "web_form"})),
            (Method::Api, json!({"source": "crm sync"})),
        ];
        for (method, value) in cases {
            assert!(Evidence::for_method(method, fields(value)).is_ok(), "{method:?}");
        }
    }

    #[test]
    fn malformed_evidence_values_are_refused() {
        let bad = [
            (Method::WebForm, json!({"page_url": "javascript:alert(1)", "ip": "1.2.3.4"}), "page_url"),
            (Method::WebForm, json!({"page_url": "https://a", "ip": "999.1.1.1"}), "ip"),
            (Method::Paper, json!({"document_sha256": "abc", "collected_by": "x"}), "document_sha256"),
            (Method::Import, json!({"batch_id": "b", "original_method": "import"}), "original_method"),
            (Method::Import, json!({"batch_id": "b", "original_method": "carrier pigeon"}), "original_method"),
        ];
        for (method, value, expected_field) in bad {
            match Evidence::for_method(method, fields(value)) {
                Err(EvidenceError::Invalid { field, .. }) => assert_eq!(field, expected_field),
                other => panic!("{method:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn oversized_evidence_is_refused() {
        let huge = json!({"source": "x", "blob": "y".repeat(MAX_EVIDENCE_BYTES)});
        assert_eq!(Evidence::for_method(Method::Api, fields(huge)), Err(EvidenceError::TooLarge));
    }

    #[test]
    fn methods_round_trip_their_names() {
        for method in Method::ALL {
            assert_eq!(Method::parse(method.as_str()), Some(method));
        }
        assert_eq!(Method::parse("carrier_pigeon"), None);
    }
}
