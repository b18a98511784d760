//! Embedded, numbered migrations, applied once per database and never edited.
//!
//! Every migration is recorded in `schema_migrations` with the SHA-256 of its text. Servers that
//! start together take a PostgreSQL advisory lock first, so exactly one applies what is pending
//! while the others wait and then find nothing to do. A migration whose recorded checksum differs
//! from the embedded text is refused: an applied migration must not change, add a new one.

use std::collections::BTreeMap;

use optin_store::StoreError;
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

use crate::error::{corrupt, db};
use crate::url::PostgresUrl;

/// One migration: `migrations/{name}.sql`, applied in `version` order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration of this build, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "0001_initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "0002_whatsapp", sql: include_str!("../migrations/0002_whatsapp.sql") },
    Migration { version: 3, name: "0003_forwarded", sql: include_str!("../migrations/0003_forwarded.sql") },
    Migration { version: 4, name: "0004_messaging_limit", sql: include_str!("../migrations/0004_messaging_limit.sql") },
    Migration { version: 5, name: "0005_consent_basis", sql: include_str!("../migrations/0005_consent_basis.sql") },
    Migration { version: 6, name: "0006_documents", sql: include_str!("../migrations/0006_documents.sql") },
];

/// The advisory lock key that serializes migrations between processes ("optin_mg").
const LOCK_KEY: i64 = 0x6f70_7469_6e5f_6d67;

const CREATE_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_migrations IS 'Applied migrations of optin-store-postgres, with the SHA-256 of their text.'";

impl Migration {
    /// SHA-256 of the text, hex; line endings are normalized so a checkout with CRLF agrees.
    pub(crate) fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.replace("\r\n", "\n").as_bytes()))
    }
}

/// Applies the pending migrations on a connection of its own (closing it also releases the
/// advisory lock whatever happens) and returns the names of those it applied.
pub(crate) async fn run(url: &PostgresUrl) -> Result<Vec<String>, StoreError> {
    let (mut client, connection) = url.config().connect(NoTls).await.map_err(db)?;
    let connection = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "the migration connection ended with an error");
        }
    });
    let result = apply_locked(&mut client).await;
    drop(client);
    let _ = connection.await;
    result
}

async fn apply_locked(client: &mut Client) -> Result<Vec<String>, StoreError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(db)?;
    let result = apply_pending(client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await.map_err(db)?;
    result
}

async fn apply_pending(client: &mut Client) -> Result<Vec<String>, StoreError> {
    client.batch_execute(CREATE_TABLE).await.map_err(db)?;
    let applied: BTreeMap<i32, (String, String)> = client
        .query("SELECT version, name, sha256 FROM schema_migrations", &[])
        .await
        .map_err(db)?
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    if let Some((version, (name, _))) = applied.iter().find(|(v, _)| !MIGRATIONS.iter().any(|m| m.version == **v)) {
        return Err(corrupt(format_args!(
            "the database has migration {version} ({name}), which this build of optin does not know: \
             it was migrated by a newer optin"
        )));
    }
    let mut newly_applied = Vec::new();
    for migration in MIGRATIONS {
        let checksum = migration.checksum();
        match applied.get(&migration.version) {
            Some((_, recorded)) if *recorded == checksum => {}
            Some((name, recorded)) => {
                return Err(corrupt(format_args!(
                    "migration {} ({name}) was applied with checksum {recorded}, but this build's {}.sql has \
                     checksum {checksum}: an applied migration must never be edited (add a new one instead)",
                    migration.version, migration.name
                )));
            }
            None => {
                apply(client, migration, &checksum).await?;
                tracing::info!(migration = migration.name, "applied a database migration");
                newly_applied.push(migration.name.to_owned());
            }
        }
    }
    Ok(newly_applied)
}

async fn apply(client: &mut Client, migration: &Migration, checksum: &str) -> Result<(), StoreError> {
    let transaction = client.transaction().await.map_err(db)?;
    transaction.batch_execute(migration.sql).await.map_err(db)?;
    transaction
        .execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &checksum],
        )
        .await
        .map_err(db)?;
    transaction.commit().await.map_err(db)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn migrations_are_numbered_in_order_and_named_after_their_files() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i32::try_from(i + 1).unwrap());
            assert!(migration.name.starts_with(&format!("{:04}_", migration.version)), "{}", migration.name);
        }
    }
}
