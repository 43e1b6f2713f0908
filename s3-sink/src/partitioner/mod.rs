//! Partitioners: which directory under the topic an event's file goes to. The trait and its
//! context here; one file per partitioner, as Kafka Connect has one class per partitioner
//! (`DefaultPartitioner`, `FieldPartitioner`, `TimeBasedPartitioner`), and the Hive-style
//! escaping they share in `escape`.

mod default;
mod escape;
mod field;
mod time_based;

pub use default::DefaultPartitioner;
pub use escape::NULL_PARTITION;
pub(crate) use escape::{escape, escaped_segment};
pub use field::FieldPartitioner;
pub use time_based::{
    DAILY_PATH_FORMAT, HOURLY_PATH_FORMAT, TimeBasedPartitioner, TimeSource, Zone,
};

use cdc_core::{BoxError, ChangeEvent};
use std::fmt;

/// What a partitioner knows about an event besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct PartitionContext<'a> {
    /// The topic the file belongs to (the Kafka topic, or `<server>.<db>.<schema>.<table>`).
    pub topic: &'a str,
    /// The Kafka partition the event was read from, when it came through Kafka.
    pub kafka_partition: Option<i32>,
}

/// Chooses the encoded partition of an event: one or more `/`-separated path segments such as
/// `partition=3`, `region=emea` or `year=2026/month=01/day=05/hour=13`.
///
/// The result must depend only on the event (not on the clock), so that a replay puts every
/// event back in the same file.
///
/// ```
/// use s3_sink::{PartitionContext, Partitioner};
/// use cdc_core::{BoxError, ChangeEvent};
/// #[derive(Debug)]
/// struct ByOperation;
/// impl Partitioner for ByOperation {
///     fn partition(&self, event: &ChangeEvent, _: &PartitionContext<'_>) -> Result<String, BoxError> {
///         Ok(format!("op={}", event.op.code()))
///     }
/// }
/// let events = cdc_core::testing::sample_events("s", 1);
/// let ctx = PartitionContext { topic: "t", kafka_partition: None };
/// assert_eq!(ByOperation.partition(&events[0], &ctx).unwrap(), "op=c");
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// The encoded partition for `event`.
    fn partition(
        &self,
        event: &ChangeEvent,
        ctx: &PartitionContext<'_>,
    ) -> Result<String, BoxError>;

    /// Appends the encoded partition to `out`. The sink calls this once per event with a
    /// reused buffer; override it to avoid allocating.
    fn partition_into(
        &self,
        event: &ChangeEvent,
        ctx: &PartitionContext<'_>,
        out: &mut String,
    ) -> Result<(), BoxError> {
        out.push_str(&self.partition(event, ctx)?);
        Ok(())
    }

    /// Whether two events of one table, source and source partition (so one topic and one
    /// Kafka partition) may get different partitions: true unless the partition depends on
    /// [`PartitionContext`] alone. When false, the sink encodes the partition once per run
    /// of such events instead of once per event. True by default, which is always correct.
    fn depends_on_event(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cdc_core::testing::every_type_events;

    /// The context of an event read from Kafka partition 4 of topic `t`.
    pub(super) fn ctx() -> PartitionContext<'static> {
        PartitionContext {
            topic: "t",
            kafka_partition: Some(4),
        }
    }

    #[test]
    fn time_columns_and_fields_partition_events() {
        let events = every_type_events();
        let table = &events[0].table;
        let offset_column = &table
            .columns
            .iter()
            .find(|c| {
                matches!(
                    c.data_type,
                    cdc_core::DataType::DateTimeOffset { precision: 7 }
                )
            })
            .unwrap()
            .name;
        // Typical datetimeoffset: 2024-05-17 06:30 UTC.
        let by_column = TimeBasedPartitioner::column(offset_column.clone());
        assert_eq!(
            by_column.partition(&events[0], &ctx()).unwrap(),
            "year=2024/month=05/day=17/hour=06"
        );
        // A NULL value falls back to the commit time.
        assert!(
            by_column
                .partition(&events[3], &ctx())
                .unwrap()
                .starts_with("year=2026/")
        );
        assert_eq!(
            DefaultPartitioner.partition(&events[0], &ctx()).unwrap(),
            "partition=4"
        );
        let text = &table
            .columns
            .iter()
            .find(|c| c.name.contains("nvarchar_100"))
            .unwrap()
            .name;
        let by_field = FieldPartitioner::new([text.clone()]);
        assert_eq!(
            by_field.partition(&events[0], &ctx()).unwrap(),
            format!("{}=Grüße, 世界 🚀", escape(text))
        );
        assert_eq!(
            by_field.partition(&events[3], &ctx()).unwrap(),
            format!("{}={NULL_PARTITION}", escape(text))
        );
        assert!(
            FieldPartitioner::new(["nope"])
                .partition(&events[0], &ctx())
                .is_err()
        );
    }
}
