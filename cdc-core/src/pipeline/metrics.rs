//! Counters a running pipeline keeps, readable from other tasks.

use crate::Position;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Live counters of a pipeline; share it with `Arc` and read it with [`snapshot`](Self::snapshot).
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    events_read: AtomicU64,
    events_written: AtomicU64,
    bytes_written: AtomicU64,
    flushes: AtomicU64,
    checkpoints: AtomicU64,
    durable: Mutex<Durable>,
}

#[derive(Debug, Default, Clone)]
struct Durable {
    position: Option<Position>,
    lag: Option<Duration>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Events the source delivered.
    pub events_read: u64,
    /// Events handed to the sink.
    pub events_written: u64,
    /// Approximate bytes of row data handed to the sink.
    pub bytes_written: u64,
    /// Completed commits: sink pre-commits on the commit schedule and the flush at shutdown.
    pub flushes: u64,
    /// Checkpoints saved.
    pub checkpoints: u64,
    /// The last position that became durable.
    pub last_durable: Option<Position>,
    /// Commit-to-durable delay of the last event that became durable.
    pub lag: Option<Duration>,
}

impl PipelineMetrics {
    pub(crate) fn read(&self, events: usize) {
        self.events_read.fetch_add(events as u64, Relaxed);
    }

    pub(crate) fn written(&self, events: usize, bytes: usize) {
        self.events_written.fetch_add(events as u64, Relaxed);
        self.bytes_written.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn flushed(&self) {
        self.flushes.fetch_add(1, Relaxed);
    }

    pub(crate) fn checkpointed(
        &self,
        position: Option<Position>,
        commit_time: Option<DateTime<Utc>>,
    ) {
        self.checkpoints.fetch_add(1, Relaxed);
        let lag = commit_time.and_then(|t| (Utc::now() - t).to_std().ok());
        let mut durable = self.durable.lock().unwrap_or_else(PoisonError::into_inner);
        if position.is_some() {
            durable.position = position;
        }
        if lag.is_some() {
            durable.lag = lag;
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let durable = self
            .durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        MetricsSnapshot {
            events_read: self.events_read.load(Relaxed),
            events_written: self.events_written.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            checkpoints: self.checkpoints.load(Relaxed),
            last_durable: durable.position,
            lag: durable.lag,
        }
    }
}
