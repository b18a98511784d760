//! A contact as the business sees it: current consent per category, and its ledger events.
//!
//! A contact with no events, or one that only another business knows, looks exactly the same:
//! every category `none`, no events.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jiff::Timestamp;
use optin_core::business::{Business, TemplateCategory};
use optin_core::consent::{ConsentBasis, ConsentEvent, ConsentStatus, ContactConsent};
use optin_core::evidence::Method;
use optin_core::ledger::LedgerEntry;
use optin_core::phone::PhoneNumber;
use optin_store::intake::PhoneInput;
use optin_store::{Problem, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Path, Query};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/contacts/{phone}", get(get_contact))
        .route("/v1/contacts/{phone}/events", get(list_contact_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ContactQuery {
    /// ISO 3166-1 alpha-2 hint for a national number.
    country: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    /// E.164.
    phone: String,
    /// Every category of the business, in slot order.
    categories: Vec<ContactCategoryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactCategoryView {
    category: String,
    template_category: TemplateCategory,
    status: ContactStatus,
    /// When the current status began.
    #[schema(value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// How the opt-in was collected (opted-in categories only).
    method: Option<Method>,
    #[schema(value_type = Option<String>, format = Uuid)]
    notice_id: Option<Uuid>,
    /// The event that set the current status.
    #[schema(value_type = Option<String>, format = Uuid)]
    event_id: Option<Uuid>,
    /// For an opt-in: what it rests on (`express`, `implied_purchase`, `implied_inquiry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<ConsentBasis>,
    /// For an opt-in: where its lifetime starts (the purchase or inquiry for implied consent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    basis_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    OptedIn,
    OptedOut,
    /// Opted in, not confirmed yet (double opt-in): messages are refused until then.
    PendingConfirmation,
    /// Never opted in or out.
    None,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactEvents {
    phone: String,
    /// Oldest first.
    events: Vec<EventView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    chain_index: u64,
    /// The event's chain hash (hex SHA-256).
    hash: String,
    /// The event exactly as the ledger holds it (kind, categories, method, notice, evidence...).
    #[schema(value_type = Object)]
    event: ConsentEvent,
}

impl ContactView {
    pub fn new(business: &Business, phone: PhoneNumber, consent: &ContactConsent) -> ContactView {
        let categories = business.categories.iter().map(|category| {
            let current = consent.get(&category.name);
            ContactCategoryView {
                category: category.name.to_string(),
                template_category: category.template_category,
                status: match current.map(|c| c.status) {
                    Some(ConsentStatus::OptedIn) => ContactStatus::OptedIn,
                    Some(ConsentStatus::OptedOut) => ContactStatus::OptedOut,
                    Some(ConsentStatus::PendingConfirmation) => ContactStatus::PendingConfirmation,
                    None => ContactStatus::None,
                },
                since: current.map(|c| c.since),
                method: current.and_then(|c| c.method),
                notice_id: current.and_then(|c| c.notice_id).map(|id| id.as_uuid()),
                event_id: current.map(|c| c.event_id.as_uuid()),
                basis: current.and_then(|c| c.basis).map(|(basis, _)| basis),
                basis_at: current.and_then(|c| c.basis).map(|(_, at)| at),
            }
        });
        ContactView { phone: phone.e164(), categories: categories.collect() }
    }
}

fn parse_phone(phone: String, country: Option<String>) -> Result<PhoneNumber, ApiError> {
    PhoneInput { phone, country }.parse().map_err(|Problem { code, detail }| ApiError::invalid(code, detail))
}

/// The contact's current consent for every category of the business.
#[utoipa::path(get, path = "/v1/contacts/{phone}", tag = "business", security(("business_key" = [])),
    params(("phone" = String, Path, description = "Any common format (URL-encoded)"), ContactQuery),
    responses(
        (status = 200, body = ContactView),
        (status = 422, description = "`invalid_phone`, `not_a_mobile_number`, `invalid_country`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_contact(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(phone): Path<String>,
    Query(query): Query<ContactQuery>,
) -> Result<axum::Json<ContactView>, ApiError> {
    let phone = parse_phone(phone, query.country)?;
    let consent = state.store().contact_consent(business.id, phone).await?;
    Ok(axum::Json(ContactView::new(&business, phone, &consent)))
}

/// The contact's consent events in ledger order, with their evidence.
#[utoipa::path(get, path = "/v1/contacts/{phone}/events", tag = "business", security(("business_key" = [])),
    params(("phone" = String, Path, description = "Any common format (URL-encoded)"), ContactQuery),
    responses(
        (status = 200, body = ContactEvents),
        (status = 422, description = "`invalid_phone`, `not_a_mobile_number`, `invalid_country`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_contact_events(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(phone): Path<String>,
    Query(query): Query<ContactQuery>,
) -> Result<axum::Json<ContactEvents>, ApiError> {
    let phone = parse_phone(phone, query.country)?;
    let entries = state.store().contact_events(business.id, phone).await?;
    Ok(axum::Json(ContactEvents::new(phone, entries)?))
}

impl ContactEvents {
    /// Reads each entry's event back from its hashed content.
    pub fn new(phone: PhoneNumber, entries: Vec<LedgerEntry>) -> Result<ContactEvents, StoreError> {
        let events = entries
            .into_iter()
            .map(|entry| {
                // The serde message could quote personal data: log only where it failed.
                let event = entry.event().map_err(|e| {
                    StoreError::Corrupt(format!("event {} does not parse (column {})", entry.event_id, e.column()))
                })?;
                Ok(EventView { chain_index: entry.index, hash: entry.hash.to_hex(), event })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(ContactEvents { phone: phone.e164(), events })
    }
}
