//! Kafka Connect schemas for Debezium envelopes: `DataType` ⇄ Connect field schema.
//!
//! Temporal, exact numeric and binary types follow the codec's `time.precision.mode`,
//! `decimal.handling.mode` and `binary.handling.mode` (see [`super::handling`]). With Debezium's
//! `column.propagate.source.type` (on in the lossless form) every field also carries the
//! source column type parameters, which is what makes decoding lossless: an `int16` alone
//! cannot tell `tinyint` from `smallint`, the source type can.
//!
//! This file writes schemas; `debezium_schema_read` reads a table back from them.

use super::handling::{BinaryHandlingMode, DecimalHandlingMode, Handling, TimePrecisionMode};
use crate::{Column, DataType, TableId, TableSchema};
use serde_json::{Map, Value as Json, json};

pub(super) const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub(super) const DATE: &str = "io.debezium.time.Date";
pub(super) const TIME: &str = "io.debezium.time.Time";
pub(super) const MICRO_TIME: &str = "io.debezium.time.MicroTime";
pub(super) const NANO_TIME: &str = "io.debezium.time.NanoTime";
pub(super) const TIMESTAMP: &str = "io.debezium.time.Timestamp";
pub(super) const MICRO_TIMESTAMP: &str = "io.debezium.time.MicroTimestamp";
pub(super) const NANO_TIMESTAMP: &str = "io.debezium.time.NanoTimestamp";
pub(super) const ZONED_TIMESTAMP: &str = "io.debezium.time.ZonedTimestamp";
pub(super) const UUID: &str = "io.debezium.data.Uuid";
pub(super) const XML: &str = "io.debezium.data.Xml";
pub(super) const CONNECT_DATE: &str = "org.apache.kafka.connect.data.Date";
pub(super) const CONNECT_TIME: &str = "org.apache.kafka.connect.data.Time";
pub(super) const CONNECT_TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

pub(super) const SOURCE_TYPE: &str = "__debezium.source.column.type";
pub(super) const SOURCE_LENGTH: &str = "__debezium.source.column.length";
pub(super) const SOURCE_SCALE: &str = "__debezium.source.column.scale";
/// Our own parameter on the row schema: the primary-key column names as a JSON array.
pub(super) const PRIMARY_KEY: &str = "__cdc.primary.key";
/// Our own parameter on a binary column written as text: which `binary.handling.mode` wrote
/// it, since base64 and hex text cannot be told apart by looking.
const BINARY_MODE: &str = "__cdc.binary.handling.mode";
/// What Debezium reports as the length of `(max)` columns.
pub(super) const MAX_LENGTH: u32 = i32::MAX as u32;

/// How a value of a given type is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Logical {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// `decimal.handling.mode=precise`.
    Decimal {
        scale: u8,
    },
    /// `decimal.handling.mode=double`.
    DecimalDouble,
    /// `decimal.handling.mode=string`.
    DecimalString,
    String,
    /// `binary.handling.mode=bytes`: Connect bytes, base64 in JSON.
    Bytes,
    /// `binary.handling.mode=base64`.
    Base64Text,
    /// `binary.handling.mode=base64-url-safe`.
    Base64UrlText,
    /// `binary.handling.mode=hex`.
    HexText,
    Date,
    /// `org.apache.kafka.connect.data.Date` (`time.precision.mode=connect`).
    ConnectDate,
    TimeMillis,
    TimeMicros,
    TimeNanos,
    /// `org.apache.kafka.connect.data.Time`: int32 milliseconds of the day.
    ConnectTime,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
    /// `org.apache.kafka.connect.data.Timestamp`: int64 milliseconds since the epoch.
    ConnectTimestamp,
    Zoned {
        precision: u8,
    },
    Uuid,
}

impl Logical {
    /// The representation of `data_type` under the codec's handling modes.
    pub(super) fn of(data_type: &DataType, handling: &Handling) -> Logical {
        use DataType as D;
        let connect = handling.time == TimePrecisionMode::Connect;
        match data_type {
            D::Bit => Logical::Bool,
            D::TinyInt | D::SmallInt => Logical::Int16,
            D::Int => Logical::Int32,
            D::BigInt => Logical::Int64,
            D::Real => Logical::Float32,
            D::Float => Logical::Float64,
            D::Decimal { .. } | D::Money | D::SmallMoney => match handling.decimal {
                DecimalHandlingMode::Double => Logical::DecimalDouble,
                DecimalHandlingMode::String => Logical::DecimalString,
                _ => Logical::Decimal {
                    scale: data_type
                        .decimal_precision_scale()
                        .map_or(0, |(_, scale)| scale),
                },
            },
            D::Char { .. }
            | D::VarChar { .. }
            | D::NChar { .. }
            | D::NVarChar { .. }
            | D::Text
            | D::NText
            | D::Xml => Logical::String,
            D::Binary { .. }
            | D::VarBinary { .. }
            | D::Image
            | D::RowVersion
            | D::Opaque { .. } => match handling.binary {
                BinaryHandlingMode::Base64 => Logical::Base64Text,
                BinaryHandlingMode::Base64UrlSafe => Logical::Base64UrlText,
                BinaryHandlingMode::Hex => Logical::HexText,
                _ => Logical::Bytes,
            },
            D::Date if connect => Logical::ConnectDate,
            D::Date => Logical::Date,
            D::Time { .. } if connect => Logical::ConnectTime,
            D::Time { .. } if handling.time == TimePrecisionMode::AdaptiveTimeMicroseconds => {
                Logical::TimeMicros
            }
            D::Time { precision } => match precision {
                0..=3 => Logical::TimeMillis,
                4..=6 => Logical::TimeMicros,
                _ => Logical::TimeNanos,
            },
            D::DateTime | D::SmallDateTime | D::DateTime2 { .. } if connect => {
                Logical::ConnectTimestamp
            }
            D::DateTime | D::SmallDateTime => Logical::TimestampMillis,
            D::DateTime2 { precision } => match precision {
                0..=3 => Logical::TimestampMillis,
                4..=6 => Logical::TimestampMicros,
                _ => Logical::TimestampNanos,
            },
            D::DateTimeOffset { precision } => Logical::Zoned {
                precision: *precision,
            },
            D::UniqueIdentifier => Logical::Uuid,
            // `DataType` is non-exhaustive only for other crates; every variant is listed above.
        }
    }

    /// The representation a field schema describes, for a column of `data_type`: the schema's
    /// type and logical name decide where they can (a decoder configured differently from the
    /// encoder still reads the schema form right); `handling` decides the rest.
    pub(super) fn of_field(field: &Json, data_type: &DataType, handling: &Handling) -> Logical {
        let configured = Logical::of(data_type, handling);
        let connect_type = field.get("type").and_then(Json::as_str).unwrap_or_default();
        let name = field.get("name").and_then(Json::as_str);
        let decimal = data_type.decimal_precision_scale();
        // Binary columns are the ones written in a `binary.handling.mode` form.
        let binary = matches!(
            configured,
            Logical::Bytes | Logical::Base64Text | Logical::Base64UrlText | Logical::HexText
        );
        let temporal = data_type.time_precision().is_some() || *data_type == DataType::Date;
        match (connect_type, name) {
            (_, Some(DATE)) if temporal => Logical::Date,
            (_, Some(CONNECT_DATE)) if temporal => Logical::ConnectDate,
            (_, Some(TIME)) if temporal => Logical::TimeMillis,
            (_, Some(MICRO_TIME)) if temporal => Logical::TimeMicros,
            (_, Some(NANO_TIME)) if temporal => Logical::TimeNanos,
            (_, Some(CONNECT_TIME)) if temporal => Logical::ConnectTime,
            (_, Some(TIMESTAMP)) if temporal => Logical::TimestampMillis,
            (_, Some(MICRO_TIMESTAMP)) if temporal => Logical::TimestampMicros,
            (_, Some(NANO_TIMESTAMP)) if temporal => Logical::TimestampNanos,
            (_, Some(CONNECT_TIMESTAMP)) if temporal => Logical::ConnectTimestamp,
            ("bytes", Some(DECIMAL)) => match decimal {
                Some((_, scale)) => Logical::Decimal { scale },
                None => configured,
            },
            ("double", None) if decimal.is_some() => Logical::DecimalDouble,
            ("string", None) if decimal.is_some() => Logical::DecimalString,
            ("bytes", None) if binary => Logical::Bytes,
            ("string", _) if binary => {
                let recorded = field
                    .get("parameters")
                    .and_then(|p| p.get(BINARY_MODE))
                    .and_then(Json::as_str)
                    .and_then(|m| m.parse::<BinaryHandlingMode>().ok());
                match recorded.unwrap_or(handling.binary) {
                    BinaryHandlingMode::Base64UrlSafe => Logical::Base64UrlText,
                    BinaryHandlingMode::Hex => Logical::HexText,
                    _ => Logical::Base64Text,
                }
            }
            _ => configured,
        }
    }

    fn connect_type(self) -> &'static str {
        match self {
            Logical::Bool => "boolean",
            Logical::Int16 => "int16",
            Logical::Int32
            | Logical::Date
            | Logical::ConnectDate
            | Logical::TimeMillis
            | Logical::ConnectTime => "int32",
            Logical::Int64
            | Logical::TimeMicros
            | Logical::TimeNanos
            | Logical::TimestampMillis
            | Logical::TimestampMicros
            | Logical::TimestampNanos
            | Logical::ConnectTimestamp => "int64",
            // Kafka Connect's JSON schema names for FLOAT32 and FLOAT64 (JsonSchema in
            // connect-json); its JsonConverter refuses "float32"/"float64".
            Logical::Float32 => "float",
            Logical::Float64 | Logical::DecimalDouble => "double",
            Logical::Decimal { .. } | Logical::Bytes => "bytes",
            Logical::String
            | Logical::DecimalString
            | Logical::Base64Text
            | Logical::Base64UrlText
            | Logical::HexText
            | Logical::Zoned { .. }
            | Logical::Uuid => "string",
        }
    }

    fn connect_name(self) -> Option<&'static str> {
        Some(match self {
            Logical::Decimal { .. } => DECIMAL,
            Logical::Date => DATE,
            Logical::ConnectDate => CONNECT_DATE,
            Logical::TimeMillis => TIME,
            Logical::TimeMicros => MICRO_TIME,
            Logical::TimeNanos => NANO_TIME,
            Logical::ConnectTime => CONNECT_TIME,
            Logical::TimestampMillis => TIMESTAMP,
            Logical::TimestampMicros => MICRO_TIMESTAMP,
            Logical::TimestampNanos => NANO_TIMESTAMP,
            Logical::ConnectTimestamp => CONNECT_TIMESTAMP,
            Logical::Zoned { .. } => ZONED_TIMESTAMP,
            // Debezium's SQL Server connector writes `uniqueidentifier` and `xml` as plain
            // strings (no `io.debezium.data.Uuid`/`Xml` name); decoding still reads those names.
            _ => return None,
        })
    }
}

/// The Connect schema of one column.
pub(super) fn field_schema(column: &Column, handling: &Handling) -> Json {
    let dt = &column.data_type;
    let logical = Logical::of(dt, handling);
    let mut field = Map::new();
    field.insert("type".into(), json!(logical.connect_type()));
    field.insert("optional".into(), json!(column.nullable));
    let mut params = Map::new();
    if let Some(name) = logical.connect_name() {
        field.insert("name".into(), json!(name));
        field.insert("version".into(), json!(1));
    }
    if let (Logical::Decimal { .. }, Some((precision, scale))) =
        (logical, dt.decimal_precision_scale())
    {
        params.insert("scale".into(), json!(scale.to_string()));
        params.insert(
            "connect.decimal.precision".into(),
            json!(precision.to_string()),
        );
    }
    if handling.lossless
        && matches!(
            logical,
            Logical::Base64Text | Logical::Base64UrlText | Logical::HexText
        )
    {
        params.insert(BINARY_MODE.into(), json!(handling.binary.as_str()));
    }
    if handling.source_types {
        params.insert(SOURCE_TYPE.into(), json!(dt.sql_name()));
        let (length, scale) = source_length_scale(dt);
        if let Some(length) = length {
            params.insert(SOURCE_LENGTH.into(), json!(length.to_string()));
        }
        if let Some(scale) = scale {
            params.insert(SOURCE_SCALE.into(), json!(scale.to_string()));
        }
    }
    // Connect's JsonConverter writes `parameters` only when there are some.
    if !params.is_empty() {
        field.insert("parameters".into(), Json::Object(params));
    }
    field.insert("field".into(), json!(column.name));
    Json::Object(field)
}

fn source_length_scale(dt: &DataType) -> (Option<u32>, Option<u8>) {
    use DataType as D;
    match dt {
        D::Decimal { precision, scale } => (Some(u32::from(*precision)), Some(*scale)),
        D::Char { length } | D::NChar { length } | D::Binary { length } => (Some(*length), None),
        D::VarChar { length } | D::NVarChar { length } | D::VarBinary { length } => {
            (Some(length.unwrap_or(MAX_LENGTH)), None)
        }
        D::Time { precision } | D::DateTime2 { precision } | D::DateTimeOffset { precision } => {
            (None, Some(*precision))
        }
        _ => (None, None),
    }
}

/// `<prefix>.<database>.<schema>.<table>`, the base of Debezium's schema and topic names.
pub(super) fn qualified_name(prefix: &str, id: &TableId) -> String {
    format!("{prefix}.{}.{}.{}", id.database, id.schema, id.table)
}

/// The schema of the row images (`before` and `after`). In the lossless form the primary
/// key is recorded as a parameter too, so that events without a key record (truncates)
/// still decode to the same table schema, and the table schema version as the version.
pub(super) fn row_schema(
    table: &TableSchema,
    prefix: &str,
    field: &str,
    handling: &Handling,
) -> Json {
    let mut schema = json!({
        "type": "struct",
        "fields": table.columns.iter().map(|c| field_schema(c, handling)).collect::<Vec<_>>(),
        "optional": true,
        "name": format!("{}.Value", qualified_name(prefix, &table.id)),
        "field": field,
    });
    // Debezium's row schemas have neither: ours only in the lossless form.
    if handling.lossless
        && let Json::Object(map) = &mut schema
    {
        map.insert("version".into(), json!(table.version));
        map.insert(
            "parameters".into(),
            json!({ PRIMARY_KEY: Json::from(table.primary_key.clone()).to_string() }),
        );
    }
    schema
}

/// The schema of the key, `None` for a table without a primary key.
pub(super) fn key_schema(table: &TableSchema, prefix: &str, handling: &Handling) -> Option<Json> {
    let keys = table.key_indices();
    if keys.is_empty() {
        return None;
    }
    let fields: Vec<Json> = keys
        .iter()
        .map(|&i| field_schema(&table.columns[i], handling))
        .collect();
    Some(json!({
        "type": "struct",
        "fields": fields,
        "optional": false,
        "name": format!("{}.Key", qualified_name(prefix, &table.id)),
    }))
}

fn plain(connect_type: &str, optional: bool, field: &str) -> Json {
    json!({"type": connect_type, "optional": optional, "field": field})
}

/// The schema of the whole envelope.
pub(super) fn envelope_schema(
    table: &TableSchema,
    prefix: &str,
    connector: &str,
    handling: &Handling,
) -> Json {
    let source = json!({
        "type": "struct",
        "fields": [
            plain("string", false, "version"),
            plain("string", false, "connector"),
            plain("string", false, "name"),
            plain("int64", false, "ts_ms"),
            {
                "type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
                "default": "false", "field": "snapshot"
            },
            plain("string", false, "db"),
            plain("string", true, "sequence"),
            plain("int64", true, "ts_us"),
            plain("int64", true, "ts_ns"),
            plain("string", false, "schema"),
            plain("string", false, "table"),
            plain("string", true, "change_lsn"),
            plain("string", true, "commit_lsn"),
            plain("int64", true, "event_serial_no"),
        ],
        "optional": false,
        "name": format!("io.debezium.connector.{connector}.Source"),
        "version": 1,
        "field": "source",
    });
    let transaction = json!({
        "type": "struct",
        "fields": [
            plain("string", false, "id"),
            plain("int64", false, "total_order"),
            plain("int64", false, "data_collection_order"),
        ],
        "optional": true,
        "name": "event.block",
        "version": 1,
        "field": "transaction",
    });
    json!({
        "type": "struct",
        "fields": [
            row_schema(table, prefix, "before", handling),
            row_schema(table, prefix, "after", handling),
            source,
            transaction,
            plain("string", false, "op"),
            plain("int64", true, "ts_ms"),
            plain("int64", true, "ts_us"),
            plain("int64", true, "ts_ns"),
        ],
        "optional": false,
        "name": format!("{}.Envelope", qualified_name(prefix, &table.id)),
        "version": 2,
    })
}

/// The representation of each column of `table` as the envelope schema's `after` fields
/// describe it (see [`Logical::of_field`]); a column the schema does not list gets the
/// configured one.
pub(super) fn row_logicals(
    envelope: &Json,
    table: &TableSchema,
    handling: &Handling,
) -> Vec<Logical> {
    let fields = envelope
        .get("fields")
        .and_then(Json::as_array)
        .and_then(|f| {
            f.iter()
                .find(|f| f.get("field").and_then(Json::as_str) == Some("after"))
        })
        .and_then(|row| row.get("fields"))
        .and_then(Json::as_array);
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let named = |f: &&Json| f.get("field").and_then(Json::as_str) == Some(&column.name);
            // The fields are in column order when this codec wrote them: look there first.
            fields
                .and_then(|fields| {
                    fields
                        .get(i)
                        .filter(named)
                        .or_else(|| fields.iter().find(named))
                })
                .map_or_else(
                    || Logical::of(&column.data_type, handling),
                    |field| Logical::of_field(field, &column.data_type, handling),
                )
        })
        .collect()
}
