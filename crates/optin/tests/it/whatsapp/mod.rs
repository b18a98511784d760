//! The WhatsApp channel end to end: webhooks in (signed, over real HTTP), the inbox processed by
//! the server's own processor, thread messages out to a local fake of the Cloud API / 360dialog.
//! Payloads follow the shapes in `../shared/docs/whatsapp-platform.md`.

mod opt_outs;
mod setup;
mod templates;
mod thread_opt_in;
mod webhooks;

use std::time::Duration;

use optin_core::whatsapp::signature::sign_hub;
use optin_whatsapp::testing::{FakeCredentials, FakeUpstream};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestBusiness, expect_json, text};

pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "verify-token-42";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const DISPLAY_NUMBER: &str = "15550783881";
pub const WABA_ID: &str = "102290129340398";
pub const BEARER: &str = "EAAG-test-access-token";
/// The contact who writes in the tests (`wa_id` digits).
pub const WA_ID: &str = "14155552671";
pub const CONTACT: &str = "+14155552671";

/// A business with a sender pointing at a fake upstream and an app secret for its webhooks.
pub struct Channel {
    pub app: TestApp,
    pub business: TestBusiness,
    pub upstream: FakeUpstream,
    pub notice_id: String,
}

impl Channel {
    pub async fn new(app: TestApp) -> Channel {
        let business = app.create_business("Acme Shoes").await;
        let notice_id = app.register_notice(&business.key).await;
        let upstream =
            FakeUpstream::start(FakeCredentials { bearer_token: BEARER.into(), d360_api_key: "d360-key".into() }).await;
        let channel = Channel { app, business, upstream, notice_id };
        let sender = json!({
            "phone_number_id": PHONE_NUMBER_ID, "display_phone_number": DISPLAY_NUMBER, "waba_id": WABA_ID,
            "provider": "cloud_api", "base_url": channel.upstream.base_url(), "credential": BEARER,
        });
        expect_json(channel.post("/v1/senders", &sender).await, StatusCode::CREATED).await;
        let settings = json!({"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET});
        expect_json(channel.put("/v1/webhook-settings", &settings).await, StatusCode::OK).await;
        channel
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.app.as_business(Method::POST, path, &self.business.key).json(body).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.app.as_business(Method::PUT, path, &self.business.key).json(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self.app.as_business(Method::GET, path, &self.business.key).send().await.unwrap();
        expect_json(response, StatusCode::OK).await
    }

    pub async fn set_policy(&self, policy: &Value) {
        expect_json(self.put("/v1/whatsapp-policy", policy).await, StatusCode::OK).await;
    }

    pub fn webhook_path(&self) -> String {
        format!("/webhooks/whatsapp/{}", self.business.id)
    }

    /// POSTs raw bytes to the webhook URL, signed with the app secret.
    pub async fn deliver_bytes(&self, body: Vec<u8>) -> Response {
        let signature = sign_hub(APP_SECRET.as_bytes(), &body);
        self.app
            .request(Method::POST, &self.webhook_path(), None)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Waits until the fake upstream received `count` messages from optin and optin remembered
    /// them: it records a sent message after the upstream answers, so a reply delivered as soon as
    /// the upstream has the question could otherwise find no question to answer.
    pub async fn wait_sent_and_recorded(&self, count: usize) -> Vec<optin_whatsapp::testing::ReceivedMessage> {
        let sent = self.upstream.wait_for_sent(count, Duration::from_secs(10)).await;
        let business = self.business.id.parse().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for message in &sent {
            while self.app.store.sent_message(business, &message.wamid).await.unwrap().is_none() {
                assert!(tokio::time::Instant::now() < deadline, "optin did not record {}", message.wamid);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        sent
    }

    /// Delivers a webhook and waits until the server processed it; returns the delivery.
    pub async fn deliver(&self, payload: &Value) -> Value {
        let response = self.deliver_bytes(serde_json::to_vec(payload).unwrap()).await;
        let received = expect_json(response, StatusCode::OK).await;
        self.wait_processed(received["delivery_id"].as_i64().unwrap()).await
    }

    /// Polls the inbox until the delivery left `pending`. The bound is generous: a delivery of a
    /// thousand messages on PostgreSQL, with the whole suite (browsers included) on two cores, has
    /// taken more than 15 s; this waits for an outcome, it does not measure speed.
    pub async fn wait_processed(&self, id: i64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let delivery = self.get(&format!("/v1/inbox/{id}")).await;
            if delivery["state"] != "pending" {
                return delivery;
            }
            assert!(tokio::time::Instant::now() < deadline, "delivery {id} was not processed: {delivery}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The decision for a category, as `(allowed, reason codes)`.
    pub async fn decide(&self, category: &str) -> (bool, Vec<String>) {
        self.app.decide(&self.business.key, CONTACT, category).await
    }

    pub async fn decide_body(&self, body: &Value) -> Value {
        expect_json(self.app.post_decision(&self.business.key, body).await, StatusCode::OK).await
    }

    /// Opts the contact in to `categories` through the API (a web form).
    pub async fn opt_in(&self, categories: &[&str]) {
        let body = crate::helpers::web_form_opt_in(CONTACT, categories, &self.notice_id);
        expect_json(self.app.post_opt_in(&self.business.key, &body).await, StatusCode::CREATED).await;
    }

    pub async fn events(&self) -> Vec<Value> {
        let response = self.app.get_contact_events(&self.business.key, CONTACT).await;
        let events = expect_json(response, StatusCode::OK).await["events"].as_array().unwrap().clone();
        events.into_iter().map(|entry| entry["event"].clone()).collect()
    }

    pub async fn signals(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/v1/signals?{query}")).await["signals"].as_array().unwrap().clone()
    }
}

/// Seconds since the epoch, a few seconds ago (inside the service window).
pub fn recent() -> i64 {
    jiff::Timestamp::now().as_second() - 5
}

/// A `messages` change around `value` (Meta's envelope).
pub fn envelope(field: &str, value: &Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": WABA_ID, "changes": [{ "value": value, "field": field }] }]
    })
}

fn messages_value(messages: &[Value]) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID },
        "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": WA_ID }],
        "messages": messages,
    })
}

/// An inbound text message (§1.1).
pub fn text_message(id: &str, body: &str, at: i64) -> Value {
    envelope("messages", &messages_value(&[text_item(id, body, at)]))
}

pub fn text_item(id: &str, body: &str, at: i64) -> Value {
    json!({ "from": WA_ID, "id": id, "timestamp": at.to_string(), "type": "text", "text": { "body": body } })
}

/// A template quick-reply tap (§1.2).
pub fn button_message(id: &str, payload: &str, context_id: &str, at: i64) -> Value {
    envelope(
        "messages",
        &messages_value(&[json!({
            "context": { "from": DISPLAY_NUMBER, "id": context_id },
            "from": WA_ID, "id": id, "timestamp": at.to_string(), "type": "button",
            "button": { "payload": payload, "text": payload }
        })]),
    )
}

/// An interactive reply-button answer (§1.3).
pub fn button_reply(id: &str, reply_id: &str, title: &str, context_id: &str, at: i64) -> Value {
    envelope(
        "messages",
        &messages_value(&[json!({
            "context": { "from": DISPLAY_NUMBER, "id": context_id },
            "from": WA_ID, "id": id, "timestamp": at.to_string(), "type": "interactive",
            "interactive": { "type": "button_reply", "button_reply": { "id": reply_id, "title": title } }
        })]),
    )
}

/// Message statuses (§1.4).
pub fn statuses(items: &[Value]) -> Value {
    envelope(
        "messages",
        &json!({
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID },
            "statuses": items,
        }),
    )
}

pub fn status_item(wamid: &str, status: &str, at: i64, error_code: Option<i64>) -> Value {
    let mut item = json!({ "id": wamid, "status": status, "timestamp": at.to_string(), "recipient_id": WA_ID });
    if let Some(code) = error_code {
        item["errors"] = json!([{ "code": code, "title": "Unable to deliver the message", "message": "m",
            "error_data": { "details": "d" }, "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/" }]);
    }
    item
}

/// A `user_preferences` marketing stop or resume (§1.9).
pub fn user_preference(value: &str, at: i64) -> Value {
    envelope(
        "user_preferences",
        &json!({
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [{ "wa_id": WA_ID }],
            "user_preferences": [{ "wa_id": WA_ID, "detail": format!("User requested to {value} marketing messages"),
                "category": "marketing_messages", "value": value, "timestamp": at }]
        }),
    )
}

pub fn codes(decision: &Value) -> Vec<String> {
    decision["reasons"].as_array().unwrap().iter().map(|r| text(&r["code"])).collect()
}
