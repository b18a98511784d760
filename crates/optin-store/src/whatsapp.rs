//! Setting a business up on WhatsApp: senders, webhook settings, the channel policy (how
//! opt-outs, resumes and the in-thread opt-in behave), and the template registry.

use std::collections::BTreeMap;

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName, TemplateCategory};
use optin_core::ids::NoticeId;
use optin_core::keywords::{CustomKeyword, KeywordMatcher};
use optin_core::template::{Template, TemplateWarning, lint, parse_templates};
use optin_core::truncate_to_microseconds;
use optin_core::whatsapp::Provider;
use serde::{Deserialize, Serialize};

use crate::channel::{Sender, SettingsDocument, StoredTemplate};
use crate::rejection::{Problems, Rejection, UseCaseError};
use crate::store::{Store, StoreError};

const WEBHOOK_DOCUMENT: &str = "webhook";
const POLICY_DOCUMENT: &str = "whatsapp_policy";
/// The Graph API version used when a Cloud API sender names none.
pub const DEFAULT_API_VERSION: &str = "v23.0";

/// A sender as a client describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderInput {
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub provider: String,
    /// Defaults to the provider's public endpoint.
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub credential: String,
}

/// Registers a WhatsApp sender for the business, checking every field.
pub async fn register_sender(
    store: &dyn Store,
    business: &Business,
    input: &SenderInput,
    now: Timestamp,
) -> Result<Sender, UseCaseError> {
    let mut problems = Problems::default();
    check_platform_id(&mut problems, "invalid_phone_number_id", "phone_number_id", &input.phone_number_id);
    check_platform_id(&mut problems, "invalid_waba_id", "waba_id", &input.waba_id);
    let display = input.display_phone_number.trim();
    if display.is_empty() || display.len() > 32 || !display.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
        problems.push("invalid_display_phone_number", "display_phone_number must be a phone number as Meta shows it");
    }
    let provider = Provider::parse(&input.provider);
    if provider.is_none() {
        problems.push("invalid_provider", "provider must be `cloud_api` or `360dialog`");
    }
    let base_url = input.base_url.clone().unwrap_or_else(|| default_base_url(provider).to_owned());
    check_base_url(&mut problems, &base_url);
    let api_version = input.api_version.clone().unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    if !is_api_version(&api_version) {
        problems.push("invalid_api_version", "api_version must look like `v23.0`");
    }
    if input.credential.trim().is_empty()
        || input.credential.len() > 2048
        || input.credential.chars().any(char::is_control)
    {
        problems.push("invalid_credential", "credential must be the access token or API key (1 to 2048 characters)");
    }
    problems.into_result()?;
    let sender = Sender {
        business_id: business.id,
        phone_number_id: input.phone_number_id.clone(),
        display_phone_number: display.to_owned(),
        waba_id: input.waba_id.clone(),
        provider: provider.expect("checked above"),
        base_url: base_url.trim_end_matches('/').to_owned(),
        api_version,
        credential: input.credential.clone(),
        created_at: truncate_to_microseconds(now),
    };
    store.add_sender(&sender).await.map_err(|error| match error {
        StoreError::Conflict { .. } => Rejection::conflict(
            "sender_exists",
            "this phone_number_id is already registered (by this or another business)",
        )
        .into(),
        other => UseCaseError::from(other),
    })?;
    Ok(sender)
}

fn default_base_url(provider: Option<Provider>) -> &'static str {
    match provider {
        Some(Provider::Dialog360) => "https://waba-v2.360dialog.io",
        _ => "https://graph.facebook.com",
    }
}

fn check_platform_id(problems: &mut Problems, code: &'static str, field: &str, value: &str) {
    if value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_digit()) {
        problems.push(code, format!("{field} must be Meta's numeric id (1 to 32 digits)"));
    }
}

fn check_base_url(problems: &mut Problems, url: &str) {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let valid = rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty() && !rest.contains(['?', '#', ' ']) && url.len() <= 512
    });
    if !valid {
        problems.push("invalid_base_url", "base_url must be an http(s) URL without query or fragment");
    }
}

fn is_api_version(text: &str) -> bool {
    text.strip_prefix('v').and_then(|rest| rest.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.len() <= 3
            && minor.len() <= 3
            && major.bytes().chain(minor.bytes()).all(|b| b.is_ascii_digit())
    })
}

/// How webhook deliveries are authenticated. Secrets are kept as given (they are needed to check
/// each delivery) and never shown back.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// Answered in Meta's `GET` handshake.
    pub verify_token: Option<String>,
    /// Meta's app secret: when set, `X-Hub-Signature-256` is required and checked.
    pub app_secret: Option<String>,
    /// A header every delivery must carry with this exact value (for 360dialog).
    pub shared_secret: Option<SharedSecret>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("verify_token", &self.verify_token.as_ref().map(|_| "[redacted]"))
            .field("app_secret", &self.app_secret.as_ref().map(|_| "[redacted]"))
            .field("shared_secret_header", &self.shared_secret.as_ref().map(|s| &s.header))
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSecret {
    /// Header name, compared case-insensitively.
    pub header: String,
    pub value: String,
}

/// A change to the webhook settings: an absent field stays as it is, `null` removes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettingsInput {
    #[serde(default, deserialize_with = "present")]
    pub verify_token: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub app_secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub shared_secret: Option<Option<SharedSecretInput>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSecretInput {
    pub header: String,
    pub value: String,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The business's webhook settings (defaults when never set).
pub async fn webhook_settings(store: &dyn Store, business: &Business) -> Result<WebhookSettings, UseCaseError> {
    read_document(store, business, WEBHOOK_DOCUMENT).await
}

/// Applies a change to the webhook settings, checking every field.
pub async fn update_webhook_settings(
    store: &dyn Store,
    business: &Business,
    input: &WebhookSettingsInput,
    now: Timestamp,
) -> Result<WebhookSettings, UseCaseError> {
    let mut settings = webhook_settings(store, business).await?;
    let mut problems = Problems::default();
    if let Some(token) = &input.verify_token {
        if token.as_deref().is_some_and(|t| !is_secret_text(t, 8)) {
            problems.push("invalid_verify_token", "verify_token must be 8 to 256 printable characters");
        }
        settings.verify_token.clone_from(token);
    }
    if let Some(secret) = &input.app_secret {
        if secret.as_deref().is_some_and(|s| !is_secret_text(s, 16)) {
            problems.push("invalid_app_secret", "app_secret must be 16 to 256 printable characters");
        }
        settings.app_secret.clone_from(secret);
    }
    if let Some(shared) = &input.shared_secret {
        settings.shared_secret = shared
            .as_ref()
            .map(|s| SharedSecret { header: s.header.trim().to_ascii_lowercase(), value: s.value.clone() });
        if let Some(shared) = &settings.shared_secret {
            if !is_header_name(&shared.header) {
                problems.push("invalid_shared_secret_header", "shared_secret.header must be an HTTP header name");
            }
            if !is_secret_text(&shared.value, 16) {
                problems.push("invalid_shared_secret", "shared_secret.value must be 16 to 256 printable characters");
            }
        }
    }
    problems.into_result()?;
    write_document(store, business, WEBHOOK_DOCUMENT, &settings, now).await?;
    Ok(settings)
}

fn is_secret_text(text: &str, min: usize) -> bool {
    (min..=256).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

fn is_header_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How the WhatsApp channel behaves for a business. Every field has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelPolicy {
    /// What a bare opt-out keyword ("STOP") covers: `all` categories, or `marketing` ones only.
    pub bare_keyword_scope: BareKeywordScope,
    /// Whether a `user_preferences` `resume` restores the marketing categories the platform's
    /// stop had opted out (as a new opt-in event). Off by default: a resume is only a signal.
    pub resume_restores_marketing: bool,
    /// Button payloads (besides the localized "Stop promotions" label) that opt out of marketing.
    pub opt_out_payloads: Vec<String>,
    /// The business's own keywords, in addition to the built-in ones.
    pub keywords: Vec<CustomKeyword>,
    /// Other words people use for a category ("promociones" for `offers`).
    pub category_aliases: BTreeMap<CategoryName, Vec<String>>,
    /// The opt-out confirmation per language code (`en`, `es`...); none: no confirmation is sent.
    pub opt_out_confirmation: BTreeMap<String, String>,
    /// The notice a START-style message (or a platform resume) re-subscribes under, as a
    /// `whatsapp_thread` opt-in. None: the `thread_opt_in` notice; with neither, START is ignored
    /// (and noted on the delivery).
    pub resubscribe_notice_id: Option<NoticeId>,
    pub thread_opt_in: Option<ThreadOptIn>,
    /// The business category a template counts against when its import names none.
    pub template_category_defaults: BTreeMap<TemplateCategory, CategoryName>,
}

impl Default for ChannelPolicy {
    fn default() -> Self {
        ChannelPolicy {
            bare_keyword_scope: BareKeywordScope::All,
            resume_restores_marketing: false,
            opt_out_payloads: Vec::new(),
            keywords: Vec::new(),
            category_aliases: BTreeMap::new(),
            opt_out_confirmation: BTreeMap::new(),
            resubscribe_notice_id: None,
            thread_opt_in: None,
            template_category_defaults: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BareKeywordScope {
    All,
    Marketing,
}

/// Asking, inside the thread, for the categories a contact has not opted in to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadOptIn {
    pub enabled: bool,
    /// The registered notice whose text is the question.
    pub notice_id: NoticeId,
    /// The categories offered, in order (at most 9: one button or row each, plus "No thanks").
    pub categories: Vec<CategoryName>,
    /// Button or row titles per category (default: the name, capitalized, underscores as spaces).
    #[serde(default)]
    pub labels: BTreeMap<CategoryName, String>,
    #[serde(default = "default_decline_label")]
    pub decline_label: String,
    /// Ask a contact again only after this many days.
    #[serde(default = "default_ask_again_after_days")]
    pub ask_again_after_days: u32,
}

fn default_decline_label() -> String {
    "No thanks".to_owned()
}

fn default_ask_again_after_days() -> u32 {
    30
}

/// The business's channel policy (the defaults when never set).
pub async fn channel_policy(store: &dyn Store, business: &Business) -> Result<ChannelPolicy, UseCaseError> {
    read_document(store, business, POLICY_DOCUMENT).await
}

/// Checks a policy against the business (categories, notices, keywords) and stores it.
pub async fn set_channel_policy(
    store: &dyn Store,
    business: &Business,
    policy: &ChannelPolicy,
    now: Timestamp,
) -> Result<(), UseCaseError> {
    let mut problems = Problems::default();
    if let Err(error) = KeywordMatcher::new(&policy.keywords) {
        problems.push("invalid_keyword", error.to_string());
    }
    let mut named: Vec<&CategoryName> = policy.category_aliases.keys().collect();
    named.extend(policy.template_category_defaults.values());
    for label in &policy.opt_out_payloads {
        if label.trim().is_empty() || label.len() > 256 {
            problems.push("invalid_opt_out_payload", "opt_out_payloads must be 1 to 256 characters each");
        }
    }
    for (language, text) in &policy.opt_out_confirmation {
        if language.is_empty() || language.len() > 16 || text.trim().is_empty() || text.chars().count() > 1024 {
            problems.push("invalid_confirmation", "each confirmation needs a language code and 1 to 1024 characters");
        }
    }
    let mut notices = Vec::new();
    notices.extend(policy.resubscribe_notice_id);
    if let Some(ask) = &policy.thread_opt_in {
        named.extend(&ask.categories);
        named.extend(ask.labels.keys());
        notices.push(ask.notice_id);
        if ask.categories.is_empty() || ask.categories.len() > 9 {
            problems.push("invalid_thread_opt_in", "thread_opt_in.categories must name 1 to 9 categories");
        }
        let titles = ask.labels.values().chain(std::iter::once(&ask.decline_label));
        if titles.into_iter().any(|t| t.trim().is_empty() || t.chars().count() > 20) {
            problems.push("invalid_thread_opt_in", "button titles must be 1 to 20 characters");
        }
    }
    for name in named {
        if business.category_slot(name.as_str()).is_none() {
            problems.push("unknown_category", format!("the business has no category `{name}`"));
        }
    }
    for id in notices {
        if store.notice(business.id, id).await?.is_none() {
            problems.push("unknown_notice", format!("the business has no notice {id}"));
        }
    }
    problems.into_result()?;
    write_document(store, business, POLICY_DOCUMENT, policy, now).await
}

pub(crate) async fn read_document<T: Default + for<'de> Deserialize<'de>>(
    store: &dyn Store,
    business: &Business,
    name: &str,
) -> Result<T, UseCaseError> {
    match store.settings_document(business.id, name).await? {
        None => Ok(T::default()),
        Some(document) => serde_json::from_str(&document.content)
            .map_err(|e| StoreError::Corrupt(format!("settings document `{name}`: {e}")).into()),
    }
}

pub(crate) async fn write_document<T: Serialize>(
    store: &dyn Store,
    business: &Business,
    name: &'static str,
    value: &T,
    now: Timestamp,
) -> Result<(), UseCaseError> {
    let content = serde_json::to_string(value).expect("settings serialize");
    let document = SettingsDocument {
        business_id: business.id,
        name: name.to_owned(),
        content,
        updated_at: truncate_to_microseconds(now),
    };
    Ok(store.put_settings_document(&document).await?)
}

/// What importing templates did, template by template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateImport {
    pub imported: Vec<ImportedTemplate>,
    /// Templates that were not imported, with why.
    pub problems: Vec<crate::Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedTemplate {
    pub template: StoredTemplate,
    pub warnings: Vec<TemplateWarning>,
}

/// Imports templates in the Cloud API's JSON format into the business's registry, linking each
/// to a business category (its `optin_category`, or the policy's default for its template
/// category) and linting it. Refuses the whole file only when it is not a template list at all.
pub async fn import_templates(
    store: &dyn Store,
    business: &Business,
    json: &[u8],
    now: Timestamp,
) -> Result<TemplateImport, UseCaseError> {
    let parsed = parse_templates(json).map_err(|e| Rejection::invalid(e.code(), e.to_string()))?;
    let policy = channel_policy(store, business).await?;
    let mut problems: Vec<crate::Problem> = parsed
        .problems
        .iter()
        .map(|p| crate::Problem { code: p.code, detail: format!("template #{}: {}", p.index, p.detail) })
        .collect();
    let now = truncate_to_microseconds(now);
    let mut imported = Vec::with_capacity(parsed.templates.len());
    for template in parsed.templates {
        match link_template(business, &policy, &template) {
            Ok(linked_category) => {
                let warnings = lint(&template);
                imported.push(ImportedTemplate { template: stored(template, linked_category, now), warnings });
            }
            Err(problem) => problems.push(problem),
        }
    }
    let templates: Vec<StoredTemplate> = imported.iter().map(|i| i.template.clone()).collect();
    store.put_templates(business.id, &templates).await?;
    Ok(TemplateImport { imported, problems })
}

fn link_template(
    business: &Business,
    policy: &ChannelPolicy,
    template: &Template,
) -> Result<Option<CategoryName>, crate::Problem> {
    match &template.linked_category {
        Some(name) if business.category_slot(name.as_str()).is_none() => Err(crate::Problem {
            code: "unknown_category",
            detail: format!("template `{}`: the business has no category `{name}`", template.name.as_str()),
        }),
        Some(name) => Ok(Some(name.clone())),
        None => Ok(policy.template_category_defaults.get(&template.category).cloned()),
    }
}

fn stored(template: Template, linked_category: Option<CategoryName>, now: Timestamp) -> StoredTemplate {
    StoredTemplate {
        name: template.name,
        language: template.language,
        category: template.category,
        status: template.status,
        quality: template.quality,
        platform_id: template.platform_id,
        linked_category,
        components: template.components.to_string(),
        updated_at: now,
    }
}
