//! The business-management fields: template status, quality and category, and phone number quality.
//!
//! Template ids arrive as integers in Meta's examples and as strings elsewhere, so they are kept as text.

use super::fields::Fields;
use super::walk::{Path, Skips};
use super::{
    ChangeKind, PhoneNumberQualityUpdate, TemplateCategoryUpdate, TemplateQualityUpdate, TemplateStatusUpdate,
};

/// What every template change names.
struct Template {
    id: Option<String>,
    name: String,
    language: String,
}

fn parse_template(value: Fields) -> Result<Template, String> {
    Ok(Template {
        id: value.optional_id("message_template_id")?,
        name: value.required_text("message_template_name")?.to_owned(),
        language: value.required_text("message_template_language")?.to_owned(),
    })
}

/// `message_template_status_update`, unless the value is shaped like a quality update: Meta's own
/// quality example carries this field name, and a quality change must not be lost as a bad status.
pub(super) fn parse_template_status(value: Fields, path: &Path, skips: &mut Skips) -> Result<ChangeKind, String> {
    if value.raw("event").is_none() && value.raw("new_quality_score").is_some() {
        return parse_template_quality(value, path, skips);
    }
    let template = parse_template(value)?;
    Ok(ChangeKind::TemplateStatus(TemplateStatusUpdate {
        template_id: template.id,
        name: template.name,
        language: template.language,
        event: value.required_text("event")?.to_owned(),
        reason: value.loose_text("reason"),
        category: value.loose_text("message_template_category"),
        other_info_title: value.loose_object("other_info").and_then(|other_info| other_info.loose_text("title")),
    }))
}

pub(super) fn parse_template_quality(value: Fields, _: &Path, _: &mut Skips) -> Result<ChangeKind, String> {
    let template = parse_template(value)?;
    Ok(ChangeKind::TemplateQuality(TemplateQualityUpdate {
        template_id: template.id,
        name: template.name,
        language: template.language,
        previous_score: value.loose_text("previous_quality_score"),
        new_score: value.required_text("new_quality_score")?.to_owned(),
    }))
}

pub(super) fn parse_template_category(value: Fields, _: &Path, _: &mut Skips) -> Result<ChangeKind, String> {
    let template = parse_template(value)?;
    Ok(ChangeKind::TemplateCategory(TemplateCategoryUpdate {
        template_id: template.id,
        name: template.name,
        language: template.language,
        previous_category: value.loose_text("previous_category"),
        new_category: value.required_text("new_category")?.to_owned(),
    }))
}

/// `max_daily_conversations_per_business` replaces `current_limit` (due for removal in 2026), so the
/// newer member wins when both are sent.
pub(super) fn parse_phone_quality(value: Fields, _: &Path, _: &mut Skips) -> Result<ChangeKind, String> {
    Ok(ChangeKind::PhoneNumberQuality(PhoneNumberQualityUpdate {
        display_phone_number: value.loose_text("display_phone_number"),
        event: value.required_text("event")?.to_owned(),
        current_limit: value
            .loose_label("max_daily_conversations_per_business")
            .or_else(|| value.loose_label("current_limit")),
    }))
}
