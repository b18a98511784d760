//! optin's HTTP API.
//!
//! [`router`] builds the whole API on a [`Store`](optin_store::Store) without opening a socket,
//! so the binary serves it and tests can call it in process. Handlers are thin: they parse
//! input with our extractors (`extract`), authenticate with `auth`'s extractors, call one
//! use case of `optin_store` (`tenancy`, `intake`, `gate`, `ledger`) and shape its result.
//! Every failure is an [`ApiError`], answered as `application/problem+json`.
//!
//! Layout: `routes/` has one module per resource (each with its own `router()`),
//! `middleware` the stack every route runs behind, `metrics` the Prometheus recorder,
//! `idempotency` the `Idempotency-Key` handling, `openapi` the generated document.

mod auth;
mod error;
mod extract;
mod forward;
mod idempotency;
mod metrics;
mod middleware;
mod openapi;
mod pages;
mod routes;
mod state;

pub use error::{ApiError, PROBLEM_JSON, ProblemDetails, ProblemItem};

/// The JSON shapes of the API's responses. The CLI prints the same ones with `--json`.
pub mod views {
    pub use crate::routes::businesses::{BusinessList, BusinessView, CreatedBusinessView};
    pub use crate::routes::channel::{SenderList, SenderView, WebhookSettingsView};
    pub use crate::routes::consent::RecordedView;
    pub use crate::routes::contacts::{ContactEvents, ContactView};
    pub use crate::routes::decisions::DecisionView;
    pub use crate::routes::imports::{ImportRejectionView, ImportSummaryView};
    pub use crate::routes::inbox::{DeliveryList, DeliveryView};
    pub use crate::routes::jurisdiction::JurisdictionView;
    pub use crate::routes::keys::{IssuedKeyView, KeyList};
    pub use crate::routes::ledger::LedgerVerification;
    pub use crate::routes::limit::MessagingLimitView;
    pub use crate::routes::notices::{NoticeList, NoticeView};
    pub use crate::routes::signals::{SignalList, SignalView};
    pub use crate::routes::templates::{TemplateImportView, TemplateList, TemplateView};
}
pub use forward::{ForwardFailure, ForwardFuture, ForwardRequest, Forwarder, UpstreamAnswer};
pub use openapi::openapi;
pub use state::{AppState, HttpSettings, InboxWaker};

/// The whole API, with its middleware, ready to serve.
pub fn router(state: AppState) -> axum::Router {
    middleware::wrap(routes::all(), &state).with_state(state)
}
