//! Kafka Connect's `DefaultPartitioner`: one directory per Kafka partition.

use super::{PartitionContext, Partitioner};
use cdc_core::{BoxError, ChangeEvent};

/// Kafka Connect's default: `partition=<kafka partition>`, `partition=0` without Kafka.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, _: &ChangeEvent, ctx: &PartitionContext<'_>) -> Result<String, BoxError> {
        Ok(format!("partition={}", ctx.kafka_partition.unwrap_or(0)))
    }

    fn partition_into(
        &self,
        _: &ChangeEvent,
        ctx: &PartitionContext<'_>,
        out: &mut String,
    ) -> Result<(), BoxError> {
        out.push_str("partition=");
        out.push_str(itoa::Buffer::new().format(ctx.kafka_partition.unwrap_or(0)));
        Ok(())
    }

    fn depends_on_event(&self) -> bool {
        false
    }
}
