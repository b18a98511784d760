//! The hosted opt-in form: a business's forms (a settings document, checked when set), what a
//! submission records (an opt-in with method `web_form` and the page's evidence), and the second
//! step of its double opt-in (the confirmation link). Also the business's key for signed links.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use optin_core::business::{Business, CategoryName, TemplateCategory};
use optin_core::consent::ConsentStatus;
use optin_core::form::{Colour, DEFAULT_ACCENT, FormId, Origin, PageLanguage, parse_logo_url};
use optin_core::ids::NoticeId;
use optin_core::link::{self, LinkKey, Purpose};
use optin_core::phone::PhoneNumber;
use optin_core::template::TemplateLanguage;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::intake::{self, CONFIRMATION_DEADLINE, ConfirmationInput, OptInInput, PhoneInput};
use crate::rejection::{Problem, Problems, UseCaseError, problem};
use crate::store::Store;
use crate::whatsapp::{read_document, write_document};

const DOCUMENT: &str = "forms";
const LINK_KEY_DOCUMENT: &str = "link_key";
const MAX_LABEL_CHARS: usize = 80;
const DEFAULT_CONFIRM_WITHIN_HOURS: u32 = 48;
const MAX_CONFIRM_WITHIN_HOURS: u32 = 30 * 24;

/// One hosted form, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Form {
    pub id: FormId,
    /// The categories offered, one unticked checkbox each, in this order.
    pub categories: Vec<CategoryName>,
    /// What a checkbox says; a category without a label shows its name in words.
    pub labels: BTreeMap<CategoryName, String>,
    /// The registered notice shown above the checkboxes (its language is the page's).
    pub notice_id: NoticeId,
    pub language: PageLanguage,
    pub logo_url: Option<String>,
    pub accent_colour: Colour,
    /// Origins allowed to show the form in an iframe; none: no framing.
    pub allowed_origins: Vec<Origin>,
    /// Opt-ins wait for the person's confirmation (also forced where the jurisdiction expects it).
    pub double_opt_in: bool,
    /// The WhatsApp template that asks for the confirmation; without one, only the link confirms
    /// (it is returned to whoever shows the page... and to no one else).
    pub confirmation_message: Option<ConfirmationMessage>,
    /// How long an opt-in may wait for its confirmation.
    pub confirm_within_hours: u32,
    pub updated_at: Timestamp,
}

/// A utility template, sent from one of the business's numbers, whose body's `{{1}}` is the
/// confirmation link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationMessage {
    pub phone_number_id: String,
    pub template: String,
    pub language: String,
}

/// A form as a client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormInput {
    pub categories: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub notice_id: String,
    pub language: Option<String>,
    pub logo_url: Option<String>,
    pub accent_colour: Option<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub double_opt_in: bool,
    pub confirmation_message: Option<ConfirmationMessage>,
    pub confirm_within_hours: Option<u32>,
}

pub async fn forms(store: &dyn Store, business: &Business) -> Result<BTreeMap<FormId, Form>, UseCaseError> {
    read_document(store, business, DOCUMENT).await
}

pub async fn form(store: &dyn Store, business: &Business, id: &str) -> Result<Option<Form>, UseCaseError> {
    let Ok(id) = FormId::parse(id) else { return Ok(None) };
    Ok(forms(store, business).await?.remove(&id))
}

/// Checks a form (every problem at once) and stores it under `id`, replacing an older one.
pub async fn put_form(
    store: &dyn Store,
    business: &Business,
    id: &str,
    input: FormInput,
    now: Timestamp,
) -> Result<Form, UseCaseError> {
    let mut problems = Problems::default();
    let id = problems.take(FormId::parse(id).map_err(|e| problem(e.code(), e)));
    let categories = problems.take(form_categories(business, &input.categories));
    let labels = problems.take(labels(business, &input.labels));
    let language = match input.language.as_deref() {
        None => Some(PageLanguage::default()),
        Some(tag) => problems.take(PageLanguage::parse(tag).map_err(|e| problem(e.code(), e))),
    };
    let notice = problems.take(notice_for(store, business, &input.notice_id, language).await?);
    let logo_url = match input.logo_url.as_deref() {
        None => Some(None),
        Some(url) => problems.take(parse_logo_url(url).map(Some).map_err(|e| problem(e.code(), e))),
    };
    let accent_colour = match input.accent_colour.as_deref() {
        None => Some(DEFAULT_ACCENT),
        Some(text) => problems.take(Colour::parse_accent(text).map_err(|e| problem(e.code(), e))),
    };
    let origins: Vec<Origin> = input
        .allowed_origins
        .iter()
        .filter_map(|o| problems.take(Origin::parse(o).map_err(|e| problem(e.code(), e))))
        .collect();
    let confirm_within_hours = input.confirm_within_hours.unwrap_or(DEFAULT_CONFIRM_WITHIN_HOURS);
    if !(1..=MAX_CONFIRM_WITHIN_HOURS).contains(&confirm_within_hours) {
        problems
            .push("invalid_confirm_within_hours", format!("confirm_within_hours is 1 to {MAX_CONFIRM_WITHIN_HOURS}"));
    }
    if input.double_opt_in && input.confirmation_message.is_none() {
        problems
            .push("confirmation_message_missing", "a double opt-in form needs confirmation_message to send its link");
    }
    let confirmation_message = input.confirmation_message.and_then(|mut message| {
        let language = TemplateLanguage::parse(&message.language).map_err(|e| problem(e.code(), e));
        message.language = problems.take(language)?.as_str().to_owned();
        Some(message)
    });
    if let Some(message) = &confirmation_message {
        for found in check_confirmation_message(store, business, message).await? {
            problems.push(found.code, found.detail);
        }
    }
    problems.into_result()?;
    let (
        Some(id),
        Some(categories),
        Some(labels),
        Some(language),
        Some(notice_id),
        Some(logo_url),
        Some(accent_colour),
    ) = (id, categories, labels, language, notice, logo_url, accent_colour)
    else {
        unreachable!("problems were reported")
    };
    let form = Form {
        id,
        categories,
        labels,
        notice_id,
        language,
        logo_url,
        accent_colour,
        allowed_origins: origins,
        double_opt_in: input.double_opt_in,
        confirmation_message,
        confirm_within_hours,
        updated_at: optin_core::truncate_to_microseconds(now),
    };
    let mut all = forms(store, business).await?;
    all.insert(form.id.clone(), form.clone());
    write_document(store, business, DOCUMENT, &all, now).await?;
    Ok(form)
}

/// Removes a form: `false` when there was none.
pub async fn delete_form(
    store: &dyn Store,
    business: &Business,
    id: &str,
    now: Timestamp,
) -> Result<bool, UseCaseError> {
    let Ok(id) = FormId::parse(id) else { return Ok(false) };
    let mut all = forms(store, business).await?;
    if all.remove(&id).is_none() {
        return Ok(false);
    }
    write_document(store, business, DOCUMENT, &all, now).await?;
    Ok(true)
}

fn form_categories(business: &Business, names: &[String]) -> Result<Vec<CategoryName>, Problem> {
    if names.is_empty() {
        return Err(problem("categories_missing", "a form offers at least one category"));
    }
    let categories = business.resolve_categories(names).map_err(|e| problem(e.code(), e))?;
    let mut seen = std::collections::BTreeSet::new();
    if !categories.iter().all(|c| seen.insert(c)) {
        return Err(problem("duplicate_category", "a form offers each category once"));
    }
    Ok(categories)
}

fn labels(business: &Business, input: &BTreeMap<String, String>) -> Result<BTreeMap<CategoryName, String>, Problem> {
    let mut labels = BTreeMap::new();
    for (name, label) in input {
        let category = business.resolve_categories(std::slice::from_ref(name)).map_err(|e| problem(e.code(), e))?;
        let label = label.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
            return Err(problem("invalid_label", format!("a label is 1 to {MAX_LABEL_CHARS} characters of text")));
        }
        labels.insert(category.into_iter().next().expect("one name, one category"), label.to_owned());
    }
    Ok(labels)
}

async fn notice_for(
    store: &dyn Store,
    business: &Business,
    id: &str,
    language: Option<PageLanguage>,
) -> Result<Result<NoticeId, Problem>, UseCaseError> {
    let Ok(id) = id.parse::<NoticeId>() else {
        return Ok(Err(problem("unknown_notice", "notice_id is not a notice id")));
    };
    let Some(notice) = store.notice(business.id, id).await? else {
        return Ok(Err(problem("unknown_notice", format!("the business has no notice {id}"))));
    };
    let page = language.map(PageLanguage::as_str);
    if page.is_some_and(|page| page != notice.language.primary()) {
        let detail =
            format!("the notice is in `{}`, the page in `{}`", notice.language.as_str(), page.unwrap_or_default());
        return Ok(Err(problem("notice_language_mismatch", detail)));
    }
    Ok(Ok(id))
}

async fn check_confirmation_message(
    store: &dyn Store,
    business: &Business,
    message: &ConfirmationMessage,
) -> Result<Vec<Problem>, UseCaseError> {
    let mut problems = Vec::new();
    let senders = store.senders(business.id).await?;
    if !senders.iter().any(|s| s.phone_number_id == message.phone_number_id) {
        problems.push(problem(
            "unknown_sender",
            "confirmation_message.phone_number_id is not one of the business's numbers",
        ));
    }
    match store.template(business.id, &message.template, &message.language).await? {
        None => {
            problems.push(problem("unknown_template", "import the confirmation template first (POST /v1/templates)"))
        }
        Some(template) if template.category != TemplateCategory::Utility => {
            problems.push(problem(
                "confirmation_template_not_utility",
                "the confirmation template must be a UTILITY template",
            ));
        }
        Some(template) if !template.components.contains("{{1}}") => {
            problems
                .push(problem("confirmation_template_without_link", "the template's body needs {{1}} for the link"));
        }
        Some(_) => {}
    }
    Ok(problems)
}

/// The business's key for signed links, made on first use.
pub async fn link_key(store: &dyn Store, business: &Business, now: Timestamp) -> Result<LinkKey, UseCaseError> {
    #[derive(Default, Serialize, Deserialize)]
    struct Stored {
        key: Option<String>,
    }
    let stored: Stored = read_document(store, business, LINK_KEY_DOCUMENT).await?;
    if let Some(key) = stored.key.as_deref().and_then(LinkKey::from_hex) {
        return Ok(key);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
    write_document(store, business, LINK_KEY_DOCUMENT, &Stored { key: Some(LinkKey::from_bytes(bytes).to_hex()) }, now)
        .await?;
    // Read back: when two servers made a key at once, both use the one that stayed.
    let stored: Stored = read_document(store, business, LINK_KEY_DOCUMENT).await?;
    stored
        .key
        .as_deref()
        .and_then(LinkKey::from_hex)
        .ok_or_else(|| crate::StoreError::Corrupt("the link key did not stay stored".to_owned()).into())
}

/// What a person typed and ticked.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub phone: String,
    pub country: Option<String>,
    pub categories: Vec<String>,
}

/// What the page knows about where the submission came from: the evidence of a web opt-in.
#[derive(Debug, Clone)]
pub struct PageEvidence {
    /// The page's own URL (without any token in it).
    pub page_url: String,
    /// The page the person came from or that embeds the form.
    pub referrer: Option<String>,
    pub ip: String,
    pub user_agent: Option<String>,
}

impl PageEvidence {
    pub(crate) fn into_fields(self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("page_url".to_owned(), Value::from(self.page_url));
        fields.insert("ip".to_owned(), Value::from(self.ip));
        if let Some(referrer) = self.referrer {
            fields.insert("referrer".to_owned(), Value::from(referrer));
        }
        if let Some(user_agent) = self.user_agent {
            fields.insert("user_agent".to_owned(), Value::from(user_agent));
        }
        fields
    }
}

/// A field the person must correct, shown next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblem {
    PhoneMissing,
    PhoneInvalid,
    NothingTicked,
    /// The page was open longer than its anti-forgery token lasts (the shell checks it).
    FormExpired,
}

/// Why a submission cannot be recorded.
#[derive(Debug)]
pub enum SubmitError {
    /// The person's input: shown next to the fields.
    Fields(Vec<FieldProblem>),
    /// A category the form does not offer, or another request no real page sends.
    Forged(&'static str),
}

/// What a submission recorded.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub phone: PhoneNumber,
    /// Categories the person now receives.
    pub subscribed: Vec<CategoryName>,
    /// Categories waiting for the person's confirmation, and the link token that confirms them.
    pub pending: Vec<CategoryName>,
    pub confirmation: Option<ConfirmationLink>,
}

/// A signed confirmation link's token and until when it works.
#[derive(Debug, Clone)]
pub struct ConfirmationLink {
    pub token: String,
    pub expires_at: Timestamp,
}

/// What a confirmation link's token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationClaims {
    #[serde(rename = "b")]
    pub business: String,
    /// The form the person signed up on; `None` for a link the business asked for itself.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub form: Option<FormId>,
    #[serde(rename = "p", with = "optin_core::consent::e164")]
    pub phone: PhoneNumber,
    #[serde(rename = "c")]
    pub categories: Vec<CategoryName>,
}

/// A submission whose number and ticked categories are fine: what [`submit`] records.
#[derive(Debug, Clone)]
pub struct Checked {
    pub phone: PhoneNumber,
    pub ticked: Vec<CategoryName>,
}

/// Reads what the person typed and ticked: the problems to show next to the fields, or a
/// category the form does not offer (no real page sends one).
pub fn check(form: &Form, submission: Submission) -> Result<Checked, SubmitError> {
    let phone_input = PhoneInput { phone: submission.phone.trim().to_owned(), country: submission.country };
    let mut fields = Vec::new();
    let phone = if phone_input.phone.is_empty() {
        fields.push(FieldProblem::PhoneMissing);
        None
    } else {
        let parsed = phone_input.parse();
        if parsed.is_err() {
            fields.push(FieldProblem::PhoneInvalid);
        }
        parsed.ok()
    };
    if submission.categories.is_empty() {
        fields.push(FieldProblem::NothingTicked);
    }
    let ticked =
        submission.categories.iter().map(|c| CategoryName::parse(c).ok().filter(|c| form.categories.contains(c)));
    let ticked: Option<Vec<CategoryName>> = ticked.collect();
    let Some(mut ticked) = ticked else { return Err(SubmitError::Forged("the form does not offer that category")) };
    ticked.sort();
    ticked.dedup();
    let Some(phone) = phone.filter(|_| fields.is_empty()) else { return Err(SubmitError::Fields(fields)) };
    Ok(Checked { phone, ticked })
}

/// Records a submission as an opt-in (method `web_form`): pending when the form or the
/// jurisdiction asks for a double opt-in, with a confirmation link that works until the deadline.
pub async fn submit(
    store: &dyn Store,
    business: &Business,
    form: &Form,
    submission: Checked,
    evidence: PageEvidence,
    now: Timestamp,
) -> Result<Submitted, UseCaseError> {
    let Checked { phone, ticked } = submission;
    let deadline = now + SignedDuration::from_hours(i64::from(form.confirm_within_hours));
    let mut evidence = evidence.into_fields();
    evidence.insert("form_id".to_owned(), Value::from(form.id.as_str()));
    evidence.insert("categories_ticked".to_owned(), json!(ticked.iter().map(CategoryName::as_str).collect::<Vec<_>>()));
    evidence.insert(CONFIRMATION_DEADLINE.to_owned(), Value::from(deadline.to_string()));
    let input = OptInInput {
        phone: PhoneInput { phone: phone.e164(), country: None },
        categories: ticked.iter().map(|c| c.as_str().to_owned()).collect(),
        method: "web_form".to_owned(),
        notice_id: form.notice_id.to_string(),
        collected_at: Some(now),
        evidence,
        terms: intake::ConsentTerms { double_opt_in: form.double_opt_in, ..Default::default() },
    };
    intake::record_opt_in(store, business, input, now).await?;
    let state = store.contact_consent(business.id, phone).await?;
    let status = |category: &CategoryName| state.get(category).map(|c| c.status);
    let subscribed: Vec<CategoryName> =
        ticked.iter().filter(|c| status(c) == Some(ConsentStatus::OptedIn)).cloned().collect();
    let pending: Vec<CategoryName> =
        ticked.iter().filter(|c| status(c) == Some(ConsentStatus::PendingConfirmation)).cloned().collect();
    let confirmation = if pending.is_empty() {
        None
    } else {
        let key = link_key(store, business, now).await?;
        let claims = ConfirmationClaims {
            business: business.id.to_string(),
            form: Some(form.id.clone()),
            phone,
            categories: pending.clone(),
        };
        Some(ConfirmationLink {
            token: link::sign(&key, Purpose::Confirmation, &claims, deadline),
            expires_at: deadline,
        })
    };
    Ok(Submitted { phone, subscribed, pending, confirmation })
}

/// What opening a confirmation link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// These categories became consent now.
    Now(Vec<CategoryName>),
    /// Nothing was waiting any more and these are consent already (a second click).
    Already(Vec<CategoryName>),
}

/// Confirms the categories a link names, with the page's evidence. Refused when nothing is
/// waiting (an opt-out since, say) or the deadline passed.
pub async fn confirm(
    store: &dyn Store,
    business: &Business,
    claims: &ConfirmationClaims,
    evidence: PageEvidence,
    link_reference: String,
    now: Timestamp,
) -> Result<Confirmed, UseCaseError> {
    let mut fields = evidence.into_fields();
    fields.insert("confirmation_link".to_owned(), Value::from(link_reference));
    if let Some(form) = &claims.form {
        fields.insert("form_id".to_owned(), Value::from(form.as_str()));
    }
    let input = ConfirmationInput {
        phone: PhoneInput { phone: claims.phone.e164(), country: None },
        categories: Some(claims.categories.iter().map(|c| c.as_str().to_owned()).collect()),
        method: "web_form".to_owned(),
        evidence: fields,
    };
    match intake::record_confirmation(store, business, input, now).await {
        Ok(recorded) => Ok(Confirmed::Now(recorded.outcomes.into_iter().map(|(c, _)| c).collect())),
        Err(UseCaseError::Rejected(rejection)) if rejection.code() == "nothing_to_confirm" => {
            let state = store.contact_consent(business.id, claims.phone).await?;
            let all_in =
                claims.categories.iter().all(|c| state.get(c).is_some_and(|s| s.status == ConsentStatus::OptedIn));
            if all_in {
                Ok(Confirmed::Already(claims.categories.clone()))
            } else {
                Err(UseCaseError::Rejected(rejection))
            }
        }
        Err(error) => Err(error),
    }
}

/// How long a confirmation link the business asks for works unless it says otherwise.
const DEFAULT_LINK_HOURS: u32 = 48;

/// A confirmation link for a contact's pending categories (of `categories`, when given), for a
/// business that delivers the link itself (a form in a double opt-in country without a WhatsApp
/// confirmation message, an opt-in taken over the API). Refused when nothing is waiting
/// (`nothing_to_confirm`) or everything waiting is past its deadline (`confirmation_expired`).
pub async fn confirmation_link(
    store: &dyn Store,
    business: &Business,
    phone: PhoneInput,
    categories: Option<Vec<String>>,
    expires_in_hours: Option<u32>,
    now: Timestamp,
) -> Result<(PhoneNumber, Vec<CategoryName>, ConfirmationLink), UseCaseError> {
    let phone = phone.parse().map_err(crate::Rejection::from)?;
    let only = match categories {
        Some(names) => {
            Some(business.resolve_categories(&names).map_err(|e| crate::Rejection::invalid(e.code(), e.to_string()))?)
        }
        None => None,
    };
    let hours = expires_in_hours.unwrap_or(DEFAULT_LINK_HOURS);
    if !(1..=MAX_CONFIRM_WITHIN_HOURS).contains(&hours) {
        let detail = format!("expires_in_hours is 1 to {MAX_CONFIRM_WITHIN_HOURS}");
        return Err(crate::Rejection::invalid("invalid_expires_in_hours", detail).into());
    }
    let pending = intake::pending_categories(store, business.id, phone, only.as_deref(), now).await?.confirmable()?;
    let claims = ConfirmationClaims { business: business.id.to_string(), form: None, phone, categories: pending };
    let expires_at = now + SignedDuration::from_hours(i64::from(hours));
    let key = link_key(store, business, now).await?;
    let token = link::sign(&key, Purpose::Confirmation, &claims, expires_at);
    Ok((phone, claims.categories, ConfirmationLink { token, expires_at }))
}
