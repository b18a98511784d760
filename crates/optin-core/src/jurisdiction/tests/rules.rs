use jiff::{SignedDuration, ToSpan};

use super::*;

#[test]
fn florida_oklahoma_and_maryland_cap_marketing_at_three_a_day() {
    let shipped = JurisdictionPolicy::shipped();
    let three_a_day = Some(Cap { max: 3, per: SignedDuration::from_hours(24) });
    for e164 in ["+13055550100", "+14055550100", "+14105550100", "+18505550100"] {
        assert_eq!(shipped.frequency_cap(&place(e164), TemplateCategory::Marketing), three_a_day, "{e164}");
        assert_eq!(shipped.frequency_cap(&place(e164), TemplateCategory::Utility), None, "{e164}");
    }
    for e164 in ["+12125550100", "+14165550100", "+4915123456789"] {
        assert_eq!(shipped.frequency_cap(&place(e164), TemplateCategory::Marketing), None, "{e164}");
    }
}

#[test]
fn a_business_can_remove_or_add_a_cap() {
    let own =
        policy("[region.US-FL]\nfrequency_cap = false\n[country.DE]\nfrequency_cap = { max = 2, per = \"168h\" }");
    assert_eq!(own.frequency_cap(&place("+13055550100"), TemplateCategory::Marketing), None);
    assert_eq!(
        own.frequency_cap(&place("+4915123456789"), TemplateCategory::Marketing),
        Some(Cap { max: 2, per: SignedDuration::from_hours(24 * 7) })
    );
    // Removing the cap leaves Florida's window alone.
    let window = own.quiet_hours(&place("+13055550100"), TemplateCategory::Marketing).unwrap();
    assert_eq!(window.to_string(), "08:00-20:00");
}

#[test]
fn canadian_implied_consent_lapses_and_express_consent_does_not() {
    let shipped = JurisdictionPolicy::shipped();
    let toronto = place("+14165550100");
    let given: Timestamp = "2024-02-29T15:00:00Z".parse().unwrap();
    let expires = |basis| shipped.consent_expires_at(&toronto, basis, given).map(|t| t.to_string());
    assert_eq!(expires(ConsentBasis::ImpliedPurchase).as_deref(), Some("2026-02-28T15:00:00Z"));
    assert_eq!(expires(ConsentBasis::ImpliedInquiry).as_deref(), Some("2024-08-29T15:00:00Z"));
    assert_eq!(expires(ConsentBasis::Express), None);
    assert_eq!(shipped.consent_lifetime(&toronto, ConsentBasis::ImpliedPurchase).unwrap().fieldwise(), 2.years());
    // The shared Nova Scotia code is Canadian too.
    assert!(shipped.consent_expires_at(&place("+19025550100"), ConsentBasis::ImpliedInquiry, given).is_some());
    for e164 in ["+12125550100", "+4915123456789"] {
        for basis in [ConsentBasis::Express, ConsentBasis::ImpliedPurchase, ConsentBasis::ImpliedInquiry] {
            assert_eq!(shipped.consent_expires_at(&place(e164), basis, given), None, "{e164} {basis:?}");
        }
    }
}

#[test]
fn a_business_can_shorten_a_lifetime_and_keep_the_others() {
    let own = policy(
        "[country.CA.consent_lifetime]\nimplied_inquiry = \"3mo\"\n[default.consent_lifetime]\nexpress = \"P5Y\"",
    );
    let toronto = place("+14165550100");
    assert_eq!(own.consent_lifetime(&toronto, ConsentBasis::ImpliedInquiry).unwrap().fieldwise(), 3.months());
    assert_eq!(own.consent_lifetime(&toronto, ConsentBasis::ImpliedPurchase).unwrap().fieldwise(), 2.years());
    // CA's shipped `express = "none"` is more specific than the business's [default].
    assert!(own.consent_lifetime(&toronto, ConsentBasis::Express).is_none());
    assert_eq!(own.consent_lifetime(&place("+12125550100"), ConsentBasis::Express).unwrap().fieldwise(), 5.years());
}

#[test]
fn germany_expects_double_opt_in_by_default_and_it_is_configurable() {
    let shipped = JurisdictionPolicy::shipped();
    assert!(shipped.expects_double_opt_in(&place("+4915123456789")));
    assert!(!shipped.expects_double_opt_in(&place("+12125550100")));
    let own = policy("[country.DE]\ndouble_opt_in = false\n[country.AT]\ndouble_opt_in = true");
    assert!(!own.expects_double_opt_in(&place("+4915123456789")));
    assert!(own.expects_double_opt_in(&place("+436641234567")));
    assert!(policy("[default]\ndouble_opt_in = true").expects_double_opt_in(&place("+12125550100")));
}

#[test]
fn consent_basis_round_trips_through_its_name() {
    for basis in [ConsentBasis::Express, ConsentBasis::ImpliedPurchase, ConsentBasis::ImpliedInquiry] {
        assert_eq!(ConsentBasis::parse(basis.as_str()), Some(basis));
    }
    assert_eq!(ConsentBasis::parse("implied"), None);
}
