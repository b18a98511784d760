//! A fresh PostgreSQL database per test, dropped when the test ends (`testing` feature).

use std::fmt;

use tokio_postgres::NoTls;
use uuid::Uuid;

/// Where test databases are created: an account allowed to `CREATE DATABASE`.
pub const ADMIN_URL_VARIABLE: &str = "OPTIN_TEST_POSTGRES_URL";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of its own for one test: `optin_test_<uuid>`, created empty (no migrations) and
/// dropped, with any connections still open to it, when this value is dropped.
///
/// The server comes from `OPTIN_TEST_POSTGRES_URL` (default
/// `postgres://postgres@127.0.0.1:5432/test`); that URL's database is only used to create and
/// drop the test databases.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates the database. Panics if the server cannot be reached: a test cannot go on.
    pub async fn create() -> TestDatabase {
        let admin_url = std::env::var(ADMIN_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let name = format!("optin_test_{}", Uuid::new_v4().simple());
        execute_as_admin(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await.unwrap_or_else(|e| {
            panic!("cannot create a test database (is PostgreSQL running? set {ADMIN_URL_VARIABLE}): {e}")
        });
        let url = with_database(&admin_url, &name);
        TestDatabase { admin_url, name, url }
    }

    /// The URL of the test database, for `PostgresStore::connect` or a raw connection.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    /// Drops the database from a thread of its own with its own runtime: `Drop` is synchronous
    /// and may run inside (or outside) the test's runtime.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(execute_as_admin(&admin_url, &sql)).map_err(std::io::Error::other)
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!("could not drop test database {}: the dropping thread panicked", self.name),
        }
    }
}

async fn execute_as_admin(admin_url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
    let connection = tokio::spawn(connection);
    let result = client.batch_execute(sql).await;
    drop(client);
    let _ = connection.await;
    result
}

/// The admin URL with another database: the path of a `postgres://` URL, or a `dbname=`
/// appended to a key-value string (a later key wins).
fn with_database(admin_url: &str, database: &str) -> String {
    let Some(scheme_end) = admin_url.find("://") else {
        return format!("{admin_url} dbname={database}");
    };
    let (query_start, query) = match admin_url.find('?') {
        Some(at) => (at, &admin_url[at..]),
        None => (admin_url.len(), ""),
    };
    let authority_start = scheme_end + 3;
    let path_start = admin_url[authority_start..query_start].find('/').map_or(query_start, |at| authority_start + at);
    format!("{}/{database}{query}", &admin_url[..path_start])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_in_every_form() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/db"),
            ("postgres://u:p@h/test?sslmode=disable", "postgres://u:p@h/db?sslmode=disable"),
            ("postgres://u@h:5432", "postgres://u@h:5432/db"),
            ("postgres://u@h?connect_timeout=5", "postgres://u@h/db?connect_timeout=5"),
            ("host=h user=u dbname=test", "host=h user=u dbname=test dbname=db"),
        ];
        for (admin, expected) in cases {
            assert_eq!(with_database(admin, "db"), expected);
        }
    }
}
