//! What a sink did: the counters [`S3Sink::stats`](crate::S3Sink::stats) returns.

use crate::rotation::Reason;

/// Counters describing what a sink did; see [`S3Sink::stats`](crate::S3Sink::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Objects written (or found already written with identical bytes).
    pub files_written: u64,
    /// Bytes in those objects.
    pub bytes_written: u64,
    /// Objects written as multipart uploads.
    pub multipart_files: u64,
    /// Object store calls retried after a transient error.
    pub retries: u64,
    /// Replayed events skipped because a stored file already holds them.
    pub events_skipped: u64,
    /// Files open now.
    pub open_files: usize,
    /// Bytes open files hold now, as the budget counts them.
    pub buffered_bytes: usize,
    /// The most bytes open files held at once.
    pub peak_buffered_bytes: usize,
    /// Files closed by the record-count rule.
    pub closed_by_records: u64,
    /// … by the size rule.
    pub closed_by_bytes: u64,
    /// … by the record-time rule.
    pub closed_by_record_time: u64,
    /// … by the wall-clock schedule.
    pub closed_by_schedule: u64,
    /// … by a schema change.
    pub closed_by_schema: u64,
    /// … to stay within the memory budget.
    pub closed_by_budget: u64,
    /// … by a flush (the pipeline flushes only at shutdown).
    pub closed_by_flush: u64,
    /// Open files dropped, not uploaded, because their source partition was revoked (a Kafka
    /// rebalance).
    pub files_dropped: u64,
    /// Events a revoked source partition's dropped files held (the source partition's next
    /// owner writes them).
    pub events_dropped: u64,
}

impl SinkStats {
    /// Counts an uploaded file of `len` bytes, closed for `reason`.
    pub(crate) fn file_written(&mut self, len: u64, multipart: bool, reason: Reason) {
        self.files_written += 1;
        self.bytes_written += len;
        if multipart {
            self.multipart_files += 1;
        }
        let counter = match reason {
            Reason::Records => &mut self.closed_by_records,
            Reason::Bytes => &mut self.closed_by_bytes,
            Reason::RecordTime => &mut self.closed_by_record_time,
            Reason::Schedule => &mut self.closed_by_schedule,
            Reason::Schema => &mut self.closed_by_schema,
            Reason::Budget => &mut self.closed_by_budget,
            Reason::Flush => &mut self.closed_by_flush,
        };
        *counter += 1;
    }
}
