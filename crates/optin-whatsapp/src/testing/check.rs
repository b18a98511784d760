//! The fake's checks on credentials and message bodies, a subset of what the platform checks.

use axum::http::{HeaderMap, header};
use optin_core::whatsapp::Provider;
use serde_json::Value;

use super::FakeCredentials;

pub(super) fn is_authorized(provider: Provider, headers: &HeaderMap, expected: &FakeCredentials) -> bool {
    let header_text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match provider {
        Provider::CloudApi => header_text(header::AUTHORIZATION.as_str())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| token == expected.bearer_token),
        Provider::Dialog360 => header_text("d360-api-key") == Some(&*expected.d360_api_key),
    }
}

/// The body as JSON if the platform would take it, else the reason it would not.
pub(super) fn parse_message(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type {content_type:?} is not application/json"));
    }
    let message: Value = serde_json::from_slice(body).map_err(|error| format!("body is not JSON: {error}"))?;
    check_message(&message)?;
    Ok(message)
}

fn check_message(message: &Value) -> Result<(), String> {
    if string_at(message, "/messaging_product")? != "whatsapp" {
        return Err("messaging_product must be \"whatsapp\"".to_owned());
    }
    string_at(message, "/to")?;
    if let Some(recipient_type) = message.get("recipient_type")
        && recipient_type != "individual"
    {
        return Err("recipient_type must be \"individual\"".to_owned());
    }
    match string_at(message, "/type")? {
        "text" => string_at(message, "/text/body").map(drop),
        "interactive" => check_interactive(message),
        "template" => {
            string_at(message, "/template/name")?;
            string_at(message, "/template/language/code").map(drop)
        }
        other => Err(format!("type {other:?} is not one of text, interactive, template")),
    }
}

fn check_interactive(message: &Value) -> Result<(), String> {
    string_at(message, "/interactive/body/text")?;
    match string_at(message, "/interactive/type")? {
        "button" => {
            let buttons = array_at(message, "/interactive/action/buttons")?;
            if buttons.len() > 3 {
                return Err("at most 3 buttons".to_owned());
            }
            for button in buttons {
                if string_at(button, "/type")? != "reply" {
                    return Err("button type must be \"reply\"".to_owned());
                }
                string_at(button, "/reply/id")?;
                string_at(button, "/reply/title")?;
            }
            Ok(())
        }
        "list" => {
            string_at(message, "/interactive/action/button")?;
            for section in array_at(message, "/interactive/action/sections")? {
                for row in array_at(section, "/rows")? {
                    string_at(row, "/id")?;
                    string_at(row, "/title")?;
                }
            }
            Ok(())
        }
        other => Err(format!("interactive type {other:?} is not button or list")),
    }
}

fn string_at<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, String> {
    match value.pointer(pointer).and_then(Value::as_str) {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(format!("{pointer} must be a non-empty string")),
    }
}

fn array_at<'a>(value: &'a Value, pointer: &str) -> Result<&'a Vec<Value>, String> {
    match value.pointer(pointer).and_then(Value::as_array) {
        Some(items) if !items.is_empty() => Ok(items),
        _ => Err(format!("{pointer} must be a non-empty array")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_documented_template_body_is_accepted() {
        let template = json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
            "type": "template",
            "template": { "name": "order_update", "language": { "code": "en_US" } },
        });
        assert_eq!(check_message(&template), Ok(()));
    }

    #[test]
    fn bodies_the_platform_refuses_are_refused() {
        let refused = [
            json!({ "messaging_product": "sms", "to": "1", "type": "text", "text": { "body": "hi" } }),
            json!({ "messaging_product": "whatsapp", "type": "text", "text": { "body": "hi" } }),
            json!({ "messaging_product": "whatsapp", "to": "1", "type": "text" }),
            json!({ "messaging_product": "whatsapp", "to": "1", "type": "audio", "audio": {} }),
            json!({ "messaging_product": "whatsapp", "to": "1", "type": "interactive",
                    "interactive": { "type": "button", "body": { "text": "b" } } }),
        ];
        for body in refused {
            assert!(check_message(&body).is_err(), "accepted {body}");
        }
    }
}
