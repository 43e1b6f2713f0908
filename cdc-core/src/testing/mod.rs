//! Test doubles, sample data and the conformance suites.
//!
//! Everything here is meant for tests, in this workspace and in users' own projects: an
//! in-memory [`MemorySource`] and [`MemorySink`] with injectable failures, deterministic sample
//! events covering every [`DataType`](crate::DataType), the per-role conformance suites, and
//! (feature `proptest`) strategies generating arbitrary events.

mod conformance;
mod memory_sink;
mod memory_source;
mod samples;
#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod strategies;

pub use conformance::{
    SinkHarness, SourceHarness, codec_conformance, offset_store_conformance, sink_conformance,
    source_conformance,
};
pub use memory_sink::{MemorySink, MemorySinkHandle};
pub use memory_source::{MemoryLog, MemorySource};
pub use samples::{
    Extreme, every_type_events, every_type_table, sample_events, sample_table, sample_value,
};
