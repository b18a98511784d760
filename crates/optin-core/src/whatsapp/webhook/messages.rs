//! The user-facing fields: `messages` (inbound messages, statuses, errors) and `user_preferences`.

use super::fields::{Fields, within};
use super::json::Json;
use super::walk::{Path, Skips, each_member};
use super::{
    ChangeKind, DeliveryStatus, InboundMessage, MessageContent, MessageContext, MessagesChange, PlatformError,
    PreferenceValue, StatusUpdate, UserPreference, UserPreferencesChange, WaContact,
};

pub(super) fn parse_messages_change(value: Fields, path: &Path, skips: &mut Skips) -> Result<ChangeKind, String> {
    let metadata = value.object("metadata")?.ok_or_else(|| "metadata is missing".to_owned())?;
    let phone_number_id = metadata.required_text("phone_number_id").map_err(within("metadata."))?.to_owned();
    let display_phone_number = metadata.loose_text("display_phone_number");
    let contacts = each_member(value, "contacts", path, skips, |contact, _, _| parse_contact(contact));
    let messages = each_member(value, "messages", path, skips, |message, _, _| parse_message(message, &contacts));
    let statuses = each_member(value, "statuses", path, skips, parse_status);
    let errors = each_member(value, "errors", path, skips, |error, _, _| parse_platform_error(error));
    Ok(ChangeKind::Messages(MessagesChange {
        phone_number_id,
        display_phone_number,
        contacts,
        messages,
        statuses,
        errors,
    }))
}

pub(super) fn parse_preferences_change(value: Fields, path: &Path, skips: &mut Skips) -> Result<ChangeKind, String> {
    let metadata = value.object("metadata")?;
    let phone_number_id = metadata.map(|metadata| metadata.optional_owned("phone_number_id")).transpose();
    let phone_number_id = phone_number_id.map_err(within("metadata."))?.flatten();
    let contacts = each_member(value, "contacts", path, skips, |contact, _, _| parse_contact(contact));
    let preferences =
        each_member(value, "user_preferences", path, skips, |preference, _, _| parse_preference(preference, &contacts));
    Ok(ChangeKind::UserPreferences(UserPreferencesChange { phone_number_id, preferences }))
}

fn parse_contact(contact: &Json) -> Result<WaContact, String> {
    let fields = Fields::of(contact)?;
    Ok(WaContact { wa_id: fields.optional_owned("wa_id")?, user_id: fields.optional_owned("user_id")? })
}

/// Who a message or preference is about: a `wa_id`, a BSUID, or both.
struct User {
    wa_id: Option<String>,
    user_id: Option<String>,
}

impl User {
    /// Completes each id from `contacts[]` when the other one names the contact. With neither, the only
    /// contact of the change is the user, if there is exactly one; with several, any pick could be wrong.
    fn resolve(wa_id: Option<&str>, user_id: Option<&str>, contacts: &[WaContact]) -> Result<User, String> {
        let contact = match (wa_id, user_id) {
            (Some(wa_id), _) => contacts.iter().find(|contact| contact.wa_id.as_deref() == Some(wa_id)),
            (None, Some(user_id)) => contacts.iter().find(|contact| contact.user_id.as_deref() == Some(user_id)),
            (None, None) => only(contacts),
        };
        let wa_id = wa_id.map(str::to_owned).or_else(|| contact.and_then(|contact| contact.wa_id.clone()));
        let user_id = user_id.map(str::to_owned).or_else(|| contact.and_then(|contact| contact.user_id.clone()));
        if wa_id.is_none() && user_id.is_none() {
            return Err("neither a wa_id nor a user_id identifies the user".to_owned());
        }
        Ok(User { wa_id, user_id })
    }
}

fn only(contacts: &[WaContact]) -> Option<&WaContact> {
    match contacts {
        [contact] => Some(contact),
        _ => None,
    }
}

fn parse_message(message: &Json, contacts: &[WaContact]) -> Result<InboundMessage, String> {
    let fields = Fields::of(message)?;
    let id = fields.required_text("id")?.to_owned();
    let timestamp = fields.required_timestamp("timestamp")?;
    let sender = User::resolve(fields.optional_text("from")?, fields.optional_text("from_user_id")?, contacts)?;
    let content = parse_content(fields)?;
    let context = fields
        .loose_object("context")
        .map(|context| MessageContext { id: context.loose_text("id"), from: context.loose_text("from") });
    Ok(InboundMessage { id, from: sender.wa_id, from_user_id: sender.user_id, timestamp, context, content })
}

fn parse_content(message: Fields) -> Result<MessageContent, String> {
    let content = match message.required_text("type")? {
        "text" => {
            let text = message.object("text")?.ok_or_else(|| "text is missing".to_owned())?;
            MessageContent::Text { body: text.required_text("body").map_err(within("text."))?.to_owned() }
        }
        "button" => parse_button(message)?,
        "interactive" => parse_interactive(message)?,
        other => MessageContent::Other { kind: other.to_owned() },
    };
    Ok(content)
}

/// A template quick-reply tap. Meta always sends both members; should one go missing, the other is the
/// best stand-in, since the payload defaults to the label.
fn parse_button(message: Fields) -> Result<MessageContent, String> {
    let button = message.object("button")?.ok_or_else(|| "button is missing".to_owned())?;
    let payload = button.optional_owned("payload").map_err(within("button."))?;
    let text = button.optional_owned("text").map_err(within("button."))?;
    match (payload, text) {
        (Some(payload), Some(text)) => Ok(MessageContent::Button { payload, text }),
        (Some(label), None) | (None, Some(label)) => Ok(MessageContent::Button { payload: label.clone(), text: label }),
        (None, None) => Err("button has neither payload nor text".to_owned()),
    }
}

fn parse_interactive(message: Fields) -> Result<MessageContent, String> {
    let interactive = message.object("interactive")?.ok_or_else(|| "interactive is missing".to_owned())?;
    let kind = interactive.required_text("type").map_err(within("interactive."))?;
    let reply = |key: &str| -> Result<(String, String), String> {
        let reply = interactive.object(key)?.ok_or_else(|| format!("{key} is missing"))?;
        let member = |name| reply.required_text(name).map(str::to_owned).map_err(|reason| format!("{key}.{reason}"));
        Ok((member("id")?, member("title")?))
    };
    let content = match kind {
        "button_reply" => reply("button_reply").map(|(id, title)| MessageContent::ButtonReply { id, title }),
        "list_reply" => reply("list_reply").map(|(id, title)| MessageContent::ListReply { id, title }),
        other => Ok(MessageContent::Other { kind: format!("interactive:{other}") }),
    };
    content.map_err(within("interactive."))
}

/// The sub-list `errors` is read last, so a status that is skipped does not also report its errors.
fn parse_status(status: &Json, path: &Path, skips: &mut Skips) -> Result<StatusUpdate, String> {
    let fields = Fields::of(status)?;
    let id = fields.required_text("id")?.to_owned();
    let delivery_status = DeliveryStatus::parse(fields.required_text("status")?);
    let timestamp = fields.required_timestamp("timestamp")?;
    let recipient_id = fields.optional_owned("recipient_id")?;
    let recipient_user_id = fields.optional_owned("recipient_user_id")?;
    Ok(StatusUpdate {
        id,
        status: delivery_status,
        timestamp,
        recipient_id,
        recipient_user_id,
        biz_opaque_callback_data: fields.loose_text("biz_opaque_callback_data"),
        pricing_category: fields.loose_object("pricing").and_then(|pricing| pricing.loose_text("category")),
        errors: each_member(fields, "errors", path, skips, |error, _, _| parse_platform_error(error)),
    })
}

fn parse_platform_error(error: &Json) -> Result<PlatformError, String> {
    let fields = Fields::of(error)?;
    Ok(PlatformError { code: fields.required_code("code")?, title: fields.loose_text("title") })
}

fn parse_preference(preference: &Json, contacts: &[WaContact]) -> Result<UserPreference, String> {
    let fields = Fields::of(preference)?;
    let category = fields.required_text("category")?.to_owned();
    let value = PreferenceValue::parse(fields.required_text("value")?);
    let timestamp = fields.required_timestamp("timestamp")?;
    let user = User::resolve(fields.optional_text("wa_id")?, fields.optional_text("user_id")?, contacts)?;
    let detail = fields.loose_text("detail");
    Ok(UserPreference { wa_id: user.wa_id, user_id: user.user_id, category, value, timestamp, detail })
}
