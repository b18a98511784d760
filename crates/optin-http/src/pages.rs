//! The pages optin hosts for people (not for API clients): the opt-in form `/f/{business}/{form}`,
//! the double opt-in confirmation `/c/{token}` and the preference page `/p/{token}`.
//!
//! They are HTML rendered on the server (askama templates in `templates/`, auto-escaped) and work
//! without JavaScript. Every answer forbids caching and sniffing and carries a
//! `Content-Security-Policy` that allows only our own stylesheet and script, posts only to
//! ourselves, and lets a page be framed only by the origins its form allows (others: nobody).
//! Posts are refused when the browser says they come from another site (`Origin`,
//! `Sec-Fetch-Site`), and are rate-limited per client address (and, for the form, per number).
//! A forged, expired or unknown link shows one friendly page that says nothing about why.

mod form;
mod limits;
mod preferences;

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use optin_core::business::Business;
use optin_core::form::{Colour, DEFAULT_ACCENT, Origin, PageLanguage, PageTexts, frame_ancestors, with_business};
use optin_core::ids::BusinessId;

pub(crate) use limits::PageLimits;

use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/f/{business_id}/{form_id}", get(form::show).post(form::submit))
        .route("/c/{token}", get(form::show_confirmation).post(form::confirm))
        .route("/p/{token}", get(preferences::show).post(preferences::save))
        .route("/assets/pages.css", get(stylesheet))
        .route("/assets/form.js", get(script))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../assets/pages.css"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../assets/form.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "public, max-age=3600"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, body).into_response()
}

/// What every page shows around its content.
pub(crate) struct Chrome {
    pub lang: &'static str,
    pub title: String,
    pub business: String,
    pub accent: String,
    pub logo_url: Option<String>,
}

impl Chrome {
    fn new(business: &Business, language: PageLanguage, title: &str) -> Chrome {
        Chrome {
            lang: language.as_str(),
            title: with_business(title, business.name.as_str()),
            business: business.name.as_str().to_owned(),
            accent: DEFAULT_ACCENT.to_hex(),
            logo_url: None,
        }
    }

    fn styled(mut self, accent: Colour, logo_url: Option<&str>) -> Chrome {
        self.accent = accent.to_hex();
        self.logo_url = logo_url.map(str::to_owned);
        self
    }
}

/// A page with a title, paragraphs and a list: confirmations, problems.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Chrome,
    paragraphs: Vec<String>,
    items: Vec<String>,
    footer: Option<String>,
}

/// Renders a page and adds the security headers; only `frame_origins` may frame it.
fn html(status: StatusCode, page: &impl Template, frame_origins: &[Origin]) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response();
        }
    };
    let policy = format!(
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' https:; script-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors {}",
        frame_ancestors(frame_origins)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    if frame_origins.is_empty() {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The one page for a link or form that opens nothing: it does not say which part was wrong.
fn not_available(language: PageLanguage) -> Response {
    let texts = language.texts();
    let page = MessagePage {
        page: Chrome {
            lang: language.as_str(),
            title: texts.link_problem_title.clone(),
            business: String::new(),
            accent: DEFAULT_ACCENT.to_hex(),
            logo_url: None,
        },
        paragraphs: vec![texts.link_problem_body.clone()],
        items: Vec::new(),
        footer: None,
    };
    html(StatusCode::NOT_FOUND, &page, &[])
}

/// A page that went wrong on our side: the cause is logged, the person sees a short apology.
fn unavailable(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "a page could not be served");
    let body = "<!DOCTYPE html><html lang=\"en\"><meta charset=\"utf-8\"><title>Unavailable</title>\
                <p>This page is unavailable right now. Please try again in a minute.</p></html>";
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn too_many(business: &Business, language: PageLanguage, texts: &PageTexts, frame_origins: &[Origin]) -> Response {
    let page = MessagePage {
        page: Chrome::new(business, language, &texts.form_title),
        paragraphs: vec![texts.too_many.clone()],
        items: Vec::new(),
        footer: None,
    };
    let mut response = html(StatusCode::TOO_MANY_REQUESTS, &page, frame_origins);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

async fn find_business(state: &AppState, id: &str) -> Result<Option<Business>, optin_store::StoreError> {
    let Ok(id) = id.parse::<BusinessId>() else { return Ok(None) };
    state.store().business(id).await
}

/// The socket's peer address, when the server was started with connection info (`optin serve`
/// is; a router called in process is not).
pub(crate) struct PeerAddr(Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<PeerAddr, Self::Rejection> {
        Ok(PeerAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0)))
    }
}

/// Where the request came from, as far as we can tell.
pub(crate) struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// `http://host:port` as the browser reached us (the `Host` header: compared with `Origin`).
    pub own_origin: String,
    /// The base of links and of the page URLs kept as evidence: the configured public URL.
    pub public_url: String,
}

impl Client {
    fn from_request(state: &AppState, headers: &HeaderMap, peer: &PeerAddr) -> Client {
        let trust = state.settings().trust_forwarded_headers;
        let forwarded = trust
            .then(|| header_text(headers, "x-forwarded-for"))
            .flatten()
            .and_then(|list| list.split(',').next_back().map(|ip| ip.trim().to_owned()))
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let ip_addr = forwarded.or(peer.0.map(|address| address.ip()));
        let scheme = trust.then(|| header_text(headers, "x-forwarded-proto")).flatten().filter(|p| p == "https");
        let host = header_text(headers, "host").unwrap_or_else(|| "localhost".to_owned());
        let own_origin = format!("{}://{host}", scheme.as_deref().unwrap_or("http"));
        Client {
            ip: ip_addr,
            user_agent: header_text(headers, "user-agent").map(|ua| ua.chars().take(512).collect()),
            public_url: state.public_url().map_or_else(|| own_origin.clone(), str::to_owned),
            own_origin,
        }
    }

    /// The evidence of what happened on the page at `path` (below the public URL).
    fn evidence(&self, path: &str, referrer: Option<String>) -> optin_store::forms::PageEvidence {
        optin_store::forms::PageEvidence {
            page_url: format!("{}{path}", self.public_url),
            referrer,
            ip: self.ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }

    /// Whether a post comes from our own page, as the browser tells: another site's page may not
    /// post our forms (browsers send `Origin` and `Sec-Fetch-Site` with every form post).
    fn posted_by_our_page(&self, headers: &HeaderMap) -> bool {
        let origin_ok = header_text(headers, "origin").is_none_or(|origin| {
            let host = |url: &str| url.split_once("://").map(|(_, rest)| rest.to_ascii_lowercase());
            // Behind a proxy that rewrites `Host`, the public URL is what the browser saw.
            origin != "null" && (host(&origin) == host(&self.own_origin) || host(&origin) == host(&self.public_url))
        });
        let fetch_site_ok =
            header_text(headers, "sec-fetch-site").is_none_or(|site| site == "same-origin" || site == "none");
        origin_ok && fetch_site_ok
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).filter(|v| !v.is_empty())
}
