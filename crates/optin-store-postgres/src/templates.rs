//! A business's message templates: imported as a whole, then moved by the platform's webhooks.

use std::collections::HashMap;

use optin_core::business::{CategoryName, TemplateCategory};
use optin_core::ids::BusinessId;
use optin_core::template::{QualityScore, TemplateLanguage, TemplateName, TemplateStatus};
use optin_store::StoreError;
use optin_store::channel::{StoredTemplate, TemplateChange, TemplateUpdate};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{get, nanos, timestamp};

const TEMPLATE_COLUMNS: &str =
    "name, language, category, status, quality, platform_id, linked_category, components, updated_at";

/// Every template in one statement (arrays, one element per template).
const UPSERT: &str = "\
INSERT INTO templates
    (business_id, name, language, category, status, quality, platform_id, linked_category, components, updated_at)
SELECT $1::uuid, *
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::bigint[])
ON CONFLICT (business_id, name, language) DO UPDATE SET
    category = excluded.category, status = excluded.status, quality = excluded.quality,
    platform_id = excluded.platform_id, linked_category = excluded.linked_category,
    components = excluded.components, updated_at = excluded.updated_at";

/// One change (the other two columns stay as they are) to a known template, unless the
/// template changed later than this.
const APPLY: &str = "\
UPDATE templates SET status = coalesce($4, status), quality = coalesce($5, quality),
    category = coalesce($6, category), updated_at = $7
WHERE business_id = $1 AND name = $2 AND language = $3 AND updated_at <= $7";

impl PostgresStore {
    /// One statement (so one transaction). A template given twice is written as given last.
    /// `NotFound` for an unknown business (the foreign key).
    pub(crate) async fn upsert_templates(
        &self,
        business: BusinessId,
        templates: &[StoredTemplate],
    ) -> Result<(), StoreError> {
        let mut last = HashMap::with_capacity(templates.len());
        for template in templates {
            last.insert((template.name.as_str(), template.language.as_str()), template);
        }
        if last.is_empty() {
            return Ok(());
        }
        let columns = TemplateColumns::new(last.into_values())?;
        let client = self.client().await?;
        client.execute(UPSERT, &columns.params(&business.as_uuid())).await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn load_template(
        &self,
        business: BusinessId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        let client = self.client().await?;
        let sql =
            format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE business_id = $1 AND name = $2 AND language = $3");
        let row = client.query_opt(&sql, &[&business.as_uuid(), &name, &language]).await.map_err(db)?;
        row.as_ref().map(template).transpose()
    }

    pub(crate) async fn load_templates(&self, business: BusinessId) -> Result<Vec<StoredTemplate>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE business_id = $1 ORDER BY name COLLATE \"C\", language \
             COLLATE \"C\""
        );
        client.query(&sql, &[&business.as_uuid()]).await.map_err(db)?.iter().map(template).collect()
    }

    /// In order, in one transaction; returns how many changes were applied.
    pub(crate) async fn apply_changes(
        &self,
        business: BusinessId,
        updates: &[TemplateUpdate],
    ) -> Result<usize, StoreError> {
        if updates.is_empty() {
            return Ok(0);
        }
        let business = business.as_uuid();
        let mut client = self.client().await?;
        let statement = client.prepare_cached(APPLY).await.map_err(db)?;
        let transaction = client.transaction().await.map_err(db)?;
        let mut applied = 0;
        for update in updates {
            let (mut status, mut quality, mut category) = (None, None, None);
            match &update.change {
                TemplateChange::Status(new) => status = Some(new.as_str()),
                TemplateChange::Quality(new) => quality = Some(new.as_str()),
                TemplateChange::Category(new) => category = Some(new.as_str()),
            }
            let params: [&(dyn ToSql + Sync); 7] = [
                &business,
                &update.name.as_str(),
                &update.language.as_str(),
                &status,
                &quality,
                &category,
                &nanos(update.at)?,
            ];
            applied += transaction.execute(&statement, &params).await.map_err(db)?;
        }
        transaction.commit().await.map_err(db)?;
        Ok(usize::try_from(applied).expect("the count of updates fits"))
    }
}

/// Templates as column arrays for `UPSERT`.
struct TemplateColumns<'a> {
    names: Vec<&'a str>,
    languages: Vec<&'a str>,
    categories: Vec<&'static str>,
    statuses: Vec<&'a str>,
    qualities: Vec<Option<&'static str>>,
    platform_ids: Vec<Option<&'a str>>,
    linked_categories: Vec<Option<&'a str>>,
    components: Vec<&'a str>,
    updated_at: Vec<i64>,
}

impl<'a> TemplateColumns<'a> {
    fn new(templates: impl ExactSizeIterator<Item = &'a StoredTemplate>) -> Result<Self, StoreError> {
        let count = templates.len();
        let mut columns = TemplateColumns {
            names: Vec::with_capacity(count),
            languages: Vec::with_capacity(count),
            categories: Vec::with_capacity(count),
            statuses: Vec::with_capacity(count),
            qualities: Vec::with_capacity(count),
            platform_ids: Vec::with_capacity(count),
            linked_categories: Vec::with_capacity(count),
            components: Vec::with_capacity(count),
            updated_at: Vec::with_capacity(count),
        };
        for template in templates {
            columns.names.push(template.name.as_str());
            columns.languages.push(template.language.as_str());
            columns.categories.push(template.category.as_str());
            columns.statuses.push(template.status.as_str());
            columns.qualities.push(template.quality.map(|quality| quality.as_str()));
            columns.platform_ids.push(template.platform_id.as_deref());
            columns.linked_categories.push(template.linked_category.as_ref().map(CategoryName::as_str));
            columns.components.push(&template.components);
            columns.updated_at.push(nanos(template.updated_at)?);
        }
        Ok(columns)
    }

    fn params<'p>(&'p self, business_id: &'p uuid::Uuid) -> [&'p (dyn ToSql + Sync); 10] {
        [
            business_id,
            &self.names,
            &self.languages,
            &self.categories,
            &self.statuses,
            &self.qualities,
            &self.platform_ids,
            &self.linked_categories,
            &self.components,
            &self.updated_at,
        ]
    }
}

/// Columns: `TEMPLATE_COLUMNS`.
fn template(row: &Row) -> Result<StoredTemplate, StoreError> {
    const T: &str = "templates";
    let linked_category = get::<Option<&str>>(row, T, "linked_category")?
        .map(|name| CategoryName::parse(name).map_err(|e| corrupt(format_args!("{T}.linked_category: {e}"))))
        .transpose()?;
    Ok(StoredTemplate {
        name: TemplateName::parse(get(row, T, "name")?).map_err(|e| corrupt(format_args!("{T}.name: {e}")))?,
        language: TemplateLanguage::parse(get(row, T, "language")?)
            .map_err(|e| corrupt(format_args!("{T}.language: {e}")))?,
        category: TemplateCategory::parse(get(row, T, "category")?)
            .ok_or_else(|| corrupt("templates.category: unknown"))?,
        status: TemplateStatus::parse(get(row, T, "status")?),
        quality: get::<Option<&str>>(row, T, "quality")?.map(QualityScore::parse),
        platform_id: get(row, T, "platform_id")?,
        linked_category,
        components: get(row, T, "components")?,
        updated_at: timestamp(get(row, T, "updated_at")?, T, "updated_at")?,
    })
}
