//! The inbox processor: takes durable webhook deliveries from the inbox and turns them into
//! ledger events, sightings (the service window), template changes and signals; then sends what
//! the thread needs (an opt-out confirmation, the in-thread opt-in question).
//!
//! The webhook endpoint only stores deliveries; this runs beside it. A delivery is claimed with a
//! lease, so after a crash it is taken again; everything it records is keyed by platform ids, so
//! processing it twice changes nothing the second time.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_store::channel::{Delivery, DeliveryId, DeliveryOutcome, Sighting, TemplateChange, TemplateUpdate};
use optin_store::{Store, StoreError, UseCaseError};
use tokio::sync::{Notify, Semaphore};

use crate::outbound::OutboundClient;
use crate::thread::{BusinessContext, DeliveryWork, ThreadActions};

const DELIVERIES_METRIC: &str = "optin_inbox_deliveries_total";

/// How the processor paces itself.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// How long a claimed delivery is held before another process may take it again.
    pub lease: Duration,
    /// Deliveries claimed at once.
    pub batch_size: usize,
    /// How often to look for work without being woken (work queued by other processes, replays,
    /// expired leases).
    pub poll_interval: Duration,
    /// Messages (confirmations, questions) in flight to the upstream at once.
    pub send_concurrency: usize,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            lease: Duration::from_secs(60),
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            send_concurrency: 32,
        }
    }
}

/// Processes the inbox. Cheap to clone.
#[derive(Clone)]
pub struct Processor {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    client: OutboundClient,
    config: ProcessorConfig,
    wake: Notify,
    sends: Arc<Semaphore>,
    /// Contacts being asked to opt in right now, so two messages in a row ask once.
    asking: Mutex<HashSet<(BusinessId, u64)>>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Processor {
    pub fn new(store: Arc<dyn Store>, client: OutboundClient, config: ProcessorConfig) -> Processor {
        let sends = Arc::new(Semaphore::new(config.send_concurrency.max(1)));
        let inner = Inner {
            store,
            client,
            config,
            wake: Notify::new(),
            sends,
            asking: Mutex::new(HashSet::new()),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        };
        Processor { inner: Arc::new(inner) }
    }

    /// Tells the processor new work is in the inbox.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Processes deliveries until `shutdown` completes.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.process_batch().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => tracing::warn!(error = %error, "inbox processing paused: the database is unavailable"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(self.inner.config.poll_interval) => {}
            }
        }
    }

    /// Processes everything claimable now; returns how many deliveries were processed.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let processed = self.process_batch().await?;
            if processed == 0 {
                return Ok(total);
            }
            total += processed;
        }
    }

    /// Waits until the messages this processor is sending have been sent (or given up).
    pub async fn wait_for_sends(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    async fn process_batch(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let claimed =
            inner.store.claim_deliveries(Timestamp::now(), inner.config.lease, inner.config.batch_size).await?;
        let mut outcomes = Vec::with_capacity(claimed.len());
        for (business_id, deliveries) in by_business(&claimed) {
            match self.process_group(business_id, &deliveries).await {
                Ok(group) => outcomes.extend(group),
                // Left claimed: taken again when the lease expires.
                Err(error) => {
                    tracing::warn!(business = %business_id, error = %error, "deliveries left for a retry");
                }
            }
        }
        if !outcomes.is_empty() {
            inner.store.finish_deliveries(&outcomes, Timestamp::now()).await?;
            count_outcomes(&outcomes);
        }
        Ok(claimed.len())
    }

    /// Processes one business's claimed deliveries, in order, with one write per kind of record
    /// for the whole group (the hot path: plain messages only renew service windows). `Err` only
    /// for an unavailable database; every other problem is a delivery's outcome.
    async fn process_group(
        &self,
        business_id: BusinessId,
        deliveries: &[&Delivery],
    ) -> Result<Vec<(DeliveryId, DeliveryOutcome)>, StoreError> {
        let store = self.inner.store.as_ref();
        let fail_all = |error: &str| {
            let outcome = DeliveryOutcome::Failed { error: error.to_owned() };
            deliveries.iter().map(|d| (d.id, outcome.clone())).collect()
        };
        let Some(business) = store.business(business_id).await? else {
            return Ok(fail_all("the delivery's business does not exist"));
        };
        let context = match BusinessContext::load(store, business).await {
            Ok(context) => context,
            Err(ProcessError::Store(error)) => return Err(error),
            Err(error) => return Ok(fail_all(&error.to_string())),
        };
        let planned: Vec<(DeliveryId, Result<DeliveryWork, String>)> =
            deliveries.iter().map(|delivery| (delivery.id, plan(&context, delivery))).collect();
        let works = planned.iter().filter_map(|(_, work)| work.as_ref().ok());
        let sightings: Vec<Sighting> = works.clone().flat_map(|w| w.sightings.iter().cloned()).collect();
        let template_updates: Vec<TemplateUpdate> = works.flat_map(|w| w.template_updates.iter().cloned()).collect();
        if !sightings.is_empty() {
            store.record_sightings(business_id, &sightings).await?;
        }
        if !template_updates.is_empty() {
            store.apply_template_updates(business_id, &template_updates).await?;
            relink_recategorized(store, &context, &template_updates).await?;
        }
        let now = Timestamp::now();
        let actions = ThreadActions { store, context: &context, now };
        let works = planned.iter().filter_map(|(_, work)| work.as_ref().ok());
        actions.follow_messaging_limits(works).await.map_err(store_error)?;
        let mut signals = actions.linked_opt_outs(&sightings).await.map_err(store_error)?;
        let mut outcomes = Vec::with_capacity(planned.len());
        for (id, work) in planned {
            let mut work = match work {
                Ok(work) => work,
                Err(error) => {
                    outcomes.push((id, DeliveryOutcome::Failed { error }));
                    continue;
                }
            };
            // Applying the actions adds signals (replies to unknown messages, unlinked opt-outs).
            let applied = actions.apply(&mut work).await;
            signals.append(&mut work.signals);
            match applied {
                Ok(sends) => {
                    sends.into_iter().for_each(|send| self.spawn_send(&context, send));
                    outcomes.push((id, DeliveryOutcome::Processed { note: work.into_note() }));
                }
                Err(ProcessError::Store(error)) => return Err(error),
                Err(error) => {
                    tracing::warn!(delivery = id, business = %business_id, error = %error, "webhook delivery failed");
                    outcomes.push((id, DeliveryOutcome::Failed { error: error.to_string() }));
                }
            }
        }
        if !signals.is_empty() {
            actions.attribute_forwarded(&mut signals).await.map_err(store_error)?;
            store.record_signals(business_id, &signals, now).await?;
        }
        Ok(outcomes)
    }

    fn spawn_send(&self, context: &BusinessContext, send: crate::thread::PendingSend) {
        let key = (context.business.id, send.phone.key());
        if send.is_question() && !self.inner.asking.lock().expect("not poisoned").insert(key) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let is_question = send.is_question();
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Ok(_permit) = Arc::clone(&inner.sends).acquire_owned().await {
                send.deliver(inner.store.as_ref(), &inner.client).await;
            }
            if is_question {
                inner.asking.lock().expect("not poisoned").remove(&key);
            }
            if inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                inner.idle.notify_waiters();
            }
        });
    }
}

/// Counts processed and failed deliveries (`optin_inbox_deliveries_total{outcome}`).
fn count_outcomes(outcomes: &[(DeliveryId, DeliveryOutcome)]) {
    let failed = outcomes.iter().filter(|(_, outcome)| matches!(outcome, DeliveryOutcome::Failed { .. })).count();
    let processed = outcomes.len() - failed;
    metrics::counter!(DELIVERIES_METRIC, "outcome" => "processed").increment(processed as u64);
    metrics::counter!(DELIVERIES_METRIC, "outcome" => "failed").increment(failed as u64);
}

/// Parses and reads one delivery (no I/O). `Err` is why it cannot be processed at all.
fn plan(context: &BusinessContext, delivery: &Delivery) -> Result<DeliveryWork, String> {
    let parsed = optin_core::whatsapp::webhook::parse_delivery(&delivery.body)
        .map_err(|e| format!("the body is not a webhook delivery ({}: {e})", e.code()))?;
    let mut work = DeliveryWork::default();
    for skipped in &parsed.skipped {
        work.note(format!("skipped {}: {}", skipped.path, skipped.reason));
    }
    for change in parsed.changes {
        context.plan(change, &mut work);
    }
    Ok(work)
}

/// A template Meta moved to another category must count against a business category of that
/// kind: it is linked to the policy's default for its new category, or unlinked (decisions then
/// refuse it with `template_not_linked`) rather than keep consent checks of the wrong kind.
async fn relink_recategorized(
    store: &dyn Store,
    context: &BusinessContext,
    updates: &[TemplateUpdate],
) -> Result<(), StoreError> {
    for update in updates {
        let TemplateChange::Category(category) = update.change else { continue };
        let Some(mut template) =
            store.template(context.business.id, update.name.as_str(), update.language.as_str()).await?
        else {
            continue;
        };
        let kind_of = |name: &CategoryName| {
            context.business.categories.iter().find(|c| &c.name == name).map(|c| c.template_category)
        };
        if template.category != category || template.linked_category.as_ref().and_then(kind_of) == Some(category) {
            continue;
        }
        template.linked_category = context.policy.template_category_defaults.get(&category).cloned();
        store.put_templates(context.business.id, &[template]).await?;
    }
    Ok(())
}

/// The deliveries of each business, in the order claimed.
fn by_business(deliveries: &[Delivery]) -> Vec<(BusinessId, Vec<&Delivery>)> {
    let mut groups: Vec<(BusinessId, Vec<&Delivery>)> = Vec::new();
    for delivery in deliveries {
        match groups.iter_mut().find(|(id, _)| *id == delivery.business_id) {
            Some((_, group)) => group.push(delivery),
            None => groups.push((delivery.business_id, vec![delivery])),
        }
    }
    groups
}

fn store_error(error: ProcessError) -> StoreError {
    match error {
        ProcessError::Store(error) => error,
        other => StoreError::Corrupt(other.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Rejected(String),
}

impl From<UseCaseError> for ProcessError {
    fn from(error: UseCaseError) -> Self {
        match error {
            UseCaseError::Store(store) => ProcessError::Store(store),
            UseCaseError::Rejected(rejection) => {
                ProcessError::Rejected(format!("{}: {}", rejection.code(), rejection.detail()))
            }
        }
    }
}
