//! `optin jurisdiction` and `optin check --at`, as a separate process.

use serde_json::Value;

use crate::cli::Cli;
use crate::helpers::Backend;

#[tokio::test]
async fn jurisdiction_rules_from_the_command_line() {
    let cli = Cli::new(Backend::Sqlite).await;
    let (id, notice_id) = cli.create_business_with_notice();
    for phone in ["+13055551234", "+4915112345678"] {
        cli.json(&[
            "opt-in",
            "--business",
            &id,
            "--phone",
            phone,
            "--category",
            "offers",
            "--method",
            "api",
            "--notice",
            &notice_id,
            "--evidence-field",
            "source=crm",
        ]);
    }
    let check = |phone: &str, at: &str| {
        let output =
            cli.run(&["check", "--business", &id, "--phone", phone, "--category", "offers", "--at", at, "--json"]);
        (output.status.code(), serde_json::from_slice::<Value>(&output.stdout).unwrap_or(Value::Null))
    };
    // Germany expects double opt-in: the Berlin opt-in waits for `optin confirm`.
    let (status, pending) = check("+4915112345678", "2026-06-10T12:00:00Z");
    assert_eq!((status, pending["reasons"][0]["code"].as_str()), (Some(1), Some("opt_in_pending_confirmation")));
    let confirmed = cli.json(&[
        "confirm",
        "--business",
        &id,
        "--phone",
        "+4915112345678",
        "--method",
        "web_form",
        "--evidence",
        r#"{"ip": "203.0.113.9"}"#,
    ]);
    assert_eq!(confirmed["categories"][0]["outcome"], "applied", "{confirmed}");
    let again = cli.run(&["confirm", "--business", &id, "--phone", "+4915112345678", "--method", "sms"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("error[nothing_to_confirm]"));
    // 20:30 in Miami: Florida's window ends at 20:00.
    let (status, decision) = check("+13055551234", "2026-06-11T00:30:00Z");
    assert_eq!(status, Some(1));
    assert_eq!(decision["reasons"][0]["code"], "quiet_hours");
    assert_eq!(decision["reasons"][0]["retry_after"], "2026-06-11T12:00:00Z");
    assert_eq!(check("+4915112345678", "2026-06-11T01:00:00Z").0, Some(0), "no window in Germany by default");

    let defaults = cli.run(&["jurisdiction", "defaults"]);
    assert!(String::from_utf8_lossy(&defaults.stdout).contains("[region.US-FL]"));
    let rules = cli.directory.path().join("rules.toml");
    std::fs::write(&rules, "[country.DE]\nquiet_hours = { start = \"09:00\", end = \"20:00\" }\n").unwrap();
    cli.json(&["jurisdiction", "set", "--business", &id, rules.to_str().unwrap()]);
    assert_eq!(check("+4915112345678", "2026-06-11T01:00:00Z").0, Some(1), "03:00 in Berlin");
    let shown = cli.json(&["jurisdiction", "show", "--business", &id]);
    assert!(shown["rules"].as_str().unwrap().contains("country.DE"));
    std::fs::write(&rules, "[country.XX]\nquiet_hours = false\n").unwrap();
    let refused = cli.run(&["jurisdiction", "set", "--business", &id, rules.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error[policy_unknown_country]"));
    let bad_time =
        cli.run(&["check", "--business", &id, "--phone", "+13055551234", "--category", "offers", "--at", "noon"]);
    assert!(String::from_utf8_lossy(&bad_time.stderr).contains("error[invalid_time]"));
}
