//! Scanned consent forms (paper, in person): checked by content, kept once per business under
//! their SHA-256, served back to the business. An opt-in names one by `document_sha256`.

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::document::{self, CheckedDocument};
use optin_core::truncate_to_microseconds;

use crate::records::StoredDocument;
use crate::rejection::{Rejection, UseCaseError};
use crate::store::Store;

/// Keeps `content` (a PDF or an image, by its first bytes, at most 10 MiB); the document and
/// whether it was new (the same file uploaded again is kept once).
pub async fn upload_document(
    store: &dyn Store,
    business: &Business,
    content: &[u8],
    now: Timestamp,
) -> Result<(CheckedDocument, bool), UseCaseError> {
    let checked = document::check(content).map_err(|e| Rejection::invalid(e.code(), e.to_string()))?;
    let stored = StoredDocument {
        business_id: business.id,
        sha256: checked.sha256.clone(),
        media_type: checked.media_type,
        content: content.to_vec(),
        uploaded_at: truncate_to_microseconds(now),
    };
    let new = store.put_document(&stored).await?;
    Ok((checked, new))
}

/// The business's document with this SHA-256 (hex, any case).
pub async fn find_document(
    store: &dyn Store,
    business: &Business,
    sha256: &str,
) -> Result<StoredDocument, UseCaseError> {
    let not_found = || Rejection::not_found("document_not_found", "this business has no document with this SHA-256");
    let sha256 = sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found().into());
    }
    Ok(store.document(business.id, &sha256).await?.ok_or_else(not_found)?)
}
