//! The gate: one decision, from client input to the core's answer.

use optin_core::business::Business;
use optin_core::consent::ConsentBits;
use optin_core::decision::{Decision, decide};
use optin_core::phone::{PhoneNumber, PhoneNumberError, Region};

use crate::store::{Store, StoreError};

/// Decides whether `business` may send a message of `category` to `phone` now.
///
/// Numbers in strict E.164 that the store knows were validated when their consent was stored,
/// so they are looked up without running the (slow, globally locked) libphonenumber parser.
/// Anything else, or an E.164 number with no stored consent, is parsed in full, so that a
/// malformed number is reported as such rather than as "no opt-in".
pub async fn decide_send(
    store: &dyn Store,
    business: &Business,
    phone: &str,
    region: Option<Region>,
    category: &str,
) -> Result<Decision, StoreError> {
    let slot = business.category_slot(category).ok_or(category);
    if let Some(fast) = PhoneNumber::from_e164(phone) {
        let bits = store.consent_bits(business, fast).await?;
        if bits != ConsentBits::default() {
            return Ok(decide(Ok(&fast), slot, bits));
        }
    }
    let parsed: Result<PhoneNumber, PhoneNumberError> = PhoneNumber::parse(phone, region);
    let bits = match &parsed {
        Ok(number) => store.consent_bits(business, *number).await?,
        Err(_) => ConsentBits::default(),
    };
    Ok(decide(parsed.as_ref(), slot, bits))
}
