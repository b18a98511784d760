//! `optin audience filter`, run as a separate process: rows kept whole, refused rows with their
//! reasons, the summary, and the errors that stop a run.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::cli::Cli;
use crate::helpers::Backend;

/// A business with +14155550100 opted in to offers and +14155550101 opted in, then out.
fn audience_business(cli: &Cli) -> String {
    let (id, notice_id) = cli.create_business_with_notice();
    for phone in ["+14155550100", "+14155550101"] {
        let document = format!("document_sha256={}", "ab".repeat(32));
        cli.json(&[
            "opt-in",
            "--business",
            &id,
            "--phone",
            phone,
            "--category",
            "offers",
            "--method",
            "paper",
            "--notice",
            &notice_id,
            "--evidence-field",
            &document,
            "--evidence-field",
            "collected_by=store 12",
        ]);
    }
    cli.json(&["opt-out", "--business", &id, "--phone", "+14155550101", "--recorded-by", "agent 7"]);
    id
}

fn write_input(cli: &Cli, name: &str, contents: &str) -> PathBuf {
    let path = cli.directory.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn filter(cli: &Cli, arguments: &[&str]) -> Output {
    cli.run(&[&["audience", "filter"], arguments].concat())
}

const AUDIENCE: &str = "\
name,Phone,city
Ana,+1 415 555 0100,\"San Francisco, CA\"
Bo,+14155550101,Oakland
Cy,(415) 555-0100,Berkeley
Di,not a number,Fresno
Ed,+14155550199,\"Line \"\"two\"\"\"
";

async fn allowed_rows_keep_every_column_and_refused_rows_say_why(backend: Backend) {
    let cli = Cli::new(backend).await;
    let id = audience_business(&cli);
    let input = write_input(&cli, "audience.csv", AUDIENCE);
    let refused = cli.directory.path().join("refused.csv");
    let output = filter(
        &cli,
        &[
            "--business",
            &id,
            "--category",
            "offers",
            "--country",
            "US",
            "--phone-column",
            "phone",
            "--refused",
            refused.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "name,Phone,city\nAna,+1 415 555 0100,\"San Francisco, CA\"\n");
    assert_eq!(
        std::fs::read_to_string(&refused).unwrap(),
        "name,Phone,city,reasons\n\
         Bo,+14155550101,Oakland,opted_out\n\
         Cy,(415) 555-0100,Berkeley,duplicate\n\
         Di,not a number,Fresno,invalid_phone\n\
         Ed,+14155550199,\"Line \"\"two\"\"\",no_opt_in\n"
    );
    let summary = text(&output.stderr);
    assert!(summary.contains("5 rows: 1 allowed, 4 refused"), "{summary}");
    for code in ["duplicate", "invalid_phone", "no_opt_in", "opted_out"] {
        assert!(summary.lines().any(|l| l.trim_start().starts_with(code) && l.ends_with(" 1")), "{summary}");
    }
}

async fn with_files_and_json_the_summary_is_printed_as_json(backend: Backend) {
    let cli = Cli::new(backend).await;
    let id = audience_business(&cli);
    let input = write_input(&cli, "audience.csv", AUDIENCE);
    let allowed = cli.directory.path().join("allowed.csv");
    let output = filter(
        &cli,
        &[
            "--business",
            &id,
            "--template",
            "spring_sale:en_US",
            "--allowed",
            allowed.to_str().unwrap(),
            input.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).expect("the summary is JSON on stdout");
    assert_eq!(summary["rows"], 5);
    assert_eq!(summary["allowed"], 0);
    // Without --country, the national number is invalid; every row refers to a missing template.
    assert_eq!(summary["reasons"]["template_not_found"], 5, "{summary}");
    assert_eq!(summary["reasons"]["invalid_phone"], 2, "{summary}");
    assert_eq!(std::fs::read_to_string(&allowed).unwrap(), "name,Phone,city\n", "the header, and no rows");
}

async fn unreadable_input_stops_with_an_error_code(backend: Backend) {
    let cli = Cli::new(backend).await;
    let id = audience_business(&cli);
    let run = |input: &str, extra: &[&str]| {
        let output = filter(&cli, &[&["--business", &id, "--category", "offers", input], extra].concat());
        assert_eq!(output.status.code(), Some(2), "{input}: {}", text(&output.stderr));
        text(&output.stderr)
    };
    let missing_column = write_input(&cli, "no-phone.csv", "name,mobile\nAna,+14155550100\n");
    let error = run(missing_column.to_str().unwrap(), &[]);
    assert!(error.contains("error[missing_phone_column]") && error.contains("mobile"), "{error}");
    let named = filter(
        &cli,
        &["--business", &id, "--category", "offers", "--phone-column", "mobile", missing_column.to_str().unwrap()],
    );
    assert_eq!(text(&named.stdout), "name,mobile\nAna,+14155550100\n", "{}", text(&named.stderr));

    let error = run(cli.directory.path().join("nowhere.csv").to_str().unwrap(), &[]);
    assert!(error.contains("error[unreadable_input]"), "{error}");

    let ragged = write_input(&cli, "ragged.csv", "name,phone\nAna,+14155550100\nBo,+14155550101,extra\n");
    let error = run(ragged.to_str().unwrap(), &[]);
    assert!(error.contains("error[invalid_csv]") && error.contains("line 3"), "{error}");

    let bad_template = filter(&cli, &["--business", &id, "--template", "no-language", "x.csv"]);
    assert!(text(&bad_template.stderr).contains("error[invalid_template]"), "{}", text(&bad_template.stderr));
    let both = filter(&cli, &["--business", &id, "--category", "offers", "--template", "a:en", "x.csv"]);
    assert_eq!(both.status.code(), Some(2), "clap refuses --category with --template");
}

crate::helpers::on_both_backends_cli!(
    allowed_rows_keep_every_column_and_refused_rows_say_why,
    with_files_and_json_the_summary_is_printed_as_json,
    unreadable_input_stops_with_an_error_code,
);
