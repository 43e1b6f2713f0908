//! Parquet files through arrow-rs's `ArrowWriter`.

use super::background::EncodeThread;
use super::columns::ImageBuilder;
use super::dictionary::{self, Dictionary};
use super::envelope::EnvelopeBuilder;
use super::meta::{self, MetaBuilder, MetaNames};
use super::{FileEncoder, Layout, OutBuf, ParquetCompression, ParquetOptions, Unreadable};
use crate::error::{Result, S3SinkError};
use crate::upload::Uploader;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use cdc_core::{ChangeEvent, Position, TableSchema};
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

/// Fixed memory of one column's writer state, measured (see `memory`).
const PER_COLUMN_OVERHEAD: usize = 2048;

/// Footer key holding the JSON position of the file's last event.
pub(crate) const LAST_POSITION_KEY: &str = "cdc.last_position";

/// Row builders for one layout.
enum Rows {
    Flat(ImageBuilder),
    Envelope(Box<EnvelopeBuilder>),
}

impl Rows {
    fn append(&mut self, event: &ChangeEvent) -> Result<()> {
        match self {
            Rows::Flat(image) => image.append(event.row()),
            Rows::Envelope(envelope) => envelope.append(event),
        }
    }

    fn finish(&mut self) -> std::result::Result<Vec<ArrayRef>, ArrowError> {
        match self {
            Rows::Flat(image) => Ok(image.finish()),
            Rows::Envelope(envelope) => envelope.finish(),
        }
    }
}

/// Encodes events of one table version into a Parquet file in memory.
///
/// Rows gather in Arrow builders; every `batch_rows` they become a record batch that the
/// writer encodes, on the sink's encoding thread when there is one. A new batch is queued
/// behind the one being encoded, then this thread waits for the earlier one's figures, so the
/// encoding thread goes from batch to batch without waiting for this one to be scheduled. A
/// part upload or the end of the file waits for the last batch.
pub(crate) struct ParquetEncoder {
    key: String,
    schema: SchemaRef,
    /// The name of the `__position` column (with the sink's metadata prefix).
    position_column: String,
    /// The writer's settings until the first batch decides the dictionaries; then `None`.
    properties: Option<WriterPropertiesBuilder>,
    dictionary: Dictionary,
    /// The writer (made with the first batch), which each batch's job takes in turn.
    slot: Arc<Mutex<Slot>>,
    /// Where the figures of the batch being encoded come back.
    away: Option<Receiver<Encoded>>,
    background: Option<Arc<EncodeThread>>,
    rows: Rows,
    meta: MetaBuilder,
    batch_rows: usize,
    pending_rows: usize,
    pending_bytes: usize,
    /// Estimated bytes of the batch being encoded.
    in_flight_bytes: usize,
    /// The writer's figures when it last came back. They are taken at points that depend
    /// only on the events appended (a new batch, a part, the end), never on how fast the
    /// encoding thread is, so rotation by size cuts files at the same event in every run.
    writer_size: usize,
    writer_memory: usize,
    out_len: usize,
    out_capacity: usize,
}

/// A file's writer between batches. The jobs of one file run one after another, in the order
/// sent (on the sink's encoding thread, or inline), so each finds the writer its predecessor
/// left; after a failed batch the rest are refused, so no batch is written out of turn.
#[derive(Default)]
struct Slot {
    writer: Option<ArrowWriter<OutBuf>>,
    failed: bool,
}

/// The figures of the writer after encoding a batch, and the batch's result.
struct Encoded {
    result: std::result::Result<(), parquet::errors::ParquetError>,
    size: usize,
    memory: usize,
    out_len: usize,
    out_capacity: usize,
}

impl Encoded {
    fn refused(reason: &str) -> Self {
        Self {
            result: Err(parquet::errors::ParquetError::General(reason.into())),
            size: 0,
            memory: 0,
            out_len: 0,
            out_capacity: 0,
        }
    }
}

/// Encodes one batch. Also computes the writer's figures, which walk every column writer.
fn encode(slot: &Mutex<Slot>, batch: &RecordBatch) -> Encoded {
    let Ok(mut slot) = slot.lock() else {
        return Encoded::refused("an encoding job of the file panicked");
    };
    let slot = &mut *slot;
    if slot.failed {
        return Encoded::refused("an earlier batch of the file failed");
    }
    let Some(writer) = slot.writer.as_mut() else {
        return Encoded::refused("the file's writer is gone");
    };
    let result = writer.write(batch);
    slot.failed = result.is_err();
    Encoded {
        size: writer.bytes_written() + writer.in_progress_size(),
        memory: writer.memory_size(),
        out_len: writer.inner().0.len(),
        out_capacity: writer.inner().0.capacity(),
        result,
    }
}

/// The error when the encoding thread never gave the writer back (it panicked).
fn lost(key: &str) -> S3SinkError {
    S3SinkError::Parquet {
        key: key.to_string(),
        source: parquet::errors::ParquetError::General(
            "the encoding thread ended before returning the writer".into(),
        ),
    }
}

fn compression(
    c: ParquetCompression,
) -> std::result::Result<Compression, parquet::errors::ParquetError> {
    Ok(match c {
        ParquetCompression::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level)?),
        ParquetCompression::Snappy => Compression::SNAPPY,
        ParquetCompression::Gzip(level) => Compression::GZIP(GzipLevel::try_new(level)?),
        ParquetCompression::None => Compression::UNCOMPRESSED,
    })
}

/// The Arrow schema of a file: table columns (or envelope), then metadata columns.
pub(crate) fn arrow_schema(
    table: &TableSchema,
    layout: Layout,
    kafka: bool,
    names: &MetaNames,
) -> Schema {
    let mut fields = match layout {
        Layout::Flattened => ImageBuilder::fields(table),
        Layout::Debezium => EnvelopeBuilder::fields(table),
    };
    fields.extend(MetaBuilder::fields(
        names,
        layout == Layout::Flattened,
        kafka,
    ));
    Schema::new(fields)
}

impl ParquetEncoder {
    pub(crate) fn new(
        key: &str,
        table: &Arc<TableSchema>,
        kafka: bool,
        options: &ParquetOptions,
        names: &MetaNames,
        background: Option<Arc<EncodeThread>>,
    ) -> Result<Self> {
        let err = |source| S3SinkError::Parquet {
            key: key.to_string(),
            source,
        };
        let schema = Arc::new(arrow_schema(table, options.layout, kafka, names));
        meta::check_unique(table, schema.fields().iter().map(|f| f.name().as_str()))?;
        let properties = WriterProperties::builder()
            .set_compression(compression(options.compression).map_err(err)?)
            .set_dictionary_enabled(options.dictionary != Dictionary::Never)
            // Every `__position` is distinct: a dictionary would only be built to be dropped.
            .set_column_dictionary_enabled(ColumnPath::from(names.position.as_str()), false)
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(options.row_group_bytes.max(1)));
        let rows = match options.layout {
            Layout::Flattened => Rows::Flat(ImageBuilder::new(table, 0)),
            Layout::Debezium => Rows::Envelope(Box::new(EnvelopeBuilder::new(table))),
        };
        Ok(Self {
            key: key.to_string(),
            schema,
            position_column: names.position.clone(),
            properties: Some(properties),
            dictionary: options.dictionary,
            slot: Arc::default(),
            away: None,
            background,
            rows,
            meta: MetaBuilder::new(options.layout == Layout::Flattened, kafka),
            batch_rows: options.batch_rows.max(1),
            pending_rows: 0,
            pending_bytes: 0,
            in_flight_bytes: 0,
            writer_size: 0,
            writer_memory: 0,
            out_len: 0,
            out_capacity: 0,
        })
    }

    fn error(&self, source: parquet::errors::ParquetError) -> S3SinkError {
        S3SinkError::Parquet {
            key: self.key.clone(),
            source,
        }
    }

    /// Makes the writer, choosing the dictionary columns from the file's first batch.
    fn start(&mut self, first: Option<&RecordBatch>) -> Result<()> {
        let Some(mut properties) = self.properties.take() else {
            return Ok(());
        };
        if let (Dictionary::WhenSmaller, Some(batch)) = (self.dictionary, first) {
            for column in dictionary::plain_columns(batch, &[self.position_column.as_str()]) {
                properties = properties.set_column_dictionary_enabled(column, false);
            }
        }
        let writer = ArrowWriter::try_new(
            OutBuf::default(),
            Arc::clone(&self.schema),
            Some(properties.build()),
        )
        .map_err(|e| self.error(e))?;
        self.slot.lock().map_err(|_| lost(&self.key))?.writer = Some(writer);
        Ok(())
    }

    /// Waits for the batch being encoded; takes its figures and surfaces its error.
    fn settle(&mut self) -> Result<()> {
        match self.away.take() {
            Some(away) => {
                let back = away.recv().map_err(|_| lost(&self.key))?;
                self.writer_size = back.size;
                self.writer_memory = back.memory;
                self.out_len = back.out_len;
                self.out_capacity = back.out_capacity;
                self.in_flight_bytes = 0;
                back.result.map_err(|e| self.error(e))
            }
            None => Ok(()),
        }
    }

    /// The writer with no batch being encoded.
    fn home(&mut self) -> Result<std::sync::MutexGuard<'_, Slot>> {
        self.start(None)?;
        self.settle()?;
        self.slot.lock().map_err(|_| lost(&self.key))
    }

    /// Hands the gathered rows to the writer as one record batch.
    fn write_batch(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let mut columns = self.rows.finish().map_err(|e| self.error(e.into()))?;
        self.meta
            .finish(&mut columns)
            .map_err(|e| self.error(e.into()))?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| self.error(e.into()))?;
        self.start(Some(&batch))?;
        // The same channel whether the batch is encoded here or on the thread, so the
        // writer's figures are taken at the same points either way: after the previous
        // batch, once this one is queued behind it.
        let (done, away) = sync_channel(1);
        let slot = Arc::clone(&self.slot);
        let job: super::background::Job = Box::new(move || {
            let _ = done.send(encode(&slot, &batch));
        });
        match &self.background {
            Some(thread) => {
                if let Err(job) = thread.run(job) {
                    job();
                }
            }
            None => job(),
        }
        let settled = self.settle();
        self.away = Some(away);
        self.in_flight_bytes = self.pending_bytes;
        self.pending_rows = 0;
        self.pending_bytes = 0;
        settled
    }
}

impl FileEncoder for ParquetEncoder {
    fn append(&mut self, event: &ChangeEvent) -> Result<()> {
        self.rows.append(event)?;
        self.meta.append(event);
        self.pending_rows += 1;
        self.pending_bytes += event.approx_size();
        if self.pending_rows >= self.batch_rows {
            self.write_batch()?;
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.writer_size + self.in_flight_bytes + self.pending_bytes
    }

    fn memory(&self) -> usize {
        // Builders hold roughly the raw values; the writer reports its own buffers; the output
        // buffer holds closed row groups not yet uploaded. The per-column constant covers the
        // column writers' fixed state (page buffers, dictionary tables, statistics) that the
        // writer's estimate leaves out: measured as the resident-memory growth per open file
        // with 1,000 files open (tests/budget.rs), about 2 KiB per column.
        self.pending_bytes
            + self.in_flight_bytes
            + self.writer_memory
            + self.out_capacity
            + PER_COLUMN_OVERHEAD * self.schema.fields().len()
    }

    fn ready(&self) -> usize {
        self.out_len
    }

    fn take_part(&mut self, size: usize) -> Result<Option<Vec<u8>>> {
        // Judged by the figures of the writer's last return: waiting for it here would
        // make part boundaries (and the writer's start) depend on timing.
        if size == 0 || self.out_len < size {
            return Ok(None);
        }
        let key = self.key.clone();
        let mut slot = self.home()?;
        let writer = slot.writer.as_mut().ok_or_else(|| lost(&key))?;
        let part = writer.inner_mut().take_part(size);
        let out_len = writer.inner().0.len();
        drop(slot);
        if part.is_some() {
            self.out_len = out_len;
        }
        Ok(part)
    }

    fn finish(mut self: Box<Self>, last: &Position) -> Result<Vec<u8>> {
        self.write_batch()?;
        let writer = self.home()?.writer.take();
        let mut writer = writer.ok_or_else(|| lost(&self.key))?;
        writer.append_key_value_metadata(KeyValue::new(
            LAST_POSITION_KEY.to_string(),
            super::meta::position_json(last),
        ));
        let out = writer.into_inner().map_err(|e| self.error(e))?;
        Ok(out.0)
    }
}

/// The last position recorded in the footer of the stored Parquet file at `path`. Only the
/// footer is read: one ranged read of the file's tail, a second if the footer is larger.
pub(crate) async fn read_last_position(
    uploader: &Uploader,
    path: &Path,
) -> Result<Option<Position>> {
    const TAIL: u64 = 64 * 1024;
    let recovery = |why: Unreadable| super::recovery(path, why);
    let (tail, size) = uploader
        .get_suffix(path, TAIL)
        .await?
        .ok_or_else(|| recovery("vanished".into()))?;
    let range = metadata_range(&tail, size).map_err(|e| recovery(e.into()))?;
    let tail_start = size
        .checked_sub(tail.len() as u64)
        .ok_or_else(|| recovery("the store returned more bytes than the object has".into()))?;
    let metadata = if range.start >= tail_start {
        let from = usize::try_from(range.start - tail_start)
            .map_err(|e| recovery(Unreadable::caused_by("the footer lies beyond memory", e)))?;
        tail.slice(from..tail.len() - 8)
    } else {
        uploader.get_range(path, range).await?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| {
        recovery(Unreadable::caused_by(
            "the Parquet footer cannot be decoded",
            e,
        ))
    })?;
    position_from(&metadata).map_err(recovery)
}

/// Where the footer metadata of a Parquet file of `size` bytes lies, from its last 8 bytes
/// (metadata length, then `PAR1`).
fn metadata_range(tail: &[u8], size: u64) -> std::result::Result<std::ops::Range<u64>, String> {
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return Err("not a Parquet file (no PAR1 footer)".into());
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&tail[n - 8..n - 4]);
    let len = u64::from(u32::from_le_bytes(len));
    let end = size.checked_sub(8).ok_or("file too short")?;
    let start = end.checked_sub(len).ok_or("footer longer than the file")?;
    Ok(start..end)
}

fn position_from(
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> std::result::Result<Option<Position>, Unreadable> {
    let Some(kv) = metadata.file_metadata().key_value_metadata() else {
        return Ok(None);
    };
    match kv
        .iter()
        .find(|kv| kv.key == LAST_POSITION_KEY)
        .and_then(|kv| kv.value.as_deref())
    {
        Some(json) => serde_json::from_str(json).map(Some).map_err(|e| {
            Unreadable::caused_by(format!("{LAST_POSITION_KEY} is not a position"), e)
        }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use arrow_array::{Int32Array, StringArray};
    use arrow_schema::{DataType, Field};

    #[test]
    fn after_a_failed_batch_the_file_refuses_the_rest() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
        let writer = ArrowWriter::try_new(OutBuf::default(), Arc::clone(&schema), None).unwrap();
        let slot = Mutex::new(Slot {
            writer: Some(writer),
            failed: false,
        });
        let good = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int32Array::from(vec![1, 2]))],
        )
        .unwrap();
        let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let bad =
            RecordBatch::try_new(other, vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();

        assert!(encode(&slot, &good).result.is_ok());
        assert!(encode(&slot, &bad).result.is_err());
        let rows_after_failure = slot
            .lock()
            .unwrap()
            .writer
            .as_ref()
            .unwrap()
            .in_progress_rows();
        // A batch queued behind the failed one is not written in its place.
        let refused = encode(&slot, &good);
        assert!(
            refused
                .result
                .unwrap_err()
                .to_string()
                .contains("earlier batch")
        );
        let slot = slot.lock().unwrap();
        assert_eq!(
            slot.writer.as_ref().unwrap().in_progress_rows(),
            rows_after_failure
        );
    }
}
