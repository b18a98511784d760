//! The outbound client against the fake upstream, over real sockets.

mod fake;
mod logs;
mod retries;
mod sending;

use std::time::Duration;

use optin_core::whatsapp::Provider;
use optin_whatsapp::outbound::{Credential, OutboundClient, OutboundMessage, RetryPolicy, SenderEndpoint};
use optin_whatsapp::testing::{FakeCredentials, FakeUpstream};

const BEARER_TOKEN: &str = "EAAG-test-token";
const D360_API_KEY: &str = "d360-test-key";
const PHONE_NUMBER_ID: &str = "106540352242922";
const RECIPIENT: &str = "16505551234";

async fn start_fake() -> FakeUpstream {
    FakeUpstream::start(FakeCredentials {
        bearer_token: BEARER_TOKEN.to_owned(),
        d360_api_key: D360_API_KEY.to_owned(),
    })
    .await
}

/// A sender pointed at the fake, holding the credential the fake expects for `provider`.
fn sender(fake: &FakeUpstream, provider: Provider) -> SenderEndpoint {
    let secret = match provider {
        Provider::CloudApi => BEARER_TOKEN,
        Provider::Dialog360 => D360_API_KEY,
    };
    SenderEndpoint {
        provider,
        base_url: fake.base_url(),
        api_version: "v23.0".to_owned(),
        phone_number_id: PHONE_NUMBER_ID.to_owned(),
        credential: Credential::new(secret),
    }
}

/// Millisecond backoff so retry tests stay fast.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(10),
        request_timeout: Duration::from_secs(2),
    }
}

fn client_with(policy: RetryPolicy) -> OutboundClient {
    OutboundClient::new(policy).expect("client builds")
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage::Text { to: RECIPIENT.to_owned(), body: body.to_owned() }
}

const BOTH_PROVIDERS: [Provider; 2] = [Provider::CloudApi, Provider::Dialog360];
