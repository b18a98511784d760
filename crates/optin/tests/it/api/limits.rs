//! The messaging limit: set by hand, followed from `phone_number_quality_update` and
//! `business_capability_update` webhooks, and the unique recipients of the last 24 hours, which
//! survive a restart.

use jiff::Timestamp;
use optin_core::ids::BusinessId;
use optin_core::phone::PhoneNumber;
use optin_store::capacity::reserve_capacity;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::helpers::{Backend, TestApp, expect_json, expect_problem, on_both_backends};
use crate::whatsapp::{Channel, DISPLAY_NUMBER, envelope};

on_both_backends!(
    the_limit_is_set_by_hand_in_any_form_meta_uses,
    the_recipients_of_the_last_24_hours_are_shown_and_survive_a_restart,
    the_limit_follows_quality_and_capability_webhooks_unless_set_later,
);

async fn put_limit(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.as_business(Method::PUT, "/v1/messaging-limit", key).json(body).send().await.unwrap()
}

async fn get_limit(app: &TestApp, key: &str) -> Value {
    let response = app.as_business(Method::GET, "/v1/messaging-limit", key).send().await.unwrap();
    expect_json(response, StatusCode::OK).await
}

async fn the_limit_is_set_by_hand_in_any_form_meta_uses(app: TestApp) {
    let business = app.create_business("Tiered Shoes").await;
    let unset = get_limit(&app, &business.key).await;
    assert_eq!(unset, json!({"limit": null, "source": null, "updated_at": null, "recipients_last_24h": 0}));

    let forms = [
        (json!("TIER_2K"), json!("TIER_2K")),
        (json!(250), json!("TIER_250")),
        (json!("unlimited"), json!("TIER_UNLIMITED")),
        (json!(-1), json!("TIER_UNLIMITED")),
        (json!(1500), json!(1500)),
        (json!("tier_10k"), json!("TIER_10K")),
    ];
    for (given, shown) in forms {
        let set = expect_json(put_limit(&app, &business.key, &json!({"limit": given})).await, StatusCode::OK).await;
        assert_eq!((&set["limit"], &set["source"]), (&shown, &json!("manual")), "{given}");
        assert!(set["updated_at"].is_string());
        assert_eq!(get_limit(&app, &business.key).await["limit"], shown);
    }

    for invalid in [json!({"limit": "TIER_NOT_SET"}), json!({"limit": 0}), json!({"limit": "lots"}), json!({})] {
        let response = put_limit(&app, &business.key, &invalid).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_messaging_limit").await;
    }
    let unknown_field = put_limit(&app, &business.key, &json!({"limit": "TIER_2K", "tier": 1})).await;
    expect_problem(unknown_field, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert_eq!(get_limit(&app, &business.key).await["limit"], "TIER_10K", "refused bodies change nothing");

    let anonymous = app.request(Method::GET, "/v1/messaging-limit", None).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let other = app.create_business("Other Shoes").await;
    assert_eq!(get_limit(&app, &other.key).await["limit"], Value::Null, "each business has its own");

    let document = expect_json(app.get("/openapi.json").await, StatusCode::OK).await;
    let path = &document["paths"]["/v1/messaging-limit"];
    assert!(path.get("get").is_some() && path.get("put").is_some(), "{path}");
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["MessagingLimit"]["type"], json!(["string", "integer"]), "{}", schemas["MessagingLimit"]);
    assert!(schemas["MessagingLimitView"]["properties"].get("recipients_last_24h").is_some());
}

async fn the_recipients_of_the_last_24_hours_are_shown_and_survive_a_restart(app: TestApp) {
    let business = app.create_business("Counted Shoes").await;
    expect_json(put_limit(&app, &business.key, &json!({"limit": 2})).await, StatusCode::OK).await;
    let id: BusinessId = business.id.parse().unwrap();
    let phones: Vec<PhoneNumber> =
        ["+14155550701", "+14155550702", "+14155550703"].iter().map(|p| PhoneNumber::from_e164(p).unwrap()).collect();
    let admitted = reserve_capacity(app.store.as_ref(), id, &phones, Timestamp::now()).await.unwrap();
    assert_eq!(admitted, [true, true, false]);
    assert_eq!(get_limit(&app, &business.key).await["recipients_last_24h"], 2);

    // Another server on the same database (a restart, or a second process) counts the same.
    let restarted = app.second_server().await;
    assert_eq!(get_limit(&restarted, &business.key).await["recipients_last_24h"], 2);
    let again = reserve_capacity(restarted.store.as_ref(), id, &phones[1..], Timestamp::now()).await.unwrap();
    assert_eq!(again, [true, false], "the one reached may be messaged again; the limit still holds");
}

fn quality_update(limit: &str, time: i64) -> Value {
    let mut payload = envelope(
        "phone_number_quality_update",
        &json!({"display_phone_number": DISPLAY_NUMBER, "event": "THROUGHPUT_UPGRADE", "current_limit": limit}),
    );
    payload["entry"][0]["time"] = json!(time);
    payload
}

async fn the_limit_follows_quality_and_capability_webhooks_unless_set_later(app: TestApp) {
    let channel = Channel::new(app).await;
    let key = channel.business.key.clone();
    let now = Timestamp::now().as_second();

    channel.deliver(&quality_update("TIER_10K", now - 600)).await;
    let followed = get_limit(&channel.app, &key).await;
    assert_eq!((&followed["limit"], &followed["source"]), (&json!("TIER_10K"), &json!("webhook")));

    let mut capability =
        envelope("business_capability_update", &json!({"max_daily_conversations_per_business": 100_000}));
    capability["entry"][0]["time"] = json!(now - 300);
    channel.deliver(&capability).await;
    assert_eq!(get_limit(&channel.app, &key).await["limit"], "TIER_100K");

    // TIER_NOT_SET is not a limit: the delivery is processed and the limit kept.
    let not_set = channel.deliver(&quality_update("TIER_NOT_SET", now - 200)).await;
    assert_eq!(not_set["state"], "processed", "{not_set}");
    assert!(not_set["note"].as_str().is_some_and(|note| note.contains("not a limit")), "{not_set}");
    assert_eq!(get_limit(&channel.app, &key).await["limit"], "TIER_100K");

    // Set by hand now: a late webhook about an earlier change does not undo it; a later one wins.
    expect_json(put_limit(&channel.app, &key, &json!({"limit": "TIER_250"})).await, StatusCode::OK).await;
    channel.deliver(&quality_update("TIER_2K", now - 100)).await;
    let kept = get_limit(&channel.app, &key).await;
    assert_eq!((&kept["limit"], &kept["source"]), (&json!("TIER_250"), &json!("manual")));
    channel.deliver(&quality_update("TIER_UNLIMITED", now + 5)).await;
    let upgraded = get_limit(&channel.app, &key).await;
    assert_eq!((&upgraded["limit"], &upgraded["source"]), (&json!("TIER_UNLIMITED"), &json!("webhook")));
}

async fn the_limit_is_set_and_shown_from_the_command_line(backend: Backend) {
    let cli = Cli::new(backend).await;
    let business = cli.json(&["business", "create", "--name", "Acme Shoes", "--category", "offers:marketing"]);
    let id = business["id"].as_str().unwrap().to_owned();
    let shown = cli.json(&["messaging-limit", "show", "--business", &id]);
    assert_eq!(shown, json!({"limit": null, "source": null, "updated_at": null, "recipients_last_24h": 0}));

    let set = cli.json(&["messaging-limit", "set", "--business", &id, "TIER_2K"]);
    assert_eq!((&set["limit"], &set["source"]), (&json!("TIER_2K"), &json!("manual")));
    let unlimited = cli.json(&["messaging-limit", "set", "--business", &id, "-1"]);
    assert_eq!(unlimited["limit"], "TIER_UNLIMITED");
    let text = cli.run(&["messaging-limit", "show", "--business", &id]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("TIER_UNLIMITED") && stdout.contains("recipients in the last 24 hours: 0"), "{stdout}");

    let refused = cli.run(&["messaging-limit", "set", "--business", &id, "TIER_NOT_SET"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error[invalid_messaging_limit]"));
}

#[tokio::test]
async fn the_limit_is_set_and_shown_from_the_command_line_on_sqlite() {
    the_limit_is_set_and_shown_from_the_command_line(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_limit_is_set_and_shown_from_the_command_line_on_postgres() {
    the_limit_is_set_and_shown_from_the_command_line(Backend::Postgres).await;
}
