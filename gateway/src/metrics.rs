//! The gateway's Prometheus metrics (`GET /metrics`).

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use prometheus::{
    CounterVec, Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Counters, gauges and histograms of one gateway.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `verinfer_gateway_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `verinfer_gateway_request_duration_seconds{route}`.
    pub latency: HistogramVec,
    /// `verinfer_gateway_tasks_total{kind,outcome}`: `validated`, `aborted`, `errored`,
    /// `expired`, `cancelled`, `timeout` (not final within the request timeout), `unverified`
    /// (validated, but no upload matched the chain), `failed` (the network failed us).
    pub tasks: IntCounterVec,
    /// `verinfer_gateway_fees_spent_tokens_total{key}`: fees of mined `createTask`s, in tokens.
    pub fees: CounterVec,
    /// `verinfer_gateway_fees_refunded_tokens_total{key}`: fees credited back (aborted, errored,
    /// expired tasks), in tokens.
    pub refunds: CounterVec,
    /// `verinfer_gateway_requests_in_flight`.
    pub in_flight: IntGauge,
    /// `verinfer_gateway_requests_in_flight_max`: the most requests in flight at once so far.
    pub in_flight_max: IntGauge,
    max_seen: Arc<AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "verinfer_gateway_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "verinfer_gateway_request_duration_seconds",
                "Time from request to response (the whole task for chat and images)",
            )
            .buckets(vec![
                0.005, 0.05, 0.25, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0,
            ]),
            &["route"],
        )
        .expect("static metric definition");
        let tasks = IntCounterVec::new(
            Opts::new(
                "verinfer_gateway_tasks_total",
                "Tasks created by the gateway, by kind and outcome",
            ),
            &["kind", "outcome"],
        )
        .expect("static metric definition");
        let fees = CounterVec::new(
            Opts::new(
                "verinfer_gateway_fees_spent_tokens_total",
                "Fees of created tasks, in tokens, by API key name",
            ),
            &["key"],
        )
        .expect("static metric definition");
        let refunds = CounterVec::new(
            Opts::new(
                "verinfer_gateway_fees_refunded_tokens_total",
                "Fees credited back for tasks that did not validate, in tokens, by API key name",
            ),
            &["key"],
        )
        .expect("static metric definition");
        let in_flight = IntGauge::new(
            "verinfer_gateway_requests_in_flight",
            "Chat and image requests being served",
        )
        .expect("static metric definition");
        let in_flight_max = IntGauge::new(
            "verinfer_gateway_requests_in_flight_max",
            "The most chat and image requests served at once since start",
        )
        .expect("static metric definition");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(tasks.clone()),
            Box::new(fees.clone()),
            Box::new(refunds.clone()),
            Box::new(in_flight.clone()),
            Box::new(in_flight_max.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are distinct");
        }
        Self {
            registry,
            requests,
            latency,
            tasks,
            fees,
            refunds,
            in_flight,
            in_flight_max,
            max_seen: Arc::default(),
        }
    }

    /// One more request in flight; keeps the high-water mark.
    pub fn enter(&self) {
        self.in_flight.inc();
        let now = self.in_flight.get();
        // The gauge has no atomic maximum: the high-water mark is kept beside it.
        let max = self.max_seen.fetch_max(now, Ordering::Relaxed).max(now);
        self.in_flight_max.set(max);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
