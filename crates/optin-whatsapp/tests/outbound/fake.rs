//! The fake itself: it must refuse what the platform refuses, or client tests prove nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{BEARER_TOKEN, D360_API_KEY, PHONE_NUMBER_ID, start_fake};

async fn post_raw(url: String, header: (&str, String), body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).header(header.0, header.1).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn bodies_the_platform_would_refuse_get_400_with_code_100() {
    let fake = start_fake().await;
    let cloud_url = format!("{}/v23.0/{PHONE_NUMBER_ID}/messages", fake.base_url());
    let bearer = ("Authorization", format!("Bearer {BEARER_TOKEN}"));
    let refused = [
        json!({ "messaging_product": "sms", "to": "1", "type": "text", "text": { "body": "hi" } }),
        json!({ "messaging_product": "whatsapp", "type": "text", "text": { "body": "hi" } }),
        json!({ "messaging_product": "whatsapp", "to": "1", "type": "interactive" }),
        json!({ "messaging_product": "whatsapp", "to": "1", "type": "sticker", "sticker": {} }),
    ];
    for body in &refused {
        let (status, error) = post_raw(cloud_url.clone(), bearer.clone(), body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["code"], 100);
        assert_eq!(error["error"]["message"], "(#100) Invalid parameter");
    }
    assert_eq!(fake.attempts(), refused.len());
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn a_template_is_accepted_on_the_360dialog_route() {
    let fake = start_fake().await;
    let template = json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
        "type": "template",
        "template": { "name": "order_update", "language": { "code": "en_US" } },
    });
    let url = format!("{}/messages", fake.base_url());
    let (status, response) = post_raw(url, ("D360-API-KEY", D360_API_KEY.to_owned()), &template).await;

    assert_eq!(status, 200);
    assert_eq!(response["contacts"][0]["wa_id"], "16505551234");
    assert_eq!(response["messages"][0]["id"], "wamid.FAKE1");
    assert_eq!(fake.sent()[0].body, template);
}

#[tokio::test]
async fn unknown_paths_get_404_and_are_counted() {
    let fake = start_fake().await;
    let url = format!("{}/v23.0/{PHONE_NUMBER_ID}/marketing_messages/extra", fake.base_url());
    let (status, _) = post_raw(url, ("Authorization", String::new()), &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(fake.attempts(), 1);
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 accepted messages within")]
async fn waiting_for_messages_that_never_come_panics_clearly() {
    let fake = start_fake().await;
    fake.wait_for_sent(1, Duration::from_millis(20)).await;
}
