//! Phone (IVR) opt-ins: recorded when the caller pressed the script's agree key, with the call as
//! evidence; anything else records nothing.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, on_both_backends, problem_codes, text};

on_both_backends!(an_ivr_opt_in_needs_the_agree_key_and_keeps_the_call_as_evidence);

const CALLER: &str = "+14155552671";

async fn post_ivr(app: &TestApp, key: &str, body: &Value, idempotency_key: Option<&str>) -> Response {
    let mut request = app.as_business(Method::POST, "/v1/ivr/opt-ins", key).json(body);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    request.send().await.unwrap()
}

async fn an_ivr_opt_in_needs_the_agree_key_and_keeps_the_call_as_evidence(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    let call = |key_pressed: &str| {
        json!({"caller": CALLER, "call_id": "CA42", "key_pressed": key_pressed, "notice_id": notice,
               "categories": ["offers"], "recording_ref": "rec/CA42.wav", "called_number": "+18005550100"})
    };
    // Another key, or no DTMF at all: nothing is recorded.
    expect_problem(
        post_ivr(&app, &acme.key, &call("2"), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ivr_not_agreed",
    )
    .await;
    expect_problem(
        post_ivr(&app, &acme.key, &call("1; DROP"), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_key_pressed",
    )
    .await;
    let mut no_call = call("1");
    no_call["call_id"] = json!("");
    no_call["notice_id"] = json!("00000000-0000-4000-8000-000000000000");
    let problem = expect_problem(
        post_ivr(&app, &acme.key, &no_call, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "evidence_missing",
    )
    .await;
    assert!(problem_codes(&problem).contains(&"unknown_notice".to_owned()), "{problem}");
    let events = expect_json(app.get_contact_events(&acme.key, CALLER).await, StatusCode::OK).await;
    assert_eq!(events["events"], json!([]));

    let recorded = expect_json(post_ivr(&app, &acme.key, &call("1"), Some("CA42")).await, StatusCode::CREATED).await;
    let replayed = expect_json(post_ivr(&app, &acme.key, &call("1"), Some("CA42")).await, StatusCode::CREATED).await;
    assert_eq!(recorded["event_id"], replayed["event_id"], "the platform's retry records nothing new");
    assert!(app.decide(&acme.key, CALLER, "offers").await.0);
    let events = expect_json(app.get_contact_events(&acme.key, CALLER).await, StatusCode::OK).await;
    let event = &events["events"][0]["event"];
    assert_eq!((text(&event["method"]), text(&event["notice"]["id"])), ("ivr".to_owned(), notice.clone()));
    let evidence = &event["evidence"];
    assert_eq!((evidence["call_id"].as_str(), evidence["key_pressed"].as_str()), (Some("CA42"), Some("1")));
    assert_eq!(evidence["recording_ref"], "rec/CA42.wav");
    // A script asking for another key.
    let mut star = call("*");
    star["agree_key"] = json!("*");
    star["call_id"] = json!("CA43");
    star["categories"] = json!(["order_updates"]);
    expect_json(post_ivr(&app, &acme.key, &star, None).await, StatusCode::CREATED).await;
    assert!(app.decide(&acme.key, CALLER, "order_updates").await.0);
}
