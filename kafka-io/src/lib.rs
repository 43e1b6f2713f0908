//! Kafka transport for the cdc-core pipeline, on rdkafka (librdkafka).
//!
//! ```text
//! ChangeEvent ──codec──▶ KafkaSink / TransactionalSink ──▶ <prefix>.<db>.<schema>.<table>
//!                                                          └─ offsets topic (exactly-once)
//! <topics> ──▶ KafkaSource (consumer group, offsets stored on ack) ──codec──▶ ChangeEvent
//! ```
//!
//! # Crate map
//! - connection: [`KafkaConfig`] (bootstrap, pass-through properties) and [`Security`]
//!   ([`Tls`], [`SaslMechanism`], [`Secret`], OAUTHBEARER through a [`TokenProvider`]; with
//!   the `msk-iam` feature, `Security::msk_iam` and `MskIamTokens` for Amazon MSK IAM);
//! - topics: [`TopicNamer`], [`DefaultTopicNamer`], [`TopicSpec`], [`TopicCreator`];
//! - at-least-once producer: [`KafkaSink`] (idempotent, many messages in flight);
//! - exactly-once producer: [`TransactionalSink`] with the checkpoint in the same
//!   transaction; [`TransactionalSinkBuilder::build_with_offset_store`] returns it with the
//!   [`KafkaOffsetStore`] that reads the checkpoint back;
//! - both producers share one core (`producer.rs`: delivery tracking in source-partition order, batch
//!   encoding, queueing) and one OAUTHBEARER client context (`auth.rs`);
//! - consumer: [`KafkaSource`] with a [`DecodeFailurePolicy`] (fail, skip, dead-letter);
//! - record headers: [`HEADER_OP`], [`HEADER_TABLE`], [`HEADER_POSITION`] and the `DLQ_*`
//!   headers;
//! - errors: [`KafkaIoError`], converted into `cdc_core::Error` at trait boundaries.

mod auth;
mod config;
mod consumer_builder;
mod consumer_context;
mod consumer_source;
mod delivery;
mod dlq;
mod error;
mod offsets_topic;
mod producer;
mod producer_sink;
mod record;
mod security;
mod topics;
mod transactional;

#[cfg(feature = "msk-iam")]
pub use auth::MskIamTokens;
pub use auth::{BearerToken, TokenProvider};
pub use config::KafkaConfig;
pub use consumer_builder::KafkaSourceBuilder;
pub use consumer_source::KafkaSource;
pub use dlq::{
    DLQ_HEADER_CODEC, DLQ_HEADER_OFFSET, DLQ_HEADER_PARTITION, DLQ_HEADER_REASON, DLQ_HEADER_TOPIC,
    DecodeFailurePolicy,
};
pub use error::KafkaIoError;
pub use offsets_topic::KafkaOffsetStore;
pub use producer_sink::{KafkaSink, KafkaSinkBuilder};
pub use record::{HEADER_OP, HEADER_POSITION, HEADER_TABLE};
pub use security::{SaslMechanism, Secret, Security, Tls};
pub use topics::{DefaultTopicNamer, TopicCreator, TopicNamer, TopicSpec};
pub use transactional::{TransactionalSink, TransactionalSinkBuilder};

/// rdkafka, re-exported so users and tests can reach the mock cluster and raw clients with
/// the same version.
pub use rdkafka;
