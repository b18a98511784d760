//! The template registry, template webhooks, and decisions about templates and free-form messages.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::helpers::{TestApp, expect_problem, on_both_backends};

on_both_backends!(
    templates_import_in_the_cloud_api_format_with_links_and_lint,
    template_decisions_need_approval_and_consent_to_the_linked_category,
    template_webhooks_keep_the_registry_current,
    free_form_messages_need_the_service_window,
);

/// The Cloud API's `GET /<WABA_ID>/message_templates` response.
fn templates_file() -> Value {
    json!({"data": [
        {"name": "spring_sale", "language": "en_US", "category": "MARKETING", "status": "APPROVED", "id": "1689556908129832",
         "components": [
            {"type": "BODY", "text": "Spring sale! 20% off everything."},
            {"type": "FOOTER", "text": "Not interested? Tap Stop promotions"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"}]}]},
        {"name": "flash_deal", "language": "en_US", "category": "MARKETING", "status": "APPROVED",
         "components": [{"type": "BODY", "text": "Flash deal today only."}]},
        {"name": "order_shipped", "language": "en_US", "category": "UTILITY", "status": "APPROVED",
         "optin_category": "order_updates",
         "components": [{"type": "BODY", "text": "Your order {{1}} has shipped."}]},
        {"name": "Bad Name", "language": "en_US", "category": "UTILITY", "status": "APPROVED", "components": []}
    ], "paging": {"cursors": {"before": "a", "after": "b"}}})
}

async fn import(channel: &Channel) -> Value {
    let response = channel.put("/v1/templates", &templates_file()).await;
    expect_json(response, StatusCode::OK).await
}

async fn templates_import_in_the_cloud_api_format_with_links_and_lint(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.set_policy(&json!({"template_category_defaults": {"marketing": "offers"}})).await;
    let report = import(&channel).await;
    let imported = report["imported"].as_array().unwrap();
    let names: Vec<&str> = imported.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["spring_sale", "flash_deal", "order_shipped"]);
    assert_eq!(imported[0]["linked_category"], "offers", "the default for marketing templates");
    assert_eq!(imported[2]["linked_category"], "order_updates", "named explicitly");
    assert_eq!(imported[0]["warnings"], json!([]));
    assert_eq!(imported[1]["warnings"][0]["code"], "marketing_template_without_opt_out");
    assert_eq!(report["problems"][0]["code"], "invalid_template_name", "{report}");
    let listed = channel.get("/v1/templates").await;
    assert_eq!(listed["templates"].as_array().unwrap().len(), 3);
    let one = channel.get("/v1/templates/order_shipped/en-US").await;
    assert_eq!(one["category"], "utility");
    assert_eq!(one["status"], "APPROVED");

    let not_json = channel
        .app
        .as_business(Method::PUT, "/v1/templates", &channel.business.key)
        .header("content-type", "application/json")
        .body("{\"data\": [")
        .send()
        .await
        .unwrap();
    expect_problem(not_json, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json").await;
    let unknown_link = json!([{"name": "x", "language": "en", "category": "UTILITY", "status": "APPROVED",
        "optin_category": "nope"}]);
    let report = expect_json(channel.put("/v1/templates", &unknown_link).await, StatusCode::OK).await;
    assert_eq!(report["problems"][0]["code"], "unknown_category");
}

async fn template_decisions_need_approval_and_consent_to_the_linked_category(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.set_policy(&json!({"template_category_defaults": {"marketing": "offers"}})).await;
    import(&channel).await;
    let decide = |name: &str| json!({"phone": CONTACT, "template": {"name": name, "language": "en_US"}});
    let refused = channel.decide_body(&decide("spring_sale")).await;
    assert_eq!(codes(&refused), ["not_opted_in_to_template_category"]);
    assert_eq!(refused["template_category"], "offers");
    channel.opt_in(&["offers"]).await;
    let allowed = channel.decide_body(&decide("spring_sale")).await;
    assert_eq!(allowed["allowed"], true, "a template needs no open window: {allowed}");
    assert_eq!(codes(&channel.decide_body(&decide("no_such_template")).await), ["template_not_found"]);
    assert_eq!(codes(&channel.decide_body(&decide("order_shipped")).await), ["not_opted_in_to_template_category"]);
    channel.deliver(&text_message("wamid.tpl1", "STOP OFFERS", recent())).await;
    let opted_out = channel.decide_body(&decide("spring_sale")).await;
    assert_eq!(codes(&opted_out), ["opted_out", "not_opted_in_to_template_category"]);

    let both = json!({"phone": CONTACT, "category": "offers", "message_type": "text"});
    let response = channel.app.post_decision(&channel.business.key, &both).await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message").await;
}

async fn template_webhooks_keep_the_registry_current(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["order_updates"]).await;
    import(&channel).await;
    let decide = json!({"phone": CONTACT, "template": {"name": "order_shipped", "language": "en_US"}});
    assert_eq!(channel.decide_body(&decide).await["allowed"], true);
    let time = jiff::Timestamp::now().as_second();
    let status = |event: &str, at: i64| {
        let mut payload = envelope(
            "message_template_status_update",
            &json!({"event": event, "message_template_id": 1_689_556_908_129_832_i64,
                "message_template_name": "order_shipped", "message_template_language": "en-US",
                "reason": "NONE", "message_template_category": "UTILITY",
                "other_info": {"title": "FIRST_PAUSE", "description": "Paused for low quality"}}),
        );
        payload["entry"][0]["time"] = json!(at);
        payload
    };
    channel.deliver(&status("PAUSED", time + 10)).await;
    let paused = channel.decide_body(&decide).await;
    assert_eq!(codes(&paused), ["template_not_approved"]);
    // An older event arriving late does not undo the newer one.
    channel.deliver(&status("APPROVED", time + 5)).await;
    assert_eq!(codes(&channel.decide_body(&decide).await), ["template_not_approved"]);
    channel.deliver(&status("APPROVED", time + 11)).await;
    assert_eq!(channel.decide_body(&decide).await["allowed"], true);

    // Meta's own example labels a quality update with the status field: routed on its shape.
    let mut quality = envelope(
        "message_template_status_update",
        &json!({"previous_quality_score": "GREEN", "new_quality_score": "RED", "message_template_id": 806_312_974_732_579_i64,
            "message_template_name": "order_shipped", "message_template_language": "en-US"}),
    );
    quality["entry"][0]["time"] = json!(time + 12);
    channel.deliver(&quality).await;
    let mut recategorized = envelope(
        "template_category_update",
        &json!({"message_template_id": 1, "message_template_name": "order_shipped",
            "message_template_language": "en_US", "previous_category": "UTILITY", "new_category": "MARKETING"}),
    );
    recategorized["entry"][0]["time"] = json!(time + 13);
    channel.deliver(&recategorized).await;
    let template = channel.get("/v1/templates/order_shipped/en_US").await;
    assert_eq!(template["quality"], "RED");
    assert_eq!(template["category"], "marketing");
    // Now marketing, it no longer counts against `order_updates` (utility): with no default for
    // marketing templates it is unlinked, and refused.
    assert_eq!(template["linked_category"], Value::Null);
    assert_eq!(codes(&channel.decide_body(&decide).await), ["template_not_linked"]);
    let kinds: Vec<String> = channel
        .signals("template=order_shipped")
        .await
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["template_status", "template_status", "template_status", "template_quality", "template_category"]
    );
}

async fn free_form_messages_need_the_service_window(app: TestApp) {
    let channel = Channel::new(app).await;
    let free_form = json!({"phone": CONTACT, "message_type": "text"});
    let closed = channel.decide_body(&free_form).await;
    assert_eq!(codes(&closed), ["outside_service_window"]);
    assert!(closed.get("service_window_closes_at").is_none());
    let at = recent();
    channel.deliver(&text_message("wamid.win1", "Is my order on its way?", at)).await;
    let open = channel.decide_body(&free_form).await;
    assert_eq!(open["allowed"], true, "{open}");
    let closes: jiff::Timestamp = open["service_window_closes_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(closes.as_second(), at + 24 * 3600);
    // A message older than a day does not reopen it for another contact.
    let old = jiff::Timestamp::now().as_second() - 25 * 3600;
    let mut late = text_message("wamid.win2", "Hello", old);
    late["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = json!("14155550123");
    channel.deliver(&late).await;
    let other = channel.decide_body(&json!({"phone": "+14155550123", "message_type": "text"})).await;
    assert_eq!(codes(&other), ["outside_service_window"]);
}
