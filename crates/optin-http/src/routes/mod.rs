//! One module per resource, each with its own `router()`, merged here.

pub(crate) mod batch;
pub(crate) mod business;
pub(crate) mod businesses;
pub(crate) mod channel;
pub(crate) mod consent;
pub(crate) mod contacts;
pub(crate) mod decisions;
pub(crate) mod documents;
pub(crate) mod forms;
pub(crate) mod imports;
pub(crate) mod inbox;
pub(crate) mod ivr;
pub(crate) mod jurisdiction;
pub(crate) mod keys;
pub(crate) mod ledger;
pub(crate) mod limit;
pub(crate) mod notices;
pub(crate) mod proxy;
pub(crate) mod signals;
pub(crate) mod sms;
pub(crate) mod system;
pub(crate) mod templates;
pub(crate) mod webhooks;

use axum::Router;

use crate::state::AppState;

/// Every route, with problem answers for unknown paths (404) and methods (405).
pub(crate) fn all() -> Router<AppState> {
    Router::new()
        .merge(system::router())
        .merge(businesses::router())
        .merge(keys::router())
        .merge(business::router())
        .merge(notices::router())
        .merge(consent::router())
        .merge(ivr::router())
        .merge(documents::router())
        .merge(decisions::router())
        .merge(batch::router())
        .merge(imports::router())
        .merge(contacts::router())
        .merge(ledger::router())
        .merge(channel::router())
        .merge(jurisdiction::router())
        .merge(webhooks::router())
        .merge(sms::router())
        .merge(templates::router())
        .merge(signals::router())
        .merge(limit::router())
        .merge(inbox::router())
        .merge(proxy::router())
        .merge(crate::pages::router())
        .merge(forms::router())
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
}
