//! The pages in a real browser: Debian's headless Chromium driven through chromedriver (WebDriver),
//! with real typing and clicks. A failing test leaves a screenshot in
//! `target/browser-screenshots/<test>.png`. `OPTIN_SCREENSHOT_DIR=docs` also saves the form as the
//! README shows it.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/run` installs them when missing).
//! Browser tests run on SQLite only: the pages' storage is the same code the HTTP tests run on both
//! backends.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use super::{PHONE_NUMBER_ID, Site, link_path_of};
use crate::helpers::{Backend, spawn_app};

const PHONE: &str = "+4915112345678";
/// Austria does not expect a double opt-in (Germany does, in the shipped rules).
const AUSTRIAN: &str = "+436641234567";

/// One Chromium with its own chromedriver, stopped on drop.
struct Browser {
    client: Client,
    driver: Child,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(env_or("OPTIN_CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver; .ci/run does)");
        let url = format!("http://127.0.0.1:{port}");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": env_or("OPTIN_CHROMIUM", "/usr/bin/chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=420,1000", "--lang=de-AT", "--accept-lang=de-AT,de"],
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(error) if std::time::Instant::now() > deadline => panic!("no browser session: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser { client, driver }
    }

    /// Runs `test` and saves a screenshot when it panics.
    async fn run<F, Fut>(name: &str, test: F)
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = ()>,
    {
        let browser = Browser::start().await;
        let outcome = AssertUnwindSafe(test(browser.client.clone())).catch_unwind().await;
        if let Err(panic) = outcome {
            if let Ok(png) = browser.client.screenshot().await {
                let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
                let _ = std::fs::create_dir_all(&directory);
                let _ = std::fs::write(directory.join(format!("{name}.png")), png);
            }
            let _ = browser.client.clone().close().await;
            std::panic::resume_unwind(panic);
        }
        let _ = browser.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn text_of(client: &Client, css: &str) -> String {
    client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn a_person_signs_up_on_the_form_and_fixes_their_mistakes() {
    let site = Site::new(spawn_app(Backend::Sqlite).await).await;
    site.form("newsletter", json!({})).await;
    let url = format!("{}{}", site.app.address, site.form_path("newsletter"));
    Browser::run("form", |browser| async move {
        browser.goto(&url).await.unwrap();
        assert_eq!(browser.title().await.unwrap(), "Get WhatsApp messages from Acme Shoes");
        // The country comes from the browser's language, named by the page's script.
        let country = browser.find(Locator::Css("#country")).await.unwrap();
        assert_eq!(country.prop("value").await.unwrap().as_deref(), Some("AT"));
        let label = browser.find(Locator::Css("#country option:checked")).await.unwrap().text().await.unwrap();
        assert_eq!(label, "Austria (+43)");
        if let Ok(directory) = std::env::var("OPTIN_SCREENSHOT_DIR") {
            std::fs::write(PathBuf::from(directory).join("form.png"), browser.screenshot().await.unwrap()).unwrap();
        }
        // Submitting with nothing ticked: the error sits next to the boxes, the number stays.
        browser.find(Locator::Css("#phone")).await.unwrap().send_keys("0664 1234567").await.unwrap();
        browser.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();
        assert!(text_of(&browser, "#categories-error").await.contains("Tick at least one"));
        let phone = browser.find(Locator::Css("#phone")).await.unwrap();
        assert_eq!(phone.prop("value").await.unwrap().as_deref(), Some("0664 1234567"));
        // Keyboard only: Tab to the first box and tick it with the space bar, then submit.
        browser.find(Locator::Css("#category-offers")).await.unwrap().send_keys(" ").await.unwrap();
        assert!(browser.find(Locator::Css("#category-offers")).await.unwrap().is_selected().await.unwrap());
        browser.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();
        assert_eq!(text_of(&browser, "#message-title").await, "You're signed up");
        assert_eq!(text_of(&browser, "#categories").await, "Offers and sales");
    })
    .await;
    assert!(site.app.decide(&site.business.key, AUSTRIAN, "offers").await.0);
    let events = site.events(AUSTRIAN).await;
    let evidence = &events[0]["event"]["evidence"];
    assert!(evidence["user_agent"].as_str().unwrap().contains("Chrome"), "{evidence}");
    assert_eq!(evidence["categories_ticked"], json!(["offers"]));
}

/// A shop on another origin that embeds the form in an iframe.
async fn serve_shop(form_url: String) -> (String, tokio::task::JoinHandle<()>) {
    let page = format!(
        "<!DOCTYPE html><title>Shop</title><h1>Our shop</h1><iframe src=\"{form_url}\" width=\"400\" height=\"900\"></iframe>"
    );
    let router = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // `localhost` and `127.0.0.1` are different origins: the shop is another site than optin.
    let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    (origin, tokio::spawn(async move { axum::serve(listener, router).await.unwrap() }))
}

#[tokio::test]
async fn a_form_works_inside_an_iframe_on_an_allowed_origin_only() {
    let site = Site::new(spawn_app(Backend::Sqlite).await).await;
    let (allowed_shop, _allowed) = serve_shop(format!("{}{}", site.app.address, site.form_path("embedded"))).await;
    let (other_shop, _other) = serve_shop(format!("{}{}", site.app.address, site.form_path("private"))).await;
    site.form("embedded", json!({"allowed_origins": [allowed_shop]})).await;
    site.form("private", json!({})).await;
    Browser::run("iframe", |browser| async move {
        browser.goto(&format!("{allowed_shop}/")).await.unwrap();
        browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("iframe")).await.unwrap();
        browser.enter_frame(0).await.unwrap();
        browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#phone")).await.unwrap();
        browser.find(Locator::Css("#country")).await.unwrap().select_by_value("AT").await.unwrap();
        browser.find(Locator::Css("#phone")).await.unwrap().send_keys("0664 1234567").await.unwrap();
        browser.find(Locator::Css("#category-order_updates")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();
        assert_eq!(text_of(&browser, "#message-title").await, "You're signed up");

        // A form that allows no origin is not shown inside another site.
        browser.goto(&format!("{other_shop}/")).await.unwrap();
        browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("iframe")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.enter_frame(0).await.unwrap();
        assert!(browser.find(Locator::Css("#phone")).await.is_err(), "the browser refused to frame the form");
    })
    .await;
    let events = site.events(AUSTRIAN).await;
    assert_eq!(events.len(), 1);
    let referrer = events[0]["event"]["evidence"]["referrer"].as_str().unwrap().to_owned();
    assert!(referrer.starts_with("http://localhost:"), "the embedding page is kept as the referrer: {referrer}");
}

#[tokio::test]
async fn a_double_opt_in_is_confirmed_from_the_link_in_the_whatsapp_message() {
    let site = Site::new(spawn_app(Backend::Sqlite).await).await;
    let upstream = site.whatsapp_confirmation().await;
    let confirmation = json!({"phone_number_id": PHONE_NUMBER_ID, "template": "confirm_signup", "language": "en_US"});
    site.form("double", json!({"double_opt_in": true, "confirmation_message": confirmation})).await;
    let url = format!("{}{}", site.app.address, site.form_path("double"));
    let address = site.app.address.clone();
    Browser::run("double_opt_in", |browser| async move {
        browser.goto(&url).await.unwrap();
        browser.find(Locator::Css("#phone")).await.unwrap().send_keys(PHONE).await.unwrap();
        browser.find(Locator::Css("#category-offers")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();
        assert_eq!(text_of(&browser, "#message-title").await, "Almost done: please confirm");
        let sent = upstream.wait_for_sent(1, Duration::from_secs(5)).await;
        let link = link_path_of(&sent[0].body);
        browser.goto(&format!("{address}{link}")).await.unwrap();
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#confirm"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(text_of(&browser, "#message-title").await, "Thank you: you're signed up");
    })
    .await;
    assert!(site.app.decide(&site.business.key, PHONE, "offers").await.0);
}

#[tokio::test]
async fn a_contact_changes_their_preferences_in_the_browser() {
    let site = Site::new(spawn_app(Backend::Sqlite).await).await;
    let opt_in = crate::helpers::web_form_opt_in(AUSTRIAN, &["offers", "order_updates"], &site.notice_id);
    assert!(site.app.post_opt_in(&site.business.key, &opt_in).await.status().is_success());
    let created = site
        .app
        .as_business(reqwest::Method::POST, "/v1/preference-links", &site.business.key)
        .json(&json!({"phone": AUSTRIAN}))
        .send()
        .await
        .unwrap();
    let created: Value = created.json().await.unwrap();
    let url = created["url"].as_str().unwrap().to_owned();
    Browser::run("preferences", |browser| async move {
        browser.goto(&url).await.unwrap();
        let offers = browser.find(Locator::Css("#category-offers")).await.unwrap();
        assert!(offers.is_selected().await.unwrap());
        offers.click().await.unwrap();
        browser.find(Locator::Css("#save")).await.unwrap().click().await.unwrap();
        assert_eq!(text_of(&browser, "#saved").await, "Your choices are saved.");
        assert!(!browser.find(Locator::Css("#category-offers")).await.unwrap().is_selected().await.unwrap());
        // Turning it on again without agreeing to the notice is refused, then accepted.
        browser.find(Locator::Css("#category-offers")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Css("#save")).await.unwrap().click().await.unwrap();
        assert!(text_of(&browser, "#error").await.contains("agree"));
        browser.find(Locator::Css("#category-offers")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Css("#agree")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Css("#save")).await.unwrap().click().await.unwrap();
        assert_eq!(text_of(&browser, "#saved").await, "Your choices are saved.");
        assert!(browser.find(Locator::Css("#category-offers")).await.unwrap().is_selected().await.unwrap());
    })
    .await;
    assert!(site.app.decide(&site.business.key, AUSTRIAN, "offers").await.0);
    let events = site.events(AUSTRIAN).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["event"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opt_in", "opt_out", "opt_in"]);
}
