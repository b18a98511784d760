//! Contract stories for audience filtering: consent read for many contacts at once, and the
//! audience use case on top of it.

use optin_core::consent::ConsentBits;
use optin_core::phone::Region;

use super::{NOTICE, new_business, now, opt_out, phone, web_form_opt_in};
use crate::Store;
use crate::audience::{Audience, AudienceMessage, AudienceRequest};
use crate::intake::{record_opt_in, record_opt_out, register_notice};

pub(super) async fn run_batch_stories(store: &dyn Store) {
    consent_of_many_contacts_is_read_in_the_order_given(store).await;
    audiences_are_decided_in_order_and_each_person_once(store).await;
}

async fn consent_of_many_contacts_is_read_in_the_order_given(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let rival = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    for number in ["+14155550201", "+14155550202"] {
        record_opt_in(store, &business, web_form_opt_in(number, &["offers", "order_updates"], notice.id), now())
            .await
            .unwrap();
    }
    record_opt_out(store, &business, opt_out("+14155550202", Some(&["offers"])), now()).await.unwrap();

    let asked = ["+14155550202", "+14155550299", "+14155550201", "+14155550202"].map(phone);
    let bits = store.consent_bits_many(&business, &asked).await.unwrap();
    let both = ConsentBits { opted_in: 0b11, opted_out: 0, ..ConsentBits::default() };
    let offers_out = ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() };
    assert_eq!(bits, [offers_out, ConsentBits::default(), both, offers_out], "in order, repeats answered again");
    for (number, one) in asked.iter().zip(&bits) {
        assert_eq!(store.consent_bits(&business, *number).await.unwrap(), *one, "the same answer as one by one");
    }
    assert_eq!(store.consent_bits_many(&business, &[]).await.unwrap(), []);
    let foreign = store.consent_bits_many(&rival, &asked).await.unwrap();
    assert!(foreign.iter().all(|b| *b == ConsentBits::default()), "another business sees nothing");
}

async fn audiences_are_decided_in_order_and_each_person_once(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    record_opt_in(store, &business, web_form_opt_in("+14155550301", &["offers"], notice.id), now()).await.unwrap();
    record_opt_in(store, &business, web_form_opt_in("+14155550302", &["offers"], notice.id), now()).await.unwrap();
    record_opt_out(store, &business, opt_out("+14155550302", None), now()).await.unwrap();

    let us = Some(Region::parse("US").unwrap());
    let offers = AudienceMessage::Category("offers");
    let request = |phone, region| AudienceRequest { phone, region, message: offers };
    // A daytime instant in the US: the story is about consent, not about quiet hours.
    let mut audience = Audience::new().sent_at("2026-06-10T18:00:00Z".parse().unwrap());
    let first = [
        request("+1 415 555 0301", None),
        request("+14155550302", None),
        request("not a number", None),
        request("+14155550399", None),
    ];
    let second = [
        request("(415) 555-0301", us),
        request("+14155550301", None),
        // Another message for the same number is not a duplicate.
        AudienceRequest { phone: "+14155550399", region: None, message: AudienceMessage::Category("nope") },
        AudienceRequest {
            phone: "+14155550377",
            region: None,
            message: AudienceMessage::Template { name: "missing", language: "en_US" },
        },
    ];
    let mut codes = Vec::new();
    for chunk in [&first[..], &second[..]] {
        for decided in audience.decide_chunk(store, &business, chunk).await.unwrap() {
            let phone = decided.phone.map(|p| p.e164()).unwrap_or_default();
            codes.push((phone, decided.decision.reasons.iter().map(|r| r.code()).collect::<Vec<_>>()));
        }
    }
    let expected: [(&str, &[&str]); 8] = [
        ("+14155550301", &[]),
        ("+14155550302", &["opted_out"]),
        ("", &["invalid_phone"]),
        ("+14155550399", &["no_opt_in"]),
        ("+14155550301", &["duplicate"]),
        ("+14155550301", &["duplicate"]),
        ("+14155550399", &["unknown_category"]),
        ("+14155550377", &["template_not_found"]),
    ];
    let expected: Vec<(String, Vec<&str>)> = expected.iter().map(|(p, c)| ((*p).to_owned(), c.to_vec())).collect();
    assert_eq!(codes, expected);
    assert_eq!(audience.distinct_numbers(), 3, "numbers are tracked per message that exists");
}
