//! The template registry: templates by (name, language), imported whole and then changed by the
//! platform's webhooks, which arrive out of order (a change older than the row is ignored).

use optin_core::business::TemplateCategory;
use optin_core::ids::BusinessId;
use optin_core::template::{QualityScore, TemplateLanguage, TemplateName, TemplateStatus};
use optin_store::StoreError;
use optin_store::channel::{StoredTemplate, TemplateChange, TemplateUpdate};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, db_error};
use crate::rows::{category_name, time, timestamp};
use crate::writer::Batch;

const TEMPLATE_COLUMNS: &str =
    "name, language, category, status, quality, platform_id, linked_category, components, updated_at";

/// Creates or replaces each template; `NotFound` for an unknown business (the foreign key).
pub(crate) fn put_templates(
    batch: &mut Batch<'_>,
    business: BusinessId,
    templates: &[StoredTemplate],
) -> Result<(), StoreError> {
    let business = business.to_string();
    let mut stmt = batch
        .conn
        .prepare_cached(&format!(
            "INSERT INTO templates (business_id, {TEMPLATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (business_id, name, language) DO UPDATE SET
                 category = excluded.category, status = excluded.status, quality = excluded.quality,
                 platform_id = excluded.platform_id, linked_category = excluded.linked_category,
                 components = excluded.components, updated_at = excluded.updated_at"
        ))
        .map_err(db_error)?;
    for template in templates {
        stmt.execute(params![
            business,
            template.name.as_str(),
            template.language.as_str(),
            template.category.as_str(),
            template.status.as_str(),
            template.quality.map(|quality| quality.as_str()),
            template.platform_id,
            template.linked_category.as_ref().map(|category| category.as_str()),
            template.components,
            time(template.updated_at)?
        ])
        .map_err(db_error)?;
    }
    Ok(())
}

/// Applies each change, in order, to a known template whose `updated_at` is not later than the
/// change (which becomes its `updated_at`); returns how many were applied.
pub(crate) fn apply_template_updates(
    batch: &mut Batch<'_>,
    business: BusinessId,
    updates: &[TemplateUpdate],
) -> Result<usize, StoreError> {
    let business = business.to_string();
    let mut applied = 0;
    for update in updates {
        let (column, value) = match &update.change {
            TemplateChange::Status(status) => ("status", status.as_str()),
            TemplateChange::Quality(quality) => ("quality", quality.as_str()),
            TemplateChange::Category(category) => ("category", category.as_str()),
        };
        let at = time(update.at)?;
        // Three statements, one per column, each prepared once and cached.
        applied += batch
            .conn
            .prepare_cached(&format!(
                "UPDATE templates SET {column} = ?4, updated_at = ?5
                 WHERE business_id = ?1 AND name = ?2 AND language = ?3 AND updated_at <= ?5"
            ))
            .and_then(|mut stmt| {
                stmt.execute(params![business, update.name.as_str(), update.language.as_str(), value, at])
            })
            .map_err(db_error)?;
    }
    Ok(applied)
}

pub(crate) fn template(
    conn: &Connection,
    business: BusinessId,
    name: &str,
    language: &str,
) -> Result<Option<StoredTemplate>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE business_id = ?1 AND name = ?2 AND language = ?3"
        ))
        .and_then(|mut stmt| {
            stmt.query_row(params![business.to_string(), name, language], TemplateRow::read).optional()
        })
        .map_err(db_error)?;
    row.map(StoredTemplate::try_from).transpose()
}

/// The business's templates by name, then language.
pub(crate) fn list_templates(conn: &Connection, business: BusinessId) -> Result<Vec<StoredTemplate>, StoreError> {
    let rows: Vec<TemplateRow> = conn
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE business_id = ?1 ORDER BY name, language"
        ))
        .and_then(|mut stmt| stmt.query_map([business.to_string()], TemplateRow::read)?.collect())
        .map_err(db_error)?;
    rows.into_iter().map(StoredTemplate::try_from).collect()
}

struct TemplateRow {
    name: String,
    language: String,
    category: String,
    status: String,
    quality: Option<String>,
    platform_id: Option<String>,
    linked_category: Option<String>,
    components: String,
    updated_at: i64,
}

impl TemplateRow {
    /// Reads the columns of [`TEMPLATE_COLUMNS`], in order.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<TemplateRow> {
        Ok(TemplateRow {
            name: row.get(0)?,
            language: row.get(1)?,
            category: row.get(2)?,
            status: row.get(3)?,
            quality: row.get(4)?,
            platform_id: row.get(5)?,
            linked_category: row.get(6)?,
            components: row.get(7)?,
            updated_at: row.get(8)?,
        })
    }
}

impl TryFrom<TemplateRow> for StoredTemplate {
    type Error = StoreError;
    fn try_from(row: TemplateRow) -> Result<StoredTemplate, StoreError> {
        Ok(StoredTemplate {
            name: TemplateName::parse(&row.name).map_err(|_| corrupt("templates.name is invalid"))?,
            language: TemplateLanguage::parse(&row.language).map_err(|_| corrupt("templates.language is invalid"))?,
            category: TemplateCategory::parse(&row.category).ok_or_else(|| corrupt("templates.category is unknown"))?,
            status: TemplateStatus::parse(&row.status),
            quality: row.quality.as_deref().map(QualityScore::parse),
            platform_id: row.platform_id,
            linked_category: row.linked_category.as_deref().map(category_name).transpose()?,
            components: row.components,
            updated_at: timestamp(row.updated_at, "templates.updated_at")?,
        })
    }
}
