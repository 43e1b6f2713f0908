//! The operations endpoints on one small HTTP/1 server (tokio + hyper):
//! `/metrics` (Prometheus text format), `/health` (the process is alive) and `/ready`
//! (200 while the pipeline runs, has not failed and its sink delivers — see [`DeliveryWatch`];
//! 503 otherwise), and `POST /signals`
//! (Debezium's signals to a SQL Server source, see [`crate::signals`]): 202 when the signal is
//! queued, 400 with the reason when the body is not a signal, 409 when the source is not SQL
//! Server, 503 while the pipeline is not running (starting or stopping), 413 above
//! [`MAX_SIGNAL_BYTES`].

use crate::signals::{Refused, SignalRoute, signal_type};
use bytes_body::{BodyExt, Full, Limited};
use http_body_util as bytes_body;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Whether the pipeline is ready, shared with the endpoints: it runs ([`set`](Self::set)) and
/// its sink delivers ([`set_delivering`](Self::set_delivering), see [`DeliveryWatch`]).
#[derive(Debug, Clone)]
pub struct Readiness {
    running: Arc<AtomicBool>,
    delivering: Arc<AtomicBool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            running: Arc::new(AtomicBool::new(false)),
            delivering: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Readiness {
    /// Sets whether the pipeline runs (started, not stopping, not failed).
    pub fn set(&self, ready: bool) {
        self.running.store(ready, Ordering::SeqCst);
    }

    /// Sets whether the sink delivers (what [`DeliveryWatch::observe`] says).
    pub fn set_delivering(&self, delivering: bool) {
        self.delivering.store(delivering, Ordering::SeqCst);
    }

    /// Whether ready: running and delivering.
    pub fn get(&self) -> bool {
        self.running.load(Ordering::SeqCst) && self.delivering.load(Ordering::SeqCst)
    }
}

/// Tells from the pipeline's counters whether its sink delivers: events were handed to the sink
/// since the last durable progress (a checkpoint) and have waited longer than the threshold
/// (`[ops] ready_stall_ms`) means it does not — e.g. a Kafka sink whose brokers are all down
/// for longer than that. Any durable progress, or nothing waiting, means it does. Events handed
/// over just before the last durable progress and still waiting are not seen (the counters do
/// not say which events a checkpoint covered); the next event written starts the clock.
#[derive(Debug, Clone)]
pub struct DeliveryWatch {
    threshold: std::time::Duration,
    checkpoints: u64,
    written_at_checkpoint: u64,
    waiting_since: Option<std::time::Instant>,
}

impl DeliveryWatch {
    /// A watch that reports a stall after `threshold` without durable progress.
    pub fn new(threshold: std::time::Duration) -> Self {
        Self {
            threshold,
            checkpoints: 0,
            written_at_checkpoint: 0,
            waiting_since: None,
        }
    }

    /// Takes the counters at `now`; whether the sink delivers.
    pub fn observe(
        &mut self,
        metrics: &cdc_core::MetricsSnapshot,
        now: std::time::Instant,
    ) -> bool {
        if metrics.checkpoints != self.checkpoints {
            self.checkpoints = metrics.checkpoints;
            self.written_at_checkpoint = metrics.events_written;
            self.waiting_since = None;
        } else if metrics.events_written > self.written_at_checkpoint {
            self.waiting_since.get_or_insert(now);
        }
        self.waiting_since
            .is_none_or(|since| now.saturating_duration_since(since) <= self.threshold)
    }
}

/// The largest `POST /signals` body taken, in bytes (a signal is a few hundred).
pub const MAX_SIGNAL_BYTES: usize = 64 * 1024;

/// Installs the global Prometheus recorder; call once per process.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}

/// Binds `listen` and serves the endpoints until `stop` is cancelled; returns the bound
/// address (useful with port 0).
pub async fn serve(
    listen: &str,
    handle: PrometheusHandle,
    readiness: Readiness,
    signals: SignalRoute,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "ops endpoint accept failed");
                        continue;
                    }
                },
            };
            let handle = handle.clone();
            let readiness = readiness.clone();
            let signals = signals.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (handle, readiness, signals) =
                        (handle.clone(), readiness.clone(), signals.clone());
                    async move {
                        let response = if request.uri().path() == "/signals" {
                            signal(request, &signals).await
                        } else {
                            respond(request.uri().path(), &handle, &readiness)
                        };
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "ops connection ended");
                }
            });
        }
    });
    Ok(addr)
}

/// `POST /signals`: the body (at most [`MAX_SIGNAL_BYTES`]) to the source. The body is not
/// logged: an accepted signal logs its type, a refused one the reason.
async fn signal(request: Request<Incoming>, signals: &SignalRoute) -> Response<Full<Bytes>> {
    if request.method() != hyper::Method::POST {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST a Debezium signal: {\"type\": \"execute-snapshot\", \"data\": {...}}\n".into(),
        );
        response.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("POST"),
        );
        return response;
    }
    let body = match Limited::new(request.into_body(), MAX_SIGNAL_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<bytes_body::LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a signal body is at most {MAX_SIGNAL_BYTES} bytes\n"),
            );
        }
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            );
        }
    };
    let Ok(body) = std::str::from_utf8(&body) else {
        return text(StatusCode::BAD_REQUEST, "the body is not UTF-8\n".into());
    };
    match signals.send(body) {
        Ok(signal) => {
            let kind = signal_type(&signal);
            tracing::info!(signal = kind, "signal accepted on POST /signals");
            text(StatusCode::ACCEPTED, format!("accepted {kind}\n"))
        }
        Err(e) => {
            let status = match e {
                Refused::NotSqlServer => StatusCode::CONFLICT,
                Refused::NotRunning => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            tracing::warn!(error = %e, "signal refused on POST /signals");
            text(status, format!("{e}\n"))
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

fn respond(path: &str, handle: &PrometheusHandle, readiness: &Readiness) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4", handle.render()),
        "/health" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/ready" if readiness.get() => (StatusCode::OK, "text/plain", "ready\n".to_string()),
        "/ready" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::MetricsSnapshot;
    use std::time::{Duration, Instant};

    fn counters(events_written: u64, checkpoints: u64) -> MetricsSnapshot {
        MetricsSnapshot {
            events_written,
            checkpoints,
            ..MetricsSnapshot::default()
        }
    }

    /// A sink that cannot deliver (a Kafka sink during a broker outage) makes /ready 503 once
    /// written events have waited longer than the threshold, and 200 again at the first
    /// durable progress.
    #[test]
    fn readiness_turns_false_while_written_events_wait_past_the_threshold_and_back_after_durable_progress()
     {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let readiness = Readiness::default();
        readiness.set(true);
        let mut watch = DeliveryWatch::new(Duration::from_secs(60));
        let mut step = |metrics: MetricsSnapshot, now: Instant| {
            readiness.set_delivering(watch.observe(&metrics, now));
            readiness.get()
        };
        assert!(step(counters(100, 3), at(0)), "durable progress");
        assert!(step(counters(150, 3), at(1)), "events written, waiting 0 s");
        assert!(
            step(counters(180, 3), at(61)),
            "waiting 60 s: the threshold itself"
        );
        assert!(!step(counters(200, 3), at(62)), "waiting 61 s");
        assert!(!step(counters(200, 3), at(120)), "still nothing durable");
        assert!(
            step(counters(200, 4), at(121)),
            "a checkpoint: delivering again"
        );
        assert!(
            step(counters(200, 4), at(500)),
            "nothing waiting: an idle pipeline is ready"
        );
        assert!(step(counters(201, 4), at(501)));
        assert!(
            !step(counters(201, 4), at(562)),
            "the clock starts at the first waiting event"
        );
        assert_eq!(respond_ready(&readiness), StatusCode::SERVICE_UNAVAILABLE);
        readiness.set(false);
        assert!(!readiness.get());
    }

    /// A stopped or failed pipeline is not ready even while nothing waits.
    #[test]
    fn a_pipeline_that_does_not_run_is_not_ready_whatever_its_sink_does() {
        let readiness = Readiness::default();
        assert!(!readiness.get(), "not ready before it runs");
        readiness.set(true);
        assert!(readiness.get());
        assert_eq!(respond_ready(&readiness), StatusCode::OK);
        readiness.set_delivering(false);
        assert!(!readiness.get());
    }

    /// The status `/ready` answers.
    fn respond_ready(readiness: &Readiness) -> StatusCode {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        respond("/ready", &handle, readiness).status()
    }
}
