use jiff::Timestamp;
use serde_json::Map;
use uuid::Uuid;

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

fn category(name: &str) -> CategoryName {
    CategoryName::parse(name).unwrap()
}

fn event(id: u128, recorded: i64, change: ConsentChange) -> ConsentEvent {
    ConsentEvent {
        id: EventId::from_uuid(Uuid::from_u128(id)),
        business_id: BusinessId::from_uuid(Uuid::from_u128(7)),
        phone: PhoneNumber::from_e164("+14155552671").unwrap(),
        change,
        recorded_at: at(recorded),
    }
}

fn opt_in(id: u128, collected: i64, recorded: i64, categories: &[&str]) -> ConsentEvent {
    event(
        id,
        recorded,
        ConsentChange::OptIn(OptIn {
            categories: categories.iter().map(|c| category(c)).collect(),
            method: Method::WebForm,
            notice: NoticeRef {
                id: NoticeId::from_uuid(Uuid::from_u128(99)),
                version: 1,
                language: "en".into(),
                text_sha256: "00".repeat(32),
            },
            evidence: Evidence::recorded(Map::new()),
            collected_at: at(collected),
            basis: Default::default(),
            basis_at: None,
            needs_confirmation: false,
        }),
    )
}

fn opt_out(id: u128, recorded: i64, categories: &[&str]) -> ConsentEvent {
    event(
        id,
        recorded,
        ConsentChange::OptOut(OptOut {
            categories: categories.iter().map(|c| category(c)).collect(),
            all_categories: false,
            source: OptOutSource::Keyword,
            recorded_by: "test".into(),
            evidence: Evidence::recorded(Map::new()),
            requested_at: None,
        }),
    )
}

fn statuses(state: &ContactConsent) -> Vec<(&str, ConsentStatus)> {
    state.iter().map(|(c, s)| (c.as_str(), s.status)).collect()
}

#[test]
fn opt_in_then_opt_out_of_one_category() {
    let state = replay(&[opt_in(1, 0, 0, &["offers", "order_updates"]), opt_out(2, 10, &["offers"])]);
    assert_eq!(statuses(&state), [("offers", ConsentStatus::OptedOut), ("order_updates", ConsentStatus::OptedIn)]);
    assert_eq!(state[&category("offers")].since, at(10));
}

#[test]
fn opting_in_again_never_downgrades_or_moves_the_start() {
    let first = opt_in(1, 0, 0, &["offers"]);
    let state = replay(std::slice::from_ref(&first));
    let again = opt_in(2, 50, 50, &["offers"]);
    let folded = apply(&state, &again);
    assert!(folded.changed.is_empty());
    assert_eq!(folded.outcomes, [(category("offers"), CategoryOutcome::AlreadyOptedIn)]);
    assert_eq!(replay(&[first, again])[&category("offers")].since, at(0));
}

#[test]
fn an_old_opt_in_recorded_after_a_newer_opt_out_does_not_resubscribe() {
    let out = opt_out(1, 100, &["offers"]);
    let late_import = opt_in(2, 50, 200, &["offers"]);
    let state = replay(std::slice::from_ref(&out));
    assert_eq!(apply(&state, &late_import).outcomes, [(category("offers"), CategoryOutcome::SupersededByOptOut)]);
    assert_eq!(statuses(&replay(&[out, late_import])), [("offers", ConsentStatus::OptedOut)]);
}

#[test]
fn a_new_opt_in_after_an_opt_out_resubscribes() {
    let state = replay(&[opt_in(1, 0, 0, &["offers"]), opt_out(2, 10, &["offers"]), opt_in(3, 20, 20, &["offers"])]);
    let offers = &state[&category("offers")];
    assert_eq!(offers.status, ConsentStatus::OptedIn);
    assert_eq!(offers.last_opt_out_at, Some(at(10)));
}

#[test]
fn an_opt_out_without_a_prior_opt_in_still_suppresses() {
    let state = replay(&[opt_out(1, 10, &["offers"])]);
    assert_eq!(statuses(&state), [("offers", ConsentStatus::OptedOut)]);
}

#[test]
fn bits_follow_the_business_slots() {
    let business = Business {
        id: BusinessId::from_uuid(Uuid::from_u128(7)),
        name: crate::business::BusinessName::parse("Acme").unwrap(),
        brand_names: vec![],
        categories: ["order_updates", "offers"]
            .map(|n| crate::business::Category {
                name: category(n),
                template_category: crate::business::TemplateCategory::Utility,
            })
            .to_vec(),
        created_at: at(0),
    };
    let state = replay(&[opt_in(1, 0, 0, &["order_updates", "offers"]), opt_out(2, 1, &["offers"])]);
    assert_eq!(
        ConsentBits::from_state(&business, &state),
        ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() }
    );
}

#[test]
fn events_serialize_with_e164_and_kind() {
    let json = serde_json::to_value(opt_out(1, 0, &["offers"])).unwrap();
    assert_eq!(json["phone"], "+14155552671");
    assert_eq!(json["kind"], "opt_out");
    let back: ConsentEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, opt_out(1, 0, &["offers"]));
}

fn pending_opt_in(id: u128, collected: i64, categories: &[&str]) -> ConsentEvent {
    let mut event = opt_in(id, collected, collected, categories);
    if let ConsentChange::OptIn(opt_in) = &mut event.change {
        opt_in.needs_confirmation = true;
    }
    event
}

fn confirmation(id: u128, recorded: i64, categories: &[&str]) -> ConsentEvent {
    event(
        id,
        recorded,
        ConsentChange::Confirmation(Confirmation {
            categories: categories.iter().map(|c| category(c)).collect(),
            method: Method::WhatsappThread,
            evidence: Evidence::recorded(Map::new()),
        }),
    )
}

#[test]
fn a_double_opt_in_is_pending_until_confirmed_and_counts_from_the_confirmation() {
    let pending = replay(&[pending_opt_in(1, 0, &["offers"])]);
    assert_eq!(statuses(&pending), [("offers", ConsentStatus::PendingConfirmation)]);
    let confirmed = replay(&[pending_opt_in(1, 0, &["offers"]), confirmation(2, 30, &["offers"])]);
    let offers = &confirmed[&category("offers")];
    assert_eq!((offers.status, offers.since, offers.method), (ConsentStatus::OptedIn, at(30), Some(Method::WebForm)));
    assert_eq!(offers.event_id, EventId::from_uuid(Uuid::from_u128(2)));
}

#[test]
fn each_newly_requested_category_needs_its_own_confirmation() {
    let events = [
        pending_opt_in(1, 0, &["offers"]),
        confirmation(2, 10, &["offers"]),
        // Asking again for offers and now news: offers stays confirmed, news waits.
        pending_opt_in(3, 20, &["offers", "news"]),
    ];
    let state = replay(&events);
    assert_eq!(statuses(&state), [("news", ConsentStatus::PendingConfirmation), ("offers", ConsentStatus::OptedIn)]);
    let outcomes = apply(&replay(&events[..2]), &events[2]).outcomes;
    assert_eq!(
        outcomes,
        [
            (category("offers"), CategoryOutcome::AlreadyOptedIn),
            (category("news"), CategoryOutcome::AwaitingConfirmation)
        ]
    );
}

#[test]
fn a_newer_request_is_the_one_waiting_for_confirmation() {
    let first = pending_opt_in(1, 0, &["offers"]);
    let newer = pending_opt_in(2, 50, &["offers"]);
    let folded = apply(&replay(std::slice::from_ref(&first)), &newer);
    assert_eq!(folded.outcomes, [(category("offers"), CategoryOutcome::AlreadyAwaitingConfirmation)]);
    let offers = &replay(&[first.clone(), newer.clone()])[&category("offers")];
    assert_eq!((offers.status, offers.since), (ConsentStatus::PendingConfirmation, at(50)));
    assert_eq!(offers.event_id, EventId::from_uuid(Uuid::from_u128(2)));
    // An older request recorded late changes nothing.
    let late = pending_opt_in(3, 10, &["offers"]);
    let folded = apply(&replay(&[first, newer]), &late);
    assert!(folded.changed.is_empty(), "{folded:?}");
}

#[test]
fn a_confirmation_changes_only_pending_categories_and_an_opt_out_cancels_a_pending_one() {
    let state = replay(&[opt_in(1, 0, 0, &["offers"]), pending_opt_in(2, 5, &["news"])]);
    let folded = apply(&state, &confirmation(3, 10, &["offers"]));
    assert_eq!(folded.outcomes, [(category("offers"), CategoryOutcome::NothingToConfirm)]);
    assert!(folded.changed.is_empty());
    let cancelled =
        replay(&[pending_opt_in(1, 0, &["news"]), opt_out(2, 5, &["news"]), confirmation(3, 10, &["news"])]);
    assert_eq!(statuses(&cancelled), [("news", ConsentStatus::OptedOut)]);
}

#[test]
fn an_implied_opt_in_keeps_its_basis_and_sets_the_implied_bit() {
    let mut event = opt_in(1, 100, 100, &["offers"]);
    if let ConsentChange::OptIn(opt_in) = &mut event.change {
        opt_in.basis = ConsentBasis::ImpliedPurchase;
        opt_in.basis_at = Some(at(50));
    }
    let state = replay(std::slice::from_ref(&event));
    assert_eq!(state[&category("offers")].basis, Some((ConsentBasis::ImpliedPurchase, at(50))));
    let mut bits = ConsentBits::default();
    bits.set(0b10, ConsentStatus::OptedIn, Some(ConsentBasis::ImpliedPurchase));
    assert_eq!((bits.opted_in, bits.implied), (0b10, 0b10));
    bits.set(0b10, ConsentStatus::OptedOut, None);
    assert_eq!(bits, ConsentBits { opted_out: 0b10, ..ConsentBits::default() });
    // Serialized, an express opt-in has no basis fields, so older events hash as they did.
    let express = serde_json::to_value(opt_in(2, 0, 0, &["offers"])).unwrap();
    assert!(express.get("basis").is_none() && express.get("needs_confirmation").is_none());
    let implied = serde_json::to_value(&event).unwrap();
    assert_eq!(implied["basis"], "implied_purchase");
}
