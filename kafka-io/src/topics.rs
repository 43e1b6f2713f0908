//! Topic names per table, and optional topic creation through the admin client.

use crate::auth::AuthContext;
use crate::{KafkaConfig, KafkaIoError};
use cdc_core::ChangeEvent;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::Duration;

/// Chooses the topic an event goes to.
///
/// Closures `Fn(&ChangeEvent) -> String` implement it, so a one-off rule needs no type:
///
/// ```
/// use kafka_io::TopicNamer;
/// use cdc_core::testing::sample_events;
/// let namer = |e: &cdc_core::ChangeEvent| format!("cdc-{}", e.table.id.table);
/// assert_eq!(namer.topic(&sample_events("s", 1)[0]), "cdc-items");
/// ```
pub trait TopicNamer: Send + Sync {
    /// The topic for `event`.
    fn topic(&self, event: &ChangeEvent) -> String;
}

impl<F> TopicNamer for F
where
    F: Fn(&ChangeEvent) -> String + Send + Sync,
{
    fn topic(&self, event: &ChangeEvent) -> String {
        self(event)
    }
}

/// Debezium's naming: `<prefix>.<database>.<schema>.<table>`, where the prefix is the
/// event's `source.name` (Debezium's `topic.prefix`) unless one is fixed. Characters Kafka
/// refuses in a topic name become `_` and the name is cut to 249 characters, as Debezium does
/// ([`cdc_core::topic::data_change_topic`]): a table `dbo.[Order Details]` goes to
/// `<prefix>.<database>.dbo.Order_Details`.
///
/// ```
/// use kafka_io::{DefaultTopicNamer, TopicNamer};
/// use cdc_core::testing::sample_events;
/// let event = &sample_events("s", 1)[0];
/// assert_eq!(DefaultTopicNamer::new().topic(event), "demo.demo.dbo.items");
/// assert_eq!(DefaultTopicNamer::with_prefix("erp").topic(event), "erp.demo.dbo.items");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultTopicNamer {
    prefix: Option<String>,
}

impl DefaultTopicNamer {
    /// Prefix from each event's `source.name`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fixed prefix for every event.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: Some(prefix.into()),
        }
    }
}

impl TopicNamer for DefaultTopicNamer {
    fn topic(&self, event: &ChangeEvent) -> String {
        let prefix = self.prefix.as_deref().unwrap_or(&event.source.name);
        cdc_core::topic::data_change_topic(prefix, &event.table.id)
    }
}

/// How to create topics that do not exist yet.
///
/// ```
/// use kafka_io::TopicSpec;
/// let spec = TopicSpec::new(6, 3).compacted(true);
/// assert!(spec.validate().is_ok());
/// assert!(TopicSpec::new(0, 3).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// `cleanup.policy=compact`, so tombstones remove deleted keys.
    pub compact: bool,
    /// Other topic configs (`min.insync.replicas`, `retention.ms`, …).
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// `partitions` × `replication_factor`, compacted.
    pub fn new(partitions: i32, replication_factor: i32) -> Self {
        Self {
            partitions,
            replication_factor,
            compact: true,
            configs: Vec::new(),
        }
    }

    /// Sets [`compact`](Self::compact).
    pub fn compacted(mut self, compact: bool) -> Self {
        self.compact = compact;
        self
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }

    /// Checks the spec; the error names the field.
    pub fn validate(&self) -> Result<(), KafkaIoError> {
        if self.partitions < 1 {
            return Err(KafkaIoError::config(
                "topic_spec.partitions",
                "must be at least 1",
            ));
        }
        if self.replication_factor < 1 {
            return Err(KafkaIoError::config(
                "topic_spec.replication_factor",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Creates topics through the admin client; topics that already exist are fine.
#[derive(Clone)]
pub struct TopicCreator {
    admin: std::sync::Arc<AdminClient<AuthContext>>,
    spec: TopicSpec,
    timeout: Duration,
}

impl std::fmt::Debug for TopicCreator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicCreator")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl TopicCreator {
    /// An admin client on `kafka` creating topics as `spec` says.
    pub fn new(kafka: &KafkaConfig, spec: TopicSpec) -> Result<Self, KafkaIoError> {
        kafka.validate()?;
        spec.validate()?;
        let admin = kafka
            .client_config()
            .create_with_context(kafka.auth_context())
            .map_err(|source| KafkaIoError::Client {
                role: "admin client",
                source,
            })?;
        Ok(Self {
            admin: std::sync::Arc::new(admin),
            spec,
            timeout: Duration::from_secs(30),
        })
    }

    /// Creates `topic` unless it exists.
    pub async fn ensure(&self, topic: &str) -> Result<(), KafkaIoError> {
        let mut new = NewTopic::new(
            topic,
            self.spec.partitions,
            TopicReplication::Fixed(self.spec.replication_factor),
        );
        if self.spec.compact {
            new = new.set("cleanup.policy", "compact");
        }
        for (key, value) in &self.spec.configs {
            new = new.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics([&new], &options)
            .await
            .map_err(|source| KafkaIoError::CreateTopic {
                topic: topic.to_string(),
                source,
            })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaIoError::CreateTopic {
                        topic: name,
                        source: KafkaError::AdminOp(code),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::testing::sample_events;
    use std::sync::Arc;

    #[test]
    fn default_topic_namer_replaces_characters_kafka_refuses() {
        let mut event = sample_events("s", 1).remove(0);
        let mut table = (*event.table).clone();
        table.id.table = "Order Details".into();
        event.table = Arc::new(table);
        assert_eq!(
            DefaultTopicNamer::with_prefix("erp").topic(&event),
            "erp.demo.dbo.Order_Details"
        );
        assert_eq!(
            DefaultTopicNamer::new().topic(&event),
            "demo.demo.dbo.Order_Details"
        );
    }
}
