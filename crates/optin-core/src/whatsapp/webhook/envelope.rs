//! The envelope: `entry[]`, `changes[]`, and routing each change on its subscription field.

use jiff::Timestamp;

use super::fields::{Fields, within};
use super::json::Json;
use super::walk::{Path, Skips, each, each_member};
use super::{Change, ChangeKind, DeliveryError, ParsedDelivery, management, messages};

pub(super) fn parse_document(document: &Json) -> Result<ParsedDelivery, DeliveryError> {
    let entries = entries_of(document)?;
    let mut skips = Skips::default();
    let entry_path = Path::root("entry");
    let changes = each(entries, &entry_path, &mut skips, parse_entry).into_iter().flatten().collect();
    Ok(ParsedDelivery { changes, skipped: skips.into_vec() })
}

fn entries_of<'v>(document: &'v Json<'v>) -> Result<&'v [Json<'v>], DeliveryError> {
    let fields =
        Fields::of(document).map_err(|_| DeliveryError::NotAWebhook("the body is not a JSON object".to_owned()))?;
    match fields.raw("entry") {
        Some(Json::Array(entries)) => Ok(entries),
        Some(_) => Err(DeliveryError::NotAWebhook("entry is not an array".to_owned())),
        None => Err(DeliveryError::NotAWebhook("entry is missing".to_owned())),
    }
}

/// What every change of an entry shares.
struct EntryHeader {
    waba_id: String,
    time: Option<Timestamp>,
}

fn parse_entry(entry: &Json, path: &Path, skips: &mut Skips) -> Result<Vec<Change>, String> {
    let fields = Fields::of(entry)?;
    let header = EntryHeader { waba_id: fields.required_id("id")?, time: fields.optional_timestamp("time")? };
    Ok(each_member(fields, "changes", path, skips, |change, change_path, skips| {
        parse_change(&header, change, change_path, skips)
    }))
}

fn parse_change(header: &EntryHeader, change: &Json, path: &Path, skips: &mut Skips) -> Result<Change, String> {
    let fields = Fields::of(change)?;
    let field = fields.required_text("field")?;
    let kind = match route(field) {
        Route::Typed(parse_value) => {
            let value = fields.object("value")?.ok_or_else(|| "value is missing".to_owned())?;
            parse_value(value, &path.key("value"), skips).map_err(within("value."))?
        }
        Route::Raw => ChangeKind::Account {
            field: field.to_owned(),
            value: fields.raw("value").map(Json::to_value).unwrap_or_default(),
        },
        Route::Ignored => ChangeKind::Unknown { field: field.to_owned() },
    };
    Ok(Change { waba_id: header.waba_id.clone(), time: header.time, field: field.to_owned(), kind })
}

/// Parses a change's `value` object; sub-items it leaves out are recorded under the value's path.
type ValueParser = fn(Fields, &Path, &mut Skips) -> Result<ChangeKind, String>;

/// How a subscription field is read.
enum Route {
    Typed(ValueParser),
    /// Kept as raw JSON: see [`ChangeKind::Account`].
    Raw,
    Ignored,
}

fn route(field: &str) -> Route {
    match field {
        "messages" => Route::Typed(messages::parse_messages_change),
        "user_preferences" => Route::Typed(messages::parse_preferences_change),
        "message_template_status_update" => Route::Typed(management::parse_template_status),
        "message_template_quality_update" => Route::Typed(management::parse_template_quality),
        "template_category_update" => Route::Typed(management::parse_template_category),
        "phone_number_quality_update" => Route::Typed(management::parse_phone_quality),
        "account_update" | "account_alerts" | "business_capability_update" => Route::Raw,
        _ => Route::Ignored,
    }
}
