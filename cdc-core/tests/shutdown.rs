//! Shutdown does not wait for a source that is still starting (found by trying `cdc run`
//! against a server that is down: SIGTERM waited out the reconnect attempts, ~30 s, and the
//! process was reported as not stopping in time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use cdc_core::testing::MemorySink;
use cdc_core::{
    ChangeSource, Checkpoint, MemoryOffsetStore, Pipeline, PipelineConfig, Position, Result,
    SourceBatch,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A source whose start never finishes, as one retrying an unreachable server.
struct NeverStarts;

#[async_trait]
impl ChangeSource for NeverStarts {
    fn name(&self) -> &str {
        "never-starts"
    }
    async fn start(&mut self, _: Option<&Checkpoint>) -> Result<()> {
        std::future::pending().await
    }
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        Ok(None)
    }
    async fn ack(&mut self, _: &Position) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_while_the_source_is_still_starting_returns_at_once() {
    let pipeline = Pipeline::new(
        PipelineConfig::new("starting"),
        NeverStarts,
        MemorySink::new(),
        MemoryOffsetStore::new(),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(pipeline.run(shutdown.clone()));
    tokio::task::yield_now().await;
    shutdown.cancel();
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returned after shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(report.events_written, 0);
}
