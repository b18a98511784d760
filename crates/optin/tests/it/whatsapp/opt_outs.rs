//! Opt-outs from the thread and the platform, honoured at once, with their evidence.

use serde_json::{Value, json};

use super::*;
use crate::helpers::{TestApp, on_both_backends};

on_both_backends!(
    a_bare_stop_opts_out_of_everything_with_its_message_as_evidence,
    a_bare_stop_may_cover_marketing_categories_only,
    a_keyword_followed_by_a_category_opts_out_of_that_category,
    a_keyword_inside_a_sentence_is_kept_for_review_not_acted_on,
    keywords_in_other_languages_and_the_businesss_own_count,
    the_stop_promotions_button_and_configured_payloads_opt_out_of_marketing,
    user_preferences_stop_opts_out_and_resume_follows_the_policy,
    a_131050_failure_opts_out_of_marketing,
    an_opt_out_is_confirmed_once_in_the_contacts_language,
    start_resubscribes_only_what_was_opted_out_under_a_thread_notice,
    a_start_reply_confirms_a_pending_double_opt_in,
    an_opt_out_from_a_username_only_contact_applies_once_their_number_is_known,
    a_confirmation_through_360dialog_uses_its_endpoint_and_key,
);

fn last_event(events: &[Value]) -> &Value {
    events.last().expect("an event")
}

async fn a_bare_stop_opts_out_of_everything_with_its_message_as_evidence(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel.deliver(&text_message("wamid.stop1", "  Stop. Thank you 🙏", recent())).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert_eq!(channel.decide("order_updates").await.1, ["opted_out"]);
    let events = channel.events().await;
    let event = last_event(&events);
    assert_eq!(event["kind"], "opt_out", "{event}");
    assert_eq!(event["source"], "keyword");
    assert_eq!(event["evidence"]["message_id"], "wamid.stop1");
    assert_eq!(event["evidence"]["text"], "  Stop. Thank you 🙏");
    assert_eq!(channel.app.verify_ledger(&channel.business.key).await["intact"], true);
}

async fn a_bare_stop_may_cover_marketing_categories_only(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel.set_policy(&json!({"bare_keyword_scope": "marketing"})).await;
    channel.deliver(&text_message("wamid.stop2", "stop please", recent())).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert!(channel.decide("order_updates").await.0, "utility stays");
}

async fn a_keyword_followed_by_a_category_opts_out_of_that_category(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel.deliver(&text_message("wamid.stop3", "STOP OFFERS", recent())).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert!(channel.decide("order_updates").await.0);
    // "order updates" names the category `order_updates`.
    channel.deliver(&text_message("wamid.stop4", "unsubscribe order updates", recent())).await;
    assert_eq!(channel.decide("order_updates").await.1, ["opted_out"]);
}

async fn a_keyword_inside_a_sentence_is_kept_for_review_not_acted_on(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers"]).await;
    channel.deliver(&text_message("wamid.review1", "don't stop my order, I still want it!", recent())).await;
    assert!(channel.decide("offers").await.0, "still opted in");
    let review = channel.signals("kind=possible_opt_out").await;
    assert_eq!(review.len(), 1, "{review:?}");
    assert_eq!(review[0]["message_id"], "wamid.review1");
    assert_eq!(review[0]["phone"], CONTACT);
}

async fn keywords_in_other_languages_and_the_businesss_own_count(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel
        .set_policy(&json!({
            "category_aliases": {"offers": ["promociones", "ofertas"]},
            "keywords": [{"text": "NO MAS", "intent": "opt_out"}],
        }))
        .await;
    channel.deliver(&text_message("wamid.es1", "BAJA PROMOCIONES", recent())).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert!(channel.decide("order_updates").await.0, "only the named category");
    channel.deliver(&text_message("wamid.custom1", "No más!", recent())).await;
    assert_eq!(channel.decide("order_updates").await.1, ["opted_out"], "the business's own keyword, accents ignored");
}

async fn the_stop_promotions_button_and_configured_payloads_opt_out_of_marketing(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel.deliver(&button_message("wamid.btn1", "Stop promotions", "wamid.template1", recent())).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert!(channel.decide("order_updates").await.0, "a marketing opt-out only");
    let events = channel.events().await;
    let event = last_event(&events);
    assert_eq!(event["source"], "platform");
    assert_eq!(event["evidence"]["button_payload"], "Stop promotions");
    assert_eq!(event["evidence"]["context_message_id"], "wamid.template1");

    // Another business: its own payload, and the Portuguese label.
    let other = Channel::new(crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await).await;
    other.opt_in(&["offers"]).await;
    other.set_policy(&json!({"opt_out_payloads": ["OPTOUT:marketing"]})).await;
    other.deliver(&button_message("wamid.btn2", "OPTOUT:marketing", "wamid.t2", recent())).await;
    assert_eq!(other.decide("offers").await.1, ["opted_out"]);
    other.opt_in(&["offers"]).await;
    other.deliver(&button_message("wamid.btn3", "Parar promoções", "wamid.t3", recent())).await;
    assert_eq!(other.decide("offers").await.1, ["opted_out"]);
}

async fn user_preferences_stop_opts_out_and_resume_follows_the_policy(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    let at = recent();
    let stop = user_preference("stop", at);
    channel.deliver(&stop).await;
    channel.deliver(&stop).await; // delivered again (known to happen)
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert!(channel.decide("order_updates").await.0);
    let opt_outs = channel.events().await.into_iter().filter(|e| e["kind"] == "opt_out").count();
    assert_eq!(opt_outs, 1);
    // By default a resume is only a signal.
    channel.deliver(&user_preference("resume", at + 1)).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    let preferences = channel.signals("kind=user_preference").await;
    let values: Vec<&str> = preferences.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(values, ["stop", "resume"]);
    // Where the policy says so, a resume restores the marketing categories.
    let policy = json!({"resume_restores_marketing": true, "resubscribe_notice_id": channel.notice_id});
    channel.set_policy(&policy).await;
    channel.deliver(&user_preference("resume", at + 2)).await;
    assert!(channel.decide("offers").await.0);
    let events = channel.events().await;
    let event = last_event(&events);
    assert_eq!(event["kind"], "opt_in");
    assert_eq!(event["method"], "whatsapp_thread");
    assert_eq!(event["evidence"]["webhook"], "user_preferences");
}

async fn a_131050_failure_opts_out_of_marketing(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    channel.deliver(&statuses(&[status_item("wamid.fail1", "failed", recent(), Some(131_050))])).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert!(channel.decide("order_updates").await.0);
    // 131049 (per-user marketing limit) is not an opt-out.
    channel.opt_in(&["offers"]).await;
    channel.deliver(&statuses(&[status_item("wamid.fail2", "failed", recent(), Some(131_049))])).await;
    assert!(channel.decide("offers").await.0);
    let failed = channel.signals("kind=message_status&error_code=131049").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error_codes"], json!([131_049]));
}

async fn an_opt_out_is_confirmed_once_in_the_contacts_language(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    let confirmations = json!({"opt_out_confirmation": {
        "en": "You're unsubscribed from Acme Shoes.", "es": "Ya no recibirás mensajes de Acme Shoes."}});
    channel.set_policy(&confirmations).await;
    channel.deliver(&text_message("wamid.conf1", "BAJA", recent())).await;
    let sent = channel.upstream.wait_for_sent(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(sent[0].phone_number_id.as_deref(), Some(PHONE_NUMBER_ID));
    assert_eq!(sent[0].body["type"], "text");
    assert_eq!(sent[0].body["to"], WA_ID);
    assert_eq!(sent[0].body["text"]["body"], "Ya no recibirás mensajes de Acme Shoes.");
    // Already opted out: a second STOP records an event but the window rule still allows one
    // confirmation per opt-out; an old message (window closed) gets none.
    let old = jiff::Timestamp::now().as_second() - 3 * 24 * 3600;
    channel.deliver(&text_message("wamid.conf2", "STOP", old)).await;
    channel.app.processor.wait_for_sends().await;
    assert_eq!(channel.upstream.sent().len(), 1, "no confirmation outside the service window");
}

async fn start_resubscribes_only_what_was_opted_out_under_a_thread_notice(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["order_updates"]).await;
    let at = recent() - 10;
    channel.deliver(&text_message("wamid.rs1", "STOP", at)).await;
    assert_eq!(channel.decide("order_updates").await.1, ["opted_out"]);
    assert_eq!(channel.decide("offers").await.1, ["opted_out"], "a bare STOP covers every category");
    // Without a notice for thread re-subscriptions, START changes nothing.
    let delivery = channel.deliver(&text_message("wamid.rs2", "START", at + 2)).await;
    assert!(delivery["note"].as_str().unwrap_or("").contains("resubscribe_notice_id"), "{delivery}");
    assert_eq!(channel.decide("order_updates").await.1, ["opted_out"]);
    channel.set_policy(&json!({"resubscribe_notice_id": channel.notice_id})).await;
    channel.deliver(&text_message("wamid.rs3", "Start", at + 4)).await;
    assert!(channel.decide("order_updates").await.0, "what the contact had opted in to comes back");
    assert_eq!(channel.decide("offers").await.1, ["opted_out"], "what they never opted in to does not");
    let events = channel.events().await;
    let event = last_event(&events);
    assert_eq!(event["kind"], "opt_in");
    assert_eq!(event["categories"], json!(["order_updates"]));
    assert_eq!(event["method"], "whatsapp_thread");
    assert_eq!(event["evidence"]["message_id"], "wamid.rs3");
    assert_eq!(event["notice"]["id"], channel.notice_id.as_str());
}

async fn a_start_reply_confirms_a_pending_double_opt_in(app: TestApp) {
    let channel = Channel::new(app).await;
    let mut body = crate::helpers::web_form_opt_in(CONTACT, &["offers"], &channel.notice_id);
    body["double_opt_in"] = json!(true);
    let opt_in = channel.app.post_opt_in(&channel.business.key, &body).await;
    crate::helpers::expect_json(opt_in, reqwest::StatusCode::CREATED).await;
    assert_eq!(channel.decide("offers").await.1, ["opt_in_pending_confirmation"]);
    // No notice for re-subscriptions is needed: this confirms an opt-in given under its own notice.
    channel.deliver(&text_message("wamid.confirm1", "START", recent() - 5)).await;
    assert!(channel.decide("offers").await.0, "confirmed by the reply");
    let events = channel.events().await;
    let event = last_event(&events);
    assert_eq!((event["kind"].as_str(), event["method"].as_str()), (Some("confirmation"), Some("whatsapp_thread")));
    assert_eq!(event["evidence"]["message_id"], "wamid.confirm1");
    // The same delivery again records nothing new.
    channel.deliver(&text_message("wamid.confirm1", "START", recent() - 5)).await;
    assert_eq!(channel.events().await.len(), events.len());
    // A request past its confirmation deadline is not confirmed by a reply (nor re-subscribed).
    let now = jiff::Timestamp::now();
    let mut late = crate::helpers::web_form_opt_in(CONTACT, &["order_updates"], &channel.notice_id);
    late["double_opt_in"] = json!(true);
    late["collected_at"] = json!((now - jiff::SignedDuration::from_hours(3)).to_string());
    late["evidence"]["confirmation_deadline"] = json!((now - jiff::SignedDuration::from_hours(1)).to_string());
    let opt_in = channel.app.post_opt_in(&channel.business.key, &late).await;
    crate::helpers::expect_json(opt_in, reqwest::StatusCode::CREATED).await;
    let before = channel.events().await.len();
    channel.deliver(&text_message("wamid.confirm2", "START", recent())).await;
    assert_eq!(channel.decide("order_updates").await.1, ["opt_in_pending_confirmation"]);
    assert_eq!(channel.events().await.len(), before, "nothing recorded");
}

async fn an_opt_out_from_a_username_only_contact_applies_once_their_number_is_known(app: TestApp) {
    let channel = Channel::new(app).await;
    channel.opt_in(&["offers", "order_updates"]).await;
    let user_id = "US.13491208655302741918";
    // A user with a username: no `wa_id`, only the business-scoped user id.
    let stop = envelope(
        "messages",
        &json!({
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [{ "profile": { "name": "Sheena" }, "user_id": user_id }],
            "messages": [{ "from_user_id": user_id, "id": "wamid.user1", "timestamp": (recent() - 20).to_string(),
                "type": "text", "text": { "body": "STOP" } }]
        }),
    );
    channel.deliver(&stop).await;
    let kept = channel.signals(&format!("kind=unlinked_opt_out&user_id={user_id}")).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["user_id"], user_id);
    assert!(channel.decide("offers").await.0, "the number is not known yet");
    // Later a webhook names both: the kept opt-out enters the ledger.
    let mut hello = text_message("wamid.user2", "Hello", recent());
    hello["entry"][0]["changes"][0]["value"]["contacts"] = json!([{ "wa_id": WA_ID, "user_id": user_id }]);
    channel.deliver(&hello).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    assert_eq!(channel.decide("order_updates").await.1, ["opted_out"]);
    let events = channel.events().await;
    assert_eq!(last_event(&events)["evidence"]["message_id"], "wamid.user1");
    channel.deliver(&hello).await;
    channel.deliver(&text_message("wamid.user3", "Hi again", recent())).await;
    assert_eq!(channel.events().await.len(), events.len(), "recorded once");
}

async fn a_confirmation_through_360dialog_uses_its_endpoint_and_key(app: TestApp) {
    let channel = Channel::new(app).await;
    let sender = json!({"phone_number_id": "200000000000009", "display_phone_number": "15550001111",
        "waba_id": "300000000000001", "provider": "360dialog", "base_url": channel.upstream.base_url(),
        "credential": "d360-key"});
    expect_json(channel.post("/v1/senders", &sender).await, reqwest::StatusCode::CREATED).await;
    channel.set_policy(&json!({"opt_out_confirmation": {"en": "You're unsubscribed from Acme Shoes."}})).await;
    channel.opt_in(&["offers"]).await;
    // The upstream is briefly overloaded: the confirmation is retried, not lost.
    channel.upstream.fail_next(2, 429);
    let mut stop = text_message("wamid.d360", "STOP", recent());
    stop["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("200000000000009");
    channel.deliver(&stop).await;
    assert_eq!(channel.decide("offers").await.1, ["opted_out"]);
    let sent = channel.upstream.wait_for_sent(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(sent[0].provider, optin_core::whatsapp::Provider::Dialog360, "{sent:?}");
    assert_eq!(sent[0].body["text"]["body"], "You're unsubscribed from Acme Shoes.");
    assert_eq!(channel.upstream.attempts(), 3, "two 429s, then accepted");
    channel.app.processor.wait_for_sends().await;
    let metrics = channel.app.get("/metrics").await.text().await.unwrap();
    for series in [
        "optin_inbox_deliveries_total{outcome=\"processed\"}",
        "optin_webhook_consent_events_total{kind=\"opt_out\"}",
        "optin_thread_messages_total{purpose=\"opt_out_confirmation\",outcome=\"sent\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing from:\n{metrics}");
    }
}
