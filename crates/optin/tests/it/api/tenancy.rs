//! Tenants, keys and the operator: who may see and do what.

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR_TOKEN, PHONE, TestApp, expect_json, expect_problem, on_both_backends, text, web_form_opt_in,
};

on_both_backends!(
    requests_without_a_valid_key_are_unauthorized,
    a_revoked_key_stops_authenticating_at_once,
    another_business_sees_a_contact_as_unknown_and_never_gets_403,
    operator_endpoints_need_the_operator_token,
    the_operator_creates_businesses_and_adds_categories,
    brand_names_let_a_notice_name_the_business,
);

async fn requests_without_a_valid_key_are_unauthorized(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let attempts = [
        app.request(Method::GET, "/v1/business", None),
        app.request(Method::GET, "/v1/business", Some("optin_sk_0000")),
        app.request(Method::GET, "/v1/business", Some(OPERATOR_TOKEN)),
        app.request(Method::GET, "/v1/business", None).header("Authorization", format!("Basic {}", acme.key)),
        app.request(Method::GET, "/v1/business", None).header("Authorization", acme.key.clone()),
        app.request(Method::POST, "/v1/decisions", None).json(&json!({"phone": PHONE, "category": "offers"})),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        expect_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let me = app.as_business(Method::GET, "/v1/business", &acme.key).send().await.unwrap();
    let me = expect_json(me, StatusCode::OK).await;
    assert_eq!(me["id"], acme.id.as_str());
    assert_eq!(me["name"], "Acme Shoes");
    assert!(me.get("api_key").is_none());
}

async fn a_revoked_key_stops_authenticating_at_once(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let keys_path = format!("/v1/businesses/{}/keys", acme.id);
    let issued = app.operator(Method::POST, &keys_path).json(&json!({"label": "ci"})).send().await.unwrap();
    let issued = expect_json(issued, StatusCode::CREATED).await;
    assert_eq!(issued["label"], "ci");
    let second_key = text(&issued["secret"]);
    assert!(second_key.starts_with("optin_sk_"));
    assert!(!app.decide(&second_key, PHONE, "offers").await.0, "the new key works");

    let revoke_path = format!("{keys_path}/{}", text(&issued["id"]));
    let revoked = app.operator(Method::DELETE, &revoke_path).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let response = app.as_business(Method::GET, "/v1/business", &second_key).send().await.unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(!app.decide(&acme.key, PHONE, "offers").await.0, "the first key still works");

    let again = app.operator(Method::DELETE, &revoke_path).send().await.unwrap();
    expect_problem(again, StatusCode::NOT_FOUND, "key_not_found").await;
    let garbage = app.operator(Method::DELETE, &format!("{keys_path}/not-a-key")).send().await.unwrap();
    expect_problem(garbage, StatusCode::NOT_FOUND, "key_not_found").await;

    let listed = expect_json(app.operator(Method::GET, &keys_path).send().await.unwrap(), StatusCode::OK).await;
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.get("secret").is_none() && k.get("secret_hash").is_none()));
    let revoked = keys.iter().find(|k| k["id"] == issued["id"]).unwrap();
    assert!(revoked["revoked_at"].is_string());
    let blank = app.operator(Method::POST, &keys_path).json(&json!({"label": "  "})).send().await.unwrap();
    expect_problem(blank, StatusCode::UNPROCESSABLE_ENTITY, "invalid_label").await;
}

async fn another_business_sees_a_contact_as_unknown_and_never_gets_403(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let globex = app.create_business("Globex").await;
    let acme_notice = app.register_notice(&acme.key).await;
    let opt_in = web_form_opt_in(PHONE, &["offers"], &acme_notice);
    expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;

    let seen_by_globex = expect_json(app.get_contact(&globex.key, PHONE, None).await, StatusCode::OK).await;
    let never_seen = expect_json(app.get_contact(&globex.key, "+14155550199", None).await, StatusCode::OK).await;
    assert_eq!(seen_by_globex["categories"], never_seen["categories"]);
    assert!(seen_by_globex["categories"].as_array().unwrap().iter().all(|c| c["status"] == "none"));
    let events = expect_json(app.get_contact_events(&globex.key, PHONE).await, StatusCode::OK).await;
    assert_eq!(events["events"], json!([]));
    assert_eq!(app.decide(&globex.key, PHONE, "offers").await, (false, vec!["no_opt_in".to_owned()]));
    assert_eq!(app.verify_ledger(&globex.key).await["verified_events"], 0);

    let path = format!("/v1/notices/{acme_notice}");
    let response = app.as_business(Method::GET, &path, &globex.key).send().await.unwrap();
    expect_problem(response, StatusCode::NOT_FOUND, "notice_not_found").await;
    let borrowed_notice = web_form_opt_in(PHONE, &["offers"], &acme_notice);
    let response = app.post_opt_in(&globex.key, &borrowed_notice).await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "unknown_notice").await;
    assert_eq!(app.decide(&acme.key, PHONE, "offers").await, (true, vec![]), "acme's consent is untouched");
}

async fn operator_endpoints_need_the_operator_token(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let response = app.request(Method::GET, "/v1/businesses", None).send().await.unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = app.request(Method::GET, "/v1/businesses", Some("optin_op_wrong")).send().await.unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = app.request(Method::GET, "/v1/businesses", Some(&acme.key)).send().await.unwrap();
    expect_problem(response, StatusCode::FORBIDDEN, "operator_only").await;
    let path = format!("/v1/businesses/{}/keys", acme.id);
    let response = app.request(Method::POST, &path, Some(&acme.key)).json(&json!({"label": "x"})).send().await.unwrap();
    expect_problem(response, StatusCode::FORBIDDEN, "operator_only").await;
}

async fn the_operator_creates_businesses_and_adds_categories(app: TestApp) {
    let body = json!({"name": "Acme Shoes", "categories": [
        {"name": "order_updates", "template_category": "utility"},
        {"name": "offers", "template_category": "marketing"}]});
    let created = expect_json(app.post_business(body).await, StatusCode::CREATED).await;
    assert_eq!(created["brand_names"], json!([]));
    assert_eq!(created["categories"][1], json!({"name": "offers", "template_category": "marketing", "slot": 1}));
    assert_eq!(created["api_key"]["label"], "default");
    assert!(text(&created["api_key"]["secret"]).starts_with("optin_sk_"));
    let id = text(&created["id"]);

    let listed = expect_json(app.operator(Method::GET, "/v1/businesses").send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(listed["businesses"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("optin_sk_"), "no secret in listings");

    let path = format!("/v1/businesses/{id}/categories");
    let add = |categories: Value| app.operator(Method::POST, &path).json(&json!({"categories": categories})).send();
    let updated =
        expect_json(add(json!([{"name": "tips", "template_category": "marketing"}])).await.unwrap(), StatusCode::OK)
            .await;
    assert_eq!(updated["categories"][2]["slot"], 2);
    let duplicate = add(json!([{"name": "offers", "template_category": "marketing"}])).await.unwrap();
    expect_problem(duplicate, StatusCode::CONFLICT, "duplicate_category").await;
    let too_many: Vec<Value> =
        (0..62).map(|i| json!({"name": format!("c{i}"), "template_category": "utility"})).collect();
    expect_problem(add(json!(too_many)).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "too_many_categories").await;
    let bad = add(json!([{"name": "Bad Name", "template_category": "spam"}])).await.unwrap();
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_category_name").await;
    assert_eq!(problem["errors"][1]["code"], "invalid_template_category");

    for unknown in ["00000000-0000-4000-8000-000000000000", "nope"] {
        let path = format!("/v1/businesses/{unknown}/categories");
        let body = json!({"categories": [{"name": "x", "template_category": "utility"}]});
        let response = app.operator(Method::POST, &path).json(&body).send().await.unwrap();
        expect_problem(response, StatusCode::NOT_FOUND, "business_not_found").await;
    }
    let nameless = json!({"name": "  ", "categories": []});
    expect_problem(app.post_business(nameless).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;
}

async fn brand_names_let_a_notice_name_the_business(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice = "I agree to receive offers from ACME on WhatsApp. Reply STOP to opt out.";
    let refused = app.post_notice(&acme.key, notice, "en").await;
    expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "notice_missing_business_name").await;

    let set = |names: Value| {
        app.as_business(Method::PUT, "/v1/business/brand-names", &acme.key).json(&json!({"brand_names": names})).send()
    };
    let updated = expect_json(set(json!(["Acme"])).await.unwrap(), StatusCode::OK).await;
    assert_eq!(updated["brand_names"], json!(["Acme"]));
    expect_json(app.post_notice(&acme.key, notice, "en").await, StatusCode::CREATED).await;
    let too_many: Vec<String> = (0..21).map(|i| format!("Brand {i}")).collect();
    expect_problem(set(json!(too_many)).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "too_many_brand_names").await;
    expect_problem(set(json!([""])).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;
}
