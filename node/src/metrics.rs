//! Prometheus metrics of one node, served as text on `GET /metrics`.
//!
//! Each node has its own registry (several nodes can run in one process, e.g. a devnet).

use std::{net::SocketAddr, time::Duration};

use std::convert::Infallible;

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, header, server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The node's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    tasks: IntCounterVec,
    step_seconds: HistogramVec,
    errors: IntCounterVec,
    current_task: IntGauge,
    scanned_block: IntGauge,
    slashes: IntCounterVec,
    kicked: IntGauge,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let tasks = IntCounterVec::new(
            Opts::new(
                "verinfer_node_tasks_total",
                "Tasks this node finished, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric definition");
        let step_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verinfer_node_step_duration_seconds",
                "Duration of task steps",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
            &["step"],
        )
        .expect("valid metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "verinfer_node_errors_total",
                "Errors, by kind (rpc, relayer, inference, tx, state)",
            ),
            &["kind"],
        )
        .expect("valid metric definition");
        let current_task = IntGauge::new(
            "verinfer_node_current_task",
            "Task being worked on (0: none)",
        )
        .expect("valid metric definition");
        let scanned_block = IntGauge::new(
            "verinfer_node_scanned_block",
            "Next block the task event scan reads",
        )
        .expect("valid metric definition");
        let slashes = IntCounterVec::new(
            Opts::new(
                "verinfer_node_slashes_total",
                "Slashes of this node seen on chain, by reason (Disagreed, MissedCommit, MissedReveal)",
            ),
            &["reason"],
        )
        .expect("valid metric definition");
        let kicked = IntGauge::new(
            "verinfer_node_kicked",
            "1 once the node was slashed and kicked from the network (it takes no more work)",
        )
        .expect("valid metric definition");
        for collector in [
            Box::new(tasks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(step_seconds.clone()),
            Box::new(errors.clone()),
            Box::new(current_task.clone()),
            Box::new(scanned_block.clone()),
            Box::new(slashes.clone()),
            Box::new(kicked.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            tasks,
            step_seconds,
            errors,
            current_task,
            scanned_block,
            slashes,
            kicked,
        }
    }

    /// Counts a slash of this node, by its reason.
    pub fn slashed(&self, reason: verinfer_abi::SlashReason) {
        self.slashes.with_label_values(&[reason.as_str()]).inc();
    }

    /// Marks the node kicked (the contract kicks every node it slashes).
    pub fn set_kicked(&self) {
        self.kicked.set(1);
    }

    /// Counts a finished task (`validated_agreed`, `validated_disagreed`, `aborted`, `errored`,
    /// `missed_commit`, ...).
    pub fn task_finished(&self, outcome: &str) {
        self.tasks.with_label_values(&[outcome]).inc();
    }

    /// Records how long a step took.
    pub fn step(&self, step: &str, duration: Duration) {
        self.step_seconds
            .with_label_values(&[step])
            .observe(duration.as_secs_f64());
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }

    /// Sets the task being worked on (0: none).
    pub fn set_current_task(&self, task_id: u64) {
        self.current_task
            .set(i64::try_from(task_id).unwrap_or(i64::MAX));
    }

    /// Sets the scan cursor.
    pub fn set_scanned_block(&self, block: u64) {
        self.scanned_block
            .set(i64::try_from(block).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec only fails on metric families that violate the format, which the
        // typed collectors above cannot produce.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "could not encode metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// The answer to one request: the Prometheus text for `GET /metrics`, 405 for another method
    /// there, 404 elsewhere.
    fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match (path, method) {
            ("/metrics", &Method::GET) => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.render(),
            ),
            ("/metrics", _) => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new()),
            _ => (StatusCode::NOT_FOUND, "text/plain", String::new()),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    }

    /// Serves `GET /metrics` (hyper, HTTP/1.1) on `listen` until `shutdown` resolves; returns
    /// the bound address.
    pub async fn serve(
        self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            loop {
                let stream = tokio::select! {
                    () = &mut shutdown => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(error) => {
                            tracing::warn!(%error, "metrics listener could not accept");
                            continue;
                        }
                    },
                };
                let metrics = self.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let response = metrics.respond(request.method(), request.uri().path());
                        async move { Ok::<_, Infallible>(response) }
                    });
                    if let Err(error) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(%error, "metrics connection failed");
                    }
                });
            }
        });
        Ok(bound)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_get_metrics_only() {
        let metrics = Metrics::new();
        let ok = metrics.respond(&Method::GET, "/metrics");
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(
            ok.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        assert_eq!(
            metrics.respond(&Method::POST, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            metrics.respond(&Method::GET, "/").status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn renders_every_family_with_labels() {
        let metrics = Metrics::new();
        metrics.task_finished("validated_agreed");
        metrics.step("compute", Duration::from_millis(1500));
        metrics.error("rpc");
        metrics.set_current_task(12);
        metrics.slashed(verinfer_abi::SlashReason::MissedReveal);
        metrics.set_kicked();
        let text = metrics.render();
        for needle in [
            "verinfer_node_tasks_total{outcome=\"validated_agreed\"} 1",
            "verinfer_node_step_duration_seconds_count{step=\"compute\"} 1",
            "verinfer_node_errors_total{kind=\"rpc\"} 1",
            "verinfer_node_current_task 12",
            "verinfer_node_slashes_total{reason=\"MissedReveal\"} 1",
            "verinfer_node_kicked 1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let metrics = Metrics::new();
        metrics.task_finished("aborted");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = metrics
            .clone()
            .serve("127.0.0.1:0".parse().unwrap(), async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        let body = verinfer_wire::tls::default_http_client()
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            body.contains("verinfer_node_tasks_total{outcome=\"aborted\"} 1"),
            "{body}"
        );
        let _ = stop.send(());
    }
}
