//! Webhook authenticity: Meta's `X-Hub-Signature-256` header and shared-secret comparison.
//!
//! Meta signs every webhook POST with `sha256=<hex>` where `<hex>` is HMAC-SHA256 of the *raw* body,
//! keyed with the app secret. The check must run on the exact bytes received, before any JSON parsing,
//! because re-serialising a parsed body never reproduces the signed bytes. Every comparison here is
//! constant time so a caller cannot learn a valid signature or secret byte by byte from response times.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The header Meta signs webhook POSTs with (HTTP header names are case-insensitive).
pub const HUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The prefix Meta puts before the hex digest in `X-Hub-Signature-256`.
const HEADER_PREFIX: &str = "sha256=";

/// Why a webhook signature was refused. Each variant has a stable [`code`](SignatureError::code) for
/// logs and problem+json bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header: the sender did not sign, or a proxy dropped the header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hex digits")]
    Malformed,
    /// Well-formed, but not the HMAC of this body under this app secret.
    #[error("the X-Hub-Signature-256 header does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// A stable, machine-readable code; never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// Checks Meta's `X-Hub-Signature-256` header against the raw request body.
///
/// Upper-case hex is accepted: hex case carries no information and some proxies normalise it.
/// An empty app secret never verifies: anyone can compute an HMAC under the empty key, so accepting it
/// would turn a configuration mistake into an open door.
pub fn verify_hub_signature(app_secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let claimed = decode_header(header)?;
    if app_secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    keyed_mac(app_secret, body).verify_slice(&claimed).map_err(|_| SignatureError::Mismatch)
}

/// The full header value (`sha256=<lowercase hex>`) Meta would send for `body`.
///
/// Tests, benchmarks and the mock Cloud API use it to produce correctly signed deliveries.
pub fn sign_hub(app_secret: &[u8], body: &[u8]) -> String {
    let tag = keyed_mac(app_secret, body).finalize().into_bytes();
    format!("{HEADER_PREFIX}{}", hex::encode(tag))
}

/// Compares two secrets (for example the webhook verify token) in constant time.
///
/// Both sides are hashed first so that the comparison always covers 32 bytes: comparing the raw
/// strings would end early on a length difference and leak the expected secret's length.
pub fn secrets_match(expected: &str, given: &str) -> bool {
    let expected_digest = Sha256::digest(expected.as_bytes());
    let given_digest = Sha256::digest(given.as_bytes());
    expected_digest.as_slice().ct_eq(given_digest.as_slice()).into()
}

fn keyed_mac(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of every length (long keys are hashed, short ones padded), so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}

fn decode_header(header: &str) -> Result<[u8; 32], SignatureError> {
    let hex_digest = header.trim().strip_prefix(HEADER_PREFIX).ok_or(SignatureError::Malformed)?;
    let mut claimed = [0u8; 32];
    // `decode_to_slice` also rejects any length other than 64 digits.
    hex::decode_to_slice(hex_digest, &mut claimed).map_err(|_| SignatureError::Malformed)?;
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn matches_the_rfc_4231_hmac_sha256_known_answer() {
        let header = sign_hub(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(header, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(verify_hub_signature(b"Jefe", Some(&header), b"what do ya want for nothing?"), Ok(()));
    }

    #[test]
    fn a_signature_in_meta_style_verifies() {
        let header = sign_hub(SECRET, BODY);
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert!(header[7..].bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)));
        assert_eq!(verify_hub_signature(SECRET, Some(&header), BODY), Ok(()));
    }

    #[test]
    fn upper_case_hex_and_surrounding_whitespace_are_accepted() {
        let header = format!("sha256={} ", sign_hub(SECRET, BODY)[7..].to_ascii_uppercase());
        assert_eq!(verify_hub_signature(SECRET, Some(&header), BODY), Ok(()));
    }

    #[test]
    fn a_wrong_secret_is_a_mismatch() {
        let header = sign_hub(b"another-secret", BODY);
        assert_eq!(verify_hub_signature(SECRET, Some(&header), BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn an_altered_body_is_a_mismatch() {
        let header = sign_hub(SECRET, BODY);
        let altered = BODY.iter().map(|&byte| if byte == b'[' { b'{' } else { byte }).collect::<Vec<_>>();
        assert_eq!(verify_hub_signature(SECRET, Some(&header), &altered), Err(SignatureError::Mismatch));
        assert_eq!(verify_hub_signature(SECRET, Some(&header), &BODY[1..]), Err(SignatureError::Mismatch));
    }

    #[test]
    fn an_empty_app_secret_never_verifies() {
        let header = sign_hub(b"", BODY);
        assert_eq!(verify_hub_signature(b"", Some(&header), BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_missing_header_is_missing() {
        assert_eq!(verify_hub_signature(SECRET, None, BODY), Err(SignatureError::Missing));
    }

    #[test]
    fn truncated_unprefixed_or_non_hex_headers_are_malformed() {
        let good = sign_hub(SECRET, BODY);
        let malformed = [
            good[..good.len() - 1].to_owned(),
            good[..good.len() - 2].to_owned(),
            format!("{good}00"),
            good[7..].to_owned(),
            format!("sha1={}", &good[7..]),
            format!("sha256={}", "g".repeat(64)),
            "sha256=".to_owned(),
            String::new(),
        ];
        for header in malformed {
            assert_eq!(verify_hub_signature(SECRET, Some(&header), BODY), Err(SignatureError::Malformed), "{header}");
        }
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(SignatureError::Missing.code(), "signature_missing");
        assert_eq!(SignatureError::Malformed.code(), "signature_malformed");
        assert_eq!(SignatureError::Mismatch.code(), "signature_mismatch");
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("verify-token", "verify-token"));
        assert!(!secrets_match("verify-token", "verify-tokeN"));
        assert!(!secrets_match("verify-token", "verify-token-longer"));
        assert!(!secrets_match("verify-token", ""));
        assert!(secrets_match("", ""));
    }
}
