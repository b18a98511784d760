//! Contract stories for the messaging limit: places reserved for recipients of business-initiated
//! messages, counted over a moving window, exactly, with concurrent callers, across a reopening.

use std::future::Future;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use optin_core::ids::BusinessId;
use optin_core::limit::MessagingLimit;
use optin_core::phone::PhoneNumber;
use uuid::Uuid;

use super::new_business;
use crate::capacity::{
    LimitSource, follow_webhook_limit, messaging_limit, messaging_limit_status, reserve_capacity, set_messaging_limit,
};
use crate::{Store, StoreError};

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// A fixed time, so that windows are checked to the second.
fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn after(seconds: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(seconds)).unwrap()
}

fn phones(numbers: &[u32]) -> Vec<PhoneNumber> {
    numbers.iter().map(|n| PhoneNumber::from_e164(&format!("+1415555{n:04}")).unwrap()).collect()
}

pub(super) async fn run_capacity_stories(store: &Arc<dyn Store>) {
    limited_recipients_are_counted_over_a_moving_window(store.as_ref()).await;
    without_a_limit_everyone_is_admitted_and_counted(store.as_ref()).await;
    concurrent_reservations_never_exceed_the_limit(store).await;
    the_business_limit_is_set_by_hand_or_followed_from_webhooks(store.as_ref()).await;
}

async fn limited_recipients_are_counted_over_a_moving_window(store: &dyn Store) {
    let business = new_business(store, "Limited Shoes").await.id;
    let rival = new_business(store, "Limited Rival").await.id;
    let reserve = |numbers: &'static [u32], at: Timestamp| async move {
        store.reserve_recipients(business, &phones(numbers), at, DAY, Some(3)).await.unwrap()
    };
    let count = |at: Timestamp| async move { store.recipients_in_window(business, at, DAY).await.unwrap() };

    // The limit is reached, then newcomers are refused (and nothing is written for them).
    assert_eq!(reserve(&[1, 2], t0()).await, [true, true]);
    assert_eq!(reserve(&[3, 4], after(3_600)).await, [true, false], "the third fits, the fourth does not");
    assert_eq!(count(after(3_600)).await, 3);
    assert_eq!(reserve(&[4], after(3_700)).await, [false]);
    assert_eq!(count(after(3_700)).await, 3, "a refusal takes no place");

    // Someone already reached may be messaged again (their reservation moves forward).
    assert_eq!(reserve(&[1, 1], after(7_200)).await, [true, true]);
    assert_eq!(count(after(7_200)).await, 3);

    // Just after 24 hours, 2 (reached at t0 only) has left the window: one place is free.
    let next_day = after(86_401);
    assert_eq!(count(next_day).await, 2);
    assert_eq!(reserve(&[4, 5], next_day).await, [true, false]);
    assert_eq!(count(next_day).await, 3);

    // A reservation never moves back: 1 reserved again "at t0" still counts from its later time.
    assert_eq!(reserve(&[1], t0()).await, [true]);
    assert_eq!(count(after(7_200 + 86_399)).await, 2, "1 (moved to 2 h) and 4 (next day) are in the window");

    // Another business has its own window; an unknown business is NotFound.
    assert_eq!(store.recipients_in_window(rival, next_day, DAY).await.unwrap(), 0);
    assert_eq!(
        store.reserve_recipients(rival, &phones(&[1, 2, 3]), next_day, DAY, Some(1)).await.unwrap(),
        [true, false, false]
    );
    let nobody = store.reserve_recipients(business, &[], next_day, DAY, Some(3)).await.unwrap();
    assert!(nobody.is_empty());
    let unknown = BusinessId::from_uuid(Uuid::new_v4());
    let refused = store.reserve_recipients(unknown, &phones(&[1]), next_day, DAY, None).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
}

async fn without_a_limit_everyone_is_admitted_and_counted(store: &dyn Store) {
    let business = new_business(store, "Unlimited Shoes").await.id;
    let everyone = phones(&[11, 12, 13, 14, 15]);
    assert_eq!(store.reserve_recipients(business, &everyone, t0(), DAY, None).await.unwrap(), [true; 5]);
    assert_eq!(store.recipients_in_window(business, after(60), DAY).await.unwrap(), 5, "recorded without a limit");
    // A limit set later counts them at once.
    assert_eq!(
        store.reserve_recipients(business, &phones(&[16, 12]), after(60), DAY, Some(5)).await.unwrap(),
        [false, true]
    );
}

async fn concurrent_reservations_never_exceed_the_limit(store: &Arc<dyn Store>) {
    let business = new_business(store.as_ref(), "Concurrent Limit Shoes").await.id;
    let reserve_each = |round: &'static str| {
        let tasks: Vec<_> = (0..32)
            .map(|n| {
                let store = Arc::clone(store);
                tokio::spawn(async move {
                    let phone = phones(&[100 + n]);
                    let admitted = store.reserve_recipients(business, &phone, t0(), DAY, Some(10)).await.unwrap();
                    assert_eq!(admitted.len(), 1, "{round}");
                    (n, admitted[0])
                })
            })
            .collect();
        async move {
            let mut admitted = Vec::new();
            for task in tasks {
                let (n, fits) = task.await.unwrap();
                if fits {
                    admitted.push(n);
                }
            }
            admitted.sort_unstable();
            admitted
        }
    };
    let first = reserve_each("first").await;
    assert_eq!(first.len(), 10, "exactly the limit was admitted: {first:?}");
    assert_eq!(store.recipients_in_window(business, t0(), DAY).await.unwrap(), 10);
    let second = reserve_each("second").await;
    assert_eq!(second, first, "the same ten, and only they, are admitted again");
}

async fn the_business_limit_is_set_by_hand_or_followed_from_webhooks(store: &dyn Store) {
    let business = new_business(store, "Tiered Shoes").await.id;
    assert_eq!(messaging_limit(store, business).await.unwrap(), None);

    // No limit: everyone fits, and is counted.
    let now = Timestamp::now();
    let first = phones(&[201, 202, 203]);
    assert_eq!(reserve_capacity(store, business, &first, now).await.unwrap(), [true; 3]);

    let manual = set_messaging_limit(store, business, MessagingLimit::Limited(4), LimitSource::Manual, now).await;
    let manual = manual.unwrap();
    assert_eq!(messaging_limit(store, business).await.unwrap(), Some(manual));
    assert_eq!(reserve_capacity(store, business, &phones(&[204, 205, 201]), now).await.unwrap(), [true, false, true]);
    let status = messaging_limit_status(store, business, now).await.unwrap();
    assert_eq!((status.setting, status.recipients_last_24h), (Some(manual), 4));

    // A webhook older than the manual setting is ignored; a newer one wins.
    let earlier = now.checked_sub(SignedDuration::from_secs(60)).unwrap();
    assert!(!follow_webhook_limit(store, business, MessagingLimit::Limited(250), earlier).await.unwrap());
    let later = now.checked_add(SignedDuration::from_secs(1)).unwrap();
    assert!(follow_webhook_limit(store, business, MessagingLimit::Unlimited, later).await.unwrap());
    assert!(!follow_webhook_limit(store, business, MessagingLimit::Unlimited, later).await.unwrap(), "unchanged");
    let followed = messaging_limit(store, business).await.unwrap().unwrap();
    assert_eq!((followed.limit, followed.source), (MessagingLimit::Unlimited, LimitSource::Webhook));
    assert_eq!(reserve_capacity(store, business, &phones(&[205, 206]), now).await.unwrap(), [true, true]);
}

/// Places reserved before the store is reopened (`reopen` drops the store it is given and opens
/// another on the same database: a second SQLite store on the file, another PostgreSQL pool)
/// still count afterwards.
pub async fn reservations_survive_reopening<F, Fut>(store: Arc<dyn Store>, reopen: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let business = new_business(store.as_ref(), "Reopened Limit Shoes").await.id;
    let now = Timestamp::now();
    set_messaging_limit(store.as_ref(), business, MessagingLimit::Limited(2), LimitSource::Manual, now).await.unwrap();
    assert_eq!(reserve_capacity(store.as_ref(), business, &phones(&[301, 302]), now).await.unwrap(), [true, true]);

    let reopened = reopen(store).await;
    let store = reopened.as_ref();
    assert_eq!(store.recipients_in_window(business, now, DAY).await.unwrap(), 2);
    assert_eq!(reserve_capacity(store, business, &phones(&[303, 301]), now).await.unwrap(), [false, true]);
    assert_eq!(messaging_limit(store, business).await.unwrap().map(|s| s.limit), Some(MessagingLimit::Limited(2)));
}
