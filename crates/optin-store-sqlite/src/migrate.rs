//! Embedded, numbered migrations, applied in order and tracked in `schema_migrations`.
//!
//! Each applied migration's SHA-256 is recorded; a store refuses to start when a recorded
//! checksum no longer matches the embedded file (an applied migration was edited) or when the
//! database holds a migration this build does not know (it was migrated by a newer optin).

use jiff::Timestamp;
use optin_core::ledger::Hash;
use optin_store::StoreError;
use rusqlite::{Connection, params};

use crate::error::{corrupt, db_error};

/// A schema change: its number, its name (the file name without `.sql`) and its SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only; never edit one that was released.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "0001_initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "0002_whatsapp", sql: include_str!("../migrations/0002_whatsapp.sql") },
    Migration { version: 3, name: "0003_forwarded", sql: include_str!("../migrations/0003_forwarded.sql") },
    Migration { version: 4, name: "0004_messaging_limit", sql: include_str!("../migrations/0004_messaging_limit.sql") },
    Migration { version: 5, name: "0005_consent_basis", sql: include_str!("../migrations/0005_consent_basis.sql") },
    Migration { version: 6, name: "0006_documents", sql: include_str!("../migrations/0006_documents.sql") },
    Migration {
        version: 7,
        name: "0007_checks_without_lists",
        sql: include_str!("../migrations/0007_checks_without_lists.sql"),
    },
];

const CREATE_TRACKING_TABLE: &str = "
    -- Which migrations were applied, with the SHA-256 of their SQL when they were.
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        applied_at INTEGER NOT NULL
    ) STRICT;";

impl Migration {
    fn sha256(&self) -> String {
        Hash::of(self.sql.as_bytes()).to_hex()
    }
}

/// Applies the migrations `conn`'s database lacks, in one `BEGIN IMMEDIATE` transaction (so that
/// two processes starting at once do not both apply them), and returns their names.
pub(crate) fn run(conn: &Connection, migrations: &[Migration]) -> Result<Vec<String>, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db_error)?;
    let result = apply_missing(conn, migrations);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(error) = conn.execute_batch(end) {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(result.err().unwrap_or_else(|| db_error(error)));
    }
    result
}

fn apply_missing(conn: &Connection, migrations: &[Migration]) -> Result<Vec<String>, StoreError> {
    conn.execute_batch(CREATE_TRACKING_TABLE).map_err(db_error)?;
    let applied: Vec<(i64, String, String)> = conn
        .prepare("SELECT version, name, sha256 FROM schema_migrations ORDER BY version")
        .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect())
        .map_err(db_error)?;
    for (version, name, sha256) in &applied {
        let Some(known) = migrations.iter().find(|m| m.version == *version) else {
            return Err(corrupt(format_args!(
                "the database has migration {name} (version {version}), which this build of optin does not \
                 know: it was migrated by a newer optin"
            )));
        };
        if known.sha256() != *sha256 {
            return Err(corrupt(format_args!(
                "migration {name} was changed after it was applied to this database (recorded SHA-256 {sha256}, \
                 embedded {}); restore the original migration file",
                known.sha256()
            )));
        }
    }
    let mut newly_applied = Vec::new();
    for migration in migrations.iter().filter(|m| !applied.iter().any(|(version, ..)| *version == m.version)) {
        conn.execute_batch(migration.sql).map_err(db_error)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![migration.version, migration.name, migration.sha256(), crate::rows::time(Timestamp::now())?],
        )
        .map_err(db_error)?;
        tracing::info!(migration = migration.name, "applied migration");
        newly_applied.push(migration.name.to_owned());
    }
    Ok(newly_applied)
}
