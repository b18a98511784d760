//! What the client logs: enough to follow a send, never the credential or the content.

use std::io;
use std::sync::{Arc, Mutex};

use optin_core::whatsapp::Provider;
use optin_whatsapp::outbound::OutboundMessage;

use crate::{BEARER_TOKEN, PHONE_NUMBER_ID, RECIPIENT, client_with, fast_policy, sender, start_fake};

#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_the_sender_and_attempts_but_not_the_credential_or_content() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    fake.fail_next(1, 429);
    fake.fail_next(1, 400);
    let message = OutboundMessage::Text { to: RECIPIENT.to_owned(), body: "very private words".to_owned() };

    client.send(&sender(&fake, Provider::CloudApi), &message).await.unwrap_err();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for expected in ["cloud_api", PHONE_NUMBER_ID, "attempt=2", "status=429", "retrying"] {
        assert!(logs.contains(expected), "{expected:?} missing from logs:\n{logs}");
    }
    for secret in [BEARER_TOKEN, "very private words", RECIPIENT] {
        assert!(!logs.contains(secret), "{secret:?} leaked into logs:\n{logs}");
    }
}
