//! `spawn_app`: the real router over a fresh real store, served on a port of its own.

use std::sync::{Arc, Once};

use jiff::Timestamp;
use optin::upstream::UpstreamForwarder;
use optin_core::secret::hash_secret;
use optin_http::{AppState, HttpSettings};
use optin_store::Store;
use optin_store_postgres::{PostgresStore, TestDatabase};
use optin_store_sqlite::SqliteStore;
use optin_whatsapp::outbound::{OutboundClient, RetryPolicy};
use optin_whatsapp::{Processor, ProcessorConfig};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

pub const OPERATOR_TOKEN: &str = "optin_op_test-operator-token";
/// Body limit of test servers, smaller than the default so the 413 test sends little.
pub const BODY_LIMIT: usize = 16 * 1024;
pub const PHONE: &str = "+14155552671";
/// Jurisdiction rules without the US federal window (states with their own keep theirs).
pub const ANY_HOUR_RULES: &str = "[country.US]\nquiet_hours = false\n";
pub const NOTICE_TEXT: &str =
    "Yes, I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out.";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps the test's database alive as long as the app.
#[allow(dead_code)] // held for its `Drop`
enum Database {
    Sqlite(TempDir),
    Postgres(TestDatabase),
    /// A second server on the first one's database, which the first app keeps alive.
    Shared {
        sqlite_file: Option<std::path::PathBuf>,
        postgres_url: Option<String>,
    },
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The server's inbox processor (already running; tests may also drain it directly).
    pub processor: Processor,
    pub store: Arc<dyn Store>,
    database: Database,
}

/// A business created through the API: its id and first API key.
#[derive(Debug, Clone)]
pub struct TestBusiness {
    pub id: String,
    pub key: String,
}

/// Starts the API on `127.0.0.1:0` over a fresh, empty store of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_timeout(backend, HttpSettings::default().request_timeout).await
}

/// Like [`spawn_app`], with the given request timeout.
pub async fn spawn_app_with_timeout(backend: Backend, request_timeout: std::time::Duration) -> TestApp {
    init_test_logging();
    let (store, database): (Arc<dyn Store>, Database) = match backend {
        Backend::Sqlite => {
            let directory = TempDir::new().expect("a temporary directory");
            let path = directory.path().join("optin.db");
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await.unwrap().unwrap();
            (Arc::new(store), Database::Sqlite(directory))
        }
        Backend::Postgres => {
            let database = TestDatabase::create().await;
            let store = PostgresStore::connect(database.url()).await.expect("connect to the test database");
            (Arc::new(store), Database::Postgres(database))
        }
    };
    store.set_operator_token_hash(&hash_secret(OPERATOR_TOKEN), Timestamp::now()).await.unwrap();
    serve_store(store, database, request_timeout).await
}

/// Serves the router over `store` through the same function `optin serve` uses.
async fn serve_store(store: Arc<dyn Store>, database: Database, request_timeout: std::time::Duration) -> TestApp {
    let settings = HttpSettings { body_limit_bytes: BODY_LIMIT, request_timeout, ..HttpSettings::default() };
    let processor = test_processor(Arc::clone(&store));
    tokio::spawn({
        let processor = processor.clone();
        async move { processor.run(std::future::pending()).await }
    });
    let waker: optin_http::InboxWaker = Arc::new({
        let processor = processor.clone();
        move || processor.wake()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(Arc::clone(&store), settings)
        .with_inbox_waker(waker)
        .with_forwarder(test_forwarder())
        .with_public_url(&address);
    let router = optin_http::router(state);
    tokio::spawn(async move {
        optin::server::serve(router, listener, std::future::pending()).await.expect("the test server runs")
    });
    TestApp { address, client: reqwest::Client::new(), processor, store, database }
}

/// An inbox processor that retries sends quickly, as tests need.
pub fn test_processor(store: Arc<dyn Store>) -> Processor {
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(50),
        request_timeout: std::time::Duration::from_secs(2),
    };
    let config = ProcessorConfig { poll_interval: std::time::Duration::from_millis(100), ..ProcessorConfig::default() };
    Processor::new(store, OutboundClient::new(retry).unwrap(), config)
}

/// The proxy's upstream client, with short timeouts and pauses (as `optin serve` makes it for a
/// 2.5-second request timeout).
pub fn test_forwarder() -> Arc<UpstreamForwarder> {
    let forwarder = UpstreamForwarder::for_request_timeout(std::time::Duration::from_millis(2500));
    Arc::new(forwarder.expect("the proxy's upstream client builds"))
}

/// `TEST_LOG=1` shows the tracing output (filtered by `RUST_LOG`, default `debug`).
fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug"));
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

impl TestApp {
    /// Another server with its own store on the same database: a second `optin serve` process
    /// sharing the PostgreSQL database, or sharing the SQLite file (as the CLI does).
    pub async fn second_server(&self) -> TestApp {
        let (sqlite_file, postgres_url) = match &self.database {
            Database::Sqlite(directory) => (Some(directory.path().join("optin.db")), None),
            Database::Postgres(database) => (None, Some(database.url().to_owned())),
            Database::Shared { sqlite_file, postgres_url } => (sqlite_file.clone(), postgres_url.clone()),
        };
        let store: Arc<dyn Store> = match (&sqlite_file, &postgres_url) {
            (Some(path), _) => {
                let path = path.clone();
                Arc::new(tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await.unwrap().unwrap())
            }
            (None, Some(url)) => Arc::new(PostgresStore::connect(url).await.unwrap()),
            (None, None) => unreachable!("a shared database has a location"),
        };
        serve_store(store, Database::Shared { sqlite_file, postgres_url }, HttpSettings::default().request_timeout)
            .await
    }

    /// The PostgreSQL database's name, for tests that break it on purpose.
    pub fn postgres_database(&self) -> Option<&TestDatabase> {
        match &self.database {
            Database::Postgres(database) => Some(database),
            Database::Sqlite(_) | Database::Shared { .. } => None,
        }
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.address));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub fn operator(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, Some(OPERATOR_TOKEN))
    }

    pub fn as_business(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.request(method, path, Some(key))
    }

    pub async fn post_business(&self, body: Value) -> Response {
        self.operator(Method::POST, "/v1/businesses").json(&body).send().await.unwrap()
    }

    /// Creates `name` with the categories `order_updates` (utility) and `offers` (marketing).
    ///
    /// Its jurisdiction policy lifts the US federal sending window ([`ANY_HOUR_RULES`]): tests
    /// decide marketing messages to US numbers "now", and must not depend on the hour they run
    /// at. Tests of the time rules use [`TestApp::create_business_with_shipped_rules`].
    pub async fn create_business(&self, name: &str) -> TestBusiness {
        let business = self.create_business_with_shipped_rules(name).await;
        let rules = json!({"rules": ANY_HOUR_RULES});
        let response = self.as_business(Method::PUT, "/v1/jurisdiction-policy", &business.key).json(&rules).send();
        expect_json(response.await.unwrap(), StatusCode::OK).await;
        business
    }

    /// Creates `name` with the categories `order_updates` and `offers`, under the shipped rules.
    pub async fn create_business_with_shipped_rules(&self, name: &str) -> TestBusiness {
        let response = self.post_business(json!({"name": name, "categories": [
            {"name": "order_updates", "template_category": "utility"},
            {"name": "offers", "template_category": "marketing"},
        ]}));
        let body = expect_json(response.await, StatusCode::CREATED).await;
        TestBusiness { id: text(&body["id"]), key: text(&body["api_key"]["secret"]) }
    }

    pub async fn post_notice(&self, key: &str, text: &str, language: &str) -> Response {
        let body = json!({"text": text, "language": language});
        self.as_business(Method::POST, "/v1/notices", key).json(&body).send().await.unwrap()
    }

    /// Registers the standard compliant notice and returns its id.
    pub async fn register_notice(&self, key: &str) -> String {
        text(&expect_json(self.post_notice(key, NOTICE_TEXT, "en").await, StatusCode::CREATED).await["id"])
    }

    pub async fn post_opt_in(&self, key: &str, body: &Value) -> Response {
        self.as_business(Method::POST, "/v1/opt-ins", key).json(body).send().await.unwrap()
    }

    pub async fn post_opt_out(&self, key: &str, body: &Value) -> Response {
        self.as_business(Method::POST, "/v1/opt-outs", key).json(body).send().await.unwrap()
    }

    pub async fn post_decision(&self, key: &str, body: &Value) -> Response {
        self.as_business(Method::POST, "/v1/decisions", key).json(body).send().await.unwrap()
    }

    /// The decision for `phone` (E.164) and `category`, as `(allowed, reason codes)`.
    pub async fn decide(&self, key: &str, phone: &str, category: &str) -> (bool, Vec<String>) {
        let response = self.post_decision(key, &json!({"phone": phone, "category": category})).await;
        let body = expect_json(response, StatusCode::OK).await;
        let codes = body["reasons"].as_array().unwrap().iter().map(|r| text(&r["code"])).collect();
        (body["allowed"].as_bool().unwrap(), codes)
    }

    pub async fn get_contact(&self, key: &str, phone: &str, country: Option<&str>) -> Response {
        let query = country.map(|c| format!("?country={c}")).unwrap_or_default();
        let path = format!("/v1/contacts/{}{query}", encode_path_segment(phone));
        self.as_business(Method::GET, &path, key).send().await.unwrap()
    }

    pub async fn get_contact_events(&self, key: &str, phone: &str) -> Response {
        let path = format!("/v1/contacts/{}/events", encode_path_segment(phone));
        self.as_business(Method::GET, &path, key).send().await.unwrap()
    }

    pub async fn verify_ledger(&self, key: &str) -> Value {
        let response = self.as_business(Method::GET, "/v1/ledger/verify", key).send().await.unwrap();
        expect_json(response, StatusCode::OK).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).send().await.unwrap()
    }
}

/// A web-form opt-in to `categories` with complete evidence.
pub fn web_form_opt_in(phone: &str, categories: &[&str], notice_id: &str) -> Value {
    json!({
        "phone": phone,
        "country": "US",
        "categories": categories,
        "method": "web_form",
        "notice_id": notice_id,
        "evidence": {"page_url": "https://acme.example/join", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
    })
}

/// Checks the status and the JSON media type, and returns the body.
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type = content_type(response.headers());
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert!(content_type.starts_with("application/json"), "content type {content_type}; body: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Checks that the response is a problem document with `status` and `code`, and returns it.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let content_type = content_type(response.headers());
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], code, "problem: {problem}");
    assert_eq!(problem["status"], status.as_u16());
    assert_eq!(problem["type"], format!("https://optin.dev/problems/{code}"));
    assert!(problem["title"].is_string() && problem["detail"].is_string(), "problem: {problem}");
    problem
}

/// Every code of a problem: the headline and those in `errors`.
pub fn problem_codes(problem: &Value) -> Vec<String> {
    let mut codes = vec![text(&problem["code"])];
    if let Some(errors) = problem["errors"].as_array() {
        codes.extend(errors.iter().map(|e| text(&e["code"])));
    }
    codes
}

pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_owned()
}

fn content_type(headers: &HeaderMap) -> String {
    headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// Percent-encodes everything but unreserved characters, as a client library would.
pub fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Runs each named `async fn(TestApp)` once per backend, as `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// Runs each named `async fn(Backend)` once per backend (tests that start their own processes).
macro_rules! on_both_backends_cli {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends_cli;
