//! A sink that keeps events in memory, with injectable failures.

use crate::{
    ChangeEvent, Checkpoint, Error, Position, Result, SchemaChange, Sink, SourcePartition,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A [`Sink`] holding events in memory: written events are pending until a flush makes them
/// durable, and the pending events of revoked source partitions are dropped
/// ([`partitions_revoked`](Sink::partitions_revoked)), as a file sink drops its open files.
/// [`handle`](Self::handle) gives a view that outlives the sink being moved into a pipeline.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    state: Arc<Mutex<SinkState>>,
}

#[derive(Debug, Default)]
struct SinkState {
    pending: Vec<ChangeEvent>,
    durable: Vec<ChangeEvent>,
    schema_changes: Vec<SchemaChange>,
    fail_flushes: usize,
    fail_writes: usize,
    flushes: usize,
}

/// A view of a [`MemorySink`]'s contents and a switch for its failures.
pub type MemorySinkHandle = MemorySink;

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A handle sharing this sink's state.
    pub fn handle(&self) -> MemorySinkHandle {
        self.clone()
    }

    /// Events made durable, in the order they were written.
    pub fn durable_events(&self) -> Vec<ChangeEvent> {
        self.lock().durable.clone()
    }

    /// Events written but not yet flushed.
    pub fn pending_events(&self) -> usize {
        self.lock().pending.len()
    }

    /// Schema changes received.
    pub fn schema_changes(&self) -> Vec<SchemaChange> {
        self.lock().schema_changes.clone()
    }

    /// Completed flushes.
    pub fn flushes(&self) -> usize {
        self.lock().flushes
    }

    /// The next `n` flushes fail, losing what was pending (as a crashed store would).
    pub fn fail_next_flushes(&self, n: usize) {
        self.lock().fail_flushes = n;
    }

    /// The next `n` writes fail.
    pub fn fail_next_writes(&self, n: usize) {
        self.lock().fail_writes = n;
    }
}

fn injected(what: &str, position: Option<Position>) -> Error {
    Error::Sink {
        name: "memory".into(),
        position,
        source: format!("injected {what} failure").into(),
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        let mut state = self.lock();
        if state.fail_writes > 0 {
            state.fail_writes -= 1;
            return Err(injected(
                "write",
                events.first().map(|e| e.position().clone()),
            ));
        }
        state.pending.extend_from_slice(events);
        Ok(Vec::new())
    }

    async fn schema_changed(&mut self, change: &SchemaChange) -> Result<()> {
        self.lock().schema_changes.push(change.clone());
        Ok(())
    }

    async fn partitions_revoked(&mut self, partitions: &[SourcePartition]) -> Result<()> {
        self.lock()
            .pending
            .retain(|e| !partitions.iter().any(|p| p.contains(e.position())));
        Ok(())
    }

    async fn flush(&mut self) -> Result<Vec<Position>> {
        let mut state = self.lock();
        if state.fail_flushes > 0 {
            state.fail_flushes -= 1;
            let first = state.pending.first().map(|e| e.position().clone());
            state.pending.clear();
            return Err(injected("flush", first));
        }
        let mut reached = Checkpoint::default();
        for event in &state.pending {
            reached.advance(event.position().clone());
        }
        let pending = std::mem::take(&mut state.pending);
        state.durable.extend(pending);
        state.flushes += 1;
        Ok(reached.positions().cloned().collect())
    }
}
