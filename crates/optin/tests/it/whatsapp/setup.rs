//! Senders, webhook settings and the channel policy: what is checked, what is never shown.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::helpers::{TestApp, expect_problem, on_both_backends, problem_codes};

on_both_backends!(
    senders_are_checked_unique_and_shown_without_credentials,
    webhook_settings_never_show_secrets,
    the_policy_is_checked_against_the_business,
);

async fn senders_are_checked_unique_and_shown_without_credentials(app: TestApp) {
    let channel = Channel::new(app).await;
    let listed = channel.get("/v1/senders").await;
    assert_eq!(listed["senders"][0]["phone_number_id"], PHONE_NUMBER_ID);
    assert_eq!(listed["senders"][0]["provider"], "cloud_api");
    assert!(!listed.to_string().contains(BEARER), "the credential is never shown: {listed}");

    let bad = json!({"phone_number_id": "abc", "display_phone_number": "x", "waba_id": "", "provider": "twilio",
        "base_url": "ftp://example", "credential": ""});
    let problem = expect_problem(
        channel.post("/v1/senders", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_number_id",
    )
    .await;
    let codes = problem_codes(&problem);
    for code in [
        "invalid_waba_id",
        "invalid_display_phone_number",
        "invalid_provider",
        "invalid_base_url",
        "invalid_credential",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} missing from {codes:?}");
    }
    // A phone_number_id belongs to one business only.
    let other = channel.app.create_business("Other Shop").await;
    let same = json!({"phone_number_id": PHONE_NUMBER_ID, "display_phone_number": "15550001111", "waba_id": "1",
        "provider": "360dialog", "credential": "d360-key"});
    let response =
        channel.app.as_business(reqwest::Method::POST, "/v1/senders", &other.key).json(&same).send().await.unwrap();
    expect_problem(response, StatusCode::CONFLICT, "sender_exists").await;
    let mut fresh = same.clone();
    fresh["phone_number_id"] = json!("200000000000001");
    let response =
        channel.app.as_business(reqwest::Method::POST, "/v1/senders", &other.key).json(&fresh).send().await.unwrap();
    let created = expect_json(response, StatusCode::CREATED).await;
    assert_eq!(created["base_url"], "https://waba-v2.360dialog.io", "the provider's default endpoint");
}

async fn webhook_settings_never_show_secrets(app: TestApp) {
    let channel = Channel::new(app).await;
    let view = channel.get("/v1/webhook-settings").await;
    assert_eq!(view["verify_token_set"], true);
    assert_eq!(view["app_secret_set"], true);
    assert_eq!(view["callback_path"], channel.webhook_path());
    assert!(!view.to_string().contains(APP_SECRET) && !view.to_string().contains(VERIFY_TOKEN));
    let short = channel.put("/v1/webhook-settings", &json!({"app_secret": "short"})).await;
    expect_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "invalid_app_secret").await;
    let unknown = channel.put("/v1/webhook-settings", &json!({"secret": "x"})).await;
    expect_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    // The refused change left the settings as they were.
    assert_eq!(channel.get("/v1/webhook-settings").await["app_secret_set"], true);
}

async fn the_policy_is_checked_against_the_business(app: TestApp) {
    let channel = Channel::new(app).await;
    let defaults = channel.get("/v1/whatsapp-policy").await;
    assert_eq!(defaults["bare_keyword_scope"], "all");
    assert_eq!(defaults["resume_restores_marketing"], false);
    let bad = json!({
        "category_aliases": {"vouchers": ["cupones"]},
        "thread_opt_in": {"enabled": true, "notice_id": uuid::Uuid::new_v4(), "categories": ["offers"]},
        "keywords": [{"text": "", "intent": "opt_out"}],
    });
    let problem = expect_problem(
        channel.put("/v1/whatsapp-policy", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_keyword",
    )
    .await;
    let codes = problem_codes(&problem);
    assert!(
        codes.contains(&"unknown_category".to_owned()) && codes.contains(&"unknown_notice".to_owned()),
        "{codes:?}"
    );
    let wrong_type = channel.put("/v1/whatsapp-policy", &json!({"bare_keyword_scope": "some"})).await;
    expect_problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert_eq!(channel.get("/v1/whatsapp-policy").await, defaults, "nothing refused was stored");
}
