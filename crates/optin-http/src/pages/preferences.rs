//! The preference page (`/p/{token}`): what a contact receives from the business, each category
//! turned off or on in one save.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::ConsentStatus;
use optin_core::form::{PageLanguage, PageTexts, humanize, with_business};
use optin_core::link::{self, Purpose};
use optin_store::UseCaseError;
use optin_store::forms;
use optin_store::preferences::{self, CategoryRow, Choice, PreferenceClaims, PreferencesView, UpdateError};

use super::{Chrome, Client, PeerAddr, find_business, html, not_available, too_many, unavailable};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "preferences.html")]
struct PreferencesPage {
    page: Chrome,
    intro: String,
    saved: Option<String>,
    error: Option<String>,
    action: String,
    legend: String,
    rows: Vec<Row>,
    notice: Option<String>,
    agree_label: String,
    save: String,
}

struct Row {
    value: String,
    label: String,
    on: bool,
    status: String,
}

async fn open(state: &AppState, token: &str) -> Result<Option<(Business, PreferenceClaims)>, UseCaseError> {
    let Ok(unverified) = link::unverified_claims::<PreferenceClaims>(token) else { return Ok(None) };
    let Some(business) = find_business(state, &unverified.business).await? else { return Ok(None) };
    let key = forms::link_key(state.store(), &business, Timestamp::now()).await?;
    let verified = link::verify::<PreferenceClaims>(&key, Purpose::Preferences, token, Timestamp::now());
    Ok(verified.ok().filter(|claims| claims.business == business.id.to_string()).map(|claims| (business, claims)))
}

pub(crate) async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let (business, claims) = match open(&state, &token).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return not_available(PageLanguage::En),
        Err(error) => return unavailable(&error),
    };
    render(&state, &business, &claims, &token, None, None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    business: &Business,
    claims: &PreferenceClaims,
    token: &str,
    saved: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let view = match preferences::view(state.store(), business, claims).await {
        Ok(view) => view,
        Err(error) => return unavailable(&error),
    };
    let texts = claims.language.texts();
    html(status, &page(business, claims.language, texts, &view, token, saved, error), &[])
}

fn page(
    business: &Business,
    language: PageLanguage,
    texts: &PageTexts,
    view: &PreferencesView,
    token: &str,
    saved: Option<String>,
    error: Option<String>,
) -> PreferencesPage {
    let name = business.name.as_str();
    PreferencesPage {
        page: Chrome::new(business, language, &texts.preferences_title),
        intro: with_business(&texts.preferences_intro, name),
        saved,
        error,
        action: format!("/p/{token}"),
        legend: with_business(&texts.preferences_title, name),
        rows: view.rows.iter().map(|row| describe(row, texts)).collect(),
        notice: view.notice.as_ref().map(|n| n.text.as_str().to_owned()),
        agree_label: texts.agree_label.clone(),
        save: texts.save.clone(),
    }
}

fn describe(row: &CategoryRow, texts: &PageTexts) -> Row {
    let state = match row.status {
        Some(ConsentStatus::OptedIn) => &texts.status_on,
        Some(ConsentStatus::PendingConfirmation) => &texts.status_pending,
        _ => &texts.status_off,
    };
    let since = row.since.map(|at| format!(" · {} {}", texts.since, at.strftime("%Y-%m-%d"))).unwrap_or_default();
    let method = row.method.map(|m| format!(" · {} {}", texts.method_prefix, m.as_str())).unwrap_or_default();
    Row {
        value: row.category.as_str().to_owned(),
        label: humanize(&row.category),
        on: row.is_on(),
        status: format!("{state}{since}{method}"),
    }
}

pub(crate) async fn save(
    State(state): State<AppState>,
    Path(token): Path<String>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = Client::from_request(&state, &headers, &peer);
    if !client.posted_by_our_page(&headers) {
        return super::form::forbidden(PageLanguage::En);
    }
    let (business, claims) = match open(&state, &token).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return not_available(PageLanguage::En),
        Err(error) => return unavailable(&error),
    };
    let texts = claims.language.texts();
    if !state.page_limits().allow_ip(client.ip) {
        return too_many(&business, claims.language, texts, &[]);
    }
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return super::form::forbidden(claims.language);
    };
    let choice = Choice {
        wanted: fields.iter().filter(|(k, _)| k == "category").map(|(_, v)| v.clone()).collect(),
        agreed: fields.iter().any(|(k, v)| k == "agree" && v == "yes"),
    };
    let evidence = client.evidence("/p/", None);
    let reference = link::reference(&token);
    match preferences::update(state.store(), &business, &claims, &choice, evidence, &reference, Timestamp::now()).await
    {
        Ok(_) => render(&state, &business, &claims, &token, Some(texts.saved.clone()), None, StatusCode::OK).await,
        Err(UpdateError::AgreeMissing) => {
            let error = Some(texts.agree_missing.clone());
            render(&state, &business, &claims, &token, None, error, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(UpdateError::UseCase(error)) => unavailable(&error),
    }
}
