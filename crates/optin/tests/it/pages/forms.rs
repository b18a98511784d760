//! The hosted opt-in form over HTTP: what it shows, what a submission records, what it refuses.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{PHONE_NUMBER_ID, Site, csrf_of, link_path_of};
use crate::helpers::{TestApp, expect_json, expect_problem, on_both_backends, problem_codes};

on_both_backends!(
    a_submission_records_a_web_form_opt_in_with_the_pages_evidence,
    mistakes_are_shown_next_to_their_fields_with_the_input_kept,
    posts_from_other_sites_and_forged_forms_are_refused,
    submissions_for_one_number_are_rate_limited,
    only_the_configured_origins_may_frame_a_form,
    form_settings_are_checked,
    a_double_opt_in_waits_for_the_link_sent_on_whatsapp,
);

/// Form fields as posted.
type Fields<'a> = &'a [(&'a str, &'a str)];

const PHONE: &str = "+4915112345678";
/// Austria does not expect a double opt-in (Germany does, in the shipped rules).
const AUSTRIAN: &str = "+436641234567";

async fn a_submission_records_a_web_form_opt_in_with_the_pages_evidence(app: TestApp) {
    let site = Site::new(app).await;
    let created = site.form("newsletter", json!({})).await;
    assert!(created["url"].as_str().unwrap().ends_with(&site.form_path("newsletter")), "{created}");
    let referrer = "https://shop.example/checkout";
    let (status, headers, html) =
        site.page(&site.form_path("newsletter"), &[("accept-language", "de-AT,de;q=0.9"), ("referer", referrer)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Get WhatsApp messages from Acme Shoes"), "the business is named");
    assert!(html.contains(crate::helpers::NOTICE_TEXT), "the registered notice is shown");
    assert!(html.contains("<label for=\"category-offers\">Offers and sales</label>"));
    assert!(!html.contains(" checked"), "no box is ticked in advance");
    assert!(
        html.contains("<option value=\"AT\" data-calling-code=\"43\" selected>"),
        "the country comes from the browser"
    );
    let overridden = format!("{}?country=gb", site.form_path("newsletter"));
    let (_, _, gb) = site.page(&overridden, &[("accept-language", "de-AT")]).await;
    assert!(gb.contains("<option value=\"GB\" data-calling-code=\"44\" selected>"), "?country overrides the browser");
    let (_, _, none) = site.page(&site.form_path("newsletter"), &[("accept-language", "en")]).await;
    assert!(none.contains("<option value=\"\" data-calling-code=\"0\" selected>"), "no guess: international format");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("form-action 'self'"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");

    let csrf = csrf_of(&html);
    let fields = [("csrf", csrf.as_str()), ("country", "AT"), ("phone", "0664 1234567"), ("category", "offers")];
    let (status, done) = site.post_page(&site.form_path("newsletter"), &fields).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("You&#39;re signed up"), "the title, escaped: {done}");
    assert!(done.contains("Offers and sales") && !done.contains("Order updates"));

    assert!(site.app.decide(&site.business.key, AUSTRIAN, "offers").await.0);
    assert!(!site.app.decide(&site.business.key, AUSTRIAN, "order_updates").await.0, "only what was ticked");
    let events = site.events(AUSTRIAN).await;
    assert_eq!(events.len(), 1);
    let event = &events[0]["event"];
    assert_eq!(event["method"], "web_form");
    assert_eq!(event["categories"], json!(["offers"]));
    let evidence = &event["evidence"];
    assert!(evidence["page_url"].as_str().unwrap().ends_with(&site.form_path("newsletter")), "{evidence}");
    assert_eq!(evidence["referrer"], referrer);
    assert_eq!(evidence["ip"], "127.0.0.1");
    assert_eq!(evidence["user_agent"], "pages-test/1.0");
    assert_eq!(evidence["categories_ticked"], json!(["offers"]));
    assert_eq!(evidence["form_id"], "newsletter");
    assert_eq!(event["notice"]["id"], site.notice_id.as_str());
    assert_eq!(site.app.verify_ledger(&site.business.key).await["intact"], true);
    // A German number waits for its confirmation even on a single opt-in form: the jurisdiction expects it.
    let fields = [("csrf", csrf.as_str()), ("phone", PHONE), ("category", "offers")];
    let (status, page) = site.post_page(&site.form_path("newsletter"), &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Almost done") && page.contains("Acme Shoes will send you a link"), "{page}");
    let (allowed, reasons) = site.app.decide(&site.business.key, PHONE, "offers").await;
    assert!(!allowed && reasons.contains(&"opt_in_pending_confirmation".to_owned()), "{reasons:?}");
    // The business sends the link itself: it asks for one, the person opens it and confirms.
    let ask = |body: Value| {
        site.app.as_business(reqwest::Method::POST, "/v1/confirmation-links", &site.business.key).json(&body).send()
    };
    let none = ask(json!({"phone": AUSTRIAN})).await.unwrap();
    expect_problem(none, StatusCode::CONFLICT, "nothing_to_confirm").await;
    let unknown = ask(json!({"phone": PHONE, "categories": ["nope"]})).await.unwrap();
    expect_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "unknown_category").await;
    let created =
        expect_json(ask(json!({"phone": "0151 1234 5678", "country": "DE"})).await.unwrap(), StatusCode::CREATED).await;
    assert_eq!((created["phone"].as_str(), created["categories"].clone()), (Some(PHONE), json!(["offers"])));
    let url = created["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/c/", site.app.address)), "{url}");
    let link = &url[url.find("/c/").unwrap()..];
    let (status, _, page) = site.page(link, &[]).await;
    assert!(status == StatusCode::OK && page.contains("Confirm your sign-up"), "{page}");
    assert_eq!(site.post_page(link, &[]).await.0, StatusCode::OK);
    assert!(site.app.decide(&site.business.key, PHONE, "offers").await.0);
    let events = site.events(PHONE).await;
    let confirmation = &events.last().unwrap()["event"];
    assert_eq!(
        (confirmation["kind"].as_str(), confirmation["method"].as_str()),
        (Some("confirmation"), Some("web_form"))
    );
}

async fn mistakes_are_shown_next_to_their_fields_with_the_input_kept(app: TestApp) {
    let site = Site::new(app).await;
    site.form("newsletter", json!({})).await;
    let path = site.form_path("newsletter");
    let (_, _, html) = site.page(&path, &[]).await;
    let csrf = csrf_of(&html);
    let cases: [(Fields, &str, &str); 4] = [
        (
            &[("country", "DE"), ("phone", "0151 12"), ("category", "offers")],
            "This is not a valid mobile number",
            "0151 12",
        ),
        (&[("country", "DE"), ("phone", ""), ("category", "offers")], "Enter your mobile number", ""),
        (&[("country", "DE"), ("phone", "0151 1234 5678")], "Tick at least one kind of message", "0151 1234 5678"),
        (
            &[("country", ""), ("phone", "030 1234567"), ("category", "offers")],
            "This is not a valid mobile number",
            "030 1234567",
        ),
    ];
    for (fields, message, kept) in cases {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let (status, page) = site.post_page(&path, &all).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(page.contains(message), "{fields:?}: {page}");
        assert!(page.contains(&format!("value=\"{kept}\"")), "the number typed is kept: {fields:?}");
        if fields.iter().any(|(k, _)| *k == "category") {
            assert!(page.contains("value=\"offers\" id=\"category-offers\" checked"), "the ticked box stays ticked");
        }
        assert!(page.contains("role=\"alert\""), "the error summary is announced");
    }
    // A landline (valid, but not a mobile) is refused the same way; nothing was recorded by any of them.
    let events = site.events(PHONE).await;
    assert!(events.is_empty());
    assert_eq!(site.app.verify_ledger(&site.business.key).await["verified_events"], 0);
}

async fn posts_from_other_sites_and_forged_forms_are_refused(app: TestApp) {
    let site = Site::new(app).await;
    site.form("newsletter", json!({})).await;
    site.form("orders", json!({"categories": ["order_updates"]})).await;
    let path = site.form_path("newsletter");
    let (_, _, html) = site.page(&path, &[]).await;
    let csrf = csrf_of(&html);
    let (_, _, other_html) = site.page(&site.form_path("orders"), &[]).await;
    let other_csrf = csrf_of(&other_html);
    let forged = format!("{csrf}x");
    let good = |csrf: &'static str| [("csrf", csrf), ("country", "DE"), ("phone", PHONE), ("category", "offers")];
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let (csrf, other_csrf, forged) = (leak(csrf), leak(other_csrf), leak(forged));
    let own = site.app.address.as_str();
    let attempts: [(Fields, &str); 7] = [
        (&good(csrf), "https://evil.example"),
        (&good(csrf), "null"),
        (&good(""), own),
        (&good("not-a-token"), own),
        (&good(other_csrf), own),
        (&good(forged), own),
        (&[("csrf", csrf), ("phone", PHONE), ("category", "secret_category")], own),
    ];
    for (fields, origin) in attempts {
        let (status, page) = site.post_page_from(&path, fields, Some(origin)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{fields:?} from {origin}");
        assert!(page.contains("This link does not work"), "{page}");
    }
    // Not form-encoded at all.
    let response = site
        .app
        .client
        .post(format!("{}{path}", site.app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'%', b'z'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Unknown forms and businesses show the same friendly page.
    for path in [format!("/f/{}/nope", site.business.id), "/f/not-a-business/newsletter".to_owned()] {
        let (status, _, page) = site.page(&path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains("This link does not work"));
    }
    assert!(site.events(PHONE).await.is_empty(), "nothing was recorded");
    // Behind a reverse proxy that rewrites Host, a post from the public origin is ours.
    let fields = [("csrf", csrf), ("phone", PHONE), ("category", "offers")];
    let response = site
        .app
        .client
        .post(format!("{}{path}", site.app.address))
        .header("host", "10.0.0.7:8080")
        .header("origin", site.app.address.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn submissions_for_one_number_are_rate_limited(app: TestApp) {
    let site = Site::new(app).await;
    site.form("newsletter", json!({})).await;
    let path = site.form_path("newsletter");
    let (_, _, html) = site.page(&path, &[]).await;
    let csrf = csrf_of(&html);
    let fields = [("csrf", csrf.as_str()), ("phone", PHONE), ("category", "offers")];
    for attempt in 0..5 {
        let (status, _) = site.post_page(&path, &fields).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}");
    }
    let (status, page) = site.post_page(&path, &fields).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many attempts"));
    // Another number from the same address still gets through.
    let other = [("csrf", csrf.as_str()), ("phone", "+4915112345679"), ("category", "offers")];
    assert_eq!(site.post_page(&path, &other).await.0, StatusCode::OK);
    assert_eq!(site.events(PHONE).await.len(), 5);
}

async fn only_the_configured_origins_may_frame_a_form(app: TestApp) {
    let site = Site::new(app).await;
    site.form("embedded", json!({"allowed_origins": ["https://shop.example", "http://localhost:8080/"]})).await;
    let (_, headers, _) = site.page(&site.form_path("embedded"), &[]).await;
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.ends_with("frame-ancestors https://shop.example http://localhost:8080"), "{policy}");
    assert!(headers.get("x-frame-options").is_none(), "X-Frame-Options cannot list origins: left out");
}

async fn form_settings_are_checked(app: TestApp) {
    let site = Site::new(app).await;
    let bad = json!({
        "categories": ["offers", "nope"], "notice_id": "00000000-0000-4000-8000-000000000000", "language": "xx",
        "accent_colour": "#ffff00", "allowed_origins": ["http://shop.example", "*"], "logo_url": "javascript:alert(1)",
        "confirm_within_hours": 0, "double_opt_in": true,
    });
    let response = site.put_form("Bad Id", &bad).await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_form_id").await;
    let codes = problem_codes(&problem);
    for code in [
        "invalid_form_id",
        "unknown_category",
        "unknown_notice",
        "unsupported_page_language",
        "colour_contrast_too_low",
        "invalid_origin",
        "invalid_logo_url",
        "invalid_confirm_within_hours",
        "confirmation_message_missing",
    ] {
        assert!(codes.contains(&code.to_owned()), "{code} in {codes:?}");
    }
    let german = json!({"categories": ["offers"], "notice_id": site.notice_id, "language": "de"});
    let problem = expect_problem(
        site.put_form("de", &german).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "notice_language_mismatch",
    )
    .await;
    assert!(problem_codes(&problem).iter().all(|c| c == "notice_language_mismatch"), "{problem}");
    let unknown_template = json!({"categories": ["offers"], "notice_id": site.notice_id, "double_opt_in": true,
        "confirmation_message": {"phone_number_id": "1", "template": "nope", "language": "en_US"}});
    let problem =
        expect_problem(site.put_form("x", &unknown_template).await, StatusCode::UNPROCESSABLE_ENTITY, "unknown_sender")
            .await;
    let codes = problem_codes(&problem);
    assert!(
        codes.contains(&"unknown_sender".to_owned()) && codes.contains(&"unknown_template".to_owned()),
        "{codes:?}"
    );
    let listed = expect_json(
        site.app.as_business(reqwest::Method::GET, "/v1/forms", &site.business.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["forms"], json!([]), "nothing was stored");
}

async fn a_double_opt_in_waits_for_the_link_sent_on_whatsapp(app: TestApp) {
    let site = Site::new(app).await;
    let upstream = site.whatsapp_confirmation().await;
    let confirmation = json!({"phone_number_id": PHONE_NUMBER_ID, "template": "confirm_signup", "language": "en-US"});
    site.form("double", json!({"double_opt_in": true, "confirmation_message": confirmation})).await;
    let path = site.form_path("double");
    let (_, _, html) = site.page(&path, &[]).await;
    let csrf = csrf_of(&html);
    let fields = [("csrf", csrf.as_str()), ("phone", PHONE), ("category", "offers"), ("category", "order_updates")];
    let (status, page) = site.post_page(&path, &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Almost done: please confirm") && page.contains("Reply START"), "{page}");
    let (allowed, reasons) = site.app.decide(&site.business.key, PHONE, "offers").await;
    assert!(!allowed && reasons.contains(&"opt_in_pending_confirmation".to_owned()), "{reasons:?}");

    let sent = upstream.wait_for_sent(1, std::time::Duration::from_secs(5)).await;
    let message = &sent[0].body;
    assert_eq!((message["to"].as_str(), message["type"].as_str()), (Some("4915112345678"), Some("template")));
    assert_eq!(message["template"]["name"], "confirm_signup");
    assert_eq!(message["template"]["language"]["code"], "en_US");
    let link = link_path_of(message);
    let url = message["template"]["components"][0]["parameters"][0]["text"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/c/", site.app.address)), "{url}");

    // Opening the link shows a button and confirms nothing; the button confirms.
    let (status, _, confirm_page) = site.page(&link, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm_page.contains("Confirm your sign-up") && confirm_page.contains("Offers and sales"));
    assert!(!site.app.decide(&site.business.key, PHONE, "offers").await.0);
    let (status, _) = site.post_page_from(&link, &[], Some("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another site cannot confirm for the person");
    let (status, confirmed) = site.post_page(&link, &[]).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert!(confirmed.contains("Thank you"), "{confirmed}");
    assert!(site.app.decide(&site.business.key, PHONE, "offers").await.0);
    assert!(site.app.decide(&site.business.key, PHONE, "order_updates").await.0);
    // A second click is harmless and records nothing.
    assert_eq!(site.post_page(&link, &[]).await.0, StatusCode::OK);
    let events = site.events(PHONE).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["event"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opt_in", "confirmation"]);
    let evidence = &events[1]["event"]["evidence"];
    assert_eq!(evidence["ip"], "127.0.0.1");
    assert!(evidence["confirmation_link"].as_str().is_some_and(|r| r.len() == 24), "{evidence}");
    assert!(!evidence.to_string().contains(&link[3..]), "the link (a bearer token) is not kept in the ledger");
    // Submitting again never downgrades the confirmed consent.
    let (status, page) = site.post_page(&path, &fields[..3]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("signed up"), "{page}");
    assert!(site.app.decide(&site.business.key, PHONE, "offers").await.0);
    // A client that lies about the Host cannot make the business's number send a link elsewhere.
    let another = [("csrf", csrf.as_str()), ("phone", "+4915112345679"), ("category", "offers")];
    let response = site
        .app
        .client
        .post(format!("{}{path}", site.app.address))
        .header("host", "evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(another).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sent = upstream.wait_for_sent(2, std::time::Duration::from_secs(5)).await;
    let url = sent[1].body["template"]["components"][0]["parameters"][0]["text"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/c/", site.app.address)), "the public URL, not the Host: {url}");
    // A forged link shows the friendly page.
    let (status, _, page) = site.page(&format!("{link}x"), &[]).await;
    assert_eq!((status, page.contains("This link does not work")), (StatusCode::NOT_FOUND, true));
    assert_eq!(site.app.verify_ledger(&site.business.key).await["intact"], Value::Bool(true));
    pending_expires(&site).await;
}

/// The deadline: after `confirm_within_hours`, the link and a START reply confirm nothing.
async fn pending_expires(site: &Site) {
    use optin_store::forms::{self, ConfirmationClaims, PageEvidence};
    let store = site.app.store.as_ref();
    let business_id = site.business.id.parse().unwrap();
    let business = store.business(business_id).await.unwrap().unwrap();
    let form = forms::form(store, &business, "double").await.unwrap().unwrap();
    let phone = "+4915112345670";
    let submission = forms::Submission { phone: phone.into(), country: None, categories: vec!["offers".into()] };
    let evidence = || PageEvidence {
        page_url: "http://localhost/f/".into(),
        referrer: None,
        ip: "192.0.2.1".into(),
        user_agent: None,
    };
    let now = jiff::Timestamp::now();
    let checked = forms::check(&form, submission).unwrap();
    let submitted = forms::submit(store, &business, &form, checked, evidence(), now).await.unwrap();
    assert_eq!(submitted.pending.len(), 1);
    let claims = ConfirmationClaims {
        business: site.business.id.clone(),
        form: Some(form.id.clone()),
        phone: submitted.phone,
        categories: submitted.pending.clone(),
    };
    let late = now + jiff::SignedDuration::from_hours(49);
    let refused = forms::confirm(store, &business, &claims, evidence(), "ref".into(), late).await.unwrap_err();
    assert!(format!("{refused:?}").contains("confirmation_expired"), "{refused:?}");
    let in_time = now + jiff::SignedDuration::from_hours(47);
    forms::confirm(store, &business, &claims, evidence(), "ref".into(), in_time).await.unwrap();
}
