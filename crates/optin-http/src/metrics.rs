//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process (tests start many routers in one process), installed the first time
//! an [`AppState`](crate::AppState) is built. A background thread drains histogram samples
//! regularly so memory stays flat between scrapes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const REQUESTS: &str = "http_requests_total";
const REQUEST_DURATION: &str = "http_request_duration_seconds";
const DECISIONS: &str = "optin_decisions_total";
/// Latency buckets, in seconds: the hot path answers in well under a millisecond.
const DURATION_BUCKETS: &[f64] =
    &[0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Handles to the metrics handlers record directly.
#[derive(Clone)]
pub(crate) struct Metrics {
    prometheus: &'static PrometheusHandle,
    decisions_allowed: Counter,
    decisions_refused: Counter,
    requests: Arc<RequestSeries>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let prometheus = prometheus();
        Metrics {
            prometheus,
            decisions_allowed: metrics::counter!(DECISIONS, "outcome" => "allowed"),
            decisions_refused: metrics::counter!(DECISIONS, "outcome" => "refused"),
            requests: Arc::default(),
        }
    }

    pub(crate) fn record_decision(&self, allowed: bool) {
        if allowed { &self.decisions_allowed } else { &self.decisions_refused }.increment(1);
    }

    /// Records a chunk of batch decisions at once.
    pub(crate) fn record_decisions(&self, allowed: u64, refused: u64) {
        self.decisions_allowed.increment(allowed);
        self.decisions_refused.increment(refused);
    }

    /// Records one answered request under its route template (never its raw path).
    pub(crate) fn record_request(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        self.requests.record(method_label(method), route, status.as_u16(), elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric of the process.
    pub(crate) fn render(&self) -> String {
        self.prometheus.render()
    }
}

/// The request counter and histogram of each (route, method, status) seen, registered once:
/// building a labelled key per request costs more than the rest of the hot path's middleware.
#[derive(Default)]
struct RequestSeries {
    by_route: RwLock<HashMap<Box<str>, Vec<Series>>>,
}

struct Series {
    method: &'static str,
    status: u16,
    count: Counter,
    duration: Histogram,
}

impl RequestSeries {
    fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let matches = |series: &&Series| series.method == method && series.status == status;
        {
            let by_route = self.by_route.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = by_route.get(route).and_then(|all| all.iter().find(matches)) {
                series.count.increment(1);
                series.duration.record(seconds);
                return;
            }
        }
        let mut by_route = self.by_route.write().unwrap_or_else(PoisonError::into_inner);
        let all = by_route.entry(route.into()).or_default();
        if !all.iter().any(|series| matches(&series)) {
            let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
            let count = metrics::counter!(REQUESTS, &labels);
            let duration = metrics::histogram!(REQUEST_DURATION, &labels);
            all.push(Series { method, status, count, duration });
        }
        let series = all.iter().find(matches).expect("the series was just registered");
        series.count.increment(1);
        series.duration.record(seconds);
    }
}

/// Standard methods by name; anything else is `OTHER`, so clients cannot create label values.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN.iter().find(|(known, _)| known == method).map_or("OTHER", |(_, label)| label)
}

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), DURATION_BUCKETS)
            .expect("the bucket list is not empty");
        match builder.install_recorder() {
            Ok(handle) => {
                describe();
                spawn_upkeep(handle.clone());
                handle
            }
            Err(error) => {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics will not show its metrics");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

fn describe() {
    metrics::describe_counter!(REQUESTS, "HTTP requests answered, by method, route template and status");
    metrics::describe_histogram!(REQUEST_DURATION, metrics::Unit::Seconds, "Time to answer an HTTP request");
    metrics::describe_counter!(DECISIONS, "Send decisions, by outcome");
}

fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".to_owned()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the metrics upkeep thread");
    }
}
