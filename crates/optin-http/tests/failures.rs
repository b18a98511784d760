//! A panic inside a handler: the one failure that cannot be produced with a real database (an
//! outage and a blocked query are tested on a real PostgreSQL in `crates/optin/tests/it`). The
//! router runs in process (`oneshot`) over a store whose every call panics, which also proves that
//! requests refused at the edge (no key, unknown route) never reach the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName};
use optin_core::consent::{ConsentBits, ConsentEvent, ContactConsent};
use optin_core::ids::{ApiKeyId, BusinessId, NoticeId};
use optin_core::ledger::{ChainHead, LedgerEntry};
use optin_core::phone::PhoneNumber;
use optin_http::{AppState, HttpSettings, PROBLEM_JSON, router};
use optin_store::channel::{
    Delivery, DeliveryFilter, DeliveryId, DeliveryOutcome, ForwardedMessage, NewSignal, Sender, SentMessage,
    SettingsDocument, Sighting, Signal, SignalFilter, StoredTemplate, TemplateUpdate, ThreadContact,
};
use optin_store::{ApiKeyRecord, NewApiKey, NewNotice, Notice, Recorded, SavedResponse, Store, StoreError};
use serde_json::Value;
use tower::ServiceExt;

/// A store whose every call panics.
struct PanickingStore;

impl PanickingStore {
    async fn fail<T>(&self) -> Result<T, StoreError> {
        panic!("the store blew up")
    }
}

#[async_trait]
impl Store for PanickingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn operator_token_hash(&self) -> Result<Option<String>, StoreError> {
        self.fail().await
    }
    async fn set_operator_token_hash(&self, _: &str, _: Timestamp) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn create_business(&self, _: &Business, _: &NewApiKey) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn business(&self, _: BusinessId) -> Result<Option<Business>, StoreError> {
        self.fail().await
    }
    async fn list_businesses(&self) -> Result<Vec<Business>, StoreError> {
        self.fail().await
    }
    async fn add_categories(&self, _: BusinessId, _: &[Category]) -> Result<Business, StoreError> {
        self.fail().await
    }
    async fn set_brand_names(&self, _: BusinessId, _: &[BusinessName]) -> Result<Business, StoreError> {
        self.fail().await
    }
    async fn create_api_key(&self, _: &NewApiKey) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn revoke_api_key(&self, _: BusinessId, _: ApiKeyId, _: Timestamp) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn list_api_keys(&self, _: BusinessId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.fail().await
    }
    async fn authenticate(&self, _: &str) -> Result<Option<BusinessId>, StoreError> {
        self.fail().await
    }
    async fn register_notice(&self, _: &NewNotice) -> Result<Notice, StoreError> {
        self.fail().await
    }
    async fn notice(&self, _: BusinessId, _: NoticeId) -> Result<Option<Notice>, StoreError> {
        self.fail().await
    }
    async fn list_notices(&self, _: BusinessId) -> Result<Vec<Notice>, StoreError> {
        self.fail().await
    }
    async fn record_consent(&self, _: &Business, _: &ConsentEvent) -> Result<Recorded, StoreError> {
        self.fail().await
    }
    async fn consent_bits(&self, _: &Business, _: PhoneNumber) -> Result<ConsentBits, StoreError> {
        self.fail().await
    }
    async fn consent_bits_many(&self, _: &Business, _: &[PhoneNumber]) -> Result<Vec<ConsentBits>, StoreError> {
        self.fail().await
    }
    async fn contact_consent(&self, _: BusinessId, _: PhoneNumber) -> Result<ContactConsent, StoreError> {
        self.fail().await
    }
    async fn contact_events(&self, _: BusinessId, _: PhoneNumber) -> Result<Vec<LedgerEntry>, StoreError> {
        self.fail().await
    }
    async fn ledger_page(&self, _: BusinessId, _: u64, _: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        self.fail().await
    }
    async fn chain_head(&self, _: BusinessId) -> Result<Option<ChainHead>, StoreError> {
        self.fail().await
    }
    async fn saved_response(&self, _: BusinessId, _: &str) -> Result<Option<SavedResponse>, StoreError> {
        self.fail().await
    }
    async fn save_response(&self, _: BusinessId, _: &str, _: &SavedResponse) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn add_sender(&self, _: &Sender) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn senders(&self, _: BusinessId) -> Result<Vec<Sender>, StoreError> {
        self.fail().await
    }
    async fn settings_document(&self, _: BusinessId, _: &str) -> Result<Option<SettingsDocument>, StoreError> {
        self.fail().await
    }
    async fn put_settings_document(&self, _: &SettingsDocument) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn insert_delivery(&self, _: BusinessId, _: Timestamp, _: &[u8]) -> Result<DeliveryId, StoreError> {
        self.fail().await
    }
    async fn claim_deliveries(&self, _: Timestamp, _: Duration, _: usize) -> Result<Vec<Delivery>, StoreError> {
        self.fail().await
    }
    async fn finish_deliveries(&self, _: &[(DeliveryId, DeliveryOutcome)], _: Timestamp) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn list_deliveries(&self, _: BusinessId, _: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        self.fail().await
    }
    async fn delivery(&self, _: BusinessId, _: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.fail().await
    }
    async fn requeue_delivery(&self, _: BusinessId, _: DeliveryId) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn record_sightings(&self, _: BusinessId, _: &[Sighting]) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn thread_contact(
        &self,
        _: BusinessId,
        _: Option<PhoneNumber>,
        _: Option<&str>,
    ) -> Result<Option<ThreadContact>, StoreError> {
        self.fail().await
    }
    async fn record_consent_once(
        &self,
        _: &Business,
        _: &str,
        _: &ConsentEvent,
    ) -> Result<Option<Recorded>, StoreError> {
        self.fail().await
    }
    async fn record_consent_batch_once(
        &self,
        _: &Business,
        _: Vec<(String, optin_core::ledger::SealedEvent)>,
    ) -> Result<Vec<Option<Recorded>>, StoreError> {
        self.fail().await
    }
    async fn dedupe_keys_used(&self, _: BusinessId, _: &[String]) -> Result<Vec<bool>, StoreError> {
        self.fail().await
    }
    async fn put_templates(&self, _: BusinessId, _: &[StoredTemplate]) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn template(&self, _: BusinessId, _: &str, _: &str) -> Result<Option<StoredTemplate>, StoreError> {
        self.fail().await
    }
    async fn list_templates(&self, _: BusinessId) -> Result<Vec<StoredTemplate>, StoreError> {
        self.fail().await
    }
    async fn apply_template_updates(&self, _: BusinessId, _: &[TemplateUpdate]) -> Result<usize, StoreError> {
        self.fail().await
    }
    async fn record_signals(&self, _: BusinessId, _: &[NewSignal], _: Timestamp) -> Result<usize, StoreError> {
        self.fail().await
    }
    async fn signals(&self, _: BusinessId, _: &SignalFilter) -> Result<Vec<Signal>, StoreError> {
        self.fail().await
    }
    async fn record_sent_message(&self, _: &SentMessage) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn sent_message(&self, _: BusinessId, _: &str) -> Result<Option<SentMessage>, StoreError> {
        self.fail().await
    }
    async fn record_forwarded_message(&self, _: &ForwardedMessage) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn put_document(&self, _: &optin_store::StoredDocument) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn document(&self, _: BusinessId, _: &str) -> Result<Option<optin_store::StoredDocument>, StoreError> {
        self.fail().await
    }
    async fn recent_sends(
        &self,
        _: BusinessId,
        _: &CategoryName,
        _: &[PhoneNumber],
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Vec<(PhoneNumber, Timestamp)>, StoreError> {
        self.fail().await
    }
    async fn forwarded_message(&self, _: BusinessId, _: &str) -> Result<Option<ForwardedMessage>, StoreError> {
        self.fail().await
    }
    async fn reserve_recipients(
        &self,
        _: BusinessId,
        _: &[PhoneNumber],
        _: Timestamp,
        _: jiff::SignedDuration,
        _: Option<u64>,
    ) -> Result<Vec<bool>, StoreError> {
        self.fail().await
    }
    async fn recipients_in_window(
        &self,
        _: BusinessId,
        _: Timestamp,
        _: jiff::SignedDuration,
    ) -> Result<u64, StoreError> {
        self.fail().await
    }
}

fn app() -> axum::Router {
    router(AppState::new(Arc::new(PanickingStore), HttpSettings::default()))
}

/// Sends a request and returns the status and the problem document (checking its media type).
async fn problem_of(app: axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains("blew up"), "a cause leaked: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header(header::AUTHORIZATION, "Bearer optin_sk_x").body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_panic_is_an_opaque_500() {
    let (status, problem) = problem_of(app(), get("/v1/business")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem["code"], "internal_error");
}

#[tokio::test]
async fn requests_without_a_key_are_refused_before_the_store_is_asked() {
    let request = Request::post("/v1/decisions").body(Body::from("{}")).unwrap();
    let response = app().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let (status, problem) = problem_of(app(), get("/v2/nothing")).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let request = Request::delete("/v1/decisions").body(Body::empty()).unwrap();
    let response = app().oneshot(request).await.unwrap();
    assert_eq!(response.headers()[header::ALLOW], "POST");
    let (status, problem) = problem_of(app(), Request::delete("/v1/decisions").body(Body::empty()).unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
}

#[test]
fn the_openapi_document_has_every_path_and_the_bearer_schemes() {
    let document = serde_json::to_value(optin_http::openapi()).unwrap();
    for path in ["/v1/businesses", "/v1/opt-ins", "/v1/opt-outs", "/v1/decisions", "/v1/contacts/{phone}/events"] {
        assert!(document["paths"].get(path).is_some(), "{path} is missing");
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["business_key"]["scheme"], "bearer");
    assert_eq!(schemes["operator_token"]["scheme"], "bearer");
    assert!(document["components"]["schemas"].get("ProblemDetails").is_some());
}
