//! Writes the Debezium envelope straight into bytes.
//!
//! Building a `serde_json::Value` tree per event cost an allocation per column name and per
//! string value; the transport spent most of its time there. The writer produces the same
//! document, field for field, in the same order, so the output stays deterministic.

use super::debezium_schema::Logical;
use super::debezium_value;
use super::handling::Handling;
use crate::{ChangeEvent, Error, Position, Result, Row, SnapshotMarker, TableSchema, Value};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use std::io::Write;

/// Appends `s` as a JSON string, escaped.
fn put_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and a &str always serialises.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn put_key(out: &mut Vec<u8>, key: &str) {
    put_str(out, key);
    out.push(b':');
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}");
}

fn put_i64(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, "{n}");
}

fn put_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let written = BASE64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

/// One column value in its Connect representation.
fn put_value(
    out: &mut Vec<u8>,
    table: &TableSchema,
    index: usize,
    value: &Value,
    handling: &Handling,
) -> Result<()> {
    let column = &table.columns[index];
    let logical = Logical::of(&column.data_type, handling);
    match (logical, value) {
        (_, Value::Null) => out.extend_from_slice(b"null"),
        (Logical::String, Value::String(s)) => put_str(out, s),
        (Logical::Bytes | Logical::Base64Text, Value::Bytes(b)) => put_base64(out, b),
        _ => {
            let start = out.len();
            debezium_value::put(out, value, &column.data_type, logical, handling).map_err(
                |reason| {
                    out.truncate(start);
                    Error::Encode {
                        table: table.id.clone(),
                        column: Some(column.name.clone()),
                        reason,
                    }
                },
            )?;
        }
    }
    Ok(())
}

/// `{"col": value, ...}` for the columns at `indices` of `row`.
pub(super) fn put_columns(
    out: &mut Vec<u8>,
    table: &TableSchema,
    row: &Row,
    indices: impl Iterator<Item = usize>,
    handling: &Handling,
) -> Result<()> {
    if row.values().len() != table.columns.len() {
        return Err(Error::Encode {
            table: table.id.clone(),
            column: None,
            reason: format!(
                "row has {} values, table has {} columns",
                row.values().len(),
                table.columns.len()
            ),
        });
    }
    out.push(b'{');
    for (n, i) in indices.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        put_key(out, &table.columns[i].name);
        put_value(out, table, i, &row.values()[i], handling)?;
    }
    out.push(b'}');
    Ok(())
}

fn put_row(
    out: &mut Vec<u8>,
    table: &TableSchema,
    row: &Option<Row>,
    handling: &Handling,
) -> Result<()> {
    match row {
        Some(row) => put_columns(out, table, row, 0..table.columns.len(), handling),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// `"ts_ms":…,"ts_us":…,"ts_ns":…` (no leading comma).
fn put_times(out: &mut Vec<u8>, time: Option<DateTime<Utc>>) {
    put_key(out, "ts_ms");
    put_i64(out, time.map_or(0, |t| t.timestamp_millis()));
    out.push(b',');
    put_key(out, "ts_us");
    match time {
        Some(t) => put_i64(out, t.timestamp_micros()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    put_key(out, "ts_ns");
    match time.and_then(|t| t.timestamp_nanos_opt()) {
        Some(n) => put_i64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn put_source(out: &mut Vec<u8>, event: &ChangeEvent, handling: &Handling) {
    let source = &event.source;
    let id = &event.table.id;
    out.push(b'{');
    put_key(out, "version");
    put_str(out, env!("CARGO_PKG_VERSION"));
    out.push(b',');
    put_key(out, "connector");
    put_str(out, &source.connector);
    out.push(b',');
    put_key(out, "name");
    put_str(out, &source.name);
    out.push(b',');
    put_times(out, source.commit_time);
    out.push(b',');
    put_key(out, "snapshot");
    put_str(out, source.snapshot.as_str());
    out.push(b',');
    put_key(out, "db");
    put_str(out, &id.database);
    out.push(b',');
    // A snapshot's resume cursor rides in `sequence`, unused by SQL Server otherwise; other
    // kinds of position are written there whole.
    // Debezium writes an initial snapshot's row with only `commit_lsn` (`change_lsn` and
    // `event_serial_no` null): the resume cursor, change LSN and serial number are written
    // in the lossless form only.
    let initial_snapshot = !matches!(
        source.snapshot,
        SnapshotMarker::False | SnapshotMarker::Incremental
    );
    let (sequence, lsns) = match &source.position {
        Position::SqlServer(p)
            if (p.snapshot.is_some() || initial_snapshot) && !handling.lossless =>
        {
            (None, Some((None, p.commit_lsn.text(), None)))
        }
        Position::SqlServer(p) => (
            p.snapshot
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok()),
            Some((
                Some(p.change_lsn.text()),
                p.commit_lsn.text(),
                Some(p.event_serial_no),
            )),
        ),
        other => (serde_json::to_string(other).ok(), None),
    };
    put_key(out, "sequence");
    put_opt_str(out, sequence.as_deref());
    out.push(b',');
    put_key(out, "schema");
    put_str(out, &id.schema);
    out.push(b',');
    put_key(out, "table");
    put_str(out, &id.table);
    out.push(b',');
    put_key(out, "change_lsn");
    put_opt_str(
        out,
        lsns.as_ref().and_then(|l| l.0.as_ref()).map(|l| l.as_str()),
    );
    out.push(b',');
    put_key(out, "commit_lsn");
    put_opt_str(out, lsns.as_ref().map(|l| l.1.as_str()));
    out.push(b',');
    put_key(out, "event_serial_no");
    match lsns.and_then(|l| l.2) {
        Some(serial) => put_u64(out, serial),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// The envelope's payload: `{before, after, source, transaction, op, ts_ms, ts_us, ts_ns}`.
pub(super) fn put_payload(
    out: &mut Vec<u8>,
    event: &ChangeEvent,
    handling: &Handling,
) -> Result<()> {
    let table = &event.table;
    out.push(b'{');
    put_key(out, "before");
    put_row(out, table, &event.before, handling)?;
    out.push(b',');
    put_key(out, "after");
    put_row(out, table, &event.after, handling)?;
    out.push(b',');
    put_key(out, "source");
    put_source(out, event, handling);
    out.push(b',');
    put_key(out, "transaction");
    match event
        .source
        .transaction
        .as_ref()
        .filter(|_| handling.transaction_metadata)
    {
        Some(t) => {
            out.push(b'{');
            put_key(out, "id");
            put_str(out, &t.id);
            out.push(b',');
            put_key(out, "total_order");
            put_u64(out, t.total_order);
            out.push(b',');
            put_key(out, "data_collection_order");
            put_u64(out, t.data_collection_order);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    put_key(out, "op");
    put_str(out, event.op.code());
    out.push(b',');
    put_times(out, event.source.commit_time);
    out.push(b'}');
    Ok(())
}
