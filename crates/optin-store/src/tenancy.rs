//! Businesses, their categories, brand names and API keys.

use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName, TemplateCategory, check_category_list};
use optin_core::ids::{ApiKeyId, BusinessId};
use optin_core::secret::{API_KEY_PREFIX, format_secret, hash_secret};
use uuid::Uuid;

use crate::records::NewApiKey;
use crate::rejection::{Problems, Rejection, UseCaseError, problem};
use crate::store::Store;

/// A category as a client describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    pub name: String,
    pub template_category: String,
}

/// A freshly issued API key: the secret exists only here and in the one response that shows it.
pub struct IssuedKey {
    pub record: NewApiKey,
    pub secret: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey").field("record", &self.record).finish_non_exhaustive()
    }
}

/// Generates a new random key for a business.
pub fn issue_key(business_id: BusinessId, label: &str, now: Timestamp) -> IssuedKey {
    let secret = format_secret(API_KEY_PREFIX, &random_bytes());
    let record = NewApiKey {
        id: ApiKeyId::from_uuid(Uuid::new_v4()),
        business_id,
        secret_hash: hash_secret(&secret),
        label: label.chars().take(100).collect(),
        created_at: optin_core::truncate_to_microseconds(now),
    };
    IssuedKey { record, secret }
}

/// 32 bytes from the operating system's generator.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
    bytes
}

/// Parses client category descriptions, reporting every bad one.
pub fn parse_categories(inputs: &[CategoryInput]) -> Result<Vec<Category>, Rejection> {
    let mut problems = Problems::default();
    let mut categories = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = problems.take(CategoryName::parse(&input.name).map_err(|e| problem(e.code(), e)));
        let template_category = TemplateCategory::parse(&input.template_category);
        if template_category.is_none() {
            problems.push(
                "invalid_template_category",
                "template_category must be one of marketing, utility, authentication",
            );
        }
        if let (Some(name), Some(template_category)) = (name, template_category) {
            categories.push(Category { name, template_category });
        }
    }
    problems.into_result()?;
    check_category_list(&categories).map_err(|e| Rejection::invalid(e.code(), e.to_string()))?;
    Ok(categories)
}

/// Creates a business with its categories and a first API key; returns the key's secret.
pub async fn create_business(
    store: &dyn Store,
    name: &str,
    categories: &[CategoryInput],
    now: Timestamp,
) -> Result<(Business, IssuedKey), UseCaseError> {
    let name = BusinessName::parse(name).map_err(|e| Rejection::invalid(e.code(), format!("name: {e}")))?;
    let categories = parse_categories(categories)?;
    let business = Business {
        id: BusinessId::from_uuid(Uuid::new_v4()),
        name,
        brand_names: Vec::new(),
        categories,
        created_at: optin_core::truncate_to_microseconds(now),
    };
    let key = issue_key(business.id, "default", now);
    store.create_business(&business, &key.record).await?;
    Ok((business, key))
}

/// Parses and stores a business's extra brand names.
pub async fn set_brand_names(
    store: &dyn Store,
    business: BusinessId,
    names: &[String],
) -> Result<Business, UseCaseError> {
    if names.len() > 20 {
        return Err(Rejection::invalid("too_many_brand_names", "at most 20 brand names").into());
    }
    let mut problems = Problems::default();
    let parsed: Vec<BusinessName> = names
        .iter()
        .filter_map(|n| {
            problems.take(BusinessName::parse(n).map_err(|e| problem(e.code(), format!("brand name: {e}"))))
        })
        .collect();
    problems.into_result()?;
    Ok(store.set_brand_names(business, &parsed).await?)
}

/// Loads a business or refuses with `business_not_found`.
pub async fn require_business(store: &dyn Store, id: BusinessId) -> Result<Business, UseCaseError> {
    store
        .business(id)
        .await?
        .ok_or_else(|| Rejection::not_found("business_not_found", "no business has this id").into())
}
