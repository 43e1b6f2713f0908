//! When a file is closed.
//!
//! Record count, size and record time depend only on the events, so the same events always
//! give the same files: that is what makes a replay after a crash rewrite identical objects.
//! The wall-clock schedule, the memory budget and the flush at shutdown depend on timing; the
//! sink stays exactly-once with them too, because a restarted sink skips events already
//! stored (see the crate documentation), but file boundaries then differ between runs. The
//! pipeline's periodic commits do not close files (`pre_commit`).

use chrono::{DateTime, Utc};
use std::time::Duration;

/// The rotation rules; a file closes at the first that applies.
///
/// ```
/// use s3_sink::Rotation;
/// use std::time::Duration;
/// let hourly = Rotation {
///     max_records: Some(50_000),
///     max_record_interval: Some(Duration::from_secs(3600)),
///     schedule_interval: Some(Duration::from_secs(600)),
///     ..Rotation::default()
/// };
/// assert_eq!(hourly.max_bytes, Rotation::default().max_bytes);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Close after this many events (Kafka Connect's `flush.size`).
    pub max_records: Option<u64>,
    /// Close once the file's encoded size (Parquet: written plus estimated in-progress bytes;
    /// NDJSON: uncompressed bytes) reaches this.
    pub max_bytes: Option<usize>,
    /// Close before an event whose commit time is this much later than the file's first
    /// event's (`rotate.interval.ms`, on record time).
    pub max_record_interval: Option<Duration>,
    /// Close files open for this long by the wall clock, checked on every write and tick, so
    /// idle partitions are flushed too (`rotate.schedule.interval.ms`).
    pub schedule_interval: Option<Duration>,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_records: Some(100_000),
            max_bytes: Some(128 * 1024 * 1024),
            max_record_interval: None,
            schedule_interval: None,
        }
    }
}

/// Why a file was closed; counted in [`SinkStats`](crate::SinkStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    Records,
    Bytes,
    RecordTime,
    Schedule,
    Schema,
    Budget,
    Flush,
}

impl Rotation {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |field: &str, reason: &str| Err(crate::S3SinkError::config(field, reason));
        if self.max_records == Some(0) {
            return bad("rotation.max_records", "must be at least 1");
        }
        if self.max_bytes == Some(0) {
            return bad("rotation.max_bytes", "must be at least 1");
        }
        if self.max_record_interval.is_some_and(|d| d.is_zero()) {
            return bad("rotation.max_record_interval", "must be longer than zero");
        }
        if self.schedule_interval.is_some_and(|d| d.is_zero()) {
            return bad("rotation.schedule_interval", "must be longer than zero");
        }
        Ok(())
    }

    /// Whether an event committed at `at` must start a new file after one whose first event
    /// was committed at `first`.
    pub(crate) fn record_time_exceeded(
        &self,
        first: Option<DateTime<Utc>>,
        at: Option<DateTime<Utc>>,
    ) -> bool {
        match (self.max_record_interval, first, at) {
            (Some(limit), Some(first), Some(at)) => {
                let limit = chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
                at.signed_duration_since(first) >= limit
            }
            _ => false,
        }
    }

    /// Whether a file of `records` events and `size` bytes is full.
    pub(crate) fn full(&self, records: u64, size: usize) -> Option<Reason> {
        if self.max_records.is_some_and(|max| records >= max) {
            Some(Reason::Records)
        } else if self.max_bytes.is_some_and(|max| size >= max) {
            Some(Reason::Bytes)
        } else {
            None
        }
    }

    /// Whether a file opened `age` ago is due by the wall-clock schedule.
    pub(crate) fn scheduled(&self, age: Duration) -> bool {
        self.schedule_interval.is_some_and(|every| age >= every)
    }
}
