//! The ledger's hash chain.
//!
//! Each business's events form a chain. An event's canonical content is its JSON serialization,
//! stored as is; `content_hash = SHA-256(content)` and `hash = SHA-256(prev_hash || content_hash)`,
//! with 32 zero bytes before the first event. Because the chain covers the content's hash rather
//! than the content itself, personal data can later be erased from an event while the chain still
//! verifies. Verification re-hashes the stored content, checks each link and the stored head, and
//! checks that the columns a store indexes by (event id, phone) say what the content says.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::consent::ConsentEvent;
use crate::ids::EventId;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash([u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn of(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        // `hex::encode` collects a `char` iterator; an import writes four of these per row.
        let mut digits = [0; 64];
        hex::encode_to_slice(self.0, &mut digits).expect("64 digits for 32 bytes");
        std::str::from_utf8(&digits).expect("hex digits are ASCII").to_owned()
    }

    pub fn from_hex(text: &str) -> Option<Hash> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Hash(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The position of a business's latest event in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// 1 for the first event.
    pub index: u64,
    pub hash: Hash,
}

/// An event as the ledger stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub index: u64,
    pub event_id: EventId,
    /// The E.164 digits the store indexes the event by.
    pub phone_key: u64,
    pub content: String,
    pub content_hash: Hash,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl LedgerEntry {
    /// Chains `event` after `head` (`None` for a business's first event).
    pub fn chain(event: &ConsentEvent, head: Option<ChainHead>) -> LedgerEntry {
        let (content, content_hash) = seal(event);
        LedgerEntry::link(event, content, content_hash, head)
    }

    /// [`LedgerEntry::chain`] for an event sealed beforehand (same entry, no serializing).
    pub fn chain_sealed(sealed: &SealedEvent, head: Option<ChainHead>) -> LedgerEntry {
        LedgerEntry::link(&sealed.event, sealed.content.clone(), sealed.content_hash, head)
    }

    fn link(event: &ConsentEvent, content: String, content_hash: Hash, head: Option<ChainHead>) -> LedgerEntry {
        let prev_hash = head.map_or(Hash::ZERO, |h| h.hash);
        LedgerEntry {
            index: head.map_or(1, |h| h.index + 1),
            event_id: event.id,
            phone_key: event.phone.key(),
            hash: link_hash(&prev_hash, &content_hash),
            content,
            content_hash,
            prev_hash,
        }
    }

    pub fn head(&self) -> ChainHead {
        ChainHead { index: self.index, hash: self.hash }
    }

    /// The event, read back from the hashed content (never from side columns).
    pub fn event(&self) -> Result<ConsentEvent, serde_json::Error> {
        serde_json::from_str(&self.content)
    }
}

/// An event with its canonical content and content hash: all of [`LedgerEntry::chain`] that does
/// not depend on the chain's head. A bulk import seals its events while the store writes the
/// previous chunk, so the store's single writer only links them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEvent {
    event: ConsentEvent,
    content: String,
    content_hash: Hash,
}

impl SealedEvent {
    pub fn new(event: ConsentEvent) -> SealedEvent {
        let (content, content_hash) = seal(&event);
        SealedEvent { event, content, content_hash }
    }

    pub fn event(&self) -> &ConsentEvent {
        &self.event
    }
}

fn seal(event: &ConsentEvent) -> (String, Hash) {
    let content = serde_json::to_string(event).expect("consent events always serialize");
    let content_hash = Hash::of(content.as_bytes());
    (content, content_hash)
}

fn link_hash(prev_hash: &Hash, content_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.0);
    hasher.update(content_hash.0);
    Hash(hasher.finalize().into())
}

/// What is wrong at the first event that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// An event is missing: the chain jumps over an index.
    MissingEvent,
    /// The stored content no longer hashes to the stored content hash.
    ContentChanged,
    /// The stored hash is not the hash of the previous hash and the content hash.
    HashMismatch,
    /// The previous-hash field does not match the previous event's hash.
    BrokenLink,
    /// The content is not a readable event, or its columns disagree with it.
    ContentUnreadable,
    /// The chain's recorded head does not match its last event (events were removed at the end).
    HeadMismatch,
}

/// The first point where a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The chain index where verification failed.
    pub index: u64,
    pub event_id: Option<EventId>,
    pub kind: BreakKind,
}

/// Checks a chain one entry at a time, in index order, without holding it in memory.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    head: Option<ChainHead>,
    checked: u64,
}

impl ChainVerifier {
    pub fn new() -> ChainVerifier {
        ChainVerifier::default()
    }

    pub fn check(&mut self, entry: &LedgerEntry) -> Result<(), ChainBreak> {
        let expected_index = self.head.map_or(1, |h| h.index + 1);
        let fail = |kind| ChainBreak { index: expected_index.min(entry.index), event_id: Some(entry.event_id), kind };
        if entry.index != expected_index {
            return Err(ChainBreak { index: expected_index, event_id: None, kind: BreakKind::MissingEvent });
        }
        if Hash::of(entry.content.as_bytes()) != entry.content_hash {
            return Err(fail(BreakKind::ContentChanged));
        }
        if entry.prev_hash != self.head.map_or(Hash::ZERO, |h| h.hash) {
            return Err(fail(BreakKind::BrokenLink));
        }
        if link_hash(&entry.prev_hash, &entry.content_hash) != entry.hash {
            return Err(fail(BreakKind::HashMismatch));
        }
        let consistent =
            entry.event().is_ok_and(|event| event.id == entry.event_id && event.phone.key() == entry.phone_key);
        if !consistent {
            return Err(fail(BreakKind::ContentUnreadable));
        }
        self.head = Some(entry.head());
        self.checked += 1;
        Ok(())
    }

    /// Ends verification against the head the store recorded; returns how many events verified.
    pub fn finish(self, recorded_head: Option<ChainHead>) -> Result<u64, ChainBreak> {
        if self.head != recorded_head {
            let index = recorded_head.map_or(0, |h| h.index).max(self.head.map_or(0, |h| h.index));
            return Err(ChainBreak { index, event_id: None, kind: BreakKind::HeadMismatch });
        }
        Ok(self.checked)
    }
}

#[cfg(test)]
mod tests;
