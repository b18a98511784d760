//! Bulk imports over HTTP (`POST /v1/imports`): a CSV body streamed in, one NDJSON line per
//! rejected row and a summary out; imported opt-ins keep their original time and method, are
//! recorded once by content, and a broken header is refused before anything streams.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    NOTICE_TEXT, TestApp, TestBusiness, expect_json, expect_problem, on_both_backends, problem_codes,
};

on_both_backends!(
    good_rows_import_with_their_original_time_and_method_and_bad_rows_say_why,
    a_rerun_records_nothing_and_a_dry_run_records_nothing,
    an_import_collected_before_a_later_opt_out_does_not_undo_it,
    a_broken_header_is_refused_before_anything_streams,
    hostile_csv_gives_row_rejections_never_a_failure,
    a_file_of_several_chunks_streams_its_rejections_in_order,
);

const HEADER: &str =
    "phone,country,categories,method,collected_at,notice_id,notice_text,notice_language,page_url,ip,message_id,from";

/// One CSV line with the cells named (others empty), in `HEADER`'s order.
fn line(cells: &[(&str, &str)]) -> String {
    HEADER
        .split(',')
        .map(|column| {
            let value = cells.iter().find(|(name, _)| *name == column).map_or("", |(_, value)| *value);
            format!("\"{}\"", value.replace('"', "\"\""))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn web_form(phone: &str, notice_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("phone", phone.to_owned()),
        ("categories", "offers;order_updates".to_owned()),
        ("method", "web_form".to_owned()),
        ("collected_at", "2024-05-01T10:00:00Z".to_owned()),
        ("notice_id", notice_id.to_owned()),
        ("page_url", "https://acme.example/join".to_owned()),
        ("ip", "203.0.113.7".to_owned()),
    ]
}

fn with(mut cells: Vec<(&'static str, String)>, name: &'static str, value: &str) -> String {
    cells.retain(|(n, _)| *n != name);
    cells.push((name, value.to_owned()));
    let borrowed: Vec<(&str, &str)> = cells.iter().map(|(n, v)| (*n, v.as_str())).collect();
    line(&borrowed)
}

async fn post_import(app: &TestApp, key: &str, query: &str, body: impl Into<reqwest::Body>) -> Response {
    app.as_business(Method::POST, &format!("/v1/imports{query}"), key)
        .header(CONTENT_TYPE, "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The rejection lines and the summary of a successful import.
async fn import(app: &TestApp, key: &str, query: &str, body: String) -> (Vec<Value>, Value) {
    let response = post_import(app, key, query, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let mut lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let summary = lines.pop().expect("a summary line");
    (lines, summary["summary"].clone())
}

fn codes(line: &Value) -> Vec<&str> {
    line["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect()
}

async fn business_with_notice(app: &TestApp) -> (TestBusiness, String) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    (acme, notice_id)
}

async fn good_rows_import_with_their_original_time_and_method_and_bad_rows_say_why(app: TestApp) {
    let (acme, notice_id) = business_with_notice(&app).await;
    let good = web_form("+14155550100", &notice_id);
    let sms = [
        ("phone", "(415) 555-0101"),
        ("country", "US"),
        ("categories", "offers"),
        ("method", "sms"),
        ("collected_at", "2023-01-02T03:04:05Z"),
        ("notice_text", NOTICE_TEXT),
        ("notice_language", "en"),
        ("message_id", "SM42"),
        ("from", "+14155550101"),
    ];
    let failing_notice = [
        ("phone", "+14155550102"),
        ("categories", "offers"),
        ("method", "whatsapp_thread"),
        ("collected_at", "2024-01-01T00:00:00Z"),
        ("notice_text", "Thanks for shopping!"),
        ("notice_language", "en"),
        ("message_id", "wamid.1"),
    ];
    let rows = [
        with(good.clone(), "phone", "+14155550100"),
        line(&sms),
        with(good.clone(), "phone", "not a number"),
        with(good.clone(), "categories", "offers;unicorns"),
        with(good.clone(), "collected_at", "last tuesday"),
        with(good.clone(), "collected_at", "2099-01-01T00:00:00Z"),
        with(good.clone(), "notice_id", "6b1f0a36-5b3b-4c55-9c1e-5f0f5d1f7a00"),
        line(&failing_notice),
        with(good.clone(), "ip", ""),
        with(good.clone(), "method", "import"),
    ];
    let body = format!("{HEADER}\n{}\n", rows.join("\n"));
    let (rejections, summary) = import(&app, &acme.key, "?batch_id=crm-2024", body).await;

    let by_row: Vec<(u64, Vec<&str>)> = rejections.iter().map(|r| (r["row"].as_u64().unwrap(), codes(r))).collect();
    assert_eq!(
        by_row,
        [
            (3, vec!["invalid_phone"]),
            (4, vec!["unknown_category"]),
            (5, vec!["invalid_time"]),
            (6, vec!["collected_at_in_future"]),
            (7, vec!["unknown_notice"]),
            (8, vec!["notice_missing_business_name", "notice_missing_opt_in_statement"]),
            (9, vec!["evidence_missing"]),
            (10, vec!["evidence_invalid"]),
        ]
    );
    assert_eq!(rejections[0]["phone"], "not a number");
    assert_eq!(rejections[1]["phone"], "+14155550100", "a valid number is echoed in E.164");
    assert!(rejections[6]["detail"].as_str().unwrap().contains("ip"), "{}", rejections[6]);
    assert_eq!(summary["rows"], 10);
    assert_eq!(summary["imported"], 2);
    assert_eq!(summary["rejected"], 8);
    assert_eq!(summary["batch_id"], "crm-2024");
    assert_eq!(summary["reasons"]["invalid_phone"], 1);
    assert_eq!(summary["notices_registered"], 0, "the notice text is the one registered already");

    let events = expect_json(app.get_contact_events(&acme.key, "+14155550101").await, StatusCode::OK).await;
    let event = &events["events"][0]["event"];
    assert_eq!(event["method"], "import", "{event}");
    assert_eq!(event["collected_at"], "2023-01-02T03:04:05Z");
    assert_eq!(event["evidence"]["original_method"], "sms");
    assert_eq!(event["evidence"]["batch_id"], "crm-2024");
    assert_eq!(event["evidence"]["message_id"], "SM42");
    assert_eq!(event["evidence"]["source_row"], 2);
    assert_eq!(event["notice"]["id"], notice_id.as_str());
    assert_eq!(app.decide(&acme.key, "+14155550100", "offers").await, (true, vec![]));
    let ledger = app.verify_ledger(&acme.key).await;
    assert_eq!((ledger["intact"].as_bool(), ledger["verified_events"].as_u64()), (Some(true), Some(2)), "{ledger}");
}

async fn a_rerun_records_nothing_and_a_dry_run_records_nothing(app: TestApp) {
    let (acme, notice_id) = business_with_notice(&app).await;
    let rows: Vec<String> = (0..30)
        .map(|i| with(web_form(&format!("+1415555{:04}", 200 + i), &notice_id), "categories", "offers"))
        .collect();
    let body = format!("{HEADER}\n{}\n", rows.join("\n"));

    let (_, dry) = import(&app, &acme.key, "?dry_run=true", body.clone()).await;
    assert_eq!((dry["dry_run"].as_bool(), dry["imported"].as_u64()), (Some(true), Some(30)), "{dry}");
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 0, "a dry run records nothing");

    let (_, first) = import(&app, &acme.key, "", body.clone()).await;
    assert_eq!((first["imported"].as_u64(), first["already_imported"].as_u64()), (Some(30), Some(0)));
    let (_, again) = import(&app, &acme.key, "?batch_id=second", body.clone()).await;
    assert_eq!((again["imported"].as_u64(), again["already_imported"].as_u64()), (Some(0), Some(30)), "{again}");
    let (_, dry_again) = import(&app, &acme.key, "?dry_run=true", body).await;
    assert_eq!((dry_again["imported"].as_u64(), dry_again["already_imported"].as_u64()), (Some(0), Some(30)));
    let ledger = app.verify_ledger(&acme.key).await;
    assert_eq!((ledger["intact"].as_bool(), ledger["verified_events"].as_u64()), (Some(true), Some(30)), "{ledger}");
}

async fn an_import_collected_before_a_later_opt_out_does_not_undo_it(app: TestApp) {
    let (acme, notice_id) = business_with_notice(&app).await;
    let opt_out = json!({"phone": "+14155550300", "source": "agent", "recorded_by": "agent 7"});
    expect_json(app.post_opt_out(&acme.key, &opt_out).await, StatusCode::CREATED).await;
    let body = format!("{HEADER}\n{}\n", with(web_form("+14155550300", &notice_id), "categories", "offers"));
    let (rejections, summary) = import(&app, &acme.key, "", body).await;
    assert!(rejections.is_empty());
    assert_eq!(summary["imported"], 1, "the event is recorded as evidence");
    let (allowed, reasons) = app.decide(&acme.key, "+14155550300", "offers").await;
    assert!(!allowed && reasons.contains(&"opted_out".to_owned()), "{reasons:?}");
    let contact = expect_json(app.get_contact(&acme.key, "+14155550300", None).await, StatusCode::OK).await;
    let offers = contact["categories"].as_array().unwrap().iter().find(|c| c["category"] == "offers").unwrap();
    assert_eq!(offers["status"], "opted_out", "{contact}");
}

async fn a_broken_header_is_refused_before_anything_streams(app: TestApp) {
    let (acme, _) = business_with_notice(&app).await;
    let missing = post_import(&app, &acme.key, "", "phone,categories,method\n+14155550100,offers,sms\n").await;
    let problem = expect_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, "missing_column").await;
    assert_eq!(problem_codes(&problem), ["missing_column"; 3], "collected_at and the notice: {problem}");
    let empty = post_import(&app, &acme.key, "", "").await;
    expect_problem(empty, StatusCode::UNPROCESSABLE_ENTITY, "empty_file").await;
    let garbage = post_import(&app, &acme.key, "", b"\xff\xfe,phone\n1,2\n".to_vec()).await;
    expect_problem(garbage, StatusCode::UNPROCESSABLE_ENTITY, "invalid_header").await;
    let twice = post_import(&app, &acme.key, "", format!("{HEADER},Phone\n")).await;
    expect_problem(twice, StatusCode::UNPROCESSABLE_ENTITY, "duplicate_column").await;
    let bad_query = post_import(&app, &acme.key, "?dry_run=maybe", format!("{HEADER}\n")).await;
    expect_problem(bad_query, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query").await;
    let anonymous = app.request(Method::POST, "/v1/imports", None).body(format!("{HEADER}\n")).send().await.unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 0);
}

async fn hostile_csv_gives_row_rejections_never_a_failure(app: TestApp) {
    let (acme, notice_id) = business_with_notice(&app).await;
    let good = with(web_form("+14155550400", &notice_id), "categories", "offers");
    let mut body = format!("\u{feff}{HEADER}\r\n").into_bytes();
    let mut random = 0x2545_F491_4F6C_DD1D_u64;
    for _ in 0..3_000 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        // No quote: one would open a quoted field that swallows the rows after it.
        body.push(match (random & 0xff) as u8 {
            b'"' => b'x',
            byte => byte,
        });
    }
    body.extend_from_slice(b"\n\"unterminated, \"\"quoted\"\"\nnewline\",x\r\n");
    body.extend_from_slice(
        format!("{}\r\n", with(web_form("+14155550401", &notice_id), "page_url", &"x".repeat(200_000))).as_bytes(),
    );
    body.extend_from_slice(format!("{good}\r\n").as_bytes());
    body.extend_from_slice(
        format!("{}\n", with(web_form("+14155550402", &notice_id), "page_url", "=HYPERLINK(\"http://evil\")"))
            .as_bytes(),
    );
    body.extend_from_slice(b"\xc3\x28,\xff\xff\n");
    let response = post_import(&app, &acme.key, "", body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).expect("every line is JSON")).collect();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["imported"], 1, "{text}");
    assert_eq!(summary["rejected"].as_u64().unwrap() + 1, summary["rows"].as_u64().unwrap(), "{summary}");
    assert!(lines.iter().any(|l| codes(l) == ["row_too_long"]), "{text}");
    assert!(lines.iter().any(|l| codes(l).contains(&"evidence_invalid")), "the formula is not a URL: {text}");
    assert_eq!(app.decide(&acme.key, "+14155550400", "offers").await, (true, vec![]));
    assert_eq!(app.verify_ledger(&acme.key).await["intact"], true);
}

async fn a_file_of_several_chunks_streams_its_rejections_in_order(app: TestApp) {
    let (acme, notice_id) = business_with_notice(&app).await;
    let rows: Vec<String> = (0..12_000)
        .map(|i| match i {
            10 | 6_000 | 11_999 => with(web_form(&format!("+1415{:07}", 2_000_000 + i), &notice_id), "ip", "nope"),
            _ => with(web_form(&format!("+1415{:07}", 2_000_000 + i), &notice_id), "categories", "offers"),
        })
        .collect();
    let body = format!("{HEADER}\n{}\n", rows.join("\n"));
    let (rejections, summary) = import(&app, &acme.key, "", body).await;
    let rejected: Vec<u64> = rejections.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    assert_eq!(rejected, [11, 6_001, 12_000], "in order, across chunks");
    assert_eq!((summary["rows"].as_u64(), summary["imported"].as_u64()), (Some(12_000), Some(11_997)), "{summary}");
    let ledger = app.verify_ledger(&acme.key).await;
    assert_eq!((ledger["intact"].as_bool(), ledger["verified_events"].as_u64()), (Some(true), Some(11_997)));
}
