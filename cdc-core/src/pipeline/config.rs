//! Pipeline settings.

use crate::{Error, Result};
use std::time::Duration;

/// How a [`Pipeline`](super::Pipeline) batches, commits and checkpoints.
///
/// The `flush_*` settings are the commit schedule (Kafka Connect's `offset.flush.interval.ms`):
/// when they are reached the pipeline asks the sink what is durable
/// ([`Sink::pre_commit`](crate::Sink::pre_commit)) and checkpoints it. Sinks whose durability
/// is delivery (Kafka) flush then; file sinks keep their files open until their own rotation
/// rule closes them. [`Sink::flush`](crate::Sink::flush) itself runs only at shutdown.
///
/// ```
/// use std::time::Duration;
/// use cdc_core::PipelineConfig;
/// let config = PipelineConfig::new("orders-to-s3")
///     .flush_max_events(50_000)
///     .flush_interval(Some(Duration::from_secs(10)));
/// assert!(config.validate().is_ok());
/// assert!(PipelineConfig::new("x").queue_capacity(0).validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Name for logs, spans and errors.
    pub name: String,
    /// Batches that may wait between the source and the sink; a full queue stops the source
    /// from reading (back-pressure).
    pub queue_capacity: usize,
    /// Commit (pre-commit the sink) once this many events were written since the last commit.
    pub flush_max_events: usize,
    /// Commit once about this many bytes were written since the last commit.
    pub flush_max_bytes: usize,
    /// Commit at least this often while events are pending; `None` leaves it to the sink's
    /// own reports from `write` and `tick` (files closed by rotation).
    pub flush_interval: Option<Duration>,
    /// How often the sink's [`tick`](crate::Sink::tick) runs and the interval is checked.
    pub tick_interval: Duration,
}

impl PipelineConfig {
    /// Defaults: 16 queued batches, commit every 10 000 events, 64 MiB or 5 s, tick every 250 ms.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            queue_capacity: 16,
            flush_max_events: 10_000,
            flush_max_bytes: 64 << 20,
            flush_interval: Some(Duration::from_secs(5)),
            tick_interval: Duration::from_millis(250),
        }
    }

    /// Sets [`queue_capacity`](Self::queue_capacity).
    pub fn queue_capacity(mut self, batches: usize) -> Self {
        self.queue_capacity = batches;
        self
    }

    /// Sets [`flush_max_events`](Self::flush_max_events).
    pub fn flush_max_events(mut self, events: usize) -> Self {
        self.flush_max_events = events;
        self
    }

    /// Sets [`flush_max_bytes`](Self::flush_max_bytes).
    pub fn flush_max_bytes(mut self, bytes: usize) -> Self {
        self.flush_max_bytes = bytes;
        self
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    pub fn flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`tick_interval`](Self::tick_interval).
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, "must be greater than zero"))
            }
        };
        if self.name.trim().is_empty() {
            return Err(Error::config("name", "must not be empty"));
        }
        positive("queue_capacity", self.queue_capacity > 0)?;
        positive("flush_max_events", self.flush_max_events > 0)?;
        positive("flush_max_bytes", self.flush_max_bytes > 0)?;
        positive(
            "flush_interval",
            self.flush_interval.is_none_or(|d| !d.is_zero()),
        )?;
        positive("tick_interval", !self.tick_interval.is_zero())
    }
}
