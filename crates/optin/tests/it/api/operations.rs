//! What operators and their tools rely on: health, readiness, OpenAPI, metrics, problems for
//! unknown routes and methods, request ids.

use reqwest::header::{ALLOW, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    Backend, PHONE, TestApp, expect_json, expect_problem, on_both_backends, spawn_app, spawn_app_with_timeout,
};

on_both_backends!(
    health_and_readiness_answer_ok,
    the_openapi_document_lists_every_path,
    metrics_count_requests_by_route_template_and_decisions_by_outcome,
    unknown_routes_and_methods_are_problems,
    every_response_carries_a_request_id,
);

async fn health_and_readiness_answer_ok(app: TestApp) {
    assert_eq!(expect_json(app.get("/healthz").await, StatusCode::OK).await, json!({"status": "ok"}));
    assert_eq!(expect_json(app.get("/readyz").await, StatusCode::OK).await, json!({"status": "ok"}));
}

async fn the_openapi_document_lists_every_path(app: TestApp) {
    let document = expect_json(app.get("/openapi.json").await, StatusCode::OK).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = [
        "/v1/businesses",
        "/v1/businesses/{business_id}/categories",
        "/v1/businesses/{business_id}/keys",
        "/v1/businesses/{business_id}/keys/{key_id}",
        "/v1/business",
        "/v1/business/brand-names",
        "/v1/notices",
        "/v1/notices/{notice_id}",
        "/v1/opt-ins",
        "/v1/opt-outs",
        "/v1/decisions",
        "/v1/contacts/{phone}",
        "/v1/contacts/{phone}/events",
        "/v1/ledger/verify",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/senders",
        "/v1/webhook-settings",
        "/v1/whatsapp-policy",
        "/webhooks/whatsapp/{business_id}",
        "/v1/templates",
        "/v1/templates/{name}/{language}",
        "/v1/signals",
        "/v1/inbox",
        "/v1/inbox/{delivery_id}",
        "/v1/inbox/{delivery_id}/replay",
    ];
    for path in paths {
        assert!(document["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert_eq!(document["components"]["securitySchemes"]["business_key"], json!({"type": "http", "scheme": "bearer"}));
    let opt_in = &document["paths"]["/v1/opt-ins"]["post"];
    assert_eq!(opt_in["security"], json!([{"business_key": []}]));
    assert!(document["components"]["schemas"]["OptInRequest"]["properties"].get("evidence").is_some());
    let decision = &document["components"]["schemas"]["DecisionRequest"]["properties"];
    assert!(decision.get("template").is_some() && decision.get("message_type").is_some(), "{decision}");
    let webhook = &document["paths"]["/webhooks/whatsapp/{business_id}"];
    assert!(webhook.get("get").is_some() && webhook.get("post").is_some());
}

async fn metrics_count_requests_by_route_template_and_decisions_by_outcome(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    app.decide(&acme.key, PHONE, "offers").await;
    app.get_contact(&acme.key, PHONE, None).await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        r#"http_requests_total{method="POST",route="/v1/decisions",status="200"}"#,
        r#"http_requests_total{method="GET",route="/v1/contacts/{phone}",status="200"}"#,
        r#"http_request_duration_seconds_bucket{method="POST",route="/v1/decisions",status="200",le="0.005"}"#,
        r#"optin_decisions_total{outcome="refused"}"#,
        r#"optin_decisions_total{outcome="allowed"}"#,
        "# TYPE http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains("4155552671"), "a phone number leaked into the metrics");
}

async fn unknown_routes_and_methods_are_problems(app: TestApp) {
    expect_problem(app.get("/v1/nothing-here").await, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.request(Method::DELETE, "/v1/decisions", None).send().await.unwrap();
    assert_eq!(response.headers()[ALLOW], "POST");
    expect_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let response = app.request(Method::PATCH, "/v1/notices", None).send().await.unwrap();
    expect_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let response = app.get("/healthz").await;
    assert!(!response.headers()["x-request-id"].is_empty());
    let response = app.request(Method::GET, "/v1/nope", None).header("x-request-id", "trace-me").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me");
}

/// An admin connection to the test server, for breaking the app's database on purpose.
async fn admin_client() -> tokio_postgres::Client {
    let admin_url = std::env::var("OPTIN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// PostgreSQL only: SQLite is a file opened by the process, which cannot go away underneath it
/// the way a database server can.
#[tokio::test]
async fn a_database_that_went_away_gives_opaque_503s_and_liveness_stays_up() {
    let app = spawn_app(Backend::Postgres).await;
    let business = app.create_business("Acme Shoes").await;
    let database = app.postgres_database().unwrap();
    let sql = format!("DROP DATABASE \"{}\" WITH (FORCE)", database.name());
    admin_client().await.batch_execute(&sql).await.unwrap();

    let ready = expect_problem(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable").await;
    let business_call = app.as_business(reqwest::Method::GET, "/v1/business", &business.key).send().await.unwrap();
    let call = expect_problem(business_call, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable").await;
    for problem in [ready, call] {
        let text = problem.to_string();
        assert!(!text.contains(database.name()) && !text.contains("does not exist"), "a cause leaked: {text}");
    }
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "liveness does not depend on the database");
}

/// A store call blocked behind a real lock is abandoned at the request timeout, as a problem.
#[tokio::test]
async fn a_request_blocked_in_the_database_times_out_as_a_problem() {
    let app = spawn_app_with_timeout(Backend::Postgres, std::time::Duration::from_millis(300)).await;
    let business = app.create_business("Acme Shoes").await;
    let (mut locker, connection) =
        tokio_postgres::connect(app.postgres_database().unwrap().url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let transaction = locker.transaction().await.unwrap();
    transaction.batch_execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE").await.unwrap();

    let blocked = app.as_business(reqwest::Method::GET, "/v1/business", &business.key).send().await.unwrap();
    expect_problem(blocked, StatusCode::SERVICE_UNAVAILABLE, "request_timeout").await;

    transaction.rollback().await.unwrap();
    let released = app.as_business(reqwest::Method::GET, "/v1/business", &business.key).send().await.unwrap();
    assert_eq!(released.status(), StatusCode::OK);
}
