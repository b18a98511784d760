//! Every fixture in `tests/fixtures/webhooks/` (real payloads from Meta's reference, Meta's own failure
//! examples, a captured 131050 failure, and pywa's BSUID shapes) parses to the values written out here.

use jiff::Timestamp;
use serde_json::json;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/", $name, ".json")).as_slice()
    };
}

mod properties;
mod tolerance;

/// Every fixture body, for the property tests.
const FIXTURES: &[&[u8]] = &[
    fixture!("account_signals"),
    fixture!("button_quick_reply"),
    fixture!("button_stop_promotions_bsuid"),
    fixture!("interactive_replies"),
    fixture!("phone_number_quality_update"),
    fixture!("statuses"),
    fixture!("template_category_update"),
    fixture!("template_paused"),
    fixture!("template_quality_mislabeled"),
    fixture!("template_quality_update"),
    fixture!("template_status_update"),
    fixture!("text_message"),
    fixture!("user_preferences"),
    fixture!("user_preferences_stop_bsuid"),
    fixture!("username_messages"),
];

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).expect("a test timestamp is in range")
}

/// Parses a body that must have no skipped items, and returns its changes.
fn clean_changes(body: &[u8]) -> Vec<Change> {
    let delivery = parse_delivery(body).expect("the body is a webhook delivery");
    assert_eq!(delivery.skipped, vec![], "nothing is skipped");
    delivery.changes
}

/// The only change of a clean delivery.
fn only_change(body: &[u8]) -> Change {
    let mut changes = clean_changes(body);
    assert_eq!(changes.len(), 1, "one change");
    changes.remove(0)
}

fn messages_of(change: Change) -> MessagesChange {
    match change.kind {
        ChangeKind::Messages(messages) => messages,
        other => panic!("expected a messages change, got {other:?}"),
    }
}

fn message(id: &str, from: &str, seconds: i64, content: MessageContent) -> InboundMessage {
    InboundMessage {
        id: id.to_owned(),
        from: Some(from.to_owned()),
        from_user_id: None,
        timestamp: at(seconds),
        context: None,
        content,
    }
}

fn contact(wa_id: Option<&str>, user_id: Option<&str>) -> WaContact {
    WaContact { wa_id: wa_id.map(str::to_owned), user_id: user_id.map(str::to_owned) }
}

const BSUID: &str = "US.13491208655302741918";

#[test]
fn every_fixture_parses_without_skipping_anything() {
    for body in FIXTURES {
        assert!(!clean_changes(body).is_empty());
    }
}

#[test]
fn an_inbound_text_message_parses_with_its_contact_and_metadata() {
    let change = only_change(fixture!("text_message"));
    assert_eq!((change.waba_id.as_str(), change.time, change.field.as_str()), ("102290129340398", None, "messages"));
    let expected = MessagesChange {
        phone_number_id: "106540352242922".to_owned(),
        display_phone_number: Some("15550783881".to_owned()),
        contacts: vec![contact(Some("16505551234"), None)],
        messages: vec![message(
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            "16505551234",
            1749416383,
            MessageContent::Text { body: "Does it come in another color?".to_owned() },
        )],
        statuses: vec![],
        errors: vec![],
    };
    assert_eq!(messages_of(change), expected);
}

#[test]
fn a_template_quick_reply_keeps_the_template_wamid_in_its_context() {
    let messages = messages_of(only_change(fixture!("button_quick_reply"))).messages;
    let mut expected = message(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
        "16505551234",
        1750091045,
        MessageContent::Button { payload: "Unsubscribe".to_owned(), text: "Unsubscribe".to_owned() },
    );
    expected.context = Some(MessageContext {
        id: Some("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=".to_owned()),
        from: Some("15550783881".to_owned()),
    });
    assert_eq!(messages, vec![expected]);
}

#[test]
fn a_localized_stop_promotions_tap_without_context_carries_the_bsuid() {
    let change = messages_of(only_change(fixture!("button_stop_promotions_bsuid")));
    assert_eq!(change.contacts, vec![contact(Some("972987654321"), Some(BSUID))]);
    let mut expected = message(
        "wamid.xsidjw",
        "972987654321",
        1698269027,
        MessageContent::Button { payload: "Parar promoções".to_owned(), text: "Parar promoções".to_owned() },
    );
    expected.from_user_id = Some(BSUID.to_owned());
    assert_eq!(change.messages, vec![expected]);
}

#[test]
fn interactive_replies_parse_and_unknown_interactive_types_are_kept_as_other() {
    let messages = messages_of(only_change(fixture!("interactive_replies"))).messages;
    let contents: Vec<_> = messages.iter().map(|message| message.content.clone()).collect();
    assert_eq!(
        contents,
        vec![
            MessageContent::ButtonReply { id: "btn_yes".to_owned(), title: "Yes".to_owned() },
            MessageContent::ListReply { id: "option_1".to_owned(), title: "Option 1".to_owned() },
            MessageContent::Other { kind: "interactive:nfm_reply".to_owned() },
        ]
    );
    assert_eq!(messages[0].context.as_ref().and_then(|context| context.id.as_deref()), Some("wamid.xyzxyz"));
    // The sender's BSUID comes from the contact whose wa_id matches `from`.
    assert!(messages.iter().all(|message| message.from_user_id.as_deref() == Some(BSUID)));
}

#[test]
fn statuses_keep_error_codes_callback_data_and_pricing_category() {
    let statuses = messages_of(only_change(fixture!("statuses"))).statuses;
    let codes: Vec<Vec<i64>> =
        statuses.iter().map(|status| status.errors.iter().map(|error| error.code).collect()).collect();
    assert_eq!(codes, vec![vec![131049], vec![131050], vec![], vec![]]);
    let marketing_stop = &statuses[1];
    assert_eq!(marketing_stop.status, DeliveryStatus::Failed);
    assert_eq!(marketing_stop.timestamp, at(1750224806));
    assert_eq!(marketing_stop.recipient_id.as_deref(), Some("6283180783170"));
    assert!(marketing_stop.errors[0].title.as_deref().is_some_and(|title| title.contains("stop receiving marketing")));
    let sent = &statuses[2];
    assert_eq!((sent.status.as_str(), sent.recipient_user_id.as_deref()), ("sent", Some(BSUID)));
    assert_eq!(sent.biz_opaque_callback_data.as_deref(), Some("campaign-42"));
    assert_eq!((sent.pricing_category.as_deref(), statuses[3].pricing_category.as_deref()), (None, Some("marketing")));
    assert_eq!(statuses[3].status, DeliveryStatus::Delivered);
}

#[test]
fn a_template_status_update_normalizes_the_integer_template_id() {
    let change = only_change(fixture!("template_status_update"));
    assert_eq!(change.time, Some(at(1751247548)));
    let expected = TemplateStatusUpdate {
        template_id: Some("1689556908129832".to_owned()),
        name: "order_confirmation".to_owned(),
        language: "en-US".to_owned(),
        event: "APPROVED".to_owned(),
        reason: Some("NONE".to_owned()),
        category: Some("UTILITY".to_owned()),
        other_info_title: None,
    };
    assert_eq!(change.kind, ChangeKind::TemplateStatus(expected));
}

#[test]
fn a_paused_template_keeps_its_pause_title_and_a_null_reason_reads_as_absent() {
    let expected = TemplateStatusUpdate {
        template_id: Some("1689556908129833".to_owned()),
        name: "spring_sale".to_owned(),
        language: "pt_BR".to_owned(),
        event: "PAUSED".to_owned(),
        reason: None,
        category: Some("MARKETING".to_owned()),
        other_info_title: Some("FIRST_PAUSE".to_owned()),
    };
    assert_eq!(only_change(fixture!("template_paused")).kind, ChangeKind::TemplateStatus(expected));
}

#[test]
fn a_quality_update_is_recognised_by_field_and_by_shape_when_mislabeled() {
    let expected = ChangeKind::TemplateQuality(TemplateQualityUpdate {
        template_id: Some("806312974732579".to_owned()),
        name: "welcome_template".to_owned(),
        language: "en-US".to_owned(),
        previous_score: Some("GREEN".to_owned()),
        new_score: "YELLOW".to_owned(),
    });
    assert_eq!(only_change(fixture!("template_quality_update")).kind, expected);
    let mislabeled = only_change(fixture!("template_quality_mislabeled"));
    assert_eq!((mislabeled.field.as_str(), mislabeled.kind), ("message_template_status_update", expected));
}

#[test]
fn a_template_category_update_parses() {
    let change = only_change(fixture!("template_category_update"));
    assert_eq!((change.waba_id.as_str(), change.time), ("57438975935", Some(at(1750344882))));
    let expected = TemplateCategoryUpdate {
        template_id: Some("12345678".to_owned()),
        name: "my_message_template".to_owned(),
        language: "he".to_owned(),
        previous_category: None,
        new_category: "MARKETING".to_owned(),
    };
    assert_eq!(change.kind, ChangeKind::TemplateCategory(expected));
}

#[test]
fn a_phone_number_quality_update_parses() {
    let expected = PhoneNumberQualityUpdate {
        display_phone_number: Some("15550783881".to_owned()),
        event: "THROUGHPUT_UPGRADE".to_owned(),
        current_limit: Some("TIER_UNLIMITED".to_owned()),
    };
    assert_eq!(only_change(fixture!("phone_number_quality_update")).kind, ChangeKind::PhoneNumberQuality(expected));
}

#[test]
fn account_fields_are_kept_raw() {
    let kinds: Vec<_> = clean_changes(fixture!("account_signals")).into_iter().map(|change| change.kind).collect();
    let ChangeKind::Account { field, value } = &kinds[0] else { panic!("expected an account change") };
    assert_eq!(
        (field.as_str(), &value["max_daily_conversations_per_business"]),
        ("business_capability_update", &json!(2000))
    );
    let fields: Vec<_> =
        kinds.iter().map(|kind| if let ChangeKind::Account { field, .. } = kind { field } else { "" }).collect();
    assert_eq!(fields, ["business_capability_update", "account_alerts", "account_update"]);
}

#[test]
fn a_marketing_resume_preference_parses_with_its_integer_timestamp() {
    let expected = UserPreferencesChange {
        phone_number_id: Some("106540352242922".to_owned()),
        preferences: vec![UserPreference {
            wa_id: Some("16505551234".to_owned()),
            user_id: None,
            category: "marketing_messages".to_owned(),
            value: PreferenceValue::Resume,
            timestamp: at(1731705721),
            detail: Some("User requested to resume marketing messages".to_owned()),
        }],
    };
    assert_eq!(only_change(fixture!("user_preferences")).kind, ChangeKind::UserPreferences(expected));
}

#[test]
fn a_marketing_stop_by_a_username_user_parses_with_a_string_timestamp() {
    let ChangeKind::UserPreferences(change) = only_change(fixture!("user_preferences_stop_bsuid")).kind else {
        panic!("expected a user_preferences change")
    };
    let preference = &change.preferences[0];
    assert_eq!((preference.wa_id.as_deref(), preference.user_id.as_deref()), (None, Some(BSUID)));
    assert_eq!((preference.value.as_str(), preference.timestamp), ("stop", at(1731705800)));
}

#[test]
fn username_users_are_identified_by_from_user_id_or_their_only_contact() {
    let senders: Vec<_> = clean_changes(fixture!("username_messages"))
        .into_iter()
        .flat_map(|change| messages_of(change).messages)
        .map(|message| (message.from, message.from_user_id))
        .collect();
    assert_eq!(senders, vec![(None, Some(BSUID.to_owned())), (None, Some("IN.1410018717833190".to_owned()))]);
}
