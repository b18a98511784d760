//! The send proxy end to end: a client posts Cloud API or 360dialog send requests to optin, which
//! decides them, forwards the allowed ones to the fake upstream with the stored credential, and
//! answers refusals in the platform's error shape. `pywa` runs the same with an unmodified client.

mod pywa;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, on_both_backends, text};
use crate::whatsapp::{BEARER, CONTACT, Channel, PHONE_NUMBER_ID, WA_ID, recent, status_item, statuses, text_message};

on_both_backends!(
    an_allowed_template_is_forwarded_unchanged_and_its_statuses_name_it,
    refusals_come_in_the_platforms_error_shape_and_reach_nobody,
    the_key_must_be_the_businesss_and_the_sender_its_own,
    the_360dialog_shape_sends_from_the_businesss_360dialog_sender,
    upstream_errors_come_back_unchanged_and_ambiguous_failures_are_not_retried,
    the_proxy_routes_are_documented,
    templates_outside_the_window_stop_at_the_messaging_limit,
    the_frequency_cap_counts_forwarded_messages_of_the_category,
);

/// A business with a Cloud API sender, the `spring_sale` (marketing → `offers`) and
/// `order_shipped` (utility → `order_updates`) templates, and no consent yet.
async fn channel_with_templates(app: TestApp) -> Channel {
    let channel = Channel::new(app).await;
    channel.set_policy(&json!({"template_category_defaults": {"marketing": "offers"}})).await;
    let templates = json!({"data": [
        {"name": "spring_sale", "language": "en_US", "category": "MARKETING", "status": "APPROVED",
         "components": [{"type": "BODY", "text": "Spring sale! 20% off everything."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"}]}]},
        {"name": "order_shipped", "language": "en_US", "category": "UTILITY", "status": "APPROVED",
         "optin_category": "order_updates", "components": [{"type": "BODY", "text": "Your order {{1}} has shipped."}]},
        {"name": "paused_sale", "language": "en_US", "category": "MARKETING", "status": "PAUSED",
         "components": [{"type": "BODY", "text": "Paused. Tap Stop promotions to opt out."}]},
    ]});
    expect_json(channel.put("/v1/templates", &templates).await, StatusCode::OK).await;
    channel
}

fn template_body(name: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID, "type": "template",
        "biz_opaque_callback_data": "campaign:42",
        "template": {"name": name, "language": {"code": "en_US"}, "components": []}})
}

fn text_body() -> Value {
    json!({"messaging_product": "whatsapp", "to": WA_ID, "type": "text", "text": {"body": "Your order shipped."}})
}

impl Channel {
    fn cloud_api_path(&self) -> String {
        format!("/proxy/{}/v23.0/{PHONE_NUMBER_ID}/messages", self.business.id)
    }

    /// A Cloud API send through the proxy, as a client would make it.
    fn proxy_request(&self, path: &str, key: &str, body: &Value) -> RequestBuilder {
        self.app.request(Method::POST, path, Some(key)).json(body)
    }

    async fn proxy_send(&self, body: &Value) -> Response {
        self.proxy_request(&self.cloud_api_path(), &self.business.key, body).send().await.unwrap()
    }
}

/// Checks a Graph-shaped error and returns its `error` object.
async fn expect_graph_error(response: Response, status: StatusCode, code: i64) -> Value {
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = expect_json(response, status).await;
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["type"], "OAuthException");
    assert!(text(&error["message"]).starts_with(&format!("(#{code}) ")), "{body}");
    assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
    assert!(text(&error["error_data"]["details"]).starts_with("optin: "), "{body}");
    assert_eq!(error["fbtrace_id"], request_id.as_str());
    error
}

fn reason_codes(error: &Value) -> Vec<String> {
    error["optin_reasons"].as_array().unwrap().iter().map(|r| text(&r["code"])).collect()
}

async fn an_allowed_template_is_forwarded_unchanged_and_its_statuses_name_it(app: TestApp) {
    let channel = channel_with_templates(app).await;
    channel.opt_in(&["offers"]).await;
    let body = template_body("spring_sale");
    let response = channel.proxy_send(&body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["messages"][0]["id"], "wamid.FAKE1", "the upstream's answer: {answer}");
    assert_eq!(answer["contacts"][0]["wa_id"], WA_ID);
    let sent = channel.upstream.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, body, "forwarded unchanged");
    assert_eq!(sent[0].api_version.as_deref(), Some("v23.0"), "the client's version");
    assert_eq!(sent[0].phone_number_id.as_deref(), Some(PHONE_NUMBER_ID));

    channel.deliver(&statuses(&[status_item("wamid.FAKE1", "delivered", recent(), None)])).await;
    let found = channel.signals("template=spring_sale").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let status = &found[0];
    assert_eq!((status["kind"].as_str(), status["status"].as_str()), (Some("message_status"), Some("delivered")));
    assert_eq!(status["message_id"], "wamid.FAKE1");
    assert_eq!(status["template_language"], "en_US");
    assert_eq!(status["category"], "offers");
    assert_eq!(status["phone"], CONTACT);

    // A status of a message sent around the proxy names no template.
    channel.deliver(&statuses(&[status_item("wamid.ELSEWHERE", "delivered", recent(), None)])).await;
    let other = channel.signals("message_id=wamid.ELSEWHERE").await;
    assert_eq!((other[0]["template_name"].clone(), other[0]["category"].clone()), (Value::Null, Value::Null));
}

async fn refusals_come_in_the_platforms_error_shape_and_reach_nobody(app: TestApp) {
    let channel = channel_with_templates(app).await;
    let outside = expect_graph_error(channel.proxy_send(&text_body()).await, StatusCode::BAD_REQUEST, 131_047).await;
    assert_eq!(reason_codes(&outside), ["outside_service_window"]);
    assert!(text(&outside["error_data"]["details"]).contains("outside_service_window"));

    let no_consent = channel.proxy_send(&template_body("spring_sale")).await;
    let error = expect_graph_error(no_consent, StatusCode::BAD_REQUEST, 100).await;
    assert_eq!(reason_codes(&error), ["not_opted_in_to_template_category"]);
    let unknown = channel.proxy_send(&template_body("no_such_template")).await;
    assert_eq!(
        reason_codes(&expect_graph_error(unknown, StatusCode::BAD_REQUEST, 132_001).await),
        ["template_not_found"]
    );
    channel.opt_in(&["offers"]).await;
    let paused = channel.proxy_send(&template_body("paused_sale")).await;
    assert_eq!(
        reason_codes(&expect_graph_error(paused, StatusCode::BAD_REQUEST, 132_015).await),
        ["template_not_approved"]
    );

    channel.deliver(&text_message("wamid.stop1", "STOP", recent())).await;
    let opted_out = channel.proxy_send(&template_body("spring_sale")).await;
    let error = expect_graph_error(opted_out, StatusCode::BAD_REQUEST, 131_050).await;
    assert_eq!(reason_codes(&error)[0], "opted_out");

    let mut no_recipient = text_body();
    no_recipient.as_object_mut().unwrap().remove("to");
    let invalid = expect_graph_error(channel.proxy_send(&no_recipient).await, StatusCode::BAD_REQUEST, 100).await;
    assert_eq!(reason_codes(&invalid), ["invalid_message"]);
    let mut bad_number = text_body();
    bad_number["to"] = json!("12");
    let invalid = expect_graph_error(channel.proxy_send(&bad_number).await, StatusCode::BAD_REQUEST, 100).await;
    assert_eq!(reason_codes(&invalid), ["invalid_phone"]);

    let sent = channel.upstream.sent();
    let refused_sent = sent.iter().any(|m| m.body == text_body() || m.body["type"] == "template");
    assert!(!refused_sent, "no refused message reached the upstream: {sent:?}");
}

async fn the_key_must_be_the_businesss_and_the_sender_its_own(app: TestApp) {
    let channel = channel_with_templates(app).await;
    channel.opt_in(&["offers"]).await;
    let rival = channel.app.create_business("Rival Shoes").await;
    let path = channel.cloud_api_path();
    let body = template_body("spring_sale");
    let wrong_key = channel.proxy_request(&path, &rival.key, &body).send().await.unwrap();
    let error = expect_graph_error(wrong_key, StatusCode::UNAUTHORIZED, 190).await;
    assert_eq!(reason_codes(&error), ["unauthorized"]);
    let no_key = channel.app.client.post(format!("{}{path}", channel.app.address)).json(&body).send().await.unwrap();
    expect_graph_error(no_key, StatusCode::UNAUTHORIZED, 190).await;
    let rivals_path = format!("/proxy/{}/v23.0/{PHONE_NUMBER_ID}/messages", rival.id);
    let not_its_sender = channel.proxy_request(&rivals_path, &rival.key, &body).send().await.unwrap();
    expect_graph_error(not_its_sender, StatusCode::NOT_FOUND, 100).await;
    let unknown_sender = format!("/proxy/{}/v23.0/999999999999999/messages", channel.business.id);
    let response = channel.proxy_request(&unknown_sender, &channel.business.key, &body).send().await.unwrap();
    assert_eq!(reason_codes(&expect_graph_error(response, StatusCode::NOT_FOUND, 100).await), ["unknown_sender"]);
    let bad_version = format!("/proxy/{}/latest/{PHONE_NUMBER_ID}/messages", channel.business.id);
    let response = channel.proxy_request(&bad_version, &channel.business.key, &body).send().await.unwrap();
    assert_eq!(reason_codes(&expect_graph_error(response, StatusCode::BAD_REQUEST, 100).await), ["invalid_version"]);
    assert_eq!(channel.upstream.attempts(), 0);
}

async fn the_360dialog_shape_sends_from_the_businesss_360dialog_sender(app: TestApp) {
    let channel = channel_with_templates(app).await;
    let path = format!("/proxy/{}/messages", channel.business.id);
    let post_360 = |key: &str, sender: Option<&str>| {
        let mut request = channel.app.client.post(format!("{}{path}", channel.app.address)).header("D360-API-KEY", key);
        if let Some(sender) = sender {
            request = request.header("X-Optin-Phone-Number-Id", sender);
        }
        request.json(&text_body())
    };
    let none = post_360(&channel.business.key, None).send().await.unwrap();
    expect_graph_error(none, StatusCode::NOT_FOUND, 100).await;
    add_360dialog_sender(&channel, "200000000000001", &channel.upstream.base_url()).await;
    channel.deliver(&text_message("wamid.in1", "Where is my order?", recent())).await;

    let bearer_is_not_read = channel.app.as_business(Method::POST, &path, &channel.business.key).json(&text_body());
    expect_graph_error(bearer_is_not_read.send().await.unwrap(), StatusCode::UNAUTHORIZED, 190).await;
    let response = post_360(&channel.business.key, None).send().await.unwrap();
    let answer = expect_json(response, StatusCode::OK).await;
    let sent = channel.upstream.sent();
    let last = sent.last().unwrap();
    assert_eq!((last.wamid.as_str(), &last.body), (text(&answer["messages"][0]["id"]).as_str(), &text_body()));
    assert_eq!(last.provider, optin_core::whatsapp::Provider::Dialog360, "with the stored D360-API-KEY");

    add_360dialog_sender(&channel, "200000000000002", &channel.upstream.base_url()).await;
    let ambiguous = post_360(&channel.business.key, None).send().await.unwrap();
    let error = expect_graph_error(ambiguous, StatusCode::BAD_REQUEST, 100).await;
    assert_eq!(reason_codes(&error), ["sender_ambiguous"]);
    let named = post_360(&channel.business.key, Some("200000000000002")).send().await.unwrap();
    expect_json(named, StatusCode::OK).await;
    // A Cloud API sender can be named too: the upstream is the sender's, whatever the shape.
    let cloud = post_360(&channel.business.key, Some(PHONE_NUMBER_ID)).send().await.unwrap();
    expect_json(cloud, StatusCode::OK).await;
    assert_eq!(channel.upstream.sent().last().unwrap().phone_number_id.as_deref(), Some(PHONE_NUMBER_ID));
    let unknown = post_360(&channel.business.key, Some("1")).send().await.unwrap();
    expect_graph_error(unknown, StatusCode::NOT_FOUND, 100).await;
}

async fn add_360dialog_sender(channel: &Channel, phone_number_id: &str, base_url: &str) {
    let sender = json!({
        "phone_number_id": phone_number_id, "display_phone_number": "15550783882", "waba_id": "102290129340398",
        "provider": "360dialog", "base_url": base_url, "credential": "d360-key",
    });
    expect_json(channel.post("/v1/senders", &sender).await, StatusCode::CREATED).await;
}

async fn upstream_errors_come_back_unchanged_and_ambiguous_failures_are_not_retried(app: TestApp) {
    let channel = channel_with_templates(app).await;
    channel.opt_in(&["offers"]).await;
    channel.upstream.fail_next(1, 503);
    let response = channel.proxy_send(&template_body("spring_sale")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["fbtrace_id"], "AFakeUpstreamTrace", "the upstream's own body: {body}");
    assert_eq!(channel.upstream.attempts(), 1, "a 5xx is the client's to retry");

    channel.upstream.hang_next(1, Duration::from_secs(4));
    let response = channel.proxy_send(&template_body("spring_sale")).await;
    let error = expect_graph_error(response, StatusCode::GATEWAY_TIMEOUT, 131_000).await;
    assert_eq!(reason_codes(&error), ["upstream_no_answer"]);
    assert!(text(&error["error_data"]["details"]).contains("may have been sent"));
    assert_eq!(channel.upstream.attempts(), 2, "a request that may have been delivered is not sent again");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    add_360dialog_sender(&channel, "200000000000003", &unreachable).await;
    let path = format!("/proxy/{}/v23.0/200000000000003/messages", channel.business.id);
    let response = channel.proxy_request(&path, &channel.business.key, &template_body("spring_sale")).send().await;
    let error = expect_graph_error(response.unwrap(), StatusCode::BAD_GATEWAY, 131_016).await;
    assert_eq!(reason_codes(&error), ["upstream_unreachable"]);
    assert!(text(&error["error_data"]["details"]).contains("was not sent"));
    assert!(!text(&error["error_data"]["details"]).contains("d360-key"), "no credential in errors");

    let response = channel.proxy_send(&template_body("spring_sale")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    assert_eq!(channel.upstream.sent().iter().filter(|m| m.body["to"] == WA_ID).count(), 1);
    assert_ne!(BEARER, channel.business.key, "the client never held the upstream token");
}

async fn the_proxy_routes_are_documented(app: TestApp) {
    let document = expect_json(app.get("/openapi.json").await, StatusCode::OK).await;
    let cloud = &document["paths"]["/proxy/{business_id}/{version}/{phone_number_id}/messages"]["post"];
    assert_eq!(cloud["security"], json!([{"business_key": []}]));
    let dialog = &document["paths"]["/proxy/{business_id}/messages"]["post"];
    assert_eq!(dialog["security"], json!([{"d360_api_key": []}]));
    let parameters: Vec<&str> =
        dialog["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(parameters.contains(&"X-Optin-Phone-Number-Id"), "{parameters:?}");
    let scheme = &document["components"]["securitySchemes"]["d360_api_key"];
    assert_eq!((scheme["type"].as_str(), scheme["name"].as_str()), (Some("apiKey"), Some("D360-API-KEY")));
    assert!(document["components"]["schemas"].get("GraphErrorEnvelope").is_some());
}

async fn templates_outside_the_window_stop_at_the_messaging_limit(app: TestApp) {
    let channel = channel_with_templates(app).await;
    let limit = channel.put("/v1/messaging-limit", &json!({"limit": 1})).await;
    expect_json(limit, StatusCode::OK).await;
    let other = "14155550123";
    for phone in [CONTACT.to_owned(), format!("+{other}")] {
        let opt_in = crate::helpers::web_form_opt_in(&phone, &["order_updates"], &channel.notice_id);
        expect_json(channel.app.post_opt_in(&channel.business.key, &opt_in).await, StatusCode::CREATED).await;
    }
    let first = channel.proxy_send(&template_body("order_shipped")).await;
    assert_eq!(first.status(), StatusCode::OK, "the first unique recipient takes the one place");
    let again = channel.proxy_send(&template_body("order_shipped")).await;
    assert_eq!(again.status(), StatusCode::OK, "the same recipient again needs no new place");
    let mut to_other = template_body("order_shipped");
    to_other["to"] = json!(other);
    let refused = expect_graph_error(channel.proxy_send(&to_other).await, StatusCode::BAD_REQUEST, 131_048).await;
    assert_eq!(reason_codes(&refused), ["tier_cap_reached"]);
    assert_eq!(channel.upstream.sent().len(), 2, "the refused message reached nobody");
    // Inside the service window a message is not business-initiated: no place is needed.
    let free_form =
        json!({"messaging_product": "whatsapp", "to": other, "type": "text", "text": {"body": "On its way."}});
    let mut window = text_message("wamid.limit2", "Hi", recent());
    window["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = json!(other);
    channel.deliver(&window).await;
    let answered = channel.proxy_send(&free_form).await;
    assert_eq!(answered.status(), StatusCode::OK);
}

async fn the_frequency_cap_counts_forwarded_messages_of_the_category(app: TestApp) {
    let channel = channel_with_templates(app).await;
    // Florida caps marketing at 3 per 24 hours (shipped rules); its sending window is lifted so
    // that the test does not depend on the hour.
    let rules = "[country.US]\nquiet_hours = false\n[region.US-FL]\nquiet_hours = false\n";
    expect_json(channel.put("/v1/jurisdiction-policy", &json!({"rules": rules})).await, StatusCode::OK).await;
    let (miami, miami_wa_id) = ("+13055551234", "13055551234");
    let opt_in = crate::helpers::web_form_opt_in(miami, &["offers", "order_updates"], &channel.notice_id);
    expect_json(channel.app.post_opt_in(&channel.business.key, &opt_in).await, StatusCode::CREATED).await;
    channel.opt_in(&["offers"]).await;
    let to = |name: &str, wa_id: &str| {
        let mut body = template_body(name);
        body["to"] = json!(wa_id);
        body
    };
    let first_sent = jiff::Timestamp::now();
    for n in 1..=3 {
        let response = channel.proxy_send(&to("spring_sale", miami_wa_id)).await;
        assert_eq!(response.status(), StatusCode::OK, "marketing message {n} of 3");
    }
    let fourth = channel.proxy_send(&to("spring_sale", miami_wa_id)).await;
    let refused = expect_graph_error(fourth, StatusCode::BAD_REQUEST, 131_049).await;
    assert_eq!(reason_codes(&refused), ["frequency_cap"]);
    let retry: jiff::Timestamp = text(&refused["optin_reasons"][0]["retry_after"]).parse().unwrap();
    let day = jiff::SignedDuration::from_hours(24);
    assert!(retry >= first_sent + day && retry < jiff::Timestamp::now() + day, "24 h after the first: {retry}");
    // Utility messages are not capped, nor are recipients elsewhere (California).
    assert_eq!(channel.proxy_send(&to("order_shipped", miami_wa_id)).await.status(), StatusCode::OK);
    for _ in 0..4 {
        assert_eq!(channel.proxy_send(&template_body("spring_sale")).await.status(), StatusCode::OK);
    }
    assert_eq!(channel.upstream.sent().len(), 3 + 1 + 4, "the refused message reached nobody");
    // Decisions count the same sends: refused now, allowed once the period has passed.
    let key = &channel.business.key;
    let now = channel.app.post_decision(key, &json!({"phone": miami, "category": "offers"})).await;
    let now = expect_json(now, StatusCode::OK).await;
    assert_eq!(now["reasons"][0]["code"], "frequency_cap", "{now}");
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(25)).to_string();
    let tomorrow = channel.app.post_decision(key, &json!({"phone": miami, "category": "offers", "at": later})).await;
    assert_eq!(expect_json(tomorrow, StatusCode::OK).await["allowed"], true);
    let line = json!({"phone": miami, "category": "offers"}).to_string();
    let batch = crate::api::decide_lines(&channel.app, key, &[line]).await;
    assert_eq!(batch[0]["reasons"][0]["code"], "frequency_cap", "{batch:?}");
}
