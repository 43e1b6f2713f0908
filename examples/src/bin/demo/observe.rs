//! A sink wrapper that watches what becomes durable: counts per table and operation, the
//! LSN range, and commit-to-file latency.

use cdc_core::{ChangeEvent, Checkpoint, Lsn, Op, Position, SchemaChange, Sink, SourcePartition};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// What was observed, shared with the summary.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub(crate) counts: BTreeMap<(String, Op), u64>,
    pub(crate) lsn_range: Option<(Lsn, Lsn)>,
    /// Per streamed event: its commit time and its commit-to-durable latency, in ms.
    pub(crate) latencies_ms: Vec<(i64, i64)>,
    /// When the first event became durable (ms since the epoch): events committed after it
    /// measure the steady state, without the consumer groups' joins and topic creation.
    pub(crate) first_durable_ms: Option<i64>,
}

/// Wraps a sink; every event it makes durable is recorded in [`Observed`].
pub(crate) struct Observe<S> {
    inner: S,
    observed: Arc<Mutex<Observed>>,
    /// Per lane: events written but not yet durable.
    pending: HashMap<SourcePartition, VecDeque<Facts>>,
}

impl<S: Sink> Observe<S> {
    pub(crate) fn new(inner: S, observed: Arc<Mutex<Observed>>) -> Self {
        Self {
            inner,
            observed,
            pending: HashMap::new(),
        }
    }

    fn record(&mut self, durable: &[Position]) {
        let now = chrono::Utc::now().timestamp_millis();
        let mut observed = self.observed.lock().unwrap_or_else(PoisonError::into_inner);
        for position in durable {
            let mut reached = Checkpoint::default();
            reached.advance(position.clone());
            let Some(queue) = self.pending.get_mut(&position.source_partition()) else {
                continue;
            };
            while queue.front().is_some_and(|(p, ..)| reached.covers(p)) {
                let Some((_, table, op, lsn, committed)) = queue.pop_front() else {
                    break;
                };
                *observed.counts.entry((table, op)).or_default() += 1;
                observed.first_durable_ms.get_or_insert(now);
                // A snapshot taken before the capture job ran has no LSN yet (zero).
                if let Some(lsn) = lsn.filter(|l| *l != Lsn::ZERO) {
                    let (lo, hi) = observed.lsn_range.unwrap_or((lsn, lsn));
                    observed.lsn_range = Some((lo.min(lsn), hi.max(lsn)));
                }
                if let Some(committed) = committed {
                    observed.latencies_ms.push((committed, now - committed));
                }
            }
        }
    }
}

/// What is kept of an event until it is durable: position, table, operation, commit LSN and
/// commit time in milliseconds.
type Facts = (Position, String, Op, Option<Lsn>, Option<i64>);

fn facts(event: &ChangeEvent) -> Facts {
    let lsn = match &event.source.position {
        Position::SqlServer(p) => Some(p.commit_lsn),
        _ => None,
    };
    // Snapshot reads have no commit to measure from.
    let committed = (event.op != Op::Read)
        .then(|| event.source.commit_time.map(|t| t.timestamp_millis()))
        .flatten();
    (
        event.position().clone(),
        event.table.id.table.clone(),
        event.op,
        lsn,
        committed,
    )
}

#[async_trait::async_trait]
impl<S: Sink> Sink for Observe<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> cdc_core::Result<Vec<Position>> {
        for event in events {
            self.pending
                .entry(event.position().source_partition())
                .or_default()
                .push_back(facts(event));
        }
        let durable = self.inner.write(events).await?;
        self.record(&durable);
        Ok(durable)
    }

    async fn schema_changed(&mut self, change: &SchemaChange) -> cdc_core::Result<()> {
        self.inner.schema_changed(change).await
    }

    async fn tick(&mut self) -> cdc_core::Result<Vec<Position>> {
        let durable = self.inner.tick().await?;
        self.record(&durable);
        Ok(durable)
    }

    async fn partitions_revoked(&mut self, partitions: &[SourcePartition]) -> cdc_core::Result<()> {
        self.inner.partitions_revoked(partitions).await
    }

    async fn pre_commit(&mut self) -> cdc_core::Result<Vec<Position>> {
        let durable = self.inner.pre_commit().await?;
        self.record(&durable);
        Ok(durable)
    }

    async fn flush(&mut self) -> cdc_core::Result<Vec<Position>> {
        let durable = self.inner.flush().await?;
        self.record(&durable);
        Ok(durable)
    }
}
