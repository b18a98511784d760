//! What every handler shares: the store, the settings and the metric handles.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use optin_store::Store;

use crate::metrics::Metrics;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request body accepted; larger ones get 413 `body_too_large`.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is abandoned with 503 `request_timeout`.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings { body_limit_bytes: 64 * 1024, request_timeout: Duration::from_secs(10) }
    }
}

/// The state of the router: cheap to clone (everything is behind `Arc`s).
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn Store>,
    settings: HttpSettings,
    metrics: Metrics,
}

impl AppState {
    /// Also installs the process's Prometheus recorder the first time it is called.
    pub fn new(store: Arc<dyn Store>, settings: HttpSettings) -> AppState {
        AppState { store, settings, metrics: Metrics::new() }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn settings(&self) -> HttpSettings {
        self.settings
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}
