//! The operations endpoints on one small HTTP/1 server (tokio + hyper):
//! `/metrics` (Prometheus text format), `/health` (the process is alive) and `/ready`
//! (200 while the pipeline runs and has not failed, 503 otherwise), and `POST /signals`
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

/// Whether the pipeline is ready, shared with the endpoints.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets readiness.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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
