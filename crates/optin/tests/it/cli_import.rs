//! `optin import opt-ins`, run as a separate process: the report of rejected rows, the summary,
//! exit statuses, reruns and dry runs, and files that cannot be imported.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::cli::Cli;
use crate::helpers::Backend;

fn write_input(cli: &Cli, name: &str, contents: &[u8]) -> PathBuf {
    let path = cli.directory.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn import(cli: &Cli, arguments: &[&str]) -> Output {
    cli.run(&[&["import", "opt-ins"], arguments].concat())
}

fn file(notice_id: &str) -> String {
    format!(
        "phone,country,categories,method,collected_at,notice_id,document_sha256,collected_by,location\n\
         (415) 555-0100,US,offers|order_updates,paper,2022-06-01T09:00:00Z,{notice_id},{sha},store 12,Main St\n\
         +14155550101,,offers,in_person,2022-06-01T09:00:00+02:00,{notice_id},{sha},store 12,\n\
         +14155550102,,offers,paper,2022-06-01T09:00:00Z,{notice_id},,store 12,\n\
         +14155550103,,offers,import,2022-06-01T09:00:00Z,{notice_id},{sha},store 12,\n\
         +14155550104,,offers,paper,2022-06-01T09:00:00Z,{notice_id},{sha},=cmd|' /C calc'!A0,\n",
        sha = "ab".repeat(32)
    )
}

async fn a_file_imports_with_a_report_of_rejected_rows_and_a_rerun_changes_nothing(backend: Backend) {
    let cli = Cli::new(backend).await;
    let (id, notice_id) = cli.create_business_with_notice();
    let input = write_input(&cli, "opt-ins.csv", file(&notice_id).as_bytes());
    let report = cli.directory.path().join("rejected.csv");
    let args = ["--business", &id, "--batch-id", "paper-2022", "--report", report.to_str().unwrap()];
    let output = import(&cli, &[&args[..], &[input.to_str().unwrap()]].concat());
    assert_eq!(output.status.code(), Some(1), "some rows were rejected: {}", text(&output.stderr));
    let summary = text(&output.stdout);
    assert!(summary.starts_with("5 rows: 3 imported, 0 already imported, 2 rejected (batch paper-2022)"), "{summary}");
    assert!(summary.lines().any(|l| l.trim_start().starts_with("evidence_missing") && l.ends_with(" 1")), "{summary}");
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        format!(
            "row,phone,country,categories,method,collected_at,notice_id,document_sha256,collected_by,location,reason_codes\n\
             3,+14155550102,,offers,paper,2022-06-01T09:00:00Z,{notice_id},,store 12,,evidence_missing\n\
             4,+14155550103,,offers,import,2022-06-01T09:00:00Z,{notice_id},{sha},store 12,,evidence_invalid\n",
            sha = "ab".repeat(32)
        )
    );
    let contact = cli.json(&["contact", "show", "--business", &id, "--phone", "+14155550101"]);
    let offers = contact["categories"].as_array().unwrap().iter().find(|c| c["category"] == "offers").unwrap();
    assert_eq!(offers["status"], "opted_in", "{contact}");
    assert_eq!(offers["method"], "import");
    assert_eq!(offers["since"], "2022-06-01T07:00:00Z", "the original time, in UTC");

    let rerun = import(&cli, &["--business", &id, input.to_str().unwrap(), "--json"]);
    assert_eq!(rerun.status.code(), Some(1));
    let summary: Value = serde_json::from_slice(&rerun.stdout).expect("the summary is JSON");
    assert_eq!((summary["imported"].as_u64(), summary["already_imported"].as_u64()), (Some(0), Some(3)), "{summary}");
    let ledger = cli.json(&["ledger", "verify", "--business", &id]);
    let verified = &ledger["businesses"][0]["verified_events"];
    assert_eq!((ledger["intact"].as_bool(), verified.as_u64()), (Some(true), Some(3)), "{ledger}");
    let history = cli.json(&["contact", "show", "--business", &id, "--phone", "+14155550101", "--events"]);
    let event = &history["history"]["events"][0]["event"];
    assert_eq!(
        (event["method"].as_str(), event["collected_at"].as_str()),
        (Some("import"), Some("2022-06-01T07:00:00Z"))
    );
    assert_eq!(event["evidence"]["original_method"], "in_person");
    assert_eq!(event["evidence"]["batch_id"], "paper-2022");
}

async fn a_dry_run_records_nothing_and_a_clean_file_exits_zero(backend: Backend) {
    let cli = Cli::new(backend).await;
    let (id, _) = cli.create_business_with_notice();
    let notice = "Yes! Send me offers from Acme Shoes on WhatsApp: I agree to receive messages. Reply STOP to opt out.";
    let contents = format!(
        "phone,categories,method,collected_at,notice_text,notice_language,message_id\n\
         +14155550200,offers,whatsapp_thread,2025-01-01T00:00:00Z,\"{notice}\",en,wamid.A\n\
         +14155550201,offers,whatsapp_thread,2025-01-01T00:00:00Z,\"{notice}\",en,wamid.B\n"
    );
    let input = write_input(&cli, "thread.csv", contents.as_bytes());
    let dry = import(&cli, &["--business", &id, "--dry-run", "--json", input.to_str().unwrap()]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let summary: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!((summary["imported"].as_u64(), summary["notices_registered"].as_u64()), (Some(2), Some(1)));
    assert_eq!(cli.json(&["ledger", "verify", "--business", &id])["businesses"][0]["verified_events"], 0);
    assert_eq!(cli.json(&["notice", "list", "--business", &id])["notices"].as_array().unwrap().len(), 1);

    let real = import(&cli, &["--business", &id, input.to_str().unwrap()]);
    assert_eq!(real.status.code(), Some(0), "{}", text(&real.stderr));
    assert!(text(&real.stdout).contains("2 imported") && text(&real.stdout).contains("1 notice texts registered"));
    assert_eq!(cli.json(&["notice", "list", "--business", &id])["notices"].as_array().unwrap().len(), 2);
}

async fn files_that_cannot_be_imported_stop_with_an_error_code(backend: Backend) {
    let cli = Cli::new(backend).await;
    let (id, _) = cli.create_business_with_notice();
    let run = |name: &str, contents: &[u8]| {
        let input = write_input(&cli, name, contents);
        let output = import(&cli, &["--business", &id, input.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{name}: {}", text(&output.stderr));
        text(&output.stderr)
    };
    assert!(run("empty.csv", b"").contains("error[empty_file]"));
    let missing = run("missing.csv", b"phone,categories\n+14155550100,offers\n");
    assert!(missing.contains("error[missing_column]") && missing.contains("collected_at"), "{missing}");
    assert!(run("binary.csv", b"\xff\xd8\xff\xe0,\x00JFIF\n").contains("error[invalid_header]"));
    let nowhere = import(&cli, &["--business", &id, cli.directory.path().join("nowhere.csv").to_str().unwrap()]);
    assert!(text(&nowhere.stderr).contains("error[unreadable_input]"));
    assert_eq!(cli.json(&["ledger", "verify", "--business", &id])["businesses"][0]["verified_events"], 0);
}

crate::helpers::on_both_backends_cli!(
    a_file_imports_with_a_report_of_rejected_rows_and_a_rerun_changes_nothing,
    a_dry_run_records_nothing_and_a_clean_file_exits_zero,
    files_that_cannot_be_imported_stop_with_an_error_code,
);
