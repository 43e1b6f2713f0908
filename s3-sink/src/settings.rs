//! The validated settings a sink runs with, made by [`S3SinkBuilder::build`](crate::S3SinkBuilder::build).

use crate::partitioner::Partitioner;
use crate::retry::RetryPolicy;
use crate::rotation::Rotation;
use object_store::path::Path;
use std::sync::Arc;

/// Every setting, checked, but the format, codec and metadata prefix, which the sink's
/// [`Encoders`](crate::format::Encoders) hold: see the builder method of the same name for each.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) prefix: Path,
    pub(crate) partitioner: Arc<dyn Partitioner>,
    pub(crate) rotation: Rotation,
    pub(crate) memory_budget: usize,
    pub(crate) part_size: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) upload_concurrency: usize,
}
