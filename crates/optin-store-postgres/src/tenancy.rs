//! Businesses, their categories and brand names, and their API keys.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, check_category_list};
use optin_core::ids::{ApiKeyId, BusinessId};
use optin_store::{ApiKeyRecord, NewApiKey, StoreError};

use crate::PostgresStore;
use crate::error::db;
use crate::rows::{self, BUSINESS_SELECT, nanos};

impl PostgresStore {
    /// Business, categories, brand names, chain head and first key: one transaction.
    pub(crate) async fn insert_business(&self, business: &Business, first_key: &NewApiKey) -> Result<(), StoreError> {
        check_category_list(&business.categories)?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        let id = business.id.as_uuid();
        transaction
            .execute(
                "INSERT INTO businesses (id, name, created_at) VALUES ($1, $2, $3)",
                &[&id, &business.name.as_str(), &nanos(business.created_at)?],
            )
            .await
            .map_err(db)?;
        insert_categories(&transaction, business.id, 0, &business.categories).await?;
        insert_brand_names(&transaction, business.id, &business.brand_names).await?;
        transaction
            .execute("INSERT INTO chain_heads (business_id, last_index, last_hash) VALUES ($1, 0, NULL)", &[&id])
            .await
            .map_err(db)?;
        insert_api_key(&transaction, first_key).await?;
        transaction.commit().await.map_err(db)
    }

    pub(crate) async fn load_business(&self, id: BusinessId) -> Result<Option<Business>, StoreError> {
        let client = self.client().await?;
        business_in(&client, id).await
    }

    pub(crate) async fn load_businesses(&self) -> Result<Vec<Business>, StoreError> {
        let client = self.client().await?;
        let sql = format!("{BUSINESS_SELECT} ORDER BY b.created_at, b.seq");
        client.query(&sql, &[]).await.map_err(db)?.iter().map(rows::business).collect()
    }

    /// Appends categories at the next slots, checked against the current ones while the business
    /// row is locked (two concurrent calls cannot both take a slot or a name).
    pub(crate) async fn append_categories(&self, id: BusinessId, new: &[Category]) -> Result<Business, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        lock_business(&transaction, id).await?;
        let business = business_in(&transaction, id).await?.ok_or(StoreError::NotFound)?;
        business.check_new_categories(new)?;
        if new.is_empty() {
            return Ok(business);
        }
        insert_categories(&transaction, id, business.categories.len(), new).await?;
        let updated = business_in(&transaction, id).await?.ok_or(StoreError::NotFound)?;
        transaction.commit().await.map_err(db)?;
        Ok(updated)
    }

    pub(crate) async fn replace_brand_names(
        &self,
        id: BusinessId,
        names: &[BusinessName],
    ) -> Result<Business, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        lock_business(&transaction, id).await?;
        transaction.execute("DELETE FROM brand_names WHERE business_id = $1", &[&id.as_uuid()]).await.map_err(db)?;
        insert_brand_names(&transaction, id, names).await?;
        let updated = business_in(&transaction, id).await?.ok_or(StoreError::NotFound)?;
        transaction.commit().await.map_err(db)?;
        Ok(updated)
    }

    pub(crate) async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        insert_api_key(&client, key).await
    }

    pub(crate) async fn mark_api_key_revoked(
        &self,
        business: BusinessId,
        key: ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND business_id = $2 AND revoked_at IS NULL";
        let updated = client.execute(sql, &[&key.as_uuid(), &business.as_uuid(), &nanos(at)?]).await.map_err(db)?;
        if updated == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub(crate) async fn load_api_keys(&self, business: BusinessId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let sql = "SELECT id, business_id, label, created_at, revoked_at FROM api_keys
                   WHERE business_id = $1 ORDER BY created_at, id";
        client.query(sql, &[&business.as_uuid()]).await.map_err(db)?.iter().map(rows::api_key).collect()
    }

    /// Reads the database every time: a key revoked through another server stops working at once.
    pub(crate) async fn business_of_key(&self, secret_hash: &str) -> Result<Option<BusinessId>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT business_id FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL")
            .await
            .map_err(db)?;
        let row = client.query_opt(&statement, &[&secret_hash]).await.map_err(db)?;
        Ok(row.map(|row| rows::get(&row, "api_keys", "business_id")).transpose()?.map(BusinessId::from_uuid))
    }
}

/// Locks the business row against concurrent changes to its categories, brand names and
/// notices. `FOR NO KEY UPDATE` does not block the key-share locks that inserting events and
/// states (foreign keys to the business) take, so consent keeps flowing meanwhile.
pub(crate) async fn lock_business(client: &impl GenericClient, id: BusinessId) -> Result<(), StoreError> {
    let sql = "SELECT 1 FROM businesses WHERE id = $1 FOR NO KEY UPDATE";
    match client.query_opt(sql, &[&id.as_uuid()]).await.map_err(db)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound),
    }
}

async fn business_in(client: &impl GenericClient, id: BusinessId) -> Result<Option<Business>, StoreError> {
    let sql = format!("{BUSINESS_SELECT} WHERE b.id = $1");
    client.query_opt(&sql, &[&id.as_uuid()]).await.map_err(db)?.as_ref().map(rows::business).transpose()
}

async fn insert_categories(
    client: &impl GenericClient,
    business: BusinessId,
    first_slot: usize,
    categories: &[Category],
) -> Result<(), StoreError> {
    if categories.is_empty() {
        return Ok(());
    }
    let slots: Vec<i16> = (first_slot..first_slot + categories.len())
        .map(|slot| i16::try_from(slot).map_err(|_| optin_core::business::CategoryError::TooMany))
        .collect::<Result<_, _>>()?;
    let names: Vec<&str> = categories.iter().map(|c| c.name.as_str()).collect();
    let template_categories: Vec<&str> = categories.iter().map(|c| c.template_category.as_str()).collect();
    let sql = "INSERT INTO categories (business_id, slot, name, template_category)
               SELECT $1::uuid, * FROM unnest($2::smallint[], $3::text[], $4::text[])";
    client.execute(sql, &[&business.as_uuid(), &slots, &names, &template_categories]).await.map_err(db)?;
    Ok(())
}

async fn insert_brand_names(
    client: &impl GenericClient,
    business: BusinessId,
    names: &[BusinessName],
) -> Result<(), StoreError> {
    if names.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = names.iter().map(BusinessName::as_str).collect();
    let sql = "INSERT INTO brand_names (business_id, position, name)
               SELECT $1::uuid, (n.position - 1)::smallint, n.name
               FROM unnest($2::text[]) WITH ORDINALITY AS n (name, position)";
    client.execute(sql, &[&business.as_uuid(), &names]).await.map_err(db)?;
    Ok(())
}

/// Inserts a key; `NotFound` when its business does not exist (the foreign key says so).
async fn insert_api_key(client: &impl GenericClient, key: &NewApiKey) -> Result<(), StoreError> {
    let sql = "INSERT INTO api_keys (id, business_id, secret_hash, label, created_at) VALUES ($1, $2, $3, $4, $5)";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&key.id.as_uuid(), &key.business_id.as_uuid(), &key.secret_hash, &key.label, &nanos(key.created_at)?];
    client.execute(sql, &params).await.map_err(db)?;
    Ok(())
}
