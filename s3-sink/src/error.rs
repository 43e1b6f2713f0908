//! The crate's error type.

use cdc_core::{Position, TableId};

/// Everything that can go wrong in the S3 sink.
///
/// At the [`cdc_core::Sink`] boundary it becomes the `source` of
/// [`cdc_core::Error::Sink`], so `downcast_ref::<S3SinkError>()` on the chain recovers it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3SinkError {
    /// A configuration value is invalid; `field` names the builder method or option.
    #[error("invalid s3-sink configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is rejected.
        reason: String,
    },
    /// An event could not be encoded into the file format.
    #[error("cannot encode {table}{}: {reason}", column.as_ref().map(|c| format!(" column {c:?}")).unwrap_or_default())]
    Encode {
        /// The event's table.
        table: TableId,
        /// The column at fault, when one is.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The Parquet writer failed.
    #[error("parquet encoding of {key} failed")]
    Parquet {
        /// The object being written.
        key: String,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Compressing or writing an NDJSON file failed.
    #[error("ndjson encoding of {key} failed")]
    Io {
        /// The object being written.
        key: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Two columns of a table's files would have the same name, compared without case (as
    /// DuckDB, Spark, Hive and Athena compare names): a table column and a column the sink
    /// adds — a metadata column (`__op`, …; choose another prefix with
    /// [`S3SinkBuilder::metadata_prefix`](crate::S3SinkBuilder::metadata_prefix)) or a
    /// column derived from another (`<column>__nanos`). Raised at the table's first event,
    /// before anything of it is written.
    #[error(
        "cannot write {table}: its column {column:?} has the name of the column {added:?} the sink adds (names compare without case); set another metadata column prefix or rename the column"
    )]
    ColumnCollision {
        /// The table.
        table: TableId,
        /// The table's column.
        column: String,
        /// The column the sink adds under the same name.
        added: String,
    },
    /// The partitioner could not place an event.
    #[error("cannot partition event at {position}: {reason}")]
    Partition {
        /// The event's position.
        position: Position,
        /// Why.
        reason: String,
    },
    /// An object already exists under the key with different content: another writer, or a
    /// non-deterministic configuration. The sink never overwrites it.
    #[error("object {key} already exists with different content; refusing to overwrite")]
    Conflict {
        /// The object key.
        key: String,
    },
    /// An object store call failed, after `attempts` tries when the error was transient.
    #[error("object store {operation} of {key} failed after {attempts} attempt(s)")]
    Store {
        /// `put`, `get`, `list`, `multipart`, ….
        operation: &'static str,
        /// The object key or prefix.
        key: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last error.
        #[source]
        source: object_store::Error,
    },
    /// The object store refused the credentials (HTTP 401 or 403): a wrong secret or access
    /// key, a signature the server does not accept, an expired token, or no permission on the
    /// bucket. Not retried: waiting does not fix it.
    #[error(
        "object store bucket {bucket} refused the credentials for {operation} of {key}: check the access key, secret and permissions"
    )]
    Authentication {
        /// The bucket (or container) written to.
        bucket: String,
        /// `put`, `get`, `list`, `multipart`, ….
        operation: &'static str,
        /// The object key or prefix.
        key: String,
        /// The store's error (boxed: errors are rare, results stay small).
        #[source]
        source: Box<object_store::Error>,
    },
    /// An existing object could not be read back to find where a replay must resume.
    #[error("cannot read the last position from {key}: {reason}")]
    Recovery {
        /// The object key.
        key: String,
        /// Why, in the sink's words.
        reason: String,
        /// The decoder's own error (Parquet, gzip, zstd, JSON), when one is behind it.
        #[source]
        source: Option<cdc_core::BoxError>,
    },
}

impl S3SinkError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        S3SinkError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Result with [`S3SinkError`].
pub type Result<T, E = S3SinkError> = std::result::Result<T, E>;
