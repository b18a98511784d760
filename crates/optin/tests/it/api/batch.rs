//! Batch decisions (`POST /v1/decisions/batch`): NDJSON in, NDJSON out, in order, streamed both
//! ways.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Body, Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestBusiness, expect_json, expect_problem, on_both_backends, spawn_app_with_timeout,
    web_form_opt_in,
};

on_both_backends!(
    every_line_is_answered_in_order_with_every_reason,
    the_same_person_written_two_ways_is_decided_once,
    templates_are_decided_by_their_approval_and_category,
    a_large_audience_streams_both_ways,
    batch_decisions_need_a_business_key,
);

const ALLOWED: &str = "+14155550100";
const OPTED_OUT: &str = "+14155550101";

/// A business with `ALLOWED` opted in to offers and `OPTED_OUT` opted in, then out.
async fn audience_business(app: &TestApp) -> TestBusiness {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    for phone in [ALLOWED, OPTED_OUT] {
        let opt_in = web_form_opt_in(phone, &["offers"], &notice_id);
        expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;
    }
    let opt_out = json!({"phone": OPTED_OUT, "source": "agent", "recorded_by": "agent 7"});
    expect_json(app.post_opt_out(&acme.key, &opt_out).await, StatusCode::CREATED).await;
    acme
}

async fn post_batch(app: &TestApp, key: &str, body: impl Into<Body>) -> Response {
    app.as_business(Method::POST, "/v1/decisions/batch", key)
        .header(CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Posts the lines, checks the answer's status and media type, and returns its lines.
pub(crate) async fn decide_lines(app: &TestApp, key: &str, lines: &[String]) -> Vec<Value> {
    let response = post_batch(app, key, lines.join("\n")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "every answer ends its line");
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn codes(answer: &Value) -> Vec<&str> {
    answer["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect()
}

fn line(value: &Value) -> String {
    value.to_string()
}

async fn every_line_is_answered_in_order_with_every_reason(app: TestApp) {
    let acme = audience_business(&app).await;
    let lines = [
        line(&json!({"phone": ALLOWED, "category": "offers"})),
        line(&json!({"phone": OPTED_OUT, "category": "offers"})),
        "{not json".to_owned(),
        line(&json!({"phone": "+14155550199", "category": "offers"})),
        line(&json!({"phone": "12", "category": "nope"})),
        String::new(),
        line(&json!({"phone": "(415) 555-0100", "country": "US", "category": "order_updates"})),
        line(&json!({"phone": "+14155550102", "country": "XX", "category": "offers"})),
        line(&json!({"category": "offers"})),
        line(&json!({"phone": ALLOWED, "category": "offers", "template": {"name": "a", "language": "en"}})),
        line(&json!({"phone": ALLOWED, "message_type": "text"})),
        line(&json!({"phone": ALLOWED, "category": "offers", "extra": 1})),
        format!("{{\"phone\": \"{}\", \"category\": \"offers\"}}", "9".repeat(5_000)),
        line(&json!({"phone": "+44 7400 123456", "category": "offers"})),
    ];
    let answers = decide_lines(&app, &acme.key, &lines).await;
    let summary: Vec<(u64, bool, Vec<&str>)> =
        answers.iter().map(|a| (a["line"].as_u64().unwrap(), a["allowed"].as_bool().unwrap(), codes(a))).collect();
    let expected: Vec<(u64, bool, Vec<&str>)> = vec![
        (1, true, vec![]),
        (2, false, vec!["opted_out"]),
        (3, false, vec!["invalid_line"]),
        (4, false, vec!["no_opt_in"]),
        (5, false, vec!["invalid_phone", "unknown_category"]),
        // Line 6 is blank: skipped, but counted.
        (7, false, vec!["no_opt_in"]),
        (8, false, vec!["invalid_country"]),
        (9, false, vec!["invalid_line"]),
        (10, false, vec!["invalid_line"]),
        (11, false, vec!["invalid_line"]),
        (12, false, vec!["invalid_line"]),
        (13, false, vec!["invalid_line"]),
        (14, false, vec!["no_opt_in"]),
    ];
    assert_eq!(summary, expected);
    assert_eq!(answers[0], json!({"line": 1, "phone": ALLOWED, "allowed": true, "reasons": []}));
    assert_eq!(answers[4]["phone"], "12", "an invalid number is echoed as given");
    assert_eq!(answers[5]["phone"], ALLOWED, "valid numbers are answered in E.164");
    assert_eq!(answers[12]["phone"], "+447400123456");
    assert!(answers[2].get("phone").is_none(), "an unreadable line has no phone: {}", answers[2]);
    assert!(answers[7]["reasons"][0]["detail"].as_str().unwrap().contains("phone"), "{}", answers[7]);
    assert!(answers[9]["reasons"][0]["detail"].as_str().unwrap().contains("message_type"), "{}", answers[9]);
    assert!(answers[11]["reasons"][0]["detail"].as_str().unwrap().contains("4096 bytes"), "{}", answers[11]);
    assert_eq!(answers[1]["reasons"][0]["detail"], "the contact opted out of this category");

    let empty = decide_lines(&app, &acme.key, &[]).await;
    assert!(empty.is_empty(), "an empty body gets an empty answer");
}

async fn the_same_person_written_two_ways_is_decided_once(app: TestApp) {
    let acme = audience_business(&app).await;
    let lines = [
        line(&json!({"phone": "+1 415 555 0100", "category": "offers"})),
        line(&json!({"phone": "(415) 555-0100", "country": "US", "category": "offers"})),
        line(&json!({"phone": "+14155550100", "category": "order_updates"})),
        line(&json!({"phone": "+14155550199", "category": "offers"})),
        line(&json!({"phone": "415.555.0199", "country": "us", "category": "offers"})),
        line(&json!({"phone": "+14155550100", "category": "offers"})),
    ];
    let answers = decide_lines(&app, &acme.key, &lines).await;
    let decided: Vec<(&str, Vec<&str>)> = answers.iter().map(|a| (a["phone"].as_str().unwrap(), codes(a))).collect();
    assert_eq!(
        decided,
        [
            (ALLOWED, vec![]),
            (ALLOWED, vec!["duplicate"]),
            (ALLOWED, vec!["no_opt_in"]),
            ("+14155550199", vec!["no_opt_in"]),
            ("+14155550199", vec!["duplicate"]),
            (ALLOWED, vec!["duplicate"]),
        ],
        "a number is decided once per message; another message is another question"
    );
}

async fn templates_are_decided_by_their_approval_and_category(app: TestApp) {
    let acme = audience_business(&app).await;
    let templates = json!({"data": [
        {"name": "spring_sale", "language": "en_US", "category": "MARKETING", "status": "APPROVED",
         "optin_category": "offers", "components": [{"type": "BODY", "text": "Spring sale! Reply STOP to opt out."}]},
        {"name": "old_sale", "language": "en_US", "category": "MARKETING", "status": "PAUSED",
         "optin_category": "offers", "components": [{"type": "BODY", "text": "Old sale. Reply STOP to opt out."}]},
    ]});
    let imported = app.as_business(Method::PUT, "/v1/templates", &acme.key).json(&templates).send().await.unwrap();
    expect_json(imported, StatusCode::OK).await;
    let template = |phone: &str, name: &str, language: &str| {
        line(&json!({"phone": phone, "template": {"name": name, "language": language}}))
    };
    let lines = [
        template(ALLOWED, "spring_sale", "en_US"),
        template(OPTED_OUT, "spring_sale", "en-US"),
        template("+14155550199", "spring_sale", "en_US"),
        template(ALLOWED, "old_sale", "en_US"),
        template(ALLOWED, "missing", "en_US"),
        template(ALLOWED, "spring_sale", "en-US"),
    ];
    let answers = decide_lines(&app, &acme.key, &lines).await;
    let decided: Vec<Vec<&str>> = answers.iter().map(codes).collect();
    assert_eq!(
        decided,
        [
            vec![],
            vec!["opted_out", "not_opted_in_to_template_category"],
            vec!["not_opted_in_to_template_category"],
            vec!["template_not_approved"],
            vec!["template_not_found"],
            vec!["duplicate"],
        ]
    );
}

/// Lines `first..=last` (from 1) of a generated audience: 5,000 numbers the store does not know,
/// over and over, a known one every 1,000 lines and a line that is not JSON every 10,000.
fn generated_lines(first: u64, last: u64) -> String {
    let mut text = String::new();
    for number in first..=last {
        if number % 10_000 == 0 {
            text.push_str("not json\n");
        } else if number % 1_000 == 1 {
            text.push_str(&format!("{{\"phone\":\"{ALLOWED}\",\"category\":\"offers\"}}\n"));
        } else {
            let phone = format!("+1415{}", 2_000_000 + number % 5_000);
            text.push_str(&format!("{{\"phone\":\"{phone}\",\"category\":\"offers\"}}\n"));
        }
    }
    text
}

/// 200,000 lines, sent as a stream that holds back its second half until the first answers
/// arrived: only a server that answers as it reads can finish.
async fn a_large_audience_streams_both_ways(app: TestApp) {
    const LINES: u64 = 200_000;
    const PIECE: u64 = 5_000;
    let acme = audience_business(&app).await;
    let (answers_started, gate) = tokio::sync::oneshot::channel::<()>();
    let first_half = futures::stream::iter((0..LINES / 2 / PIECE).map(|i| (i * PIECE + 1, (i + 1) * PIECE)));
    let second_half =
        futures::stream::once(async move { gate.await.expect("the test opens the gate") }).flat_map(|()| {
            futures::stream::iter((LINES / 2 / PIECE..LINES / PIECE).map(|i| (i * PIECE + 1, (i + 1) * PIECE)))
        });
    let body = first_half.chain(second_half).map(|(first, last)| Ok::<_, std::io::Error>(generated_lines(first, last)));
    let reading = async {
        let mut response = post_batch(&app, &acme.key, Body::wrap_stream(body)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut answers_started = Some(answers_started);
        let (mut count, mut pending, mut sampled) = (0_u64, Vec::new(), Vec::new());
        while let Some(bytes) = response.chunk().await.unwrap() {
            if let Some(started) = answers_started.take() {
                started.send(()).unwrap();
            }
            pending.extend_from_slice(&bytes);
            let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |end| end + 1);
            for text in pending[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                count += 1;
                let answer: Value = serde_json::from_slice(text).unwrap();
                assert_eq!(answer["line"], count, "in order, none missing");
                if [1, 2, 1_001, 5_002, 10_000, 150_001, LINES].contains(&count) {
                    sampled.push(answer);
                }
            }
            pending.drain(..complete);
        }
        (count, sampled)
    };
    let (count, sampled) = tokio::time::timeout(Duration::from_secs(300), reading).await.expect("the stream ends");
    assert_eq!(count, LINES);
    let sampled: Vec<Vec<&str>> = sampled.iter().map(codes).collect();
    assert_eq!(
        sampled,
        [
            vec![],
            vec!["no_opt_in"],
            vec!["duplicate"],
            vec!["duplicate"],
            vec!["invalid_line"],
            vec!["duplicate"],
            vec!["invalid_line"]
        ]
    );
}

async fn batch_decisions_need_a_business_key(app: TestApp) {
    let body = line(&json!({"phone": ALLOWED, "category": "offers"}));
    let anonymous = app.request(Method::POST, "/v1/decisions/batch", None).body(body.clone()).send().await.unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = post_batch(&app, "optin_sk_not-a-key", body).await;
    expect_problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let document = expect_json(app.get("/openapi.json").await, StatusCode::OK).await;
    let batch = &document["paths"]["/v1/decisions/batch"]["post"];
    assert_eq!(batch["security"], json!([{"business_key": []}]));
    assert!(batch["requestBody"]["content"].get("application/x-ndjson").is_some(), "{batch}");
}

/// The request timeout bounds the time to the answer's head; a stream goes on for as long as
/// the audience lasts.
#[tokio::test]
async fn a_stream_may_last_longer_than_the_request_timeout() {
    // Loaded before the clock matters (the phone metadata takes seconds to load in debug builds).
    assert!(optin_core::phone::PhoneNumber::parse(ALLOWED, None).is_ok());
    let app = spawn_app_with_timeout(Backend::Sqlite, Duration::from_secs(2)).await;
    let acme = app.create_business("Acme Shoes").await;
    let slow = futures::stream::iter(0..3).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let category = if i == 0 { "offers" } else { "nope" };
        Ok::<_, std::io::Error>(line(&json!({"phone": ALLOWED, "category": category})) + "\n")
    });
    let response = post_batch(&app, &acme.key, Body::wrap_stream(slow)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let answers: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let decided: Vec<Vec<&str>> = answers.iter().map(codes).collect();
    assert_eq!(decided, [vec!["no_opt_in"], vec!["unknown_category"], vec!["unknown_category"]], "{text}");
}

/// PostgreSQL only (a database server can go away underneath the process; a SQLite file cannot):
/// a store failure in the middle of a stream breaks the response after the lines already
/// answered, so a client sees a broken stream, not a short one.
#[tokio::test]
async fn a_store_failure_mid_stream_breaks_the_response_after_the_answers_so_far() {
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    let acme = audience_business(&app).await;
    let (go_on, gate) = tokio::sync::oneshot::channel::<()>();
    let piece = |phone: &str| (line(&json!({"phone": phone, "category": "offers"})) + "\n").repeat(3);
    let (first, second) = (piece(ALLOWED), piece(OPTED_OUT));
    let body =
        futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(futures::stream::once(async move {
            gate.await.expect("the test opens the gate");
            Ok(second)
        }));
    let mut response = post_batch(&app, &acme.key, Body::wrap_stream(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut received = Vec::new();
    while received.iter().filter(|byte| **byte == b'\n').count() < 3 {
        received.extend_from_slice(&response.chunk().await.unwrap().expect("the first answers"));
    }

    let database = app.postgres_database().unwrap();
    let admin_url = std::env::var("OPTIN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin.batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", database.name())).await.unwrap();
    go_on.send(()).unwrap();
    let ending = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };

    assert!(ending.is_err(), "the response breaks instead of ending");
    let answers: Vec<Value> =
        String::from_utf8(received).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(u64, Vec<&str>)> = answers.iter().map(|a| (a["line"].as_u64().unwrap(), codes(a))).collect();
    assert_eq!(summary, [(1, vec![]), (2, vec!["duplicate"]), (3, vec!["duplicate"])]);
}
