//! What the gate needs from a Cloud API send body (whatsapp-platform.md §3.4): the recipient and
//! whether it is a template. Everything else is the upstream's to check; the body is forwarded as
//! it came.

use serde_json::Value;

/// A send request as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SendRequest {
    /// The recipient in E.164 (`to` with a `+` added when it has none).
    pub(super) to: String,
    pub(super) kind: MessageKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MessageKind {
    /// `type: "template"`, by `template.name` and `template.language.code`.
    Template { name: String, language: String },
    /// Any other type (`text` when `type` is absent, as the platform defaults it): a free-form
    /// message, allowed only inside the service window.
    FreeForm,
}

/// Reads the send body; `Err` says what is missing, for the client.
pub(super) fn read_send_request(body: &[u8]) -> Result<SendRequest, String> {
    let message: Value = serde_json::from_slice(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    if !message.is_object() {
        return Err("the body must be a JSON object (a Cloud API send request)".to_owned());
    }
    let to = match &message["to"] {
        Value::String(to) if !to.trim().is_empty() => to.trim(),
        _ => return Err("`to` (the recipient's phone number) is required: optin decides by phone number".to_owned()),
    };
    let to = if to.starts_with('+') { to.to_owned() } else { format!("+{to}") };
    let kind = match &message["type"] {
        Value::String(kind) if kind == "template" => template(&message["template"])?,
        Value::String(_) | Value::Null => MessageKind::FreeForm,
        _ => return Err("`type` must be a string".to_owned()),
    };
    Ok(SendRequest { to, kind })
}

fn template(template: &Value) -> Result<MessageKind, String> {
    let name = template["name"].as_str();
    let language = template["language"]["code"].as_str();
    match (name, language) {
        (Some(name), Some(language)) => {
            Ok(MessageKind::Template { name: name.to_owned(), language: language.to_owned() })
        }
        _ => Err("a template message needs `template.name` and `template.language.code`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(body: &Value) -> Result<SendRequest, String> {
        read_send_request(body.to_string().as_bytes())
    }

    #[test]
    fn templates_are_read_by_name_and_language_code() {
        let body = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"}, "components": []}});
        let expected = MessageKind::Template { name: "order_update".into(), language: "en_US".into() };
        assert_eq!(read(&body), Ok(SendRequest { to: "+16505551234".into(), kind: expected }));
    }

    #[test]
    fn every_other_type_is_free_form_and_to_keeps_its_plus() {
        for body in [
            json!({"to": "+16505551234", "type": "text", "text": {"body": "hi"}}),
            json!({"to": " 16505551234 ", "text": {"body": "hi"}}),
            json!({"to": "16505551234", "type": "image", "image": {"id": "1"}}),
        ] {
            assert_eq!(read(&body), Ok(SendRequest { to: "+16505551234".into(), kind: MessageKind::FreeForm }));
        }
    }

    #[test]
    fn bodies_without_what_the_gate_needs_are_refused() {
        for body in [
            json!({"type": "text"}),
            json!({"to": 16_505_551_234_u64, "type": "text"}),
            json!({"to": "", "type": "text"}),
            json!({"to": "1650", "type": "template", "template": {"name": "x"}}),
            json!({"to": "1650", "type": 7}),
            json!(["not", "an", "object"]),
        ] {
            assert!(read(&body).is_err(), "{body}");
        }
        assert!(read_send_request(b"{\"to\": ").is_err());
    }
}
