//! One conformance suite per role. Every implementation in this workspace runs the suite of
//! its role, the way object_store runs one integration suite against every backend.
//!
//! The suites panic (through `assert!`) on a contract violation, naming the rule, and return
//! an error when the implementation itself fails.

mod codec;
mod offset_store;
mod sink;
mod source;

pub use codec::codec_conformance;
pub use offset_store::offset_store_conformance;
pub use sink::{SinkHarness, sink_conformance};
pub use source::{SourceHarness, source_conformance};
