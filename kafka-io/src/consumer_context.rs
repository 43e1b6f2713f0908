//! The consumer's rebalance bookkeeping: which partitions it owns, which it gave up since the
//! source last looked, and the client context whose callbacks keep both.

use crate::auth::AuthContext;
use cdc_core::SourcePartition;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A partition: topic and number.
pub(crate) type Partition = (String, i32);

/// Which partitions this consumer owns now, kept by the rebalance callbacks.
#[derive(Debug, Default, Clone)]
pub(crate) struct Assignment {
    inner: Arc<Mutex<HashSet<Partition>>>,
}

impl Assignment {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashSet<Partition>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Partitions revoked by the rebalance callback and not yet passed downstream: the next
/// batch names them in [`SourceBatch::revoked_partitions`], so the pipeline drops their open
/// work before any record read after the revocation.
///
/// [`SourceBatch::revoked_partitions`]: cdc_core::SourceBatch::revoked_partitions
#[derive(Debug, Default, Clone)]
pub(crate) struct Revocations {
    inner: Arc<Mutex<Vec<Partition>>>,
}

impl Revocations {
    pub(crate) fn push(&self, partition: Partition) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(partition);
    }

    pub(crate) fn take(&self) -> Vec<Partition> {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The source partitions of revoked Kafka partitions, as [`SourceBatch::revoked_partitions`]
/// names them.
///
/// [`SourceBatch::revoked_partitions`]: cdc_core::SourceBatch::revoked_partitions
pub(crate) fn source_partitions(revoked: &[Partition]) -> Vec<SourcePartition> {
    revoked
        .iter()
        .map(|(topic, partition)| SourcePartition::kafka(topic.as_str(), *partition))
        .collect()
}

/// Consumer context: tracks the assignment so acknowledgements for revoked partitions are
/// not stored.
#[derive(Clone)]
pub(crate) struct SourceContext {
    pub(crate) name: String,
    pub(crate) assignment: Assignment,
    pub(crate) revocations: Revocations,
    pub(crate) auth: AuthContext,
}

crate::auth::oauth_client_context!(SourceContext, |context| &context.auth);

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Everything stored so far is durable downstream; librdkafka commits it during
            // the revoke (enable.auto.commit). From here on, acknowledgements of these
            // partitions are dropped: the in-flight work of a revoked partition is dropped,
            // not flushed, and the next owner re-reads it from the committed offset.
            let mut assigned = self.assignment.lock();
            for e in tpl.elements() {
                let partition = (e.topic().to_string(), e.partition());
                assigned.remove(&partition);
                self.revocations.push(partition);
            }
            tracing::info!(source = %self.name, partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut assigned = self.assignment.lock();
            for e in tpl.elements() {
                assigned.insert((e.topic().to_string(), e.partition()));
            }
            tracing::info!(source = %self.name, partitions = tpl.count(), "partitions assigned");
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        match result {
            Ok(()) => {
                tracing::debug!(source = %self.name, partitions = offsets.count(), "offsets committed")
            }
            Err(error) => tracing::warn!(source = %self.name, %error, "offset commit failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::{KafkaOffset, Position};

    /// The pipeline drops a revoked partition's work by the source partition of its records'
    /// positions: the revocation must name exactly that one.
    #[test]
    fn revoked_kafka_partitions_are_named_as_the_source_partitions_of_their_records() {
        let revoked: Vec<Partition> = vec![("erp.shop.dbo.orders".into(), 3), ("t".into(), 10)];
        let named = source_partitions(&revoked);
        assert_eq!(
            named,
            [
                SourcePartition::kafka("erp.shop.dbo.orders", 3),
                SourcePartition::kafka("t", 10)
            ]
        );
        let record = Position::Kafka(KafkaOffset {
            topic: "erp.shop.dbo.orders".into(),
            partition: 3,
            offset: 42,
        });
        assert!(named[0].contains(&record));
        assert!(!named[1].contains(&record));
        assert_eq!(named[0], record.source_partition());
        assert_eq!(named[0].to_string(), "kafka/erp.shop.dbo.orders/3");
    }
}
