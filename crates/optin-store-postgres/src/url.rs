//! The connection URL, parsed once, that never shows its password.

use std::fmt;
use std::str::FromStr;

use optin_store::StoreError;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

/// A PostgreSQL connection string (`postgres://user:password@host:port/db?...` or
/// `host=... user=... password=...`), parsed.
///
/// Its `Debug` and `Display` show user, hosts, ports and database but never the password, so it
/// can be logged.
#[derive(Clone)]
pub struct PostgresUrl {
    config: Config,
}

/// The connection string does not parse. The message never repeats the string.
#[derive(Debug)]
pub struct InvalidUrl(tokio_postgres::Error);

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PostgreSQL connection string: {}", self.0)
    }
}

impl std::error::Error for InvalidUrl {}

impl PostgresUrl {
    /// Parses a connection string. A bad one is `StoreError::Unavailable` (the database cannot be
    /// reached with it) whose cause says what is wrong without repeating the string.
    pub fn parse(text: &str) -> Result<PostgresUrl, StoreError> {
        let config = Config::from_str(text).map_err(|e| StoreError::Unavailable(Box::new(InvalidUrl(e))))?;
        Ok(PostgresUrl { config })
    }

    /// The driver's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database name, if the string names one.
    pub fn database(&self) -> Option<&str> {
        self.config.get_dbname()
    }
}

impl fmt::Display for PostgresUrl {
    /// `postgres://user:***@host:port/database`, rebuilt from the parsed parts, so no form of the
    /// input (URL, key-value, query parameter) can leak the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgres://")?;
        if let Some(user) = self.config.get_user() {
            f.write_str(user)?;
            if self.config.get_password().is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        let ports = self.config.get_ports();
        for (i, host) in self.config.get_hosts().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match host {
                Host::Tcp(name) => f.write_str(name)?,
                #[cfg(unix)]
                Host::Unix(path) => write!(f, "{}", path.display())?,
            }
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        if let Some(db) = self.config.get_dbname() {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::PostgresUrl;

    #[test]
    fn the_password_is_never_shown() {
        let forms = [
            "postgres://optin:hunter2secret@db.example:6543/ledger",
            "postgresql://optin:hunter2secret@db.example/ledger?sslmode=disable",
            "postgres://optin@db.example/ledger?password=hunter2secret",
            "host=db.example user=optin password=hunter2secret dbname=ledger",
            "host=db.example user=optin password='hunter2secret' dbname=ledger port=6543",
        ];
        for form in forms {
            let url = PostgresUrl::parse(form).unwrap();
            for shown in [format!("{url}"), format!("{url:?}"), format!("{url:#?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(shown.contains("optin:***@db.example"), "{shown}");
                assert!(shown.ends_with("/ledger") || shown.ends_with("/ledger)"), "{shown}");
            }
        }
    }

    #[test]
    fn a_bad_string_is_not_repeated_in_the_error() {
        let error = PostgresUrl::parse("postgres://optin:hunter2secret@db.example:notaport/ledger").unwrap_err();
        let shown = format!("{error} {error:?} {:?}", std::error::Error::source(&error));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn without_a_password_nothing_is_masked() {
        let url = PostgresUrl::parse("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(url.to_string(), "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(url.database(), Some("test"));
    }
}
