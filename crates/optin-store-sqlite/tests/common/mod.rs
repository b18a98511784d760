//! Helpers shared by the integration tests: businesses, notices and consent through the same use
//! cases the HTTP API and the CLI call.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::OptOutSource;
use optin_store::intake::{OptInInput, OptOutInput, PhoneInput, record_opt_in, record_opt_out, register_notice};
use optin_store::tenancy::{CategoryInput, IssuedKey, create_business};
use optin_store::{Notice, Recorded, Store};
use serde_json::{Map, json};

pub const NOTICE: &str =
    "I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out.";

pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("optin.db")
}

pub fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    conn
}

pub fn categories() -> Vec<CategoryInput> {
    [("order_updates", "utility"), ("offers", "marketing")]
        .map(|(name, template_category)| CategoryInput {
            name: name.into(),
            template_category: template_category.into(),
        })
        .to_vec()
}

/// A business named "Acme Shoes" with its first key and a registered notice.
pub async fn acme(store: &dyn Store) -> (Business, IssuedKey, Notice) {
    let (business, key) = create_business(store, "Acme Shoes", &categories(), Timestamp::now()).await.unwrap();
    let notice = register_notice(store, &business, NOTICE, "en", Timestamp::now()).await.unwrap();
    (business, key, notice)
}

pub async fn opt_in(
    store: &dyn Store,
    business: &Business,
    notice: &Notice,
    phone: &str,
    categories: &[&str],
) -> Recorded {
    let input = OptInInput {
        phone: PhoneInput { phone: phone.into(), country: None },
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        method: "web_form".into(),
        notice_id: notice.id.to_string(),
        collected_at: None,
        evidence: json!({"page_url": "https://acme.example/join", "ip": "203.0.113.9"}).as_object().cloned().unwrap(),
        terms: Default::default(),
    };
    record_opt_in(store, business, input, Timestamp::now()).await.unwrap()
}

pub async fn opt_out(store: &dyn Store, business: &Business, phone: &str, categories: Option<&[&str]>) -> Recorded {
    let input = OptOutInput {
        phone: PhoneInput { phone: phone.into(), country: None },
        categories: categories.map(|c| c.iter().map(|c| (*c).to_owned()).collect()),
        source: OptOutSource::Agent,
        recorded_by: "agent 7".into(),
        evidence: Map::new(),
    };
    record_opt_out(store, business, input, Timestamp::now()).await.unwrap()
}

/// Mobile numbers +14155552000, +14155552001...
pub fn number(n: u32) -> String {
    format!("+1415555{:04}", 2_000 + n % 8_000)
}
