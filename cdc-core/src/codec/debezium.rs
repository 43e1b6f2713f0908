//! The Debezium JSON envelope, with or without an embedded Connect schema.

use super::debezium_schema::{Logical, envelope_schema, key_schema, row_logicals};
use super::debezium_schema_read::table_from_schemas;
use super::handling::{BinaryHandlingMode, DecimalHandlingMode, Handling, TimePrecisionMode};
use super::{EncodedRecord, EventCodec, debezium_value, debezium_writer};
use crate::{
    ChangeEvent, Error, Lsn, LsnPosition, Op, Position, Result, Row, SnapshotMarker, SourceInfo,
    TableId, TableSchema, TransactionInfo,
};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Encoded Connect schemas per (source name, table, version), and the last one used.
#[derive(Debug, Default)]
struct SchemaCache {
    by_table: HashMap<(Arc<str>, TableId, u32), Arc<CachedSchemas>>,
    last: Option<(Arc<str>, Arc<CachedSchemas>)>,
}

/// The Debezium change-event envelope in JSON, as Kafka Connect's `JsonConverter` writes it.
///
/// - key: the primary-key columns as an object (`{"id": 7}`);
/// - value: `{before, after, source, transaction, op, ts_ms}` where `source` carries
///   `version, connector, name, ts_ms, snapshot, db, schema, table, commit_lsn, change_lsn,
///   event_serial_no` as Debezium's SQL Server connector does.
///
/// With [`with_schema`](DebeziumJson::with_schema) each key and value is wrapped as
/// `{"schema": …, "payload": …}` (`schemas.enable=true`), using the Connect and Debezium
/// logical types (`org.apache.kafka.connect.data.Decimal`, `io.debezium.time.NanoTimestamp`,
/// `io.debezium.time.ZonedTimestamp`, …) as Debezium's SQL Server connector writes them.
/// Debezium's own output (its default properties) comes from [`builder`](DebeziumJson::builder);
/// the presets [`with_schema`](DebeziumJson::with_schema) and
/// [`schemaless`](DebeziumJson::schemaless) are [lossless](DebeziumJsonBuilder::lossless)
/// (source column types, transaction block and a few additions of ours), so decoding returns
/// the same event, types included; docs/debezium-compatibility.md lists every difference. The
/// [`schemaless`](DebeziumJson::schemaless) form needs the table schemas registered to decode.
///
/// How temporal, exact numeric and binary columns are written follows Debezium's
/// `time.precision.mode`, `decimal.handling.mode` and `binary.handling.mode`, set on the
/// [builder](DebeziumJsonBuilder) (defaults `adaptive`, `precise`, `bytes`); a
/// [`Value::Unavailable`](crate::Value::Unavailable) is written as Debezium's
/// `unavailable.value.placeholder`. Decoding the schema form follows each field's schema, so
/// it reads records written with any modes; the schemaless form is read with the codec's own.
///
/// Differences from Debezium, on purpose: the envelope's `ts_ms` is the commit time rather
/// than the moment of processing, so that re-encoding an event after a restart gives identical
/// bytes (sinks rely on that for exactly-once files); positions other than SQL Server LSNs are
/// written to `source.sequence`.
#[derive(Debug)]
pub struct DebeziumJson {
    schemas: bool,
    handling: Handling,
    /// Tables known to the decoder, and schemas already decoded (reused so that decoded events
    /// of one table share an `Arc`).
    tables: Mutex<HashMap<TableId, Vec<Arc<TableSchema>>>>,
    /// Serialised envelope and key schemas per table version, so encoding does not rebuild
    /// them for every event.
    encoded_schemas: Mutex<SchemaCache>,
}

#[derive(Debug)]
struct CachedSchemas {
    table: Arc<TableSchema>,
    envelope: String,
    key: Option<String>,
}

/// Builds a [`DebeziumJson`] codec.
#[derive(Debug, Default)]
pub struct DebeziumJsonBuilder {
    schemas: bool,
    handling: Handling,
    tables: Vec<Arc<TableSchema>>,
}

impl DebeziumJsonBuilder {
    /// Embed the Connect schema in every key and value (`schemas.enable=true`).
    pub fn schemas(mut self, enabled: bool) -> Self {
        self.schemas = enabled;
        self
    }

    /// Debezium's `time.precision.mode` (default `adaptive`); see [`TimePrecisionMode`].
    pub fn time_precision_mode(mut self, mode: TimePrecisionMode) -> Self {
        self.handling.time = mode;
        self
    }

    /// Debezium's `decimal.handling.mode` (default `precise`); see [`DecimalHandlingMode`].
    pub fn decimal_handling_mode(mut self, mode: DecimalHandlingMode) -> Self {
        self.handling.decimal = mode;
        self
    }

    /// Debezium's `binary.handling.mode` (default `bytes`); see [`BinaryHandlingMode`].
    pub fn binary_handling_mode(mut self, mode: BinaryHandlingMode) -> Self {
        self.handling.binary = mode;
        self
    }

    /// Debezium's `unavailable.value.placeholder`: the text written for a
    /// [`Value::Unavailable`](crate::Value::Unavailable) (default
    /// `__debezium_unavailable_value`, [`DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER`](super::DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER));
    /// binary columns get its UTF-8 bytes.
    pub fn unavailable_value_placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.handling.placeholder = placeholder.into().into();
        self
    }

    /// Debezium's `provide.transaction.metadata` (default `false`, as Debezium's): write each
    /// event's `transaction` block (`id`, `total_order`, `data_collection_order`); without it
    /// the block is `null`, as Debezium writes it. The transaction topic itself is not
    /// produced either way.
    pub fn provide_transaction_metadata(mut self, enabled: bool) -> Self {
        self.handling.transaction_metadata = enabled;
        self
    }

    /// Debezium's `column.propagate.source.type` for every column (`.*`; default off, as
    /// Debezium's): each field schema carries `__debezium.source.column.type`, `…length`
    /// and `…scale`, which is what lets a decoder tell `tinyint` from `smallint`, `char(6)`
    /// from `nvarchar(max)` or `money` from `decimal(19,4)`.
    pub fn column_propagate_source_type(mut self, enabled: bool) -> Self {
        self.handling.source_types = enabled;
        self
    }

    /// Everything decoding needs to give back the very same event (default off): turns on
    /// [`provide_transaction_metadata`](Self::provide_transaction_metadata) and
    /// [`column_propagate_source_type`](Self::column_propagate_source_type), and adds what
    /// Debezium never writes: the row schema's `version` (the table schema version) and
    /// `__cdc.primary.key` parameter (the key of events without a key record), a text
    /// binary column's `__cdc.binary.handling.mode` parameter, and a snapshot row's resume
    /// position in `source.sequence`, `change_lsn` and `event_serial_no` (Debezium writes
    /// them `null` on snapshot rows). [`DebeziumJson::with_schema`] and
    /// [`DebeziumJson::schemaless`] are lossless; `false` turns only the additions off.
    pub fn lossless(mut self, enabled: bool) -> Self {
        self.handling.lossless = enabled;
        if enabled {
            self.handling.transaction_metadata = true;
            self.handling.source_types = true;
        }
        self
    }

    /// Makes a table known to the decoder (needed to decode the schemaless form).
    pub fn table(mut self, table: Arc<TableSchema>) -> Self {
        self.tables.push(table);
        self
    }

    /// The codec.
    pub fn build(self) -> DebeziumJson {
        let mut codec = DebeziumJson::new(self.schemas);
        codec.handling = self.handling;
        for table in self.tables {
            codec.register(table);
        }
        codec
    }
}

impl DebeziumJson {
    fn new(schemas: bool) -> Self {
        Self {
            schemas,
            handling: Handling::default(),
            tables: Mutex::default(),
            encoded_schemas: Mutex::default(),
        }
    }

    /// The form with an embedded schema, [lossless](DebeziumJsonBuilder::lossless):
    /// self-describing, decodes to the very same event. For exactly Debezium's output with
    /// its default properties use `DebeziumJson::builder().schemas(true).build()`.
    pub fn with_schema() -> Self {
        DebeziumJsonBuilder::default()
            .schemas(true)
            .lossless(true)
            .build()
    }

    /// The schemaless form, [lossless](DebeziumJsonBuilder::lossless): smaller; decoding
    /// needs the tables [`registered`](Self::register).
    pub fn schemaless() -> Self {
        DebeziumJsonBuilder::default().lossless(true).build()
    }

    /// A builder for either form, starting from Debezium's defaults (no schema, no
    /// transaction metadata, no source column types, none of our additions).
    pub fn builder() -> DebeziumJsonBuilder {
        DebeziumJsonBuilder::default()
    }

    /// Makes `table` known to the decoder; the latest registration of a table wins for the
    /// schemaless form.
    pub fn register(&self, table: Arc<TableSchema>) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.entry(table.id.clone()).or_default().push(table);
    }

    fn schemas_for(&self, event: &ChangeEvent) -> Arc<CachedSchemas> {
        let mut cache = self
            .encoded_schemas
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Consecutive events usually share their table and source: no key to build.
        if let Some((name, found)) = &cache.last
            && Arc::ptr_eq(&found.table, &event.table)
            && *name == event.source.name
        {
            return Arc::clone(found);
        }
        let key = (
            Arc::clone(&event.source.name),
            event.table.id.clone(),
            event.table.version,
        );
        if let Some(found) = cache
            .by_table
            .get(&key)
            .filter(|c| c.table.same_shape(&event.table))
        {
            let found = Arc::clone(found);
            if Arc::ptr_eq(&found.table, &event.table) {
                cache.last = Some((Arc::clone(&event.source.name), Arc::clone(&found)));
            }
            return found;
        }
        let prefix = &event.source.name;
        let schemas = Arc::new(CachedSchemas {
            table: Arc::clone(&event.table),
            envelope: envelope_schema(
                &event.table,
                prefix,
                &event.source.connector,
                &self.handling,
            )
            .to_string(),
            key: key_schema(&event.table, prefix, &self.handling).map(|k| k.to_string()),
        });
        cache.by_table.insert(key, Arc::clone(&schemas));
        cache.last = Some((Arc::clone(&event.source.name), Arc::clone(&schemas)));
        schemas
    }

    /// Interns a decoded schema so events of one table share one `Arc`.
    fn intern(&self, decoded: TableSchema) -> Arc<TableSchema> {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let known = tables.entry(decoded.id.clone()).or_default();
        if let Some(found) = known
            .iter()
            .find(|t| t.version == decoded.version && t.same_shape(&decoded))
        {
            return Arc::clone(found);
        }
        let table = Arc::new(decoded);
        known.push(Arc::clone(&table));
        table
    }

    fn registered(&self, id: &TableId) -> Result<Arc<TableSchema>> {
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables
            .get(id)
            .and_then(|v| v.last())
            .cloned()
            .ok_or_else(|| {
                Error::decode(
                    "payload.source",
                    format!(
                        "no schema registered for {id}; register the table or use the schema form"
                    ),
                )
            })
    }
}

impl EventCodec for DebeziumJson {
    fn name(&self) -> &str {
        "debezium-json"
    }

    fn encode(&self, event: &ChangeEvent) -> Result<EncodedRecord> {
        let table = &event.table;
        let schemas = self.schemas.then(|| self.schemas_for(event));
        // `{"schema":…,"payload":…}` around the payload when schemas are on.
        let framed = |schema: Option<&str>, body: &mut dyn FnMut(&mut Vec<u8>) -> Result<()>| {
            let mut out = Vec::with_capacity(schema.map_or(0, str::len) + 512);
            match schema {
                Some(schema) => {
                    out.extend_from_slice(b"{\"schema\":");
                    out.extend_from_slice(schema.as_bytes());
                    out.extend_from_slice(b",\"payload\":");
                    body(&mut out)?;
                    out.push(b'}');
                }
                None => body(&mut out)?,
            }
            Ok::<_, Error>(out)
        };
        let key = match (event.key().is_some(), event.row()) {
            (true, Some(row)) => Some(framed(
                schemas.as_ref().and_then(|s| s.key.as_deref()),
                &mut |out| {
                    debezium_writer::put_columns(
                        out,
                        table,
                        row,
                        table.key_indices().iter().copied(),
                        &self.handling,
                    )
                },
            )?),
            _ => None,
        };
        let value = framed(schemas.as_ref().map(|s| s.envelope.as_str()), &mut |out| {
            debezium_writer::put_payload(out, event, &self.handling)
        })?;
        Ok(EncodedRecord {
            key,
            value: Some(value),
            headers: Vec::new(),
        })
    }

    fn decode(&self, record: &EncodedRecord) -> Result<Option<ChangeEvent>> {
        let Some(value) = &record.value else {
            return Ok(None);
        };
        let value_bytes: &[u8] = value;
        let value: Json = serde_json::from_slice(value)
            .map_err(|e| Error::decode("", "not JSON").caused_by(e))?;
        let (schema, payload) = split_envelope(&value);
        let source = payload
            .get("source")
            .and_then(Json::as_object)
            .ok_or_else(|| Error::decode("payload.source", "missing"))?;
        let text = |field: &str| -> Result<&str> {
            source
                .get(field)
                .and_then(Json::as_str)
                .ok_or_else(|| Error::decode(format!("payload.source.{field}"), "missing"))
        };
        let id = TableId::new(text("db")?, text("schema")?, text("table")?);
        let (table, logicals) = match schema {
            Some(schema) => {
                let key: Option<Json> = match &record.key {
                    Some(k) => Some(
                        serde_json::from_slice(k)
                            .map_err(|e| Error::decode("key", "not JSON").caused_by(e))?,
                    ),
                    None => None,
                };
                let key_schema = key.as_ref().and_then(|k| split_envelope(k).0);
                let table = self.intern(table_from_schemas(id, schema, key_schema)?);
                let logicals = row_logicals(schema, &table, &self.handling);
                (table, logicals)
            }
            None => {
                let table = self.registered(&id)?;
                let logicals = table
                    .columns
                    .iter()
                    .map(|c| Logical::of(&c.data_type, &self.handling))
                    .collect();
                (table, logicals)
            }
        };
        let framed = schema.is_some();
        let row = |field: &str| -> Result<Option<Row>> {
            match payload.get(field) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Object(object)) => {
                    let rows = RowDecoder {
                        table: &table,
                        logicals: &logicals,
                        handling: &self.handling,
                        record: value_bytes,
                        framed,
                    };
                    rows.decode(object, field).map(Some)
                }
                Some(_) => Err(Error::decode(format!("payload.{field}"), "not an object")),
            }
        };
        let op = payload
            .get("op")
            .and_then(Json::as_str)
            .and_then(Op::from_code)
            .ok_or_else(|| Error::decode("payload.op", "missing or not one of c, u, d, r, t"))?;
        let commit_time = source
            .get("ts_ns")
            .and_then(Json::as_i64)
            .map(DateTime::from_timestamp_nanos);
        let snapshot = match source.get("snapshot").and_then(Json::as_str) {
            None => SnapshotMarker::False,
            Some(s) => SnapshotMarker::parse(s).ok_or_else(|| {
                Error::decode("payload.source.snapshot", format!("unknown {s:?}"))
            })?,
        };
        let transaction = match payload.get("transaction") {
            None | Some(Json::Null) => None,
            Some(t) => Some(
                serde_json::from_value::<TransactionInfo>(t.clone()).map_err(|e| {
                    Error::decode("payload.transaction", "not a Debezium transaction block")
                        .caused_by(e)
                })?,
            ),
        };
        let position = decode_position(source, transaction.as_ref(), &table.id)?;
        let source_info = SourceInfo {
            connector: text("connector")?.into(),
            name: text("name")?.into(),
            commit_time,
            snapshot,
            transaction,
            position,
        };
        Ok(Some(ChangeEvent::new(
            Arc::clone(&table),
            op,
            row("before")?,
            row("after")?,
            source_info,
        )))
    }
}

/// `(schema, payload)` of a record in either form.
fn split_envelope(value: &Json) -> (Option<&Json>, &Json) {
    match (value.get("schema"), value.get("payload")) {
        (Some(schema @ Json::Object(_)), Some(payload)) => (Some(schema), payload),
        _ => (None, value),
    }
}

/// Decodes the row images of one record.
struct RowDecoder<'a> {
    table: &'a TableSchema,
    /// How each column is written, aligned with the table's columns.
    logicals: &'a [Logical],
    handling: &'a Handling,
    /// The record's value bytes, for the rare value that needs its exact text.
    record: &'a [u8],
    /// Whether the record is `{"schema":…,"payload":…}`.
    framed: bool,
}

/// A record's row images with each value's text as written.
#[derive(Deserialize)]
struct RawImages<'a> {
    #[serde(borrow, default)]
    before: Option<HashMap<String, &'a RawValue>>,
    #[serde(borrow, default)]
    after: Option<HashMap<String, &'a RawValue>>,
}

#[derive(Deserialize)]
struct RawFramed<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
}

impl RowDecoder<'_> {
    fn decode(&self, object: &Map<String, Json>, field: &str) -> Result<Row> {
        self.table
            .columns
            .iter()
            .zip(self.logicals)
            .map(|(column, &logical)| {
                // Built only for an error: this runs for every value of every record.
                let path = || format!("payload.{field}.{}", column.name);
                match object.get(&column.name) {
                    Some(json) if debezium_value::needs_exact_text(json, logical) => self
                        .exact_text(field, &column.name)
                        .and_then(|text| debezium_value::nanos_timestamp(&text))
                        .ok_or_else(|| {
                            Error::decode(
                                path(),
                                format!(
                                    "expected nanoseconds since the epoch for {}, found {json}",
                                    column.data_type
                                ),
                            )
                        }),
                    Some(json) => debezium_value::decode(
                        json,
                        &column.data_type,
                        logical,
                        self.handling,
                        path,
                    ),
                    None if column.nullable => Ok(crate::Value::Null),
                    None => Err(Error::decode(path(), "missing value for a NOT NULL column")),
                }
            })
            .collect::<Result<Vec<_>>>()
            .map(Row::new)
    }

    /// The text of `column` in the `field` image as the record has it: `serde_json::Value`
    /// turns integers beyond 64 bits into floats, so those are read again from the bytes.
    fn exact_text(&self, field: &str, column: &str) -> Option<String> {
        let payload: &str = if self.framed {
            serde_json::from_slice::<RawFramed<'_>>(self.record)
                .ok()?
                .payload
                .get()
        } else {
            std::str::from_utf8(self.record).ok()?
        };
        let images: RawImages<'_> = serde_json::from_str(payload).ok()?;
        let image = match field {
            "before" => images.before,
            _ => images.after,
        }?;
        image.get(column).map(|raw| raw.get().to_string())
    }
}

/// The position a record's `source` names. A SQL Server event's `total_order` comes from its
/// `transaction` block; without one (Debezium's default) `event_serial_no` stands in, which
/// orders the events of a transaction unless one statement moved several primary keys.
fn decode_position(
    source: &Map<String, Json>,
    transaction: Option<&TransactionInfo>,
    id: &TableId,
) -> Result<Position> {
    let lsn = |field: &str| -> Result<Option<Lsn>> {
        match source.get(field) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => s.parse().map(Some).map_err(|e: crate::ParseLsnError| {
                Error::decode(format!("payload.source.{field}"), "not an LSN").caused_by(e)
            }),
            Some(_) => Err(Error::decode(
                format!("payload.source.{field}"),
                "not a string",
            )),
        }
    };
    if let Some(commit_lsn) = lsn("commit_lsn")? {
        let event_serial_no = source
            .get("event_serial_no")
            .and_then(Json::as_u64)
            .unwrap_or(0);
        return Ok(Position::SqlServer(LsnPosition {
            database: id.database.as_str().into(),
            commit_lsn,
            change_lsn: lsn("change_lsn")?.unwrap_or(Lsn::ZERO),
            event_serial_no,
            total_order: transaction.map_or(event_serial_no, |t| t.total_order),
            snapshot: match source.get("sequence").and_then(Json::as_str) {
                Some(cursor) => Some(serde_json::from_str(cursor).map_err(|e| {
                    Error::decode("payload.source.sequence", "not a JSON snapshot cursor")
                        .caused_by(e)
                })?),
                None => None,
            },
        }));
    }
    let sequence = source
        .get("sequence")
        .and_then(Json::as_str)
        .ok_or_else(|| Error::decode("payload.source", "neither commit_lsn nor sequence is set"))?;
    serde_json::from_str(sequence).map_err(|e| {
        Error::decode("payload.source.sequence", "not a JSON snapshot cursor").caused_by(e)
    })
}
