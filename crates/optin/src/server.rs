//! `optin serve`: open the store, make sure an operator token exists, serve the API.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;
use optin_http::{AppState, HttpSettings};
use optin_store::Store;
use optin_store::tenancy::CategoryInput;
use optin_whatsapp::outbound::{OutboundClient, RetryPolicy};
use optin_whatsapp::{Processor, ProcessorConfig};
use tokio::net::TcpListener;

use crate::database::DatabaseUrl;
use crate::operator::{OperatorToken, ensure_operator_token, write_secret_file};
use crate::upstream::UpstreamForwarder;

/// Settings of `optin serve`, already resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub admin_token: Option<String>,
    pub demo: bool,
    /// The base of the links optin sends and shows.
    pub public_url: String,
    pub http: HttpSettings,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    router: axum::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The hosted pages rate-limit and record the client's address.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(settings: ServeSettings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("while creating the data directory {}", settings.data_dir.display()))?;
    let store = settings.database.open().await?;
    warm_up_phone_parser();
    announce_operator_token(
        ensure_operator_token(store.as_ref(), settings.admin_token.as_deref(), &settings.data_dir).await?,
    );
    if settings.demo {
        ensure_demo_business(store.as_ref(), &settings.data_dir).await?;
    }
    let shutdown = shutdown_signal();
    let listener =
        TcpListener::bind(settings.listen).await.with_context(|| format!("while binding {}", settings.listen))?;
    tracing::info!(listen = %listener.local_addr()?, database = ?settings.database, "optin is serving");
    let processor = inbox_processor(Arc::clone(&store))?;
    let processing = tokio::spawn({
        let processor = processor.clone();
        async move { processor.run(std::future::pending()).await }
    });
    let waker: optin_http::InboxWaker = Arc::new(move || processor.wake());
    let forwarder = UpstreamForwarder::for_request_timeout(settings.http.request_timeout)
        .context("while creating the proxy's upstream client")?;
    let state = AppState::new(store, settings.http)
        .with_inbox_waker(waker)
        .with_forwarder(Arc::new(forwarder))
        .with_public_url(&settings.public_url);
    let router = optin_http::router(state);
    serve(router, listener, shutdown).await?;
    // Safe at any point: a delivery being processed keeps its claim and is taken again later.
    processing.abort();
    tracing::info!("optin stopped");
    Ok(())
}

/// The processor of the webhook inbox, with the outbound client it sends through.
pub fn inbox_processor(store: Arc<dyn Store>) -> anyhow::Result<Processor> {
    let client = OutboundClient::new(RetryPolicy::default()).context("while creating the outbound HTTP client")?;
    Ok(Processor::new(store, client, ProcessorConfig::default()))
}

/// The phone-number metadata loads on first use (seconds in debug builds); load it before serving.
fn warm_up_phone_parser() {
    let parsed = optin_core::phone::PhoneNumber::parse("+14155552671", None);
    debug_assert!(parsed.is_ok());
}

fn announce_operator_token(outcome: OperatorToken) {
    if let OperatorToken::Generated { token, file } = outcome {
        // Printed once, on purpose: this is the only time the operator sees it (besides the file).
        println!("Generated the operator token (shown once; also written to {}):\n  {token}", file.display());
    }
}

/// The name of the demo business `serve --demo` creates.
pub const DEMO_BUSINESS_NAME: &str = "Demo Shoes";
/// The demo business's hosted opt-in form: `/f/{business id}/signup`.
pub const DEMO_FORM: &str = "signup";
/// The file the demo business's id and API key are written to.
pub const DEMO_KEY_FILE: &str = "demo-business";
const DEMO_NOTICE: &str = "Yes, I agree to receive order updates and offers from Demo Shoes on WhatsApp. \
                           Reply STOP at any time to opt out.";

/// Creates the demo business, its categories and a notice, once.
async fn ensure_demo_business(store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    let exists = store.list_businesses().await?.iter().any(|b| b.name.as_str() == DEMO_BUSINESS_NAME);
    if exists {
        tracing::info!("the demo business exists (see {})", data_dir.join(DEMO_KEY_FILE).display());
        return Ok(());
    }
    let categories = [("order_updates", "utility"), ("offers", "marketing")]
        .map(|(name, kind)| CategoryInput { name: name.to_owned(), template_category: kind.to_owned() });
    let now = Timestamp::now();
    let (business, key) = optin_store::tenancy::create_business(store, DEMO_BUSINESS_NAME, &categories, now).await?;
    let notice = optin_store::intake::register_notice(store, &business, DEMO_NOTICE, "en", now).await?;
    let form = optin_store::forms::FormInput {
        categories: vec!["order_updates".to_owned(), "offers".to_owned()],
        labels: [("offers".to_owned(), "Offers and new arrivals".to_owned())].into(),
        notice_id: notice.id.to_string(),
        language: None,
        logo_url: None,
        accent_colour: None,
        allowed_origins: Vec::new(),
        double_opt_in: false,
        confirmation_message: None,
        confirm_within_hours: None,
    };
    optin_store::forms::put_form(store, &business, DEMO_FORM, form, now).await?;
    let file = data_dir.join(DEMO_KEY_FILE);
    let contents =
        format!("OPTIN_BUSINESS_ID={}\nOPTIN_API_KEY={}\nOPTIN_NOTICE_ID={}", business.id, key.secret, notice.id);
    write_secret_file(&file, &contents)?;
    println!(
        "Created the demo business \"{DEMO_BUSINESS_NAME}\" with categories order_updates and offers.\n\
         Its id, API key and notice id are in {} (shown once):\n{contents}\n\
         Its opt-in form: /f/{}/{DEMO_FORM}",
        file.display(),
        business.id
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called (not when the
/// future is first polled), so a signal that arrives while the server starts is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            (interrupt, terminate) => {
                tracing::error!(
                    interrupt = interrupt.is_ok(),
                    terminate = terminate.is_ok(),
                    "cannot listen for signals"
                );
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing open requests");
    }
}
