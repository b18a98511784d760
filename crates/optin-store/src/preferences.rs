//! The preference page: a signed, expiring link per contact (`/p/{token}`) to a page where the
//! person sees what they receive from the business, since when and how, and turns each category
//! off or on. Turning off is an opt-out (source `preference_page`); turning on is an opt-in under
//! the notice the page shows (method `web_form`). Both carry the page's evidence.

use jiff::{SignedDuration, Timestamp};
use optin_core::business::{Business, CategoryName};
use optin_core::consent::{ConsentStatus, OptOutSource};
use optin_core::evidence::Method;
use optin_core::form::PageLanguage;
use optin_core::ids::NoticeId;
use optin_core::link::{self, Purpose};
use optin_core::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::forms::{PageEvidence, link_key};
use crate::intake::{self, OptInInput, OptOutInput, PhoneInput};
use crate::records::Notice;
use crate::rejection::{Rejection, UseCaseError};
use crate::store::Store;

/// How long a link works unless the request says otherwise.
pub const DEFAULT_LINK_HOURS: u32 = 30 * 24;
/// The longest a link may work.
pub const MAX_LINK_HOURS: u32 = 90 * 24;

/// What a preference link's token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceClaims {
    #[serde(rename = "b")]
    pub business: String,
    #[serde(rename = "p", with = "optin_core::consent::e164")]
    pub phone: PhoneNumber,
    /// The notice shown for turning a category on.
    #[serde(rename = "n")]
    pub notice: Option<NoticeId>,
    #[serde(rename = "l")]
    pub language: PageLanguage,
}

/// A link as a client asks for it.
#[derive(Debug, Clone, Default)]
pub struct LinkRequest {
    pub phone: PhoneInput,
    pub expires_in_hours: Option<u32>,
    /// Default: the business's latest notice.
    pub notice_id: Option<String>,
    /// Default: the notice's language when the pages speak it, else English.
    pub language: Option<String>,
}

/// A created link: the token goes after `/p/`.
#[derive(Debug, Clone)]
pub struct PreferenceLink {
    pub token: String,
    pub phone: PhoneNumber,
    pub expires_at: Timestamp,
}

pub async fn create_link(
    store: &dyn Store,
    business: &Business,
    request: LinkRequest,
    now: Timestamp,
) -> Result<PreferenceLink, UseCaseError> {
    let phone = request.phone.parse().map_err(Rejection::from)?;
    let hours = request.expires_in_hours.unwrap_or(DEFAULT_LINK_HOURS);
    if !(1..=MAX_LINK_HOURS).contains(&hours) {
        return Err(Rejection::invalid(
            "invalid_expires_in_hours",
            format!("expires_in_hours is 1 to {MAX_LINK_HOURS}"),
        )
        .into());
    }
    let notice = match request.notice_id.as_deref() {
        Some(id) => {
            let id = id
                .parse::<NoticeId>()
                .map_err(|_| Rejection::invalid("unknown_notice", "notice_id is not a notice id"))?;
            Some(
                store
                    .notice(business.id, id)
                    .await?
                    .ok_or_else(|| Rejection::invalid("unknown_notice", "no such notice"))?,
            )
        }
        None => store.list_notices(business.id).await?.into_iter().max_by_key(|n| n.version),
    };
    let language = match request.language.as_deref() {
        Some(tag) => PageLanguage::parse(tag).map_err(|e| Rejection::invalid(e.code(), e.to_string()))?,
        None => notice.as_ref().and_then(|n| PageLanguage::parse(n.language.as_str()).ok()).unwrap_or_default(),
    };
    let claims = PreferenceClaims { business: business.id.to_string(), phone, notice: notice.map(|n| n.id), language };
    let expires_at = now + SignedDuration::from_hours(i64::from(hours));
    let key = link_key(store, business, now).await?;
    Ok(PreferenceLink { token: link::sign(&key, Purpose::Preferences, &claims, expires_at), phone, expires_at })
}

/// One category as the page shows it.
#[derive(Debug, Clone)]
pub struct CategoryRow {
    pub category: CategoryName,
    /// `None`: the person never said anything about it.
    pub status: Option<ConsentStatus>,
    pub since: Option<Timestamp>,
    pub method: Option<Method>,
}

impl CategoryRow {
    /// Whether the person receives it or asked to (waiting for confirmation).
    pub fn is_on(&self) -> bool {
        matches!(self.status, Some(ConsentStatus::OptedIn | ConsentStatus::PendingConfirmation))
    }
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct PreferencesView {
    pub phone: PhoneNumber,
    pub rows: Vec<CategoryRow>,
    /// The notice a person agrees to when turning a category on.
    pub notice: Option<Notice>,
}

pub async fn view(
    store: &dyn Store,
    business: &Business,
    claims: &PreferenceClaims,
) -> Result<PreferencesView, UseCaseError> {
    let phone = claims.phone;
    let state = store.contact_consent(business.id, phone).await?;
    let rows = business
        .all_category_names()
        .into_iter()
        .map(|category| {
            let consent = state.get(&category);
            CategoryRow {
                status: consent.map(|c| c.status),
                since: consent.map(|c| c.since),
                method: consent.and_then(|c| c.method),
                category,
            }
        })
        .collect();
    let notice = match claims.notice {
        Some(id) => store.notice(business.id, id).await?,
        None => None,
    };
    Ok(PreferencesView { phone, rows, notice })
}

/// Why a change was not saved.
#[derive(Debug)]
pub enum UpdateError {
    /// Turning a category on needs the notice ticked.
    AgreeMissing,
    UseCase(UseCaseError),
}

impl From<UseCaseError> for UpdateError {
    fn from(error: UseCaseError) -> UpdateError {
        UpdateError::UseCase(error)
    }
}

/// What saving did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Updated {
    pub turned_on: Vec<CategoryName>,
    pub turned_off: Vec<CategoryName>,
}

/// What the person left ticked, and whether they ticked the notice.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub wanted: Vec<String>,
    pub agreed: bool,
}

/// Saves the person's choice.
pub async fn update(
    store: &dyn Store,
    business: &Business,
    claims: &PreferenceClaims,
    choice: &Choice,
    evidence: PageEvidence,
    link_reference: &str,
    now: Timestamp,
) -> Result<Updated, UpdateError> {
    let current = view(store, business, claims).await?;
    let wanted: Vec<CategoryName> = choice.wanted.iter().filter_map(|w| CategoryName::parse(w).ok()).collect();
    let turn_on: Vec<&CategoryRow> =
        current.rows.iter().filter(|r| !r.is_on() && wanted.contains(&r.category)).collect();
    let turn_off: Vec<&CategoryRow> =
        current.rows.iter().filter(|r| r.is_on() && !wanted.contains(&r.category)).collect();
    if !turn_on.is_empty() && !choice.agreed {
        return Err(UpdateError::AgreeMissing);
    }
    let mut fields = evidence.into_fields();
    fields.insert("preference_link".to_owned(), Value::from(link_reference));
    let phone = PhoneInput { phone: current.phone.e164(), country: None };
    if !turn_off.is_empty() {
        let input = OptOutInput {
            phone: phone.clone(),
            categories: Some(turn_off.iter().map(|r| r.category.as_str().to_owned()).collect()),
            source: OptOutSource::PreferencePage,
            recorded_by: "preference_page".to_owned(),
            evidence: fields.clone(),
        };
        intake::record_opt_out(store, business, input, now).await?;
    }
    if !turn_on.is_empty() {
        let Some(notice) = &current.notice else {
            return Err(UpdateError::UseCase(Rejection::invalid("unknown_notice", "the link names no notice").into()));
        };
        let input = OptInInput {
            phone,
            categories: turn_on.iter().map(|r| r.category.as_str().to_owned()).collect(),
            method: "web_form".to_owned(),
            notice_id: notice.id.to_string(),
            collected_at: Some(now),
            evidence: fields,
            terms: Default::default(),
        };
        intake::record_opt_in(store, business, input, now).await?;
    }
    Ok(Updated {
        turned_on: turn_on.into_iter().map(|r| r.category.clone()).collect(),
        turned_off: turn_off.into_iter().map(|r| r.category.clone()).collect(),
    })
}
