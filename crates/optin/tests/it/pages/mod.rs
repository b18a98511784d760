//! The pages optin hosts for people, over HTTP: the opt-in form, its double opt-in confirmation and
//! the preference page. `browser` drives the same pages in headless Chromium.

mod browser;
mod forms;
mod preferences;

use optin_whatsapp::testing::{FakeCredentials, FakeUpstream};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestBusiness, expect_json};

pub const BEARER: &str = "EAAG-pages-test-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// A business with a notice and a form offering offers and order updates.
pub struct Site {
    pub app: TestApp,
    pub business: TestBusiness,
    pub notice_id: String,
}

impl Site {
    pub async fn new(app: TestApp) -> Site {
        let business = app.create_business("Acme Shoes").await;
        let notice_id = app.register_notice(&business.key).await;
        Site { app, business, notice_id }
    }

    pub async fn put_form(&self, id: &str, settings: &Value) -> Response {
        let path = format!("/v1/forms/{id}");
        self.app.as_business(Method::PUT, &path, &self.business.key).json(settings).send().await.unwrap()
    }

    /// A form with the default settings plus `extra`.
    pub async fn form(&self, id: &str, extra: Value) -> Value {
        let mut settings = json!({"categories": ["offers", "order_updates"], "notice_id": self.notice_id,
                                  "labels": {"offers": "Offers and sales"}});
        for (key, value) in extra.as_object().unwrap() {
            settings[key] = value.clone();
        }
        expect_json(self.put_form(id, &settings).await, StatusCode::OK).await
    }

    pub fn form_path(&self, id: &str) -> String {
        format!("/f/{}/{id}", self.business.id)
    }

    pub async fn page(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let mut request = self.app.client.get(format!("{}{path}", self.app.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    /// Posts `fields` as a browser on our own page does (same origin).
    pub async fn post_page(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        self.post_page_from(path, fields, Some(&self.app.address)).await
    }

    pub async fn post_page_from(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = self
            .app
            .client
            .post(format!("{}{path}", self.app.address))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("user-agent", "pages-test/1.0")
            .body(serde_urlencoded::to_string(fields).unwrap());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub async fn events(&self, phone: &str) -> Vec<Value> {
        let events = expect_json(self.app.get_contact_events(&self.business.key, phone).await, StatusCode::OK).await;
        events["events"].as_array().unwrap().clone()
    }

    /// A sender pointing at a fake upstream and a utility template whose body takes the link.
    pub async fn whatsapp_confirmation(&self) -> FakeUpstream {
        let upstream =
            FakeUpstream::start(FakeCredentials { bearer_token: BEARER.into(), d360_api_key: "d360-key".into() }).await;
        let sender = json!({
            "phone_number_id": PHONE_NUMBER_ID, "display_phone_number": "15550783881", "waba_id": "102290129340398",
            "provider": "cloud_api", "base_url": upstream.base_url(), "credential": BEARER,
        });
        let key = &self.business.key;
        let response = self.app.as_business(Method::POST, "/v1/senders", key).json(&sender).send().await.unwrap();
        expect_json(response, StatusCode::CREATED).await;
        let templates = json!({"data": [
            {"name": "confirm_signup", "language": "en_US", "category": "UTILITY", "status": "APPROVED",
             "components": [{"type": "BODY", "text": "Confirm your sign-up to Acme Shoes messages: {{1}}"}]}]});
        let response = self.app.as_business(Method::PUT, "/v1/templates", key).json(&templates).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
        upstream
    }
}

/// The value of the hidden anti-forgery field in a page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("the page has a csrf field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// The confirmation link's path (`/c/...`) in the template message the fake upstream received.
pub fn link_path_of(message: &Value) -> String {
    let url = message["template"]["components"][0]["parameters"][0]["text"].as_str().expect("a link parameter");
    let start = url.find("/c/").expect("a confirmation link");
    url[start..].to_owned()
}
