//! Kafka transport for the cdc-core pipeline, on rdkafka.
//!
//! This crate will hold the producer sink (topic per table, idempotent or transactional), the
//! consumer source (consumer group, offsets stored only once durable downstream), the
//! Kafka-backed offset store and the security settings for MSK. It is being built under the
//! "kafka-io" issue.
