//! Exactly-once Parquet and NDJSON files of change events on S3 or any `object_store`
//! backend, in the Kafka Connect layout:
//!
//! ```text
//! <prefix>/<topic>/<encoded partition>/<topic>+<kafka partition>+<start offset>.<ext>
//! ```
//!
//! [`S3Sink`] implements [`cdc_core::Sink`]. Events are appended to one open file per source
//! partition, topic and encoded partition; a file closes by [`Rotation`] rule, schema change,
//! memory pressure or the flush at shutdown, and is uploaded with `PutMode::Create` (multipart
//! beyond one part). The pipeline's commit schedule does not close files: it asks the sink what
//! is durable ([`Sink::pre_commit`](cdc_core::Sink::pre_commit)), and positions become durable
//! as files close (as the Confluent S3 sink commits offsets on rotation).
//!
//! # Exactly once
//! - A file's name is its first event's position; its content depends only on its events
//!   and the deterministic rotation rules, so a replay writes identical bytes under the same
//!   name. An existing object with identical bytes is accepted; different bytes are a
//!   [`S3SinkError::Conflict`], never an overwrite.
//! - A position is reported durable only after the upload of every file holding events at or
//!   before it in its source partition completed: with several open files in a source
//!   partition, the sink reports the event just before the source partition's oldest open file.
//! - The first time a restarted sink sees a directory it reads the newest stored file of
//!   that source partition and skips replayed events the file already holds, so a replay from any
//!   earlier position (even mid-file) stores every event once.
//! - An event at or before the last one the sink already holds in its source partition (open or
//!   uploaded file) is skipped, so a consumer that re-reads from its committed offset never
//!   appends a record twice.
//! - On a Kafka rebalance the revoked partitions' open files are dropped
//!   ([`Sink::partitions_revoked`](cdc_core::Sink::partitions_revoked)): the next owner
//!   rewrites them byte-identically from the committed offset.
//!
//! # Crate map
//! Public (each item has one path, at the crate root, except the two column-name
//! namespaces):
//! - `config`: [`S3SinkBuilder`]: URL or store, options, validation at build time;
//! - `sink`: [`S3Sink`], the [`Sink`](cdc_core::Sink): an event's way from `write` to a
//!   file, and what is durable;
//! - `stats`: [`SinkStats`], what the sink did;
//! - `format`: [`Format`], [`Layout`], Parquet and NDJSON options, and the namespaces
//!   [`columns`] (how SQL Server types map to Parquet columns) and [`meta`] (metadata
//!   column names);
//! - `partitioner`: [`Partitioner`], [`DefaultPartitioner`], [`FieldPartitioner`],
//!   [`TimeBasedPartitioner`];
//! - `rotation`: [`Rotation`], when a file closes;
//! - `retry`: [`RetryPolicy`] and [`is_transient`];
//! - `error`: [`S3SinkError`].
//!
//! Internal, in the order an event meets them:
//! - `files`: the open-file table (open files, the memory budget), with `files::key` (which
//!   file an event goes to), `files::fast` (a run of events appended without the store) and
//!   `files::naming` (object names in the Kafka Connect layout);
//! - `format`'s encoders: `format::parquet` (and `format::parquet::footer`, a stored file's
//!   last position), `format::ndjson`, `format::meta`'s builders;
//! - `recovery`: where a replay resumes, read from the newest stored file of a source
//!   partition;
//! - `upload`: conditional PUTs and multipart uploads with retries;
//! - `ledger`: per source partition, what is held and what may be reported durable;
//! - `settings`, `budget`: the validated settings and the memory budget.

mod budget;
mod config;
mod error;
mod files;
mod format;
mod ledger;
mod partitioner;
mod recovery;
mod retry;
mod rotation;
mod settings;
mod sink;
mod stats;
mod upload;

pub use config::{MIN_S3_PART_SIZE, S3SinkBuilder};
pub use error::{Result, S3SinkError};
pub use format::{
    Dictionary, Format, Layout, NdjsonCompression, NdjsonOptions, ParquetCompression,
    ParquetOptions, columns, meta,
};
pub use partitioner::{
    DAILY_PATH_FORMAT, DefaultPartitioner, FieldPartitioner, HOURLY_PATH_FORMAT, NULL_PARTITION,
    PartitionContext, Partitioner, TimeBasedPartitioner, TimeSource, Zone,
};
pub use retry::{RetryPolicy, is_transient};
pub use rotation::Rotation;
pub use sink::S3Sink;
pub use stats::SinkStats;
