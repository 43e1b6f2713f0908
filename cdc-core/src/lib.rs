//! The core of the CDC crate family: the data model of change events, the traits of the
//! three roles (change source, event codec, sink) and of offset stores, the Debezium JSON
//! codec, and the pipeline runner that wires a source to a sink so that nothing is
//! acknowledged before it is durable.
//!
//! ```text
//! ChangeSource ──SourceBatch──▶ Pipeline ──&[ChangeEvent]──▶ Sink
//!      ▲                           │  flush → durable positions
//!      └──────── ack ◀── OffsetStore::save(Checkpoint) ◀──┘
//! ```
//!
//! # Why `async_trait`
//!
//! The role traits use `#[async_trait]` rather than native `async fn` in traits: native async
//! methods are not object-safe, and users need `Box<dyn Sink>` or `Box<dyn ChangeSource>` to
//! choose an implementation at run time (from configuration, say). The cost is one boxed
//! future per call, which is per batch, not per event.
//!
//! # Crate map
//! - [model]: [`TableId`], [`TableSchema`], [`Column`], [`DataType`],
//!   [`Value`], [`Row`], [`ChangeEvent`], [`Op`], [`SourceInfo`], [`Position`], [`Lsn`],
//!   [`Checkpoint`];
//! - roles: [`ChangeSource`], [`EventCodec`], [`Sink`], [`OffsetStore`];
//! - [`DebeziumJson`]: the Debezium envelope, schemaless or with a Connect schema;
//! - offset stores: [`MemoryOffsetStore`], [`FileOffsetStore`], [`ObjectOffsetStore`];
//! - [`Pipeline`]: the runner, with [`PipelineConfig`] and [`PipelineMetrics`];
//! - `testing` (feature `testing`): in-memory source and sink, samples, conformance suites;
//! - [`topic`]: Debezium's topic names, made legal for Kafka;
//! - [`Secret`]: passwords and keys that never show in logs;
//! - [`async_trait`](macro@async_trait) and [`CancellationToken`], re-exported for implementations and callers.
//!
//! Every crate of the family logs through `tracing`: install a subscriber
//! (`tracing_subscriber::fmt::init()`, say) to see what the pipeline does.

// docs.rs builds with `--cfg docsrs` and every feature (Cargo.toml), marking feature-gated items.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
mod error;
pub mod model;
pub mod offset;
pub mod pipeline;
mod secret;
mod sink;
mod source;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod topic;

/// The attribute the role traits are declared with, re-exported so that an implementation
/// needs no dependency of its own (`#[cdc_core::async_trait] impl Sink for …`).
pub use async_trait::async_trait;
pub use codec::{DebeziumJson, DebeziumJsonBuilder, EncodedRecord, EventCodec};
pub use error::{BoxError, Error, Result};
pub use model::*;
pub use offset::{FileOffsetStore, MemoryOffsetStore, ObjectOffsetStore, OffsetStore};
pub use pipeline::{MetricsSnapshot, Pipeline, PipelineConfig, PipelineMetrics, PipelineReport};
pub use secret::Secret;
pub use sink::Sink;
pub use source::{ChangeSource, SourceBatch};
/// What [`Pipeline::run`] stops on: cancel it (on SIGTERM, say) and the pipeline flushes,
/// checkpoints and returns. tokio-util's, re-exported.
pub use tokio_util::sync::CancellationToken;
