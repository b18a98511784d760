//! What every handler shares: the store, the settings and the metric handles.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use optin_store::Store;

use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::pages::PageLimits;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request body accepted; larger ones get 413 `body_too_large`.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is abandoned with 503 `request_timeout`.
    pub request_timeout: Duration,
    /// Largest webhook delivery or template file accepted (Meta sends up to 3 MB).
    pub large_body_limit_bytes: usize,
    /// Posts to the hosted pages (form, confirmation, preferences) one IP address may make per minute.
    pub page_posts_per_ip_per_minute: u32,
    /// Form submissions for one phone number per hour.
    pub form_posts_per_number_per_hour: u32,
    /// Take the client's address and scheme from `X-Forwarded-For` / `X-Forwarded-Proto` (set it
    /// only behind a reverse proxy that overwrites them).
    pub trust_forwarded_headers: bool,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            body_limit_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            large_body_limit_bytes: 8 * 1024 * 1024,
            page_posts_per_ip_per_minute: 20,
            form_posts_per_number_per_hour: 5,
            trust_forwarded_headers: false,
        }
    }
}

/// Called after a webhook delivery is stored, to wake whoever processes the inbox.
pub type InboxWaker = Arc<dyn Fn() + Send + Sync>;

/// The state of the router: cheap to clone (everything is behind `Arc`s).
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn Store>,
    settings: HttpSettings,
    metrics: Metrics,
    inbox_waker: Option<InboxWaker>,
    forwarder: Option<Arc<dyn Forwarder>>,
    page_limits: Arc<PageLimits>,
    public_url: Option<Arc<str>>,
}

impl AppState {
    /// Also installs the process's Prometheus recorder the first time it is called.
    pub fn new(store: Arc<dyn Store>, settings: HttpSettings) -> AppState {
        let page_limits = Arc::new(PageLimits::new(&settings));
        AppState {
            store,
            settings,
            metrics: Metrics::new(),
            inbox_waker: None,
            forwarder: None,
            page_limits,
            public_url: None,
        }
    }

    /// Wakes the inbox processor after every stored webhook delivery (without one, deliveries
    /// wait for the processor's next poll).
    #[must_use]
    pub fn with_inbox_waker(mut self, waker: InboxWaker) -> AppState {
        self.inbox_waker = Some(waker);
        self
    }

    /// Sends the messages the proxy allows (`POST /proxy/...`) to the WhatsApp upstream (without
    /// one, the proxy answers 503).
    #[must_use]
    pub fn with_forwarder(mut self, forwarder: Arc<dyn Forwarder>) -> AppState {
        self.forwarder = Some(forwarder);
        self
    }

    /// Where people reach this server (`https://optin.example`): the base of the links optin
    /// sends (a double opt-in's confirmation link goes out on WhatsApp) and shows. Without it, the
    /// request's `Host` is used, which a client chooses: `optin serve` always sets one.
    #[must_use]
    pub fn with_public_url(mut self, url: &str) -> AppState {
        self.public_url = Some(url.trim_end_matches('/').into());
        self
    }

    pub(crate) fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    pub(crate) fn page_limits(&self) -> &PageLimits {
        &self.page_limits
    }

    pub(crate) fn forwarder(&self) -> Option<&dyn Forwarder> {
        self.forwarder.as_deref()
    }

    pub(crate) fn wake_inbox(&self) {
        if let Some(wake) = &self.inbox_waker {
            wake();
        }
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
