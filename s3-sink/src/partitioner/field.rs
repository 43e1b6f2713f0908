//! Kafka Connect's `FieldPartitioner`: one directory per value of one or more columns.

use super::escape::{NULL_PARTITION, escape};
use super::{PartitionContext, Partitioner};
use cdc_core::{BoxError, ChangeEvent, Value};

/// `name=value` for one or more columns, like Kafka Connect's `FieldPartitioner`. Deletes use
/// the before image; NULL (or a missing row) is `__HIVE_DEFAULT_PARTITION__`. Values are
/// escaped Hive style (`%2F` for `/`), so any value is a single path segment.
///
/// ```
/// use s3_sink::{FieldPartitioner, PartitionContext, Partitioner};
/// let events = cdc_core::testing::sample_events("s", 1);
/// let ctx = PartitionContext { topic: "t", kafka_partition: None };
/// let by_id = FieldPartitioner::new(["id"]);
/// assert_eq!(by_id.partition(&events[0], &ctx).unwrap(), "id=1");
/// ```
#[derive(Debug, Clone)]
pub struct FieldPartitioner {
    fields: Vec<String>,
}

impl FieldPartitioner {
    /// Partitions by these columns, in this order.
    pub fn new<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }
}

impl Partitioner for FieldPartitioner {
    fn partition(&self, event: &ChangeEvent, _: &PartitionContext<'_>) -> Result<String, BoxError> {
        let mut segments = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let index = event
                .table
                .column_index(field)
                .ok_or_else(|| format!("table {} has no column {field:?}", event.table.id))?;
            let value = event
                .row()
                .and_then(|r| r.get(index))
                .unwrap_or(&Value::Null);
            segments.push(format!("{}={}", escape(field), escape(&value_text(value))));
        }
        Ok(segments.join("/"))
    }
}

/// A value as text for a partition directory.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => NULL_PARTITION.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::U8(n) => n.to_string(),
        Value::I16(n) => n.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::F32(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
        Value::DateTimeOffset(t) => t.to_rfc3339(),
        Value::Uuid(u) => u.to_string(),
        other => format!("{other:?}"),
    }
}
