//! Only a body that is not a webhook at all is an error; everything below the envelope is item-level.

use serde_json::{Value, json};

use super::*;

/// A delivery of one `messages` change with the given value members next to the metadata.
fn messages_delivery(members: &Value) -> Vec<u8> {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
    });
    value.as_object_mut().expect("an object").extend(members.as_object().expect("an object").clone());
    delivery(&json!([{ "id": "102290129340398", "changes": [{ "field": "messages", "value": value }] }]))
}

fn delivery(entries: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "object": "whatsapp_business_account", "entry": entries })).expect("serializable")
}

fn text(id: &str, from: &str, timestamp: &Value) -> Value {
    json!({ "from": from, "id": id, "timestamp": timestamp, "type": "text", "text": { "body": "hi" } })
}

fn skipped(path: &str, reason: &str) -> Skipped {
    Skipped { path: path.to_owned(), reason: reason.to_owned() }
}

fn parse(body: &[u8]) -> ParsedDelivery {
    parse_delivery(body).expect("the body is a webhook delivery")
}

fn message_ids(delivery: &ParsedDelivery) -> Vec<String> {
    let messages = delivery.changes.iter().filter_map(|change| match &change.kind {
        ChangeKind::Messages(messages) => Some(messages.messages.iter()),
        _ => None,
    });
    messages.flatten().map(|message| message.id.clone()).collect()
}

const MESSAGES_PATH: &str = "entry[0].changes[0].value.messages";

#[test]
fn a_body_that_is_not_json_is_invalid_json_with_a_position() {
    let error = parse_delivery(b"{\n  \"entry\": [}").expect_err("not JSON");
    assert!(matches!(error, DeliveryError::NotJson { line: 2, .. }), "{error:?}");
    assert_eq!(error.code(), "invalid_json");
    assert!(matches!(parse_delivery(b""), Err(DeliveryError::NotJson { .. })));
    assert!(matches!(parse_delivery(&[0xff, 0xfe]), Err(DeliveryError::NotJson { .. })));
}

#[test]
fn truncated_json_is_invalid_json() {
    let body = fixture!("text_message");
    for length in [1, body.len() / 2, body.len() - 2] {
        let error = parse_delivery(&body[..length]).expect_err("truncated");
        assert_eq!(error.code(), "invalid_json", "{error}");
    }
}

#[test]
fn json_without_an_entry_array_is_not_a_webhook() {
    for body in [&b"[]"[..], b"\"entry\"", b"{}", b"{\"entry\":{}}", b"{\"entry\":null}"] {
        let error = parse_delivery(body).expect_err("not a webhook");
        assert_eq!(error.code(), "not_a_webhook", "{error}");
    }
    assert!(matches!(parse_delivery(b"{}"), Err(DeliveryError::NotAWebhook(reason)) if reason == "entry is missing"));
}

#[test]
fn deeply_nested_json_is_refused_without_exhausting_the_stack() {
    let nested = format!("{{\"entry\":[{}{}]}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse_delivery(nested.as_bytes()).map_err(|error| error.code()), Err("invalid_json"));
}

#[test]
fn duplicate_members_take_the_last_value_like_serde_json() {
    let body = messages_delivery(&json!({ "messages": [text("wamid.1", "1", &json!("5"))] }));
    let body =
        String::from_utf8(body).expect("UTF-8").replace("\"id\":\"wamid.1\"", "\"id\":\"wamid.0\",\"id\":\"wamid.1\"");
    assert!(body.contains("wamid.0"), "the duplicate was written");
    assert_eq!(message_ids(&parse(body.as_bytes())), ["wamid.1"]);
}

#[test]
fn an_empty_entry_array_is_an_empty_delivery() {
    assert_eq!(parse(b"{\"entry\":[]}"), ParsedDelivery { changes: vec![], skipped: vec![] });
}

#[test]
fn a_malformed_message_is_skipped_while_its_siblings_parse() {
    let body = messages_delivery(&json!({ "messages": [
        text("wamid.1", "16505551234", &json!("1749416383")),
        { "from": "16505551234", "timestamp": "1749416384", "type": "text", "text": { "body": "no id" } },
        text("wamid.3", "16505551234", &json!("yesterday")),
        "not a message",
        { "id": "wamid.5", "from": 16505551234_u64, "timestamp": "1749416385", "type": "text" },
        { "id": "wamid.6", "from": "16505551234", "timestamp": "1749416386", "type": "text" },
        text("wamid.7", "16505551234", &json!(1749416387)),
    ]}));
    let delivery = parse(&body);
    assert_eq!(message_ids(&delivery), ["wamid.1", "wamid.7"]);
    let expected = [
        (1, "id is missing"),
        (2, "timestamp is not a Unix time in seconds"),
        (3, "not a JSON object"),
        (4, "from is not a string"),
        (5, "text is missing"),
    ];
    let expected: Vec<_> =
        expected.iter().map(|(index, reason)| skipped(&format!("{MESSAGES_PATH}[{index}]"), reason)).collect();
    assert_eq!(delivery.skipped, expected);
}

#[test]
fn negative_absurd_and_fractional_timestamps_skip_the_item() {
    let timestamps =
        [json!(-1), json!("-1"), json!("+1749416383"), json!(1.5), json!("1749416383000"), json!(1e20), json!(true)];
    let messages: Vec<_> = timestamps.iter().map(|timestamp| text("wamid.x", "1", timestamp)).collect();
    let delivery = parse(&messages_delivery(&json!({ "messages": messages })));
    assert_eq!(message_ids(&delivery), Vec::<String>::new());
    assert_eq!(delivery.skipped.len(), timestamps.len());
    assert!(delivery.skipped.iter().all(|skip| skip.reason == "timestamp is not a Unix time in seconds"));
}

#[test]
fn a_message_without_any_sender_id_is_skipped_unless_a_single_contact_names_the_user() {
    let anonymous = json!({ "id": "wamid.1", "timestamp": "1", "type": "text", "text": { "body": "hi" } });
    let two_contacts = json!([{ "user_id": "US.1" }, { "user_id": "US.2" }]);
    let delivery = parse(&messages_delivery(&json!({ "contacts": two_contacts, "messages": [&anonymous] })));
    let reason = "neither a wa_id nor a user_id identifies the user";
    assert_eq!(delivery.skipped, vec![skipped(&format!("{MESSAGES_PATH}[0]"), reason)]);
    let delivery = parse(&messages_delivery(
        &json!({ "contacts": [{ "wa_id": "1", "user_id": "US.1" }], "messages": [anonymous] }),
    ));
    let ChangeKind::Messages(change) = &delivery.changes[0].kind else { panic!("expected messages") };
    assert_eq!(
        (change.messages[0].from.as_deref(), change.messages[0].from_user_id.as_deref()),
        (Some("1"), Some("US.1"))
    );
}

#[test]
fn unknown_members_message_types_statuses_and_fields_are_tolerated() {
    let mut body: Value = serde_json::from_slice(&messages_delivery(&json!({
        "brand_new_member": { "nested": [1, 2, 3] },
        "messages": [{ "id": "wamid.1", "from": "1", "timestamp": "1", "type": "hologram", "hologram": {} }],
        "statuses": [{ "id": "wamid.2", "status": "teleported", "timestamp": "2", "recipient_id": "1" }],
    })))
    .expect("JSON");
    body["entry"][0]["changes"].as_array_mut().expect("changes").push(json!({ "field": "calls", "value": [1] }));
    body["entry"][0]["surprise"] = json!(true);
    let delivery = parse(&serde_json::to_vec(&body).expect("serializable"));
    assert_eq!(delivery.skipped, vec![]);
    let ChangeKind::Messages(change) = &delivery.changes[0].kind else { panic!("expected messages") };
    assert_eq!(change.messages[0].content, MessageContent::Other { kind: "hologram".to_owned() });
    assert_eq!(change.statuses[0].status, DeliveryStatus::Other("teleported".to_owned()));
    assert_eq!(change.statuses[0].status.as_str(), "teleported");
    assert_eq!(delivery.changes[1].kind, ChangeKind::Unknown { field: "calls".to_owned() });
}

#[test]
fn an_unknown_preference_value_is_kept_and_a_preference_without_a_user_is_completed_from_the_contact() {
    let body = delivery(&json!([{ "id": "1", "changes": [{ "field": "user_preferences", "value": {
        "contacts": [{ "wa_id": "16505551234" }],
        "user_preferences": [{ "detail": "xyz", "category": "unknown", "value": "bla", "timestamp": 1731705721 }],
    }}]}]));
    let delivery = parse(&body);
    let ChangeKind::UserPreferences(change) = &delivery.changes[0].kind else { panic!("expected preferences") };
    assert_eq!(change.phone_number_id, None);
    assert_eq!(change.preferences[0].value, PreferenceValue::Other("bla".to_owned()));
    assert_eq!(change.preferences[0].wa_id.as_deref(), Some("16505551234"));
}

#[test]
fn malformed_entries_and_changes_are_skipped_with_their_paths() {
    let body = delivery(&json!([
        { "changes": [] },
        { "id": "2", "time": "soon", "changes": [] },
        { "id": "3", "changes": [
            { "value": {} },
            { "field": "messages", "value": { "metadata": {} } },
            { "field": "message_template_status_update", "value": { "message_template_id": { "id": 1 } } },
            { "field": "messages" },
            { "field": "phone_number_quality_update",
              "value": { "event": "ONBOARDING", "max_daily_conversations_per_business": 250 } },
        ]},
        { "id": 4, "changes": "none" },
    ]));
    let delivery = parse(&body);
    assert_eq!(
        delivery.skipped,
        vec![
            skipped("entry[0]", "id is missing"),
            skipped("entry[1]", "time is not a Unix time in seconds"),
            skipped("entry[2].changes[0]", "field is missing"),
            skipped("entry[2].changes[1]", "value.metadata.phone_number_id is missing"),
            skipped("entry[2].changes[2]", "value.message_template_id is not a string or a non-negative integer"),
            skipped("entry[2].changes[3]", "value is missing"),
            skipped("entry[3].changes", "not an array"),
        ]
    );
    let expected = PhoneNumberQualityUpdate {
        display_phone_number: None,
        event: "ONBOARDING".to_owned(),
        current_limit: Some("250".to_owned()),
    };
    assert_eq!(delivery.changes.len(), 1);
    assert_eq!(delivery.changes[0].kind, ChangeKind::PhoneNumberQuality(expected));
}

#[test]
fn a_non_array_sub_list_and_a_malformed_error_are_skipped_but_the_change_is_kept() {
    let body = messages_delivery(&json!({
        "messages": { "not": "an array" },
        "statuses": [{
            "id": "wamid.1", "status": "failed", "timestamp": "5",
            "errors": [{ "title": "no code" }, { "code": "131050" }],
        }],
        "errors": [{ "code": 131000, "title": "Something went wrong", "message": "x" }],
    }));
    let delivery = parse(&body);
    let statuses = "entry[0].changes[0].value.statuses[0].errors[0]";
    assert_eq!(delivery.skipped, vec![skipped(MESSAGES_PATH, "not an array"), skipped(statuses, "code is missing")]);
    let ChangeKind::Messages(change) = &delivery.changes[0].kind else { panic!("expected messages") };
    assert_eq!(change.statuses[0].errors, vec![PlatformError { code: 131050, title: None }]);
    assert_eq!(change.errors, vec![PlatformError { code: 131000, title: Some("Something went wrong".to_owned()) }]);
}

#[test]
fn descriptive_members_with_the_wrong_type_read_as_absent() {
    let body = messages_delivery(&json!({
        "statuses": [{
            "id": "wamid.1", "status": "sent", "timestamp": "5", "biz_opaque_callback_data": 7, "pricing": "free",
        }],
        "messages": [{
            "id": "wamid.2", "from": "1", "timestamp": "6", "type": "button", "context": [],
            "button": { "text": "Stop promotions" },
        }],
    }));
    let delivery = parse(&body);
    assert_eq!(delivery.skipped, vec![]);
    let ChangeKind::Messages(change) = &delivery.changes[0].kind else { panic!("expected messages") };
    assert_eq!((&change.statuses[0].biz_opaque_callback_data, &change.statuses[0].pricing_category), (&None, &None));
    let stop = MessageContent::Button { payload: "Stop promotions".to_owned(), text: "Stop promotions".to_owned() };
    assert_eq!((&change.messages[0].content, &change.messages[0].context), (&stop, &None));
}

#[test]
fn a_thousand_message_delivery_parses_completely() {
    let filler = "x".repeat(2_900);
    let messages: Vec<_> = (0..1_000)
        .map(|index| {
            let mut message =
                text(&format!("wamid.{index}"), "16505551234", &json!((1_749_416_383 + index).to_string()));
            message["text"]["body"] = json!(filler);
            message
        })
        .collect();
    let body = messages_delivery(&json!({ "contacts": [{ "wa_id": "16505551234" }], "messages": messages }));
    assert!(body.len() > 2_900_000, "about 3 MB, Meta's maximum");
    let delivery = parse(&body);
    assert_eq!(delivery.skipped, vec![]);
    let ids = message_ids(&delivery);
    assert_eq!((ids.len(), ids[0].as_str(), ids[999].as_str()), (1_000, "wamid.0", "wamid.999"));
}
