//! Tables: their identity and their schema.

use crate::DataType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A table's full name: database, schema and table.
///
/// ```
/// use cdc_core::TableId;
/// let id = TableId::new("shop", "dbo", "orders");
/// assert_eq!(id.to_string(), "shop.dbo.orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    /// Database (catalog) name.
    pub database: String,
    /// Schema name, e.g. `dbo`.
    pub schema: String,
    /// Table name.
    pub table: String,
}

impl TableId {
    /// A table id from its three parts.
    pub fn new(
        database: impl Into<String>,
        schema: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            database: database.into(),
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.database, self.schema, self.table)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// Column name as the database spells it.
    pub name: String,
    /// Declared type.
    pub data_type: DataType,
    /// Whether the column accepts `NULL`.
    pub nullable: bool,
}

impl Column {
    /// A column from its name, type and nullability.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Self {
            name: name.into(),
            data_type,
            nullable,
        }
    }
}

/// The shape of a table at one point in time.
///
/// Events share it through an `Arc`, so a batch of a million rows carries one schema. A change
/// of columns gives a new `TableSchema` with a higher `version`; sinks use the version to notice
/// that a file must be rotated or a new Kafka schema emitted.
///
/// ```
/// use cdc_core::{Column, DataType, TableId, TableSchema};
/// let schema = TableSchema::new(
///     TableId::new("shop", "dbo", "customers"),
///     vec![
///         Column::new("id", DataType::Int, false),
///         Column::new("name", DataType::NVarChar { length: Some(100) }, true),
///     ],
///     vec!["id".into()],
/// )
/// .unwrap();
/// assert_eq!(schema.key_indices(), &[0]);
/// assert_eq!(schema.column_index("name"), Some(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTableSchema")]
pub struct TableSchema {
    /// Which table.
    pub id: TableId,
    /// Columns in table order; row values follow this order.
    pub columns: Vec<Column>,
    /// Names of the primary-key columns, in key order (empty for a heap without a key).
    pub primary_key: Vec<String>,
    /// Increases each time the table's columns change.
    pub version: u32,
    #[serde(skip)]
    key_indices: Vec<usize>,
}

/// The primary key names a column the table does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("primary key column {column:?} is not a column of {table}")]
pub struct UnknownKeyColumn {
    /// The table.
    pub table: TableId,
    /// The missing column.
    pub column: String,
}

/// The serialised form, checked on the way in so the key indices are always valid.
#[derive(Deserialize)]
struct RawTableSchema {
    id: TableId,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    version: u32,
}

impl TryFrom<RawTableSchema> for TableSchema {
    type Error = UnknownKeyColumn;

    fn try_from(raw: RawTableSchema) -> Result<Self, Self::Error> {
        TableSchema::with_version(raw.id, raw.columns, raw.primary_key, raw.version)
    }
}

impl TableSchema {
    /// A schema at version 1. Fails if a primary-key column is not among `columns`.
    pub fn new(
        id: TableId,
        columns: Vec<Column>,
        primary_key: Vec<String>,
    ) -> Result<Self, UnknownKeyColumn> {
        Self::with_version(id, columns, primary_key, 1)
    }

    /// A schema with an explicit version.
    pub fn with_version(
        id: TableId,
        columns: Vec<Column>,
        primary_key: Vec<String>,
        version: u32,
    ) -> Result<Self, UnknownKeyColumn> {
        let mut schema = Self {
            id,
            columns,
            primary_key,
            version,
            key_indices: Vec::new(),
        };
        schema.key_indices = schema.resolve_key()?;
        Ok(schema)
    }

    fn resolve_key(&self) -> Result<Vec<usize>, UnknownKeyColumn> {
        self.primary_key
            .iter()
            .map(|k| {
                self.column_index(k).ok_or_else(|| UnknownKeyColumn {
                    table: self.id.clone(),
                    column: k.clone(),
                })
            })
            .collect()
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Indices of the primary-key columns, in key order.
    pub fn key_indices(&self) -> &[usize] {
        &self.key_indices
    }

    /// Whether two schemas describe the same columns and key (ignoring the version).
    pub fn same_shape(&self, other: &TableSchema) -> bool {
        self.id == other.id
            && self.columns == other.columns
            && self.primary_key == other.primary_key
    }
}
