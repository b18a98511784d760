//! Helpers shared by the tests: businesses, events, raw connections.

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::{ConsentChange, ConsentEvent, OptOut, OptOutSource};
use optin_core::evidence::Evidence;
use optin_core::ids::EventId;
use optin_core::phone::PhoneNumber;
use optin_store::Store;
use optin_store::intake::{OptInInput, PhoneInput, record_opt_in, register_notice};
use optin_store::tenancy::{CategoryInput, IssuedKey, create_business};
use serde_json::{Map, json};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

pub const NOTICE: &str =
    "I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out.";

pub async fn new_business(store: &dyn Store) -> (Business, IssuedKey) {
    let categories = [("order_updates", "utility"), ("offers", "marketing")]
        .map(|(name, template)| CategoryInput { name: name.into(), template_category: template.into() });
    create_business(store, "Acme Shoes", &categories, Timestamp::now()).await.unwrap()
}

pub fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1415555{n:04}")).unwrap()
}

/// An opt-out of every category, built directly (no notice needed).
pub fn opt_out(business: &Business, phone: PhoneNumber) -> ConsentEvent {
    ConsentEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        phone,
        change: ConsentChange::OptOut(OptOut {
            categories: business.all_category_names(),
            all_categories: true,
            source: OptOutSource::Api,
            recorded_by: "test".into(),
            evidence: Evidence::recorded(Map::new()),
            requested_at: None,
        }),
        recorded_at: Timestamp::now(),
    }
}

/// Registers a notice and opts `phone` in to every category through the use case.
pub async fn opt_in(store: &dyn Store, business: &Business, phone: PhoneNumber) -> optin_store::Recorded {
    let notice = register_notice(store, business, NOTICE, "en", Timestamp::now()).await.unwrap();
    let input = OptInInput {
        phone: PhoneInput { phone: phone.e164(), country: None },
        categories: vec!["order_updates".into(), "offers".into()],
        method: "web_form".into(),
        notice_id: notice.id.to_string(),
        collected_at: None,
        evidence: json!({"page_url": "https://acme.example/join", "ip": "203.0.113.9"}).as_object().cloned().unwrap(),
        terms: Default::default(),
    };
    record_opt_in(store, business, input, Timestamp::now()).await.unwrap()
}

/// A plain connection to the test database, outside the store.
pub async fn raw_connection(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}
