use super::*;

const MIAMI: &str = "+13055550100";
const NEW_YORK: &str = "+12125550100";
const LOS_ANGELES: &str = "+13105550100";
const HONOLULU: &str = "+18085550100";
const PANHANDLE: &str = "+18505550100";
const TORONTO: &str = "+14165550100";
const BERLIN: &str = "+4915123456789";
const SAO_PAULO: &str = "+5511912345678";
const NY_ZONE: &str = "America/New_York";

fn shipped_retry(e164: &str, zone: &str, at: &str) -> String {
    retry(&marketing(JurisdictionPolicy::shipped(), &place(e164), local(zone, at)), zone)
}

#[test]
fn florida_evening_is_refused_until_eight_the_next_morning_across_spring_forward() {
    // US DST starts at 02:00 on 2026-03-08: the next 08:00 is EDT (-04:00), 23 hours of wall clock away.
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-03-07T20:30"), "2026-03-08T08:00:00-04:00");
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-03-07T19:59"), "allowed");
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-03-08T07:59"), "2026-03-08T08:00:00-04:00");
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-03-08T03:30"), "2026-03-08T08:00:00-04:00");
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-03-08T08:00"), "allowed");
}

#[test]
fn florida_evening_is_refused_until_eight_the_next_morning_across_fall_back() {
    // US DST ends at 02:00 on 2026-11-01: the next 08:00 is EST (-05:00).
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-10-31T20:30"), "2026-11-01T08:00:00-05:00");
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-11-01T01:30"), "2026-11-01T08:00:00-05:00");
    assert_eq!(shipped_retry(MIAMI, NY_ZONE, "2026-11-01T07:59"), "2026-11-01T08:00:00-05:00");
    let utc = marketing(JurisdictionPolicy::shipped(), &place(MIAMI), local(NY_ZONE, "2026-10-31T20:30"));
    assert_eq!(retry(&utc, "UTC"), "2026-11-01T13:00:00+00:00");
}

#[test]
fn the_federal_window_runs_to_nine_outside_florida_oklahoma_and_maryland() {
    assert_eq!(shipped_retry(NEW_YORK, NY_ZONE, "2026-03-07T20:30"), "allowed");
    assert_eq!(shipped_retry(NEW_YORK, NY_ZONE, "2026-03-07T21:00"), "2026-03-08T08:00:00-04:00");
    assert_eq!(shipped_retry("+14055550100", "America/Chicago", "2026-06-01T20:00"), "2026-06-02T08:00:00-05:00");
    assert_eq!(shipped_retry("+14105550100", NY_ZONE, "2026-06-01T20:00"), "2026-06-02T08:00:00-04:00");
}

#[test]
fn each_recipient_is_judged_in_their_own_zone() {
    // 11:30 UTC on the morning of the spring change: 07:30 in New York, 04:30 in Los Angeles, 01:30 in Honolulu.
    let at: Timestamp = "2026-03-08T11:30:00Z".parse().unwrap();
    let check = |e164: &str, zone: &str| retry(&marketing(JurisdictionPolicy::shipped(), &place(e164), at), zone);
    assert_eq!(check(NEW_YORK, NY_ZONE), "2026-03-08T08:00:00-04:00");
    assert_eq!(check(LOS_ANGELES, "America/Los_Angeles"), "2026-03-08T08:00:00-07:00");
    // Hawaii keeps no DST: 08:00 HST is 18:00 UTC all year.
    assert_eq!(check(HONOLULU, "Pacific/Honolulu"), "2026-03-08T08:00:00-10:00");
    let at: Timestamp = "2026-03-08T18:00:00Z".parse().unwrap();
    assert_eq!(retry(&marketing(JurisdictionPolicy::shipped(), &place(HONOLULU), at), "UTC"), "allowed");
}

#[test]
fn an_area_code_across_a_zone_line_must_be_inside_the_window_in_both_zones() {
    // 850: 19:30 Central is 20:30 Eastern, past Florida's 20:00.
    assert_eq!(shipped_retry(PANHANDLE, "America/Chicago", "2026-06-01T19:30"), "2026-06-02T08:00:00-05:00");
    // 07:30 Central is 08:30 Eastern, but still early in Central.
    assert_eq!(shipped_retry(PANHANDLE, "America/Chicago", "2026-06-01T07:30"), "2026-06-01T08:00:00-05:00");
    // A business in Pensacola that says its recipients are on Central time is judged on Central only.
    let chicago = time_zone("America/Chicago").unwrap();
    let at = local("America/Chicago", "2026-06-01T19:30");
    assert_eq!(
        JurisdictionPolicy::shipped().check(&place(PANHANDLE), TemplateCategory::Marketing, at, Some(&chicago)),
        []
    );
}

#[test]
fn canada_and_germany_have_no_shipped_quiet_hours_but_a_business_can_add_them() {
    let at = local("America/Toronto", "2026-06-01T03:00");
    assert_eq!(marketing(JurisdictionPolicy::shipped(), &place(TORONTO), at), []);
    let own = policy("[country.CA]\nquiet_hours = { start = \"09:00\", end = \"20:00\" }");
    assert_eq!(retry(&marketing(&own, &place(TORONTO), at), "America/Toronto"), "2026-06-01T09:00:00-04:00");

    // Mon-Sat only, across the EU spring change (2026-03-29, a Sunday): Saturday evening waits for Monday CEST.
    let own = policy(
        "[default]\nquiet_hours = { start = \"09:00\", end = \"20:00\", days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\"] }",
    );
    let berlin = |at: &str| retry(&marketing(&own, &place(BERLIN), local("Europe/Berlin", at)), "Europe/Berlin");
    assert_eq!(berlin("2026-03-28T20:30"), "2026-03-30T09:00:00+02:00");
    assert_eq!(berlin("2026-03-29T12:00"), "2026-03-30T09:00:00+02:00");
    assert_eq!(berlin("2026-03-28T19:00"), "allowed");
    // The business [default] does not reach the US, which has its own shipped window.
    assert_eq!(shipped_retry(NEW_YORK, NY_ZONE, "2026-03-29T20:30"), "allowed");
    assert_eq!(retry(&marketing(&own, &place(NEW_YORK), local(NY_ZONE, "2026-03-29T20:30")), NY_ZONE), "allowed");
}

#[test]
fn a_many_zone_country_takes_the_most_restrictive_zone_unless_the_business_names_one() {
    let own = policy("[country.BR]\nquiet_hours = { start = \"08:00\", end = \"21:00\" }");
    let brazil = place(SAO_PAULO);
    // 08:30 in São Paulo is 07:30 in Manaus and 06:30 in Acre (Rio Branco, UTC-5).
    let morning = local("America/Sao_Paulo", "2026-06-01T08:30");
    assert_eq!(retry(&marketing(&own, &brazil, morning), "America/Sao_Paulo"), "2026-06-01T10:00:00-03:00");
    // 20:30 in São Paulo is 21:30 on Fernando de Noronha (UTC-2).
    let evening = local("America/Sao_Paulo", "2026-06-01T20:30");
    assert_eq!(retry(&marketing(&own, &brazil, evening), "America/Sao_Paulo"), "2026-06-02T10:00:00-03:00");

    let sao_paulo = time_zone("America/Sao_Paulo").unwrap();
    for at in [morning, evening] {
        assert_eq!(own.check(&brazil, TemplateCategory::Marketing, at, Some(&sao_paulo)), []);
    }
    // A default zone outside the country says nothing about it.
    let berlin = time_zone("Europe/Berlin").unwrap();
    assert_eq!(own.check(&brazil, TemplateCategory::Marketing, morning, Some(&berlin)).len(), 1);
}

#[test]
fn zones_too_far_apart_for_a_short_window_have_no_retry_time() {
    // Kaliningrad (UTC+2) and Kamchatka (UTC+12) never share 09:00-10:00.
    let own = policy("[country.RU]\nquiet_hours = { start = \"09:00\", end = \"10:00\" }");
    let outcomes = marketing(&own, &place("+79161234567"), "2026-06-01T06:00:00Z".parse().unwrap());
    assert!(matches!(outcomes.as_slice(), [RuleOutcome::QuietHours { retry_after: None, .. }]), "{outcomes:?}");
}

#[test]
fn quiet_hours_apply_to_marketing_only_unless_configured() {
    let at = local(NY_ZONE, "2026-03-07T22:00");
    let shipped = JurisdictionPolicy::shipped();
    for category in [TemplateCategory::Utility, TemplateCategory::Authentication] {
        assert_eq!(shipped.check(&place(MIAMI), category, at, None), []);
    }
    let own = policy("[default]\napplies_to = [\"marketing\", \"utility\"]");
    assert_eq!(own.check(&place(MIAMI), TemplateCategory::Utility, at, None).len(), 1);
    assert_eq!(own.check(&place(MIAMI), TemplateCategory::Authentication, at, None), []);
    let none = policy("[country.US]\napplies_to = []");
    assert_eq!(none.check(&place(MIAMI), TemplateCategory::Marketing, at, None), []);
}

#[test]
fn the_outcome_names_its_window_and_code() {
    let outcomes = marketing(JurisdictionPolicy::shipped(), &place(MIAMI), local(NY_ZONE, "2026-03-07T20:30"));
    let [outcome @ RuleOutcome::QuietHours { window, .. }] = outcomes.as_slice() else { panic!("{outcomes:?}") };
    assert_eq!(outcome.code(), "quiet_hours");
    assert_eq!(window.to_string(), "08:00-20:00");
    let weekdays =
        policy("[default]\nquiet_hours = { start = \"9:00\", end = \"24:00\", days = [\"Monday\", \"fri\"] }");
    assert_eq!(
        weekdays.quiet_hours(&place(BERLIN), TemplateCategory::Marketing).unwrap().to_string(),
        "09:00-24:00 mon,fri"
    );
}
