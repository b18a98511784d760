//! Reading a template list: the whole file must be JSON of a known shape, then each item is
//! checked on its own and either kept or reported.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{QualityScore, Template, TemplateLanguage, TemplateName, TemplateStatus, truncate};
use crate::business::{CategoryName, TemplateCategory};

/// Most templates one import may hold. Meta caps a WhatsApp Business Account far below this.
pub const MAX_TEMPLATES_PER_IMPORT: usize = 5_000;

/// Longest template id kept, in characters. Meta's ids are about 16 digits.
const MAX_PLATFORM_ID_CHARS: usize = 64;

/// The templates that could be read, and a problem for each item that could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ParsedTemplates {
    pub templates: Vec<Template>,
    pub problems: Vec<TemplateProblem>,
}

/// Why one item of an import was skipped. An item may have several problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TemplateProblem {
    /// The item's position in the import, from 0.
    pub index: usize,
    /// The item's `name` as given, when it has one.
    pub name: Option<String>,
    /// `invalid_template_name`, `invalid_template_language`, `unknown_template_category`,
    /// `invalid_category_name`, `duplicate_template` or `invalid_template`.
    pub code: &'static str,
    pub detail: String,
}

/// Why a whole import was refused. `code()` is the stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateImportError {
    #[error("the template file is not valid JSON: {reason} at line {line}, column {column}")]
    InvalidJson { line: usize, column: usize, reason: String },
    #[error(
        "the template file must be the response of GET /<WABA_ID>/message_templates (an object with a `data` \
         array), an array of template objects, or one template object, but it is {found}"
    )]
    InvalidShape { found: &'static str },
    #[error("the template file holds {count} templates; at most {MAX_TEMPLATES_PER_IMPORT} can be imported at once")]
    TooMany { count: usize },
}

impl TemplateImportError {
    pub fn code(&self) -> &'static str {
        match self {
            TemplateImportError::InvalidJson { .. } => "invalid_json",
            TemplateImportError::InvalidShape { .. } => "invalid_template_file",
            TemplateImportError::TooMany { .. } => "too_many_templates",
        }
    }
}

/// Reads a template list: the Cloud API's `GET /<WABA_ID>/message_templates` response
/// (`{"data":[...],"paging":{...}}`), a bare array of template objects, or one template object.
///
/// Items with problems are skipped and reported; so is every repeat of a (name, language) pair
/// after its first appearance.
pub fn parse_templates(json: &[u8]) -> Result<ParsedTemplates, TemplateImportError> {
    let document: Value = serde_json::from_slice(json).map_err(|error| invalid_json(&error))?;
    let items = template_items(document)?;
    if items.len() > MAX_TEMPLATES_PER_IMPORT {
        return Err(TemplateImportError::TooMany { count: items.len() });
    }
    let mut parsed = ParsedTemplates::default();
    let mut first_seen: HashMap<(TemplateName, TemplateLanguage), usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        match parse_item(index, item) {
            Err(problems) => parsed.problems.extend(problems),
            Ok(template) => match first_seen.get(&(template.name.clone(), template.language.clone())) {
                Some(&first) => parsed.problems.push(duplicate(index, &template, first)),
                None => {
                    first_seen.insert((template.name.clone(), template.language.clone()), index);
                    parsed.templates.push(template);
                }
            },
        }
    }
    Ok(parsed)
}

fn invalid_json(error: &serde_json::Error) -> TemplateImportError {
    let (line, column) = (error.line(), error.column());
    let message = error.to_string();
    let location = format!(" at line {line} column {column}");
    let reason = message.strip_suffix(&location).unwrap_or(&message).to_owned();
    TemplateImportError::InvalidJson { line, column, reason }
}

fn template_items(document: Value) -> Result<Vec<Value>, TemplateImportError> {
    match document {
        Value::Array(items) => Ok(items),
        Value::Object(mut object) => match object.remove("data") {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(TemplateImportError::InvalidShape { found: "an object whose `data` is not an array" }),
            None => Ok(vec![Value::Object(object)]),
        },
        other => Err(TemplateImportError::InvalidShape { found: describe(&other) }),
    }
}

fn duplicate(index: usize, template: &Template, first: usize) -> TemplateProblem {
    TemplateProblem {
        index,
        name: Some(template.name.to_string()),
        code: "duplicate_template",
        detail: format!(
            "template `{}` in language `{}` appears more than once; the first one, item {first}, is kept",
            template.name, template.language
        ),
    }
}

/// What is wrong with one field of an item.
struct Issue {
    code: &'static str,
    detail: String,
}

impl Issue {
    fn new(code: &'static str, detail: impl Into<String>) -> Issue {
        Issue { code, detail: detail.into() }
    }
}

fn parse_item(index: usize, item: Value) -> Result<Template, Vec<TemplateProblem>> {
    let Value::Object(mut fields) = item else {
        let detail = format!("the item is {}, not a template object", describe(&item));
        return Err(vec![TemplateProblem { index, name: None, code: "invalid_template", detail }]);
    };
    let mut issues = Vec::new();
    let name = keep(parse_name(fields.get("name")), &mut issues);
    let language = keep(parse_language(fields.get("language")), &mut issues);
    let category = keep(parse_category(fields.get("category")), &mut issues);
    let status = keep(parse_status(fields.get("status")), &mut issues);
    let quality = keep(parse_quality(fields.get("quality_score")), &mut issues);
    let platform_id = keep(parse_platform_id(fields.get("id")), &mut issues);
    let components = keep(parse_components(fields.remove("components")), &mut issues);
    let linked_category = keep(parse_linked_category(fields.get("optin_category")), &mut issues);
    let (
        Some(name),
        Some(language),
        Some(category),
        Some(status),
        Some(quality),
        Some(platform_id),
        Some(components),
        Some(linked_category),
    ) = (name, language, category, status, quality, platform_id, components, linked_category)
    else {
        return Err(problems_of(index, &fields, issues));
    };
    Ok(Template { name, language, category, status, quality, platform_id, components, linked_category })
}

fn keep<T>(result: Result<T, Issue>, issues: &mut Vec<Issue>) -> Option<T> {
    result.map_err(|issue| issues.push(issue)).ok()
}

fn problems_of(index: usize, fields: &Map<String, Value>, issues: Vec<Issue>) -> Vec<TemplateProblem> {
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .map(|name| name.chars().take(super::MAX_TEMPLATE_NAME_CHARS).collect::<String>());
    issues
        .into_iter()
        .map(|issue| TemplateProblem { index, name: name.clone(), code: issue.code, detail: issue.detail })
        .collect()
}

/// The field's value, treating an explicit `null` as absent.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|value| !value.is_null())
}

fn required_text<'a>(value: Option<&'a Value>, field: &str, code: &'static str) -> Result<&'a str, Issue> {
    match present(value) {
        None => Err(Issue::new(code, format!("the template has no `{field}`"))),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(Issue::new(code, format!("`{field}` must be a string, not {}", describe(other)))),
    }
}

fn parse_name(value: Option<&Value>) -> Result<TemplateName, Issue> {
    let text = required_text(value, "name", "invalid_template_name")?;
    TemplateName::parse(text).map_err(|error| Issue::new(error.code(), error.to_string()))
}

/// `language` is a code (`"en_US"`); the send request's `{"code":"en_US"}` is accepted too.
fn parse_language(value: Option<&Value>) -> Result<TemplateLanguage, Issue> {
    let code = match present(value) {
        Some(Value::Object(object)) => object.get("code"),
        _ => value,
    };
    let text = required_text(code, "language", "invalid_template_language")?;
    TemplateLanguage::parse(text).map_err(|error| Issue::new(error.code(), error.to_string()))
}

fn parse_category(value: Option<&Value>) -> Result<TemplateCategory, Issue> {
    let text = required_text(value, "category", "unknown_template_category")?;
    TemplateCategory::parse(text).ok_or_else(|| {
        let detail =
            format!("{:?} is not a template category: use MARKETING, UTILITY or AUTHENTICATION", truncate(text));
        Issue::new("unknown_template_category", detail)
    })
}

fn parse_status(value: Option<&Value>) -> Result<TemplateStatus, Issue> {
    let text = required_text(value, "status", "invalid_template")?;
    let looks_like_status =
        (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !looks_like_status {
        let detail = format!("{:?} is not a template status such as APPROVED or PENDING", truncate(text));
        return Err(Issue::new("invalid_template", detail));
    }
    Ok(TemplateStatus::parse(text))
}

fn parse_quality(value: Option<&Value>) -> Result<Option<QualityScore>, Issue> {
    let Some(value) = present(value) else { return Ok(None) };
    QualityScore::deserialize(value).map(Some).map_err(|_| {
        let detail = format!(
            "`quality_score` must be a string such as \"GREEN\" or an object with a `score`, not {}",
            describe(value)
        );
        Issue::new("invalid_template", detail)
    })
}

/// Meta's template id: a number in some responses, a string of digits in others.
fn parse_platform_id(value: Option<&Value>) -> Result<Option<String>, Issue> {
    match present(value) {
        None => Ok(None),
        Some(Value::Number(number)) if number.is_u64() => Ok(Some(number.to_string())),
        Some(Value::String(text))
            if (1..=MAX_PLATFORM_ID_CHARS).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(text.clone()))
        }
        Some(_) => {
            Err(Issue::new("invalid_template", "`id` must be Meta's template id: a whole number or a short string"))
        }
    }
}

fn parse_components(value: Option<Value>) -> Result<Value, Issue> {
    match value {
        None | Some(Value::Null) => Ok(Value::Array(Vec::new())),
        Some(components @ Value::Array(_)) => Ok(components),
        Some(other) => {
            Err(Issue::new("invalid_template", format!("`components` must be an array, not {}", describe(&other))))
        }
    }
}

fn parse_linked_category(value: Option<&Value>) -> Result<Option<CategoryName>, Issue> {
    let Some(value) = present(value) else { return Ok(None) };
    let text = required_text(Some(value), "optin_category", "invalid_category_name")?;
    CategoryName::parse(text)
        .map(Some)
        .map_err(|error| Issue::new(error.code(), format!("`optin_category` {:?}: {error}", truncate(text))))
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
