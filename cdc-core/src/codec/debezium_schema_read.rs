//! Reading a table back from Kafka Connect schemas: an envelope's `after` struct (and the key
//! schema's fields) into a [`TableSchema`], each field's `DataType` from its source-type
//! parameters (`column.propagate.source.type`, exact) or else its Connect type and logical
//! name.

use super::debezium_schema::{
    CONNECT_DATE, CONNECT_TIME, CONNECT_TIMESTAMP, DATE, DECIMAL, MAX_LENGTH, MICRO_TIME,
    MICRO_TIMESTAMP, NANO_TIME, NANO_TIMESTAMP, PRIMARY_KEY, SOURCE_LENGTH, SOURCE_SCALE,
    SOURCE_TYPE, TIME, TIMESTAMP, UUID, XML, ZONED_TIMESTAMP,
};
use crate::{Column, DataType, Error, Result, TableId, TableSchema};
use serde_json::Value as Json;

/// The column type described by a Connect field schema.
pub(super) fn data_type_of(field: &Json, path: &str) -> Result<DataType> {
    let params = field.get("parameters").and_then(Json::as_object);
    let param = |k: &str| params.and_then(|p| p.get(k)).and_then(Json::as_str);
    if let Some(source_type) = param(SOURCE_TYPE) {
        let num = |k: &str| -> Result<Option<u32>> {
            param(k)
                .map(|v| {
                    v.parse::<u32>()
                        .map_err(|_| Error::decode(path, format!("{k} is not a number: {v:?}")))
                })
                .transpose()
        };
        let length = num(SOURCE_LENGTH)?;
        let scale = num(SOURCE_SCALE)?.map(|s| u8::try_from(s).unwrap_or(u8::MAX));
        if let Some(dt) = from_source_type(source_type, length, scale) {
            return Ok(dt);
        }
    }
    let connect_type = field.get("type").and_then(Json::as_str).unwrap_or_default();
    let name = field.get("name").and_then(Json::as_str);
    use DataType as D;
    Ok(match (connect_type, name) {
        ("boolean", _) => D::Bit,
        ("int8" | "int16", _) => D::SmallInt,
        ("int32", Some(DATE | CONNECT_DATE)) => D::Date,
        ("int32", Some(CONNECT_TIME)) => D::Time { precision: 3 },
        ("int64", Some(CONNECT_TIMESTAMP)) => D::DateTime2 { precision: 3 },
        ("int32", Some(TIME)) => D::Time { precision: 3 },
        ("int32", _) => D::Int,
        ("int64", Some(MICRO_TIME)) => D::Time { precision: 6 },
        ("int64", Some(NANO_TIME)) => D::Time { precision: 7 },
        ("int64", Some(TIMESTAMP)) => D::DateTime2 { precision: 3 },
        ("int64", Some(MICRO_TIMESTAMP)) => D::DateTime2 { precision: 6 },
        ("int64", Some(NANO_TIMESTAMP)) => D::DateTime2 { precision: 7 },
        ("int64", _) => D::BigInt,
        // "float32"/"float64" as written by earlier versions of this codec.
        ("float" | "float32", _) => D::Real,
        ("double" | "float64", _) => D::Float,
        ("bytes", Some(DECIMAL)) => {
            let scale = param("scale").and_then(|s| s.parse().ok()).unwrap_or(0);
            let precision = param("connect.decimal.precision")
                .and_then(|s| s.parse().ok())
                .unwrap_or(38);
            D::Decimal { precision, scale }
        }
        ("bytes", _) => D::VarBinary { length: None },
        ("string", Some(ZONED_TIMESTAMP)) => D::DateTimeOffset { precision: 7 },
        ("string", Some(UUID)) => D::UniqueIdentifier,
        ("string", Some(XML)) => D::Xml,
        ("string", _) => D::NVarChar { length: None },
        (other, _) => {
            return Err(Error::decode(
                path,
                format!("unsupported Connect type {other:?}"),
            ));
        }
    })
}

fn from_source_type(name: &str, length: Option<u32>, scale: Option<u8>) -> Option<DataType> {
    use DataType as D;
    let var = |l: Option<u32>| l.filter(|&l| l != MAX_LENGTH);
    let precision = scale.unwrap_or(7);
    Some(match name {
        "DECIMAL" | "NUMERIC" => D::Decimal {
            precision: u8::try_from(length.unwrap_or(18)).ok()?,
            scale: scale.unwrap_or(0),
        },
        "CHAR" => D::Char { length: length? },
        "NCHAR" => D::NChar { length: length? },
        "BINARY" => D::Binary { length: length? },
        "VARCHAR" => D::VarChar {
            length: var(length),
        },
        "NVARCHAR" => D::NVarChar {
            length: var(length),
        },
        "VARBINARY" => D::VarBinary {
            length: var(length),
        },
        "TIME" => D::Time { precision },
        "DATETIME2" => D::DateTime2 { precision },
        "DATETIMEOFFSET" => D::DateTimeOffset { precision },
        "GEOGRAPHY" | "GEOMETRY" | "HIERARCHYID" | "SQL_VARIANT" => D::Opaque {
            type_name: name.to_ascii_lowercase(),
        },
        other => D::from_sql(other, 0, 0, 0)?,
    })
}

/// Rebuilds a table schema from an envelope schema and (optionally) a key schema.
pub(super) fn table_from_schemas(
    id: TableId,
    envelope: &Json,
    key: Option<&Json>,
) -> Result<TableSchema> {
    let fields = envelope
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| Error::decode("schema.fields", "the envelope schema has no fields"))?;
    let row = fields
        .iter()
        .find(|f| f.get("field").and_then(Json::as_str) == Some("after"))
        .ok_or_else(|| Error::decode("schema", "the envelope schema has no `after` field"))?;
    let version = row.get("version").and_then(Json::as_u64).unwrap_or(1);
    let columns = struct_columns(row, "schema.after")?;
    let recorded = row
        .get("parameters")
        .and_then(|p| p.get(PRIMARY_KEY))
        .and_then(Json::as_str)
        .map(serde_json::from_str::<Vec<String>>);
    let primary_key = match (recorded, key) {
        (Some(names), _) => names.map_err(|e| {
            Error::decode(
                "schema.after.parameters",
                "the primary key is not a JSON list of column names",
            )
            .caused_by(e)
        })?,
        (None, Some(k)) => struct_columns(k, "key.schema")?
            .into_iter()
            .map(|c| c.name)
            .collect(),
        (None, None) => Vec::new(),
    };
    TableSchema::with_version(
        id,
        columns,
        primary_key,
        u32::try_from(version).unwrap_or(u32::MAX),
    )
    .map_err(|e| Error::decode("key.schema", "the schema is not a valid table").caused_by(e))
}

fn struct_columns(schema: &Json, path: &str) -> Result<Vec<Column>> {
    let fields = schema
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| Error::decode(path, "not a struct schema"))?;
    fields
        .iter()
        .map(|f| {
            let name = f
                .get("field")
                .and_then(Json::as_str)
                .ok_or_else(|| Error::decode(path, "a field has no name"))?;
            let path = format!("{path}.{name}");
            let nullable = f.get("optional").and_then(Json::as_bool).unwrap_or(true);
            Ok(Column::new(name, data_type_of(f, &path)?, nullable))
        })
        .collect()
}
