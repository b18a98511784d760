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
use optin_core::ids::BusinessId;
use optin_store::channel::{Delivery, DeliveryOutcome};
use optin_store::{Store, StoreError, UseCaseError};
use tokio::sync::{Notify, Semaphore};

use crate::outbound::OutboundClient;
use crate::thread::{BusinessContext, DeliveryWork, ThreadActions};

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
            batch_size: 64,
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
        for delivery in &claimed {
            match self.process(delivery).await {
                Ok(outcome) => outcomes.push((delivery.id, outcome)),
                // Left claimed: taken again when the lease expires.
                Err(error) => tracing::warn!(delivery = delivery.id, error = %error, "delivery left for a retry"),
            }
        }
        if !outcomes.is_empty() {
            inner.store.finish_deliveries(&outcomes, Timestamp::now()).await?;
        }
        Ok(claimed.len())
    }

    /// Processes one delivery. `Err` only for an unavailable database (worth retrying); every
    /// other problem is the delivery's outcome.
    async fn process(&self, delivery: &Delivery) -> Result<DeliveryOutcome, StoreError> {
        match self.try_process(delivery).await {
            Ok(note) => Ok(DeliveryOutcome::Processed { note }),
            Err(ProcessError::Store(StoreError::Unavailable(cause))) => Err(StoreError::Unavailable(cause)),
            Err(error) => {
                tracing::warn!(delivery = delivery.id, business = %delivery.business_id, error = %error,
                    "webhook delivery failed");
                Ok(DeliveryOutcome::Failed { error: error.to_string() })
            }
        }
    }

    async fn try_process(&self, delivery: &Delivery) -> Result<Option<String>, ProcessError> {
        let store = self.inner.store.as_ref();
        let business = store.business(delivery.business_id).await?.ok_or(ProcessError::UnknownBusiness)?;
        let parsed = optin_core::whatsapp::webhook::parse_delivery(&delivery.body)
            .map_err(|e| ProcessError::Unreadable(format!("{}: {e}", e.code())))?;
        let context = BusinessContext::load(store, business).await?;
        let mut work = DeliveryWork::default();
        for skipped in &parsed.skipped {
            work.note(format!("skipped {}: {}", skipped.path, skipped.reason));
        }
        for change in parsed.changes {
            context.plan(change, &mut work);
        }
        let now = Timestamp::now();
        store.record_sightings(context.business.id, &work.sightings).await?;
        store.apply_template_updates(context.business.id, &work.template_updates).await?;
        let actions = ThreadActions { store, context: &context, now };
        // Applying the actions adds signals (replies to unknown messages, unlinked opt-outs).
        let sends = actions.apply(&mut work).await?;
        store.record_signals(context.business.id, &work.signals, now).await?;
        for send in sends {
            self.spawn_send(&context, send);
        }
        Ok(work.into_note())
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

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcessError {
    #[error("the delivery's business does not exist")]
    UnknownBusiness,
    #[error("the body is not a webhook delivery ({0})")]
    Unreadable(String),
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
