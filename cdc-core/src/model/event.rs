//! Change events and what they carry about their origin.

use crate::{Position, Row, TableSchema};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// What happened to a row. The Debezium letters are `c`, `u`, `d`, `r` and `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// A row was inserted (`c`).
    #[serde(rename = "c")]
    Create,
    /// A row was updated (`u`); both images are present.
    #[serde(rename = "u")]
    Update,
    /// A row was deleted (`d`); only the before image is present.
    #[serde(rename = "d")]
    Delete,
    /// A row was read by a snapshot (`r`).
    #[serde(rename = "r")]
    Read,
    /// The table was truncated (`t`); no row images.
    #[serde(rename = "t")]
    Truncate,
}

impl Op {
    /// The Debezium letter.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }

    /// The operation for a Debezium letter.
    pub fn from_code(code: &str) -> Option<Op> {
        Some(match code {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            "t" => Op::Truncate,
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Where an event stands in a snapshot (Debezium's `source.snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMarker {
    /// Not a snapshot event: it was streamed from the log.
    #[default]
    False,
    /// The first event of the snapshot.
    First,
    /// The first event of one table in the snapshot.
    FirstInDataCollection,
    /// An event in the middle of the snapshot.
    True,
    /// The last event of one table in the snapshot.
    LastInDataCollection,
    /// The last event of the snapshot.
    Last,
    /// A row read by an incremental (chunked) snapshot that runs while streaming goes on:
    /// Debezium 2's `source.snapshot = "incremental"`.
    Incremental,
}

impl SnapshotMarker {
    /// The text Debezium writes.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMarker::False => "false",
            SnapshotMarker::First => "first",
            SnapshotMarker::FirstInDataCollection => "first_in_data_collection",
            SnapshotMarker::True => "true",
            SnapshotMarker::LastInDataCollection => "last_in_data_collection",
            SnapshotMarker::Last => "last",
            SnapshotMarker::Incremental => "incremental",
        }
    }

    /// The marker for Debezium's text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "false" => SnapshotMarker::False,
            "first" => SnapshotMarker::First,
            "first_in_data_collection" => SnapshotMarker::FirstInDataCollection,
            "true" => SnapshotMarker::True,
            "last_in_data_collection" => SnapshotMarker::LastInDataCollection,
            "last" => SnapshotMarker::Last,
            "incremental" => SnapshotMarker::Incremental,
            _ => return None,
        })
    }
}

/// The transaction an event belongs to (Debezium's `transaction` block).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransactionInfo {
    /// Transaction id; for SQL Server, the commit LSN. (Shared: every event of the
    /// transaction carries it.)
    pub id: Arc<str>,
    /// Position of the event among all events of the transaction, from 1.
    pub total_order: u64,
    /// Position of the event among the transaction's events for the same table, from 1.
    pub data_collection_order: u64,
}

/// Where and when a change happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Connector kind, e.g. `sqlserver`. (Strings every event of a source shares are
    /// reference-counted: an event then costs no allocation for them.)
    pub connector: Arc<str>,
    /// Logical name of the source server; the first part of topic names (Debezium's
    /// `topic.prefix`).
    pub name: Arc<str>,
    /// When the change was committed at the source (for snapshots: when the row was read).
    pub commit_time: Option<DateTime<Utc>>,
    /// Snapshot marker.
    pub snapshot: SnapshotMarker,
    /// Transaction metadata, when the source tracks transactions.
    pub transaction: Option<TransactionInfo>,
    /// The position of the change at its origin (for SQL Server, its LSNs).
    pub position: Position,
}

/// One change to one row (or one table, for truncate).
///
/// ```
/// use std::sync::Arc;
/// use cdc_core::{ChangeEvent, Column, DataType, Op, Position, Row, SourceInfo, TableId, TableSchema, Value};
/// let table = Arc::new(TableSchema::new(
///     TableId::new("shop", "dbo", "customers"),
///     vec![Column::new("id", DataType::Int, false)],
///     vec!["id".into()],
/// ).unwrap());
/// let event = ChangeEvent::new(
///     table,
///     Op::Create,
///     None,
///     Some(Row::new(vec![Value::I32(7)])),
///     SourceInfo::new("sqlserver", "erp", Position::Sequence { stream: "demo".into(), seq: 1 }),
/// );
/// assert_eq!(event.key(), Some(vec![&Value::I32(7)]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The table's schema at the time of the change.
    pub table: Arc<TableSchema>,
    /// What happened.
    pub op: Op,
    /// The row before the change (updates, deletes).
    pub before: Option<Row>,
    /// The row after the change (inserts, updates, snapshot reads).
    pub after: Option<Row>,
    /// Where and when the change happened.
    pub source: SourceInfo,
    /// Where this event was read from, when that differs from its origin: a Kafka offset for
    /// events consumed from a topic. Acknowledgements use [`ChangeEvent::position`].
    pub transport: Option<Position>,
}

impl ChangeEvent {
    /// An event read directly from its origin.
    pub fn new(
        table: Arc<TableSchema>,
        op: Op,
        before: Option<Row>,
        after: Option<Row>,
        source: SourceInfo,
    ) -> Self {
        Self {
            table,
            op,
            before,
            after,
            source,
            transport: None,
        }
    }

    /// The position a pipeline acknowledges for this event: the transport position if the
    /// event came through a transport, its origin position otherwise.
    pub fn position(&self) -> &Position {
        self.transport.as_ref().unwrap_or(&self.source.position)
    }

    /// The row image that identifies the row: `after`, or `before` for deletes.
    pub fn row(&self) -> Option<&Row> {
        self.after.as_ref().or(self.before.as_ref())
    }

    /// Primary-key values of the row, in key order; `None` for truncates and keyless tables.
    pub fn key(&self) -> Option<Vec<&crate::Value>> {
        let keys = self.table.key_indices();
        if keys.is_empty() {
            return None;
        }
        let row = self.row()?;
        keys.iter().map(|&i| row.get(i)).collect()
    }

    /// A rough count of the bytes the event's row images occupy.
    pub fn approx_size(&self) -> usize {
        self.before.as_ref().map_or(0, Row::approx_size)
            + self.after.as_ref().map_or(0, Row::approx_size)
            + 64
    }
}

impl SourceInfo {
    /// Source information with only the required parts; the rest can be filled in.
    pub fn new(
        connector: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        position: Position,
    ) -> Self {
        Self {
            connector: connector.into(),
            name: name.into(),
            commit_time: None,
            snapshot: SnapshotMarker::False,
            transaction: None,
            position,
        }
    }
}

/// A table's columns changed: sinks rotate files or publish a new schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// The new schema, with a higher version than the one it replaces.
    pub table: Arc<TableSchema>,
    /// The position from which the new schema applies.
    pub position: Position,
}
