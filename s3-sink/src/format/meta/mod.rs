//! Metadata columns: what happened, where and when.
//!
//! Their names are a prefix and a fixed suffix: `__op`, `__position`, … with the default
//! prefix [`DEFAULT_PREFIX`] (Debezium's `add.fields.prefix` default), another with
//! [`S3SinkBuilder::metadata_prefix`](crate::S3SinkBuilder::metadata_prefix). The constants
//! below are the default names. A table column whose name equals one of them (compared
//! without case, as DuckDB, Spark, Hive and Athena compare names) is refused with
//! [`S3SinkError::ColumnCollision`](crate::S3SinkError::ColumnCollision): a file with two
//! such columns is refused by pyarrow and silently renamed by DuckDB.
//!
//! This module names the columns and refuses collisions; `builder` makes their Arrow arrays
//! (Parquet), `position` writes the `__position` JSON (Parquet and NDJSON).

mod builder;
mod position;

pub(crate) use builder::{LsnColumns, MetaBuilder};
pub(crate) use position::{position_json, write_position};

use cdc_core::TableSchema;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// The prefix of metadata column names unless another is set: Debezium's
/// `add.fields.prefix` default.
pub const DEFAULT_PREFIX: &str = "__";

/// Operation letter: `c`, `u`, `d`, `r` or `t`.
pub const OP: &str = "__op";
/// Whether the event deleted the row (`__op = 'd'`).
pub const DELETED: &str = "__deleted";
/// Commit time at the source, UTC, microseconds.
pub const COMMIT_TIME: &str = "__commit_time";
/// SQL Server commit LSN (`00000027:00000758:0005`), NULL for other sources.
pub const COMMIT_LSN: &str = "__commit_lsn";
/// SQL Server change LSN.
pub const CHANGE_LSN: &str = "__change_lsn";
/// Serial of the event inside its transaction.
pub const EVENT_SERIAL_NO: &str = "__event_serial_no";
/// The acknowledged position (`ChangeEvent::position`) as JSON: exact, whatever the source.
pub const POSITION: &str = "__position";
/// Kafka topic the event was read from (only in files of Kafka-borne events).
pub const KAFKA_TOPIC: &str = "__kafka_topic";
/// Kafka partition.
pub const KAFKA_PARTITION: &str = "__kafka_partition";
/// Kafka offset.
pub const KAFKA_OFFSET: &str = "__kafka_offset";

/// The metadata column names of a sink: its prefix, then each column's suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaNames {
    pub(crate) op: String,
    pub(crate) deleted: String,
    pub(crate) commit_time: String,
    pub(crate) commit_lsn: String,
    pub(crate) change_lsn: String,
    pub(crate) event_serial_no: String,
    pub(crate) position: String,
    pub(crate) kafka_topic: String,
    pub(crate) kafka_partition: String,
    pub(crate) kafka_offset: String,
}

impl Default for MetaNames {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl MetaNames {
    /// The names with `prefix`.
    pub(crate) fn new(prefix: &str) -> Self {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        Self {
            op: name("op"),
            deleted: name("deleted"),
            commit_time: name("commit_time"),
            commit_lsn: name("commit_lsn"),
            change_lsn: name("change_lsn"),
            event_serial_no: name("event_serial_no"),
            position: name("position"),
            kafka_topic: name("kafka_topic"),
            kafka_partition: name("kafka_partition"),
            kafka_offset: name("kafka_offset"),
        }
    }

    /// The prefix the names were made with.
    pub(crate) fn prefix(&self) -> &str {
        self.op.strip_suffix("op").unwrap_or_default()
    }

    /// The names of the metadata columns of a file, in file order: `full` for the flattened
    /// layout (operation, deleted flag, commit time, LSNs), `kafka` for Kafka-borne events.
    pub(crate) fn columns(&self, full: bool, kafka: bool) -> Vec<&str> {
        let mut names = Vec::new();
        if full {
            names.extend([
                &self.op,
                &self.deleted,
                &self.commit_time,
                &self.commit_lsn,
                &self.change_lsn,
                &self.event_serial_no,
            ]);
        }
        names.push(&self.position);
        if kafka {
            names.extend([&self.kafka_topic, &self.kafka_partition, &self.kafka_offset]);
        }
        names.into_iter().map(String::as_str).collect()
    }
}

/// Checks that no two top-level columns of a file of `table` have the same name, compared
/// without case (as DuckDB, Spark, Hive and Athena compare names), unless both are the
/// table's own columns (a case-sensitive database may have `Id` and `ID`; that is the
/// table's shape, not the sink's doing). `names` are the file's column names in file order,
/// the table's first.
///
/// # Errors
/// [`S3SinkError::ColumnCollision`] naming the table, its column and the column the sink adds.
pub(crate) fn check_unique<'a>(
    table: &TableSchema,
    names: impl IntoIterator<Item = &'a str>,
) -> crate::Result<()> {
    // How many times each name is the table's own: those occurrences are not the sink's.
    let mut own: HashMap<&str, usize> = HashMap::new();
    for column in &table.columns {
        *own.entry(column.name.as_str()).or_default() += 1;
    }
    let mut seen: HashMap<String, (&str, bool)> = HashMap::new();
    for name in names {
        let is_own = match own.get_mut(name) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        match seen.entry(name.to_lowercase()) {
            Entry::Vacant(e) => {
                e.insert((name, is_own));
            }
            Entry::Occupied(e) => {
                let (first, first_is_own) = *e.get();
                if !(first_is_own && is_own) {
                    return Err(crate::S3SinkError::ColumnCollision {
                        table: table.id.clone(),
                        column: first.to_string(),
                        added: name.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_default_names_are_the_named_constants() {
        let names = MetaNames::default();
        assert_eq!(names.prefix(), DEFAULT_PREFIX);
        assert_eq!(MetaNames::new("_cdc_").prefix(), "_cdc_");
        assert_eq!(
            names.columns(true, true),
            [
                OP,
                DELETED,
                COMMIT_TIME,
                COMMIT_LSN,
                CHANGE_LSN,
                EVENT_SERIAL_NO,
                POSITION,
                KAFKA_TOPIC,
                KAFKA_PARTITION,
                KAFKA_OFFSET
            ]
        );
        let fields = MetaBuilder::fields(&names, true, true);
        let field_names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(field_names, names.columns(true, true));
    }

    #[test]
    fn a_table_column_named_like_an_added_column_collides_whatever_its_case() {
        let table = |names: &[&str]| {
            cdc_core::TableSchema::new(
                cdc_core::TableId::new("db", "dbo", "t"),
                names
                    .iter()
                    .map(|n| cdc_core::Column::new(*n, cdc_core::DataType::Int, true))
                    .collect(),
                vec![],
            )
            .unwrap()
        };
        let meta = MetaNames::default();
        for user in ["__op", "__OP", "__Position"] {
            let t = table(&["id", user]);
            let names = ["id", user].into_iter().chain(meta.columns(true, false));
            match check_unique(&t, names) {
                Err(crate::S3SinkError::ColumnCollision { column, added, .. }) => {
                    assert_eq!(column, user);
                    assert_eq!(added.to_lowercase(), user.to_lowercase());
                }
                other => panic!("{user}: expected a collision, got {other:?}"),
            }
        }
        // The table's own duplicates (a case-sensitive database) are its shape, not ours.
        let t = table(&["Id", "ID"]);
        assert!(check_unique(&t, ["Id", "ID"].into_iter().chain(meta.columns(true, true))).is_ok());
        // Another prefix makes room for the table's `__op`.
        let t = table(&["__op"]);
        let other = MetaNames::new("_cdc_");
        assert!(check_unique(&t, ["__op"].into_iter().chain(other.columns(true, true))).is_ok());
    }
}
