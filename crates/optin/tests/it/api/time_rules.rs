//! Jurisdiction rules in decisions: quiet hours in the recipient's local time (at a given `at`,
//! across a DST change), business overrides, batch decisions, and the messaging limit.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, on_both_backends, text, web_form_opt_in};

on_both_backends!(
    quiet_hours_follow_the_recipients_zone_and_daylight_saving,
    a_business_policy_adds_rules_and_is_checked,
    batch_decisions_apply_quiet_hours_at_the_scheduled_time,
    batch_reservations_stop_at_the_messaging_limit_across_servers,
);

const MIAMI: &str = "+13055551234";
const SAN_FRANCISCO: &str = "+14155552671";
const BERLIN: &str = "+4915112345678";

async fn decide_at(app: &TestApp, key: &str, phone: &str, category: &str, at: &str) -> Value {
    let body = json!({"phone": phone, "category": category, "at": at});
    expect_json(app.post_decision(key, &body).await, StatusCode::OK).await
}

fn codes(decision: &Value) -> Vec<String> {
    decision["reasons"].as_array().unwrap().iter().map(|r| text(&r["code"])).collect()
}

async fn opted_in_business(app: &TestApp) -> crate::helpers::TestBusiness {
    let acme = app.create_business_with_shipped_rules("Acme Shoes").await;
    let notice = app.register_notice(&acme.key).await;
    for phone in [MIAMI, SAN_FRANCISCO, BERLIN] {
        let body = web_form_opt_in(phone, &["offers", "order_updates"], &notice);
        expect_json(app.post_opt_in(&acme.key, &body).await, StatusCode::CREATED).await;
    }
    // Germany expects double opt-in: the Berlin number confirms.
    let confirmation = json!({"phone": BERLIN, "method": "web_form", "evidence": {"ip": "203.0.113.9"}});
    let confirmed = app.as_business(Method::POST, "/v1/confirmations", &acme.key).json(&confirmation).send();
    expect_json(confirmed.await.unwrap(), StatusCode::CREATED).await;
    acme
}

async fn quiet_hours_follow_the_recipients_zone_and_daylight_saving(app: TestApp) {
    let acme = opted_in_business(&app).await;
    let key = &acme.key;
    // 07:30 in Miami the day before the US switches to daylight time (EST, UTC-5).
    let before = decide_at(&app, key, MIAMI, "offers", "2026-03-07T12:30:00Z").await;
    assert_eq!(codes(&before), ["quiet_hours"]);
    assert_eq!(before["reasons"][0]["retry_after"], "2026-03-07T13:00:00Z", "08:00 EST");
    // 07:30 the day of the switch (EDT, UTC-4): 08:00 is an hour earlier in UTC.
    let after = decide_at(&app, key, MIAMI, "offers", "2026-03-08T11:30:00Z").await;
    assert_eq!(after["reasons"][0]["retry_after"], "2026-03-08T12:00:00Z", "08:00 EDT");
    // Florida's window ends at 20:00; the federal one at 21:00 (San Francisco, PDT).
    let evening = decide_at(&app, key, MIAMI, "offers", "2026-06-11T00:30:00Z").await;
    assert_eq!(codes(&evening), ["quiet_hours"], "20:30 in Miami");
    assert_eq!(evening["reasons"][0]["retry_after"], "2026-06-11T12:00:00Z");
    let california = decide_at(&app, key, SAN_FRANCISCO, "offers", "2026-06-11T03:30:00Z").await;
    assert_eq!(california["allowed"], true, "20:30 in San Francisco is inside the federal window");
    let late = decide_at(&app, key, SAN_FRANCISCO, "offers", "2026-06-11T04:30:00Z").await;
    assert_eq!(late["reasons"][0]["retry_after"], "2026-06-11T15:00:00Z", "08:00 PDT");
    // Daytime, utility messages, and countries without a window are allowed.
    assert_eq!(decide_at(&app, key, MIAMI, "offers", "2026-06-10T15:00:00Z").await["allowed"], true);
    assert_eq!(decide_at(&app, key, MIAMI, "order_updates", "2026-06-11T03:00:00Z").await["allowed"], true);
    assert_eq!(decide_at(&app, key, BERLIN, "offers", "2026-06-11T01:00:00Z").await["allowed"], true);
    // Without `at`, now; a bad `at` is refused.
    let bad = app.post_decision(key, &json!({"phone": MIAMI, "category": "offers", "at": "tomorrow"})).await;
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_time").await;
}

async fn a_business_policy_adds_rules_and_is_checked(app: TestApp) {
    let acme = opted_in_business(&app).await;
    let put = |body: Value| app.as_business(Method::PUT, "/v1/jurisdiction-policy", &acme.key).json(&body).send();
    let bad =
        put(json!({"rules": "[country.DE]\nquiet_hours = { start = \"25:00\", end = \"20:00\" }\n"})).await.unwrap();
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid_time").await;
    assert!(text(&problem["detail"]).contains("country.DE.quiet_hours.start"), "{problem}");
    let unknown_zone = put(json!({"rules": "", "default_time_zone": "Mars/Olympus"})).await.unwrap();
    expect_problem(unknown_zone, StatusCode::UNPROCESSABLE_ENTITY, "unknown_time_zone").await;

    let rules = "[country.DE]\nquiet_hours = { start = \"09:00\", end = \"20:00\", days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\"] }\n";
    let set = expect_json(put(json!({"rules": rules})).await.unwrap(), StatusCode::OK).await;
    assert!(text(&set["shipped_rules"]).contains("[region.US-FL]"));
    // 03:00 in Berlin (CEST) on a Wednesday, then 10:00 on a Sunday.
    let night = decide_at(&app, &acme.key, BERLIN, "offers", "2026-06-10T01:00:00Z").await;
    assert_eq!(night["reasons"][0]["retry_after"], "2026-06-10T07:00:00Z");
    let sunday = decide_at(&app, &acme.key, BERLIN, "offers", "2026-06-14T08:00:00Z").await;
    assert_eq!(sunday["reasons"][0]["retry_after"], "2026-06-15T07:00:00Z", "Monday 09:00");
    let policy = expect_json(
        app.as_business(Method::GET, "/v1/jurisdiction-policy", &acme.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(policy["rules"], rules);
}

async fn batch_decisions_apply_quiet_hours_at_the_scheduled_time(app: TestApp) {
    let acme = opted_in_business(&app).await;
    let lines = [MIAMI, SAN_FRANCISCO, BERLIN].map(|phone| json!({"phone": phone, "category": "offers"}).to_string());
    let body = lines.join("\n") + "\n";
    let batch = |at: &'static str| {
        app.as_business(Method::POST, &format!("/v1/decisions/batch?at={at}"), &acme.key)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
    };
    // 20:30 in Miami, 17:30 in San Francisco, 02:30 in Berlin.
    let answers = batch("2026-06-11T00:30:00Z").await.unwrap().text().await.unwrap();
    let answers: Vec<Value> = answers.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(codes(&answers[0]), ["quiet_hours"]);
    assert_eq!(answers[0]["reasons"][0]["retry_after"], "2026-06-11T12:00:00Z");
    assert_eq!(answers[1]["allowed"], true);
    assert_eq!(answers[2]["allowed"], true);
    let bad = batch("soon").await.unwrap();
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_time").await;
}

async fn batch_reservations_stop_at_the_messaging_limit_across_servers(app: TestApp) {
    let acme = opted_in_business(&app).await;
    let limit = app.as_business(Method::PUT, "/v1/messaging-limit", &acme.key).json(&json!({"limit": 2})).send();
    expect_json(limit.await.unwrap(), StatusCode::OK).await;
    let reserve = |app: &TestApp, phones: &[&str]| {
        let body: String =
            phones.iter().map(|p| json!({"phone": p, "category": "order_updates"}).to_string() + "\n").collect();
        app.as_business(Method::POST, "/v1/decisions/batch?reserve=true", &acme.key)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let first = reserve(&app, &[MIAMI, SAN_FRANCISCO]).await.unwrap().text().await.unwrap();
    assert!(first.lines().all(|l| l.contains("\"allowed\":true")), "{first}");
    // Another server on the same database: the count is the database's, exact.
    let second_server = app.second_server().await;
    let second = reserve(&second_server, &[BERLIN, MIAMI]).await.unwrap().text().await.unwrap();
    let second: Vec<Value> = second.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(codes(&second[0]), ["tier_cap_reached"], "a third unique recipient");
    assert_eq!(second[1]["allowed"], true, "a recipient already counted in the window");
    let status = expect_json(
        app.as_business(Method::GET, "/v1/messaging-limit", &acme.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(status["recipients_last_24h"], 2);
}
