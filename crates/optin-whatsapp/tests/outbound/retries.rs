//! Which failures are retried, how patiently, and what a caller sees at the end.

use std::time::{Duration, Instant};

use optin_core::whatsapp::Provider;
use optin_whatsapp::outbound::{RetryPolicy, SendError};
use optin_whatsapp::testing::FakeFailure;

use crate::{BOTH_PROVIDERS, client_with, fast_policy, sender, start_fake, text};

#[tokio::test]
async fn rate_limited_twice_then_accepted_reports_three_attempts() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    for provider in BOTH_PROVIDERS {
        fake.fail_next(2, 429);
        let sent = client.send(&sender(&fake, provider), &text("Hi")).await.unwrap();
        assert_eq!(sent.attempts, 3);
    }
    assert_eq!(fake.attempts(), 6);
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = start_fake().await;
    let client = client_with(RetryPolicy { max_backoff: Duration::from_secs(5), ..fast_policy() });
    fake.fail_next_with(1, &FakeFailure::status(429).with_retry_after(1));

    let started = Instant::now();
    let sent = client.send(&sender(&fake, Provider::CloudApi), &text("Hi")).await.unwrap();

    assert_eq!(sent.attempts, 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn retry_after_is_capped_by_max_backoff() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    fake.fail_next_with(1, &FakeFailure::status(503).with_retry_after(120));

    let started = Instant::now();
    let sent = client.send(&sender(&fake, Provider::Dialog360), &text("Hi")).await.unwrap();

    assert_eq!(sent.attempts, 2);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_keeps_the_graph_code() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    fake.fail_next(1, 400);

    let error = client.send(&sender(&fake, Provider::CloudApi), &text("Hi")).await.unwrap_err();

    let SendError::Rejected { status, code, message } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!((*status, *code), (400, Some(100)));
    assert!(message.starts_with("(#100) Invalid parameter"), "{message}");
    assert_eq!(fake.attempts(), 1);
}

#[tokio::test]
async fn a_pair_rate_limit_sent_as_400_is_retried() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    fake.fail_next_with(1, &FakeFailure::status(400).with_code(131_056));

    let sent = client.send(&sender(&fake, Provider::CloudApi), &text("Hi")).await.unwrap();

    assert_eq!(sent.attempts, 2);
}

#[tokio::test]
async fn server_errors_on_every_attempt_exhaust_the_policy() {
    let fake = start_fake().await;
    let client = client_with(fast_policy());
    fake.fail_next(100, 500);

    let error = client.send(&sender(&fake, Provider::CloudApi), &text("Hi")).await.unwrap_err();

    let SendError::Exhausted { attempts, last } = &error else {
        panic!("expected Exhausted, got {error:?}");
    };
    assert_eq!(*attempts, 4);
    assert!(last.contains("HTTP 500") && last.contains("131000"), "{last}");
    assert_eq!(error.code(), "upstream_unavailable");
    assert_eq!(fake.attempts(), 4);
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn a_hung_request_times_out_and_is_retried() {
    let fake = start_fake().await;
    let client = client_with(RetryPolicy { request_timeout: Duration::from_millis(100), ..fast_policy() });
    fake.hang_next(1, Duration::from_secs(5));

    let started = Instant::now();
    let sent = client.send(&sender(&fake, Provider::Dialog360), &text("Hi")).await.unwrap();

    assert_eq!(sent.attempts, 2);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn connection_errors_are_retried_then_exhausted() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let fake = start_fake().await;
    let mut endpoint = sender(&fake, Provider::CloudApi);
    endpoint.base_url = format!("http://127.0.0.1:{closed_port}");
    let client = client_with(RetryPolicy { max_attempts: 3, ..fast_policy() });

    let error = client.send(&endpoint, &text("Hi")).await.unwrap_err();

    assert!(matches!(error, SendError::Exhausted { attempts: 3, .. }), "{error:?}");
    assert!(!error.to_string().contains(crate::BEARER_TOKEN));
}
