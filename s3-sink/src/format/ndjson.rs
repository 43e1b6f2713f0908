//! Newline-delimited JSON: Debezium envelope lines or flattened rows.

use super::meta::{self, MetaNames};
use super::{FileEncoder, Layout, NdjsonCompression, NdjsonOptions, OutBuf};
use crate::error::{Result, S3SinkError};
use base64::Engine;
use cdc_core::codec::DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER;
use cdc_core::{ChangeEvent, EventCodec, Op, Position, TableSchema, Value};
use chrono::SecondsFormat;
use std::io::{Read, Write};
use std::sync::Arc;

/// Uncompressed bytes compressed together as one gzip member or zstd frame. Compressing in
/// chunks (concatenated members and frames are valid gzip and zstd) keeps no compressor
/// state alive between appends, so a thousand open files do not each hold a compressor's
/// window, and chunk boundaries depend only on the data, so the bytes are deterministic.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Encodes events as JSON lines.
pub(crate) struct NdjsonEncoder {
    key: String,
    table: Arc<TableSchema>,
    layout: Layout,
    compression: NdjsonCompression,
    codec: Arc<dyn EventCodec>,
    /// Uncompressed lines not yet compressed.
    chunk: Vec<u8>,
    /// Finished (compressed) output not yet uploaded.
    out: OutBuf,
    /// Uncompressed bytes written: the size rotation counts.
    size: usize,
    /// `"column":` for every column, escaped once per file rather than once per row.
    keys: Vec<Vec<u8>>,
    names: Arc<MetaNames>,
}

impl NdjsonEncoder {
    pub(crate) fn new(
        key: &str,
        table: &Arc<TableSchema>,
        options: &NdjsonOptions,
        codec: Arc<dyn EventCodec>,
        names: Arc<MetaNames>,
        kafka: bool,
    ) -> Result<Self> {
        if options.layout == Layout::Flattened {
            let columns = table.columns.iter().map(|c| c.name.as_str());
            meta::check_unique(table, columns.chain(names.columns(true, kafka)))?;
        }
        Ok(Self {
            key: key.to_string(),
            table: Arc::clone(table),
            layout: options.layout,
            compression: options.compression,
            codec,
            chunk: Vec::new(),
            out: OutBuf::default(),
            size: 0,
            keys: table
                .columns
                .iter()
                .map(|c| {
                    let mut key = Vec::new();
                    json_string(&mut key, &c.name);
                    key.push(b':');
                    key
                })
                .collect(),
            names,
        })
    }

    fn io(&self, source: std::io::Error) -> S3SinkError {
        S3SinkError::Io {
            key: self.key.clone(),
            source,
        }
    }

    fn compress_chunk(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        match self.compression {
            NdjsonCompression::None => self.out.0.extend_from_slice(&chunk),
            NdjsonCompression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(&mut self.out.0, flate2::Compression::default());
                let done = encoder
                    .write_all(&chunk)
                    .and_then(|()| encoder.try_finish());
                drop(encoder);
                done.map_err(|e| self.io(e))?;
            }
            NdjsonCompression::Zstd => {
                let compressed = zstd::bulk::compress(&chunk, 3).map_err(|e| self.io(e))?;
                self.out.0.extend_from_slice(&compressed);
            }
        }
        Ok(())
    }

    fn write_flattened(&mut self, event: &ChangeEvent) {
        let line = &mut self.chunk;
        line.push(b'{');
        let row = event.row();
        for (i, key) in self.keys.iter().enumerate() {
            line.extend_from_slice(key);
            json_value(line, row.and_then(|r| r.get(i)).unwrap_or(&Value::Null));
            line.push(b',');
        }
        let names = &*self.names;
        field(line, &names.op, |l| json_string(l, event.op.code()));
        field(line, &names.deleted, |l| {
            l.extend_from_slice(if event.op == Op::Delete {
                b"true"
            } else {
                b"false"
            })
        });
        field(line, &names.commit_time, |l| {
            match event.source.commit_time {
                Some(t) => json_string(l, &t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                None => l.extend_from_slice(b"null"),
            }
        });
        if let Position::SqlServer(p) = &event.source.position {
            field(line, &names.commit_lsn, |l| {
                json_string(l, &p.commit_lsn.to_string())
            });
            // A snapshot row has only a commit LSN, as Debezium writes it (see meta.rs).
            let streamed = p.snapshot.is_none();
            field(line, &names.change_lsn, |l| {
                if streamed {
                    json_string(l, &p.change_lsn.to_string())
                } else {
                    l.extend_from_slice(b"null")
                }
            });
            field(line, &names.event_serial_no, |l| {
                if streamed {
                    let _ = write!(l, "{}", p.event_serial_no);
                } else {
                    l.extend_from_slice(b"null")
                }
            });
        }
        if let Position::Kafka(k) = event.position() {
            field(line, &names.kafka_topic, |l| json_string(l, &k.topic));
            field(line, &names.kafka_partition, |l| {
                let _ = write!(l, "{}", k.partition);
            });
            field(line, &names.kafka_offset, |l| {
                let _ = write!(l, "{}", k.offset);
            });
        }
        json_string(line, &names.position);
        line.push(b':');
        meta::write_position(line, event.position());
        line.extend_from_slice(b"}\n");
    }

    fn write_envelope(&mut self, event: &ChangeEvent) -> Result<()> {
        let record = self.codec.encode(event).map_err(|e| S3SinkError::Encode {
            table: self.table.id.clone(),
            column: None,
            reason: e.to_string(),
        })?;
        let value = record.value.unwrap_or_else(|| b"{}".to_vec());
        // The envelope gains top-level `__kafka_*` fields for Kafka-borne events and
        // `__position`, so that a restarted sink can tell where the file ends (Kafka offsets
        // are not in the envelope): the codec's output must be one JSON object on one line.
        let body = value
            .trim_ascii()
            .strip_prefix(b"{")
            .and_then(|v| v.strip_suffix(b"}"))
            .filter(|v| !v.contains(&b'\n'))
            .ok_or_else(|| S3SinkError::Encode {
                table: self.table.id.clone(),
                column: None,
                reason: format!(
                    "the codec {} did not encode the event as one JSON object on one line",
                    self.codec.name()
                ),
            })?;
        self.chunk.push(b'{');
        self.chunk.extend_from_slice(body);
        if !body.trim_ascii().is_empty() {
            self.chunk.push(b',');
        }
        let names = &*self.names;
        if let Position::Kafka(k) = event.position() {
            let line = &mut self.chunk;
            field(line, &names.kafka_topic, |l| json_string(l, &k.topic));
            field(line, &names.kafka_partition, |l| {
                let _ = write!(l, "{}", k.partition);
            });
            field(line, &names.kafka_offset, |l| {
                let _ = write!(l, "{}", k.offset);
            });
        }
        json_string(&mut self.chunk, &names.position);
        self.chunk.push(b':');
        meta::write_position(&mut self.chunk, event.position());
        self.chunk.extend_from_slice(b"}\n");
        Ok(())
    }
}

fn field(line: &mut Vec<u8>, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
    json_string(line, name);
    line.push(b':');
    value(line);
    line.push(b',');
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A value as JSON: numbers for integers and floats (non-finite floats as strings), strings
/// for decimals (exact), ISO-8601 text for temporal values (all nine fraction digits kept),
/// base64 for bytes.
fn json_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::U8(n) => {
            let _ = write!(out, "{}", n);
        }
        Value::I16(n) => {
            let _ = write!(out, "{}", n);
        }
        Value::I32(n) => {
            let _ = write!(out, "{}", n);
        }
        Value::I64(n) => {
            let _ = write!(out, "{}", n);
        }
        Value::F32(n) if n.is_finite() => {
            let _ = write!(out, "{}", n);
        }
        Value::F64(n) if n.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::F32(n) => json_string(out, &n.to_string()),
        Value::F64(n) => json_string(out, &n.to_string()),
        Value::Decimal(d) => json_string(out, &d.to_string()),
        Value::String(s) => json_string(out, s),
        Value::Bytes(b) => json_string(out, &base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Date(d) => json_string(out, &d.format("%Y-%m-%d").to_string()),
        Value::Time(t) => json_string(out, &t.format("%H:%M:%S%.f").to_string()),
        Value::DateTime(t) => json_string(out, &t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        Value::DateTimeOffset(t) => {
            json_string(out, &t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        }
        Value::Uuid(u) => json_string(out, &u.to_string()),
        // A large object the change row does not carry: Debezium's placeholder text.
        Value::Unavailable => json_string(out, DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER),
        other => json_string(out, &format!("{other:?}")),
    }
}

impl FileEncoder for NdjsonEncoder {
    fn append(&mut self, event: &ChangeEvent) -> Result<()> {
        let before = self.chunk.len();
        match self.layout {
            Layout::Flattened => self.write_flattened(event),
            Layout::Debezium => self.write_envelope(event)?,
        }
        self.size += self.chunk.len() - before;
        if self.chunk.len() >= CHUNK_BYTES {
            self.compress_chunk()?;
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.size
    }

    fn memory(&self) -> usize {
        self.chunk.capacity() + self.out.0.capacity()
    }

    fn ready(&self) -> usize {
        self.out.0.len()
    }

    fn take_part(&mut self, size: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.out.take_part(size))
    }

    fn finish(mut self: Box<Self>, _last: &Position) -> Result<Vec<u8>> {
        self.compress_chunk()?;
        Ok(std::mem::take(&mut self.out.0))
    }
}

/// The `__position` of the last line of an NDJSON file.
pub(crate) fn last_position(
    bytes: &[u8],
    compression: NdjsonCompression,
    position_column: &str,
) -> std::result::Result<Option<Position>, super::Unreadable> {
    use super::Unreadable;
    let text = match compression {
        NdjsonCompression::None => bytes.to_vec(),
        NdjsonCompression::Gzip => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| Unreadable::caused_by("not gzip", e))?;
            out
        }
        NdjsonCompression::Zstd => {
            zstd::stream::decode_all(bytes).map_err(|e| Unreadable::caused_by("not zstd", e))?
        }
    };
    let Some(line) = text.split(|b| *b == b'\n').rev().find(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let json: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Unreadable::caused_by("the last line is not JSON", e))?;
    match json.get(position_column) {
        Some(p) => serde_json::from_value(p.clone())
            .map(Some)
            .map_err(|e| Unreadable::caused_by(format!("{position_column} is not a position"), e)),
        None => Err(format!("the last line has no {position_column}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_stored_file_that_is_not_gzip_is_a_recovery_error_whose_source_is_the_decoders()
    -> std::result::Result<(), String> {
        let Err(why) = last_position(b"plain text", NdjsonCompression::Gzip, "__position") else {
            return Err("plain text read as gzip".into());
        };
        let error = super::super::recovery(&object_store::path::Path::from("t/f.json.gz"), why);
        assert_eq!(
            error.to_string(),
            "cannot read the last position from t/f.json.gz: not gzip"
        );
        let source = error
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert!(source.is_some(), "{error:?}");
        Ok(())
    }

    #[test]
    fn a_last_line_that_is_not_json_keeps_the_parsers_error() -> std::result::Result<(), String> {
        let Err(why) = last_position(b"{\"a\":1}\n{oops\n", NdjsonCompression::None, "p") else {
            return Err("garbage read as JSON".into());
        };
        let error = super::super::recovery(&object_store::path::Path::from("k"), why);
        let source = error
            .source()
            .and_then(|s| s.downcast_ref::<serde_json::Error>());
        assert!(source.is_some_and(|e| e.is_syntax()), "{error:?}");
        Ok(())
    }
}
