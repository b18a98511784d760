//! Logging setup. Logs go to stderr; `OPTIN_LOG_FORMAT=json` gives one JSON object per line.
//!
//! Nothing logs phone numbers in clear, keys, tokens or request bodies: spans are built with
//! `skip_all` and record redacted numbers and route templates only.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Default filter of `optin serve`. Database drivers stay at info: at debug they log query
/// parameters, which include phone numbers.
pub const SERVE_FILTER: &str = "info,tower_http=warn,tokio_postgres=info,rusqlite=info";
/// Default filter of the other commands: only problems, on stderr.
pub const CLI_FILTER: &str = "warn";

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
pub fn init(default_filter: &str) {
    let filter = match EnvFilter::try_from_default_env() {
        // Never below info, whatever RUST_LOG says: at debug it logs query parameters (phone numbers).
        Ok(filter) => filter.add_directive("tokio_postgres=info".parse().expect("a valid directive")),
        Err(_) => EnvFilter::new(default_filter),
    };
    let json = std::env::var("OPTIN_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json {
        builder.json().with_span_events(FmtSpan::NONE).with_current_span(true).try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (in tests) keeps the first subscriber.
    drop(result);
}
