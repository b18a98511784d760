//! Proof: verifying the business's hash-chained ledger.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use optin_core::ledger::BreakKind;
use optin_store::ledger::{self, LedgerReport};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::BusinessAuth;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/ledger/verify", get(verify_ledger))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerVerification {
    /// True when every event re-hashes and links, up to the recorded head.
    intact: bool,
    /// Events that verified before the first break (all of them when intact).
    verified_events: u64,
    /// The head the store recorded (`null` before the first event).
    head: Option<HeadView>,
    first_break: Option<BreakView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeadView {
    index: u64,
    /// Hex SHA-256.
    hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakView {
    index: u64,
    #[schema(value_type = Option<String>, format = Uuid)]
    event_id: Option<Uuid>,
    kind: BreakKind,
}

impl From<LedgerReport> for LedgerVerification {
    fn from(report: LedgerReport) -> LedgerVerification {
        LedgerVerification {
            intact: report.is_intact(),
            verified_events: report.verified_events,
            head: report.head.map(|head| HeadView { index: head.index, hash: head.hash.to_hex() }),
            first_break: report.first_break.map(|found| BreakView {
                index: found.index,
                event_id: found.event_id.map(|id| id.as_uuid()),
                kind: found.kind,
            }),
        }
    }
}

/// Re-hashes the business's whole chain and reports the first break, if any.
#[utoipa::path(get, path = "/v1/ledger/verify", tag = "business", security(("business_key" = [])),
    responses((status = 200, body = LedgerVerification)))]
pub(crate) async fn verify_ledger(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<LedgerVerification>, ApiError> {
    let report = ledger::verify_ledger(state.store(), business.id).await?;
    Ok(axum::Json(LedgerVerification::from(report)))
}
