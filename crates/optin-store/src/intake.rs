//! Capture: registering notices and recording opt-ins and opt-outs, with every check.

use jiff::{SignedDuration, Timestamp};
use optin_core::business::{Business, CategoryName};
use optin_core::consent::{
    Confirmation, ConsentBasis, ConsentChange, ConsentEvent, ConsentStatus, NoticeRef, OptIn, OptOut, OptOutSource,
};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::{BusinessId, EventId, NoticeId};
use optin_core::notice::{Language, NoticeText, check_notice};
use optin_core::phone::{PhoneNumber, Region};
use optin_core::truncate_to_microseconds;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::jurisdiction::jurisdiction_policy;
use crate::records::{NewNotice, Notice, Recorded};
use crate::rejection::{Problem, Problems, Rejection, RejectionKind, UseCaseError, problem};
use crate::store::Store;

/// How far in the future a `collected_at` may be, to allow for clients' clock skew.
pub const CLOCK_SKEW_ALLOWANCE: SignedDuration = SignedDuration::from_secs(60);
/// Consent older than this is a data error (and beyond what every store can represent).
pub const EARLIEST_COLLECTED_AT: Timestamp = Timestamp::constant(946_684_800, 0);

/// Checks a notice text against the requirements and registers it as the next version.
pub async fn register_notice(
    store: &dyn Store,
    business: &Business,
    text: &str,
    language: &str,
    now: Timestamp,
) -> Result<Notice, UseCaseError> {
    let mut problems = Problems::default();
    let text = problems.take(NoticeText::parse(text).map_err(|e| problem(e.code(), e)));
    let language = problems.take(Language::parse(language).map_err(|e| problem(e.code(), e)));
    problems.into_result()?;
    let (Some(text), Some(language)) = (text, language) else { unreachable!("problems were reported") };
    let assessment = check_notice(&text, &language, business.names());
    if !assessment.is_accepted() {
        let problems = assessment.failures.iter().map(|f| Problem { code: f.code(), detail: f.detail().to_owned() });
        return Err(Rejection { kind: RejectionKind::Invalid, problems: problems.collect() }.into());
    }
    let notice = NewNotice {
        id: NoticeId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        language,
        text,
        warnings: assessment.warnings,
        created_at: truncate_to_microseconds(now),
    };
    Ok(store.register_notice(&notice).await?)
}

/// A phone number as a client sends it: any format, with an optional country for national ones.
#[derive(Debug, Clone, Default)]
pub struct PhoneInput {
    pub phone: String,
    pub country: Option<String>,
}

impl PhoneInput {
    pub fn parse(&self) -> Result<PhoneNumber, Problem> {
        let region = match self.country.as_deref() {
            Some(code) => Some(Region::parse(code).map_err(|e| problem(e.code(), e))?),
            None => None,
        };
        PhoneNumber::parse(&self.phone, region).map_err(|e| problem(e.code(), e))
    }
}

/// An opt-in as a client submits it, before any check.
#[derive(Debug, Clone)]
pub struct OptInInput {
    pub phone: PhoneInput,
    pub categories: Vec<String>,
    pub method: String,
    pub notice_id: String,
    pub collected_at: Option<Timestamp>,
    pub evidence: Map<String, Value>,
    pub terms: ConsentTerms,
}

/// What an opt-in rests on and whether it waits for confirmation, as a client gives them.
#[derive(Debug, Clone, Default)]
pub struct ConsentTerms {
    /// `express` (the default), `implied_purchase` or `implied_inquiry`.
    pub basis: Option<String>,
    /// For implied consent: the purchase or inquiry it is implied from (default: `collected_at`).
    pub basis_at: Option<Timestamp>,
    /// Ask the person to confirm (double opt-in) even where the jurisdiction does not expect it.
    pub double_opt_in: bool,
}

/// Validates an opt-in against every requirement and records it in the ledger. It stays pending
/// until confirmed ([`record_confirmation`]) when the client asks for a double opt-in, or when the
/// jurisdiction rules expect one where the number is and the method did not itself come from the
/// number (an SMS or WhatsApp message does).
pub async fn record_opt_in(
    store: &dyn Store,
    business: &Business,
    input: OptInInput,
    now: Timestamp,
) -> Result<Recorded, UseCaseError> {
    let (phone, change) = check_opt_in(store, business, input, now).await?;
    record(store, business, phone, change, now).await
}

/// [`record_opt_in`] once per `dedupe_key` (a provider's message id, say): `None`, recording
/// nothing, when the business already used the key.
pub async fn record_opt_in_once(
    store: &dyn Store,
    business: &Business,
    input: OptInInput,
    dedupe_key: &str,
    now: Timestamp,
) -> Result<Option<Recorded>, UseCaseError> {
    let (phone, change) = check_opt_in(store, business, input, now).await?;
    record_once(store, business, phone, change, dedupe_key, now).await
}

async fn check_opt_in(
    store: &dyn Store,
    business: &Business,
    input: OptInInput,
    now: Timestamp,
) -> Result<(PhoneNumber, ConsentChange), UseCaseError> {
    let mut problems = Problems::default();
    let phone = problems.take(input.phone.parse());
    let categories = problems.take(resolve_categories(business, &input.categories));
    let method = problems.take(
        Method::parse(&input.method)
            .ok_or_else(|| problem("unknown_method", format!("method must be one of: {}", method_names()))),
    );
    let now = truncate_to_microseconds(now);
    let collected_at = truncate_to_microseconds(input.collected_at.unwrap_or(now));
    if collected_at > now + CLOCK_SKEW_ALLOWANCE {
        problems.push("collected_at_in_future", "collected_at is in the future");
    }
    if collected_at < EARLIEST_COLLECTED_AT {
        problems.push("collected_at_out_of_range", "collected_at is before the year 2000");
    }
    if let Some(deadline) = input.evidence.get(CONFIRMATION_DEADLINE) {
        let parsed = deadline.as_str().and_then(|text| text.parse::<Timestamp>().ok());
        if parsed.is_none_or(|deadline| deadline <= collected_at) {
            let detail = "evidence.confirmation_deadline is an RFC 3339 time after collected_at";
            problems.push("invalid_confirmation_deadline", detail);
        }
    }
    let evidence =
        method.and_then(|m| problems.take(Evidence::for_method(m, input.evidence).map_err(|e| problem(e.code(), e))));
    let notice = problems.take(find_notice(store, business, &input.notice_id).await?);
    let basis = problems.take(parse_basis(&input.terms, collected_at));
    problems.into_result()?;
    let (Some(phone), Some(categories), Some(method), Some(evidence), Some(notice), Some((basis, basis_at))) =
        (phone, categories, method, evidence, notice, basis)
    else {
        unreachable!("every missing value reported a problem")
    };
    let needs_confirmation = input.terms.double_opt_in
        || (!method.proves_number_possession() && jurisdiction_expects_double_opt_in(store, business, &phone).await?);
    let notice = NoticeRef {
        id: notice.id,
        version: notice.version,
        language: notice.language.as_str().to_owned(),
        text_sha256: notice.text_sha256,
    };
    let opt_in = OptIn { categories, method, notice, evidence, collected_at, basis, basis_at, needs_confirmation };
    Ok((phone, ConsentChange::OptIn(opt_in)))
}

/// The basis and the start of its lifetime (`None`: from `collected_at`).
fn parse_basis(terms: &ConsentTerms, collected_at: Timestamp) -> Result<(ConsentBasis, Option<Timestamp>), Problem> {
    let basis = match terms.basis.as_deref() {
        None => ConsentBasis::Express,
        Some(text) => ConsentBasis::parse(text).ok_or_else(|| {
            problem("unknown_basis", "basis must be one of: express, implied_purchase, implied_inquiry")
        })?,
    };
    match (basis, terms.basis_at) {
        (_, None) => Ok((basis, None)),
        (ConsentBasis::Express, Some(_)) => {
            Err(problem("basis_at_not_allowed", "basis_at is for implied consent (the purchase or inquiry)"))
        }
        (_, Some(at)) if at > collected_at => {
            Err(problem("basis_at_after_collection", "basis_at (the purchase or inquiry) is after collected_at"))
        }
        (_, Some(at)) if at < EARLIEST_COLLECTED_AT => {
            Err(problem("basis_at_out_of_range", "basis_at is before the year 2000"))
        }
        (_, Some(at)) => Ok((basis, Some(truncate_to_microseconds(at)))),
    }
}

async fn jurisdiction_expects_double_opt_in(
    store: &dyn Store,
    business: &Business,
    phone: &PhoneNumber,
) -> Result<bool, UseCaseError> {
    let Some(place) = optin_core::jurisdiction::locate(phone) else { return Ok(false) };
    let policy = jurisdiction_policy(store, business.id).await?;
    Ok(policy.policy.expects_double_opt_in(&place))
}

/// A confirmation as a client submits it: the second step of a double opt-in.
#[derive(Debug, Clone)]
pub struct ConfirmationInput {
    pub phone: PhoneInput,
    /// The categories confirmed; absent: every category waiting for confirmation.
    pub categories: Option<Vec<String>>,
    /// How the person confirmed (`whatsapp_thread`, `sms`, `web_form` for a link...).
    pub method: String,
    pub evidence: Map<String, Value>,
}

/// Records that the person confirmed their pending opt-ins: from then on they are consent.
/// Refused (`nothing_to_confirm`) when none of the categories is waiting for confirmation.
pub async fn record_confirmation(
    store: &dyn Store,
    business: &Business,
    input: ConfirmationInput,
    now: Timestamp,
) -> Result<Recorded, UseCaseError> {
    let mut problems = Problems::default();
    let phone = problems.take(input.phone.parse());
    let categories = match &input.categories {
        Some(names) => problems.take(resolve_categories(business, names)).map(Some),
        None => Some(None),
    };
    let method = problems.take(
        Method::parse(&input.method)
            .ok_or_else(|| problem("unknown_method", format!("method must be one of: {}", method_names()))),
    );
    if serde_json::to_vec(&input.evidence).map_or(true, |b| b.len() > optin_core::evidence::MAX_EVIDENCE_BYTES) {
        problems.push("evidence_too_large", "the evidence is larger than 16 KiB");
    }
    problems.into_result()?;
    let (Some(phone), Some(categories), Some(method)) = (phone, categories, method) else {
        unreachable!("problems were reported")
    };
    let pending = pending_categories(store, business.id, phone, categories.as_deref(), now).await?.confirmable()?;
    let confirmation = Confirmation { categories: pending, method, evidence: Evidence::recorded(input.evidence) };
    record(store, business, phone, ConsentChange::Confirmation(confirmation), now).await
}

/// The evidence field of an opt-in that sets how long it may wait for its confirmation (RFC 3339).
/// Hosted forms set it; a confirmation after it is refused (`confirmation_expired`).
pub const CONFIRMATION_DEADLINE: &str = "confirmation_deadline";

/// A contact's categories waiting for confirmation (of `only`, when given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingCategories {
    /// May still be confirmed.
    pub live: Vec<CategoryName>,
    /// Their opt-in's confirmation deadline has passed: they stay unconfirmed.
    pub expired: Vec<CategoryName>,
}

impl PendingCategories {
    /// The categories a confirmation may confirm now, or why none: `nothing_to_confirm` (409)
    /// when none is waiting, `confirmation_expired` (409) when all that wait are past their deadline.
    pub fn confirmable(self) -> Result<Vec<CategoryName>, Rejection> {
        match (self.live.is_empty(), self.expired.is_empty()) {
            (false, _) => Ok(self.live),
            (true, true) => Err(Rejection::conflict(
                "nothing_to_confirm",
                "none of these categories is waiting for this contact's confirmation",
            )),
            (true, false) => Err(Rejection::conflict(
                "confirmation_expired",
                "the opt-in waited longer than its confirmation deadline",
            )),
        }
    }
}

/// Finds the categories waiting for confirmation and splits them by their opt-in's deadline. Reads
/// the contact's events only when something is pending (confirmations are rare).
pub async fn pending_categories(
    store: &dyn Store,
    business: BusinessId,
    phone: PhoneNumber,
    only: Option<&[CategoryName]>,
    now: Timestamp,
) -> Result<PendingCategories, UseCaseError> {
    let state = store.contact_consent(business, phone).await?;
    let pending: Vec<(&CategoryName, EventId)> = state
        .iter()
        .filter(|(name, consent)| {
            consent.status == ConsentStatus::PendingConfirmation && only.is_none_or(|c| c.contains(name))
        })
        .map(|(name, consent)| (name, consent.event_id))
        .collect();
    let mut split = PendingCategories::default();
    if pending.is_empty() {
        return Ok(split);
    }
    let events = store.contact_events(business, phone).await?;
    for (name, event_id) in pending {
        let deadline = events
            .iter()
            .find(|entry| entry.event_id == event_id)
            .and_then(|entry| serde_json::from_str::<ConsentEvent>(&entry.content).ok())
            .and_then(|event| match event.change {
                ConsentChange::OptIn(opt_in) => opt_in.evidence.text(CONFIRMATION_DEADLINE)?.parse::<Timestamp>().ok(),
                _ => None,
            });
        if deadline.is_some_and(|deadline| deadline <= now) {
            split.expired.push(name.clone());
        } else {
            split.live.push(name.clone());
        }
    }
    Ok(split)
}

/// An opt-out as a client submits it. No categories means all of them.
#[derive(Debug, Clone)]
pub struct OptOutInput {
    pub phone: PhoneInput,
    pub categories: Option<Vec<String>>,
    pub source: OptOutSource,
    pub recorded_by: String,
    pub evidence: Map<String, Value>,
}

/// Records an opt-out; it is in effect for decisions when this returns.
pub async fn record_opt_out(
    store: &dyn Store,
    business: &Business,
    input: OptOutInput,
    now: Timestamp,
) -> Result<Recorded, UseCaseError> {
    let (phone, change) = check_opt_out(business, input)?;
    record(store, business, phone, change, now).await
}

/// [`record_opt_out`] once per `dedupe_key`: `None`, recording nothing, when the key was used.
pub async fn record_opt_out_once(
    store: &dyn Store,
    business: &Business,
    input: OptOutInput,
    dedupe_key: &str,
    now: Timestamp,
) -> Result<Option<Recorded>, UseCaseError> {
    let (phone, change) = check_opt_out(business, input)?;
    record_once(store, business, phone, change, dedupe_key, now).await
}

fn check_opt_out(business: &Business, input: OptOutInput) -> Result<(PhoneNumber, ConsentChange), UseCaseError> {
    let mut problems = Problems::default();
    let phone = problems.take(input.phone.parse());
    let all_categories = input.categories.is_none();
    let categories = match &input.categories {
        Some(names) => problems.take(resolve_categories(business, names)),
        None => Some(business.all_category_names()),
    };
    let recorded_by = input.recorded_by.trim();
    if recorded_by.is_empty() || recorded_by.chars().count() > 200 {
        problems.push("invalid_recorded_by", "recorded_by must name who recorded the opt-out (1 to 200 characters)");
    }
    if serde_json::to_vec(&input.evidence).map_or(true, |b| b.len() > optin_core::evidence::MAX_EVIDENCE_BYTES) {
        problems.push("evidence_too_large", "the evidence is larger than 16 KiB");
    }
    problems.into_result()?;
    let (Some(phone), Some(categories)) = (phone, categories) else { unreachable!("problems were reported") };
    let change = ConsentChange::OptOut(OptOut {
        categories,
        all_categories,
        source: input.source,
        recorded_by: recorded_by.to_owned(),
        evidence: Evidence::recorded(input.evidence),
        requested_at: None,
    });
    Ok((phone, change))
}

fn new_event(business: &Business, phone: PhoneNumber, change: ConsentChange, now: Timestamp) -> ConsentEvent {
    ConsentEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        phone,
        change,
        recorded_at: truncate_to_microseconds(now),
    }
}

async fn record(
    store: &dyn Store,
    business: &Business,
    phone: PhoneNumber,
    change: ConsentChange,
    now: Timestamp,
) -> Result<Recorded, UseCaseError> {
    Ok(store.record_consent(business, &new_event(business, phone, change, now)).await?)
}

async fn record_once(
    store: &dyn Store,
    business: &Business,
    phone: PhoneNumber,
    change: ConsentChange,
    dedupe_key: &str,
    now: Timestamp,
) -> Result<Option<Recorded>, UseCaseError> {
    Ok(store.record_consent_once(business, dedupe_key, &new_event(business, phone, change, now)).await?)
}

fn resolve_categories(business: &Business, names: &[String]) -> Result<Vec<CategoryName>, Problem> {
    if names.is_empty() {
        return Err(problem("categories_missing", "name at least one category"));
    }
    business.resolve_categories(names).map_err(|e| problem(e.code(), e))
}

async fn find_notice(
    store: &dyn Store,
    business: &Business,
    id: &str,
) -> Result<Result<Notice, Problem>, UseCaseError> {
    let unknown = || problem("unknown_notice", "this business has no notice with this id");
    let Ok(id) = id.parse::<NoticeId>() else { return Ok(Err(unknown())) };
    Ok(store.notice(business.id, id).await?.ok_or_else(unknown))
}

fn method_names() -> String {
    Method::ALL.map(|m| m.as_str()).join(", ")
}

/// What an IVR platform reports at the end of its consent step.
#[derive(Debug, Clone)]
pub struct IvrOptInInput {
    /// The caller's number (caller ID).
    pub caller: PhoneInput,
    pub call_id: String,
    /// The DTMF keys the caller pressed at the consent prompt.
    pub key_pressed: String,
    /// The key the script asks for to agree (default `1`).
    pub agree_key: Option<String>,
    /// The script the caller heard: a registered notice.
    pub notice_id: String,
    pub categories: Vec<String>,
    /// Where the platform keeps the call's recording, if it does.
    pub recording_ref: Option<String>,
    /// The number the caller dialled.
    pub called_number: Option<String>,
    pub collected_at: Option<Timestamp>,
}

/// Records an IVR opt-in (method `ivr`) when the caller pressed the script's agree key; the call
/// id, keys, recording reference and dialled number are its evidence, checked as for any opt-in.
pub async fn record_ivr_opt_in(
    store: &dyn Store,
    business: &Business,
    input: IvrOptInInput,
    now: Timestamp,
) -> Result<Recorded, UseCaseError> {
    let is_dtmf = |keys: &str| {
        (1..=8).contains(&keys.len()) && keys.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    };
    let agree_key = input.agree_key.unwrap_or_else(|| "1".to_owned());
    let mut problems = Problems::default();
    if !is_dtmf(&input.key_pressed) {
        problems.push("invalid_key_pressed", "key_pressed must be 1 to 8 DTMF keys (0-9, *, #)");
    }
    if !is_dtmf(&agree_key) {
        problems.push("invalid_agree_key", "agree_key must be 1 to 8 DTMF keys (0-9, *, #)");
    }
    problems.into_result()?;
    if input.key_pressed != agree_key {
        let detail = format!("the caller pressed {}, not the agree key {agree_key}: no consent", input.key_pressed);
        return Err(
            Rejection { kind: RejectionKind::Invalid, problems: vec![problem("ivr_not_agreed", detail)] }.into()
        );
    }
    let mut evidence = Map::new();
    evidence.insert("call_id".into(), Value::String(input.call_id));
    evidence.insert("key_pressed".into(), Value::String(input.key_pressed));
    evidence.insert("agree_key".into(), Value::String(agree_key));
    if let Some(recording) = input.recording_ref {
        evidence.insert("recording_ref".into(), Value::String(recording));
    }
    if let Some(called) = input.called_number {
        evidence.insert("called_number".into(), Value::String(called));
    }
    let opt_in = OptInInput {
        phone: input.caller,
        categories: input.categories,
        method: Method::Ivr.as_str().to_owned(),
        notice_id: input.notice_id,
        collected_at: input.collected_at,
        evidence,
        terms: ConsentTerms::default(),
    };
    record_opt_in(store, business, opt_in, now).await
}
