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
    assert_eq!(ConsentBits::from_state(&business, &state), ConsentBits { opted_in: 0b01, opted_out: 0b10 });
}

#[test]
fn events_serialize_with_e164_and_kind() {
    let json = serde_json::to_value(opt_out(1, 0, &["offers"])).unwrap();
    assert_eq!(json["phone"], "+14155552671");
    assert_eq!(json["kind"], "opt_out");
    let back: ConsentEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, opt_out(1, 0, &["offers"]));
}
