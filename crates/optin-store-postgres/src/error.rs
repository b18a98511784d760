//! Driver errors mapped to `StoreError`, once, here.

use optin_store::StoreError;
use tokio_postgres::error::SqlState;

/// Maps a driver error: a unique violation names the rule it broke, a foreign-key violation
/// means the referenced row (the business, a category) does not exist, and everything else is
/// the database being unavailable (the cause is kept for the log, never shown to clients).
pub(crate) fn db(error: tokio_postgres::Error) -> StoreError {
    let Some(db_error) = error.as_db_error() else {
        return StoreError::Unavailable(Box::new(error));
    };
    match db_error.code() {
        code if *code == SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict { constraint: rule_of(db_error.constraint().unwrap_or_default()) }
        }
        code if *code == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound,
        _ => StoreError::Unavailable(Box::new(DatabaseError::from(db_error))),
    }
}

/// Getting a pooled connection failed: the database is down, refused us, or every connection
/// stayed busy past the wait timeout.
pub(crate) fn pool(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => db(error),
        other => StoreError::Unavailable(Box::new(other)),
    }
}

/// An error the server reported, without its `DETAIL`, `HINT` and `WHERE` fields: PostgreSQL
/// quotes row values there ("Failing row contains (...)"), which may be phone numbers or hashes,
/// and the cause of `Unavailable` is logged.
#[derive(Debug)]
pub struct DatabaseError {
    code: String,
    message: String,
    constraint: Option<String>,
}

impl From<&tokio_postgres::error::DbError> for DatabaseError {
    fn from(error: &tokio_postgres::error::DbError) -> DatabaseError {
        DatabaseError {
            code: error.code().code().to_owned(),
            message: error.message().to_owned(),
            constraint: error.constraint().map(str::to_owned),
        }
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error {}: {}", self.code, self.message)?;
        if let Some(constraint) = &self.constraint {
            write!(f, " (constraint {constraint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DatabaseError {}

/// A stored value that does not parse back; the message names where it is, never the value.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// The stable rule names callers see in `Conflict`, by PostgreSQL constraint name (see the
/// migrations, which name every unique constraint).
fn rule_of(constraint: &str) -> &'static str {
    match constraint {
        "businesses_pkey" => "business_id",
        "categories_pkey" => "category_slot",
        "categories_name_key" => "category_name",
        "brand_names_pkey" => "brand_name",
        "api_keys_pkey" => "api_key_id",
        "api_keys_secret_hash_key" => "api_key_secret",
        "notices_pkey" => "notice_id",
        "notices_version_key" => "notice_version",
        "consent_events_event_id_key" => "event_id",
        "consent_events_chain_index_key" => "chain_index",
        "chain_heads_pkey" => "chain_head",
        "saved_responses_pkey" => "idempotency_key",
        "senders_pkey" => "phone_number_id",
        _ => "unique",
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use optin_store::StoreError;
    use tokio_postgres::NoTls;

    use super::db;
    use crate::{PostgresStore, TestDatabase};

    #[tokio::test]
    async fn the_values_postgres_quotes_in_an_error_are_not_kept() {
        let database = TestDatabase::create().await;
        PostgresStore::migrate(database.url()).await.unwrap();
        let (client, connection) = tokio_postgres::connect(database.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        let sql = "INSERT INTO chain_heads (business_id, last_index, last_hash)
                   VALUES (gen_random_uuid(), 14155550123, NULL)";
        let error = client.batch_execute(sql).await.unwrap_err();
        assert!(format!("{error:?}").contains("14155550123"), "PostgreSQL quotes the failing row: {error:?}");

        let mapped = db(error);
        assert!(matches!(mapped, StoreError::Unavailable(_)), "{mapped:?}");
        let shown = format!("{mapped} {mapped:?} {:?}", std::error::Error::source(&mapped).map(ToString::to_string));
        assert!(!shown.contains("14155550123"), "{shown}");
        assert!(shown.contains("23514"), "the SQLSTATE is kept: {shown}");
    }
}
