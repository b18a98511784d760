//! SMS keywords over the inbound SMS webhook: signed form posts from the provider, join keywords
//! opting in under the number's notice, STOP and START, HELP, and hostile input.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestBusiness, expect_json, expect_problem, on_both_backends, text};

on_both_backends!(
    keywords_opt_in_and_out_and_every_change_is_evidence,
    the_sms_webhook_refuses_what_it_cannot_trust_or_read,
    sms_settings_are_checked,
);

const AUTH_TOKEN: &str = "twilio-auth-token-for-tests";
const SHORT_CODE: &str = "22395";
const PERSON: &str = "+14155552671";

fn form_request(request: reqwest::RequestBuilder, form: &[(String, String)]) -> reqwest::RequestBuilder {
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("a form encodes"))
}

struct Sms {
    app: TestApp,
    business: TestBusiness,
    notice_id: String,
}

impl Sms {
    async fn new(app: TestApp) -> Sms {
        let business = app.create_business("Acme Shoes").await;
        let notice_id = app.register_notice(&business.key).await;
        let sms = Sms { app, business, notice_id };
        let settings = sms.settings();
        let response = sms.put_settings(&settings).await;
        let view = expect_json(response, StatusCode::OK).await;
        assert_eq!(view["auth_token_set"], true);
        assert!(view.get("auth_token").is_none(), "the token is never shown: {view}");
        sms
    }

    fn path(&self) -> String {
        format!("/webhooks/sms/{}", self.business.id)
    }

    fn settings(&self) -> Value {
        json!({
            "numbers": [{"number": SHORT_CODE, "notice_id": self.notice_id,
                         "join_keywords": {"join": ["offers", "order_updates"], "DEALS": ["offers"]}}],
            "contact": "help@acme.example",
            "auth_token": AUTH_TOKEN,
            "webhook_url": format!("{}{}", self.app.address, self.path()),
        })
    }

    async fn put_settings(&self, settings: &Value) -> Response {
        self.app.as_business(Method::PUT, "/v1/sms-settings", &self.business.key).json(settings).send().await.unwrap()
    }

    fn form(body: &str, sid: &str) -> Vec<(String, String)> {
        [("From", PERSON), ("To", SHORT_CODE), ("Body", body), ("MessageSid", sid), ("AccountSid", "AC123")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    async fn post_form(&self, form: &[(String, String)], signature: Option<String>) -> Response {
        let mut request = form_request(self.app.request(Method::POST, &self.path(), None), form);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.unwrap()
    }

    /// Sends `body` as the provider would, signed, and returns the reply's text (empty: none).
    async fn text(&self, body: &str, sid: &str) -> String {
        let form = Sms::form(body, sid);
        let url = format!("{}{}", self.app.address, self.path());
        let response = self.post_form(&form, Some(optin_core::sms::sign(AUTH_TOKEN, &url, &form))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/xml");
        let xml = response.text().await.unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"), "{xml}");
        xml.split("<Message>")
            .nth(1)
            .map(|rest| rest.split("</Message>").next().unwrap().to_owned())
            .unwrap_or_default()
    }

    async fn allowed(&self, category: &str) -> (bool, Vec<String>) {
        self.app.decide(&self.business.key, PERSON, category).await
    }
}

async fn keywords_opt_in_and_out_and_every_change_is_evidence(app: TestApp) {
    let sms = Sms::new(app).await;
    assert_eq!(sms.allowed("offers").await.1, ["no_opt_in"]);
    let joined = sms.text("  Join! ", "SM1").await;
    assert!(
        joined.contains("Acme Shoes") && joined.contains("offers, order updates") && joined.contains("STOP"),
        "{joined}"
    );
    assert!(sms.allowed("offers").await.0 && sms.allowed("order_updates").await.0);
    // The provider redelivers the same message: answered again, recorded once (the events below).
    assert_eq!(sms.text("  Join! ", "SM1").await, joined);
    let help = sms.text("HELP", "SM2").await;
    assert!(help.contains("Acme Shoes") && help.contains("help@acme.example") && help.contains("STOP"), "{help}");
    assert_eq!(sms.text("where is my order?", "SM3").await, "", "an ordinary message gets no reply");
    let stopped = sms.text("stop", "SM4").await;
    assert!(stopped.contains("unsubscribed") && stopped.contains("Acme Shoes"), "{stopped}");
    sms.text("stop", "SM4").await;
    assert_eq!(sms.allowed("offers").await.1, ["opted_out"]);
    assert_eq!(sms.allowed("order_updates").await.1, ["opted_out"]);
    let restarted = sms.text("START", "SM5").await;
    assert!(restarted.contains("subscribed again"), "{restarted}");
    assert!(sms.allowed("offers").await.0 && sms.allowed("order_updates").await.0);
    // A category named after STOP stops only that one.
    sms.text("STOP offers", "SM6").await;
    assert_eq!(
        (sms.allowed("offers").await.1, sms.allowed("order_updates").await.0),
        (vec!["opted_out".to_owned()], true)
    );

    let events = expect_json(sms.app.get_contact_events(&sms.business.key, PERSON).await, StatusCode::OK).await;
    let events = events["events"].as_array().unwrap();
    let kinds: Vec<String> = events.iter().map(|e| text(&e["event"]["kind"])).collect();
    assert_eq!(kinds, ["opt_in", "opt_out", "opt_in", "opt_out"]);
    let first = &events[0]["event"];
    assert_eq!((first["method"].as_str(), first["notice"]["id"].as_str()), (Some("sms"), Some(sms.notice_id.as_str())));
    assert_eq!(first["evidence"]["message_id"], "SM1");
    assert_eq!(first["evidence"]["to"], SHORT_CODE);
    assert_eq!(events[1]["event"]["source"], "sms");
    let report = sms.app.verify_ledger(&sms.business.key).await;
    assert_eq!(report["intact"], true, "{report}");
}

async fn the_sms_webhook_refuses_what_it_cannot_trust_or_read(app: TestApp) {
    let sms = Sms::new(app).await;
    let url = format!("{}{}", sms.app.address, sms.path());
    let form = Sms::form("JOIN", "SM9");
    let unsigned = sms.post_form(&form, None).await;
    expect_problem(unsigned, StatusCode::UNAUTHORIZED, "signature_missing").await;
    let forged = optin_core::sms::sign("another-token", &url, &form);
    expect_problem(sms.post_form(&form, Some(forged)).await, StatusCode::UNAUTHORIZED, "signature_mismatch").await;
    // Signed, then a field changed on the way.
    let signature = optin_core::sms::sign(AUTH_TOKEN, &url, &form);
    let mut changed = form.clone();
    changed[2].1 = "DEALS".into();
    expect_problem(sms.post_form(&changed, Some(signature)).await, StatusCode::UNAUTHORIZED, "signature_mismatch")
        .await;
    // Signed but unreadable: a missing field, a bad sender, an unknown number.
    let signed = |form: Vec<(String, String)>| {
        let signature = optin_core::sms::sign(AUTH_TOKEN, &url, &form);
        (form, signature)
    };
    let (missing, signature) =
        signed(Sms::form("JOIN", "SM10").into_iter().filter(|(k, _)| k != "MessageSid").collect());
    expect_problem(sms.post_form(&missing, Some(signature)).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_sms")
        .await;
    let mut bad_from = Sms::form("JOIN", "SM11");
    bad_from[0].1 = "+1 (000) <script>".into();
    let (bad_from, signature) = signed(bad_from);
    expect_problem(sms.post_form(&bad_from, Some(signature)).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone")
        .await;
    let mut elsewhere = Sms::form("JOIN", "SM12");
    elsewhere[1].1 = "99999".into();
    let (elsewhere, signature) = signed(elsewhere);
    expect_problem(sms.post_form(&elsewhere, Some(signature)).await, StatusCode::NOT_FOUND, "unknown_sms_number").await;
    let garbage = sms.app.request(Method::POST, &sms.path(), None).body("%%%\u{0}=&&").send().await.unwrap();
    assert!(matches!(garbage.status(), StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY));
    let unknown_business =
        form_request(sms.app.request(Method::POST, "/webhooks/sms/not-a-business", None), &form).send();
    expect_problem(unknown_business.await.unwrap(), StatusCode::NOT_FOUND, "business_not_found").await;
    // None of it recorded anything.
    let events = expect_json(sms.app.get_contact_events(&sms.business.key, PERSON).await, StatusCode::OK).await;
    assert_eq!(events["events"], json!([]));
}

async fn sms_settings_are_checked(app: TestApp) {
    let sms = Sms::new(app).await;
    let mut bad = sms.settings();
    bad["numbers"][0]["number"] = json!("not a number");
    bad["numbers"][0]["notice_id"] = json!("00000000-0000-4000-8000-000000000000");
    bad["numbers"][0]["join_keywords"] =
        json!({"STOP": ["offers"], "HELP": ["offers"], "JOIN ME": ["offers"], "NEWS": ["nope"]});
    bad["contact"] = json!("");
    bad["auth_token"] = Value::Null;
    let problem =
        expect_problem(sms.put_settings(&bad).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_sms_number").await;
    let codes: Vec<String> = problem["errors"].as_array().unwrap().iter().map(|e| text(&e["code"])).collect();
    for code in [
        "invalid_sms_number",
        "unknown_notice",
        "keyword_reserved",
        "invalid_keyword",
        "unknown_category",
        "invalid_contact",
        "auth_token_missing",
    ] {
        assert!(codes.contains(&code.to_owned()), "{code} in {codes:?}");
    }
    // The settings in force did not change.
    let shown = expect_json(
        sms.app.as_business(Method::GET, "/v1/sms-settings", &sms.business.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["numbers"][0]["number"], SHORT_CODE);
    assert_eq!(shown["numbers"][0]["join_keywords"]["JOIN"], json!(["offers", "order_updates"]));
}
