//! The WhatsApp commands of the CLI, run as a separate process: senders, webhook settings, the
//! policy, templates, the inbox (list and replay) and signals.

use std::sync::Arc;

use jiff::Timestamp;
use optin_store::Store;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::helpers::Backend;
use crate::whatsapp::{PHONE_NUMBER_ID, WA_ID, recent, text_message};

/// The same database the CLI uses, opened in this process (as the server would).
async fn store_of(cli: &Cli) -> Arc<dyn Store> {
    match &cli.database_url {
        Some(url) => Arc::new(optin_store_postgres::PostgresStore::connect(url).await.unwrap()),
        None => {
            let path = cli.directory.path().join("optin.db");
            let store = tokio::task::spawn_blocking(move || optin_store_sqlite::SqliteStore::open(&path));
            Arc::new(store.await.unwrap().unwrap())
        }
    }
}

async fn whatsapp_setup_templates_and_the_inbox_from_the_command_line(backend: Backend) {
    let cli = Cli::new(backend).await;
    let (id, _) = cli.create_business_with_notice();
    let id = id.as_str();

    let sender = cli.json_with(
        &[
            "sender",
            "add",
            "--business",
            id,
            "--phone-number-id",
            PHONE_NUMBER_ID,
            "--display-phone-number",
            "15550783881",
            "--waba-id",
            "102290129340398",
            "--provider",
            "360dialog",
        ],
        &[("OPTIN_SENDER_CREDENTIAL", "d360-secret-key")],
    );
    assert_eq!(sender["base_url"], "https://waba-v2.360dialog.io");
    let listed = cli.json(&["sender", "list", "--business", id]);
    assert_eq!(listed["senders"][0]["phone_number_id"], PHONE_NUMBER_ID);
    assert!(!listed.to_string().contains("d360-secret-key"), "credentials are never printed");
    let duplicate = cli.run_with(
        &[
            "sender",
            "add",
            "--business",
            id,
            "--phone-number-id",
            PHONE_NUMBER_ID,
            "--display-phone-number",
            "1",
            "--waba-id",
            "1",
            "--provider",
            "cloud_api",
            "--credential",
            "x",
        ],
        &[],
    );
    assert_eq!(duplicate.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("error[sender_exists]"));

    let settings = cli.json(&[
        "webhook-settings",
        "set",
        "--business",
        id,
        "--verify-token",
        "verify-token-42",
        "--shared-secret-header",
        "X-Optin-Secret",
        "--shared-secret-value",
        "shared-secret-0123456789",
    ]);
    assert_eq!(settings["verify_token_set"], true);
    assert_eq!(settings["shared_secret_header"], "x-optin-secret");
    assert_eq!(cli.json(&["webhook-settings", "show", "--business", id])["app_secret_set"], false);

    let policy_file = cli.directory.path().join("policy.json");
    std::fs::write(
        &policy_file,
        json!({"bare_keyword_scope": "marketing", "template_category_defaults": {"marketing": "offers"}}).to_string(),
    )
    .unwrap();
    cli.json(&["policy", "set", "--business", id, policy_file.to_str().unwrap()]);
    assert_eq!(cli.json(&["policy", "show", "--business", id])["bare_keyword_scope"], "marketing");
    std::fs::write(&policy_file, r#"{"category_aliases": {"vouchers": ["cupones"]}}"#).unwrap();
    let refused = cli.run_with(&["policy", "set", "--business", id, policy_file.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error[unknown_category]"));

    let templates_file = cli.directory.path().join("templates.json");
    let templates = json!({"data": [
        {"name": "flash_deal", "language": "en_US", "category": "MARKETING", "status": "APPROVED",
         "components": [{"type": "BODY", "text": "Flash deal today only."}]}]});
    std::fs::write(&templates_file, templates.to_string()).unwrap();
    let plain = cli.run_with(&["template", "import", "--business", id, templates_file.to_str().unwrap()], &[]);
    let printed = String::from_utf8_lossy(&plain.stdout);
    assert!(
        printed.contains("imported 1 templates") && printed.contains("warning[marketing_template_without_opt_out]"),
        "{printed}"
    );
    let listed = cli.json(&["template", "list", "--business", id]);
    assert_eq!(listed["templates"][0]["linked_category"], "offers");

    // Deliveries received by a server (stored in the inbox), then replayed from the CLI.
    let store = store_of(&cli).await;
    let business_id = id.parse().unwrap();
    let garbage = store.insert_delivery(business_id, Timestamp::now(), b"{\"entry\": [").await.unwrap();
    let mut stop = text_message("wamid.cli1", "STOP", recent());
    stop["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(PHONE_NUMBER_ID);
    let stop_id =
        store.insert_delivery(business_id, Timestamp::now(), &serde_json::to_vec(&stop).unwrap()).await.unwrap();
    let listed = cli.json(&["inbox", "list", "--business", id, "--state", "pending"]);
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 2);
    let replayed = cli.json(&["inbox", "replay", "--business", id, &garbage.to_string()]);
    assert_eq!(replayed["state"], "failed");
    assert!(replayed["note"].as_str().unwrap().contains("invalid_json"), "{replayed}");
    let processed = cli.json(&["inbox", "show", "--business", id, &stop_id.to_string()]);
    assert_eq!(processed["state"], "processed", "replay processes everything waiting: {processed}");
    let check = cli
        .run_with(&["check", "--business", id, "--phone", &format!("+{WA_ID}"), "--category", "offers", "--json"], &[]);
    assert_eq!(serde_json::from_slice::<Value>(&check.stdout).unwrap()["reasons"][0]["code"], "opted_out");
    let failed = cli.json(&["inbox", "list", "--business", id, "--state", "failed"]);
    assert_eq!(failed["deliveries"][0]["id"], garbage);
    let missing = cli.run_with(&["inbox", "replay", "--business", id, "424242"], &[]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("error[delivery_not_found]"));

    let signals = cli.json(&["signals", "list", "--business", id]);
    assert!(signals["signals"].as_array().unwrap().is_empty(), "{signals}");
}

#[tokio::test]
async fn whatsapp_commands_work_on_sqlite() {
    whatsapp_setup_templates_and_the_inbox_from_the_command_line(Backend::Sqlite).await;
}

#[tokio::test]
async fn whatsapp_commands_work_on_postgres() {
    whatsapp_setup_templates_and_the_inbox_from_the_command_line(Backend::Postgres).await;
}
