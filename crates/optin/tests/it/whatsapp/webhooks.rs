//! Receiving webhooks: the handshake, authentication on raw bytes, the durable inbox, bad input.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::helpers::{TestApp, expect_problem, on_both_backends};

on_both_backends!(
    the_handshake_answers_the_challenge_only_for_the_verify_token,
    deliveries_are_refused_without_a_valid_signature,
    a_shared_secret_header_authenticates_360dialog_deliveries,
    truncated_json_is_kept_as_failed_and_can_be_replayed,
    a_10_mb_body_is_refused,
    a_change_for_another_phone_number_id_is_ignored,
    a_redelivered_message_changes_nothing_the_second_time,
    statuses_arriving_out_of_order_are_all_kept,
    a_delivery_of_1000_messages_is_answered_fast_and_processed,
    deliveries_left_unprocessed_by_a_crash_are_processed,
    unknown_fields_and_message_types_are_ignored,
    quality_and_account_changes_are_kept_as_signals_that_can_be_filtered,
);

async fn the_handshake_answers_the_challenge_only_for_the_verify_token(app: TestApp) {
    let channel = Channel::new(app).await;
    let path = channel.webhook_path();
    let url = |token: &str| format!("{path}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}");
    let response = channel.app.get(&url(VERIFY_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "1158201444");
    expect_problem(channel.app.get(&url("wrong-token")).await, StatusCode::FORBIDDEN, "verify_token_mismatch").await;
    let unknown = format!("/webhooks/whatsapp/{}?hub.mode=subscribe", uuid::Uuid::new_v4());
    expect_problem(channel.app.get(&unknown).await, StatusCode::NOT_FOUND, "business_not_found").await;
    // A business that set no verify token refuses every handshake.
    let other = channel.app.create_business("Other Shop").await;
    let other_url = format!("/webhooks/whatsapp/{}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x", other.id);
    expect_problem(channel.app.get(&other_url).await, StatusCode::FORBIDDEN, "verify_token_not_set").await;
}

async fn deliveries_are_refused_without_a_valid_signature(app: TestApp) {
    let channel = Channel::new(app).await;
    let body = serde_json::to_vec(&text_message("wamid.sig1", "STOP", recent())).unwrap();
    let send = |signature: Option<String>| {
        let mut request = channel
            .app
            .request(Method::POST, &channel.webhook_path(), None)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send()
    };
    let wrong_secret = sign_hub(b"not-the-app-secret", &body);
    expect_problem(send(Some(wrong_secret)).await.unwrap(), StatusCode::UNAUTHORIZED, "signature_mismatch").await;
    expect_problem(send(None).await.unwrap(), StatusCode::UNAUTHORIZED, "signature_missing").await;
    expect_problem(send(Some("sha256=zz".into())).await.unwrap(), StatusCode::UNAUTHORIZED, "signature_malformed")
        .await;
    // A signature of other bytes (the body altered in transit).
    let mut altered = body.clone();
    altered[10] ^= 1;
    let altered_signature = sign_hub(APP_SECRET.as_bytes(), &altered);
    expect_problem(send(Some(altered_signature)).await.unwrap(), StatusCode::UNAUTHORIZED, "signature_mismatch").await;
    let inbox = channel.get("/v1/inbox").await;
    assert_eq!(inbox["deliveries"].as_array().unwrap().len(), 0, "nothing refused was stored: {inbox}");
    assert_eq!(channel.decide("offers").await.1, ["no_opt_in"]);

    // A business with no secret at all accepts nothing.
    let other = channel.app.create_business("Unconfigured Shop").await;
    let response = channel
        .app
        .request(Method::POST, &format!("/webhooks/whatsapp/{}", other.id), None)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "webhook_secret_not_set").await;
}

async fn a_shared_secret_header_authenticates_360dialog_deliveries(app: TestApp) {
    let channel = Channel::new(app).await;
    let settings =
        json!({"app_secret": null, "shared_secret": {"header": "X-Optin-Secret", "value": "shared-secret-0123456789"}});
    let view = expect_json(channel.put("/v1/webhook-settings", &settings).await, StatusCode::OK).await;
    assert_eq!(view["app_secret_set"], false);
    assert_eq!(view["verify_token_set"], true, "absent fields are kept");
    assert_eq!(view["shared_secret_header"], "x-optin-secret");
    assert!(!view.to_string().contains("shared-secret-0123456789"), "secrets are never shown: {view}");
    let body = serde_json::to_vec(&text_message("wamid.360a", "Hello", recent())).unwrap();
    let post = |header: Option<&'static str>| {
        let mut request = channel
            .app
            .request(Method::POST, &channel.webhook_path(), None)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(value) = header {
            request = request.header("X-Optin-Secret", value);
        }
        request.send()
    };
    expect_problem(post(None).await.unwrap(), StatusCode::UNAUTHORIZED, "shared_secret_missing").await;
    expect_problem(post(Some("wrong")).await.unwrap(), StatusCode::UNAUTHORIZED, "shared_secret_mismatch").await;
    let received = expect_json(post(Some("shared-secret-0123456789")).await.unwrap(), StatusCode::OK).await;
    let delivery = channel.wait_processed(received["delivery_id"].as_i64().unwrap()).await;
    assert_eq!(delivery["state"], "processed", "{delivery}");
}

async fn truncated_json_is_kept_as_failed_and_can_be_replayed(app: TestApp) {
    let channel = Channel::new(app).await;
    let full = serde_json::to_vec(&text_message("wamid.trunc", "STOP", recent())).unwrap();
    let truncated = full[..full.len() / 2].to_vec();
    let response = channel.deliver_bytes(truncated.clone()).await;
    let id = expect_json(response, StatusCode::OK).await["delivery_id"].as_i64().unwrap();
    let delivery = channel.wait_processed(id).await;
    assert_eq!(delivery["state"], "failed");
    assert!(delivery["note"].as_str().unwrap().contains("invalid_json"), "{delivery}");
    assert_eq!(delivery["body"].as_str().unwrap().as_bytes(), &truncated[..], "kept exactly as received");
    let failed = channel.get("/v1/inbox?state=failed").await;
    assert_eq!(failed["deliveries"][0]["id"], id);

    let replay = channel.post(&format!("/v1/inbox/{id}/replay"), &json!({})).await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    let replayed = channel.wait_processed(id).await;
    assert_eq!(replayed["state"], "failed");
    assert_eq!(replayed["attempts"], 2);
    let missing = channel.post("/v1/inbox/999999/replay", &json!({})).await;
    expect_problem(missing, StatusCode::NOT_FOUND, "delivery_not_found").await;
    assert_eq!(channel.decide("offers").await.1, ["no_opt_in"], "nothing was recorded from garbage");
}

async fn a_10_mb_body_is_refused(app: TestApp) {
    let channel = Channel::new(app).await;
    let mut body = br#"{"object":"whatsapp_business_account","entry":[],"padding":""#.to_vec();
    body.resize(10 * 1024 * 1024, b'a');
    body.extend_from_slice(br#""}"#);
    expect_problem(channel.deliver_bytes(body).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    assert_eq!(channel.get("/v1/inbox").await["deliveries"].as_array().unwrap().len(), 0);
}

async fn a_change_for_another_phone_number_id_is_ignored(app: TestApp) {
    let channel = Channel::new(app).await;
    let mut payload = text_message("wamid.foreign", "STOP", recent());
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("999999999999");
    let delivery = channel.deliver(&payload).await;
    assert_eq!(delivery["state"], "processed");
    assert!(delivery["note"].as_str().unwrap().contains("999999999999"), "{delivery}");
    assert_eq!(channel.decide("offers").await.1, ["no_opt_in"]);
}

async fn a_redelivered_message_changes_nothing_the_second_time(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel
        .set_policy(&json!({"opt_out_confirmation": {"en": "You will get no more messages from Acme Shoes."}}))
        .await;
    let stop = text_message("wamid.dup1", "STOP", recent());
    channel.deliver(&stop).await;
    channel.deliver(&stop).await;
    let events = channel.events().await;
    let opt_outs: Vec<&Value> = events.iter().filter(|e| e["kind"] == "opt_out").collect();
    assert_eq!(opt_outs.len(), 1, "one opt-out for one message: {events:?}");
    channel.app.processor.wait_for_sends().await;
    let confirmations = channel.upstream.sent();
    assert_eq!(confirmations.len(), 1, "one confirmation: {confirmations:?}");
    assert_eq!(channel.app.verify_ledger(&channel.business.key).await["intact"], true);
}

async fn statuses_arriving_out_of_order_are_all_kept(app: TestApp) {
    let channel = Channel::new(app).await;
    let now = recent();
    let read = statuses(&[status_item("wamid.out1", "read", now, None)]);
    let delivered = statuses(&[status_item("wamid.out1", "delivered", now - 2, None)]);
    let sent = statuses(&[status_item("wamid.out1", "sent", now - 4, None)]);
    for payload in [&read, &sent, &delivered, &read] {
        channel.deliver(payload).await;
    }
    let signals = channel.signals("kind=message_status&message_id=wamid.out1").await;
    let statuses: Vec<&str> = signals.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["read", "sent", "delivered"], "each once, in arrival order");
    let times: Vec<Timestamp> = signals.iter().map(|s| s["occurred_at"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times[1] < times[2] && times[2] < times[0], "each keeps its own time: {times:?}");
    assert_eq!(signals[0]["phone"], CONTACT);
}

async fn a_delivery_of_1000_messages_is_answered_fast_and_processed(app: TestApp) {
    let channel = Channel::new(app).await;
    let at = recent();
    let filler = "x".repeat(2_900);
    let messages: Vec<Value> = (0..1000)
        .map(|i| {
            let mut item = text_item(&format!("wamid.bulk{i}"), &format!("Where is my order {i}? {filler}"), at);
            item["from"] = json!(format!("1415555{:04}", 1000 + i));
            item
        })
        .collect();
    let mut value = messages_value(&messages);
    value["contacts"] = json!([]);
    let body = serde_json::to_vec(&envelope("messages", &value)).unwrap();
    assert!(body.len() > 2_900_000, "about 3 MB: {}", body.len());
    let started = Instant::now();
    let response = channel.deliver_bytes(body).await;
    let answered_in = started.elapsed();
    let id = expect_json(response, StatusCode::OK).await["delivery_id"].as_i64().unwrap();
    assert!(answered_in < Duration::from_secs(5), "answered in {answered_in:?}");
    let delivery = channel.wait_processed(id).await;
    assert_eq!(delivery["state"], "processed", "{delivery}");
    // Every writer's window is open: a free-form reply to the last one is allowed.
    let decision = channel.decide_body(&json!({"phone": "+14155551999", "message_type": "text"})).await;
    assert_eq!(decision["allowed"], true, "{decision}");
}

async fn deliveries_left_unprocessed_by_a_crash_are_processed(app: TestApp) {
    let channel = Channel::new(app).await;
    let business: optin_core::ids::BusinessId = channel.business.id.parse().unwrap();
    let store = &channel.app.store;
    // Written to the inbox, then the process died before processing it.
    let body = serde_json::to_vec(&text_message("wamid.crash1", "STOP", recent())).unwrap();
    let id = store.insert_delivery(business, Timestamp::now(), &body).await.unwrap();
    // Claimed by a process that died while processing it: taken again once its claim expires.
    let body = serde_json::to_vec(&text_message("wamid.crash2", "Hello", recent())).unwrap();
    let claimed_id = store.insert_delivery(business, Timestamp::now(), &body).await.unwrap();
    let claimed = store.claim_deliveries(Timestamp::now(), Duration::from_secs(1), 100).await.unwrap();
    assert!(claimed.iter().any(|d| d.id == claimed_id));
    for id in [id, claimed_id] {
        assert_eq!(channel.wait_processed(id).await["state"], "processed");
    }
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
}

async fn unknown_fields_and_message_types_are_ignored(app: TestApp) {
    let channel = Channel::new(app).await;
    let mut payload = text_message("wamid.unk1", "Hello", recent());
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["brand_new_field"] = json!({"nested": [1, 2]});
    payload["entry"][0]["changes"].as_array_mut().unwrap().push(json!({"field": "calls", "value": {"calls": []}}));
    payload["entry"][0]["changes"][0]["value"]["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": WA_ID, "id": "wamid.unk2", "timestamp": recent().to_string(), "type": "hologram",
            "hologram": {"id": "h"}}));
    // An escaped NUL (which PostgreSQL cannot store in text) in ids and texts.
    payload["entry"][0]["changes"][0]["value"]["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": WA_ID, "id": "wamid.nul\u{0}3", "timestamp": recent().to_string(), "type": "text",
            "text": {"body": "don't st\u{0}op my order"}}));
    let delivery = channel.deliver(&payload).await;
    assert_eq!(delivery["state"], "processed", "{delivery}");
    let decision = channel.decide_body(&json!({"phone": CONTACT, "message_type": "text"})).await;
    assert_eq!(decision["allowed"], true, "the text still opened the window: {decision}");
    let review = channel.signals("kind=possible_opt_out").await;
    assert_eq!(review[0]["message_id"], "wamid.nul3", "{review:?}");
}

async fn quality_and_account_changes_are_kept_as_signals_that_can_be_filtered(app: TestApp) {
    let channel = Channel::new(app).await;
    let time = Timestamp::now().as_second() - 3600;
    let mut quality = envelope(
        "phone_number_quality_update",
        &json!({"display_phone_number": DISPLAY_NUMBER, "event": "THROUGHPUT_UPGRADE", "current_limit": "TIER_UNLIMITED"}),
    );
    quality["entry"][0]["time"] = json!(time);
    let mut alert = envelope(
        "account_alerts",
        &json!({"entity_type": "BUSINESS", "entity_id": "506914307656634", "alert_info": {"alert_severity": "WARNING",
            "alert_status": "ACTIVE", "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
            "alert_description": "Your business is not eligible for a messaging limit increase"}}),
    );
    alert["entry"][0]["time"] = json!(time + 60);
    channel.deliver(&quality).await;
    channel.deliver(&alert).await;
    channel.deliver(&alert).await; // redelivered: kept once
    channel.deliver(&statuses(&[status_item("wamid.q1", "delivered", time + 120, None)])).await;

    let quality = channel.signals("kind=phone_number_quality").await;
    assert_eq!(quality.len(), 1);
    assert_eq!(quality[0]["status"], "THROUGHPUT_UPGRADE");
    assert_eq!(quality[0]["detail"]["current_limit"], "TIER_UNLIMITED");
    let accounts = channel.signals("kind=account").await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(
        accounts[0]["detail"]["value"]["alert_info"]["alert_type"],
        "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED"
    );

    let at = |seconds: i64| Timestamp::from_second(seconds).unwrap().to_string();
    let window = channel.signals(&format!("since={}&until={}", at(time + 30), at(time + 121))).await;
    let kinds: Vec<&str> = window.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["account", "message_status"]);
    let by_phone = channel.signals(&format!("phone={}", CONTACT.replace('+', "%2B"))).await;
    assert_eq!(by_phone.len(), 1);
    assert_eq!(by_phone[0]["message_id"], "wamid.q1");
    let page = channel.get("/v1/signals?limit=2").await;
    assert_eq!(page["signals"].as_array().unwrap().len(), 2);
    let next = page["next_after"].as_i64().unwrap();
    let rest = channel.get(&format!("/v1/signals?after={next}")).await;
    assert_eq!(rest["signals"].as_array().unwrap().len(), 1);
    assert!(rest["next_after"].is_null());
    let bad =
        channel.app.as_business(Method::GET, "/v1/signals?kind=nope", &channel.business.key).send().await.unwrap();
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "unknown_signal_kind").await;
    let bad = channel
        .app
        .as_business(Method::GET, "/v1/signals?since=yesterday", &channel.business.key)
        .send()
        .await
        .unwrap();
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_time").await;
}
