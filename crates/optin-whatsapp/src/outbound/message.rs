//! Free-form service messages, their platform limits, and their wire body.
//!
//! The body is the same for the Cloud API and 360dialog (whatsapp-platform.md §3.4). Limits are
//! checked before anything is sent, so a message the platform would refuse never costs a request.

use serde_json::{Value, json};

use super::SendError;

/// A free-form message, sendable only inside the 24-hour customer service window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundMessage {
    /// Plain text, link previews off.
    Text { to: String, body: String },
    /// Up to three quick-reply buttons under a body and an optional footer.
    ReplyButtons { to: String, body: String, footer: Option<String>, buttons: Vec<ReplyButton> },
    /// A button that opens a single-section list of up to ten rows.
    List { to: String, body: String, button: String, rows: Vec<ListRow> },
}

/// One quick-reply button; `id` comes back in the `button_reply` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// One row of a list message; `id` comes back in the `list_reply` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

const MAX_TEXT_BODY: usize = 4096;
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_FOOTER: usize = 60;
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_BUTTON_ID: usize = 256;
const MAX_LIST_BUTTON: usize = 20;
const MAX_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_ROW_ID: usize = 200;

impl OutboundMessage {
    /// The recipient's wa_id.
    pub fn recipient(&self) -> &str {
        match self {
            OutboundMessage::Text { to, .. }
            | OutboundMessage::ReplyButtons { to, .. }
            | OutboundMessage::List { to, .. } => to,
        }
    }

    /// Checks the platform limits; `send` calls this before making any request.
    ///
    /// Lengths are counted in characters, as the platform counts them.
    pub fn validate(&self) -> Result<(), SendError> {
        check_recipient(self.recipient())?;
        match self {
            OutboundMessage::Text { body, .. } => check_text("text body", body, MAX_TEXT_BODY),
            OutboundMessage::ReplyButtons { body, footer, buttons, .. } => {
                check_text("body", body, MAX_INTERACTIVE_BODY)?;
                if let Some(footer) = footer {
                    check_text("footer", footer, MAX_FOOTER)?;
                }
                check_buttons(buttons)
            }
            OutboundMessage::List { body, button, rows, .. } => {
                check_text("body", body, MAX_INTERACTIVE_BODY)?;
                check_text("list button", button, MAX_LIST_BUTTON)?;
                check_rows(rows)
            }
        }
    }

    /// The JSON body POSTed to `/messages`, identical for both providers.
    pub(crate) fn to_request_body(&self) -> Value {
        let (to, content) = match self {
            OutboundMessage::Text { to, body } => {
                (to, json!({ "type": "text", "text": { "body": body, "preview_url": false } }))
            }
            OutboundMessage::ReplyButtons { to, body, footer, buttons } => {
                (to, reply_buttons_content(body, footer.as_deref(), buttons))
            }
            OutboundMessage::List { to, body, button, rows } => (to, list_content(body, button, rows)),
        };
        let mut request_body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
        });
        if let (Some(request_fields), Value::Object(content_fields)) = (request_body.as_object_mut(), content) {
            request_fields.extend(content_fields);
        }
        request_body
    }
}

fn reply_buttons_content(body: &str, footer: Option<&str>, buttons: &[ReplyButton]) -> Value {
    let buttons: Vec<Value> = buttons
        .iter()
        .map(|button| json!({ "type": "reply", "reply": { "id": button.id, "title": button.title } }))
        .collect();
    let mut interactive = json!({
        "type": "button",
        "body": { "text": body },
        "action": { "buttons": buttons },
    });
    if let Some(footer) = footer {
        interactive["footer"] = json!({ "text": footer });
    }
    json!({ "type": "interactive", "interactive": interactive })
}

/// One section, titled with the button label: the platform needs no section title for a single
/// section, but a title keeps the opened list self-explanatory and fits (20 <= 24 characters).
fn list_content(body: &str, button: &str, rows: &[ListRow]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut wire_row = json!({ "id": row.id, "title": row.title });
            if let Some(description) = &row.description {
                wire_row["description"] = json!(description);
            }
            wire_row
        })
        .collect();
    json!({
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": { "text": body },
            "action": { "button": button, "sections": [ { "title": button, "rows": rows } ] },
        },
    })
}

fn check_recipient(to: &str) -> Result<(), SendError> {
    if to.is_empty() || !to.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid("recipient must be a wa_id of digits only"));
    }
    Ok(())
}

fn check_text(what: &str, text: &str, max_chars: usize) -> Result<(), SendError> {
    if text.trim().is_empty() {
        return Err(invalid(&format!("{what} must not be empty")));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(invalid(&format!("{what} has {chars} characters, at most {max_chars} allowed")));
    }
    Ok(())
}

fn check_buttons(buttons: &[ReplyButton]) -> Result<(), SendError> {
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(invalid(&format!("{} reply buttons, 1 to {MAX_BUTTONS} allowed", buttons.len())));
    }
    for button in buttons {
        check_text("button title", &button.title, MAX_BUTTON_TITLE)?;
        check_text("button id", &button.id, MAX_BUTTON_ID)?;
    }
    check_unique_ids("button", buttons.iter().map(|button| button.id.as_str()))
}

fn check_rows(rows: &[ListRow]) -> Result<(), SendError> {
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(invalid(&format!("{} list rows, 1 to {MAX_ROWS} allowed", rows.len())));
    }
    for row in rows {
        check_text("row title", &row.title, MAX_ROW_TITLE)?;
        check_text("row id", &row.id, MAX_ROW_ID)?;
        if let Some(description) = &row.description {
            check_text("row description", description, MAX_ROW_DESCRIPTION)?;
        }
    }
    check_unique_ids("row", rows.iter().map(|row| row.id.as_str()))
}

fn check_unique_ids<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), SendError> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(invalid(&format!("{what} ids must be unique")));
        }
    }
    Ok(())
}

fn invalid(reason: &str) -> SendError {
    SendError::InvalidMessage(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons(count: usize) -> Vec<ReplyButton> {
        (0..count).map(|index| ReplyButton { id: format!("id-{index}"), title: format!("Option {index}") }).collect()
    }

    fn button_message(buttons: Vec<ReplyButton>) -> OutboundMessage {
        OutboundMessage::ReplyButtons {
            to: "16505551234".to_owned(),
            body: "Pick one".to_owned(),
            footer: None,
            buttons,
        }
    }

    fn list_message(rows: Vec<ListRow>) -> OutboundMessage {
        OutboundMessage::List {
            to: "16505551234".to_owned(),
            body: "Pick one".to_owned(),
            button: "Choose".to_owned(),
            rows,
        }
    }

    fn row(title: &str, description: Option<&str>) -> ListRow {
        ListRow { id: title.to_owned(), title: title.to_owned(), description: description.map(str::to_owned) }
    }

    #[test]
    fn three_buttons_with_twenty_character_titles_are_valid() {
        let mut three = buttons(3);
        three[0].title = "x".repeat(20);
        assert_eq!(button_message(three).validate(), Ok(()));
    }

    #[test]
    fn button_limits_are_enforced() {
        let mut long_title = buttons(1);
        long_title[0].title = "é".repeat(21);
        let mut long_id = buttons(1);
        long_id[0].id = "i".repeat(257);
        let mut duplicate = buttons(2);
        duplicate[1].id = duplicate[0].id.clone();
        for bad in [buttons(0), buttons(4), long_title, long_id, duplicate] {
            let error = button_message(bad).validate().unwrap_err();
            assert_eq!(error.code(), "invalid_outbound_message", "{error}");
        }
    }

    #[test]
    fn list_limits_are_enforced() {
        let ten: Vec<ListRow> = (0..10).map(|i| row(&format!("row {i}"), None)).collect();
        assert_eq!(list_message(ten.clone()).validate(), Ok(()));
        let mut eleven = ten;
        eleven.push(row("row 10", None));
        let long_title = vec![row(&"t".repeat(25), None)];
        let long_description = vec![row("ok", Some(&"d".repeat(73)))];
        for bad in [vec![], eleven, long_title, long_description] {
            assert!(matches!(list_message(bad).validate(), Err(SendError::InvalidMessage(_))));
        }
    }

    #[test]
    fn recipient_must_be_digits() {
        for to in ["", "+16505551234", "1650 555"] {
            let message = OutboundMessage::Text { to: to.to_owned(), body: "hi".to_owned() };
            assert!(message.validate().is_err(), "{to:?} accepted");
        }
    }

    #[test]
    fn footer_is_omitted_when_absent_and_present_when_given() {
        let without = button_message(buttons(1)).to_request_body();
        assert!(without["interactive"].get("footer").is_none());
        let with = OutboundMessage::ReplyButtons {
            to: "1".to_owned(),
            body: "b".to_owned(),
            footer: Some("f".to_owned()),
            buttons: buttons(1),
        }
        .to_request_body();
        assert_eq!(with["interactive"]["footer"], json!({ "text": "f" }));
    }
}
