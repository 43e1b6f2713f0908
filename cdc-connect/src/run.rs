//! `cdc run`: builds the pipeline, serves the operations endpoints, and stops gracefully on
//! SIGTERM or SIGINT (flush, checkpoint, exit 0) within `shutdown_timeout_ms`.

use crate::config::PipelineFile;
use crate::error_text::error_chain;
use crate::metering::SinkCounters;
use crate::ops::{self, Readiness};
use crate::signals::SignalRoute;
use crate::{lag, progress, wiring};
use cdc_core::{Pipeline, PipelineMetrics};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The source ended or a stop was asked for; everything written is checkpointed.
    Stopped,
    /// The pipeline failed; the message names the cause.
    Failed(String),
    /// A graceful stop did not finish within the shutdown timeout.
    TimedOut,
}

impl Outcome {
    /// The process exit code: 0 stopped, 1 failed, 2 timed out.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Stopped => 0,
            Outcome::Failed(_) => 1,
            Outcome::TimedOut => 2,
        }
    }
}

/// Waits for SIGTERM or SIGINT and cancels `token`.
pub fn stop_on_signals(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping gracefully"),
            _ = int.recv() => tracing::info!("SIGINT: stopping gracefully"),
        }
        token.cancel();
    });
    Ok(())
}

/// Runs the pipeline of `file` until it ends, fails or `stop` is cancelled.
pub async fn run(file: &PipelineFile, stop: CancellationToken) -> Outcome {
    let handle = match ops::install_recorder() {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("{e}; /metrics will be empty");
            None
        }
    };
    let name = file.pipeline.name.clone();
    let counters = SinkCounters::new(&name);
    counters.zero_errors();
    let readiness = Readiness::default();
    let signals = SignalRoute::default();
    let ops_stop = CancellationToken::new();
    if let (Some(listen), Some(handle)) = (&file.ops.listen, handle) {
        match ops::serve(
            listen,
            handle,
            readiness.clone(),
            signals.clone(),
            ops_stop.clone(),
        )
        .await
        {
            Ok(addr) => {
                tracing::info!(%addr, "ops endpoints listening (/metrics, /health, /ready, POST /signals)")
            }
            Err(e) => {
                return Outcome::Failed(format!("ops.listen: cannot listen on {listen}: {e}"));
            }
        }
    }
    counters.ready(false);
    let outcome = run_pipeline(file, stop, &counters, &readiness, &signals).await;
    signals.close();
    readiness.set(false);
    counters.ready(false);
    ops_stop.cancel();
    outcome
}

async fn run_pipeline(
    file: &PipelineFile,
    stop: CancellationToken,
    counters: &SinkCounters,
    readiness: &Readiness,
    signals: &SignalRoute,
) -> Outcome {
    let parts = match wiring::build(file, counters.clone()).await {
        Ok(p) => p,
        Err(e) => {
            counters.error("config");
            return Outcome::Failed(e.to_string());
        }
    };
    let metrics = Arc::new(PipelineMetrics::default());
    let pipeline = match Pipeline::new(parts.pipeline, parts.source, parts.sink, parts.offsets) {
        Ok(p) => p.with_metrics(Arc::clone(&metrics)),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let snapshot = parts.snapshot;
    let sampler_stop = CancellationToken::new();
    if let Some(snapshot) = &snapshot
        && progress::stderr_is_terminal()
    {
        progress::spawn_snapshot_bars(
            snapshot.clone(),
            indicatif::ProgressDrawTarget::stderr(),
            sampler_stop.clone(),
        );
    }
    {
        let (counters, metrics, stop) =
            (counters.clone(), Arc::clone(&metrics), sampler_stop.clone());
        let (readiness, mut watch) = (readiness.clone(), delivery_watch(file));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {
                        counters.sample(&metrics, snapshot.as_ref());
                        if let Some(watch) = &mut watch {
                            observe_delivery(watch, &metrics, &readiness, &counters);
                        }
                    }
                }
            }
            readiness.set_delivering(true);
        });
    }
    start_lag_polls(file, counters, &sampler_stop);
    signals.set(parts.signals.clone());
    if let (Some(channel), Some(handle)) = (parts.signal_kafka, parts.signals) {
        channel.spawn(handle, sampler_stop.clone());
    }
    let pipeline_stop = CancellationToken::new();
    let mut task = tokio::spawn(pipeline.run(pipeline_stop.clone()));
    readiness.set(true);
    counters.ready(true);
    let timeout = Duration::from_millis(file.pipeline.shutdown_timeout_ms.unwrap_or(30_000));
    let result = tokio::select! {
        joined = &mut task => Some(joined),
        () = stop.cancelled() => None,
    };
    let result = match result {
        Some(joined) => joined,
        None => {
            readiness.set(false);
            counters.ready(false);
            signals.close();
            pipeline_stop.cancel();
            match tokio::time::timeout(timeout, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    task.abort();
                    sampler_stop.cancel();
                    tracing::error!(?timeout, "graceful stop did not finish in time");
                    return Outcome::TimedOut;
                }
            }
        }
    };
    counters.sample(&metrics, None);
    sampler_stop.cancel();
    match result {
        Ok(Ok(report)) => {
            tracing::info!(
                events = report.events_written,
                flushes = report.flushes,
                checkpoint = ?report.checkpoint,
                "pipeline stopped; checkpoint saved"
            );
            Outcome::Stopped
        }
        Ok(Err(e)) => {
            counters.error(error_kind(&e));
            tracing::error!(error = %e, "pipeline failed");
            Outcome::Failed(error_chain(&e))
        }
        Err(e) => {
            counters.error("pipeline");
            Outcome::Failed(format!("pipeline task failed: {e}"))
        }
    }
}

/// The watch behind `/ready`'s delivery check: `[ops] ready_stall_ms`, else 60 s with a Kafka
/// sink and none with an S3 sink (see [`crate::config::OpsSection::ready_stall_ms`]).
fn delivery_watch(file: &PipelineFile) -> Option<ops::DeliveryWatch> {
    let threshold = match file.ops.ready_stall_ms {
        Some(ms) => Some(ms),
        None if file.sink.kafka.is_some() => Some(60_000),
        None => None,
    }?;
    Some(ops::DeliveryWatch::new(Duration::from_millis(threshold)))
}

/// Samples delivery into readiness (and the `cdc_ready` gauge), logging each change.
fn observe_delivery(
    watch: &mut ops::DeliveryWatch,
    metrics: &PipelineMetrics,
    readiness: &Readiness,
    counters: &SinkCounters,
) {
    let was = readiness.get();
    readiness.set_delivering(watch.observe(&metrics.snapshot(), std::time::Instant::now()));
    let now = readiness.get();
    if was != now {
        counters.ready(now);
        if now {
            tracing::info!("the sink delivers again: ready");
        } else {
            tracing::warn!(
                "events handed to the sink have not become durable within [ops] ready_stall_ms: not ready"
            );
        }
    }
}

/// Starts the lag polls the source has ([`crate::lag`]); they end with `stop`. A poll that
/// cannot start is logged: the pipeline runs without that metric.
fn start_lag_polls(file: &PipelineFile, counters: &SinkCounters, stop: &CancellationToken) {
    let every = Duration::from_millis(file.ops.lag_interval_ms.unwrap_or(5_000).max(100));
    if let Some(m) = &file.source.mssql {
        match wiring::mssql_config(m) {
            Ok(c) => lag::spawn_mssql_lag(
                m.clone(),
                c.databases().to_vec(),
                counters.clone(),
                every,
                stop.clone(),
            ),
            Err(e) => tracing::warn!(error = %e, "no LSN distance metric"),
        }
    }
    if let Some(k) = &file.source.kafka {
        let started = wiring::kafka_config(k.client(), "source.kafka")
            .map_err(|e| e.to_string())
            .and_then(|kafka| {
                lag::spawn_consumer_lag(
                    &kafka,
                    &k.group_id,
                    k.topics.clone(),
                    counters.clone(),
                    every,
                    stop.clone(),
                )
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "no consumer lag metric");
        }
    }
}

/// The `kind` label of an error.
fn error_kind(e: &cdc_core::Error) -> &'static str {
    use cdc_core::Error as E;
    match e {
        E::Source { .. } => "source",
        E::Sink { .. } => "sink",
        E::Encode { .. } => "encode",
        E::Decode { .. } => "decode",
        E::OffsetStore { .. } => "offsets",
        E::Config { .. } => "config",
        _ => "pipeline",
    }
}
