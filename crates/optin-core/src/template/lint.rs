//! Checks on a template's content that Meta does not make but the consent policy asks for.

use serde_json::Value;

use super::Template;
use crate::business::TemplateCategory;
use crate::keywords::{is_stop_promotions_label, mentions_opt_out};

/// Something in a template worth fixing before sending it. `code()` is stable and documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateWarning {
    /// A marketing template that tells people no way to opt out.
    MarketingWithoutOptOut,
}

impl TemplateWarning {
    pub fn code(&self) -> &'static str {
        match self {
            TemplateWarning::MarketingWithoutOptOut => "marketing_template_without_opt_out",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            TemplateWarning::MarketingWithoutOptOut => "the marketing template tells people no way to opt out: add a \
                \"Stop promotions\" quick-reply button, or a footer such as \"Not interested? Tap Stop promotions\" \
                or \"Reply STOP to unsubscribe\""
                .to_owned(),
        }
    }
}

/// Checks one template. A MARKETING template must carry an opt-out instruction: a QUICK_REPLY
/// button labelled "Stop promotions" (in any language) or naming a way out, or a FOOTER or BODY
/// text that tells how to opt out. Utility and authentication templates are not checked.
pub fn lint(template: &Template) -> Vec<TemplateWarning> {
    let mut warnings = Vec::new();
    if template.category == TemplateCategory::Marketing && !carries_opt_out_instruction(&template.components) {
        warnings.push(TemplateWarning::MarketingWithoutOptOut);
    }
    warnings
}

/// Component and button `type`s arrive upper-case from the template API, but hand-written files
/// vary, so they are compared without regard to case.
fn carries_opt_out_instruction(components: &Value) -> bool {
    components.as_array().into_iter().flatten().any(|component| {
        let kind = text_field(component, "type").unwrap_or_default();
        if kind.eq_ignore_ascii_case("BUTTONS") {
            buttons_offer_opt_out(component)
        } else if kind.eq_ignore_ascii_case("FOOTER") || kind.eq_ignore_ascii_case("BODY") {
            text_field(component, "text").is_some_and(mentions_opt_out)
        } else {
            false
        }
    })
}

fn buttons_offer_opt_out(component: &Value) -> bool {
    let buttons = component.get("buttons").and_then(Value::as_array).into_iter().flatten();
    buttons
        .filter(|button| text_field(button, "type").is_some_and(|kind| kind.eq_ignore_ascii_case("QUICK_REPLY")))
        .any(|button| {
            text_field(button, "text").is_some_and(|text| is_stop_promotions_label(text) || mentions_opt_out(text))
        })
}

fn text_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}
