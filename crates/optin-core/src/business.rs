//! Businesses (tenants) and their message categories.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::BusinessId;

/// Most categories one business may define: consent for a contact is kept as one bit per
/// category in a `u64` on the hot path.
pub const MAX_CATEGORIES: usize = 64;

/// The business's registered name: the one a notice must state. 1 to 200 characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {0} characters")]
    TooLong(usize),
    #[error("the name contains control characters")]
    ControlCharacters,
    #[error("a category name must be 1 to 64 lower-case ASCII letters, digits or underscores, starting with a letter")]
    InvalidCategoryName,
}

impl NameError {
    pub fn code(&self) -> &'static str {
        match self {
            NameError::InvalidCategoryName => "invalid_category_name",
            _ => "invalid_name",
        }
    }
}

impl BusinessName {
    pub fn parse(text: &str) -> Result<BusinessName, NameError> {
        parse_display_text(text, 200).map(BusinessName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BusinessName {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        BusinessName::parse(&text)
    }
}

impl From<BusinessName> for String {
    fn from(name: BusinessName) -> String {
        name.0
    }
}

impl fmt::Debug for BusinessName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BusinessName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_display_text(text: &str, max_chars: usize) -> Result<String, NameError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    if trimmed.chars().count() > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(NameError::ControlCharacters);
    }
    Ok(trimmed.to_owned())
}

/// A category's machine name, such as `order_updates`: `[a-z][a-z0-9_]{0,63}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CategoryName(String);

impl CategoryName {
    pub fn parse(text: &str) -> Result<CategoryName, NameError> {
        let valid = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        valid.then(|| CategoryName(text.to_owned())).ok_or(NameError::InvalidCategoryName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CategoryName {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        CategoryName::parse(&text)
    }
}

impl From<CategoryName> for String {
    fn from(name: CategoryName) -> String {
        name.0
    }
}

impl fmt::Debug for CategoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for CategoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// WhatsApp's template categories; every message category maps to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    pub fn as_str(&self) -> &'static str {
        match self {
            TemplateCategory::Marketing => "marketing",
            TemplateCategory::Utility => "utility",
            TemplateCategory::Authentication => "authentication",
        }
    }

    pub fn parse(text: &str) -> Option<TemplateCategory> {
        match text.to_ascii_lowercase().as_str() {
            "marketing" => Some(TemplateCategory::Marketing),
            "utility" => Some(TemplateCategory::Utility),
            "authentication" => Some(TemplateCategory::Authentication),
            _ => None,
        }
    }
}

/// A category's position in its business (0..64), stable for the business's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategorySlot(u8);

impl CategorySlot {
    pub fn new(index: usize) -> Option<CategorySlot> {
        u8::try_from(index).ok().filter(|_| index < MAX_CATEGORIES).map(CategorySlot)
    }

    pub fn index(&self) -> usize {
        usize::from(self.0)
    }

    pub fn bit(&self) -> u64 {
        1 << self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub name: CategoryName,
    pub template_category: TemplateCategory,
}

/// A tenant with its categories (in slot order) and the extra brand names a notice may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    pub id: BusinessId,
    pub name: BusinessName,
    pub brand_names: Vec<BusinessName>,
    pub categories: Vec<Category>,
    pub created_at: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    #[error("the business has no category `{0}`")]
    Unknown(String),
    #[error("the business already has a category `{0}`")]
    Duplicate(String),
    #[error("a business may have at most {MAX_CATEGORIES} categories")]
    TooMany,
}

impl CategoryError {
    pub fn code(&self) -> &'static str {
        match self {
            CategoryError::Unknown(_) => "unknown_category",
            CategoryError::Duplicate(_) => "duplicate_category",
            CategoryError::TooMany => "too_many_categories",
        }
    }
}

impl Business {
    pub fn category_slot(&self, name: &str) -> Option<CategorySlot> {
        let index = self.categories.iter().position(|c| c.name.as_str() == name)?;
        CategorySlot::new(index)
    }

    /// Resolves category names given by a client, refusing unknown ones and de-duplicating.
    pub fn resolve_categories(&self, names: &[String]) -> Result<Vec<CategoryName>, CategoryError> {
        let mut resolved: Vec<CategoryName> = Vec::with_capacity(names.len());
        for name in names {
            let slot = self.category_slot(name).ok_or_else(|| CategoryError::Unknown(truncate(name)))?;
            let category = &self.categories[slot.index()].name;
            if !resolved.contains(category) {
                resolved.push(category.clone());
            }
        }
        Ok(resolved)
    }

    pub fn all_category_names(&self) -> Vec<CategoryName> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }

    /// Checks that a new set of categories can be added to this business.
    pub fn check_new_categories(&self, new: &[Category]) -> Result<(), CategoryError> {
        check_category_list(self.categories.iter().chain(new))
    }

    /// Every name a notice may use to name this business.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.brand_names.iter().map(BusinessName::as_str))
    }
}

/// Checks a complete category list: no duplicates, at most [`MAX_CATEGORIES`].
pub fn check_category_list<'a>(categories: impl IntoIterator<Item = &'a Category>) -> Result<(), CategoryError> {
    let mut seen: Vec<&CategoryName> = Vec::new();
    for category in categories {
        if seen.contains(&&category.name) {
            return Err(CategoryError::Duplicate(category.name.to_string()));
        }
        seen.push(&category.name);
    }
    if seen.len() > MAX_CATEGORIES {
        return Err(CategoryError::TooMany);
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}
