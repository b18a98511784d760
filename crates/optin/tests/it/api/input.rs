//! Client input: phone numbers in every form, malformed bodies, missing evidence, limits.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    BODY_LIMIT, PHONE, TestApp, expect_json, expect_problem, on_both_backends, problem_codes, text, web_form_opt_in,
};

on_both_backends!(
    phone_numbers_in_common_formats_are_returned_in_e164,
    garbage_phone_numbers_are_refused_with_a_phone_code_everywhere,
    a_recorded_number_is_found_whatever_its_format_in_the_decision,
    malformed_missing_extra_and_mistyped_fields_are_refused_with_our_codes,
    every_problem_of_an_opt_in_is_reported_at_once,
    an_unknown_method_is_refused,
    each_method_names_the_evidence_it_misses,
    a_body_over_the_limit_is_refused_with_413,
    an_invalid_country_is_refused,
);

/// `(input, country, E.164)`: national and international forms, separators, prefixes, scripts.
const FORMATS: &[(&str, Option<&str>, &str)] = &[
    ("+14155552671", None, "+14155552671"),
    ("(415) 555-2671", Some("US"), "+14155552671"),
    ("415.555.2671", Some("us"), "+14155552671"),
    ("+1 (415) 555-2671", Some("GB"), "+14155552671"),
    ("001 415 555 2671", Some("DE"), "+14155552671"),
    ("tel:+1-415-555-2671", None, "+14155552671"),
    ("  +1 415 555 2671  ", None, "+14155552671"),
    ("＋１ ４１５ ５５５ ２６７１", None, "+14155552671"),
    ("+١٤١٥٥٥٥٢٦٧١", None, "+14155552671"),
    ("07400 123456", Some("GB"), "+447400123456"),
    ("+44 7400 123456", None, "+447400123456"),
    ("+49 1512 3456789", None, "+4915123456789"),
    ("98765 43210", Some("IN"), "+919876543210"),
];

async fn phone_numbers_in_common_formats_are_returned_in_e164(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    for (input, country, e164) in FORMATS {
        let response = app.get_contact(&acme.key, input, *country).await;
        let contact = expect_json(response, StatusCode::OK).await;
        assert_eq!(contact["phone"], *e164, "{input}");
    }
}

/// `(input, country, code)`.
fn garbage() -> Vec<(String, Option<&'static str>, &'static str)> {
    vec![
        ("call me maybe".into(), Some("US"), "invalid_phone"),
        ("+1 415 CALL NOW".into(), None, "invalid_phone"),
        ("+1 415".into(), None, "invalid_phone"),
        ("+1 415 555 2671 2345 6789".into(), None, "invalid_phone"),
        ("4155552671".into(), None, "invalid_phone"),
        ("415 555 2671".into(), Some("GB"), "invalid_phone"),
        ("".into(), Some("US"), "invalid_phone"),
        ("   ".into(), Some("US"), "invalid_phone"),
        ("9".repeat(10_000), Some("US"), "invalid_phone"),
        ("+1 ₄₁₅ 555 2671".into(), None, "invalid_phone"),
        ("+1 415 555 2671; DROP TABLE contacts".into(), None, "invalid_phone"),
        ("+44 20 7946 0958".into(), None, "not_a_mobile_number"),
    ]
}

async fn garbage_phone_numbers_are_refused_with_a_phone_code_everywhere(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    for (input, country, code) in garbage() {
        let label = input.chars().take(40).collect::<String>();
        let mut opt_in = web_form_opt_in(&input, &["offers"], &notice_id);
        opt_in["country"] = json!(country);
        let response = app.post_opt_in(&acme.key, &opt_in).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert!(text(&problem["detail"]).len() < 200, "{label}: the detail echoes the input");

        let decision = json!({"phone": input, "country": country, "category": "offers"});
        let body = expect_json(app.post_decision(&acme.key, &decision).await, StatusCode::OK).await;
        assert_eq!(body["allowed"], false, "{label}");
        assert_eq!(body["reasons"][0]["code"], code, "{label}");

        if !input.trim().is_empty() && input.len() < 1000 {
            expect_problem(app.get_contact(&acme.key, &input, country).await, StatusCode::UNPROCESSABLE_ENTITY, code)
                .await;
        }
    }
    assert_eq!(app.verify_ledger(&acme.key).await["verified_events"], 0);
}

async fn a_recorded_number_is_found_whatever_its_format_in_the_decision(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let opt_in = web_form_opt_in("415-555-2671", &["offers"], &notice_id);
    expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;
    for (input, country, _) in FORMATS.iter().filter(|(_, _, e164)| *e164 == PHONE) {
        let decision = json!({"phone": input, "country": country, "category": "offers"});
        let body = expect_json(app.post_decision(&acme.key, &decision).await, StatusCode::OK).await;
        assert_eq!(body, json!({"allowed": true, "reasons": []}), "{input}");
    }
    let unknown_category = json!({"phone": PHONE, "category": "nope"});
    let body = expect_json(app.post_decision(&acme.key, &unknown_category).await, StatusCode::OK).await;
    assert_eq!(body["reasons"][0]["code"], "unknown_category");
}

async fn malformed_missing_extra_and_mistyped_fields_are_refused_with_our_codes(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let send = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.as_business(Method::POST, "/v1/decisions", &acme.key).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        request.send()
    };
    let json = Some("application/json");
    let cases: [(&str, Option<&str>, StatusCode, &str, &str); 9] = [
        ("{\"phone\": \"+14155552671\",", json, StatusCode::BAD_REQUEST, "malformed_json", ""),
        ("", json, StatusCode::BAD_REQUEST, "malformed_json", ""),
        ("{\"phone\": \"+14155552671\"}", json, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message", "category"),
        (
            "{\"phone\": \"+1\", \"category\": \"x\", \"extra\": 1}",
            json,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "unknown field `extra`",
        ),
        (
            "{\"phone\": 14155552671, \"category\": \"x\"}",
            json,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "phone: invalid type",
        ),
        ("[1, 2]", json, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", ""),
        (
            "{\"phone\": \"+1\", \"category\": \"x\"}",
            Some("text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "",
        ),
        (
            "{\"phone\": \"+1\", \"category\": \"x\"}",
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "",
        ),
        ("{\"phone\": \"+1\", \"category\": \"x\"}", Some("application/json; charset=utf-8"), StatusCode::OK, "", ""),
    ];
    for (body, content_type, status, code, detail) in cases {
        let response = send(body, content_type).await.unwrap();
        if status == StatusCode::OK {
            expect_json(response, status).await;
            continue;
        }
        let problem = expect_problem(response, status, code).await;
        assert!(text(&problem["detail"]).contains(detail), "{body}: {problem}");
    }

    let mistyped = json!({"name": "Acme", "categories": [{"name": "offers", "template_category": 3}]});
    let problem =
        expect_problem(app.post_business(mistyped).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert!(text(&problem["detail"]).starts_with("categories[0].template_category"), "{problem}");
    let missing_source = json!({"phone": PHONE, "recorded_by": "me"});
    let problem = expect_problem(
        app.post_opt_out(&acme.key, &missing_source).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert!(text(&problem["detail"]).contains("missing field `source`"), "{problem}");
    let bad_source = json!({"phone": PHONE, "recorded_by": "me", "source": "carrier_pigeon"});
    let problem = expect_problem(
        app.post_opt_out(&acme.key, &bad_source).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert!(text(&problem["detail"]).contains("unknown variant `carrier_pigeon`"), "{problem}");
}

async fn every_problem_of_an_opt_in_is_reported_at_once(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let opt_in = json!({"phone": "not a phone", "categories": ["offers", "nope"], "method": "telepathy",
        "notice_id": "00000000-0000-4000-8000-000000000000", "evidence": {}});
    let response = app.post_opt_in(&acme.key, &opt_in).await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone").await;
    let codes = problem_codes(&problem);
    for code in ["invalid_phone", "unknown_category", "unknown_method", "unknown_notice"] {
        assert!(codes[1..].iter().any(|c| c == code), "{code} missing from {codes:?}");
    }
    let empty =
        json!({"phone": PHONE, "categories": [], "method": "api", "notice_id": "x", "evidence": {"source": "crm"}});
    let problem = expect_problem(
        app.post_opt_in(&acme.key, &empty).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "categories_missing",
    )
    .await;
    assert!(problem_codes(&problem).contains(&"unknown_notice".to_owned()));
}

async fn an_unknown_method_is_refused(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let mut opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);
    opt_in["method"] = json!("carrier_pigeon");
    let problem =
        expect_problem(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::UNPROCESSABLE_ENTITY, "unknown_method")
            .await;
    assert!(text(&problem["detail"]).contains("web_form"), "the detail lists the methods: {problem}");
}

async fn each_method_names_the_evidence_it_misses(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let cases: [(&str, Value, &str); 10] = [
        ("web_form", json!({}), "page_url"),
        ("web_form", json!({"page_url": "https://acme.example/join"}), "ip"),
        ("sms", json!({"message_id": "SM1"}), "from"),
        ("ivr", json!({"call_id": "CA1"}), "key_pressed` or `recording_ref"),
        ("paper", json!({"collected_by": "store 12"}), "document_sha256"),
        ("in_person", json!({}), "document_sha256"),
        ("messaging_channel", json!({"channel": "telegram"}), "message_id` or `conversation_id"),
        ("whatsapp_thread", json!({"message_id": " "}), "message_id"),
        ("import", json!({"batch_id": "b1"}), "original_method"),
        ("api", json!({"note": "no source"}), "source"),
    ];
    for (method, evidence, field) in cases {
        let mut opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);
        opt_in["method"] = json!(method);
        opt_in["evidence"] = evidence;
        let response = app.post_opt_in(&acme.key, &opt_in).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "evidence_missing").await;
        assert!(text(&problem["detail"]).contains(&format!("`{field}`")), "{method}: {problem}");
    }
    let mut without_evidence = web_form_opt_in(PHONE, &["offers"], &notice_id);
    without_evidence.as_object_mut().unwrap().remove("evidence");
    let response = app.post_opt_in(&acme.key, &without_evidence).await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "evidence_missing").await;
    let mut bad_ip = web_form_opt_in(PHONE, &["offers"], &notice_id);
    bad_ip["evidence"]["ip"] = json!("999.1.1.1");
    expect_problem(app.post_opt_in(&acme.key, &bad_ip).await, StatusCode::UNPROCESSABLE_ENTITY, "evidence_invalid")
        .await;
}

async fn a_body_over_the_limit_is_refused_with_413(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let notice_id = app.register_notice(&acme.key).await;
    let mut opt_in = web_form_opt_in(PHONE, &["offers"], &notice_id);
    opt_in["evidence"]["padding"] = json!("x".repeat(BODY_LIMIT));
    let response = app.post_opt_in(&acme.key, &opt_in).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    let huge = json!({"phone": PHONE, "category": "x".repeat(4 * BODY_LIMIT)});
    expect_problem(app.post_decision(&acme.key, &huge).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

async fn an_invalid_country_is_refused(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    for country in ["XX", "USA", "1", ""] {
        let decision = json!({"phone": "415 555 2671", "country": country, "category": "offers"});
        let response = app.post_decision(&acme.key, &decision).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_country").await;
        let response = app.get_contact(&acme.key, "415 555 2671", Some(country)).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_country").await;
    }
}
