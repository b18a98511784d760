//! What arrives upstream, and how the credential is presented.

use optin_core::whatsapp::Provider;
use optin_whatsapp::outbound::{Credential, ListRow, OutboundMessage, ReplyButton, SendError, SentMessage};
use serde_json::json;

use crate::{BOTH_PROVIDERS, PHONE_NUMBER_ID, RECIPIENT, client_with, fast_policy, sender, start_fake, text};

#[tokio::test]
async fn text_arrives_in_the_documented_shape_through_both_providers() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    for provider in BOTH_PROVIDERS {
        let sent = client.send(&sender(&fake, provider), &text("Hello")).await;
        assert!(matches!(sent, Ok(SentMessage { attempts: 1, .. })), "{sent:?}");
    }

    let received = fake.sent();
    assert_eq!(received.len(), 2);
    let expected_body = json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": RECIPIENT,
        "type": "text", "text": { "body": "Hello", "preview_url": false },
    });
    assert_eq!(received[0].provider, Provider::CloudApi);
    assert_eq!(received[0].api_version.as_deref(), Some("v23.0"));
    assert_eq!(received[0].phone_number_id.as_deref(), Some(PHONE_NUMBER_ID));
    assert_eq!(received[1].provider, Provider::Dialog360);
    assert_eq!(received[1].api_version, None);
    assert_eq!(received[1].phone_number_id, None);
    for message in &received {
        assert_eq!(message.body, expected_body);
    }
}

#[tokio::test]
async fn reply_buttons_arrive_in_the_documented_shape() {
    let fake = start_fake().await;
    let message = OutboundMessage::ReplyButtons {
        to: RECIPIENT.to_owned(),
        body: "Keep getting order updates?".to_owned(),
        footer: Some("Reply any time".to_owned()),
        buttons: vec![
            ReplyButton { id: "optin:yes".to_owned(), title: "Yes".to_owned() },
            ReplyButton { id: "optin:no".to_owned(), title: "No".to_owned() },
        ],
    };
    for provider in BOTH_PROVIDERS {
        let client = client_with(fast_policy());
        client.send(&sender(&fake, provider), &message).await.unwrap();
    }

    let expected_body = json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": RECIPIENT,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": { "text": "Keep getting order updates?" },
            "footer": { "text": "Reply any time" },
            "action": { "buttons": [
                { "type": "reply", "reply": { "id": "optin:yes", "title": "Yes" } },
                { "type": "reply", "reply": { "id": "optin:no", "title": "No" } },
            ] },
        },
    });
    let received = fake.wait_for_sent(2, std::time::Duration::from_secs(1)).await;
    assert!(received.iter().all(|message| message.body == expected_body));
}

#[tokio::test]
async fn list_arrives_in_the_documented_shape() {
    let fake = start_fake().await;
    let message = OutboundMessage::List {
        to: RECIPIENT.to_owned(),
        body: "What would you like to hear about?".to_owned(),
        button: "Choose topics".to_owned(),
        rows: vec![
            ListRow {
                id: "topic:orders".to_owned(),
                title: "Orders".to_owned(),
                description: Some("Shipping and delivery updates".to_owned()),
            },
            ListRow { id: "topic:offers".to_owned(), title: "Offers".to_owned(), description: None },
        ],
    };
    for provider in BOTH_PROVIDERS {
        let client = client_with(fast_policy());
        client.send(&sender(&fake, provider), &message).await.unwrap();
    }

    let expected_body = json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": RECIPIENT,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": { "text": "What would you like to hear about?" },
            "action": {
                "button": "Choose topics",
                "sections": [ { "title": "Choose topics", "rows": [
                    { "id": "topic:orders", "title": "Orders", "description": "Shipping and delivery updates" },
                    { "id": "topic:offers", "title": "Offers" },
                ] } ],
            },
        },
    });
    let received = fake.sent();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|message| message.body == expected_body));
}

#[tokio::test]
async fn a_trailing_slash_on_the_base_url_is_accepted() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    for provider in BOTH_PROVIDERS {
        let mut endpoint = sender(&fake, provider);
        endpoint.base_url.push('/');
        client.send(&endpoint, &text("Hi")).await.unwrap();
    }
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test]
async fn every_accepted_message_gets_its_own_wamid() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    let endpoint = sender(&fake, Provider::CloudApi);
    let first = client.send(&endpoint, &text("one")).await.unwrap();
    let second = client.send(&endpoint, &text("two")).await.unwrap();

    assert!(first.wamid.starts_with("wamid."));
    assert_ne!(first.wamid, second.wamid);
    let recorded: Vec<String> = fake.sent().into_iter().map(|message| message.wamid).collect();
    assert_eq!(recorded, [first.wamid, second.wamid]);
}

#[tokio::test]
async fn a_wrong_credential_is_rejected_with_code_190_and_not_retried() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    for provider in BOTH_PROVIDERS {
        let mut endpoint = sender(&fake, provider);
        endpoint.credential = Credential::new("wrong");
        let error = client.send(&endpoint, &text("Hi")).await.unwrap_err();
        assert!(matches!(error, SendError::Rejected { status: 401, code: Some(190), .. }), "{error:?}");
        assert_eq!(error.code(), "upstream_rejected");
    }
    assert_eq!(fake.attempts(), 2);
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn each_provider_takes_only_its_own_auth_header() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    // A Cloud API token presented to the 360dialog route goes in D360-API-KEY, and the reverse
    // goes in Authorization: both are refused.
    let mut token_as_d360_key = sender(&fake, Provider::Dialog360);
    token_as_d360_key.credential = sender(&fake, Provider::CloudApi).credential;
    let mut key_as_bearer = sender(&fake, Provider::CloudApi);
    key_as_bearer.credential = sender(&fake, Provider::Dialog360).credential;
    for endpoint in [token_as_d360_key, key_as_bearer] {
        let error = client.send(&endpoint, &text("Hi")).await.unwrap_err();
        assert!(matches!(error, SendError::Rejected { status: 401, .. }), "{error:?}");
    }
}

#[tokio::test]
async fn invalid_messages_are_refused_before_any_request() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    let button = |title: &str| ReplyButton { id: title.to_owned(), title: title.to_owned() };
    let four_buttons = OutboundMessage::ReplyButtons {
        to: RECIPIENT.to_owned(),
        body: "Pick".to_owned(),
        footer: None,
        buttons: vec![button("a"), button("b"), button("c"), button("d")],
    };
    let long_button_title = OutboundMessage::ReplyButtons {
        to: RECIPIENT.to_owned(),
        body: "Pick".to_owned(),
        footer: None,
        buttons: vec![button(&"t".repeat(25))],
    };
    let long_row_title = OutboundMessage::List {
        to: RECIPIENT.to_owned(),
        body: "Pick".to_owned(),
        button: "Choose".to_owned(),
        rows: vec![ListRow { id: "r".to_owned(), title: "t".repeat(25), description: None }],
    };
    let empty_text = text("  ");
    for message in [four_buttons, long_button_title, long_row_title, empty_text] {
        let error = client.send(&sender(&fake, Provider::CloudApi), &message).await.unwrap_err();
        assert!(matches!(error, SendError::InvalidMessage(_)), "{error:?}");
        assert_eq!(error.code(), "invalid_outbound_message");
    }
    assert_eq!(fake.attempts(), 0);
}
