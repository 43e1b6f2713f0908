//! File formats: Parquet and NDJSON, each in the flattened or the Debezium envelope layout.

mod background;
pub mod columns;
mod dictionary;
mod envelope;
pub mod meta;
mod ndjson;
mod parquet;

use background::EncodeThread;
pub use dictionary::Dictionary;
use ndjson::NdjsonEncoder;
use parquet::ParquetEncoder;

use crate::error::{Result, S3SinkError};
use crate::upload::Uploader;
use cdc_core::{ChangeEvent, DebeziumJson, EventCodec, Position, TableSchema};
use object_store::path::Path;
use std::sync::{Arc, OnceLock};

/// How an event becomes a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One column per table column holding the after image (the before image for deletes),
    /// then the metadata columns of [`meta`] (`__op`, `__deleted`, `__commit_time`, LSNs,
    /// `__position`, and `__kafka_*` for Kafka-borne events). What Debezium's
    /// `ExtractNewRecordState` produces; what analysts query.
    #[default]
    Flattened,
    /// The Debezium envelope: `before` and `after` (structs of the table columns), `source`
    /// (connector, name, ts_ms, snapshot, db, schema, table, commit_lsn, change_lsn,
    /// event_serial_no), `op`, `ts_ms`, plus `__position` (and `__kafka_*`).
    Debezium,
}

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParquetCompression {
    /// zstd at a level from 1 to 22 (default 3).
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// gzip at a level from 0 to 9.
    Gzip(u32),
    /// No compression.
    None,
}

impl Default for ParquetCompression {
    fn default() -> Self {
        ParquetCompression::Zstd(3)
    }
}

/// NDJSON compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NdjsonCompression {
    /// Plain `.json`.
    #[default]
    None,
    /// `.json.gz`.
    Gzip,
    /// `.json.zst`.
    Zstd,
}

/// Parquet settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetOptions {
    /// Row layout.
    pub layout: Layout,
    /// Codec; zstd(3) by default.
    pub compression: ParquetCompression,
    /// A row group is closed when its estimated encoded size reaches this many bytes.
    pub row_group_bytes: usize,
    /// Which columns use dictionary encoding: by default each column whose dictionary is
    /// smaller than its plain values in the file's first batch.
    pub dictionary: Dictionary,
    /// Rows gathered before they are handed to the Parquet writer as one record batch
    /// (8192 by default: each hand-over to the encoding thread costs a wake-up, and the
    /// first batch is the sample the dictionary choice is made from).
    pub batch_rows: usize,
    /// Encode a fixed share of each record batch's columns on a thread of the sink's own (on
    /// by default) while the caller's thread encodes the rest and turns the next events into
    /// Arrow arrays, so both cores encode. Files are byte-identical either way; off,
    /// everything runs on the caller's thread.
    pub encode_in_background: bool,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            layout: Layout::Flattened,
            compression: ParquetCompression::default(),
            row_group_bytes: 32 * 1024 * 1024,
            dictionary: Dictionary::WhenSmaller,
            batch_rows: 8192,
            encode_in_background: true,
        }
    }
}

/// NDJSON settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NdjsonOptions {
    /// Row layout: Debezium JSON lines (via `cdc_core::DebeziumJson`) or flattened rows.
    pub layout: Layout,
    /// Compression.
    pub compression: NdjsonCompression,
    /// For the Debezium layout: embed the Connect schema in every line.
    pub debezium_schemas: bool,
}

/// The output format.
///
/// ```
/// use s3_sink::{Format, Layout, NdjsonCompression};
/// assert_eq!(Format::parquet().extension(), "parquet");
/// assert_eq!(Format::ndjson().with_layout(Layout::Debezium).extension(), "json");
/// assert_eq!(Format::ndjson_compressed(NdjsonCompression::Gzip).extension(), "json.gz");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Format {
    /// Apache Parquet.
    Parquet(ParquetOptions),
    /// Newline-delimited JSON.
    Ndjson(NdjsonOptions),
}

impl Default for Format {
    fn default() -> Self {
        Format::parquet()
    }
}

impl Format {
    /// Parquet, flattened, zstd.
    pub fn parquet() -> Self {
        Format::Parquet(ParquetOptions::default())
    }

    /// NDJSON, flattened, uncompressed.
    pub fn ndjson() -> Self {
        Format::Ndjson(NdjsonOptions::default())
    }

    /// NDJSON, flattened, compressed.
    pub fn ndjson_compressed(compression: NdjsonCompression) -> Self {
        Format::Ndjson(NdjsonOptions {
            compression,
            ..NdjsonOptions::default()
        })
    }

    /// The same format with another layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        match &mut self {
            Format::Parquet(o) => o.layout = layout,
            Format::Ndjson(o) => o.layout = layout,
        }
        self
    }

    /// The file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Parquet(_) => "parquet",
            Format::Ndjson(o) => match o.compression {
                NdjsonCompression::None => "json",
                NdjsonCompression::Gzip => "json.gz",
                NdjsonCompression::Zstd => "json.zst",
            },
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Format::Parquet(o) = self {
            if o.row_group_bytes == 0 {
                return Err(S3SinkError::config(
                    "format.row_group_bytes",
                    "must be at least 1",
                ));
            }
            if o.batch_rows == 0 {
                return Err(S3SinkError::config(
                    "format.batch_rows",
                    "must be at least 1",
                ));
            }
            match o.compression {
                ParquetCompression::Zstd(level) if !(1..=22).contains(&level) => {
                    return Err(S3SinkError::config(
                        "format.compression",
                        "zstd level must be 1 to 22",
                    ));
                }
                ParquetCompression::Gzip(level) if level > 9 => {
                    return Err(S3SinkError::config(
                        "format.compression",
                        "gzip level must be 0 to 9",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The one place that knows which format the sink writes: it makes each new file's encoder
/// and reads back where a stored file ends.
pub(crate) struct Encoders {
    format: Format,
    /// What NDJSON files in the Debezium layout hold per line.
    codec: Arc<dyn EventCodec>,
    /// The metadata column names.
    names: Arc<meta::MetaNames>,
    /// Parquet's encoding thread, started with the first Parquet file (`None` inside when it
    /// is off or could not start).
    thread: OnceLock<Option<Arc<EncodeThread>>>,
}

impl std::fmt::Debug for Encoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoders")
            .field("format", &self.format)
            .field("codec", &self.codec.name())
            .field("metadata_prefix", &self.names.prefix())
            .finish()
    }
}

impl Encoders {
    /// Encoders of `format`; `codec` for NDJSON Debezium lines (default: Debezium JSON, with
    /// the Connect schema when [`NdjsonOptions::debezium_schemas`] asks for it).
    pub(crate) fn new(
        format: Format,
        codec: Option<Arc<dyn EventCodec>>,
        metadata_prefix: &str,
    ) -> Self {
        let codec = codec.unwrap_or_else(|| {
            Arc::new(match &format {
                Format::Ndjson(o) if o.debezium_schemas => DebeziumJson::with_schema(),
                _ => DebeziumJson::schemaless(),
            })
        });
        Self {
            format,
            codec,
            names: Arc::new(meta::MetaNames::new(metadata_prefix)),
            thread: OnceLock::new(),
        }
    }

    /// The file extension, without the dot.
    pub(crate) fn extension(&self) -> &'static str {
        self.format.extension()
    }

    /// A new file's encoder. `kafka` says whether the file's events came through Kafka.
    pub(crate) fn open(
        &self,
        key: &str,
        table: &Arc<TableSchema>,
        kafka: bool,
    ) -> Result<Box<dyn FileEncoder>> {
        Ok(match &self.format {
            Format::Parquet(o) => {
                let background = if o.encode_in_background {
                    self.thread
                        .get_or_init(|| EncodeThread::start().map(Arc::new))
                        .clone()
                } else {
                    None
                };
                Box::new(ParquetEncoder::new(
                    key,
                    table,
                    kafka,
                    o,
                    &self.names,
                    background,
                )?)
            }
            Format::Ndjson(o) => Box::new(NdjsonEncoder::new(
                key,
                table,
                o,
                Arc::clone(&self.codec),
                Arc::clone(&self.names),
                kafka,
            )?),
        })
    }

    /// The position of the last event in the stored file at `path`, which this format wrote.
    pub(crate) async fn last_position(
        &self,
        uploader: &Uploader,
        path: &Path,
    ) -> Result<Option<Position>> {
        match &self.format {
            Format::Parquet(_) => parquet::read_last_position(uploader, path).await,
            Format::Ndjson(o) => {
                let bytes = uploader
                    .get(path)
                    .await?
                    .ok_or_else(|| recovery(path, "vanished"))?;
                ndjson::last_position(&bytes, o.compression, &self.names.position)
                    .map_err(|e| recovery(path, e))
            }
        }
    }
}

/// Why a stored file's last position cannot be read: what is wrong in the sink's words, and
/// the decoder's error (Parquet, gzip, zstd, JSON) behind it when there is one.
#[derive(Debug)]
pub(crate) struct Unreadable {
    reason: String,
    source: Option<cdc_core::BoxError>,
}

impl Unreadable {
    /// `reason`, caused by the decoder's error `source`.
    pub(crate) fn caused_by(
        reason: impl Into<String>,
        source: impl Into<cdc_core::BoxError>,
    ) -> Self {
        Self {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

impl From<&str> for Unreadable {
    fn from(reason: &str) -> Self {
        Self {
            reason: reason.into(),
            source: None,
        }
    }
}

impl From<String> for Unreadable {
    fn from(reason: String) -> Self {
        Self {
            reason,
            source: None,
        }
    }
}

/// The error of a stored file whose last position cannot be read.
pub(crate) fn recovery(path: &Path, why: impl Into<Unreadable>) -> S3SinkError {
    let why = why.into();
    S3SinkError::Recovery {
        key: path.to_string(),
        reason: why.reason,
        source: why.source,
    }
}

/// One file being encoded.
pub(crate) trait FileEncoder: Send {
    /// Adds an event.
    fn append(&mut self, event: &ChangeEvent) -> Result<()>;
    /// The file's size as rotation counts it; depends only on the events appended.
    fn size(&self) -> usize;
    /// Bytes held in memory (buffers, encoder state, encoded output not yet uploaded).
    fn memory(&self) -> usize;
    /// Bytes of finished output waiting to be uploaded.
    fn ready(&self) -> usize;
    /// Takes `size` bytes of finished output for a multipart part, if that many are ready.
    fn take_part(&mut self, size: usize) -> Result<Option<Vec<u8>>>;
    /// Ends the file; returns the rest of its bytes. `last` is recorded in the file so a
    /// restarted sink knows where the file ends.
    fn finish(self: Box<Self>, last: &Position) -> Result<Vec<u8>>;
}

/// A growable output buffer the encoders write into, drained part by part.
#[derive(Debug, Default)]
pub(crate) struct OutBuf(pub(crate) Vec<u8>);

impl OutBuf {
    pub(crate) fn take_part(&mut self, size: usize) -> Option<Vec<u8>> {
        if size == 0 || self.0.len() < size {
            return None;
        }
        let rest = self.0.split_off(size);
        Some(std::mem::replace(&mut self.0, rest))
    }
}

impl std::io::Write for OutBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
