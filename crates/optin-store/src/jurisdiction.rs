//! A business's jurisdiction policy: its TOML rules (quiet hours, frequency caps, consent
//! lifetimes, double opt-in) over the shipped defaults, and the time zone to assume when a number
//! leaves several possible.
//!
//! Decisions read the policy on every call, so it is cached per process for a second: a change
//! reaches every server within a second.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use optin_core::business::Business;
use optin_core::ids::BusinessId;
use optin_core::jurisdiction::{self, JurisdictionPolicy};
use optin_core::truncate_to_microseconds;
use serde::{Deserialize, Serialize};

use crate::channel::SettingsDocument;
use crate::rejection::{Problems, UseCaseError};
use crate::store::{Store, StoreError};

const DOCUMENT: &str = "jurisdiction_policy";
const CACHE_FOR: Duration = Duration::from_secs(1);

/// The policy as the business set it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JurisdictionSettings {
    /// The business's rules in the documented TOML format (merged over the shipped defaults);
    /// empty: the shipped defaults alone.
    pub rules: String,
    /// An IANA zone (`America/Sao_Paulo`) for numbers whose zone is ambiguous, when it is one
    /// of their candidates.
    pub default_time_zone: Option<String>,
}

/// The policy, ready to evaluate.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub policy: JurisdictionPolicy,
    pub default_zone: Option<TimeZone>,
}

type Cache = HashMap<BusinessId, (Instant, Arc<LoadedPolicy>)>;
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

/// Checks and stores a business's jurisdiction policy.
pub async fn set_jurisdiction_policy(
    store: &dyn Store,
    business: &Business,
    settings: &JurisdictionSettings,
    now: Timestamp,
) -> Result<LoadedPolicy, UseCaseError> {
    let loaded = load(settings).map_err(|(code, detail)| {
        let mut problems = Problems::default();
        problems.push(code, detail);
        problems.into_result().expect_err("one problem")
    })?;
    let document = SettingsDocument {
        business_id: business.id,
        name: DOCUMENT.to_owned(),
        content: serde_json::to_string(settings).expect("settings serialize"),
        updated_at: truncate_to_microseconds(now),
    };
    store.put_settings_document(&document).await?;
    lock(&CACHE).remove(&business.id);
    Ok(loaded)
}

/// The business's policy as set (empty rules when never set).
pub async fn jurisdiction_settings(
    store: &dyn Store,
    business: BusinessId,
) -> Result<JurisdictionSettings, StoreError> {
    match store.settings_document(business, DOCUMENT).await? {
        None => Ok(JurisdictionSettings::default()),
        Some(document) => serde_json::from_str(&document.content)
            .map_err(|e| StoreError::Corrupt(format!("settings document `{DOCUMENT}`: {e}"))),
    }
}

/// The business's policy for decisions (cached for a second).
pub async fn jurisdiction_policy(store: &dyn Store, business: BusinessId) -> Result<Arc<LoadedPolicy>, StoreError> {
    if let Some((loaded_at, policy)) = lock(&CACHE).get(&business)
        && loaded_at.elapsed() < CACHE_FOR
    {
        return Ok(Arc::clone(policy));
    }
    let settings = jurisdiction_settings(store, business).await?;
    // A stored policy was checked when it was set; if the shipped data changed since and it no
    // longer loads, the shipped defaults apply (and the problem is logged).
    let loaded = load(&settings).unwrap_or_else(|(code, detail)| {
        tracing::warn!(%business, code, detail, "the stored jurisdiction policy no longer loads; using the defaults");
        LoadedPolicy { policy: JurisdictionPolicy::shipped().clone(), default_zone: None }
    });
    let loaded = Arc::new(loaded);
    lock(&CACHE).insert(business, (Instant::now(), Arc::clone(&loaded)));
    Ok(loaded)
}

fn load(settings: &JurisdictionSettings) -> Result<LoadedPolicy, (&'static str, String)> {
    let policy = if settings.rules.trim().is_empty() {
        JurisdictionPolicy::shipped().clone()
    } else {
        JurisdictionPolicy::from_toml(&settings.rules).map_err(|e| (e.code(), e.to_string()))?
    };
    let default_zone = match &settings.default_time_zone {
        Some(name) => Some(jurisdiction::time_zone(name).map_err(|e| (e.code(), e.to_string()))?),
        None => None,
    };
    Ok(LoadedPolicy { policy, default_zone })
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}
