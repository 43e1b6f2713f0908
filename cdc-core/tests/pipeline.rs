//! The pipeline's guarantees: durability before acknowledgement, back-pressure, heartbeats,
//! graceful shutdown, typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use cdc_core::testing::{MemoryLog, MemorySink, MemorySource, sample_events};
use cdc_core::{
    ChangeEvent, ChangeSource, Checkpoint, Error, MemoryOffsetStore, OffsetStore, Pipeline,
    PipelineConfig, PipelineMetrics, Position, Result, Sink, SourceBatch, SourcePartition,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn seq(n: u64) -> Position {
    Position::Sequence {
        stream: "s".into(),
        seq: n,
    }
}

/// A sink that fails its `fail_at`-th flush (1-based), losing what was pending.
struct FailingSink {
    inner: MemorySink,
    flushes: usize,
    fail_at: usize,
}

#[async_trait]
impl Sink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }
    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        self.inner.write(events).await
    }
    async fn flush(&mut self) -> Result<Vec<Position>> {
        self.flushes += 1;
        if self.flushes == self.fail_at {
            self.inner.fail_next_flushes(1);
        }
        self.inner.flush().await
    }
}

#[tokio::test]
async fn failed_flush_acks_nothing_more_and_restart_rereads_the_rest() {
    let log = MemoryLog::new();
    log.append(sample_events("s", 50));
    let offsets = MemoryOffsetStore::new();
    let first = MemorySink::new();
    let config = PipelineConfig::new("durability")
        .flush_max_events(10)
        .flush_interval(None);

    let source = MemorySource::over("mem", log.clone())
        .batch_size(5)
        .ending_when_drained();
    let sink = FailingSink {
        inner: first.handle(),
        flushes: 0,
        fail_at: 3,
    };
    let err = Pipeline::new(config.clone(), source, sink, offsets.clone())
        .unwrap()
        .run(CancellationToken::new())
        .await
        .expect_err("the third flush fails");
    assert!(
        matches!(err, Error::Sink { .. }),
        "typed sink error, got {err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is chained"
    );

    // Two flushes of ten events succeeded: exactly those are durable, saved and acknowledged.
    assert_eq!(first.durable_events().len(), 20);
    let saved = offsets
        .load()
        .await
        .unwrap()
        .expect("a checkpoint was saved");
    assert_eq!(saved.get(&SourcePartition::sequence("s")), Some(&seq(20)));
    let acked = log.acks();
    assert!(
        acked
            .iter()
            .all(|p| p.partial_cmp(&seq(20)).is_some_and(|o| o.is_le())),
        "{acked:?}"
    );
    assert_eq!(acked.last(), Some(&seq(20)));

    // A restart from the stored checkpoint re-reads events 21..=50: nothing lost.
    let second = MemorySink::new();
    let source = MemorySource::over("mem", log.clone())
        .batch_size(5)
        .ending_when_drained();
    let report = Pipeline::new(config, source, second.handle(), offsets.clone())
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let positions: Vec<Position> = second
        .durable_events()
        .iter()
        .map(|e| e.position().clone())
        .collect();
    assert_eq!(positions, (21..=50).map(seq).collect::<Vec<_>>());
    assert_eq!(
        report.checkpoint.get(&SourcePartition::sequence("s")),
        Some(&seq(50))
    );
    assert_eq!(
        offsets
            .load()
            .await
            .unwrap()
            .unwrap()
            .get(&SourcePartition::sequence("s")),
        Some(&seq(50))
    );
}

#[tokio::test]
async fn failed_write_returns_the_typed_error_and_saves_nothing() {
    let sink = MemorySink::new();
    sink.fail_next_writes(1);
    let offsets = MemoryOffsetStore::new();
    let source = MemorySource::new("mem", sample_events("s", 5)).ending_when_drained();
    let log = source.log();
    let err = Pipeline::new(PipelineConfig::new("w"), source, sink, offsets.clone())
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Sink {
                position: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(offsets.load().await.unwrap(), None);
    assert!(log.acks().is_empty());
}

/// A sink that is slow and records how far the source ran ahead of it.
struct SlowSink {
    inner: MemorySink,
    metrics: Arc<PipelineMetrics>,
    max_ahead: Arc<AtomicU64>,
}

#[async_trait]
impl Sink for SlowSink {
    fn name(&self) -> &str {
        "slow"
    }
    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let m = self.metrics.snapshot();
        self.max_ahead
            .fetch_max(m.events_read - m.events_written, Ordering::Relaxed);
        self.inner.write(events).await
    }
    async fn flush(&mut self) -> Result<Vec<Position>> {
        self.inner.flush().await
    }
}

#[tokio::test]
async fn a_full_queue_holds_the_source_back() {
    let batch = 10;
    let capacity = 2;
    let source = MemorySource::new("mem", sample_events("s", 400))
        .batch_size(batch)
        .ending_when_drained();
    let sink = MemorySink::new();
    let max_ahead = Arc::new(AtomicU64::new(0));
    let config = PipelineConfig::new("bp").queue_capacity(capacity);
    let metrics = Arc::new(PipelineMetrics::default());
    let slow = SlowSink {
        inner: sink.handle(),
        metrics: Arc::clone(&metrics),
        max_ahead: Arc::clone(&max_ahead),
    };
    let pipeline = Pipeline::new(config, source, slow, MemoryOffsetStore::new())
        .unwrap()
        .with_metrics(metrics);
    pipeline.run(CancellationToken::new()).await.unwrap();
    assert_eq!(sink.durable_events().len(), 400);
    // Queued batches, one blocked in send, one being written, one being read.
    let bound = (batch * (capacity + 3)) as u64;
    let seen = max_ahead.load(Ordering::Relaxed);
    assert!(
        seen <= bound,
        "source ran {seen} events ahead, bound {bound}"
    );
    assert!(
        seen >= batch as u64,
        "the probe must observe read-ahead at all"
    );
}

/// A source that delivers its events once, then only heartbeats; `asked` counts the calls
/// for a heartbeat batch, so a test can wait until the pipeline has taken some.
struct HeartbeatSource {
    events: Vec<ChangeEvent>,
    next_heartbeat: u64,
    asked: tokio::sync::watch::Sender<u64>,
}

#[async_trait]
impl ChangeSource for HeartbeatSource {
    fn name(&self) -> &str {
        "heartbeat"
    }
    async fn start(&mut self, _: Option<&Checkpoint>) -> Result<()> {
        Ok(())
    }
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if !self.events.is_empty() {
            return Ok(Some(SourceBatch::of(std::mem::take(&mut self.events))));
        }
        // Pacing only (a quiet source between heartbeats); tests wait on `asked`.
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.asked.send_modify(|n| *n += 1);
        self.next_heartbeat += 1;
        Ok(Some(SourceBatch {
            heartbeat: Some(seq(self.next_heartbeat)),
            ..SourceBatch::default()
        }))
    }
    async fn ack(&mut self, _: &Position) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn heartbeats_move_the_checkpoint_only_once_earlier_events_are_durable() {
    let offsets = MemoryOffsetStore::new();
    let (asked, mut heartbeats_asked) = tokio::sync::watch::channel(0);
    let source = HeartbeatSource {
        events: sample_events("s", 3),
        next_heartbeat: 100,
        asked,
    };
    let sink = MemorySink::new();
    // No flush by count or time: the three events stay pending until shutdown. A queue of one
    // batch: when the source is asked for its fourth heartbeat, the third is queued, so the
    // pipeline has received the second and handled the first.
    let config = PipelineConfig::new("hb")
        .flush_max_events(1_000)
        .flush_interval(None)
        .queue_capacity(1);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let watcher = offsets.clone();
    let handle = sink.handle();
    let run = tokio::spawn(
        Pipeline::new(config, source, sink, offsets.clone())
            .unwrap()
            .run(shutdown),
    );
    tokio::time::timeout(
        Duration::from_secs(30),
        heartbeats_asked.wait_for(|asked| *asked >= 4),
    )
    .await
    .expect("the pipeline takes heartbeats")
    .expect("the source is alive");
    assert_eq!(handle.pending_events(), 3);
    assert_eq!(
        watcher.load().await.unwrap(),
        None,
        "heartbeats wait for pending events"
    );
    stop.cancel();
    let report = run.await.unwrap().unwrap();
    // Shutdown flushed the events; the heartbeat past them is then saved too.
    let saved = offsets.load().await.unwrap().unwrap();
    assert_eq!(saved, report.checkpoint);
    let Some(Position::Sequence { seq: n, .. }) = saved.get(&SourcePartition::sequence("s")) else {
        panic!("{saved:?}")
    };
    assert!(*n > 100, "checkpoint moved to a heartbeat, got {n}");
    assert_eq!(handle.durable_events().len(), 3);
}

#[tokio::test]
async fn shutdown_flushes_checkpoints_and_returns() {
    let log = MemoryLog::new();
    log.append(sample_events("s", 30));
    let sink = MemorySink::new();
    let offsets = MemoryOffsetStore::new();
    let config = PipelineConfig::new("shutdown")
        .flush_max_events(1_000)
        .flush_interval(None);
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::new(
        config,
        MemorySource::over("m", log.clone()),
        sink.handle(),
        offsets.clone(),
    )
    .unwrap();
    let metrics = pipeline.metrics();
    let run = tokio::spawn(pipeline.run(shutdown.clone()));
    // Wait (bounded) until the sink has all 30 events, polling the pipeline's metrics.
    tokio::time::timeout(Duration::from_secs(30), async {
        while metrics.snapshot().events_written < 30 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the pipeline writes the 30 events");
    shutdown.cancel();
    let report = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(sink.durable_events().len(), 30);
    assert_eq!(
        report.checkpoint.get(&SourcePartition::sequence("s")),
        Some(&seq(30))
    );
    assert_eq!(
        offsets
            .load()
            .await
            .unwrap()
            .unwrap()
            .get(&SourcePartition::sequence("s")),
        Some(&seq(30))
    );
    assert_eq!(
        log.acks().last(),
        Some(&seq(30)),
        "the source heard the final ack before closing"
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.events_read, snapshot.events_written), (30, 30));
    assert_eq!(snapshot.last_durable, Some(seq(30)));
    assert!(snapshot.lag.is_some() && snapshot.bytes_written > 0 && snapshot.flushes >= 1);
}

/// A sink that claims durability for positions it never received.
struct LyingSink;

#[async_trait]
impl Sink for LyingSink {
    fn name(&self) -> &str {
        "lying"
    }
    async fn write(&mut self, _: &[ChangeEvent]) -> Result<Vec<Position>> {
        Ok(vec![seq(1_000)])
    }
    async fn flush(&mut self) -> Result<Vec<Position>> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_sink_reporting_unwritten_positions_is_stopped() {
    let offsets = MemoryOffsetStore::new();
    let source = MemorySource::new("m", sample_events("s", 3)).ending_when_drained();
    let err = Pipeline::new(
        PipelineConfig::new("lie"),
        source,
        LyingSink,
        offsets.clone(),
    )
    .unwrap()
    .run(CancellationToken::new())
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Sink { position: Some(p), .. } if *p == seq(1_000)),
        "{err}"
    );
    assert_eq!(offsets.load().await.unwrap(), None);
}

#[test]
fn bad_config_fails_at_build_time_naming_the_field() {
    let build = |c: PipelineConfig| {
        Pipeline::new(
            c,
            MemorySource::new("m", vec![]),
            MemorySink::new(),
            MemoryOffsetStore::new(),
        )
        .unwrap_err()
    };
    for (config, field) in [
        (PipelineConfig::new(""), "name"),
        (PipelineConfig::new("p").queue_capacity(0), "queue_capacity"),
        (
            PipelineConfig::new("p").flush_max_events(0),
            "flush_max_events",
        ),
        (
            PipelineConfig::new("p").flush_interval(Some(Duration::ZERO)),
            "flush_interval",
        ),
    ] {
        let err = build(config);
        assert!(
            matches!(&err, Error::Config { field: f, .. } if f == field),
            "{err}"
        );
        assert!(err.to_string().contains(field));
    }
}

#[tokio::test]
async fn boxed_roles_run_as_trait_objects() {
    let source: Box<dyn ChangeSource> =
        Box::new(MemorySource::new("m", sample_events("s", 7)).ending_when_drained());
    let sink = MemorySink::new();
    let boxed_sink: Box<dyn Sink> = Box::new(sink.handle());
    let offsets: Box<dyn OffsetStore> = Box::new(MemoryOffsetStore::new());
    let report = Pipeline::new(PipelineConfig::new("dyn"), source, boxed_sink, offsets)
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.events_written, 7);
    assert_eq!(sink.durable_events().len(), 7);
}

fn at(stream: &str, n: u64) -> Position {
    Position::Sequence {
        stream: stream.into(),
        seq: n,
    }
}

/// Events `from..=to` of stream `stream` (sample events, positions renamed).
fn lane_events(stream: &str, from: u64, to: u64) -> Vec<ChangeEvent> {
    sample_events(stream, to as usize).split_off(from as usize - 1)
}

/// A source that returns the given batches, then ends.
struct ScriptSource {
    batches: std::collections::VecDeque<SourceBatch>,
}

#[async_trait]
impl ChangeSource for ScriptSource {
    fn name(&self) -> &str {
        "script"
    }
    async fn start(&mut self, _: Option<&Checkpoint>) -> Result<()> {
        Ok(())
    }
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        Ok(self.batches.pop_front())
    }
    async fn ack(&mut self, _: &Position) -> Result<()> {
        Ok(())
    }
}

async fn run_script(batches: Vec<SourceBatch>, sink: MemorySink) -> Checkpoint {
    // Nothing becomes durable before shutdown: no commit by count or time.
    let config = PipelineConfig::new("script")
        .flush_max_events(1_000)
        .flush_interval(None);
    let source = ScriptSource {
        batches: batches.into(),
    };
    let report = Pipeline::new(config, source, sink, MemoryOffsetStore::new())
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    report.checkpoint
}

/// A Kafka source whose partitions each end on a tombstone reports one heartbeat per
/// partition in one batch; every one of them reaches the checkpoint (issue 13: with one
/// heartbeat per batch, all but one partition kept a lag of 1 forever).
#[tokio::test]
async fn heartbeats_of_every_lane_in_one_batch_reach_the_checkpoint() {
    let mut events = lane_events("a", 1, 3);
    events.extend(lane_events("b", 1, 2));
    let sink = MemorySink::new();
    let checkpoint = run_script(
        vec![
            SourceBatch::of(events),
            SourceBatch {
                heartbeats: vec![at("a", 4), at("b", 3)],
                ..SourceBatch::default()
            },
        ],
        sink.handle(),
    )
    .await;
    assert_eq!(
        checkpoint.get(&SourcePartition::sequence("a")),
        Some(&at("a", 4))
    );
    assert_eq!(
        checkpoint.get(&SourcePartition::sequence("b")),
        Some(&at("b", 3))
    );
}

/// A lane revoked with written, not durable events (a Kafka partition taken away in a
/// rebalance, then given back and re-read from its committed position): the sink drops the
/// open work before the batch's events are written, so each event is stored once.
#[tokio::test]
async fn a_revoked_lane_is_dropped_before_its_reread_so_each_event_is_stored_once() {
    let mut first = lane_events("a", 1, 3);
    first.extend(lane_events("b", 1, 2));
    let sink = MemorySink::new();
    let checkpoint = run_script(
        vec![
            SourceBatch::of(first),
            SourceBatch {
                revoked_partitions: vec![at("a", 1).source_partition()],
                events: lane_events("a", 1, 4),
                ..SourceBatch::default()
            },
        ],
        sink.handle(),
    )
    .await;
    let mut stored: Vec<Position> = sink
        .durable_events()
        .iter()
        .map(|e| e.position().clone())
        .collect();
    stored.sort_by_key(|p| (p.source_partition(), p.to_string()));
    assert_eq!(
        stored,
        vec![
            at("a", 1),
            at("a", 2),
            at("a", 3),
            at("a", 4),
            at("b", 1),
            at("b", 2)
        ]
    );
    assert_eq!(
        checkpoint.get(&SourcePartition::sequence("a")),
        Some(&at("a", 4))
    );
    assert_eq!(
        checkpoint.get(&SourcePartition::sequence("b")),
        Some(&at("b", 2))
    );
}

/// After a revocation the lane's dropped events never become durable; a heartbeat of the
/// lane that comes back (a partition whose only new records are tombstones) must not wait
/// for them.
#[tokio::test]
async fn a_heartbeat_after_a_revocation_does_not_wait_for_dropped_work() {
    let sink = MemorySink::new();
    let checkpoint = run_script(
        vec![
            SourceBatch::of(lane_events("a", 1, 3)),
            SourceBatch {
                revoked_partitions: vec![at("a", 1).source_partition()],
                heartbeats: vec![at("a", 12)],
                ..SourceBatch::default()
            },
        ],
        sink.handle(),
    )
    .await;
    assert!(
        sink.durable_events().is_empty(),
        "the dropped work stays dropped"
    );
    assert_eq!(
        checkpoint.get(&SourcePartition::sequence("a")),
        Some(&at("a", 12))
    );
}

/// Counts how the pipeline asks a sink for durability.
struct CountingSink {
    inner: MemorySink,
    pre_commits: Arc<AtomicU64>,
    flushes: Arc<AtomicU64>,
}

#[async_trait]
impl Sink for CountingSink {
    fn name(&self) -> &str {
        "counting"
    }
    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        self.inner.write(events).await
    }
    async fn pre_commit(&mut self) -> Result<Vec<Position>> {
        self.pre_commits.fetch_add(1, Ordering::Relaxed);
        Ok(Vec::new())
    }
    async fn flush(&mut self) -> Result<Vec<Position>> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.inner.flush().await
    }
}

/// The commit schedule (every 5 events here) asks the sink what is durable without forcing
/// anything closed; only shutdown flushes, so a file sink's boundaries follow its rotation
/// rule, not the schedule (issue 11, fault 6).
#[tokio::test]
async fn the_commit_schedule_pre_commits_and_only_shutdown_flushes() {
    let (pre_commits, flushes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sink = CountingSink {
        inner: MemorySink::new(),
        pre_commits: Arc::clone(&pre_commits),
        flushes: Arc::clone(&flushes),
    };
    let durable = sink.inner.handle();
    let source = MemorySource::new("m", sample_events("s", 50))
        .batch_size(5)
        .ending_when_drained();
    let config = PipelineConfig::new("schedule").flush_max_events(5);
    let report = Pipeline::new(config, source, sink, MemoryOffsetStore::new())
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(pre_commits.load(Ordering::Relaxed), 10);
    assert_eq!(flushes.load(Ordering::Relaxed), 1);
    assert_eq!(durable.durable_events().len(), 50);
    assert_eq!(
        report.checkpoint.get(&SourcePartition::sequence("s")),
        Some(&seq(50))
    );
}
