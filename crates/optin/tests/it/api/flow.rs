//! The main story: capture, gate, proof.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    NOTICE_TEXT, PHONE, TestApp, expect_json, expect_problem, on_both_backends, problem_codes, text, web_form_opt_in,
};

on_both_backends!(
    opt_in_allows_then_opt_out_refuses_and_the_ledger_proves_both,
    a_contact_without_events_has_every_category_at_none,
    opting_out_without_categories_covers_every_category,
    a_notice_missing_the_name_and_the_opt_in_statement_is_refused_with_both_codes,
    notices_get_versions_and_warnings,
    an_opt_in_collected_in_the_past_keeps_its_time_and_one_in_the_future_is_refused,
);

async fn opt_in_allows_then_opt_out_refuses_and_the_ledger_proves_both(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    assert_eq!(app.decide(&acme.key, PHONE, "offers").await, (false, vec!["no_opt_in".to_owned()]));

    let opt_in = web_form_opt_in("(415) 555-2671", &["order_updates", "offers"], &notice_id);
    let recorded = expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;
    assert_eq!(recorded["phone"], PHONE);
    assert_eq!(recorded["chain_index"], 1);
    assert_eq!(
        recorded["categories"],
        json!([{"category": "order_updates", "outcome": "applied"}, {"category": "offers", "outcome": "applied"}])
    );
    assert_eq!(app.decide(&acme.key, PHONE, "offers").await, (true, vec![]));

    let opt_out = json!({"phone": PHONE, "categories": ["offers"], "source": "agent", "recorded_by": "agent 7",
        "evidence": {"ticket": "T-1"}});
    let recorded = expect_json(app.post_opt_out(&acme.key, &opt_out).await, StatusCode::CREATED).await;
    assert_eq!(recorded["chain_index"], 2);
    assert_eq!(app.decide(&acme.key, PHONE, "offers").await, (false, vec!["opted_out".to_owned()]));
    assert_eq!(app.decide(&acme.key, PHONE, "order_updates").await, (true, vec![]));

    let contact = expect_json(app.get_contact(&acme.key, PHONE, None).await, StatusCode::OK).await;
    assert_eq!(contact["phone"], PHONE);
    let categories = contact["categories"].as_array().unwrap();
    assert_eq!(categories.len(), 2);
    assert_eq!(categories[0]["category"], "order_updates");
    assert_eq!(categories[0]["template_category"], "utility");
    assert_eq!(categories[0]["status"], "opted_in");
    assert_eq!(categories[0]["method"], "web_form");
    assert_eq!(categories[0]["notice_id"], notice_id.as_str());
    assert_eq!(categories[1]["category"], "offers");
    assert_eq!(categories[1]["status"], "opted_out");
    assert!(categories[1]["since"].is_string() && categories[1]["event_id"].is_string());

    let events = expect_json(app.get_contact_events(&acme.key, PHONE).await, StatusCode::OK).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["chain_index"], 1);
    assert_eq!(text(&events[0]["hash"]).len(), 64);
    let first = &events[0]["event"];
    assert_eq!(first["kind"], "opt_in");
    assert_eq!(first["phone"], PHONE);
    assert_eq!(first["method"], "web_form");
    assert_eq!(first["notice"]["id"], notice_id.as_str());
    assert_eq!(first["evidence"]["page_url"], "https://acme.example/join");
    assert_eq!(first["evidence"]["ip"], "203.0.113.9");
    assert_eq!(events[1]["event"]["kind"], "opt_out");
    assert_eq!(events[1]["event"]["recorded_by"], "agent 7");
    assert_eq!(events[1]["event"]["evidence"]["ticket"], "T-1");

    let report = app.verify_ledger(&acme.key).await;
    assert_eq!(report["intact"], true);
    assert_eq!(report["verified_events"], 2);
    assert_eq!(report["head"]["index"], 2);
    assert_eq!(report["head"]["hash"], events[1]["hash"]);
    assert!(report["first_break"].is_null());
}

async fn a_contact_without_events_has_every_category_at_none(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let contact = expect_json(app.get_contact(&acme.key, "415 555 2671", Some("US")).await, StatusCode::OK).await;
    assert_eq!(contact["phone"], PHONE);
    for category in contact["categories"].as_array().unwrap() {
        assert_eq!(category["status"], "none");
        assert!(category["since"].is_null() && category["event_id"].is_null() && category["method"].is_null());
    }
    let unencoded = app.as_business(Method::GET, "/v1/contacts/+14155552671", &acme.key).send().await.unwrap();
    assert_eq!(expect_json(unencoded, StatusCode::OK).await, contact);
    let events = expect_json(app.get_contact_events(&acme.key, PHONE).await, StatusCode::OK).await;
    assert_eq!(events["events"], json!([]));
    let report = app.verify_ledger(&acme.key).await;
    assert_eq!(report, json!({"intact": true, "verified_events": 0, "head": null, "first_break": null}));
}

async fn opting_out_without_categories_covers_every_category(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let opt_in = web_form_opt_in(PHONE, &["order_updates", "offers"], &notice_id);
    expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;

    let opt_out = json!({"phone": "+1 415 555 2671", "source": "keyword", "recorded_by": "inbound sms"});
    let recorded = expect_json(app.post_opt_out(&acme.key, &opt_out).await, StatusCode::CREATED).await;
    assert_eq!(recorded["categories"].as_array().unwrap().len(), 2);
    for category in ["order_updates", "offers"] {
        assert_eq!(app.decide(&acme.key, PHONE, category).await, (false, vec!["opted_out".to_owned()]));
    }
    let again = expect_json(app.post_opt_out(&acme.key, &opt_out).await, StatusCode::CREATED).await;
    assert_eq!(again["categories"][0]["outcome"], "already_opted_out");
}

async fn a_notice_missing_the_name_and_the_opt_in_statement_is_refused_with_both_codes(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let response = app.post_notice(&acme.key, "Great deals every week on WhatsApp!", "en").await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "notice_missing_business_name").await;
    assert_eq!(problem_codes(&problem)[1..], ["notice_missing_business_name", "notice_missing_opt_in_statement"]);

    let response = app.post_notice(&acme.key, "I agree to receive messages on WhatsApp.", "en").await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "notice_missing_business_name").await;
    assert!(problem.get("errors").is_none(), "a single problem has no list: {problem}");

    let notices = app.as_business(Method::GET, "/v1/notices", &acme.key).send().await.unwrap();
    assert_eq!(expect_json(notices, StatusCode::OK).await["notices"], json!([]));
}

async fn notices_get_versions_and_warnings(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let first = expect_json(app.post_notice(&acme.key, NOTICE_TEXT, "en").await, StatusCode::CREATED).await;
    assert_eq!(first["version"], 1);
    assert_eq!(first["text"], NOTICE_TEXT);
    assert_eq!(first["language"], "en");
    assert_eq!(text(&first["text_sha256"]).len(), 64);
    assert_eq!(first["warnings"], json!([]));

    let bare = "I agree to receive messages from Acme Shoes.";
    let second = expect_json(app.post_notice(&acme.key, bare, "en").await, StatusCode::CREATED).await;
    assert_eq!(second["version"], 2);
    let warnings: Vec<String> = second["warnings"].as_array().unwrap().iter().map(|w| text(&w["code"])).collect();
    assert_eq!(warnings, ["notice_missing_whatsapp", "notice_missing_opt_out_instructions"]);

    let path = format!("/v1/notices/{}", text(&second["id"]));
    let fetched = app.as_business(Method::GET, &path, &acme.key).send().await.unwrap();
    assert_eq!(expect_json(fetched, StatusCode::OK).await, second);
    let listed = app.as_business(Method::GET, "/v1/notices", &acme.key).send().await.unwrap();
    assert_eq!(expect_json(listed, StatusCode::OK).await["notices"], json!([first, second]));

    for missing in ["/v1/notices/not-a-uuid", "/v1/notices/00000000-0000-4000-8000-000000000000"] {
        let response = app.as_business(Method::GET, missing, &acme.key).send().await.unwrap();
        expect_problem(response, StatusCode::NOT_FOUND, "notice_not_found").await;
    }
    let response = app.post_notice(&acme.key, NOTICE_TEXT, "not a language").await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_language").await;
}

async fn an_opt_in_collected_in_the_past_keeps_its_time_and_one_in_the_future_is_refused(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let mut opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);

    opt_in["collected_at"] = json!("2999-01-01T00:00:00Z");
    let response = app.post_opt_in(&acme.key, &opt_in).await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "collected_at_in_future").await;

    opt_in["collected_at"] = json!("yesterday");
    let response = app.post_opt_in(&acme.key, &opt_in).await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert!(text(&problem["detail"]).starts_with("collected_at"), "{problem}");

    opt_in["collected_at"] = json!("2024-03-01T09:30:00+01:00");
    expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;
    let contact = expect_json(app.get_contact(&acme.key, PHONE, None).await, StatusCode::OK).await;
    assert_eq!(contact["categories"][1]["since"], "2024-03-01T08:30:00Z");
}
