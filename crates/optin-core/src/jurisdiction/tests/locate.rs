use super::*;

fn zone_names(place: &Place) -> Vec<&'static str> {
    place.time_zone().zones().iter().map(|zone| zone.iana_name().unwrap()).collect()
}

fn located(e164: &str) -> (String, Option<&'static str>, Vec<&'static str>) {
    let place = place(e164);
    (place.country().as_str(), place.region(), zone_names(&place))
}

#[test]
fn us_and_canadian_area_codes_give_state_province_and_zone() {
    let cases = [
        ("+13055550100", "US", Some("US-FL"), "America/New_York"), // Miami
        ("+17865550100", "US", Some("US-FL"), "America/New_York"), // Miami overlay
        ("+12125550100", "US", Some("US-NY"), "America/New_York"),
        ("+12135550100", "US", Some("US-CA"), "America/Los_Angeles"),
        ("+13105550100", "US", Some("US-CA"), "America/Los_Angeles"),
        ("+13125550100", "US", Some("US-IL"), "America/Chicago"),
        ("+16025550100", "US", Some("US-AZ"), "America/Phoenix"),
        ("+18085550100", "US", Some("US-HI"), "Pacific/Honolulu"),
        ("+12025550100", "US", Some("US-DC"), "America/New_York"),
        ("+14055550100", "US", Some("US-OK"), "America/Chicago"),
        ("+14105550100", "US", Some("US-MD"), "America/New_York"),
        ("+14165550100", "CA", Some("CA-ON"), "America/Toronto"),
        ("+15145550100", "CA", Some("CA-QC"), "America/Toronto"),
        ("+16045550100", "CA", Some("CA-BC"), "America/Vancouver"),
        ("+14035550100", "CA", Some("CA-AB"), "America/Edmonton"),
        ("+12045550100", "CA", Some("CA-MB"), "America/Winnipeg"),
        ("+13065550100", "CA", Some("CA-SK"), "America/Regina"),
        ("+15065550100", "CA", Some("CA-NB"), "America/Halifax"),
    ];
    for (e164, country, region, zone) in cases {
        assert_eq!(located(e164), (country.to_owned(), region, vec![zone]), "{e164}");
        assert!(matches!(place(e164).time_zone(), ZoneChoice::Known(_)), "{e164}");
    }
}

#[test]
fn an_area_code_across_a_zone_line_keeps_every_zone() {
    // Florida's panhandle (850) is partly Central, partly Eastern.
    assert_eq!(located("+18505550100"), ("US".to_owned(), Some("US-FL"), vec!["America/Chicago", "America/New_York"]));
    assert!(matches!(place("+18505550100").time_zone(), ZoneChoice::Ambiguous(_)));
}

#[test]
fn nanp_countries_and_shared_canadian_codes_have_no_region() {
    assert_eq!(located("+17875550100"), ("PR".to_owned(), None, vec!["America/Puerto_Rico"]));
    assert_eq!(located("+18765550100"), ("JM".to_owned(), None, vec!["America/Jamaica"]));
    assert_eq!(located("+18095550100"), ("DO".to_owned(), None, vec!["America/Santo_Domingo"]));
    assert_eq!(located("+19025550100"), ("CA".to_owned(), None, vec!["America/Halifax"]));
}

#[test]
fn an_unknown_area_code_is_somewhere_in_the_us() {
    let place = place("+15555550100");
    assert_eq!((place.country_code(), place.region()), ("US", None));
    let zones = zone_names(&place);
    assert!(zones.contains(&"America/New_York") && zones.contains(&"Pacific/Honolulu"), "{zones:?}");
}

#[test]
fn every_state_dc_and_the_main_provinces_are_locatable() {
    let states = "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND \
                  OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC";
    for state in states.split_whitespace() {
        assert!(place::is_locatable_region(&format!("US-{state}")), "US-{state}");
    }
    for province in ["ON", "QC", "BC", "AB", "MB", "SK", "NB", "NL"] {
        assert!(place::is_locatable_region(&format!("CA-{province}")), "CA-{province}");
    }
}

#[test]
fn one_zone_countries_are_known_and_many_zone_countries_list_their_zones() {
    assert_eq!(located("+4915123456789"), ("DE".to_owned(), None, vec!["Europe/Berlin"]));
    assert_eq!(located("+919876543210"), ("IN".to_owned(), None, vec!["Asia/Kolkata"]));
    let (country, region, zones) = located("+5511912345678");
    assert_eq!((country.as_str(), region), ("BR", None));
    assert_eq!(zones, ["America/Sao_Paulo", "America/Manaus", "America/Rio_Branco", "America/Noronha"]);
    for (e164, country) in
        [("+79161234567", "RU"), ("+61412345678", "AU"), ("+5215512345678", "MX"), ("+6281234567890", "ID")]
    {
        let place = place(e164);
        assert_eq!(place.country_code(), country);
        assert!(matches!(place.time_zone(), ZoneChoice::Ambiguous(zones) if zones.len() > 1), "{e164}");
    }
}

#[test]
fn shared_calling_codes_pick_the_country_by_prefix() {
    assert_eq!(located("+77011234567").0, "KZ");
    assert_eq!(located("+79161234567").0, "RU");
    assert_eq!(located("+447624123456").0, "IM");
    assert_eq!(located("+447700900123").0, "GB");
    assert_eq!(located("+358181234567").0, "AX");
    assert_eq!(located("+358401234567").0, "FI");
    assert_eq!(located("+262639123456").0, "YT");
    assert_eq!(located("+262692123456").0, "RE");
}

#[test]
fn international_services_have_no_place() {
    for e164 in ["+80012345678", "+882123456789", "+99912345678"] {
        assert_eq!(locate(&PhoneNumber::from_e164(e164).unwrap()), None, "{e164}");
    }
}

#[test]
fn every_calling_code_of_a_country_is_located() {
    use phonenumber::metadata::DATABASE;
    for code in 1..=999u16 {
        let Some(regions) = DATABASE.region(&code) else { continue };
        if regions.iter().all(|region| *region == "001") {
            continue;
        }
        let e164 = format!("+{code}{}", "2".repeat(10 - code.to_string().len()));
        let place = locate(&PhoneNumber::from_e164(&e164).unwrap()).unwrap_or_else(|| panic!("+{code} {regions:?}"));
        assert!(regions.contains(&place.country_code()), "+{code}: {} not in {regions:?}", place.country_code());
    }
}
