use super::*;

/// The error code and message for a policy file.
fn refused(text: &str) -> (&'static str, String) {
    let error = JurisdictionPolicy::from_toml(text).expect_err("the policy should be refused");
    (error.code(), error.to_string())
}

#[test]
fn the_shipped_file_and_an_empty_business_file_agree() {
    let empty = policy("");
    let shipped = JurisdictionPolicy::shipped();
    for e164 in ["+13055550100", "+12125550100", "+14165550100", "+4915123456789"] {
        let place = place(e164);
        let kind = TemplateCategory::Marketing;
        assert_eq!(empty.quiet_hours(&place, kind), shipped.quiet_hours(&place, kind), "{e164}");
        assert_eq!(empty.frequency_cap(&place, kind), shipped.frequency_cap(&place, kind), "{e164}");
        assert_eq!(empty.expects_double_opt_in(&place), shipped.expects_double_opt_in(&place), "{e164}");
    }
}

#[test]
fn a_region_rule_overrides_the_shipped_one_and_keeps_its_other_rules() {
    let own = policy("[region.US-FL]\nquiet_hours = { start = \"09:00\", end = \"19:00\" }");
    let miami = place("+13055550100");
    assert_eq!(own.quiet_hours(&miami, TemplateCategory::Marketing).unwrap().to_string(), "09:00-19:00");
    assert!(own.frequency_cap(&miami, TemplateCategory::Marketing).is_some());
    // `false` means no window there, not "ask the country": Florida is then unrestricted.
    let own = policy("[region.US-FL]\nquiet_hours = false");
    assert_eq!(own.quiet_hours(&miami, TemplateCategory::Marketing), None);
    assert!(own.quiet_hours(&place("+12125550100"), TemplateCategory::Marketing).is_some());
    let own = policy("[country.US]\nquiet_hours = false");
    assert_eq!(own.quiet_hours(&place("+12125550100"), TemplateCategory::Marketing), None);
    // A business may add a state the shipped file leaves out.
    let own = policy("[region.US-CT]\nquiet_hours = { start = \"09:00\", end = \"20:00\" }");
    assert_eq!(
        own.quiet_hours(&place("+12035550100"), TemplateCategory::Marketing).unwrap().to_string(),
        "09:00-20:00"
    );
}

#[test]
fn bad_keys_and_values_are_refused_with_the_key_named() {
    let cases = [
        (
            "[region.US-FL]\nquiet_hours = { start = \"8am\", end = \"20:00\" }",
            "policy_invalid_time",
            "region.US-FL.quiet_hours.start",
        ),
        (
            "[default]\nquiet_hours = { start = \"08:00\", end = \"24:01\" }",
            "policy_invalid_time",
            "default.quiet_hours.end",
        ),
        (
            "[country.US]\nquiet_hours = { start = \"21:00\", end = \"08:00\" }",
            "policy_empty_window",
            "country.US.quiet_hours",
        ),
        (
            "[country.US]\nquiet_hours = { start = \"08:00\", end = \"21:00\", days = [] }",
            "policy_empty_window",
            "country.US.quiet_hours",
        ),
        (
            "[country.US]\nquiet_hours = { start = \"08:00\", end = \"21:00\", days = [\"funday\"] }",
            "policy_invalid_weekday",
            "country.US.quiet_hours.days",
        ),
        ("[country.us]\ndouble_opt_in = true", "policy_unknown_country", "country.us"),
        ("[country.ZZ]\ndouble_opt_in = true", "policy_unknown_country", "country.ZZ"),
        ("[region.US-XX]\ndouble_opt_in = true", "policy_unknown_region", "region.US-XX"),
        ("[region.CA-NS]\ndouble_opt_in = true", "policy_unknown_region", "region.CA-NS"),
        (
            "[region.US-FL]\nfrequency_cap = { max = 0, per = \"24h\" }",
            "policy_invalid_cap",
            "region.US-FL.frequency_cap.max",
        ),
        (
            "[region.US-FL]\nfrequency_cap = { max = 3, per = \"a day\" }",
            "policy_invalid_duration",
            "region.US-FL.frequency_cap.per",
        ),
        (
            "[region.US-FL]\nfrequency_cap = { max = 3, per = \"-24h\" }",
            "policy_invalid_duration",
            "region.US-FL.frequency_cap.per",
        ),
        (
            "[country.CA.consent_lifetime]\nimplied_purchase = \"two years\"",
            "policy_invalid_duration",
            "country.CA.consent_lifetime.implied_purchase",
        ),
        ("[default]\napplies_to = [\"promotions\"]", "policy_unknown_category", "default.applies_to"),
    ];
    for (text, code, key) in cases {
        let (actual_code, message) = refused(text);
        assert_eq!(actual_code, code, "{text}: {message}");
        assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
    }
}

#[test]
fn schema_errors_name_the_key_and_line() {
    let (code, message) =
        refused("[default]\ndouble_opt_in = true\n\n[region.US-FL]\nquiet_hour = { start = \"08:00\" }");
    assert_eq!(code, "policy_syntax");
    assert!(message.contains("line 5") && message.contains("quiet_hour"), "{message}");
    let (code, message) = refused("[region.US-FL]\nquiet_hours = true");
    assert_eq!(code, "policy_syntax");
    assert!(message.contains("line 2") && message.contains("`false` to turn the rule off"), "{message}");
    let (code, message) = refused("[region.US-FL]\nquiet_hours = { start = \"08:00\" }");
    assert_eq!(code, "policy_syntax");
    assert!(message.contains("end"), "{message}");
    let (code, message) = refused("[region.US-FL]\nfrequency_cap = { max = -1, per = \"24h\" }");
    assert_eq!(code, "policy_syntax");
    assert!(message.contains("line 2"), "{message}");
    assert_eq!(refused("[planet.Mars]").0, "policy_syntax");
    assert_eq!(refused("not toml at all").0, "policy_syntax");
}

#[test]
fn time_zones_come_from_the_bundled_database() {
    assert_eq!(time_zone("America/Sao_Paulo").unwrap().iana_name(), Some("America/Sao_Paulo"));
    let error = time_zone("Mars/Olympus_Mons").unwrap_err();
    assert_eq!(error.code(), "unknown_time_zone");
}
