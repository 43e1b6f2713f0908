//! The pipeline runner: source → sink, with checkpoints that follow durability.

mod config;
mod metrics;
mod reader;
mod runner;

pub use config::PipelineConfig;
pub use metrics::{MetricsSnapshot, PipelineMetrics};
pub use runner::{Pipeline, PipelineReport};
