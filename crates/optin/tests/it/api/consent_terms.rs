//! What consent rests on, in decisions: double opt-ins stay pending until confirmed (asked for, or
//! expected by the jurisdiction rules), and implied consent lapses after the lifetime the rules
//! give it where the recipient is (Canada), single and batch.

use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::batch::decide_lines;
use crate::helpers::{TestApp, expect_json, expect_problem, on_both_backends, text, web_form_opt_in};

on_both_backends!(
    a_double_opt_in_is_pending_until_the_person_confirms,
    a_pending_opt_in_cannot_be_confirmed_after_its_deadline,
    the_jurisdiction_makes_opt_ins_pending_unless_they_came_from_the_number,
    implied_consent_lapses_after_its_lifetime_where_the_recipient_is,
    consent_terms_are_checked,
);

const SAN_FRANCISCO: &str = "+14155552671";
const BERLIN: &str = "+4915112345678";
const TORONTO: &str = "+14165550123";

fn outcomes(recorded: &Value) -> Vec<(String, String)> {
    let categories = recorded["categories"].as_array().unwrap();
    categories.iter().map(|c| (text(&c["category"]), text(&c["outcome"]))).collect()
}

fn pair(category: &str, outcome: &str) -> (String, String) {
    (category.to_owned(), outcome.to_owned())
}

async fn decision_codes(app: &TestApp, key: &str, phone: &str, category: &str) -> Vec<String> {
    app.decide(key, phone, category).await.1
}

async fn confirm(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.as_business(Method::POST, "/v1/confirmations", key).json(body).send().await.unwrap()
}

async fn contact_status(app: &TestApp, key: &str, phone: &str, category: &str) -> String {
    let contact = expect_json(app.get_contact(key, phone, None).await, StatusCode::OK).await;
    let categories = contact["categories"].as_array().unwrap();
    text(&categories.iter().find(|c| c["category"] == category).unwrap()["status"])
}

async fn a_double_opt_in_is_pending_until_the_person_confirms(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    let mut body = web_form_opt_in(SAN_FRANCISCO, &["offers"], &notice);
    body["double_opt_in"] = json!(true);
    let recorded = expect_json(app.post_opt_in(&acme.key, &body).await, StatusCode::CREATED).await;
    assert_eq!(outcomes(&recorded), [pair("offers", "awaiting_confirmation")]);
    assert_eq!(decision_codes(&app, &acme.key, SAN_FRANCISCO, "offers").await, ["opt_in_pending_confirmation"]);
    assert_eq!(contact_status(&app, &acme.key, SAN_FRANCISCO, "offers").await, "pending_confirmation");
    let batch =
        decide_lines(&app, &acme.key, &[json!({"phone": SAN_FRANCISCO, "category": "offers"}).to_string()]).await;
    assert_eq!(batch[0]["reasons"][0]["code"], "opt_in_pending_confirmation", "{batch:?}");

    let reply = json!({"phone": SAN_FRANCISCO, "method": "whatsapp_thread", "evidence": {"message_id": "wamid.YES1"}});
    let confirmed = expect_json(confirm(&app, &acme.key, &reply).await, StatusCode::CREATED).await;
    assert_eq!(outcomes(&confirmed), [pair("offers", "applied")]);
    assert!(app.decide(&acme.key, SAN_FRANCISCO, "offers").await.0, "confirmed consent allows the send");
    expect_problem(confirm(&app, &acme.key, &reply).await, StatusCode::CONFLICT, "nothing_to_confirm").await;

    // Asking again never downgrades a confirmed category; a newly requested one needs its own confirmation.
    let mut again = web_form_opt_in(SAN_FRANCISCO, &["offers", "order_updates"], &notice);
    again["double_opt_in"] = json!(true);
    let recorded = expect_json(app.post_opt_in(&acme.key, &again).await, StatusCode::CREATED).await;
    assert_eq!(
        outcomes(&recorded),
        [pair("offers", "already_opted_in"), pair("order_updates", "awaiting_confirmation")]
    );
    assert!(app.decide(&acme.key, SAN_FRANCISCO, "offers").await.0);
    assert_eq!(decision_codes(&app, &acme.key, SAN_FRANCISCO, "order_updates").await, ["opt_in_pending_confirmation"]);
    // Confirming one named category leaves nothing else changed; an opt-out cancels a pending one.
    let named = json!({"phone": SAN_FRANCISCO, "categories": ["offers"], "method": "web_form"});
    expect_problem(confirm(&app, &acme.key, &named).await, StatusCode::CONFLICT, "nothing_to_confirm").await;
    let out = json!({"phone": SAN_FRANCISCO, "categories": ["order_updates"], "source": "sms", "recorded_by": "test"});
    expect_json(app.post_opt_out(&acme.key, &out).await, StatusCode::CREATED).await;
    assert_eq!(decision_codes(&app, &acme.key, SAN_FRANCISCO, "order_updates").await, ["opted_out"]);

    // Every step is in the ledger, which still verifies.
    let events = expect_json(app.get_contact_events(&acme.key, SAN_FRANCISCO).await, StatusCode::OK).await;
    let kinds: Vec<String> = events["events"].as_array().unwrap().iter().map(|e| text(&e["event"]["kind"])).collect();
    assert_eq!(kinds, ["opt_in", "confirmation", "opt_in", "opt_out"]);
    assert_eq!(events["events"][0]["event"]["needs_confirmation"], true);
    assert_eq!(events["events"][1]["event"]["evidence"]["message_id"], "wamid.YES1");
    let report = app.verify_ledger(&acme.key).await;
    assert_eq!((report["intact"].as_bool(), report["verified_events"].as_u64()), (Some(true), Some(4)), "{report}");
}

async fn a_pending_opt_in_cannot_be_confirmed_after_its_deadline(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    let now = jiff::Timestamp::now();
    let hours_ago = |hours: i64| (now - jiff::SignedDuration::from_hours(hours)).to_string();
    let mut body = web_form_opt_in(SAN_FRANCISCO, &["offers"], &notice);
    body["double_opt_in"] = json!(true);
    body["collected_at"] = json!(hours_ago(3));
    for bad in [json!("tomorrow"), json!(hours_ago(4)), json!(12)] {
        body["evidence"]["confirmation_deadline"] = bad;
        let response = app.post_opt_in(&acme.key, &body).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_confirmation_deadline").await;
    }
    body["evidence"]["confirmation_deadline"] = json!(hours_ago(1));
    expect_json(app.post_opt_in(&acme.key, &body).await, StatusCode::CREATED).await;
    let reply = json!({"phone": SAN_FRANCISCO, "method": "whatsapp_thread", "evidence": {"message_id": "wamid.LATE"}});
    expect_problem(confirm(&app, &acme.key, &reply).await, StatusCode::CONFLICT, "confirmation_expired").await;
    assert_eq!(decision_codes(&app, &acme.key, SAN_FRANCISCO, "offers").await, ["opt_in_pending_confirmation"]);
    // A new opt-in starts a new wait.
    body["collected_at"] = json!(now.to_string());
    body["evidence"]["confirmation_deadline"] = json!((now + jiff::SignedDuration::from_hours(1)).to_string());
    expect_json(app.post_opt_in(&acme.key, &body).await, StatusCode::CREATED).await;
    expect_json(confirm(&app, &acme.key, &reply).await, StatusCode::CREATED).await;
    assert!(app.decide(&acme.key, SAN_FRANCISCO, "offers").await.0);
}

async fn the_jurisdiction_makes_opt_ins_pending_unless_they_came_from_the_number(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    // Germany expects double opt-in (shipped rules): a web form opt-in waits for confirmation...
    let web = expect_json(
        app.post_opt_in(&acme.key, &web_form_opt_in(BERLIN, &["offers"], &notice)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(outcomes(&web), [pair("offers", "awaiting_confirmation")]);
    assert_eq!(decision_codes(&app, &acme.key, BERLIN, "offers").await, ["opt_in_pending_confirmation"]);
    // ...an SMS from the number itself is the confirmation already.
    let sms = json!({"phone": BERLIN, "categories": ["order_updates"], "method": "sms", "notice_id": notice,
        "evidence": {"message_id": "SM1", "from": BERLIN}});
    let recorded = expect_json(app.post_opt_in(&acme.key, &sms).await, StatusCode::CREATED).await;
    assert_eq!(outcomes(&recorded), [pair("order_updates", "applied")]);
    assert!(app.decide(&acme.key, BERLIN, "order_updates").await.0);
    // A US number needs none; a business that turns the rule off gets none in Germany either.
    let us = expect_json(
        app.post_opt_in(&acme.key, &web_form_opt_in(SAN_FRANCISCO, &["offers"], &notice)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(outcomes(&us), [pair("offers", "applied")]);
    let rules = "[country.US]\nquiet_hours = false\n[country.DE]\ndouble_opt_in = false\n";
    let put = app.as_business(Method::PUT, "/v1/jurisdiction-policy", &acme.key).json(&json!({"rules": rules}));
    expect_json(put.send().await.unwrap(), StatusCode::OK).await;
    let other = "+4915112345679";
    let recorded = expect_json(
        app.post_opt_in(&acme.key, &web_form_opt_in(other, &["offers"], &notice)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(outcomes(&recorded), [pair("offers", "applied")]);
}

fn days_ago(days: i64) -> Timestamp {
    Timestamp::now().checked_sub(SignedDuration::from_hours(24 * days)).unwrap()
}

async fn implied_consent_lapses_after_its_lifetime_where_the_recipient_is(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    let implied = |phone: &str, basis: &str, days: i64| {
        let mut body = web_form_opt_in(phone, &["offers"], &notice);
        body["basis"] = json!(basis);
        body["collected_at"] = json!(days_ago(days).to_string());
        body
    };
    let inquiry_toronto = "+14165550001";
    for (phone, basis, days) in [
        (inquiry_toronto, "implied_inquiry", 200),
        (TORONTO, "implied_purchase", 200),
        (SAN_FRANCISCO, "implied_inquiry", 200),
    ] {
        expect_json(app.post_opt_in(&acme.key, &implied(phone, basis, days)).await, StatusCode::CREATED).await;
    }
    // Canada: 6 months after an inquiry the consent has lapsed; 2 years after a purchase it has not.
    assert_eq!(decision_codes(&app, &acme.key, inquiry_toronto, "offers").await, ["consent_expired"]);
    assert!(app.decide(&acme.key, TORONTO, "offers").await.0);
    // The US rules set no lifetime.
    assert!(app.decide(&acme.key, SAN_FRANCISCO, "offers").await.0);
    // Asked for a time when it was still valid, it was allowed.
    let earlier = json!({"phone": inquiry_toronto, "category": "offers", "at": days_ago(100).to_string()});
    assert_eq!(expect_json(app.post_decision(&acme.key, &earlier).await, StatusCode::OK).await["allowed"], true);
    let lines: Vec<String> =
        [inquiry_toronto, TORONTO].iter().map(|p| json!({"phone": p, "category": "offers"}).to_string()).collect();
    let batch = decide_lines(&app, &acme.key, &lines).await;
    assert_eq!(
        (batch[0]["reasons"][0]["code"].as_str(), batch[1]["allowed"].as_bool()),
        (Some("consent_expired"), Some(true))
    );
    // The contact shows the basis; a new express opt-in replaces nothing (already opted in) but a
    // business rule giving express consent a lifetime applies to it too.
    let contact = expect_json(app.get_contact(&acme.key, TORONTO, None).await, StatusCode::OK).await;
    let offers = contact["categories"].as_array().unwrap().iter().find(|c| c["category"] == "offers").unwrap().clone();
    assert_eq!(offers["basis"], "implied_purchase");
    let rules = "[country.US]\nquiet_hours = false\n[country.CA.consent_lifetime]\nimplied_purchase = \"P3M\"\n";
    let put = app.as_business(Method::PUT, "/v1/jurisdiction-policy", &acme.key).json(&json!({"rules": rules}));
    expect_json(put.send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(decision_codes(&app, &acme.key, TORONTO, "offers").await, ["consent_expired"]);
    // A purchase 10 days ago, recorded as the basis of a new opt-in after an opt-out, is valid again.
    let out = json!({"phone": TORONTO, "source": "api", "recorded_by": "test"});
    expect_json(app.post_opt_out(&acme.key, &out).await, StatusCode::CREATED).await;
    let mut fresh = implied(TORONTO, "implied_purchase", 0);
    fresh["basis_at"] = json!(days_ago(10).to_string());
    expect_json(app.post_opt_in(&acme.key, &fresh).await, StatusCode::CREATED).await;
    assert!(app.decide(&acme.key, TORONTO, "offers").await.0);
}

async fn consent_terms_are_checked(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    let with = |field: &str, value: Value| {
        let mut body = web_form_opt_in(SAN_FRANCISCO, &["offers"], &notice);
        body[field] = value;
        body
    };
    let bad_basis = app.post_opt_in(&acme.key, &with("basis", json!("maybe"))).await;
    expect_problem(bad_basis, StatusCode::UNPROCESSABLE_ENTITY, "unknown_basis").await;
    let express_at = app.post_opt_in(&acme.key, &with("basis_at", json!("2026-01-01T00:00:00Z"))).await;
    expect_problem(express_at, StatusCode::UNPROCESSABLE_ENTITY, "basis_at_not_allowed").await;
    let mut future = with("basis", json!("implied_purchase"));
    future["basis_at"] = json!(Timestamp::now().checked_add(SignedDuration::from_hours(48)).unwrap().to_string());
    let after = app.post_opt_in(&acme.key, &future).await;
    expect_problem(after, StatusCode::UNPROCESSABLE_ENTITY, "basis_at_after_collection").await;
    let not_bool = app.post_opt_in(&acme.key, &with("double_opt_in", json!("yes"))).await;
    assert_eq!(not_bool.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = json!({"phone": SAN_FRANCISCO, "categories": ["nope"], "method": "sms"});
    expect_problem(confirm(&app, &acme.key, &unknown).await, StatusCode::UNPROCESSABLE_ENTITY, "unknown_category")
        .await;
    let bad_method = json!({"phone": SAN_FRANCISCO, "method": "telepathy"});
    expect_problem(confirm(&app, &acme.key, &bad_method).await, StatusCode::UNPROCESSABLE_ENTITY, "unknown_method")
        .await;
    // Nothing was recorded by the refusals.
    let events = expect_json(app.get_contact_events(&acme.key, SAN_FRANCISCO).await, StatusCode::OK).await;
    assert_eq!(events["events"], json!([]));
}
