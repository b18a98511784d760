use jiff::Timestamp;
use serde_json::Map;
use uuid::Uuid;

use super::*;
use crate::business::CategoryName;
use crate::consent::{ConsentChange, OptOut, OptOutSource};
use crate::evidence::Evidence;
use crate::ids::BusinessId;
use crate::phone::PhoneNumber;

fn event(n: u128) -> ConsentEvent {
    ConsentEvent {
        id: EventId::from_uuid(Uuid::from_u128(n)),
        business_id: BusinessId::from_uuid(Uuid::from_u128(1)),
        phone: PhoneNumber::from_e164("+14155552671").unwrap(),
        change: ConsentChange::OptOut(OptOut {
            categories: vec![CategoryName::parse("offers").unwrap()],
            all_categories: false,
            source: OptOutSource::Api,
            recorded_by: "agent 7".into(),
            evidence: Evidence::recorded(Map::new()),
            requested_at: None,
        }),
        recorded_at: Timestamp::from_second(1_700_000_000).unwrap(),
    }
}

fn chain(length: u128) -> Vec<LedgerEntry> {
    let mut entries: Vec<LedgerEntry> = Vec::new();
    for n in 1..=length {
        let head = entries.last().map(LedgerEntry::head);
        entries.push(LedgerEntry::chain(&event(n), head));
    }
    entries
}

fn verify(entries: &[LedgerEntry], head: Option<ChainHead>) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.check(entry)?;
    }
    verifier.finish(head)
}

#[test]
fn an_intact_chain_verifies() {
    let entries = chain(5);
    assert_eq!(entries[0].prev_hash, Hash::ZERO);
    assert_eq!(verify(&entries, Some(entries[4].head())), Ok(5));
    assert_eq!(verify(&[], None), Ok(0));
}

#[test]
fn changed_content_is_found_at_its_index() {
    let mut entries = chain(5);
    entries[2].content = entries[2].content.replace("agent 7", "agent 8");
    let broken = verify(&entries, Some(entries[4].head())).unwrap_err();
    assert_eq!((broken.index, broken.kind), (3, BreakKind::ContentChanged));
}

#[test]
fn content_rehashed_by_a_forger_breaks_the_next_link() {
    let mut entries = chain(5);
    entries[1].content = entries[1].content.replace("agent 7", "agent 8");
    entries[1].content_hash = Hash::of(entries[1].content.as_bytes());
    let broken = verify(&entries, Some(entries[4].head())).unwrap_err();
    assert_eq!((broken.index, broken.kind), (2, BreakKind::HashMismatch));
}

#[test]
fn a_deleted_event_is_found() {
    let mut entries = chain(5);
    entries.remove(3);
    let broken = verify(&entries, Some(entries[3].head())).unwrap_err();
    assert_eq!((broken.index, broken.kind), (4, BreakKind::MissingEvent));
}

#[test]
fn a_deleted_last_event_is_found_by_the_head() {
    let entries = chain(5);
    let broken = verify(&entries[..4], Some(entries[4].head())).unwrap_err();
    assert_eq!(broken.kind, BreakKind::HeadMismatch);
}

#[test]
fn a_side_column_that_disagrees_with_the_content_is_found() {
    let mut entries = chain(3);
    entries[1].phone_key = 14155550000;
    let broken = verify(&entries, Some(entries[2].head())).unwrap_err();
    assert_eq!((broken.index, broken.kind), (2, BreakKind::ContentUnreadable));
}

#[test]
fn hashes_round_trip_as_hex() {
    let hash = Hash::of(b"x");
    // SHA-256("x"), lowercase, as stored.
    assert_eq!(hash.to_hex(), "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
    assert_eq!(Hash::from_hex(&hash.to_hex()), Some(hash));
    assert_eq!(Hash::from_hex("zz"), None);
}

#[test]
fn a_sealed_event_chains_into_the_same_entry() {
    let entries = chain(3);
    let sealed = SealedEvent::new(event(4));
    let head = Some(entries[2].head());
    assert_eq!(sealed.event(), &event(4));
    assert_eq!(LedgerEntry::chain_sealed(&sealed, head), LedgerEntry::chain(&event(4), head));
    assert_eq!(LedgerEntry::chain_sealed(&sealed, None), LedgerEntry::chain(&event(4), None));
    assert_ne!(LedgerEntry::chain_sealed(&sealed, head).hash, LedgerEntry::chain_sealed(&sealed, None).hash);
}
