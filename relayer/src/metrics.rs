//! Prometheus metrics of one relayer (its own registry: no global state, so tests stay apart).

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The relayer's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `verinfer_relayer_http_requests_total{route,status}`.
    pub http_requests: IntCounterVec,
    /// `verinfer_relayer_upload_verifications_total{outcome="ok"|"failed"|"not_indexed"|"error"}`:
    /// `failed` counts uploads refused on their merits (signature, payload, digest),
    /// `not_indexed` uploads that came before this relayer indexed the task or the node's reveal
    /// (the node retries), `error` the relayer's own failures.
    pub upload_verifications: IntCounterVec,
    /// `verinfer_relayer_indexer_lag_blocks`: chain head minus the last indexed block.
    pub indexer_lag_blocks: IntGauge,
    /// `verinfer_relayer_indexed_head`: the last indexed block.
    pub indexed_head: IntGauge,
    /// `verinfer_relayer_indexed_events_total`.
    pub indexed_events: IntCounter,
    /// `verinfer_relayer_reorgs_total`: reorgs detected and rolled back.
    pub reorgs: IntCounter,
    /// `verinfer_relayer_indexing`: 1 while this process indexes (holds the PostgreSQL indexer
    /// lock, or runs on SQLite), 0 while it stands by as a replica.
    pub indexing: IntGauge,
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
        let http_requests = IntCounterVec::new(
            Opts::new(
                "verinfer_relayer_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )
        .expect("static metric definition");
        let upload_verifications = IntCounterVec::new(
            Opts::new(
                "verinfer_relayer_upload_verifications_total",
                "Result upload verifications by outcome",
            ),
            &["outcome"],
        )
        .expect("static metric definition");
        let indexer_lag_blocks = IntGauge::new(
            "verinfer_relayer_indexer_lag_blocks",
            "Chain head minus the last indexed block",
        )
        .expect("static metric definition");
        let indexed_head = IntGauge::new("verinfer_relayer_indexed_head", "Last indexed block")
            .expect("static metric definition");
        let indexed_events =
            IntCounter::new("verinfer_relayer_indexed_events_total", "Events indexed")
                .expect("static metric definition");
        let reorgs = IntCounter::new(
            "verinfer_relayer_reorgs_total",
            "Chain reorganisations rolled back",
        )
        .expect("static metric definition");
        let indexing = IntGauge::new(
            "verinfer_relayer_indexing",
            "1 while this replica indexes the chain, 0 while another one does",
        )
        .expect("static metric definition");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(upload_verifications.clone()),
            Box::new(indexer_lag_blocks.clone()),
            Box::new(indexed_head.clone()),
            Box::new(indexed_events.clone()),
            Box::new(reorgs.clone()),
            Box::new(indexing.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are distinct");
        }
        // Show both outcomes from the start, so rate() queries have a series.
        upload_verifications.with_label_values(&["ok"]);
        upload_verifications.with_label_values(&["failed"]);
        upload_verifications.with_label_values(&["not_indexed"]);
        Self {
            registry,
            http_requests,
            upload_verifications,
            indexer_lag_blocks,
            indexed_head,
            indexed_events,
            reorgs,
            indexing,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
