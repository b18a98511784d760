//! SMS keywords: the business's numbers and keywords (a settings document, checked when set), and
//! what an inbound SMS does: a join keyword opts in (method `sms`, under the number's notice), the
//! STOP family opts out, the START family resubscribes, HELP answers.

use std::collections::BTreeMap;

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName};
use optin_core::consent::{ConsentStatus, OptOutSource};
use optin_core::ids::NoticeId;
use optin_core::keywords::{CategoryAliases, Intent, KeywordMatcher, Scope};
use optin_core::phone::PhoneNumber;
use optin_core::sms::{self, JoinKeyword, SmsRequest, replies};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::intake::{self, OptInInput, OptOutInput, PhoneInput};
use crate::rejection::{Problem, Problems, Rejection, UseCaseError, problem};
use crate::store::Store;
use crate::whatsapp::{read_document, write_document};

const DOCUMENT: &str = "sms";
const MAX_KEYWORD_CHARS: usize = 20;
const MAX_CONTACT_CHARS: usize = 160;

/// A business's SMS set-up, as stored (the auth token is never shown back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSettings {
    pub numbers: Vec<SmsNumber>,
    /// How people reach the business for help, given in HELP replies (a phone, an email, a URL).
    pub contact: String,
    /// The provider's auth token, which signs its requests (`X-Twilio-Signature`).
    pub auth_token: Option<String>,
    /// The webhook URL exactly as configured at the provider: the signature covers it.
    pub webhook_url: Option<String>,
}

/// One number or short code of the business and its join keywords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsNumber {
    /// E.164 for a phone number, the digits for a short code.
    pub number: String,
    /// The registered notice people see where the keyword is advertised.
    pub notice_id: NoticeId,
    /// Upper-case keyword → the categories it opts in to.
    pub join_keywords: BTreeMap<String, Vec<CategoryName>>,
}

/// The set-up as a client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettingsInput {
    pub numbers: Vec<SmsNumberInput>,
    pub contact: String,
    pub auth_token: Option<String>,
    pub webhook_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsNumberInput {
    pub number: String,
    pub notice_id: String,
    pub join_keywords: BTreeMap<String, Vec<String>>,
}

pub async fn sms_settings(store: &dyn Store, business: &Business) -> Result<SmsSettings, UseCaseError> {
    read_document(store, business, DOCUMENT).await
}

/// Checks the set-up (every problem at once) and stores it.
pub async fn set_sms_settings(
    store: &dyn Store,
    business: &Business,
    input: SmsSettingsInput,
    now: Timestamp,
) -> Result<SmsSettings, UseCaseError> {
    let mut problems = Problems::default();
    if input.numbers.is_empty() {
        problems.push("sms_numbers_missing", "give at least one number or short code");
    }
    let mut numbers = Vec::new();
    for number in &input.numbers {
        if let Some(checked) = check_number(store, business, number, &mut problems).await? {
            if numbers.iter().any(|n: &SmsNumber| n.number == checked.number) {
                problems.push("sms_number_duplicate", format!("{} is given twice", checked.number));
            }
            numbers.push(checked);
        }
    }
    let contact = input.contact.trim();
    if contact.is_empty() || contact.chars().count() > MAX_CONTACT_CHARS {
        problems.push("invalid_contact", "contact must say how to reach the business (1 to 160 characters)");
    }
    match (&input.auth_token, &input.webhook_url) {
        (Some(token), Some(url)) => {
            if token.trim().is_empty() {
                problems.push("invalid_auth_token", "auth_token is empty");
            }
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push("invalid_webhook_url", "webhook_url must be the http(s) URL configured at the provider");
            }
        }
        (None, None) => problems.push(
            "auth_token_missing",
            "give the provider's auth_token and the webhook_url it calls: unsigned SMS webhooks are refused",
        ),
        _ => problems.push("auth_token_missing", "auth_token and webhook_url go together"),
    }
    problems.into_result()?;
    let settings = SmsSettings {
        numbers,
        contact: contact.to_owned(),
        auth_token: input.auth_token,
        webhook_url: input.webhook_url,
    };
    write_document(store, business, DOCUMENT, &settings, now).await?;
    Ok(settings)
}

async fn check_number(
    store: &dyn Store,
    business: &Business,
    input: &SmsNumberInput,
    problems: &mut Problems,
) -> Result<Option<SmsNumber>, UseCaseError> {
    let number = problems.take(normalize_number(&input.number).ok_or_else(|| {
        problem("invalid_sms_number", format!("{:?} is neither a phone number nor a short code", input.number))
    }));
    let notice = input.notice_id.parse::<NoticeId>().ok();
    let notice = match notice {
        Some(id) => store.notice(business.id, id).await?.map(|n| n.id),
        None => None,
    };
    let notice =
        problems.take(notice.ok_or_else(|| problem("unknown_notice", "this business has no notice with this id")));
    let mut join_keywords = BTreeMap::new();
    for (keyword, categories) in &input.join_keywords {
        let Some(keyword) = problems.take(check_keyword(keyword)) else { continue };
        if categories.is_empty() {
            problems.push("categories_missing", format!("the keyword {keyword} opts in to no category"));
            continue;
        }
        if let Some(categories) =
            problems.take(business.resolve_categories(categories).map_err(|e| problem(e.code(), e)))
        {
            join_keywords.insert(keyword, categories);
        }
    }
    if input.join_keywords.is_empty() {
        problems.push("join_keywords_missing", "give at least one join keyword per number");
    }
    Ok(number.zip(notice).map(|(number, notice_id)| SmsNumber { number, notice_id, join_keywords }))
}

/// A keyword people text: letters and digits, not HELP/INFO nor a word of the STOP family. Words of
/// the START family (JOIN, START, YES...) may be join keywords: on that number they then opt in to
/// the keyword's categories.
fn check_keyword(keyword: &str) -> Result<String, Problem> {
    let upper = keyword.trim().to_uppercase();
    let valid =
        !upper.is_empty() && upper.chars().count() <= MAX_KEYWORD_CHARS && upper.chars().all(char::is_alphanumeric);
    if !valid {
        return Err(problem("invalid_keyword", format!("{keyword:?}: 1 to 20 letters or digits")));
    }
    let taken = ["HELP", "INFO"].contains(&upper.as_str())
        || matches!(KeywordMatcher::builtin().classify(&upper, &[]), Intent::OptOut { .. } | Intent::Unclear { .. });
    if taken {
        return Err(problem("keyword_reserved", format!("{upper} already means HELP or STOP")));
    }
    Ok(upper)
}

/// A short code (3 to 8 digits) as its digits, a phone number in E.164.
fn normalize_number(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if (3..=8).contains(&trimmed.len()) && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Some(trimmed.to_owned());
    }
    PhoneNumber::parse(trimmed, None).ok().map(|number| number.e164())
}

/// An inbound SMS as the provider posts it.
#[derive(Debug, Clone)]
pub struct InboundSms {
    pub from: String,
    pub to: String,
    pub body: String,
    pub message_sid: String,
}

/// Checks the provider's signature over the whole form (`params`, every field as received).
pub fn verify_signature(
    settings: &SmsSettings,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), Rejection> {
    let (Some(token), Some(url)) = (&settings.auth_token, &settings.webhook_url) else {
        return Err(Rejection::invalid("webhook_secret_not_set", "this business has not set up SMS"));
    };
    sms::verify(token, url, params, header).map_err(|e| Rejection::invalid(e.code(), e.to_string()))
}

/// Acts on an inbound SMS; the reply text, if any.
pub async fn receive_sms(
    store: &dyn Store,
    business: &Business,
    settings: &SmsSettings,
    inbound: InboundSms,
    now: Timestamp,
) -> Result<Option<String>, UseCaseError> {
    let number = normalize_number(&inbound.to).and_then(|to| settings.numbers.iter().find(|n| n.number == to));
    let Some(number) = number else {
        return Err(Rejection::not_found(
            "unknown_sms_number",
            "the message was sent to a number this business has not set up",
        )
        .into());
    };
    let phone = PhoneInput { phone: inbound.from.clone(), country: None };
    let from = phone.parse().map_err(|p| Rejection::invalid(p.code, p.detail))?;
    let joins: Vec<JoinKeyword> = number
        .join_keywords
        .iter()
        .map(|(keyword, categories)| JoinKeyword { keyword: keyword.clone(), categories: categories.clone() })
        .collect();
    let aliases: Vec<CategoryAliases<'_>> =
        business.categories.iter().map(|c| CategoryAliases { category: &c.name, aliases: &[] }).collect();
    let name = business.name.as_str();
    let evidence = |keyword: &str| {
        let mut fields = Map::new();
        fields.insert("message_id".into(), json!(inbound.message_sid));
        fields.insert("from".into(), json!(from.e164()));
        fields.insert("to".into(), json!(number.number));
        fields.insert("keyword".into(), json!(keyword));
        fields
    };
    let reply = match sms::classify(&inbound.body, &joins, KeywordMatcher::builtin(), &aliases) {
        SmsRequest::Help => Some(replies::help(name, &settings.contact)),
        SmsRequest::Other => None,
        SmsRequest::Join { keyword, categories } => {
            let key = dedupe_key(&inbound.message_sid);
            opt_in(store, business, number, from, &categories, evidence(&keyword), &key, now).await?;
            Some(replies::joined(name, &categories))
        }
        SmsRequest::Stop { scope, keyword } => {
            let categories = match scope {
                Scope::All => None,
                Scope::Categories(names) => Some(names.iter().map(|c| c.as_str().to_owned()).collect()),
            };
            let input = OptOutInput {
                phone: PhoneInput { phone: from.e164(), country: None },
                categories,
                source: OptOutSource::Sms,
                recorded_by: format!("sms keyword {keyword}"),
                evidence: evidence(&keyword),
            };
            intake::record_opt_out_once(store, business, input, &dedupe_key(&inbound.message_sid), now).await?;
            Some(replies::stopped(name))
        }
        SmsRequest::Start { keyword } => {
            let stopped = resubscribable(store, business, number, from).await?;
            if stopped.is_empty() {
                None
            } else {
                let key = dedupe_key(&inbound.message_sid);
                opt_in(store, business, number, from, &stopped, evidence(&keyword), &key, now).await?;
                Some(replies::restarted(name))
            }
        }
    };
    Ok(reply)
}

/// The categories this number's keywords offer that the person opted out of.
async fn resubscribable(
    store: &dyn Store,
    business: &Business,
    number: &SmsNumber,
    from: PhoneNumber,
) -> Result<Vec<CategoryName>, UseCaseError> {
    let consent = store.contact_consent(business.id, from).await?;
    let mut offered: Vec<CategoryName> = number.join_keywords.values().flatten().cloned().collect();
    offered.sort();
    offered.dedup();
    Ok(offered
        .into_iter()
        .filter(|category| consent.get(category).is_some_and(|c| c.status == ConsentStatus::OptedOut))
        .collect())
}

/// The key that makes a provider's redelivery of one message record nothing new.
fn dedupe_key(message_sid: &str) -> String {
    format!("sms:{message_sid}")
}

#[allow(clippy::too_many_arguments)] // the opt-in's parts, each needed
async fn opt_in(
    store: &dyn Store,
    business: &Business,
    number: &SmsNumber,
    from: PhoneNumber,
    categories: &[CategoryName],
    evidence: Map<String, Value>,
    dedupe_key: &str,
    now: Timestamp,
) -> Result<(), UseCaseError> {
    let input = OptInInput {
        phone: PhoneInput { phone: from.e164(), country: None },
        categories: categories.iter().map(|c| c.as_str().to_owned()).collect(),
        method: "sms".to_owned(),
        notice_id: number.notice_id.to_string(),
        collected_at: Some(now),
        evidence,
        terms: Default::default(),
    };
    intake::record_opt_in_once(store, business, input, dedupe_key, now).await?;
    Ok(())
}
