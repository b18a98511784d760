//! Choosing and opening the storage backend from a database URL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use optin_store::Store;
use optin_store_postgres::PostgresStore;
use optin_store_sqlite::SqliteStore;

/// Where the data lives: an embedded SQLite file or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `--database-url`; without one, the SQLite file `optin.db` in the data directory.
    pub fn resolve(url: Option<&str>, data_dir: &Path) -> anyhow::Result<DatabaseUrl> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(DatabaseUrl::Sqlite(data_dir.join("optin.db")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("invalid_database_url: sqlite:// needs a file path, e.g. sqlite://./optin-data/optin.db");
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        bail!("invalid_database_url: the database URL must start with postgres://, postgresql:// or sqlite://")
    }

    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            DatabaseUrl::Sqlite(path) => {
                create_parent_dir(path)?;
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await?
                    .with_context(|| format!("while opening the SQLite database {}", self.redacted()))?;
                Arc::new(store)
            }
            DatabaseUrl::Postgres(url) => Arc::new(
                PostgresStore::connect(url)
                    .await
                    .with_context(|| format!("while connecting to {}", self.redacted()))?,
            ),
        })
    }

    /// Applies pending migrations; returns the names of those applied.
    pub async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            DatabaseUrl::Sqlite(path) => {
                create_parent_dir(path)?;
                let path = path.clone();
                tokio::task::spawn_blocking(move || optin_store_sqlite::migrate(&path)).await??
            }
            DatabaseUrl::Postgres(url) => optin_store_postgres::migrate(url).await?,
        })
    }

    /// The URL with any password replaced, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn create_parent_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("while creating {}", parent.display()))?;
    }
    Ok(())
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "postgres://…".to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{credentials}@{host}"),
        },
        None => authority.to_owned(),
    };
    let query_free = tail.split_once('?').map_or(tail, |(path, _)| path);
    format!("{scheme}://{authority}/{query_free}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_debug_output() {
        let url =
            DatabaseUrl::resolve(Some("postgres://optin:s3cret@db:5432/optin?password=other"), Path::new(".")).unwrap();
        let shown = format!("{url:?}");
        assert_eq!(shown, "postgres://optin:***@db:5432/optin");
        assert!(!shown.contains("s3cret") && !shown.contains("other"));
    }

    #[test]
    fn the_default_is_a_file_in_the_data_directory() {
        let url = DatabaseUrl::resolve(None, Path::new("/var/lib/optin")).unwrap();
        assert_eq!(url, DatabaseUrl::Sqlite(PathBuf::from("/var/lib/optin/optin.db")));
        let explicit = DatabaseUrl::resolve(Some("sqlite:///tmp/x.db"), Path::new(".")).unwrap();
        assert_eq!(explicit, DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db")));
    }

    #[test]
    fn other_schemes_are_refused_with_the_accepted_ones_named() {
        let error = DatabaseUrl::resolve(Some("mysql://x"), Path::new(".")).unwrap_err().to_string();
        assert!(error.contains("postgres://") && error.contains("sqlite://"), "{error}");
        assert!(DatabaseUrl::resolve(Some("sqlite://"), Path::new(".")).is_err());
    }
}
