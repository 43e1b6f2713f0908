//! Parquet files through arrow-rs's `ArrowWriter`: the encoder here, reading a stored
//! file's last position back from its footer in `footer`.

mod footer;

use footer::LAST_POSITION_KEY;
pub(crate) use footer::read_last_position;

use super::background::EncodeThread;
use super::columns::ImageBuilder;
use super::dictionary::{self, Dictionary};
use super::envelope::EnvelopeBuilder;
use super::meta::{self, MetaBuilder, MetaNames};
use super::{FileEncoder, Layout, OutBuf, ParquetCompression, ParquetOptions};
use crate::error::{Result, S3SinkError};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use cdc_core::{ChangeEvent, Position, TableSchema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

/// Fixed memory of one column's writer state, measured (see `memory`).
const PER_COLUMN_OVERHEAD: usize = 2048;

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
/// Rows gather in Arrow builders; every `batch_rows` they become a record batch whose leaf
/// columns are encoded by the file's column writers (arrow-rs's `ArrowColumnWriter`s, the ones
/// `ArrowWriter` uses inside). With the sink's encoding thread, a fixed share of the columns
/// (chosen from the file's first batch) is encoded there while this thread encodes the rest
/// and goes on to the next events; the thread's share of a batch is waited for when the next
/// batch is handed over. Each column's bytes are the same whichever thread encodes it, so
/// files are byte-identical with the thread or without. The writer's figures (size, memory)
/// are taken when a batch is handed over, for the batches before it, so they depend only on
/// the events appended; a row group closes before the batch that finds it large enough.
pub(crate) struct ParquetEncoder {
    key: String,
    schema: SchemaRef,
    /// The name of the `__position` column (with the sink's metadata prefix).
    position_column: String,
    /// The writer's settings until the first batch decides the dictionaries; then `None`.
    properties: Option<WriterPropertiesBuilder>,
    dictionary: Dictionary,
    row_group_bytes: usize,
    /// The file writer (made with the first batch).
    writer: Option<Writer>,
    /// A batch failed: its columns may be written in part, so the file takes no more.
    failed: bool,
    background: Option<Arc<EncodeThread>>,
    rows: Rows,
    meta: MetaBuilder,
    batch_rows: usize,
    pending_rows: usize,
    pending_bytes: usize,
    /// Estimated bytes of the batch last handed over, not yet in the writer's figures.
    in_flight_bytes: usize,
    writer_size: usize,
    writer_memory: usize,
    out_len: usize,
    out_capacity: usize,
}

/// A file being written.
struct Writer {
    file: SerializedFileWriter<OutBuf>,
    factory: ArrowRowGroupWriterFactory,
    /// The column writers of the row group in progress that are here, by leaf index (`None`
    /// before the row group's first batch).
    here: Option<Columns>,
    /// The writers of the encoding thread's share, coming back with its last batch's result.
    away: Option<Receiver<(Columns, ParquetResult)>>,
    /// Which leaves the encoding thread encodes (empty: none), fixed for the file.
    split: Vec<bool>,
}

type ParquetResult = std::result::Result<(), ParquetError>;

/// Column writers, each with its leaf's index in the schema.
type Columns = Vec<(usize, ArrowColumnWriter)>;

/// Encodes each leaf with the writer of its index; the first error, after trying them all.
fn encode_leaves(
    writers: &mut [(usize, ArrowColumnWriter)],
    leaves: &[(usize, ArrowLeafColumn)],
) -> ParquetResult {
    let mut result = Ok(());
    for ((_, writer), (_, leaf)) in writers.iter_mut().zip(leaves) {
        if let Err(e) = writer.write(leaf)
            && result.is_ok()
        {
            result = Err(e);
        }
    }
    result
}

/// Which leaves go to the encoding thread: largest first, each to the side with less work
/// so far, this thread starting with a handicap of two thirds of the total for turning the
/// next events into rows and closing the file. With that handicap callgrind counts about
/// 1,840 instructions per event on this thread and 1,700 on the encoding thread for the
/// encode bench's rows (one thread alone: 3,490). `weights` are the leaves' sizes in memory;
/// the split only decides speed, never bytes.
fn for_the_thread(weights: &[usize]) -> Vec<bool> {
    let total: usize = weights.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weights.get(i).copied().unwrap_or(0)));
    let (mut away, mut here) = (0usize, total / 3 * 2);
    let mut out = vec![false; weights.len()];
    for i in order {
        let w = weights.get(i).copied().unwrap_or(0);
        if away <= here {
            away += w;
            if let Some(slot) = out.get_mut(i) {
                *slot = true;
            }
        } else {
            here += w;
        }
    }
    out
}

/// The error when the encoding thread never gave the column writers back (it panicked).
fn lost(key: &str) -> S3SinkError {
    S3SinkError::Parquet {
        key: key.to_string(),
        source: ParquetError::General(
            "the encoding thread ended before returning the column writers".into(),
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
            row_group_bytes: options.row_group_bytes.max(1),
            writer: None,
            failed: false,
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

    fn error(&self, source: ParquetError) -> S3SinkError {
        S3SinkError::Parquet {
            key: self.key.clone(),
            source,
        }
    }

    /// Makes the writer, choosing the dictionary columns from the file's first batch, and
    /// the encoding thread's share of the columns from its leaves' sizes.
    fn start(&mut self, first: Option<(&RecordBatch, &[usize])>) -> Result<()> {
        let Some(mut properties) = self.properties.take() else {
            return Ok(());
        };
        if let (Dictionary::WhenSmaller, Some((batch, _))) = (self.dictionary, first) {
            for column in dictionary::plain_columns(batch, &[self.position_column.as_str()]) {
                properties = properties.set_column_dictionary_enabled(column, false);
            }
        }
        // `ArrowWriter` makes the Parquet schema and embeds the Arrow schema in the footer,
        // as for a file it writes itself; its column writers then encode the batches.
        let (file, factory) = ArrowWriter::try_new(
            OutBuf::default(),
            Arc::clone(&self.schema),
            Some(properties.build()),
        )
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(|e| self.error(e))?;
        let split = match (&self.background, first) {
            (Some(_), Some((_, weights))) => for_the_thread(weights),
            _ => Vec::new(),
        };
        self.writer = Some(Writer {
            file,
            factory,
            here: None,
            away: None,
            split,
        });
        Ok(())
    }

    /// Brings the encoding thread's share of the column writers back (its last batch's
    /// error, if any, fails the file).
    fn home(&mut self) -> Result<()> {
        if self.failed {
            return Err(self.error(ParquetError::General(
                "an earlier batch of the file failed".into(),
            )));
        }
        let key = self.key.clone();
        let away = self.writer.as_mut().ok_or_else(|| lost(&key))?.away.take();
        let Some(away) = away else {
            return Ok(());
        };
        let Ok((back, result)) = away.recv() else {
            self.failed = true;
            return Err(lost(&key));
        };
        if let Err(e) = result {
            self.failed = true;
            return Err(self.error(e));
        }
        let writer = self.writer.as_mut().ok_or_else(|| lost(&key))?;
        let here = writer.here.get_or_insert_with(Vec::new);
        here.extend(back);
        here.sort_unstable_by_key(|(i, _)| *i);
        Ok(())
    }

    /// Hands the gathered rows to the column writers as one record batch.
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
        let mut leaves = Vec::new();
        let mut weights = Vec::new();
        for (field, array) in self.schema.fields().iter().zip(batch.columns()) {
            let field_leaves = compute_leaves(field, array).map_err(|e| self.error(e))?;
            let weight = array.get_array_memory_size() / field_leaves.len().max(1);
            weights.extend(std::iter::repeat_n(weight, field_leaves.len()));
            leaves.extend(field_leaves);
        }
        self.start(Some((&batch, &weights)))?;
        let handed = self.hand_over(leaves);
        self.failed |= handed.is_err();
        self.in_flight_bytes = self.pending_bytes;
        self.pending_rows = 0;
        self.pending_bytes = 0;
        handed
    }

    /// Takes the figures of the batches so far (all writers are home), closes the row group
    /// if it is large enough, then encodes `leaves`: the thread's share there, the rest here.
    fn hand_over(&mut self, leaves: Vec<ArrowLeafColumn>) -> Result<()> {
        let key = self.key.clone();
        let err = |source| S3SinkError::Parquet {
            key: key.clone(),
            source,
        };
        let background = self.background.clone();
        let row_group_bytes = self.row_group_bytes;
        self.home()?;
        self.measure()?;
        let full = self.writer_size - self.writer_file_bytes() >= row_group_bytes;
        let writer = self.writer.as_mut().ok_or_else(|| lost(&key))?;
        if full {
            close_row_group(writer).map_err(err)?;
        }
        let mut here = match writer.here.take() {
            Some(here) => here,
            None => writer
                .factory
                .create_column_writers(writer.file.flushed_row_groups().len())
                .map_err(err)?
                .into_iter()
                .enumerate()
                .collect(),
        };
        if here.len() != leaves.len() {
            return Err(err(ParquetError::General(format!(
                "{} leaf columns for {} column writers",
                leaves.len(),
                here.len()
            ))));
        }
        let (mut away_writers, mut here_writers) = (Vec::new(), Vec::with_capacity(here.len()));
        let (mut away_leaves, mut here_leaves) = (Vec::new(), Vec::with_capacity(here.len()));
        for ((i, column), leaf) in here.drain(..).zip(leaves) {
            if background.is_some() && writer.split.get(i).copied().unwrap_or(false) {
                away_writers.push((i, column));
                away_leaves.push((i, leaf));
            } else {
                here_writers.push((i, column));
                here_leaves.push((i, leaf));
            }
        }
        if let Some(thread) = background.filter(|_| !away_writers.is_empty()) {
            let (done, back) = sync_channel(1);
            let job: super::background::Job = Box::new(move || {
                let result = encode_leaves(&mut away_writers, &away_leaves);
                drop(away_leaves);
                let _ = done.send((away_writers, result));
            });
            if let Err(job) = thread.run(job) {
                job();
            }
            writer.away = Some(back);
        }
        let result = encode_leaves(&mut here_writers, &here_leaves);
        writer.here = Some(here_writers);
        result.map_err(err)
    }

    /// Bytes the file writer has written (closed row groups).
    fn writer_file_bytes(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.file.bytes_written())
    }

    /// Takes the writer's figures; every column writer must be home.
    fn measure(&mut self) -> Result<()> {
        let key = self.key.clone();
        let writer = self.writer.as_ref().ok_or_else(|| lost(&key))?;
        let (in_progress, memory) = writer.here.as_ref().map_or((0, 0), |columns| {
            columns.iter().fold((0, 0), |(size, memory), (_, c)| {
                (
                    size + c.get_estimated_total_bytes(),
                    memory + c.memory_size(),
                )
            })
        });
        let out = &writer.file.inner().0;
        self.writer_size = writer.file.bytes_written() + in_progress;
        self.writer_memory = memory;
        self.out_len = out.len();
        self.out_capacity = out.capacity();
        self.in_flight_bytes = 0;
        Ok(())
    }
}

/// Closes the row group in progress, if any: its column chunks go into the file.
fn close_row_group(writer: &mut Writer) -> ParquetResult {
    let Some(columns) = writer.here.take() else {
        return Ok(());
    };
    let mut group = writer.file.next_row_group()?;
    for (_, column) in columns {
        column.close()?.append_to_row_group(&mut group)?;
    }
    group.close()?;
    Ok(())
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
        // Builders hold roughly the raw values; the column writers report their own buffers;
        // the output buffer holds closed row groups not yet uploaded. The per-column constant
        // covers the column writers' fixed state (page buffers, dictionary tables,
        // statistics) that their estimate leaves out: measured as the resident-memory growth
        // per open file with 1,000 files open (tests/budget.rs), about 2 KiB per column.
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
        // Judged by the figures of the last hand-over; the output buffer only changes when a
        // row group closes, on this thread.
        if size == 0 || self.out_len < size {
            return Ok(None);
        }
        let key = self.key.clone();
        let writer = self.writer.as_mut().ok_or_else(|| lost(&key))?;
        let part = writer.file.inner_mut().take_part(size);
        let out_len = writer.file.inner().0.len();
        if part.is_some() {
            self.out_len = out_len;
        }
        Ok(part)
    }

    fn finish(mut self: Box<Self>, last: &Position) -> Result<Vec<u8>> {
        self.write_batch()?;
        self.start(None)?;
        self.home()?;
        let key = self.key.clone();
        let mut writer = self.writer.take().ok_or_else(|| lost(&key))?;
        close_row_group(&mut writer).map_err(|e| self.error(e))?;
        writer.file.append_key_value_metadata(KeyValue::new(
            LAST_POSITION_KEY.to_string(),
            super::meta::position_json(last),
        ));
        let out = writer.file.into_inner().map_err(|e| self.error(e))?;
        Ok(out.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_largest_columns_go_to_the_encoding_thread_while_this_one_keeps_a_share() {
        // Of 100, this thread starts at 66 (for the next rows): the encoding thread takes
        // the 50 and the 30 (it has less so far), this one the two 10s.
        assert_eq!(
            for_the_thread(&[30, 10, 50, 10]),
            vec![true, false, true, false]
        );
        assert_eq!(for_the_thread(&[]), Vec::<bool>::new());
        assert_eq!(for_the_thread(&[5]), vec![true]);
    }

    #[test]
    fn after_a_failed_batch_the_file_refuses_the_rest() {
        let events = cdc_core::testing::sample_events("s", 4);
        let options = ParquetOptions {
            batch_rows: 2,
            encode_in_background: false,
            ..ParquetOptions::default()
        };
        let names = MetaNames::default();
        let mut encoder =
            ParquetEncoder::new("k", &events[0].table, false, &options, &names, None).unwrap();
        encoder.append(&events[0]).unwrap();
        encoder.append(&events[1]).unwrap();
        // A batch whose columns may be written in part: no later batch is written after it.
        encoder.failed = true;
        encoder.append(&events[2]).unwrap();
        let cause = |e: S3SinkError| {
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let refused = encoder.append(&events[3]).unwrap_err();
        assert!(cause(refused).contains("earlier batch"));
        let finished = Box::new(encoder).finish(events[3].position());
        assert!(cause(finished.unwrap_err()).contains("earlier batch"));
    }
}
