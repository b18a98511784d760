use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const RESPONSE: &str = include_str!("fixtures/message_templates_response.json");
const ARRAY: &str = include_str!("fixtures/template_array.json");
const SINGLE: &str = include_str!("fixtures/single_template.json");
const ITEM_PROBLEMS: &str = include_str!("fixtures/item_problems.json");

fn parse(json: &str) -> ParsedTemplates {
    parse_templates(json.as_bytes()).unwrap()
}

fn template<'a>(parsed: &'a ParsedTemplates, name: &str) -> &'a Template {
    parsed.templates.iter().find(|t| t.name.as_str() == name).unwrap_or_else(|| panic!("no template {name}"))
}

fn warning_codes(template: &Template) -> Vec<&'static str> {
    lint(template).iter().map(TemplateWarning::code).collect()
}

fn import_error_code(json: &str) -> &'static str {
    parse_templates(json.as_bytes()).unwrap_err().code()
}

#[test]
fn template_names_follow_meta_rules() {
    for valid in ["order_update", "a", "promo_2025", "_", &"x".repeat(512)] {
        assert_eq!(TemplateName::parse(valid).unwrap().as_str(), valid);
    }
    for invalid in ["", "Order_update", "order-update", "order update", " order", "ordér", &"x".repeat(513)] {
        assert_eq!(TemplateName::parse(invalid).unwrap_err().code(), "invalid_template_name", "{invalid:?}");
    }
}

#[test]
fn languages_read_webhook_dashes_and_take_canonical_case() {
    for (input, expected) in [
        ("en", "en"),
        ("en_US", "en_US"),
        ("en-US", "en_US"),
        ("EN_us", "en_US"),
        ("pt_BR", "pt_BR"),
        ("fil", "fil"),
        ("zh_Hant_HK", "zh_Hant_HK"),
        ("zh-hant-hk", "zh_Hant_HK"),
        ("es_419", "es_419"),
    ] {
        assert_eq!(TemplateLanguage::parse(input).unwrap().as_str(), expected, "{input:?}");
    }
    for invalid in ["", "e", "engl", "en_", "en__US", "en_U", "en_USAAA", "en_US_x", "en_Hant_HK_x", "en US", "1n"] {
        assert_eq!(TemplateLanguage::parse(invalid).unwrap_err().code(), "invalid_template_language", "{invalid:?}");
    }
}

#[test]
fn statuses_round_trip_and_only_approved_is_sendable() {
    for status in TemplateStatus::KNOWN {
        assert_eq!(TemplateStatus::parse(status.as_str()), status);
        assert_eq!(TemplateStatus::from_webhook_event(status.as_str()), status);
        assert_eq!(status.is_sendable(), status == TemplateStatus::Approved);
    }
    assert_eq!(TemplateStatus::parse(" in_appeal "), TemplateStatus::InAppeal);
    assert_eq!(TemplateStatus::from_webhook_event("REINSTATED"), TemplateStatus::Reinstated);
    let unknown = TemplateStatus::parse("under_review");
    assert_eq!(unknown, TemplateStatus::Other("UNDER_REVIEW".to_owned()));
    assert!(!unknown.is_sendable());
    assert_eq!(TemplateStatus::parse(&"x".repeat(1000)).as_str().len(), 64);
}

#[test]
fn quality_scores_read_strings_and_objects() {
    assert_eq!(QualityScore::parse("GREEN"), QualityScore::Green);
    assert_eq!(QualityScore::parse("yellow"), QualityScore::Yellow);
    assert_eq!(QualityScore::parse("PURPLE"), QualityScore::Unknown);
    let from = |value: Value| serde_json::from_value::<QualityScore>(value).unwrap();
    assert_eq!(from(json!("RED")), QualityScore::Red);
    assert_eq!(from(json!({"score": "GREEN", "date": 1758754645})), QualityScore::Green);
    assert_eq!(from(json!({"date": 1758754645})), QualityScore::Unknown);
    assert!(serde_json::from_value::<QualityScore>(json!(3)).is_err());
}

#[test]
fn the_cloud_api_response_is_read_in_full() {
    let parsed = parse(RESPONSE);
    assert_eq!(parsed.problems, []);
    let names: Vec<&str> = parsed.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["spring_sale", "weekly_offers", "ofertas_de_la_semana", "order_update"]);
    let spring_sale = template(&parsed, "spring_sale");
    assert_eq!(spring_sale.category, TemplateCategory::Marketing);
    assert_eq!(spring_sale.status, TemplateStatus::Approved);
    assert_eq!(spring_sale.platform_id.as_deref(), Some("1689556908129832"));
    assert_eq!(spring_sale.quality, None);
    assert_eq!(spring_sale.components.as_array().map(Vec::len), Some(4));
    assert_eq!(template(&parsed, "weekly_offers").quality, Some(QualityScore::Yellow));
    let order_update = template(&parsed, "order_update");
    assert_eq!(order_update.platform_id.as_deref(), Some("2077139982661428"));
    assert_eq!(order_update.quality, Some(QualityScore::Green));
    assert_eq!(order_update.linked_category, None);
}

#[test]
fn a_bare_array_is_read_with_any_case() {
    let parsed = parse(ARRAY);
    assert_eq!(parsed.problems, []);
    let back_in_stock = template(&parsed, "back_in_stock");
    assert_eq!(back_in_stock.language.as_str(), "pt_BR");
    assert_eq!(back_in_stock.category, TemplateCategory::Marketing);
    assert_eq!(back_in_stock.status, TemplateStatus::Approved);
    assert_eq!(back_in_stock.linked_category.as_ref().map(CategoryName::as_str), Some("offers"));
    assert_eq!(template(&parsed, "login_code").category, TemplateCategory::Authentication);
}

#[test]
fn one_template_object_is_read_as_a_list_of_one() {
    let parsed = parse(SINGLE);
    assert_eq!(parsed.problems, []);
    let [reminder] = parsed.templates.as_slice() else { panic!("expected one template: {parsed:?}") };
    assert_eq!(reminder.language.as_str(), "en_US");
    assert_eq!(reminder.status, TemplateStatus::Paused);
    assert!(!reminder.status.is_sendable());
    assert_eq!(reminder.quality, Some(QualityScore::Red));
    assert_eq!(reminder.linked_category.as_ref().map(CategoryName::as_str), Some("appointments"));
}

#[test]
fn item_problems_are_reported_without_stopping_other_items() {
    let parsed = parse(ITEM_PROBLEMS);
    let problems: Vec<(usize, Option<&str>, &str)> =
        parsed.problems.iter().map(|p| (p.index, p.name.as_deref(), p.code)).collect();
    assert_eq!(
        problems,
        [
            (1, Some("Order-Update"), "invalid_template_name"),
            (2, None, "invalid_template_name"),
            (3, Some("welcome"), "invalid_template_language"),
            (4, Some("welcome"), "unknown_template_category"),
            (5, Some("welcome"), "invalid_category_name"),
            (6, Some("order_update"), "duplicate_template"),
            (7, None, "invalid_template"),
            (8, Some("welcome"), "invalid_template"),
            (9, Some("welcome"), "invalid_template"),
            (10, Some("Bad Name"), "invalid_template_name"),
            (10, Some("Bad Name"), "invalid_template_language"),
            (10, Some("Bad Name"), "unknown_template_category"),
        ]
    );
    assert!(parsed.problems[5].detail.contains("item 0"), "{}", parsed.problems[5].detail);
    assert!(parsed.problems[8].detail.contains("`status`"), "{}", parsed.problems[8].detail);
    let kept: Vec<(&str, &str)> = parsed.templates.iter().map(|t| (t.name.as_str(), t.status.as_str())).collect();
    assert_eq!(kept, [("order_update", "APPROVED"), ("welcome", "NEW_STATUS")]);
    assert_eq!(parsed.templates[1].platform_id.as_deref(), Some("42"));
}

#[test]
fn the_captured_stop_promotions_template_passes_lint() {
    let parsed = parse(RESPONSE);
    assert_eq!(warning_codes(template(&parsed, "spring_sale")), Vec::<&str>::new());
}

#[test]
fn a_marketing_template_without_opt_out_is_flagged() {
    let parsed = parse(RESPONSE);
    let weekly_offers = template(&parsed, "weekly_offers");
    assert_eq!(warning_codes(weekly_offers), ["marketing_template_without_opt_out"]);
    assert!(TemplateWarning::MarketingWithoutOptOut.detail().contains("Stop promotions"));
}

#[test]
fn a_spanish_opt_out_footer_passes_lint() {
    let parsed = parse(RESPONSE);
    assert_eq!(warning_codes(template(&parsed, "ofertas_de_la_semana")), Vec::<&str>::new());
}

#[test]
fn utility_and_authentication_templates_are_not_linted() {
    assert_eq!(warning_codes(template(&parse(RESPONSE), "order_update")), Vec::<&str>::new());
    assert_eq!(warning_codes(template(&parse(ARRAY), "login_code")), Vec::<&str>::new());
}

#[test]
fn lint_reads_lower_case_types_and_localized_stop_buttons() {
    assert_eq!(warning_codes(template(&parse(ARRAY), "back_in_stock")), Vec::<&str>::new());
}

#[test]
fn a_stop_label_on_a_non_quick_reply_button_does_not_count() {
    let json = json!({
        "name": "promo", "language": "en", "category": "MARKETING", "status": "APPROVED",
        "components": [
            { "type": "BODY", "text": "Big sale today" },
            { "type": "BUTTONS", "buttons": [{ "type": "URL", "text": "Stop promotions", "url": "https://x.example" }] },
            { "type": "HEADER", "format": "TEXT", "text": "Reply STOP to unsubscribe" }
        ]
    });
    let parsed = parse(&json.to_string());
    assert_eq!(warning_codes(&parsed.templates[0]), ["marketing_template_without_opt_out"]);
}

#[test]
fn templates_serialize_with_upper_case_statuses_and_scores() {
    let parsed = parse(SINGLE);
    assert_eq!(
        serde_json::to_value(&parsed.templates[0]).unwrap(),
        json!({
            "name": "appointment_reminder",
            "language": "en_US",
            "category": "utility",
            "status": "PAUSED",
            "quality": "RED",
            "platform_id": "1023456789012345",
            "components": [{ "type": "BODY", "text": "Reminder: your appointment is tomorrow at {{1}}." }],
            "linked_category": "appointments"
        })
    );
    assert_eq!(serde_json::to_value(TemplateStatus::Other("NEW".to_owned())).unwrap(), json!("NEW"));
    assert_eq!(serde_json::from_value::<TemplateLanguage>(json!("en-GB")).unwrap().as_str(), "en_GB");
    assert!(serde_json::from_value::<TemplateName>(json!("Bad")).is_err());
}

#[test]
fn bad_json_is_refused_with_its_line_and_column() {
    let error = parse_templates(b"{\n  \"data\": [\n    { \"name\": }\n  ]\n}").unwrap_err();
    assert_eq!(error.code(), "invalid_json");
    let TemplateImportError::InvalidJson { line, column, .. } = &error else { panic!("{error:?}") };
    assert_eq!((*line, *column), (3, 15));
    assert!(error.to_string().ends_with("at line 3, column 15"), "{error}");
    assert!(!error.to_string().contains("column 15 at"), "{error}");
    assert_eq!(import_error_code(""), "invalid_json");
    assert_eq!(import_error_code("[] []"), "invalid_json");
    assert_eq!(parse_templates(b"[\"\xff\"]").unwrap_err().code(), "invalid_json");
}

#[test]
fn wrong_top_level_shapes_are_refused() {
    for json in ["\"templates\"", "42", "null", "true", r#"{"data": {}}"#, r#"{"data": null}"#] {
        let error = parse_templates(json.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "invalid_template_file", "{json}");
        assert!(error.to_string().contains("message_templates"), "{error}");
    }
    assert_eq!(parse("[]"), ParsedTemplates::default());
    assert_eq!(parse(r#"{"data": [], "paging": {}}"#), ParsedTemplates::default());
}

#[test]
fn more_than_five_thousand_templates_are_refused() {
    let items = |count: usize| format!("[{}]", vec!["{}"; count].join(","));
    let at_the_limit = parse(&items(MAX_TEMPLATES_PER_IMPORT));
    assert_eq!(at_the_limit.problems.last().map(|p| p.index), Some(MAX_TEMPLATES_PER_IMPORT - 1));
    let error = parse_templates(items(MAX_TEMPLATES_PER_IMPORT + 1).as_bytes()).unwrap_err();
    assert_eq!(error.code(), "too_many_templates");
    assert!(error.to_string().contains("5001"), "{error}");
}

#[test]
fn deeply_nested_json_is_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(import_error_code(&deep), "invalid_json");
}

/// JSON built from the words a template file uses, so that generated input reaches the item checks.
fn template_like_json() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "name",
        "language",
        "category",
        "status",
        "id",
        "components",
        "quality_score",
        "optin_category",
        "data",
        "type",
        "text",
        "buttons",
        "score",
        "code",
        "BUTTONS",
        "FOOTER",
        "BODY",
        "QUICK_REPLY",
        "MARKETING",
        "Stop promotions",
        "Reply STOP",
        "en_US",
        "en-US",
        "APPROVED",
        "GREEN",
        "offers",
        "order_update",
        "",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| json!(number)),
        words.clone().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((words.clone(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(parsed) = parse_templates(&bytes) {
            for template in &parsed.templates {
                let _ = lint(template);
            }
        }
    }

    #[test]
    fn every_item_is_kept_or_reported(document in template_like_json()) {
        let Ok(parsed) = parse_templates(document.to_string().as_bytes()) else { return Ok(()) };
        let item_count = match &document {
            Value::Array(items) => items.len(),
            Value::Object(object) => object.get("data").and_then(Value::as_array).map_or(1, Vec::len),
            _ => unreachable!("other shapes are refused"),
        };
        let mut reported: Vec<usize> = parsed.problems.iter().map(|p| p.index).collect();
        reported.dedup();
        prop_assert_eq!(parsed.templates.len() + reported.len(), item_count);
        for template in &parsed.templates {
            let _ = lint(template);
        }
    }

    #[test]
    fn names_and_languages_parse_back_to_themselves(text in "[a-zA-Z0-9_\\-]{0,20}") {
        if let Ok(name) = TemplateName::parse(&text) {
            prop_assert_eq!(TemplateName::parse(name.as_str()), Ok(name));
        }
        if let Ok(language) = TemplateLanguage::parse(&text) {
            prop_assert_eq!(TemplateLanguage::parse(language.as_str()), Ok(language));
        }
    }
}
