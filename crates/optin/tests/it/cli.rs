//! The CLI, run as a separate process on the same database files and PostgreSQL databases the
//! server uses: results, `--json`, stable error codes on stderr, exit statuses.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::Backend;

const NOTICE: &str = "I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out.";

/// A data directory (and, for PostgreSQL, a database) the CLI runs against.
pub(crate) struct Cli {
    pub(crate) directory: TempDir,
    pub(crate) database_url: Option<String>,
    _postgres: Option<optin_store_postgres::TestDatabase>,
}

impl Cli {
    pub(crate) async fn new(backend: Backend) -> Cli {
        let directory = TempDir::new().unwrap();
        match backend {
            Backend::Sqlite => Cli { directory, database_url: None, _postgres: None },
            Backend::Postgres => {
                let database = optin_store_postgres::TestDatabase::create().await;
                Cli { directory, database_url: Some(database.url().to_owned()), _postgres: Some(database) }
            }
        }
    }

    pub(crate) fn run(&self, arguments: &[&str]) -> Output {
        self.run_with(arguments, &[])
    }

    /// Runs with extra environment variables (none of the caller's `OPTIN_*` ones leak in).
    pub(crate) fn run_with(&self, arguments: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_optin"));
        command.args(arguments).arg("--data-dir").arg(self.directory.path());
        for (name, _) in std::env::vars_os().filter(|(name, _)| name.to_string_lossy().starts_with("OPTIN_")) {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        if let Some(url) = &self.database_url {
            command.arg("--database-url").arg(url);
        }
        command.output().expect("the optin binary runs")
    }

    /// Runs with `--json`, expects success, returns the printed JSON.
    pub(crate) fn json(&self, arguments: &[&str]) -> Value {
        self.json_with(arguments, &[])
    }

    /// Creates "Acme Shoes" (`order_updates` utility, `offers` marketing) with a registered
    /// notice; returns the business id and the notice id.
    pub(crate) fn create_business_with_notice(&self) -> (String, String) {
        let business = self.json(&[
            "business",
            "create",
            "--name",
            "Acme Shoes",
            "--category",
            "order_updates:utility",
            "--category",
            "offers:marketing",
        ]);
        let id = business["id"].as_str().unwrap().to_owned();
        self.lift_us_sending_window(&id);
        let notice = self.json(&["notice", "add", "--business", &id, "--language", "en", "--text", NOTICE]);
        (id, notice["id"].as_str().unwrap().to_owned())
    }

    /// Tests decide marketing messages to US numbers "now": without the federal window they do
    /// not depend on the hour they run at (see `helpers::ANY_HOUR_RULES`).
    pub(crate) fn lift_us_sending_window(&self, business: &str) {
        let rules = self.directory.path().join("any-hour.toml");
        std::fs::write(&rules, crate::helpers::ANY_HOUR_RULES).unwrap();
        self.json(&["jurisdiction", "set", "--business", business, rules.to_str().unwrap()]);
    }

    pub(crate) fn json_with(&self, arguments: &[&str], env: &[(&str, &str)]) -> Value {
        let output = self.run_with(&[arguments, &["--json"]].concat(), env);
        assert!(output.status.success(), "{arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("stdout is JSON")
    }

    fn data_dir(&self) -> &Path {
        self.directory.path()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn the_whole_flow_works_from_the_command_line(backend: Backend) {
    let cli = Cli::new(backend).await;
    let business = cli.json(&[
        "business",
        "create",
        "--name",
        "Acme Shoes",
        "--category",
        "order_updates:utility",
        "--category",
        "offers:marketing",
    ]);
    let id = business["id"].as_str().unwrap().to_owned();
    assert!(business["api_key"]["secret"].as_str().unwrap().starts_with("optin_sk_"));
    cli.lift_us_sending_window(&id);
    let notice = cli.json(&["notice", "add", "--business", &id, "--language", "en", "--text", NOTICE]);
    let notice_id = notice["id"].as_str().unwrap().to_owned();
    assert_eq!(notice["version"], 1);

    let opt_in = cli.json(&[
        "opt-in",
        "--business",
        &id,
        "--phone",
        "(415) 555-2671",
        "--country",
        "US",
        "--category",
        "offers",
        "--method",
        "paper",
        "--notice",
        &notice_id,
        "--evidence-field",
        &format!("document_sha256={}", "ab".repeat(32)),
        "--evidence-field",
        "collected_by=store 12",
    ]);
    assert_eq!(opt_in["chain_index"], 1);

    let allowed = cli.run(&["check", "--business", &id, "--phone", "+14155552671", "--category", "offers"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    let refused =
        cli.run(&["check", "--business", &id, "--phone", "+14155552671", "--category", "order_updates", "--json"]);
    assert_eq!(refused.status.code(), Some(1));
    let decision: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(decision["reasons"][0]["code"], "no_opt_in");

    cli.json(&["opt-out", "--business", &id, "--phone", "+1 415 555 2671", "--recorded-by", "agent 7"]);
    let after = cli.run(&["check", "--business", &id, "--phone", "+14155552671", "--category", "offers", "--json"]);
    assert_eq!(after.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<Value>(&after.stdout).unwrap()["reasons"][0]["code"], "opted_out");

    let contact = cli.json(&["contact", "show", "--business", &id, "--phone", "+14155552671", "--events"]);
    assert_eq!(contact["contact"]["categories"][1]["status"], "opted_out");
    assert_eq!(contact["history"]["events"].as_array().unwrap().len(), 2);
    assert_eq!(contact["history"]["events"][0]["event"]["evidence"]["collected_by"], "store 12");

    let verified = cli.json(&["ledger", "verify"]);
    assert_eq!(verified["intact"], true);
    assert_eq!(verified["businesses"][0]["verified_events"], 2);

    let key = cli.json(&["key", "create", "--business", &id, "--label", "ci"]);
    let key_id = key["id"].as_str().unwrap();
    cli.json(&["key", "revoke", "--business", &id, "--key", key_id]);
    let keys = cli.json(&["key", "list", "--business", &id]);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    assert!(keys.to_string().find("optin_sk_").is_none(), "key listings never show secrets");
}

async fn errors_have_stable_codes_on_stderr_and_a_failure_status(backend: Backend) {
    let cli = Cli::new(backend).await;
    let business = cli.json(&["business", "create", "--name", "Acme Shoes", "--category", "offers:marketing"]);
    let id = business["id"].as_str().unwrap().to_owned();

    let refused_notice = cli.run(&["notice", "add", "--business", &id, "--language", "en", "--text", "Hello there"]);
    assert_eq!(refused_notice.status.code(), Some(2));
    let text = stderr(&refused_notice);
    assert!(
        text.contains("error[notice_missing_business_name]") && text.contains("error[notice_missing_opt_in_statement]"),
        "{text}"
    );

    let bad_opt_in = cli.run(&[
        "opt-in",
        "--business",
        &id,
        "--phone",
        "12",
        "--country",
        "US",
        "--category",
        "nope",
        "--method",
        "pigeon",
        "--notice",
        "x",
        "--json",
    ]);
    assert_eq!(bad_opt_in.status.code(), Some(2));
    let problem: Value = serde_json::from_slice(&bad_opt_in.stderr).expect("--json errors are JSON on stderr");
    let codes: Vec<&str> = problem["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["invalid_phone", "unknown_category", "unknown_method", "unknown_notice"]);
    assert!(bad_opt_in.stdout.is_empty());

    let unknown_business = cli.run(&[
        "check",
        "--business",
        "00000000-0000-0000-0000-000000000000",
        "--phone",
        "+14155552671",
        "--category",
        "offers",
    ]);
    assert_eq!(unknown_business.status.code(), Some(2));
    assert!(stderr(&unknown_business).contains("error[business_not_found]"));

    let not_uuid = cli.run(&["contact", "show", "--business", "acme", "--phone", "+14155552671"]);
    assert!(stderr(&not_uuid).contains("error[invalid_business_id]"));

    let bad_category = cli.run(&["business", "create", "--name", "X", "--category", "Offers:marketing"]);
    assert!(stderr(&bad_category).contains("error[invalid_category_name]"), "{}", stderr(&bad_category));
}

#[tokio::test]
async fn the_whole_flow_works_from_the_command_line_on_sqlite() {
    the_whole_flow_works_from_the_command_line(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_whole_flow_works_from_the_command_line_on_postgres() {
    the_whole_flow_works_from_the_command_line(Backend::Postgres).await;
}

#[tokio::test]
async fn errors_have_stable_codes_on_stderr_and_a_failure_status_on_sqlite() {
    errors_have_stable_codes_on_stderr_and_a_failure_status(Backend::Sqlite).await;
}

#[tokio::test]
async fn errors_have_stable_codes_on_stderr_and_a_failure_status_on_postgres() {
    errors_have_stable_codes_on_stderr_and_a_failure_status(Backend::Postgres).await;
}

#[test]
fn a_database_url_with_an_unknown_scheme_is_refused() {
    let directory = TempDir::new().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(["business", "list", "--database-url", "mysql://localhost/x", "--data-dir"])
        .arg(directory.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("postgres://"), "{}", stderr(&output));
}

#[test]
fn migrate_creates_the_database_once() {
    let directory = TempDir::new().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_optin"))
            .args(["migrate", "--json", "--data-dir"])
            .arg(directory.path())
            .env_remove("OPTIN_DATABASE_URL")
            .output()
            .unwrap()
    };
    let first: Value = serde_json::from_slice(&run().stdout).unwrap();
    assert!(!first["applied"].as_array().unwrap().is_empty());
    assert!(directory.path().join("optin.db").exists());
    let second: Value = serde_json::from_slice(&run().stdout).unwrap();
    assert_eq!(second["applied"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_cli_and_a_data_dir_share_one_sqlite_file() {
    let cli = Cli::new(Backend::Sqlite).await;
    cli.json(&["business", "create", "--name", "Acme Shoes", "--category", "offers:marketing"]);
    assert!(cli.data_dir().join("optin.db").exists());
    let listed = cli.json(&["business", "list"]);
    assert_eq!(listed["businesses"][0]["name"], "Acme Shoes");
}
