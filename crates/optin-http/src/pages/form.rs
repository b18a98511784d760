//! The hosted opt-in form (`/f/{business}/{form}`) and its confirmation link (`/c/{token}`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use optin_core::business::{Business, CategoryName};
use optin_core::form::{PageLanguage, PageTexts, country_from_accept_language, humanize, with_business};
use optin_core::link::{self, Purpose, TokenError};
use optin_core::phone::{PhoneNumber, Region, countries_with_calling_codes};
use optin_store::forms::{self, ConfirmationClaims, Confirmed, FieldProblem, Form, Submission, SubmitError};
use optin_store::{UseCaseError, channel::Sender};
use serde::{Deserialize, Serialize};

use super::{
    Chrome, Client, MessagePage, PeerAddr, find_business, header_text, html, not_available, too_many, unavailable,
};
use crate::forward::ForwardRequest;
use crate::state::AppState;

/// How long a form page may stay open before it must be reloaded.
const FORM_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(2);
const MAX_REFERRER_CHARS: usize = 500;

/// The anti-forgery token in every form: which form, and the page that showed it (evidence).
#[derive(Debug, Serialize, Deserialize)]
struct FormClaims {
    b: String,
    f: String,
    r: Option<String>,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    page: Chrome,
    texts: &'a PageTexts,
    errors: Vec<FieldProblem>,
    action: String,
    csrf: String,
    categories_error: Option<&'a str>,
    options: Vec<Choice>,
    countries: Vec<CountryOption>,
    phone: String,
    phone_error: Option<&'a str>,
    notice: String,
}

struct Choice {
    value: String,
    label: String,
    checked: bool,
}

struct CountryOption {
    code: &'static str,
    calling_code: u16,
    label: String,
    selected: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FormQuery {
    country: Option<String>,
}

/// Shows the form: the business's name, its notice, one unticked box per category, the number.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path((business_id, form_id)): Path<(String, String)>,
    Query(query): Query<FormQuery>,
    headers: HeaderMap,
) -> Response {
    let (business, form) = match load(&state, &business_id, &form_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_available(PageLanguage::En),
        Err(error) => return unavailable(&error),
    };
    let referrer = header_text(&headers, "referer").map(|r| r.chars().take(MAX_REFERRER_CHARS).collect());
    let country = query
        .country
        .filter(|c| Region::parse(c).is_ok())
        .or_else(|| header_text(&headers, "accept-language").and_then(|h| country_from_accept_language(&h)));
    let entered = Entered { phone: String::new(), country, ticked: Vec::new() };
    render_form(&state, &business, &form, entered, referrer, Vec::new()).await
}

/// What the person entered, kept when the form is shown again.
struct Entered {
    phone: String,
    country: Option<String>,
    ticked: Vec<String>,
}

async fn render_form(
    state: &AppState,
    business: &Business,
    form: &Form,
    entered: Entered,
    referrer: Option<String>,
    errors: Vec<FieldProblem>,
) -> Response {
    let now = Timestamp::now();
    let notice = match state.store().notice(business.id, form.notice_id).await {
        Ok(Some(notice)) => notice,
        Ok(None) => return not_available(form.language),
        Err(error) => return unavailable(&error),
    };
    let key = match forms::link_key(state.store(), business, now).await {
        Ok(key) => key,
        Err(error) => return unavailable(&error),
    };
    let claims = FormClaims { b: business.id.to_string(), f: form.id.as_str().to_owned(), r: referrer };
    let texts = form.language.texts();
    let message = |problem: FieldProblem| match problem {
        FieldProblem::PhoneMissing => texts.phone_missing.as_str(),
        FieldProblem::PhoneInvalid => texts.phone_invalid.as_str(),
        FieldProblem::NothingTicked => texts.nothing_ticked.as_str(),
        FieldProblem::FormExpired => texts.form_expired.as_str(),
    };
    let phone_error =
        errors.iter().copied().find(|e| *e != FieldProblem::NothingTicked && *e != FieldProblem::FormExpired);
    let categories_error = errors.iter().copied().find(|e| *e == FieldProblem::NothingTicked);
    let summary_error = errors.iter().copied().find(|e| *e == FieldProblem::FormExpired);
    let page = FormPage {
        page: Chrome::new(business, form.language, &texts.form_title)
            .styled(form.accent_colour, form.logo_url.as_deref()),
        texts,
        action: format!("/f/{}/{}", business.id, form.id.as_str()),
        csrf: link::sign(&key, Purpose::FormSubmission, &claims, now + FORM_TOKEN_LIFETIME),
        categories_error: categories_error.or(summary_error).map(message),
        options: choices(form, &entered.ticked),
        countries: country_options(entered.country.as_deref()),
        phone: entered.phone,
        phone_error: phone_error.map(message),
        notice: notice.text.as_str().to_owned(),
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    html(status, &page, &form.allowed_origins)
}

fn choices(form: &Form, ticked: &[String]) -> Vec<Choice> {
    form.categories
        .iter()
        .map(|category| Choice {
            value: category.as_str().to_owned(),
            label: label(form, category),
            checked: ticked.iter().any(|t| t == category.as_str()),
        })
        .collect()
}

fn label(form: &Form, category: &CategoryName) -> String {
    form.labels.get(category).cloned().unwrap_or_else(|| humanize(category))
}

fn country_options(selected: Option<&str>) -> Vec<CountryOption> {
    let selected = selected.map(str::to_ascii_uppercase);
    let known = selected.as_deref().is_some_and(|s| countries_with_calling_codes().iter().any(|(c, _)| c == s));
    let international =
        CountryOption { code: "", calling_code: 0, label: "International (+…)".to_owned(), selected: !known };
    let countries = countries_with_calling_codes().iter().map(|(code, calling_code)| CountryOption {
        code: code.as_str(),
        calling_code: *calling_code,
        label: format!("{code} (+{calling_code})"),
        selected: known && selected.as_deref() == Some(code.as_str()),
    });
    std::iter::once(international).chain(countries).collect()
}

async fn load(state: &AppState, business_id: &str, form_id: &str) -> Result<Option<(Business, Form)>, UseCaseError> {
    let Some(business) = find_business(state, business_id).await? else { return Ok(None) };
    let form = forms::form(state.store(), &business, form_id).await?;
    Ok(form.map(|form| (business, form)))
}

/// Records a submission: errors are shown next to their fields with the input kept; an opt-in
/// shows what the person now receives, or that it waits for their confirmation.
pub(crate) async fn submit(
    State(state): State<AppState>,
    Path((business_id, form_id)): Path<(String, String)>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (business, form) = match load(&state, &business_id, &form_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_available(PageLanguage::En),
        Err(error) => return unavailable(&error),
    };
    let client = Client::from_request(&state, &headers, &peer);
    let texts = form.language.texts();
    if !client.posted_by_our_page(&headers) {
        return forbidden(form.language);
    }
    if !state.page_limits().allow_ip(client.ip) {
        return too_many(&business, form.language, texts, &form.allowed_origins);
    }
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return forbidden(form.language);
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let ticked: Vec<String> = fields.iter().filter(|(k, _)| k == "category").map(|(_, v)| v.clone()).collect();
    let entered = Entered {
        phone: field("phone").unwrap_or_default().chars().take(40).collect(),
        country: field("country").filter(|c| !c.is_empty()),
        ticked,
    };
    let now = Timestamp::now();
    let key = match forms::link_key(state.store(), &business, now).await {
        Ok(key) => key,
        Err(error) => return unavailable(&error),
    };
    let token = field("csrf").unwrap_or_default();
    let claims = match link::verify::<FormClaims>(&key, Purpose::FormSubmission, &token, now) {
        Ok(claims) if claims.b == business.id.to_string() && claims.f == form.id.as_str() => claims,
        Ok(_) | Err(TokenError::Forged | TokenError::Malformed) => return forbidden(form.language),
        Err(TokenError::Expired) => {
            let referrer = link::unverified_claims::<FormClaims>(&token).ok().and_then(|c| c.r);
            return render_form(&state, &business, &form, entered, referrer, vec![FieldProblem::FormExpired]).await;
        }
    };
    let submission = Submission {
        phone: entered.phone.clone(),
        country: entered.country.clone(),
        categories: entered.ticked.clone(),
    };
    let checked = match forms::check(&form, submission) {
        Ok(checked) => checked,
        Err(SubmitError::Fields(errors)) => {
            return render_form(&state, &business, &form, entered, claims.r, errors).await;
        }
        Err(SubmitError::Forged(_)) => return forbidden(form.language),
    };
    if !state.page_limits().allow_number(checked.phone.key()) {
        return too_many(&business, form.language, texts, &form.allowed_origins);
    }
    let evidence = client.evidence(&format!("/f/{}/{}", business.id, form.id.as_str()), claims.r);
    let submitted = match forms::submit(state.store(), &business, &form, checked, evidence, now).await {
        Ok(submitted) => submitted,
        Err(error) => return unavailable(&error),
    };
    let sent = match &submitted.confirmation {
        Some(link) => {
            let url = format!("{}/c/{}", client.public_url, link.token);
            send_confirmation_message(&state, &business, &form, submitted.phone, &url).await
        }
        None => false,
    };
    done_page(&business, &form, &submitted.subscribed, &submitted.pending, sent)
}

pub(super) fn forbidden(language: PageLanguage) -> Response {
    let mut response = not_available(language);
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

fn done_page(
    business: &Business,
    form: &Form,
    subscribed: &[CategoryName],
    pending: &[CategoryName],
    sent: bool,
) -> Response {
    let texts = form.language.texts();
    let name = business.name.as_str();
    let (title, paragraphs, items) = if pending.is_empty() {
        (&texts.subscribed_title, vec![with_business(&texts.subscribed_body, name)], subscribed)
    } else {
        let body = if sent { &texts.pending_body } else { &texts.pending_link_body };
        (&texts.pending_title, vec![with_business(body, name)], pending)
    };
    let page = MessagePage {
        page: Chrome::new(business, form.language, title).styled(form.accent_colour, form.logo_url.as_deref()),
        paragraphs,
        items: items.iter().map(|c| label(form, c)).collect(),
        footer: Some(texts.stop_hint.clone()),
    };
    html(StatusCode::OK, &page, &form.allowed_origins)
}

/// Sends the form's confirmation template (its `{{1}}` is the link) from the form's number:
/// whether the upstream accepted it. A failure is logged; the link still works when it arrives
/// another way.
async fn send_confirmation_message(
    state: &AppState,
    business: &Business,
    form: &Form,
    phone: PhoneNumber,
    url: &str,
) -> bool {
    let (Some(message), Some(forwarder)) = (&form.confirmation_message, state.forwarder()) else { return false };
    let senders = match state.store().senders(business.id).await {
        Ok(senders) => senders,
        Err(error) => {
            tracing::warn!(%error, "the confirmation message was not sent: the senders could not be read");
            return false;
        }
    };
    let Some(sender) = senders.iter().find(|s: &&Sender| s.phone_number_id == message.phone_number_id) else {
        tracing::warn!(
            form = form.id.as_str(),
            "the confirmation message was not sent: its number is no longer set up"
        );
        return false;
    };
    let body = serde_json::json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": phone.e164().trim_start_matches('+'),
        "type": "template",
        "template": {
            "name": message.template,
            "language": {"code": message.language},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": url}]}],
        },
    });
    let body = serde_json::to_vec(&body).expect("JSON serializes");
    let request = ForwardRequest { sender, api_version: &sender.api_version, body: &body };
    match forwarder.forward(request).await {
        Ok(answer) if (200..300).contains(&answer.status) => true,
        Ok(answer) => {
            tracing::warn!(
                status = answer.status,
                form = form.id.as_str(),
                "the upstream refused the confirmation message"
            );
            false
        }
        Err(failure) => {
            tracing::warn!(?failure, form = form.id.as_str(), "the confirmation message could not be sent");
            false
        }
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    page: Chrome,
    body: String,
    items: Vec<String>,
    action: String,
    button: String,
}

/// What a confirmation link opens, checked: the business, its form (if still there) and claims.
struct Opened {
    business: Business,
    form: Option<Form>,
    claims: ConfirmationClaims,
}

impl Opened {
    fn language(&self) -> PageLanguage {
        self.form.as_ref().map_or(PageLanguage::En, |f| f.language)
    }

    fn chrome(&self, title: &str) -> Chrome {
        let chrome = Chrome::new(&self.business, self.language(), title);
        match &self.form {
            Some(form) => chrome.styled(form.accent_colour, form.logo_url.as_deref()),
            None => chrome,
        }
    }

    fn labels(&self) -> Vec<String> {
        let name = |c: &CategoryName| self.form.as_ref().map_or_else(|| humanize(c), |f| label(f, c));
        self.claims.categories.iter().map(name).collect()
    }
}

async fn open_confirmation(state: &AppState, token: &str) -> Result<Option<Opened>, UseCaseError> {
    let Ok(unverified) = link::unverified_claims::<ConfirmationClaims>(token) else { return Ok(None) };
    let Some(business) = find_business(state, &unverified.business).await? else { return Ok(None) };
    let key = forms::link_key(state.store(), &business, Timestamp::now()).await?;
    let Ok(claims) = link::verify::<ConfirmationClaims>(&key, Purpose::Confirmation, token, Timestamp::now()) else {
        return Ok(None);
    };
    let form = match &claims.form {
        Some(id) => forms::form(state.store(), &business, id.as_str()).await?,
        None => None,
    };
    Ok(Some(Opened { business, form, claims }))
}

/// Shows what the link confirms and a button: opening a link (a mail scanner may) confirms nothing.
pub(crate) async fn show_confirmation(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let opened = match open_confirmation(&state, &token).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return not_available(PageLanguage::En),
        Err(error) => return unavailable(&error),
    };
    let texts = opened.language().texts();
    let page = ConfirmPage {
        page: opened.chrome(&texts.confirm_title),
        body: with_business(&texts.confirm_body, opened.business.name.as_str()),
        items: opened.labels(),
        action: format!("/c/{token}"),
        button: texts.confirm_button.clone(),
    };
    html(StatusCode::OK, &page, &[])
}

/// Confirms: a `confirmation` event with the page's evidence.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    peer: PeerAddr,
    headers: HeaderMap,
) -> Response {
    let client = Client::from_request(&state, &headers, &peer);
    if !client.posted_by_our_page(&headers) {
        return forbidden(PageLanguage::En);
    }
    let opened = match open_confirmation(&state, &token).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return not_available(PageLanguage::En),
        Err(error) => return unavailable(&error),
    };
    let (language, business, claims) = (opened.language(), &opened.business, &opened.claims);
    let texts = language.texts();
    if !state.page_limits().allow_ip(client.ip) {
        return too_many(business, language, texts, &[]);
    }
    let evidence = client.evidence("/c/", None);
    let outcome =
        forms::confirm(state.store(), business, claims, evidence, link::reference(&token), Timestamp::now()).await;
    let (status, title, paragraphs) = match outcome {
        Ok(Confirmed::Now(_) | Confirmed::Already(_)) => (StatusCode::OK, &texts.confirmed_title, Vec::new()),
        Err(UseCaseError::Rejected(rejection)) if rejection.code() == "confirmation_expired" => {
            (StatusCode::GONE, &texts.link_problem_title, vec![texts.confirmation_expired.clone()])
        }
        Err(UseCaseError::Rejected(_)) => return not_available(language),
        Err(error) => return unavailable(&error),
    };
    let page = MessagePage {
        page: opened.chrome(title),
        paragraphs,
        items: opened.labels(),
        footer: Some(texts.stop_hint.clone()),
    };
    html(status, &page, &[])
}
