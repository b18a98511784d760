//! `Idempotency-Key` on opt-ins and opt-outs.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PHONE, TestApp, expect_json, expect_problem, on_both_backends, web_form_opt_in};

on_both_backends!(
    the_same_key_and_body_replay_the_first_response_without_recording_twice,
    the_same_key_with_another_body_is_a_conflict,
    refusals_are_replayed_too,
    malformed_idempotency_keys_are_refused,
);

async fn post_with_key(app: &TestApp, api_key: &str, path: &str, key: &str, body: &Value) -> Response {
    let request = app.as_business(Method::POST, path, api_key).header("Idempotency-Key", key);
    request.json(body).send().await.unwrap()
}

async fn the_same_key_and_body_replay_the_first_response_without_recording_twice(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);

    let first = post_with_key(&app, &acme.key, "/v1/opt-ins", "signup-42", &opt_in).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, StatusCode::CREATED).await;
    let replay = post_with_key(&app, &acme.key, "/v1/opt-ins", "signup-42", &opt_in).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(replay, StatusCode::CREATED).await, first);
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 1);

    let opt_out = json!({"phone": PHONE, "source": "api", "recorded_by": "crm"});
    let first =
        expect_json(post_with_key(&app, &acme.key, "/v1/opt-outs", "stop-1", &opt_out).await, StatusCode::CREATED)
            .await;
    let replay =
        expect_json(post_with_key(&app, &acme.key, "/v1/opt-outs", "stop-1", &opt_out).await, StatusCode::CREATED)
            .await;
    assert_eq!(replay, first);
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 2);

    let other_business = app.create_business("Globex").await;
    let notice = app.post_notice(&other_business.key, "I agree to receive offers from Globex on WhatsApp.", "en");
    let globex_notice = crate::helpers::text(&expect_json(notice.await, StatusCode::CREATED).await["id"]);
    let globex_opt_in = web_form_opt_in(PHONE, &["offers"], &globex_notice);
    let response = post_with_key(&app, &other_business.key, "/v1/opt-ins", "signup-42", &globex_opt_in).await;
    assert!(response.headers().get("idempotent-replayed").is_none(), "keys are per business");
    expect_json(response, StatusCode::CREATED).await;
}

async fn the_same_key_with_another_body_is_a_conflict(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);
    expect_json(post_with_key(&app, &acme.key, "/v1/opt-ins", "k1", &opt_in).await, StatusCode::CREATED).await;

    let other = web_form_opt_in("+14155550199", &["offers"], &notice_id);
    let response = post_with_key(&app, &acme.key, "/v1/opt-ins", "k1", &other).await;
    expect_problem(response, StatusCode::CONFLICT, "idempotency_key_reused").await;
    let opt_out = json!({"phone": PHONE, "source": "api", "recorded_by": "crm"});
    let response = post_with_key(&app, &acme.key, "/v1/opt-outs", "k1", &opt_out).await;
    expect_problem(response, StatusCode::CONFLICT, "idempotency_key_reused").await;
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 1);
}

async fn refusals_are_replayed_too(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let opt_in = web_form_opt_in(PHONE, &["offers"], "00000000-0000-4000-8000-000000000000");
    let first = post_with_key(&app, &acme.key, "/v1/opt-ins", "bad-1", &opt_in).await;
    let first = expect_problem(first, StatusCode::UNPROCESSABLE_ENTITY, "unknown_notice").await;
    let replay = post_with_key(&app, &acme.key, "/v1/opt-ins", "bad-1", &opt_in).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_problem(replay, StatusCode::UNPROCESSABLE_ENTITY, "unknown_notice").await, first);
}

async fn malformed_idempotency_keys_are_refused(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);
    for key in ["", "with space", &"k".repeat(201)] {
        let response = post_with_key(&app, &acme.key, "/v1/opt-ins", key, &opt_in).await;
        expect_problem(response, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    }
    let longest = "k".repeat(200);
    expect_json(post_with_key(&app, &acme.key, "/v1/opt-ins", &longest, &opt_in).await, StatusCode::CREATED).await;
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 1);
}
