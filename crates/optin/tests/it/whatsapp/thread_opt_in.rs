//! The opt-in question inside the thread, and its answers.

use serde_json::json;

use super::*;
use crate::helpers::{TestApp, on_both_backends};

on_both_backends!(
    a_contact_who_writes_is_asked_once_and_a_tap_records_the_opt_in,
    a_reply_to_an_unknown_message_records_nothing,
    no_question_when_the_contact_already_answered_for_every_category,
    no_thanks_records_nothing,
    more_than_two_categories_are_offered_as_a_list,
);

async fn enable_question(channel: &Channel, categories: &[&str]) {
    let policy = json!({"thread_opt_in": {
        "enabled": true, "notice_id": channel.notice_id, "categories": categories,
        "labels": {"offers": "Offers & news"}, "ask_again_after_days": 30,
    }});
    channel.set_policy(&policy).await;
}

async fn a_contact_who_writes_is_asked_once_and_a_tap_records_the_opt_in(app: TestApp) {
    let channel = Channel::new(app).await;
    enable_question(&channel, &["offers"]).await;
    channel.deliver(&text_message("wamid.hi1", "Hi! Do you have these in size 42?", recent())).await;
    let sent = channel.wait_sent_and_recorded(1).await;
    let question = &sent[0];
    assert_eq!(question.body["type"], "interactive");
    assert_eq!(question.body["to"], WA_ID);
    let interactive = &question.body["interactive"];
    assert_eq!(interactive["type"], "button");
    assert_eq!(interactive["body"]["text"], crate::helpers::NOTICE_TEXT, "the registered notice is the question");
    let buttons = interactive["action"]["buttons"].as_array().unwrap();
    let ids: Vec<&str> = buttons.iter().map(|b| b["reply"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["optin:offers", "optin:none"]);
    assert_eq!(buttons[0]["reply"]["title"], "Offers & news");

    // A second message in the period: no second question.
    channel.deliver(&text_message("wamid.hi2", "Hello again", recent())).await;
    channel.app.processor.wait_for_sends().await;
    assert_eq!(channel.upstream.sent().len(), 1);

    let answer = button_reply("wamid.ans1", "optin:offers", "Offers & news", &question.wamid, recent());
    channel.deliver(&answer).await;
    assert!(channel.decide("offers").await.0, "opted in by the tap");
    assert_eq!(channel.decide("order_updates").await.1, ["no_opt_in"], "only what was offered");
    let events = channel.events().await;
    let event = events.last().unwrap();
    assert_eq!(event["kind"], "opt_in");
    assert_eq!(event["method"], "whatsapp_thread");
    assert_eq!(event["evidence"]["message_id"], "wamid.ans1");
    assert_eq!(event["evidence"]["question_message_id"], question.wamid.as_str());
    assert_eq!(event["notice"]["id"], channel.notice_id.as_str());
    // The same answer delivered again records nothing more.
    channel.deliver(&answer).await;
    assert_eq!(channel.events().await.len(), events.len());
}

async fn a_reply_to_an_unknown_message_records_nothing(app: TestApp) {
    let channel = Channel::new(app).await;
    enable_question(&channel, &["offers"]).await;
    let answer = button_reply("wamid.ans2", "optin:offers", "Offers", "wamid.never-sent", recent());
    let delivery = channel.deliver(&answer).await;
    assert_eq!(delivery["state"], "processed");
    assert_eq!(channel.decide("offers").await.1, ["no_opt_in"]);
    let unmatched = channel.signals("kind=unmatched_reply").await;
    assert_eq!(unmatched.len(), 1);
    assert_eq!(unmatched[0]["detail"]["context_message_id"], "wamid.never-sent");
}

async fn no_question_when_the_contact_already_answered_for_every_category(app: TestApp) {
    let channel = Channel::new(app).await;
    enable_question(&channel, &["offers", "order_updates"]).await;
    channel.opt_in(&["offers"]).await;
    channel.deliver(&text_message("wamid.q1", "Hello", recent())).await;
    let sent = channel.wait_sent_and_recorded(1).await;
    let ids: Vec<&str> = sent[0].body["interactive"]["action"]["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reply"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["optin:order_updates", "optin:none"], "only the category without an answer");

    let other = Channel::new(crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await).await;
    enable_question(&other, &["offers"]).await;
    other.opt_in(&["offers"]).await;
    other.deliver(&text_message("wamid.q2", "Hello", recent())).await;
    other.app.processor.wait_for_sends().await;
    assert!(other.upstream.sent().is_empty(), "nothing to ask");
}

async fn no_thanks_records_nothing(app: TestApp) {
    let channel = Channel::new(app).await;
    enable_question(&channel, &["offers"]).await;
    channel.deliver(&text_message("wamid.nt1", "Hi", recent())).await;
    let sent = channel.wait_sent_and_recorded(1).await;
    channel.deliver(&button_reply("wamid.nt2", "optin:none", "No thanks", &sent[0].wamid, recent())).await;
    assert_eq!(channel.decide("offers").await.1, ["no_opt_in"]);
    assert!(channel.events().await.is_empty());
}

async fn more_than_two_categories_are_offered_as_a_list(app: TestApp) {
    let channel = Channel::new(app).await;
    let path = format!("/v1/businesses/{}/categories", channel.business.id);
    let tips = json!({"categories": [{"name": "style_tips", "template_category": "marketing"}]});
    let response = channel.app.operator(reqwest::Method::POST, &path).json(&tips).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    enable_question(&channel, &["offers", "order_updates", "style_tips"]).await;
    channel.deliver(&text_message("wamid.list1", "Hi", recent())).await;
    let sent = channel.wait_sent_and_recorded(1).await;
    let interactive = &sent[0].body["interactive"];
    assert_eq!(interactive["type"], "list", "{interactive}");
    let rows = interactive["action"]["sections"][0]["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["optin:offers", "optin:order_updates", "optin:style_tips", "optin:none"]);
    assert_eq!(rows[2]["title"], "Style tips", "the default label");
    let mut answer = button_reply("wamid.list2", "optin:style_tips", "Style tips", &sent[0].wamid, recent());
    let message = &mut answer["entry"][0]["changes"][0]["value"]["messages"][0];
    message["interactive"] =
        json!({"type": "list_reply", "list_reply": {"id": "optin:style_tips", "title": "Style tips"}});
    channel.deliver(&answer).await;
    assert!(channel.decide("style_tips").await.0);
    assert_eq!(channel.decide("offers").await.1, ["no_opt_in"]);
}
