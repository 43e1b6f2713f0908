//! File keys: which file of the table an event goes to (its source partition, topic and
//! encoded partition), worked out once per run of events of one table and source partition.

use super::naming::{self, Origin};
use crate::error::{Result, S3SinkError};
use crate::partitioner::{PartitionContext, Partitioner};
use cdc_core::{ChangeEvent, SourcePartition, TableSchema};
use object_store::path::Path;
use std::sync::Arc;

/// Identifies an open file: one per source partition, topic and encoded partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    /// Where the file's events order (a Kafka topic partition, a SQL Server database).
    pub(crate) source_partition: SourcePartition,
    pub(crate) topic: Arc<str>,
    /// The second field of the file name (see [`Origin::slot`]).
    pub(crate) slot: Arc<str>,
    /// The encoded partition: the directory under the topic.
    pub(crate) partition: String,
}

impl FileKey {
    /// The key's directory: `<prefix>/<topic>/<encoded partition>`.
    pub(crate) fn directory(&self, prefix: &Path) -> Path {
        naming::directory(prefix, &self.topic, &self.partition)
    }

    /// The name prefix every file of the key's source partition in its directory shares.
    pub(crate) fn file_prefix(&self) -> String {
        naming::file_prefix(&self.topic, &self.slot)
    }
}

/// The source partition and origin of the previous event: consecutive events of one table and
/// source partition share them, and recomputing them (string formatting) per event is most of
/// the per-event cost.
pub(super) struct Resolved {
    table: Arc<TableSchema>,
    source_name: Arc<str>,
    pub(super) source_partition: SourcePartition,
    pub(super) origin: Origin,
}

impl Resolved {
    /// The file key of an event resolved to this, whose encoded partition is `partition`.
    pub(super) fn key(&self, partition: &str) -> FileKey {
        FileKey {
            source_partition: self.source_partition.clone(),
            topic: Arc::clone(&self.origin.topic),
            slot: Arc::clone(&self.origin.slot),
            partition: partition.to_owned(),
        }
    }
}

/// The source partition and origin of `event`, kept from the previous event when it has the
/// same table, source and source partition (recomputing them formats strings).
pub(super) fn resolve<'a>(resolved: &'a mut Option<Resolved>, event: &ChangeEvent) -> &'a Resolved {
    let position = event.position();
    let same = resolved.as_ref().is_some_and(|r| {
        Arc::ptr_eq(&r.table, &event.table)
            && r.source_name == event.source.name
            && r.source_partition.contains(position)
    });
    if !same {
        *resolved = None;
    }
    resolved.get_or_insert_with(|| Resolved {
        table: Arc::clone(&event.table),
        source_name: Arc::clone(&event.source.name),
        source_partition: position.source_partition(),
        origin: naming::origin(event),
    })
}

/// Writes the encoded partition of `event` into `out`.
pub(super) fn partition_into(
    partitioner: &dyn Partitioner,
    event: &ChangeEvent,
    origin: &Origin,
    out: &mut String,
) -> Result<()> {
    let ctx = PartitionContext {
        topic: &origin.topic,
        kafka_partition: origin.kafka_partition,
    };
    out.clear();
    partitioner
        .partition_into(event, &ctx, out)
        .map_err(|e| S3SinkError::Partition {
            position: event.position().clone(),
            reason: e.to_string(),
        })
}
