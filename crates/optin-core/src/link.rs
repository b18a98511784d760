//! Signed, expiring tokens for the pages people open without an account: the preference page
//! (`/p/{token}`), the double opt-in confirmation link (`/c/{token}`) and the hosted form's
//! anti-forgery token.
//!
//! A token is `base64url(payload JSON) "." base64url(HMAC-SHA256(key, purpose "." payload))`. The
//! key is the business's own (the shell creates it), so a token made for one business never opens
//! another's pages, and the purpose is inside the MAC, so a form token is not a preference link.
//! Nothing in a token is secret (the phone number can be read from it); only forging is prevented.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// The longest token accepted: real ones are a few hundred bytes.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// What a token opens. Part of the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Preferences,
    Confirmation,
    FormSubmission,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Preferences => "preferences",
            Purpose::Confirmation => "confirmation",
            Purpose::FormSubmission => "form_submission",
        }
    }
}

/// A business's key for its links: 32 random bytes made by the shell.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKey([u8; 32]);

impl LinkKey {
    pub fn from_bytes(bytes: [u8; 32]) -> LinkKey {
        LinkKey(bytes)
    }

    pub fn from_hex(text: &str) -> Option<LinkKey> {
        let bytes = hex::decode(text).ok()?;
        bytes.try_into().ok().map(LinkKey)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, purpose: Purpose, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_str().as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LinkKey([redacted])")
    }
}

/// Why a token opens nothing. Pages show one friendly message for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is not one of ours")]
    Malformed,
    #[error("the link's signature does not match")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "link_malformed",
            TokenError::Forged => "link_forged",
            TokenError::Expired => "link_expired",
        }
    }
}

/// What every token carries besides its own claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
struct Envelope<T> {
    /// Expiry, in seconds since the epoch.
    exp: i64,
    #[serde(flatten)]
    claims: T,
}

/// Signs `claims` for `purpose`, valid until `expires_at`.
pub fn sign<T: Serialize>(key: &LinkKey, purpose: Purpose, claims: &T, expires_at: Timestamp) -> String {
    let envelope = Envelope { exp: expires_at.as_second(), claims };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&envelope).expect("claims serialize"));
    let tag = URL_SAFE_NO_PAD.encode(key.mac(purpose, &payload).finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// The business a token claims to be for, read before its key is known (the key is per business).
/// Not trusted until [`verify`] succeeds with that business's key.
pub fn unverified_claims<T: DeserializeOwned>(token: &str) -> Result<T, TokenError> {
    let (payload, _) = split(token)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    Ok(envelope.claims)
}

/// Checks the signature (in constant time) and the expiry, and returns the claims.
pub fn verify<T: DeserializeOwned>(
    key: &LinkKey,
    purpose: Purpose,
    token: &str,
    now: Timestamp,
) -> Result<T, TokenError> {
    let (payload, tag) = split(token)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
    key.mac(purpose, payload).verify_slice(&tag).map_err(|_| TokenError::Forged)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if envelope.exp <= now.as_second() {
        return Err(TokenError::Expired);
    }
    Ok(envelope.claims)
}

/// A short, stable reference to a token for evidence: the token itself is a bearer credential
/// until it expires and is not written to the ledger.
pub fn reference(token: &str) -> String {
    use sha2::Digest;
    hex::encode(&Sha256::digest(token.as_bytes())[..12])
}

fn split(token: &str) -> Result<(&str, &str), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if payload.is_empty() || tag.is_empty() || tag.contains('.') {
        return Err(TokenError::Malformed);
    }
    Ok((payload, tag))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Claims {
        business: String,
        phone: String,
    }

    fn claims() -> Claims {
        Claims { business: "b1".to_owned(), phone: "+4915112345678".to_owned() }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn a_token_opens_for_its_key_and_purpose_until_it_expires() {
        let key = LinkKey::from_bytes([7; 32]);
        let token = sign(&key, Purpose::Preferences, &claims(), at(2_000));
        assert_eq!(verify::<Claims>(&key, Purpose::Preferences, &token, at(1_999)), Ok(claims()));
        assert_eq!(verify::<Claims>(&key, Purpose::Preferences, &token, at(2_000)), Err(TokenError::Expired));
        assert_eq!(verify::<Claims>(&key, Purpose::Confirmation, &token, at(1_000)), Err(TokenError::Forged));
        let other = LinkKey::from_bytes([8; 32]);
        assert_eq!(verify::<Claims>(&other, Purpose::Preferences, &token, at(1_000)), Err(TokenError::Forged));
        assert_eq!(unverified_claims::<Claims>(&token), Ok(claims()));
    }

    #[test]
    fn a_changed_payload_or_tag_is_forged() {
        let key = LinkKey::from_bytes([7; 32]);
        let token = sign(&key, Purpose::Preferences, &claims(), at(2_000));
        let (payload, tag) = token.split_once('.').unwrap();
        let other_claims = Claims { phone: "+4915199999999".to_owned(), ..claims() };
        let other_payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Envelope { exp: 2_000, claims: other_claims }).unwrap());
        let swapped = format!("{other_payload}.{tag}");
        assert_eq!(verify::<Claims>(&key, Purpose::Preferences, &swapped, at(1_000)), Err(TokenError::Forged));
        let mut bad_tag = tag.to_owned();
        bad_tag.replace_range(0..1, if tag.starts_with('A') { "B" } else { "A" });
        let changed = format!("{payload}.{bad_tag}");
        assert_eq!(verify::<Claims>(&key, Purpose::Preferences, &changed, at(1_000)), Err(TokenError::Forged));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let key = LinkKey::from_bytes([7; 32]);
        for token in ["", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.???", &"a".repeat(MAX_TOKEN_BYTES + 1)] {
            let result = verify::<Claims>(&key, Purpose::Preferences, token, at(0));
            assert!(matches!(result, Err(TokenError::Malformed | TokenError::Forged)), "{token:?}: {result:?}");
        }
    }

    #[test]
    fn keys_round_trip_through_hex_and_do_not_print() {
        let key = LinkKey::from_bytes([0xab; 32]);
        assert_eq!(LinkKey::from_hex(&key.to_hex()), Some(key.clone()));
        assert_eq!(LinkKey::from_hex("abcd"), None);
        assert!(!format!("{key:?}").contains("ab"));
    }

    proptest! {
        #[test]
        fn verify_never_panics(token in ".{0,300}") {
            let key = LinkKey::from_bytes([1; 32]);
            let _ = verify::<Claims>(&key, Purpose::FormSubmission, &token, at(0));
            let _ = unverified_claims::<Claims>(&token);
        }
    }
}
