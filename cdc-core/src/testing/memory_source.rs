//! A change source over an in-memory log.

use crate::{ChangeEvent, ChangeSource, Checkpoint, Error, Position, Result, SourceBatch};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// An append-only log of events that [`MemorySource`]s read. Clones share the log, so a test
/// can append while a pipeline runs, or restart a source over the same log.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    inner: Arc<Mutex<LogState>>,
}

#[derive(Debug, Default)]
struct LogState {
    events: Vec<ChangeEvent>,
    acks: Vec<Position>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends events; their positions must follow the log's, source partition by source partition.
    pub fn append(&self, events: impl IntoIterator<Item = ChangeEvent>) {
        self.lock().events.extend(events);
    }

    /// A copy of every event in the log.
    pub fn events(&self) -> Vec<ChangeEvent> {
        self.lock().events.clone()
    }

    /// Every acknowledgement any source over this log received, in order.
    pub fn acks(&self) -> Vec<Position> {
        self.lock().acks.clone()
    }
}

/// A [`ChangeSource`] reading a [`MemoryLog`].
///
/// By default it behaves like a streaming source: when it has delivered everything it returns
/// empty batches every poll interval. [`ending_when_drained`](Self::ending_when_drained) makes
/// it end instead, which suits tests that run a pipeline to completion.
#[derive(Debug)]
pub struct MemorySource {
    name: String,
    log: MemoryLog,
    next: usize,
    delivered: Checkpoint,
    batch_size: usize,
    poll_interval: Duration,
    end_when_drained: bool,
}

impl MemorySource {
    /// A source over a new log holding `events`.
    pub fn new(name: impl Into<String>, events: Vec<ChangeEvent>) -> Self {
        let log = MemoryLog::new();
        log.append(events);
        Self::over(name, log)
    }

    /// A source over an existing log.
    pub fn over(name: impl Into<String>, log: MemoryLog) -> Self {
        Self {
            name: name.into(),
            log,
            next: 0,
            delivered: Checkpoint::default(),
            batch_size: 64,
            poll_interval: Duration::from_millis(10),
            end_when_drained: false,
        }
    }

    /// The log this source reads.
    pub fn log(&self) -> MemoryLog {
        self.log.clone()
    }

    /// At most this many events per batch.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// End (return `None`) once every event was delivered.
    pub fn ending_when_drained(mut self) -> Self {
        self.end_when_drained = true;
        self
    }
}

#[async_trait]
impl ChangeSource for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, checkpoint: Option<&Checkpoint>) -> Result<()> {
        let log = self.log.lock();
        self.next = match checkpoint {
            Some(cp) => log
                .events
                .iter()
                .take_while(|e| cp.covers(e.position()))
                .count(),
            None => 0,
        };
        self.delivered = checkpoint.cloned().unwrap_or_default();
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let events: Vec<ChangeEvent> = {
            let log = self.log.lock();
            log.events
                .iter()
                .skip(self.next)
                .take(self.batch_size)
                .cloned()
                .collect()
        };
        if events.is_empty() {
            if self.end_when_drained {
                return Ok(None);
            }
            tokio::time::sleep(self.poll_interval).await;
            return Ok(Some(SourceBatch::default()));
        }
        self.next += events.len();
        for event in &events {
            self.delivered.advance(event.position().clone());
        }
        Ok(Some(SourceBatch::of(events)))
    }

    async fn ack(&mut self, position: &Position) -> Result<()> {
        if !self.delivered.covers(position) {
            return Err(Error::Source {
                name: self.name.clone(),
                position: Some(position.clone()),
                source: "acknowledged a position this source never delivered".into(),
            });
        }
        self.log.lock().acks.push(position.clone());
        Ok(())
    }
}
