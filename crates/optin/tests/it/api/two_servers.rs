//! Two servers on one database (two `optin serve` processes on PostgreSQL, or a server and
//! another process on the SQLite file): a decision never allows what the ledger forbids, even
//! when the opt-out was written through the other server a moment before.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PHONE, TestApp, expect_json, expect_problem, on_both_backends, web_form_opt_in};

async fn an_opt_out_through_one_server_is_honored_by_the_other_at_once(first: TestApp) {
    let second = first.second_server().await;
    let business = first.create_business("Acme Shoes").await;
    let notice = first.register_notice(&business.key).await;
    for round in 0..20 {
        let opt_in = second.post_opt_in(&business.key, &web_form_opt_in(PHONE, &["offers"], &notice)).await;
        expect_json(opt_in, StatusCode::CREATED).await;
        assert_eq!(first.decide(&business.key, PHONE, "offers").await, (true, vec![]), "round {round}");

        let opt_out = json!({"phone": PHONE, "categories": ["offers"], "source": "keyword", "recorded_by": "test"});
        expect_json(first.post_opt_out(&business.key, &opt_out).await, StatusCode::CREATED).await;
        assert_eq!(
            second.decide(&business.key, PHONE, "offers").await,
            (false, vec!["opted_out".to_owned()]),
            "round {round}: the other server must see the opt-out at once"
        );
    }
    let ledger = second.verify_ledger(&business.key).await;
    assert_eq!((ledger["intact"].as_bool(), ledger["verified_events"].as_u64()), (Some(true), Some(40)));
}

async fn a_key_revoked_through_one_server_stops_working_on_the_other(first: TestApp) {
    let second = first.second_server().await;
    let business = first.create_business("Acme Shoes").await;
    expect_json(second.as_business(Method::GET, "/v1/business", &business.key).send().await.unwrap(), StatusCode::OK)
        .await;
    let keys = expect_json(
        first.operator(Method::GET, &format!("/v1/businesses/{}/keys", business.id)).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let revoked =
        first.operator(Method::DELETE, &format!("/v1/businesses/{}/keys/{key_id}", business.id)).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = second.as_business(Method::GET, "/v1/business", &business.key).send().await.unwrap();
    expect_problem(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

on_both_backends!(
    an_opt_out_through_one_server_is_honored_by_the_other_at_once,
    a_key_revoked_through_one_server_stops_working_on_the_other,
);
