//! The preference page over HTTP: a signed link per contact, its categories turned off and on.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::Site;
use crate::helpers::{TestApp, expect_json, expect_problem, on_both_backends, web_form_opt_in};

on_both_backends!(a_contact_turns_categories_off_and_on_from_their_link, links_open_only_their_own_contact);

const PHONE: &str = "+14155552671";

async fn link(site: &Site, body: &Value) -> reqwest::Response {
    site.app.as_business(Method::POST, "/v1/preference-links", &site.business.key).json(body).send().await.unwrap()
}

fn path_of(created: &Value) -> String {
    let url = created["url"].as_str().unwrap();
    url[url.find("/p/").unwrap()..].to_owned()
}

async fn a_contact_turns_categories_off_and_on_from_their_link(app: TestApp) {
    let site = Site::new(app).await;
    let opt_in = web_form_opt_in(PHONE, &["offers", "order_updates"], &site.notice_id);
    assert_eq!(site.app.post_opt_in(&site.business.key, &opt_in).await.status(), StatusCode::CREATED);
    let created =
        expect_json(link(&site, &json!({"phone": "(415) 555-2671", "country": "US"})).await, StatusCode::CREATED).await;
    assert_eq!(created["phone"], PHONE);
    let path = path_of(&created);

    let (status, headers, page) = site.page(&path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(page.contains("Your WhatsApp messages from Acme Shoes"));
    assert!(page.contains("value=\"offers\" id=\"category-offers\" checked"));
    assert!(page.contains("You receive these") && page.contains("how: web_form"), "{page}");
    assert!(page.contains(crate::helpers::NOTICE_TEXT), "the notice is shown for turning one on");

    // Untick offers: an opt-out from the preference page, in effect at once.
    let (status, saved) = site.post_page(&path, &[("category", "order_updates")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(saved.contains("Your choices are saved."));
    assert!(!site.app.decide(&site.business.key, PHONE, "offers").await.0);
    assert!(site.app.decide(&site.business.key, PHONE, "order_updates").await.0);
    let events = site.events(PHONE).await;
    let last = &events.last().unwrap()["event"];
    assert_eq!((last["kind"].as_str(), last["source"].as_str()), (Some("opt_out"), Some("preference_page")), "{last}");
    assert_eq!(last["categories"], json!(["offers"]));
    assert_eq!(last["evidence"]["ip"], "127.0.0.1");

    // Ticking it again needs the notice agreed to.
    let (status, page) = site.post_page(&path, &[("category", "order_updates"), ("category", "offers")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("tick that you agree"), "{page}");
    assert!(!site.app.decide(&site.business.key, PHONE, "offers").await.0, "nothing changed");
    let fields = [("category", "order_updates"), ("category", "offers"), ("agree", "yes")];
    assert_eq!(site.post_page(&path, &fields).await.0, StatusCode::OK);
    assert!(site.app.decide(&site.business.key, PHONE, "offers").await.0);
    let events = site.events(PHONE).await;
    let last = &events.last().unwrap()["event"];
    assert_eq!((last["kind"].as_str(), last["method"].as_str()), (Some("opt_in"), Some("web_form")));
    assert_eq!(last["notice"]["id"], site.notice_id.as_str());
    assert!(last["evidence"]["preference_link"].is_string());
    assert!(!last.to_string().contains(&path[3..]), "the link itself is not kept");
    assert_eq!(site.app.verify_ledger(&site.business.key).await["intact"], true);
    // Another site cannot post the page for the person.
    let (status, _) = site.post_page_from(&path, &[], Some("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(site.app.decide(&site.business.key, PHONE, "order_updates").await.0);
}

async fn links_open_only_their_own_contact(app: TestApp) {
    let site = Site::new(app).await;
    let other = site.app.create_business("Globex Shoes").await;
    let mine = expect_json(link(&site, &json!({"phone": PHONE})).await, StatusCode::CREATED).await;
    let token = mine["token"].as_str().unwrap();
    // The same claims signed by nobody, or pointed at another business, open nothing and say nothing.
    let (payload, tag) = token.split_once('.').unwrap();
    let claims: Value = serde_json::from_slice(&base64_decode(payload)).unwrap();
    let mut moved = claims.clone();
    moved["b"] = json!(other.id);
    let moved_token = format!("{}.{tag}", base64_encode(&serde_json::to_vec(&moved).unwrap()));
    let mut later = claims.clone();
    later["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400 * 365);
    let later_token = format!("{}.{tag}", base64_encode(&serde_json::to_vec(&later).unwrap()));
    for bad in [moved_token, later_token, format!("{payload}.AAAA"), "garbage".to_owned(), format!("{token}{token}")] {
        let (status, _, page) = site.page(&format!("/p/{bad}"), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert!(page.contains("This link does not work"));
        assert!(!page.contains("Acme") && !page.contains("Globex") && !page.contains("2671"), "reveals nothing");
    }
    // Asking for a link checks its input.
    expect_problem(link(&site, &json!({"phone": "123"})).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone")
        .await;
    let too_long = json!({"phone": PHONE, "expires_in_hours": 100_000});
    expect_problem(link(&site, &too_long).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_expires_in_hours").await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
